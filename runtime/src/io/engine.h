/* io/engine.h — the asynchronous, sharded I/O engine (private to libckpt).
 *
 * What it is for: the background half of a save (and the parallel half of a restore). A caller
 * describes work as jobs — write a buffer to a file at an offset, read into a buffer, fsync,
 * close, fsync a directory, or run a function (metadata encoding, a rename step) — grouped so
 * that one save is one group. A pool of worker threads runs the jobs; their file operations go
 * through io_uring (liburing) when the kernel allows it, through pread/pwrite otherwise, and
 * always through the fault hook of the ckpt_io the engine was created with.
 *
 * The model, in the order a save uses it:
 *
 *   ckpt_engine_new          once per process or checkpointer; owns the threads.
 *   ckpt_engine_group_new    one per save; collects the first error of any of its jobs.
 *   ckpt_engine_file_open    returns a handle at once; the open(2) itself is a job, so files
 *                            are never created on the caller's (blocking) path.
 *   ckpt_engine_write/read   jobs on a file; they wait for the file's open, nothing else, so
 *   (and _writev)            writes to one file run in parallel and in any order. writev
 *                            writes an iovec list.
 *   ckpt_engine_fsync/       jobs on a file that run after every job submitted on that file
 *   ckpt_engine_file_close   before them (a per-file barrier). A durable file is fsync'd by its
 *                            close, overlapped with other files' writes, and its directory is
 *                            queued for the group's batched directory fsyncs.
 *   ckpt_engine_call         a function job; with `after` it runs once other jobs are done.
 *   ckpt_engine_group_wait   seals the group, waits, and returns the first error. A sealed
 *                            group whose jobs are all done fsyncs each noted directory once
 *                            (in parallel) before it counts as done.
 *
 * Errors: the first failing job's status and message become the group's; every job of the
 * group that has not started yet is then canceled (its future reports CKPT_ECANCELED); jobs
 * already running finish. Close jobs are the exception: a canceled close still closes the
 * descriptor (without fsync), so a failed save leaks no descriptor. Nothing is retried silently
 * except short reads/writes, which are completed.
 *
 * Memory budget (Orbax's save_concurrent_gb): max_inflight_bytes bounds the bytes of read and
 * write jobs submitted and not yet finished. A submitter blocks while admitting its job would
 * exceed the budget. A single job larger than the whole budget is admitted once nothing else is
 * in flight, and then runs alone: Orbax raises an error for such a request, but a checkpoint
 * must not fail because one array is large, and running it alone keeps the bound "budget, or one
 * job" without deadlock. Submissions made from inside a function job (on a worker thread) are
 * counted but never block, because a blocked worker could be the one that would free budget.
 *
 * Threads: every function may be called from any thread, except that one group must not be
 * freed while another thread still uses it. Futures and files belong to their group and stay
 * valid until ckpt_engine_group_free.
 *
 * Options come from ckpt_engine_options, then from the environment for the values left at
 * their default (explicit option > environment > automatic):
 *   CKPT_IO_BACKEND = uring | pwrite       which backend (default: uring if the kernel allows)
 *   CKPT_IO_FLUSH   = writebehind | end | direct   durability strategy (default: writebehind)
 *   CKPT_IO_THREADS = N                    worker threads
 *   CKPT_IO_DURABILITY = fsync | syncfs    how groups end durable (default: fsync)
 * docs/io-engine.md has the design and the figures measured on this machine. */
#ifndef CKPT_IO_ENGINE_H
#define CKPT_IO_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/uio.h>

#include "ckpt/error.h"
#include "ckpt/io.h"

typedef struct ckpt_engine ckpt_engine;
typedef struct ckpt_engine_group ckpt_engine_group;
typedef struct ckpt_engine_file ckpt_engine_file;
typedef struct ckpt_future ckpt_future;

typedef enum ckpt_engine_backend {
  CKPT_ENGINE_BACKEND_AUTO = 0, /* environment, else io_uring if the kernel allows, else pwrite */
  CKPT_ENGINE_BACKEND_URING,    /* fails with CKPT_EUNSUPPORTED when the kernel refuses */
  CKPT_ENGINE_BACKEND_PWRITE
} ckpt_engine_backend;

/* How durable files become durable. Write-behind is the default: the fastest of the three in
 * bench/engine_probe.c's measurements (docs/io-engine.md has the table), and it makes no
 * alignment demands on buffers. */
typedef enum ckpt_engine_flush {
  CKPT_ENGINE_FLUSH_DEFAULT = 0, /* environment, else WRITEBEHIND */
  CKPT_ENGINE_FLUSH_WRITEBEHIND, /* sync_file_range(WRITE) every writebehind_bytes, fsync at close
                                  */
  CKPT_ENGINE_FLUSH_END,         /* buffered writes, one fsync at close */
  CKPT_ENGINE_FLUSH_DIRECT       /* O_DIRECT for 4 KiB-aligned writes, fsync at close */
} ckpt_engine_flush;

/* How a group makes its durable files and noted directories durable at its end.
 * FSYNC (default): each durable file is fsync'd by its close, each directory once at the end;
 * an error names the file. SYNCFS: no per-file or per-directory fsync; the group ends with one
 * syncfs(2) of the file system holding them, which writes back and commits everything at once
 * (at least as strong as the fsyncs it replaces; on ext4 one journal commit instead of one per
 * file). Writeback errors are reported through a descriptor opened before the group's first
 * durable file, so none is missed (Linux >= 5.8 reports them to syncfs); the message then names
 * the directory, not the file. It also flushes other processes' dirty data on that file system. */
typedef enum ckpt_engine_durability {
  CKPT_ENGINE_DURABILITY_DEFAULT = 0, /* environment (CKPT_IO_DURABILITY), else FSYNC */
  CKPT_ENGINE_DURABILITY_FSYNC,
  CKPT_ENGINE_DURABILITY_SYNCFS
} ckpt_engine_durability;

typedef struct ckpt_engine_options {
  ckpt_io *io;      /* NULL: ckpt_io_default(). Must outlive the engine. */
  unsigned threads; /* worker threads; 0: CKPT_IO_THREADS or 4 */
  ckpt_engine_backend backend;
  unsigned uring_depth;        /* submission queue entries per worker ring; 0: 64 */
  uint64_t max_inflight_bytes; /* memory budget of read/write jobs; 0: unlimited */
  ckpt_engine_flush flush;
  uint64_t writebehind_bytes; /* write-behind granularity; 0: 8 MiB */
  size_t segment_bytes;       /* io_uring splits larger jobs into parallel pieces; 0: 4 MiB */
  ckpt_engine_durability durability;
} ckpt_engine_options;

/* Zeroes o: every field at its default. */
void ckpt_engine_options_init(ckpt_engine_options *o);

/* Creates an engine and starts its threads. *out is owned by the caller: release it with
 * ckpt_engine_free. o may be NULL (all defaults). Fails with CKPT_EUNSUPPORTED when io_uring was
 * required (option or environment) and the kernel refuses it, CKPT_EINVAL on a bad option or
 * environment value (the message names it). */
ckpt_status ckpt_engine_new(const ckpt_engine_options *o, ckpt_engine **out, ckpt_error *err);
/* Waits for every group to finish (see ckpt_engine_group_free), stops the threads, frees e.
 * Groups not freed by then are freed too. NULL is a no-op. */
void ckpt_engine_free(ckpt_engine *e);

/* The backend actually in use: URING or PWRITE, never AUTO. */
ckpt_engine_backend ckpt_engine_backend_used(const ckpt_engine *e);
ckpt_engine_flush ckpt_engine_flush_used(const ckpt_engine *e);
ckpt_engine_durability ckpt_engine_durability_used(const ckpt_engine *e);
/* Number of worker threads (at most this many jobs run at once). */
unsigned ckpt_engine_threads(const ckpt_engine *e);
const char *ckpt_engine_backend_name(ckpt_engine_backend b);
const char *ckpt_engine_flush_name(ckpt_engine_flush f);

typedef struct ckpt_engine_stats {
  uint64_t inflight_bytes;      /* read/write bytes submitted and not yet finished */
  uint64_t peak_inflight_bytes; /* the most ever, since creation or ckpt_engine_reset_peak */
  uint64_t budget_waits;        /* submissions that had to wait for the budget */
  uint64_t jobs_done;           /* jobs that ran (successfully or not) */
  uint64_t jobs_canceled;       /* jobs canceled before they started */
  uint64_t bytes_written, bytes_read;
  uint64_t short_resubmits;     /* short reads/writes completed by another request (io_uring) */
  uint64_t writebehind_flushes; /* sync_file_range calls */
  uint64_t file_fsyncs, dir_fsyncs;
} ckpt_engine_stats;

void ckpt_engine_get_stats(ckpt_engine *e, ckpt_engine_stats *s);
void ckpt_engine_reset_peak(ckpt_engine *e);

/* Budget by hand, for callers that must hold the bytes before the job exists (e.g. while
 * copying into a staging buffer): reserve blocks like a submission; pass budget_reserved in the
 * job's options to hand the reservation to the job, which releases it when it finishes. */
void ckpt_engine_reserve(ckpt_engine *e, uint64_t n);
void ckpt_engine_unreserve(ckpt_engine *e, uint64_t n);

/* ---------------------------------------------------------------- groups */

/* label names the group in messages ("save of /ckpt/7", say); copied. *out is owned by the
 * caller: release with ckpt_engine_group_free. */
ckpt_status ckpt_engine_group_new(ckpt_engine *e, const char *label, ckpt_engine_group **out,
                                  ckpt_error *err);
/* No more jobs will be submitted: once all are done (and the directories fsync'd) the group is
 * done. Idempotent. */
void ckpt_engine_group_seal(ckpt_engine_group *g);
/* True once the group is sealed and everything in it has finished. Never blocks. */
bool ckpt_engine_group_poll(ckpt_engine_group *g);
/* Seals, waits until done, and returns CKPT_OK or the group's first error (copied into err). */
ckpt_status ckpt_engine_group_wait(ckpt_engine_group *g, ckpt_error *err);
/* Fails the group with CKPT_ECANCELED (unless it already failed) so that no job not yet
 * started will run; does not wait. */
void ckpt_engine_group_cancel(ckpt_engine_group *g);
/* Adds a directory to fsync once when the group ends (after every job, unless the group
 * failed). Durable files do this for their parent directory themselves. Path copied. */
ckpt_status ckpt_engine_group_note_dir(ckpt_engine_group *g, const char *dir, ckpt_error *err);
/* Cancels what has not started, waits for the rest, closes descriptors still open, releases
 * every future and file of the group, and frees it. NULL is a no-op. */
void ckpt_engine_group_free(ckpt_engine_group *g);

/* ---------------------------------------------------------------- jobs */

/* Called once per job on a worker thread when the job finished, failed or was canceled, before
 * its future completes; buf is the job's buffer (NULL for jobs without one). Typically returns
 * a staging buffer to its pool. Must not block on the engine. */
typedef void (*ckpt_engine_done_fn)(void *arg, void *buf, ckpt_status status);

/* A function job. Runs on a worker thread; fills err and returns non-OK to fail the group. */
typedef ckpt_status (*ckpt_engine_fn)(void *arg, ckpt_error *err);

/* Per-job options; pass NULL for none. */
typedef struct ckpt_engine_job_opts {
  ckpt_future *const *after; /* prerequisites in the same group; the job starts after them */
  size_t n_after;
  ckpt_engine_done_fn on_done;
  void *on_done_arg;
  bool budget_reserved; /* the caller reserved the job's bytes with ckpt_engine_reserve */
  const char *label;    /* names a function job in messages; copied */
  /* When not NULL: a function job also gets a gate, a job that does nothing and ends after
   * it and after whatever the job adds to it with ckpt_engine_add_after (the jobs it submits,
   * say). *gate is set before the job can start, so the job may read it. */
  ckpt_future **gate;
} ckpt_engine_job_opts;

/* A function job may submit further jobs to its own group even after the group was sealed
 * (the group cannot end while that job runs); nobody else can.
 * Every submission returns CKPT_OK or fails without creating a job (CKPT_EINVAL for a sealed
 * group, a closed file or a prerequisite of another group; CKPT_ENOMEM): then on_done is not
 * called and the caller keeps its buffer. A failed submission does not fail the group; the
 * caller decides (usually ckpt_engine_group_cancel). fut may be NULL; otherwise *fut belongs
 * to the group. */

/* flags and mode as for open(2). CKPT_ENGINE_FILE_DURABLE: the close fsyncs the file (with the
 * engine's flush strategy while writing) and notes its directory for the group's end. path is
 * copied and used in every message about the file. */
#define CKPT_ENGINE_FILE_DURABLE 1u
ckpt_status ckpt_engine_file_open(ckpt_engine_group *g, const char *path, int flags, int mode,
                                  unsigned file_flags, ckpt_engine_file **out, ckpt_error *err);

/* Writes all n bytes of buf at offset (completing short writes). buf must stay valid and
 * unmodified until the job is done (its future, on_done, or the group). */
ckpt_status ckpt_engine_write(ckpt_engine_group *g, ckpt_engine_file *f, const void *buf, size_t n,
                              uint64_t offset, const ckpt_engine_job_opts *opts, ckpt_future **fut,
                              ckpt_error *err);
/* Writes the iovcnt entries of iov, one after the other, at offset (completing short writes,
 * any number of entries: more than IOV_MAX are written in several calls). The array iov is
 * copied (the caller may free or reuse it on return); the bytes it points to must stay valid and
 * unmodified until the job is done, as for ckpt_engine_write. Budget, write-behind, cancelation
 * and the fault hook (CKPT_IO_WRITE on f's path, once per pwritev call) as for a write; on_done
 * receives buf NULL. Both backends run it with pwritev(2) on a worker thread. */
ckpt_status ckpt_engine_writev(ckpt_engine_group *g, ckpt_engine_file *f, const struct iovec *iov,
                               size_t iovcnt, uint64_t offset, const ckpt_engine_job_opts *opts,
                               ckpt_future **fut, ckpt_error *err);
/* Reads up to n bytes at offset; fewer only at end of file (ckpt_future_bytes says how many). */
ckpt_status ckpt_engine_read(ckpt_engine_group *g, ckpt_engine_file *f, void *buf, size_t n,
                             uint64_t offset, const ckpt_engine_job_opts *opts, ckpt_future **fut,
                             ckpt_error *err);
/* fsync after every job submitted earlier on f. */
ckpt_status ckpt_engine_fsync(ckpt_engine_group *g, ckpt_engine_file *f,
                              const ckpt_engine_job_opts *opts, ckpt_future **fut, ckpt_error *err);
/* After every job submitted earlier on f: fsync if durable (and the group has not failed), then
 * close. No job can be submitted on f afterwards. The fsync of a durable file is a job of its
 * own, submitted first (batched by the io_uring backend; it closes the descriptors as soon as
 * it succeeds); *fut is the close job, which ends after it. */
ckpt_status ckpt_engine_file_close(ckpt_engine_group *g, ckpt_engine_file *f,
                                   const ckpt_engine_job_opts *opts, ckpt_future **fut,
                                   ckpt_error *err);
/* A whole small file written durably on the engine — the job counterpart of
 * ckpt_io_write_file, and the one way libckpt writes metadata files on an engine: open
 * (created or truncated, no symlink followed), one write of text, and, unless keep_open is
 * given, the durable close. text is taken over: freed once written, or here when nothing was
 * submitted. With keep_open the file stays open in *keep_open for a later close (NULL when the
 * open failed). */
ckpt_status ckpt_engine_write_file(ckpt_engine_group *g, const char *path, char *text, size_t len,
                                   ckpt_engine_file **keep_open, ckpt_error *err);
/* fsync of a directory, now (after opts->after), not batched. */
ckpt_status ckpt_engine_fsync_dir(ckpt_engine_group *g, const char *dir,
                                  const ckpt_engine_job_opts *opts, ckpt_future **fut,
                                  ckpt_error *err);
ckpt_status ckpt_engine_call(ckpt_engine_group *g, ckpt_engine_fn fn, void *arg,
                             const ckpt_engine_job_opts *opts, ckpt_future **fut, ckpt_error *err);

/* Adds pre as a prerequisite of job after job was submitted: for a job that must wait for work
 * only known once an earlier prerequisite of it runs (a function job adds the jobs it submits
 * to a gate job that waits for it). job must still be waiting (CKPT_EINVAL otherwise, and when
 * the two belong to different groups); CKPT_ENOMEM when memory runs out. */
ckpt_status ckpt_engine_add_after(ckpt_future *job, ckpt_future *pre, ckpt_error *err);

/* The future of the job that opens f (a prerequisite for function jobs that need the file). */
ckpt_future *ckpt_engine_file_opened(ckpt_engine_file *f);

/* ---------------------------------------------------------------- futures */

/* True once the job finished, failed or was canceled. Never blocks. */
bool ckpt_future_poll(ckpt_future *f);
/* Waits for the job; returns its status, and its message in err when it failed. */
ckpt_status ckpt_future_wait(ckpt_future *f, ckpt_error *err);
/* Bytes read or written by a finished job (0 for others or before it finished). */
size_t ckpt_future_bytes(ckpt_future *f);

#endif
