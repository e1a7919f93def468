/* ckpt/checkpointer.h — Checkpointer and AsyncCheckpointer: atomic saves through one handler.
 *
 * A checkpointer owns one handler instance (usually CompositeCheckpointHandler) and adds what a
 * handler alone does not: the temporary directory, _CHECKPOINT_METADATA, the commit
 * (commit_success.txt, fsyncs, rename), and the checks of Orbax's Checkpointer (an existing
 * destination needs force; restoring a missing or unfinalized path is an error).
 *
 * Lifecycle: ckpt_checkpointer_new → save/restore/metadata... → ckpt_checkpointer_close (waits
 * for a pending async save, like leaving Python's `with`, and frees). Not thread-safe: one
 * thread drives a checkpointer. */
#ifndef CKPT_CHECKPOINTER_H
#define CKPT_CHECKPOINTER_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ckpt/api.h"
#include "ckpt/handler.h"
#include "ckpt/io.h"
#include "ckpt/layout.h"
#include "ckpt/process_group.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ckpt_checkpointer_options {
  ckpt_atomicity atomicity;
  ckpt_io *io;    /* NULL: ckpt_io_default(); must outlive the checkpointer */
  bool async;     /* save returns after the snapshot; the write and commit run behind */
  bool zero_copy; /* caller promises not to modify saved data until the save finished
                   * (implied for a synchronous checkpointer, whose save returns only then) */
  uint64_t memory_budget_bytes; /* bound on in-flight bytes (0 = default) */
  int io_threads;               /* 0 = default */
  /* Deprecated: any nonzero value saves PyTree items as OCDBT (use_ocdbt), which answers the
   * same need — many small arrays in few files — in a layout Orbax reads. The private packed
   * layout it once selected is no longer written; checkpoints that have it still restore
   * (docs/format.md, "Packed arrays"). */
  uint64_t pack_arrays_up_to_bytes;
  /* Async checkpointers: about how many bytes one snapshot takes (the state's size). When
   * set, ckpt_checkpointer_new starts a thread that maps and pre-faults a staging pool of that
   * size (transparent huge pages requested) while the caller goes on, so the first save blocks
   * no longer than later ones: without it the first save faults the pool in while the caller
   * waits (0.39 s against 0.067 s for 1.06 GiB here, docs/performance.md "No slow first save").
   * The memory (the hint's bytes, at most CKPT_STAGING_MAX_BYTES, default a quarter of
   * physical memory) is held while any async checkpointer lives, as the pool of a first save
   * would be. A save that comes before the pool is ready waits for the rest of the faulting.
   * 0 = none (the pool is built by the first save); hints under 16 MiB do nothing (such
   * snapshots are malloc'ed); ignored by synchronous and zero_copy checkpointers, which do
   * not copy. See ckpt_checkpointer_snapshot_pool_ready. */
  uint64_t snapshot_bytes_hint;
  /* Multi-process saves and restores (docs/multiprocess.md): the processes that save each
   * checkpoint together (borrowed; must outlive the checkpointer). NULL: this process alone
   * (ckpt_process_group_single), exactly the single-process behaviour. Every process of the
   * group calls save, restore and close on its own checkpointer, with the same paths and the
   * same tree structure and the same use_ocdbt and use_zarr3; each writes only the replica-0
   * shards it holds (with use_ocdbt into its own database ocdbt.process_<rank>/, the primary
   * the root over all of them), in either zarr version. */
  ckpt_process_group *process_group;
  /* Rank of the process that creates the directories, writes the metadata files and commits
   * (Orbax's MultiprocessingOptions.primary_host; default 0). */
  int primary;
  /* Orbax's use_ocdbt (docs/format.md, "OCDBT"): the arrays of PyTree items go into the item's
   * OCDBT databases (<item>/manifest.ocdbt, <item>/d/, <item>/ocdbt.process_<i>/) instead of a
   * zarr directory each; _METADATA says "use_ocdbt": true. false (the default for now): zarr v2
   * directories, Orbax's use_ocdbt=False layout. */
  bool use_ocdbt;
  /* Orbax's use_zarr3: PyTree/Standard items store their arrays as zarr v3 (zarr.json; each
   * chunk one sharding_indexed shard, zstd-compressed unless a leaf's compression is off),
   * in directories or, with use_ocdbt, in the OCDBT databases; _METADATA says "use_zarr3": true.
   * false = zarr v2 (the default, as Orbax's). docs/format.md, "zarr v3". */
  bool use_zarr3;
} ckpt_checkpointer_options;

/* Zero-initialised options are the defaults; this documents it. */
#define CKPT_CHECKPOINTER_OPTIONS_INIT \
  { CKPT_ATOMICITY_RENAME, NULL, false, false, 0, 0, 0, 0, NULL, 0, false, false }

typedef struct ckpt_checkpointer ckpt_checkpointer;

/* handler: the handler type to instantiate; NULL means CompositeCheckpointHandler.
 * options may be NULL (defaults). *out owned by the caller; release with ckpt_checkpointer_close.
 */
CKPT_API ckpt_status ckpt_checkpointer_new(const ckpt_handler_desc *handler,
                                           const ckpt_checkpointer_options *options,
                                           ckpt_checkpointer **out, ckpt_error *err);

/* True once the staging pool that options.snapshot_bytes_hint asked for is ready (or when no
 * hint was given or the checkpointer does not copy): from then on a save of that size does
 * not fault memory in. A program may poll it to know its first save will be fast; it never
 * has to. NULL: false. */
CKPT_API bool ckpt_checkpointer_snapshot_pool_ready(const ckpt_checkpointer *ckptr);

/* Orbax's CompositeCheckpointHandler(item_handlers={item: handler}): the checkpointer's
 * Composite handler saves and restores `item` through this handler instance (one with options,
 * e.g. ckpt_json_handler_new) instead of a default-constructed one, whenever the item's args
 * belong to the instance's handler type (other args for that item are refused, CKPT_ETYPE).
 * Takes ownership of handler in every case (destroyed on failure). CKPT_ETYPE when the
 * checkpointer's handler is not Composite; CKPT_ESTATE while a save is in flight (bind before
 * saving, or after wait_until_finished); CKPT_EEXIST when item is bound already; CKPT_EINVAL
 * for an invalid item name (ckpt_composite_check_item_name). */
CKPT_API ckpt_status ckpt_checkpointer_bind_item(ckpt_checkpointer *ckptr, const char *item,
                                                 ckpt_handler *handler, ckpt_error *err);

/* Saves args atomically at path. An existing path is an error unless force (then it is replaced
 * only after the new checkpoint is complete). custom_metadata (may be NULL; copied) goes into
 * _CHECKPOINT_METADATA. Async: returns after the snapshot; errors of the background part are
 * returned by the next call. */
CKPT_API ckpt_status ckpt_checkpointer_save(ckpt_checkpointer *ckptr, const char *path,
                                            const ckpt_args *args, bool force,
                                            const cJSON *custom_metadata, ckpt_error *err);
/* Restores path (waits for a pending save first). args may be NULL (restore as saved). *out is
 * filled on success and owned by the caller (ckpt_value_free). */
CKPT_API ckpt_status ckpt_checkpointer_restore(ckpt_checkpointer *ckptr, const char *path,
                                               const ckpt_args *args, ckpt_value *out,
                                               ckpt_error *err);
/* _CHECKPOINT_METADATA of path merged with the handler's metadata as
 * {"step_metadata": {...}, "item_metadata": ...}; *out owned by the caller (cJSON_Delete). */
CKPT_API ckpt_status ckpt_checkpointer_metadata(ckpt_checkpointer *ckptr, const char *path,
                                                cJSON **out, ckpt_error *err);
/* Waits for a pending async save; returns its error, if any (once). */
CKPT_API ckpt_status ckpt_checkpointer_wait_until_finished(ckpt_checkpointer *ckptr,
                                                           ckpt_error *err);
/* Returns a stored background error without waiting (once); OK when there is none. */
CKPT_API ckpt_status ckpt_checkpointer_check_for_errors(ckpt_checkpointer *ckptr, ckpt_error *err);
/* Waits, then frees everything. Returns a pending background error. NULL is a no-op. */
CKPT_API ckpt_status ckpt_checkpointer_close(ckpt_checkpointer *ckptr, ckpt_error *err);

/* True when path is a finalized checkpoint under the given atomicity mode (a directory, not a
 * symlink, without the tmp suffix; in commit-file mode with commit_success.txt). */
CKPT_API bool ckpt_is_finalized(ckpt_io *io, const char *path, ckpt_atomicity atomicity);

#ifdef __cplusplus
}
#endif
#endif
