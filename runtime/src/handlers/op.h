/* handlers/op.h — the context of one save or restore (private to libckpt; tests may include it).
 *
 * A ckpt_op carries what a handler needs besides its arguments: the I/O layer, the zero-copy
 * promise, the atomicity mode (the Composite handler names its item directories after it),
 * and the queue of deferred work. Handlers see it only through ckpt/handler.h (ckpt_op_io,
 * ckpt_op_zero_copy, ckpt_op_defer).
 *
 * Deferred work is why the type exists: a handler's save does the blocking part (validation,
 * snapshot) and queues the slow part with ckpt_op_defer. The queue is drained by the save's
 * finishing part — on the checkpointer's background thread for an async save, inline for a
 * synchronous one — in FIFO order, one job at a time: a handler may rely on its deferred jobs
 * running in the order it queued them, each after the previous one returned. Parallelism comes
 * from inside a job: ckpt_op_engine gives it the checkpointer's I/O engine (io/engine.h), on
 * which it fans out its file I/O and waits (the finishing part never runs on an engine worker,
 * so waiting there is allowed). The queue is drained before finalize and the commit. */
#ifndef CKPT_SRC_OP_H
#define CKPT_SRC_OP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "ckpt/layout.h"
#include "ckpt/handler.h"
#include "ckpt/io.h"
#include "ckpt/process_group.h"
#include "io/engine.h"
#include "io/path_set.h"
#include "util/crc32c.h"

typedef struct ckpt_deferred_job {
  ckpt_deferred_fn run;
  void *arg;
  void (*release)(void *);
} ckpt_deferred_job;

struct ckpt_op {
  ckpt_io *io;
  bool zero_copy;
  bool use_ocdbt; /* ckpt_checkpointer_options' (or its deprecated pack_arrays_up_to_bytes) */
  bool use_zarr3; /* ckpt_checkpointer_options' */
  ckpt_atomicity atomicity;
  ckpt_engine *engine;     /* borrowed from the checkpointer; NULL when a handler runs alone */
  pthread_mutex_t mu;      /* guards the queue: deferred jobs may queue more work from any thread */
  ckpt_deferred_job *jobs; /* jobs[head .. n_jobs) are waiting, oldest first */
  size_t head;
  size_t n_jobs;
  size_t cap_jobs;
  ckpt_path_set durable; /* paths made durable by the save's jobs (guarded by mu) */
  /* Save: the CRC-32C and size of each item file written ({absolute path: [crc, bytes]},
   * guarded by mu), for the checkpoint's manifest (storage/zarr_io.h, CKPT_MANIFEST_FILE). */
  struct cJSON *files;
  bool files_lost; /* a note of files was lost to low memory: the save must fail (guarded by mu) */
  /* Multi-process saves (docs/multiprocess.md): the group (NULL: this process alone) and the
   * primary's rank, set by the checkpointer. */
  ckpt_process_group *pg;
  int primary;
  /* Work queued with ckpt_op_defer_agreed: run by ckpt_op_run_agreed once every process's
   * deferred work succeeded (the checkpointer agrees on that first). */
  ckpt_deferred_job *agreed;
  size_t n_agreed, cap_agreed;
  bool agreed_failed; /* an agreed job failed: the later ones take part but write nothing */
  /* Restore: the checkpoint's manifest (NULL: none, e.g. written by Orbax) and its directory. */
  struct ckpt_checksums *manifest;
  const char *manifest_dir;
};

/* Initialises *op in place (io NULL means ckpt_io_default()). Release with ckpt_op_destroy. */
ckpt_status ckpt_op_init(ckpt_op *op, ckpt_io *io, bool zero_copy, ckpt_atomicity atomicity,
                         ckpt_error *err);
/* Releases every job still queued (without running it) and the op's own resources. */
void ckpt_op_destroy(ckpt_op *op);

/* Heap flavour for handler tests that call a handler directly: *out owned by the caller,
 * release with ckpt_op_free (which also releases unrun jobs). */
ckpt_status ckpt_op_new(ckpt_io *io, bool zero_copy, ckpt_atomicity atomicity, ckpt_op **out,
                        ckpt_error *err);
void ckpt_op_free(ckpt_op *op);

/* Runs every queued job in queue order, including jobs queued by running jobs, until the queue
 * is empty. After the first failure the remaining jobs are released without running; that
 * first error is returned. Every job's release runs exactly once. */
ckpt_status ckpt_op_run_deferred(ckpt_op *op, ckpt_error *err);
/* Releases every queued job without running it (a canceled or failed save). */
void ckpt_op_cancel(ckpt_op *op);
/* Number of jobs waiting. */
size_t ckpt_op_pending(ckpt_op *op);

ckpt_atomicity ckpt_op_atomicity(const ckpt_op *op);

/* Multi-process saves. The group and the primary (NULL group: this process alone, which is then
 * the primary). */
void ckpt_op_set_group(ckpt_op *op, ckpt_process_group *pg, int primary);
ckpt_process_group *ckpt_op_group(const ckpt_op *op);
/* True for a save of several processes (group size > 1). */
bool ckpt_op_multiprocess(const ckpt_op *op);
/* True on the process that writes the metadata files and commits. */
bool ckpt_op_is_primary(const ckpt_op *op);
int ckpt_op_primary(const ckpt_op *op);
/* True when this process writes what every process of the save would write alike (the
 * directories, metadata files and text items): this process alone, or the primary. */
bool ckpt_op_writes_shared(const ckpt_op *op);
/* Queues work that runs after every process's deferred work succeeded (the checkpointer agrees
 * first), in FIFO order, on every process: a job that holds a collective (a gather of each
 * process's results to the primary) runs on every rank in the same order. ckpt_op_run_agreed
 * runs every job even after one failed, so that every collective is joined; a job then sees
 * ckpt_op_agreed_failed and should take part in its collectives but write nothing. Releases
 * arg on failure to queue. */
ckpt_status ckpt_op_defer_agreed(ckpt_op *op, ckpt_deferred_fn run, void *arg,
                                 void (*release)(void *), ckpt_error *err);
/* Runs (then releases) every agreed job; the first error. */
ckpt_status ckpt_op_run_agreed(ckpt_op *op, ckpt_error *err);
bool ckpt_op_agreed_failed(const ckpt_op *op);

/* The I/O engine jobs of this op run on (borrowed: the checkpointer owns it and it outlives
 * the op). NULL when none was set (a handler called directly, in tests): then the storage code
 * creates a short-lived engine of its own for the duration of the call. */
void ckpt_op_set_engine(ckpt_op *op, ckpt_engine *engine);
ckpt_engine *ckpt_op_engine(const ckpt_op *op);

/* Durability claims. Built-in handlers make what they write durable themselves, on the engine
 * and in parallel; the commit must not fsync it all again (that was one serial fsync per file
 * and directory). A job that has made `path` durable records it here:
 *   - a file: fsync'd after its last write;
 *   - a directory: every file and subdirectory in it durable (recursively), and the directory
 *     itself fsync'd after its last entry was added;
 * and nothing will modify it for the rest of the save. The claim does NOT cover the entry of
 * path in its parent directory: the commit fsyncs every directory not claimed. The commit
 * (storage/commit.h) skips claimed paths; everything else under the tmp directory — the files
 * of handlers that leave durability to the commit, as ckpt/handler.h allows — it fsyncs.
 * Claims are only an optimisation: one lost to low memory costs an fsync, never durability.
 * Thread-safe. */
void ckpt_op_note_durable(ckpt_op *op, const char *path);
/* Records that the save wrote path with these bytes (their CRC-32C is taken here, from memory:
 * nothing is read back). Out of memory: the file is simply not in the manifest, and the restore
 * then reports it as unlisted. Thread-safe. */
void ckpt_op_note_file(ckpt_op *op, const char *path, const void *data, size_t n);
/* Restore: checks a file a handler read (data NULL: the file is missing) against the
 * checkpoint's manifest, when there is one and the file lies inside its checkpoint. */
ckpt_status ckpt_op_check_file(const ckpt_op *op, const char *path, const void *data, size_t n,
                               ckpt_error *err);
/* The same with the file's CRC and size already taken (present false: missing). */
ckpt_status ckpt_op_check_sum(const ckpt_op *op, const char *path, const ckpt_file_sum *sum,
                              ckpt_error *err);
/* A rename of `from` to `to` (the Composite handler's item directories at finalize) carries
 * the claims on and under `from` along. */
void ckpt_op_durable_renamed(ckpt_op *op, const char *from, const char *to);
/* The claims, for the commit; valid until the op is destroyed and not to be read while jobs
 * may still add to it. */
const ckpt_path_set *ckpt_op_durable(const ckpt_op *op);

#endif
