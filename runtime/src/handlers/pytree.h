/* handlers/pytree.h — the shared PyTree engine (internal API of libckpt).
 *
 * StandardCheckpointHandler, PyTreeCheckpointHandler and ArrayCheckpointHandler are thin
 * front ends over these functions, and so are the handlers that store something "as a
 * PyTree" (random keys, generated records). The engine writes Orbax's non-OCDBT layout into
 * one directory:
 *
 *   <dir>/_METADATA          tree structure, Orbax's keys (tree_metadata, use_ocdbt, ...)
 *   <dir>/<param>/.zarray    one zarr v2 array per array or scalar leaf (param = keys joined
 *   <dir>/<param>/0.0 ...    by '.'), chunk files named by chunk index
 *   <dir>/_strings.json      string leaves
 *   <dir>/_CHECKSUMS         crc32c of every chunk file (ckpt's own; Orbax ignores it)
 *
 * Save is two-phase, as in Orbax: ckpt_pytree_save validates and plans on the caller's thread,
 * snapshots the data (unless the op is zero-copy), and queues the writing with ckpt_op_defer.
 * Restore reads only the chunks that intersect what the caller asks for.
 *
 * This API is stable: other handlers code against it. Add fields at the end of the option
 * structs only; zero-initialised structs always mean "Orbax's defaults". */
#ifndef CKPT_HANDLERS_PYTREE_H
#define CKPT_HANDLERS_PYTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ckpt/array.h"
#include "ckpt/desc.h"
#include "ckpt/error.h"
#include "ckpt/handler.h"
#include "ckpt/io.h"
#include "ckpt/tree.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The default upper bound of one storage chunk: shards larger than this are split so their
 * chunks can be written and read in parallel. */
#define CKPT_PYTREE_DEFAULT_CHUNK_BYTES (64ull << 20)

/* Save options of one leaf (Orbax SaveArgs plus ckpt's compression choice). */
typedef struct ckpt_pytree_leaf_save {
  const char *param; /* parameter name ("layer0.w", "opt.1.mu") they apply to */
  bool has_dtype;    /* cast to dtype before writing; it becomes the stored dtype */
  ckpt_dtype dtype;
  int64_t chunk_byte_size; /* 0: the save's default */
  size_t n_shard_axes;     /* axes to split first when a shard is larger than a chunk */
  const int32_t *shard_axes;
  ckpt_compression compression; /* DEFAULT = none */
  int compression_level;        /* 0: zstd's level 1, as TensorStore */
} ckpt_pytree_leaf_save;

typedef struct ckpt_pytree_save_spec {
  const ckpt_tree *tree; /* borrowed; snapshotted before ckpt_pytree_save returns */
  size_t n_leaf_args;
  const ckpt_pytree_leaf_save *leaf_args; /* borrowed; a param not in tree is an error */
  const cJSON *custom_metadata; /* copied; written as _METADATA.custom_metadata (may be NULL) */
  bool standard;                /* StandardSave rules: only arrays and numbers (no strings,
                                   bytes or placeholders) */
  uint64_t default_chunk_bytes; /* 0: CKPT_PYTREE_DEFAULT_CHUNK_BYTES */
  const char *what;             /* handler name for messages ("StandardSave"); may be NULL */
  /* The arrays as OCDBT (storage/ocdbt/ocdbt_write.h), as Orbax's use_ocdbt. false: the op's
   * setting (ckpt_checkpointer_options.use_ocdbt), which is false by default. */
  bool use_ocdbt;
  /* OCDBT's data file target size (0: Orbax's 2 GiB) and B+tree node target (0: the
   * encoder's): for tests that need several data files or several levels from little data. */
  uint64_t ocdbt_data_file_bytes;
  size_t ocdbt_node_bytes;
  /* Arrays as zarr v3 (Orbax's use_zarr3; storage/zarr3.h) even when the op's setting
   * (ckpt_checkpointer_options.use_zarr3) is false. */
  bool use_zarr3;
} ckpt_pytree_save_spec;

/* Restore options of one leaf (Orbax RestoreArgs / ArrayRestoreArgs). */
typedef struct ckpt_pytree_leaf_restore {
  const char *param; /* parameter name in the restored tree (after renames) */
  bool has_dtype;    /* cast to dtype after reading */
  ckpt_dtype dtype;
  bool has_global_shape; /* target global shape; absent = the target's or stored one */
  int ndim;
  const int64_t *global_shape;
  bool has_strict;          /* absent: the restore's default */
  bool strict;              /* false pads with zeros / truncates at the end of each axis */
  const char *restore_type; /* "np.ndarray", "jax.Array", "scalar", "string" or NULL */
} ckpt_pytree_leaf_restore;

/* A rename of saved parameter names (POSIX ERE matched against the whole name; \1..\9 in
 * replacement refer to its groups). */
typedef struct ckpt_pytree_transform {
  const char *pattern;
  const char *replacement;
} ckpt_pytree_transform;

typedef struct ckpt_pytree_restore_spec {
  const ckpt_tree *target; /* optional: the structure to return; array leaves give dtype,
                              global shape and shard boxes (borrowed shard memory is
                              filled in place); placeholders are skipped */
  size_t n_leaf_args;
  const ckpt_pytree_leaf_restore *leaf_args;
  size_t n_transforms; /* applied in order; the first match renames */
  const ckpt_pytree_transform *transforms;
  bool has_transforms;                 /* transforms given (even an empty list) */
  bool transforms_default_to_original; /* unmatched saved names keep their name (else dropped) */
  bool partial_restore;                /* read only the leaves present in target */
  bool non_strict;                     /* default strict=false for every leaf (StandardRestore) */
  bool standard;                       /* StandardRestore: string leaves on disk are an error */
  const char *what;                    /* handler name for messages; may be NULL */
} ckpt_pytree_restore_spec;

/* Multi-process saves (docs/multiprocess.md), for handlers whose values every process holds
 * alike (record handlers, random keys): on a process other than the primary, every array held
 * whole (one shard covering it, replica 0) becomes replica 1 + rank, so that only the primary's
 * copy is written, like scalars and strings. Sharded arrays keep their replica ids. Call on
 * the handler's own arrays (views or copies), never on the caller's: the ids are changed in
 * place. A no-op in a single-process save. */
void ckpt_pytree_whole_arrays_to_primary(const ckpt_op *op, ckpt_tree *tree);
void ckpt_array_whole_to_primary(const ckpt_op *op, ckpt_array *array);

/* Plans and snapshots spec->tree, then queues the writing of dir's files on op. On success
 * nothing spec points to is used after return (unless op is zero-copy, in which case array
 * shard data must stay unchanged until the save finishes). dir must exist. */
ckpt_status ckpt_pytree_save(ckpt_op *op, const char *dir, const ckpt_pytree_save_spec *spec,
                             ckpt_error *err);

/* The same save, run to completion on the calling thread through io (no checkpointer); for
 * tools and tests. zero_copy as ckpt_op_zero_copy. */
ckpt_status ckpt_pytree_save_sync(ckpt_io *io, bool zero_copy, const char *dir,
                                  const ckpt_pytree_save_spec *spec, ckpt_error *err);

/* Restores dir into *out (caller-owned; ckpt_tree_free). spec may be NULL (as saved). */
ckpt_status ckpt_pytree_restore(ckpt_op *op, const char *dir, const ckpt_pytree_restore_spec *spec,
                                ckpt_tree **out, ckpt_error *err);
ckpt_status ckpt_pytree_restore_io(ckpt_io *io, const char *dir,
                                   const ckpt_pytree_restore_spec *spec, ckpt_tree **out,
                                   ckpt_error *err);

/* Describes dir without reading chunk data: {"tree": nested dicts/lists whose leaves are
 * {"value_type", "param", "dtype", "shape", "chunk_shape", "compressor"} objects (strings also
 * carry "value"; leaves kept in the legacy aggregate file are {"value_type", "param",
 * "aggregated": true}), "custom_metadata": ..., "use_ocdbt": false, "use_zarr3": false}. Items
 * without _METADATA (older Orbax) are described from the tree rebuilt without it.
 * *out caller-owned (cJSON_Delete). */
ckpt_status ckpt_pytree_metadata(ckpt_op *op, const char *dir, cJSON **out, ckpt_error *err);
ckpt_status ckpt_pytree_metadata_io(ckpt_io *io, const char *dir, cJSON **out, ckpt_error *err);

/* Checks every chunk of every array in dir against _CHECKSUMS and the .zarray metadata
 * (for `ckpt verify`); the first problem is reported naming the array and chunk. *n_chunks,
 * if not NULL, receives the number of chunks verified. */
ckpt_status ckpt_pytree_verify(ckpt_io *io, const char *dir, uint64_t *n_chunks, ckpt_error *err);

#ifdef __cplusplus
}
#endif
#endif
