/* ckpt/desc.h — descriptors: the const tables ckptgen emits and one generic runtime walks.
 *
 * A record or args type is described by a ckpt_record_desc: its C size and a table of
 * fields (name, type, offsets, default, per-leaf options). The runtime's generic init, free,
 * equal and tree conversion work from these tables alone, in the manner of protobuf-c's
 * ProtobufCMessageDescriptor; generated code adds only typed one-line wrappers.
 *
 * C layout of a field of each kind (what ckptgen emits and what the runtime assumes):
 *
 *   kind                 member(s)                                   `optional`
 *   BOOL .. FLOAT64      the C type (bool, int8_t, ..., double)      bool has_NAME; before it
 *   STRING               char *NAME (owned, NUL-terminated)          NULL when absent
 *   BYTES                ckpt_bytes NAME (owned data)                bool has_NAME;
 *   ARRAY                ckpt_array *NAME (owned)                    NULL when absent
 *   RECORD               the generated struct, embedded              bool has_NAME;
 *   LIST                 size_t n_NAME; T *NAME; (owned items)       bool has_NAME;
 *   MAP                  size_t n_NAME; ENTRY *NAME; (owned)         bool has_NAME;
 *                        ENTRY = struct { char *key; T value; }
 *   JSON                 cJSON *NAME (owned)                         NULL when absent
 *   PROTO                the protoc-c message type *NAME (owned)     NULL when absent
 *   JAX_KEY              ckpt_jax_key *NAME (owned)                  NULL when absent
 *   NUMPY_RNG            ckpt_numpy_rng *NAME (owned)                NULL when absent
 *   TREE                 ckpt_tree *NAME (owned)                     NULL when absent
 *   ARGS                 ckpt_args *NAME (owned, any args type)      NULL when absent
 *   RECORD_REF           const R *NAME (borrowed, never freed)       NULL when absent
 *                        (only in the args ckptgen makes for `handler H for R;`)
 *
 * List and map elements use the same layout as a required field of their type (a list of
 * arrays is ckpt_array **). Lists and maps do not nest directly; wrap the inner one in a
 * record. An args type is a record whose first member is `ckpt_args base`. */
#ifndef CKPT_DESC_H
#define CKPT_DESC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt/api.h"
#include "ckpt/dtype.h"
#include "ckpt/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever the layout of these tables changes. Every generated header refuses to
 * compile against a runtime with another value (see ckptgen's version guard). */
#define CKPT_ABI_VERSION 1
#define CKPT_VERSION_STRING "0.1.0"

struct ProtobufCMessageDescriptor; /* from <protobuf-c/protobuf-c.h> */

typedef enum ckpt_kind {
  CKPT_KIND_BOOL,
  CKPT_KIND_INT8,
  CKPT_KIND_INT16,
  CKPT_KIND_INT32,
  CKPT_KIND_INT64,
  CKPT_KIND_UINT8,
  CKPT_KIND_UINT16,
  CKPT_KIND_UINT32,
  CKPT_KIND_UINT64,
  CKPT_KIND_FLOAT32,
  CKPT_KIND_FLOAT64,
  CKPT_KIND_STRING,
  CKPT_KIND_BYTES,
  CKPT_KIND_ARRAY,
  CKPT_KIND_RECORD,
  CKPT_KIND_LIST,
  CKPT_KIND_MAP,
  CKPT_KIND_JSON,
  CKPT_KIND_PROTO,
  CKPT_KIND_JAX_KEY,
  CKPT_KIND_NUMPY_RNG,
  CKPT_KIND_TREE,
  CKPT_KIND_ARGS,
  CKPT_KIND_RECORD_REF
} ckpt_kind;

/* Owned byte string. */
typedef struct ckpt_bytes {
  uint8_t *data;
  size_t len;
} ckpt_bytes;

/* One dimension of an array type: a fixed size, any size (`?`), or a named size that must
 * agree across the fields of one record (`H`). */
typedef struct ckpt_dim_desc {
  int64_t size;     /* >= 0 fixed; -1 any or named */
  const char *name; /* tied dimension name, or NULL */
} ckpt_dim_desc;

typedef struct ckpt_record_desc ckpt_record_desc;
typedef ckpt_record_desc ckpt_args_desc;

typedef struct ckpt_type_desc {
  ckpt_kind kind;
  ckpt_dtype dtype;                /* ARRAY: element dtype */
  uint32_t n_dims;                 /* ARRAY: rank */
  const ckpt_dim_desc *dims;       /* ARRAY: n_dims entries */
  const ckpt_record_desc *record;  /* RECORD, RECORD_REF: the record */
  const struct ProtobufCMessageDescriptor *proto; /* PROTO: the message descriptor */
  const struct ckpt_type_desc *elem;              /* LIST, MAP: element type */
  size_t elem_size;          /* LIST: sizeof one element; MAP: sizeof one entry */
  size_t entry_value_offset; /* MAP: offsetof(ENTRY, value); the key is at offset 0 */
} ckpt_type_desc;

typedef enum ckpt_compression {
  CKPT_COMPRESSION_DEFAULT = 0, /* the handler's choice (none for floats) */
  CKPT_COMPRESSION_NONE,
  CKPT_COMPRESSION_ZSTD
} ckpt_compression;

/* Per-leaf storage options from field annotations (@chunk_bytes, @compress, @save_dtype);
 * they become Orbax SaveArgs for the leaf. Zero-initialised means "all defaults". */
typedef struct ckpt_leaf_options {
  int64_t chunk_bytes;         /* @chunk_bytes(N); 0 = default */
  ckpt_compression compression;/* @compress(zstd[, level]) */
  int compression_level;       /* 0 = the codec's default (zstd: 1) */
  bool has_save_dtype;         /* @save_dtype(DT) */
  ckpt_dtype save_dtype;
} ckpt_leaf_options;

/* A default value; which member is meaningful follows the field's kind. */
typedef struct ckpt_default {
  bool b;
  int64_t i;
  uint64_t u;
  double f;
  const char *s; /* STRING; BYTES (with len) */
  size_t len;
} ckpt_default;

enum {
  CKPT_FIELD_OPTIONAL = 1u << 0,    /* declared `optional T` */
  CKPT_FIELD_HAS_DEFAULT = 1u << 1, /* `= value` given; `def` holds it */
  CKPT_FIELD_HAS_PRESENCE = 1u << 2 /* a `bool has_NAME` member at presence_offset */
};

typedef struct ckpt_field_desc {
  const char *name;            /* schema name == C member name == tree key */
  const ckpt_type_desc *type;
  uint32_t flags;              /* CKPT_FIELD_* */
  size_t offset;               /* the value member (for LIST/MAP: the items pointer) */
  size_t count_offset;         /* LIST/MAP: the size_t n_NAME member */
  size_t presence_offset;      /* CKPT_FIELD_HAS_PRESENCE: the bool has_NAME member */
  ckpt_default def;
  ckpt_leaf_options leaf;
  const char *doc;             /* `///` comment, or NULL */
} ckpt_field_desc;

#define CKPT_RECORD_DESC_MAGIC 0x636b7074u /* "ckpt" */

struct ckpt_record_desc {
  uint32_t magic;              /* CKPT_RECORD_DESC_MAGIC */
  uint32_t abi_version;        /* CKPT_ABI_VERSION it was generated for */
  const char *name;            /* "TrainState" */
  const char *full_name;       /* "demo.TrainState" */
  const char *c_name;          /* "demo_TrainState" */
  size_t size;                 /* sizeof the struct */
  uint32_t n_fields;
  const ckpt_field_desc *fields; /* in declaration order */
  bool is_args;                /* first member is `ckpt_args base` */
  const char *doc;
};

/* The base every args struct starts with. ckpt_args_init sets desc. */
typedef struct ckpt_args {
  const ckpt_args_desc *desc;
} ckpt_args;

/* ---- Generic operations over descriptors (generated wrappers call these) ---- */

/* Sets every field of *record to its default (zero, NULL, or the schema default) and, for
 * args, base.desc. Allocates only for string/bytes defaults; on CKPT_ENOMEM the record is
 * left safe to pass to ckpt_record_free. */
CKPT_API ckpt_status ckpt_record_init(const ckpt_record_desc *desc, void *record);
/* Releases everything *record owns (deeply) and leaves it as after init with no defaults
 * (all zero, except that an args struct keeps base.desc). Borrowed RECORD_REF targets are not
 * touched. Does not free the struct itself. */
CKPT_API void ckpt_record_free(const ckpt_record_desc *desc, void *record);
/* Deep, field-by-field equality (maps compare as sets of keys; arrays by dtype, shape and
 * bytes; JSON with cJSON_Compare; protos by packed bytes; floats by value with NaN == NaN;
 * RECORD_REF by the referenced records; absent optionals ignore their members). */
CKPT_API bool ckpt_record_equal(const ckpt_record_desc *desc, const void *a, const void *b);

/* Allocates and initialises an args struct on the heap. The caller owns it; release with
 * ckpt_args_delete. NULL on allocation failure. */
CKPT_API ckpt_args *ckpt_args_new(const ckpt_args_desc *desc);
/* ckpt_record_free + free. NULL is a no-op. */
CKPT_API void ckpt_args_delete(ckpt_args *args);
CKPT_API bool ckpt_args_equal(const ckpt_args *a, const ckpt_args *b);

/* Looks a field up by name; NULL when absent. */
CKPT_API const ckpt_field_desc *ckpt_record_field(const ckpt_record_desc *desc, const char *name);

#ifdef __cplusplus
}
#endif
#endif
