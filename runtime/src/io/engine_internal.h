/* io/engine_internal.h — what the engine's scheduler (engine.c) shares with its two backends
 * (pwrite_backend.c, uring_backend.c): the job and file records and the backend interface.
 * Nothing outside runtime/src/io/engine*.c and *_backend.c includes this. */
#ifndef CKPT_IO_ENGINE_INTERNAL_H
#define CKPT_IO_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/uio.h>

#include "io/engine.h"

typedef enum engine_job_kind {
  ENGINE_JOB_OPEN,
  ENGINE_JOB_WRITE,
  ENGINE_JOB_WRITEV, /* ckpt_engine_writev: iov/iovcnt instead of buf */
  ENGINE_JOB_READ,
  ENGINE_JOB_FSYNC,
  ENGINE_JOB_CLOSE,
  ENGINE_JOB_FSYNC_DIR,
  ENGINE_JOB_CALL
} engine_job_kind;

typedef enum engine_job_state {
  ENGINE_JOB_WAITING, /* prerequisites pending */
  ENGINE_JOB_READY,   /* in the ready queue */
  ENGINE_JOB_RUNNING,
  ENGINE_JOB_DONE
} engine_job_state;

/* A job; the public ckpt_future is the job itself. Owned by its group (all_next list). */
struct ckpt_future {
  ckpt_engine_group *group;
  ckpt_engine_file *file;
  engine_job_kind kind;
  engine_job_state state;

  void *buf;
  size_t len;
  uint64_t offset;
  size_t bytes_done; /* result of READ/WRITE/WRITEV */
  struct iovec *iov; /* WRITEV: the job's own copy of the caller's list (advanced in place) */
  size_t iovcnt;

  ckpt_engine_fn fn;
  void *fn_arg;
  char *path;          /* FSYNC_DIR: the directory; CALL: the label (or NULL) */
  bool final_dir_sync; /* FSYNC_DIR queued by the group's end, not by the caller */
  bool then_close;     /* FSYNC of a durable close: releases the descriptors once it succeeds */

  ckpt_engine_done_fn on_done;
  void *on_done_arg;
  uint64_t budget; /* bytes counted in the engine's in-flight total */

  unsigned deps_pending;
  ckpt_future **dependents;
  size_t n_dependents, cap_dependents;

  ckpt_status status;
  ckpt_error *error; /* malloc'ed only when the job failed; NULL otherwise */

  ckpt_future *ready_next;
  ckpt_future *all_next;
};

struct ckpt_engine_file {
  ckpt_engine_group *group;
  char *path;
  int flags, mode;
  unsigned file_flags;
  int fd;          /* -1 until the open job ran, and after close */
  int fd_buffered; /* FLUSH_DIRECT: a second, buffered descriptor for unaligned I/O; else -1 */
  bool direct;     /* fd has O_DIRECT */
  bool writebehind;
  bool close_submitted;
  bool closing; /* the close's fsync was submitted: only the close itself may follow (mu) */

  ckpt_future *open_job;
  ckpt_future *last_barrier; /* the latest fsync or close job */
  ckpt_future **since;       /* jobs submitted since last_barrier (some maybe done) */
  size_t n_since, cap_since;

  pthread_mutex_t wb_lock; /* write-behind range, updated by concurrent writers */
  uint64_t wb_lo, wb_hi, wb_bytes;

  ckpt_engine_file *next;
};

/* Backends run READ, WRITE, WRITEV and FSYNC jobs; engine.c runs the rest. run_io executes
 * every job of the batch to completion, setting job->status, job->bytes_done and, on failure,
 * the error in errs[i] (errs has n entries, cleared). */
typedef struct engine_backend_ops {
  ckpt_engine_backend id;
  /* Per worker thread: *ctx owned by the backend, released by worker_fini. */
  ckpt_status (*worker_init)(ckpt_engine *e, void **ctx, ckpt_error *err);
  void (*worker_fini)(void *ctx);
  size_t (*max_batch)(ckpt_engine *e);
  void (*run_io)(ckpt_engine *e, void *ctx, ckpt_future **jobs, ckpt_error *errs, size_t n);
} engine_backend_ops;

extern const engine_backend_ops ckpt_engine_pwrite_backend;
extern const engine_backend_ops ckpt_engine_uring_backend;

/* Runs a WRITEV job to completion with pwritev(2) on the calling thread: at most IOV_MAX
 * entries per call, short writes resumed mid-entry, EINTR retried, each call consulting the
 * fault hook as CKPT_IO_WRITE of the file's path (a -1 from the hook makes the call short).
 * Sets j->bytes_done and starts write-behind on success. Both backends use it. */
ckpt_status ckpt_engine_run_writev(ckpt_engine *e, ckpt_future *j, ckpt_error *err);

/* 0 when io_uring works here (a ring of `depth` entries can be created), else the errno. */
int ckpt_engine_uring_probe(unsigned depth);

/* The backends consult the I/O layer's fault hook for the operations the engine performs itself
 * (io_uring submissions, O_DIRECT write loops) through ckpt_io_fault_check, declared in
 * ckpt/io.h and defined in posix_io.c, so they are counted exactly as ckpt_io's own calls. */

/* Engine accessors for the backends. */
ckpt_io *ckpt_engine_io(ckpt_engine *e);
unsigned ckpt_engine_uring_depth(ckpt_engine *e);
size_t ckpt_engine_segment_bytes(ckpt_engine *e);
void ckpt_engine_count_short(ckpt_engine *e);

/* After a successful write of [offset, offset+n) to f: starts write-back of what accumulated
 * (sync_file_range, SYNC_FILE_RANGE_WRITE) once writebehind_bytes are pending. Advisory: its
 * errors are left for the closing fsync, which reports them. */
void ckpt_engine_after_write(ckpt_engine *e, ckpt_engine_file *f, uint64_t offset, size_t n);

/* After a successful FSYNC job j: when it is the fsync of a durable close (then_close), closes
 * the file's descriptors now, so that they do not wait for the rest of the batch or for the
 * close job's turn (a save bounds the files it has open by their closes). Idempotent. A failed
 * close fails j (status returned, err set). */
ckpt_status ckpt_engine_release_synced(ckpt_engine *e, ckpt_future *j, ckpt_error *err);

/* The descriptor for an I/O of n bytes at offset from buf: the O_DIRECT one when everything is
 * aligned to CKPT_ENGINE_DIRECT_ALIGN, else the buffered one. */
#define CKPT_ENGINE_DIRECT_ALIGN 4096u
int ckpt_engine_pick_fd(const ckpt_engine_file *f, const void *buf, size_t n, uint64_t offset);

#endif
