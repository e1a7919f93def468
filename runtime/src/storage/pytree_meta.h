/* storage/pytree_meta.h — Orbax's PyTree metadata files: _METADATA and _strings.json.
 *
 * _METADATA (written exactly as Orbax's json.dumps writes it, so the bytes match):
 *   {"tree_metadata": {"('a', 'b')": {"key_metadata": [{"key": "a", "key_type": 2}, ...],
 *                                     "value_metadata": {"value_type": "np.ndarray",
 *                                                        "skip_deserialize": false,
 *                                                        "write_shape": [4, 8]}}, ...},
 *    "use_ocdbt": false, "use_zarr3": false, "store_array_data_equal_to_fill_value": true,
 *    "custom_metadata": null}
 * _strings.json: {"<param>": "<value>", ...} as TensorStore's json driver writes it.
 * This header owns the _METADATA model, its encoder and parser (pytree_meta.c). */
#ifndef CKPT_STORAGE_PYTREE_META_H
#define CKPT_STORAGE_PYTREE_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ckpt/array.h"
#include "ckpt/error.h"
#include "ckpt/io.h"
#include "ckpt/tree.h"
#include "text/json.h"
#include "util/crc32c.h"

#define CKPT_METADATA_FILE "_METADATA"
#define CKPT_STRINGS_FILE "_strings.json"
#define CKPT_METADATA_MAX (512u << 20)
/* Orbax's per-process array metadata: array_metadatas/process_<i>, JSON
 * {"array_metadatas": [{"array_metadata": {"param_name", "write_shape", "chunk_shape",
 * "ext_metadata"}}, ...]}. */
#define CKPT_ARRAY_METADATAS_DIR "array_metadatas"
#define CKPT_ARRAY_METADATAS_FILE "array_metadatas/process_0"

/* Orbax's key_type values. */
#define CKPT_KEY_SEQUENCE 1
#define CKPT_KEY_DICT 2

/* Orbax's value_type strings. */
#define CKPT_VT_NDARRAY "np.ndarray"
#define CKPT_VT_JAX_ARRAY "jax.Array"
#define CKPT_VT_SCALAR "scalar"
#define CKPT_VT_STRING "string"
#define CKPT_VT_PLACEHOLDER "placeholder"
#define CKPT_VT_DICT "Dict"
#define CKPT_VT_LIST "List"
#define CKPT_VT_TUPLE "Tuple"
#define CKPT_VT_NAMEDTUPLE "NamedTuple"
#define CKPT_VT_NONE "None"

typedef struct ckpt_meta_key {
  char *key;    /* dict key, or a sequence index in decimal */
  int key_type; /* CKPT_KEY_SEQUENCE or CKPT_KEY_DICT */
} ckpt_meta_key;

typedef struct ckpt_meta_entry {
  size_t depth;
  ckpt_meta_key *keys;
  char *param; /* keys joined by '.' */
  char *value_type;
  bool skip_deserialize;
  bool has_write_shape;
  int write_ndim;
  int64_t write_shape[CKPT_MAX_RANK];
} ckpt_meta_entry;

typedef struct ckpt_pytree_meta {
  size_t n;
  ckpt_meta_entry *entries; /* in the order of the file (the tree's flatten order when ckpt
                               wrote it) */
  bool use_ocdbt;
  bool use_zarr3;
  bool store_array_data_equal_to_fill_value;
  cJSON *custom_metadata; /* owned; NULL when null or absent */
  /* Not NULL: every entry's strings and key lists live in it (one free for 10,000 entries'
   * 40,000 allocations), and ckpt_pytree_meta_free frees it whole: set by
   * ckpt_pytree_meta_parse and by a save's plan. NULL when the entries were built one by one
   * (malloc'ed, freed each). */
  struct ckpt_arena *arena;
  /* The file as read by ckpt_pytree_meta_read (its CRC-32C and size, for _CHECKSUMS). */
  bool file_read;
  uint32_t file_crc;
  uint64_t file_bytes;
} ckpt_pytree_meta;

/* True for the value types that stand for an empty container or None (nothing stored). */
bool ckpt_meta_is_empty_type(const char *value_type);

/* Python's str(tuple(keys)): "('a', 'b')", "('a',)", "()"; malloc'ed (caller frees) or NULL. */
char *ckpt_py_tuple_repr(const char *const *keys, size_t n);

/* Encodes the document described by meta (entries, flags, custom_metadata) in Orbax's exact
 * text; *text malloc'ed, caller frees. */
ckpt_status ckpt_pytree_meta_encode(const ckpt_pytree_meta *meta, char **text, size_t *len,
                                    ckpt_error *err);
/* Parses a _METADATA document; where names the file in messages. *meta is owned by the
 * caller (ckpt_pytree_meta_free) also on failure. */
/* True for the value types stored as zarr arrays (np.ndarray, jax.Array, scalars). */
bool ckpt_meta_is_array_type(const char *value_type);

/* Reads and parses dir/_METADATA (*meta owned by the caller: ckpt_pytree_meta_free). A missing
 * file is CKPT_ENOENT naming dir. */
ckpt_status ckpt_pytree_meta_read(ckpt_io *io, const char *dir, ckpt_pytree_meta *meta,
                                  ckpt_error *err);
/* The value of entry e in a decoded aggregate tree (ckpt_aggregate_value over e's keys);
 * NULL when none or a placeholder. */
const ckpt_tree *ckpt_meta_entry_aggregate(const ckpt_tree *aggregate, const ckpt_meta_entry *e);

/* Where ckpt_pytree_meta_read_any found an item's tree. */
typedef enum ckpt_meta_source {
  CKPT_META_FROM_FILE,            /* _METADATA */
  CKPT_META_FROM_AGGREGATE,       /* the legacy msgpack `checkpoint` file (storage/aggregate.h) */
  CKPT_META_FROM_ARRAY_METADATAS, /* array_metadatas/process_0 (+ the zarr arrays present) */
  CKPT_META_FROM_ZARRAYS          /* the zarr arrays alone (directories, or OCDBT keys) */
} ckpt_meta_source;

/* The tree of a PyTree item written by any Orbax version (pytree_meta_any.c): _METADATA when
 * present; else the entries of the legacy aggregate file; else one entry per parameter named
 * in array_metadatas/process_0 or found as a zarr array or in _strings.json, its keys the
 * name split at '.' (dict keys: Orbax's own fallback), sorted by name. Entries whose value is
 * in the aggregate file are skip_deserialize, as Orbax's _METADATA marks them. When aggregate
 * is not NULL it receives the decoded aggregate file whenever the item has one (also next to
 * _METADATA; NULL otherwise), owned by the caller. No tree at all is CKPT_ENOENT naming dir;
 * so is a missing _METADATA next to ckpt's _CHECKSUMS (ckpt always writes both: damage). */
ckpt_status ckpt_pytree_meta_read_any(ckpt_io *io, const char *dir, ckpt_pytree_meta *meta,
                                      ckpt_tree **aggregate, ckpt_meta_source *source,
                                      ckpt_error *err);

/* Reads dir/_strings.json when present (*doc NULL otherwise); caller cJSON_Deletes it. sum (may
 * be NULL) receives the CRC-32C and size of the bytes read (present false: no file). */
ckpt_status ckpt_pytree_strings_read(ckpt_io *io, const char *dir, cJSON **doc,
                                     ckpt_file_sum *sum, ckpt_error *err);

ckpt_status ckpt_pytree_meta_parse(const char *text, size_t len, const char *where,
                                   ckpt_pytree_meta *meta, ckpt_error *err);
void ckpt_pytree_meta_free(ckpt_pytree_meta *meta);

/* The JSON text of the layout's other files comes from text/json.h (included here, since the
 * PyTree writers use it with these declarations): ckpt_json_dump_compact for _strings.json and
 * _CHECKSUMS (TensorStore's layout), ckpt_json_put_string for the _PACKED index. */

#endif
