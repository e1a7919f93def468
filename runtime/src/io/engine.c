/* io/engine.c — the scheduler of the I/O engine: groups, jobs and their prerequisites, the
 * ready queue, the worker threads, the memory budget, and the jobs that are not plain reads and
 * writes (open, close, fsync of directories, function jobs). Reads, writes and fsyncs are
 * handed to a backend (pwrite_backend.c or uring_backend.c) in batches.
 *
 * One mutex guards all scheduling state. That is deliberate: a job costs a few list operations
 * under the lock against microseconds to milliseconds of I/O outside it, and one lock makes the
 * completion rules (first error wins, cancel what has not started, group end) easy to check. */
#include "io/engine.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/engine_internal.h"
#include "io/path_set.h"
#include "util/path.h"

#define DEFAULT_THREADS 4u
#define MAX_THREADS 256u
#define DEFAULT_URING_DEPTH 64u
#define DEFAULT_WRITEBEHIND (8ull << 20)
#define DEFAULT_SEGMENT ((size_t)4 << 20)

struct ckpt_engine_group {
  ckpt_engine *engine;
  char *label;
  ckpt_future *all_head; /* every job, for freeing */
  ckpt_engine_file *files;
  size_t outstanding; /* jobs submitted and not done */
  bool sealed;
  bool dirs_queued; /* the end-of-group directory fsyncs were queued */
  bool done;
  int sync_fd;        /* SYNCFS: a directory of the file system, opened before any durable file */
  char *sync_dir;     /* its path, for messages */
  ckpt_error error;   /* first error of any job; code CKPT_OK while none */
  ckpt_path_set dirs; /* directories to fsync once at the end */
  ckpt_engine_group *prev, *next;
};

struct ckpt_engine {
  ckpt_io *io;
  const engine_backend_ops *backend;
  ckpt_engine_flush flush;
  ckpt_engine_durability durability;
  unsigned nthreads;
  unsigned uring_depth;
  uint64_t max_inflight;
  uint64_t writebehind_bytes;
  size_t segment_bytes;

  pthread_mutex_t mu;
  pthread_cond_t work_cv;   /* workers: a job became ready, or stop */
  pthread_cond_t done_cv;   /* waiters: a job or group finished */
  pthread_cond_t budget_cv; /* submitters: budget was released */
  ckpt_future *ready_head, *ready_tail;
  bool stop;
  ckpt_engine_group *groups;
  ckpt_engine_stats stats;

  pthread_t *threads;
  unsigned started;
  unsigned initialized; /* workers past their backend set-up (their ring exists) */
};

/* Which engine, if any, the current thread works for: submissions from a worker never wait for
 * the budget, and waits from a worker are refused (both would deadlock). */
static _Thread_local ckpt_engine *tl_worker_of;
/* The group of the function job running on this worker, if any: that job may keep submitting
 * to its own group after the group was sealed (the group cannot end while the job runs), which
 * lets a job decide its follow-up I/O from the data (zero blocks, compression) on a worker. */
static _Thread_local ckpt_engine_group *tl_running_group;

/* ---------------------------------------------------------------- small helpers */

const char *ckpt_engine_backend_name(ckpt_engine_backend b) {
  switch (b) {
    case CKPT_ENGINE_BACKEND_AUTO:
      return "auto";
    case CKPT_ENGINE_BACKEND_URING:
      return "uring";
    case CKPT_ENGINE_BACKEND_PWRITE:
      return "pwrite";
  }
  return "unknown";
}

const char *ckpt_engine_flush_name(ckpt_engine_flush f) {
  switch (f) {
    case CKPT_ENGINE_FLUSH_DEFAULT:
      return "default";
    case CKPT_ENGINE_FLUSH_WRITEBEHIND:
      return "writebehind";
    case CKPT_ENGINE_FLUSH_END:
      return "end";
    case CKPT_ENGINE_FLUSH_DIRECT:
      return "direct";
  }
  return "unknown";
}

void ckpt_engine_options_init(ckpt_engine_options *o) {
  if (o != NULL)
    memset(o, 0, sizeof *o);
}

ckpt_io *ckpt_engine_io(ckpt_engine *e) {
  return e->io;
}
unsigned ckpt_engine_threads(const ckpt_engine *e) {
  return e->nthreads;
}
unsigned ckpt_engine_uring_depth(ckpt_engine *e) {
  return e->uring_depth;
}
size_t ckpt_engine_segment_bytes(ckpt_engine *e) {
  return e->segment_bytes;
}

void ckpt_engine_count_short(ckpt_engine *e) {
  pthread_mutex_lock(&e->mu);
  e->stats.short_resubmits++;
  pthread_mutex_unlock(&e->mu);
}

ckpt_engine_backend ckpt_engine_backend_used(const ckpt_engine *e) {
  return e->backend->id;
}
ckpt_engine_flush ckpt_engine_flush_used(const ckpt_engine *e) {
  return e->flush;
}
ckpt_engine_durability ckpt_engine_durability_used(const ckpt_engine *e) {
  return e->durability;
}

static char *dup_str(const char *s) {
  if (s == NULL)
    return NULL;
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p != NULL)
    memcpy(p, s, n);
  return p;
}

/* Records err as the group's error if it is the first (mu held). */
static void group_fail_locked(ckpt_engine_group *g, const ckpt_error *err) {
  if (g->error.code != CKPT_OK)
    return;
  g->error = *err;
  if (g->error.code == CKPT_OK)
    g->error.code = CKPT_EIO; /* a failure must never read as OK */
}

/* ---------------------------------------------------------------- scheduling (mu held) */

static void push_ready_locked(ckpt_engine *e, ckpt_future *j) {
  j->state = ENGINE_JOB_READY;
  j->ready_next = NULL;
  if (e->ready_tail != NULL) {
    e->ready_tail->ready_next = j;
  } else {
    e->ready_head = j;
  }
  e->ready_tail = j;
  pthread_cond_signal(&e->work_cv);
}

static ckpt_future *pop_ready_locked(ckpt_engine *e) {
  ckpt_future *j = e->ready_head;
  if (j == NULL)
    return NULL;
  e->ready_head = j->ready_next;
  if (e->ready_head == NULL)
    e->ready_tail = NULL;
  j->ready_next = NULL;
  return j;
}

static bool is_io_kind(engine_job_kind k) {
  return k == ENGINE_JOB_WRITE || k == ENGINE_JOB_WRITEV || k == ENGINE_JOB_READ ||
         k == ENGINE_JOB_FSYNC;
}

/* Takes up to max ready I/O jobs off the queue, keeping the order of the others. The scan is
 * bounded so that a queue full of opens and closes does not make batching quadratic. */
static size_t pop_io_batch_locked(ckpt_engine *e, const ckpt_future *first, ckpt_future **out,
                                  size_t max) {
  size_t n = 0, scanned = 0;
  ckpt_future **link = &e->ready_head;
  ckpt_future *prev = NULL;
  /* fsyncs and transfers go in separate batches: a batch ends with its slowest job, and an
   * fsync that closes a file must not hold its descriptors until unrelated writes finish. */
  bool fsyncs = first->kind == ENGINE_JOB_FSYNC;
  while (*link != NULL && n < max && scanned++ < 4 * max) {
    ckpt_future *j = *link;
    if (is_io_kind(j->kind) && (j->kind == ENGINE_JOB_FSYNC) == fsyncs) {
      *link = j->ready_next;
      if (e->ready_tail == j)
        e->ready_tail = prev;
      j->ready_next = NULL;
      out[n++] = j;
    } else {
      prev = j;
      link = &j->ready_next;
    }
  }
  return n;
}

static void queue_final_dir_syncs_locked(ckpt_engine_group *g);

/* Called whenever the group might have reached its end (mu held). */
static void group_check_end_locked(ckpt_engine_group *g) {
  if (!g->sealed || g->outstanding > 0 || g->done)
    return;
  if (!g->dirs_queued) {
    g->dirs_queued = true;
    /* A file that was opened but never closed would lose its fsync silently. */
    for (ckpt_engine_file *f = g->files; f != NULL; f = f->next) {
      if (!f->close_submitted) {
        ckpt_error err = CKPT_ERROR_INIT;
        ckpt_error_set(&err, CKPT_ESTATE, "%s: file '%s' was opened but never closed", g->label,
                       f->path);
        group_fail_locked(g, &err);
        break;
      }
    }
    if (g->error.code == CKPT_OK && g->dirs.count > 0) {
      queue_final_dir_syncs_locked(g);
      if (g->outstanding > 0)
        return;
    }
  }
  g->done = true;
  pthread_cond_broadcast(&g->engine->done_cv);
}

/* Marks j done (mu held): budget, stats, group error, dependents, group end. The job's
 * on_done callback has already run. */
static void complete_locked(ckpt_engine *e, ckpt_future *j, ckpt_status st, const ckpt_error *err,
                            bool canceled) {
  ckpt_engine_group *g = j->group;
  j->status = st;
  if (st != CKPT_OK && err != NULL) {
    j->error = malloc(sizeof *j->error);
    if (j->error != NULL)
      *j->error = *err;
  }
  if (st != CKPT_OK && !canceled && err != NULL)
    group_fail_locked(g, err);
  if (canceled) {
    e->stats.jobs_canceled++;
  } else {
    e->stats.jobs_done++;
    if (st == CKPT_OK && (j->kind == ENGINE_JOB_WRITE || j->kind == ENGINE_JOB_WRITEV))
      e->stats.bytes_written += j->bytes_done;
    if (st == CKPT_OK && j->kind == ENGINE_JOB_READ)
      e->stats.bytes_read += j->bytes_done;
  }
  if (j->budget > 0) {
    e->stats.inflight_bytes -= j->budget;
    j->budget = 0;
    pthread_cond_broadcast(&e->budget_cv);
  }
  j->state = ENGINE_JOB_DONE;
  for (size_t i = 0; i < j->n_dependents; i++) {
    ckpt_future *d = j->dependents[i];
    if (--d->deps_pending == 0 && d->state == ENGINE_JOB_WAITING)
      push_ready_locked(e, d);
  }
  free(j->dependents);
  j->dependents = NULL;
  j->n_dependents = j->cap_dependents = 0;
  g->outstanding--;
  group_check_end_locked(g);
  pthread_cond_broadcast(&e->done_cv);
}

/* Runs the job's callback, then records its completion. */
static void finish_job(ckpt_engine *e, ckpt_future *j, ckpt_status st, const ckpt_error *err,
                       bool canceled) {
  if (j->on_done != NULL)
    j->on_done(j->on_done_arg, j->buf, st);
  pthread_mutex_lock(&e->mu);
  complete_locked(e, j, st, err, canceled);
  pthread_mutex_unlock(&e->mu);
}

/* ---------------------------------------------------------------- jobs engine.c runs itself */

void ckpt_engine_after_write(ckpt_engine *e, ckpt_engine_file *f, uint64_t offset, size_t n) {
  if (!f->writebehind || n == 0)
    return;
  uint64_t lo = 0, hi = 0;
  pthread_mutex_lock(&f->wb_lock);
  if (f->wb_bytes == 0) {
    f->wb_lo = offset;
    f->wb_hi = offset + n;
  } else {
    if (offset < f->wb_lo)
      f->wb_lo = offset;
    if (offset + n > f->wb_hi)
      f->wb_hi = offset + n;
  }
  f->wb_bytes += n;
  bool flush = f->wb_bytes >= e->writebehind_bytes;
  if (flush) {
    lo = f->wb_lo;
    hi = f->wb_hi;
    f->wb_bytes = 0;
  }
  pthread_mutex_unlock(&f->wb_lock);
  if (!flush)
    return;
  /* Starts write-back of the range without waiting for it; errors resurface at fsync. */
  (void)sync_file_range(f->fd, (off64_t)lo, (off64_t)(hi - lo), SYNC_FILE_RANGE_WRITE);
  pthread_mutex_lock(&e->mu);
  e->stats.writebehind_flushes++;
  pthread_mutex_unlock(&e->mu);
}

int ckpt_engine_pick_fd(const ckpt_engine_file *f, const void *buf, size_t n, uint64_t offset) {
  if (!f->direct)
    return f->fd;
  uintptr_t a = CKPT_ENGINE_DIRECT_ALIGN - 1;
  if (((uintptr_t)buf & a) == 0 && (n & a) == 0 && (offset & a) == 0)
    return f->fd;
  return f->fd_buffered;
}

/* SYNCFS: opens the descriptor the group's syncfs will use, once, before the first durable file
 * is opened (so every writeback error of the group's files is reported to it). */
static ckpt_status open_sync_fd(ckpt_engine *e, ckpt_engine_group *g, const char *dir_path,
                                ckpt_error *err) {
  pthread_mutex_lock(&e->mu);
  bool have = g->sync_fd >= 0;
  pthread_mutex_unlock(&e->mu);
  if (have)
    return CKPT_OK;
  char *dir = dup_str(dir_path);
  if (dir == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", g->label);
  int fd = -1;
  ckpt_status st = ckpt_io_open(e->io, dir, O_RDONLY | O_DIRECTORY, 0, &fd, err);
  if (st != CKPT_OK) {
    free(dir);
    return st;
  }
  pthread_mutex_lock(&e->mu);
  if (g->sync_fd < 0) {
    g->sync_fd = fd;
    g->sync_dir = dir;
    fd = -1;
    dir = NULL;
  }
  pthread_mutex_unlock(&e->mu);
  if (fd >= 0) {
    ckpt_error ignored = CKPT_ERROR_INIT;
    ckpt_io_close(e->io, fd, dir, &ignored); /* another open won the race */
  }
  free(dir);
  return CKPT_OK;
}

static ckpt_status run_open(ckpt_engine *e, ckpt_future *j, ckpt_error *err) {
  ckpt_engine_file *f = j->file;
  int flags = f->flags;
  if (e->durability == CKPT_ENGINE_DURABILITY_SYNCFS &&
      (f->file_flags & CKPT_ENGINE_FILE_DURABLE)) {
    char *dir = ckpt_path_parent(f->path);
    if (dir == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", j->group->label);
    ckpt_status sst = open_sync_fd(e, j->group, dir, err);
    free(dir);
    if (sst != CKPT_OK)
      return sst;
  }
  bool want_direct = e->flush == CKPT_ENGINE_FLUSH_DIRECT &&
                     (f->file_flags & CKPT_ENGINE_FILE_DURABLE) && (flags & O_ACCMODE) != O_RDONLY;
  int fd = -1;
  ckpt_status st;
  if (want_direct) {
    st = ckpt_io_open(e->io, f->path, flags | O_DIRECT, f->mode, &fd, err);
    if (st == CKPT_OK) {
      /* The buffered twin takes unaligned pieces (tails, odd sizes). It must not truncate or
       * exclusively create what the first open just created. */
      int fd2 = -1;
      st = ckpt_io_open(e->io, f->path, flags & ~(O_CREAT | O_EXCL | O_TRUNC), f->mode, &fd2, err);
      if (st != CKPT_OK) {
        ckpt_error ignored = CKPT_ERROR_INIT;
        ckpt_io_close(e->io, fd, f->path, &ignored);
        return st;
      }
      f->fd = fd;
      f->fd_buffered = fd2;
      f->direct = true;
      return CKPT_OK;
    }
    /* File systems without O_DIRECT (tmpfs) say EINVAL: fall back to buffered writes. */
    if (err->sys_errno != EINVAL)
      return st;
    ckpt_error_clear(err);
  }
  st = ckpt_io_open(e->io, f->path, flags, f->mode, &fd, err);
  if (st != CKPT_OK)
    return st;
  f->fd = fd;
  f->writebehind = e->flush == CKPT_ENGINE_FLUSH_WRITEBEHIND &&
                   (f->file_flags & CKPT_ENGINE_FILE_DURABLE) && (flags & O_ACCMODE) != O_RDONLY;
  return CKPT_OK;
}

/* Closes the file's descriptors (errors reported unless canceled); st is the status so far. */
static ckpt_status release_descriptors(ckpt_engine *e, ckpt_engine_file *f, bool canceled,
                                       ckpt_status st, ckpt_error *err) {
  ckpt_error ignored = CKPT_ERROR_INIT;
  if (f->fd_buffered >= 0) {
    ckpt_status cst = ckpt_io_close(e->io, f->fd_buffered, f->path, canceled ? &ignored : err);
    if (st == CKPT_OK && !canceled)
      st = cst;
    f->fd_buffered = -1;
  }
  if (f->fd >= 0) {
    ckpt_status cst = ckpt_io_close(e->io, f->fd, f->path, canceled ? &ignored : err);
    if (st == CKPT_OK && !canceled)
      st = cst;
    f->fd = -1;
  }
  return st;
}

ckpt_status ckpt_engine_release_synced(ckpt_engine *e, ckpt_future *j, ckpt_error *err) {
  if (!j->then_close)
    return CKPT_OK;
  /* No job can follow this fsync on its file (submit refuses them once it is submitted), so
   * nothing else uses the descriptors now; the close job finds them closed. */
  return release_descriptors(e, j->file, false, CKPT_OK, err);
}

/* Close (and, unless canceled, fsync) a file. The descriptors are released in every case;
 * usually the fsync job ckpt_engine_file_close submitted before this one has done both
 * already (then_close: the descriptors are closed), and nothing is left to do. The fsync here
 * remains for a close whose fsync job could not be submitted. */
static ckpt_status run_close(ckpt_engine *e, ckpt_future *j, bool canceled, ckpt_error *err) {
  ckpt_engine_file *f = j->file;
  ckpt_status st = CKPT_OK;
  if (f->fd >= 0 && !canceled && (f->file_flags & CKPT_ENGINE_FILE_DURABLE) &&
      e->durability != CKPT_ENGINE_DURABILITY_SYNCFS) {
    st = ckpt_io_fsync(e->io, f->fd, f->path, err);
    if (st == CKPT_OK) {
      pthread_mutex_lock(&e->mu);
      e->stats.file_fsyncs++;
      pthread_mutex_unlock(&e->mu);
    }
  }
  return release_descriptors(e, f, canceled, st, err);
}

/* SYNCFS: the group's one syncfs(2), through the fault hook as an fsync of the directory. */
static ckpt_status run_syncfs(ckpt_engine *e, ckpt_future *j, ckpt_error *err) {
  ckpt_engine_group *g = j->group;
  if (g->sync_fd < 0) {
    /* Only noted directories, no durable file: open the noted one now. */
    ckpt_status st = open_sync_fd(e, g, j->path, err);
    if (st != CKPT_OK)
      return st;
  }
  int fault = ckpt_io_fault_check(e->io, CKPT_IO_FSYNC, g->sync_dir);
  int rc = fault > 0 ? -1 : syncfs(g->sync_fd);
  int en = fault > 0 ? fault : errno;
  if (rc != 0)
    return ckpt_error_errno(err, en, "cannot sync the file system of '%s' (syncfs)", g->sync_dir);
  pthread_mutex_lock(&e->mu);
  e->stats.dir_fsyncs++;
  pthread_mutex_unlock(&e->mu);
  return CKPT_OK;
}

static ckpt_status run_fsync_dir(ckpt_engine *e, ckpt_future *j, ckpt_error *err) {
  if (j->final_dir_sync && e->durability == CKPT_ENGINE_DURABILITY_SYNCFS)
    return run_syncfs(e, j, err);
  ckpt_status st = ckpt_io_fsync_dir(e->io, j->path, err);
  if (st == CKPT_OK) {
    pthread_mutex_lock(&e->mu);
    e->stats.dir_fsyncs++;
    pthread_mutex_unlock(&e->mu);
  }
  return st;
}

/* Runs one non-I/O job (or cancels it) and records its completion. */
static void run_other(ckpt_engine *e, ckpt_future *j, bool cancel) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_status st = CKPT_OK;
  if (cancel && j->kind != ENGINE_JOB_CLOSE) {
    ckpt_error_set(&err, CKPT_ECANCELED, "%s: job canceled after an earlier failure",
                   j->group->label);
    finish_job(e, j, CKPT_ECANCELED, &err, true);
    return;
  }
  switch (j->kind) {
    case ENGINE_JOB_OPEN:
      st = run_open(e, j, &err);
      break;
    case ENGINE_JOB_CLOSE:
      st = run_close(e, j, cancel, &err);
      if (cancel) {
        ckpt_error_clear(&err);
        ckpt_error_set(&err, CKPT_ECANCELED,
                       "%s: '%s' closed without fsync after an earlier "
                       "failure",
                       j->group->label, j->file->path);
        finish_job(e, j, CKPT_ECANCELED, &err, true);
        return;
      }
      break;
    case ENGINE_JOB_FSYNC_DIR:
      st = run_fsync_dir(e, j, &err);
      break;
    case ENGINE_JOB_CALL:
      tl_running_group = j->group;
      st = j->fn(j->fn_arg, &err);
      tl_running_group = NULL;
      if (st != CKPT_OK && err.code == CKPT_OK) {
        ckpt_error_set(&err, st, "%s: function job '%s' failed without a message", j->group->label,
                       j->path != NULL ? j->path : "(unnamed)");
      }
      if (st == CKPT_OK)
        ckpt_error_clear(&err);
      break;
    default:
      ckpt_error_set(&err, CKPT_EINVAL, "internal: job kind %d is not run here", (int)j->kind);
      st = CKPT_EINVAL;
      break;
  }
  if (st != CKPT_OK && err.code == CKPT_OK)
    ckpt_error_set(&err, st, "%s: job failed", j->group->label);
  finish_job(e, j, st, st == CKPT_OK ? NULL : &err, false);
}

/* ---------------------------------------------------------------- workers */

typedef struct worker_arg {
  ckpt_engine *e;
  void *ctx;
} worker_arg;

static bool should_cancel_locked(const ckpt_future *j) {
  return j->group->error.code != CKPT_OK;
}

static void *worker_main(void *p) {
  ckpt_engine *e = p;
  tl_worker_of = e;
  void *ctx = NULL;
  ckpt_error ierr = CKPT_ERROR_INIT;
  /* A ring that cannot be set up in this thread degrades this worker to plain pread/pwrite;
   * the probe in ckpt_engine_new makes that rare. */
  const engine_backend_ops *be = e->backend;
  if (be->worker_init(e, &ctx, &ierr) != CKPT_OK) {
    be = &ckpt_engine_pwrite_backend;
    ctx = NULL;
  }
  /* ckpt_engine_new returns only once every worker got here, so the engine's descriptors
   * (one ring per worker) all exist when the caller gets it. */
  pthread_mutex_lock(&e->mu);
  e->initialized++;
  pthread_cond_broadcast(&e->done_cv);
  pthread_mutex_unlock(&e->mu);
  /* Batch arrays: on the heap for batching backends; one slot on the stack otherwise, or
   * when memory is short (the worker then runs one job at a time rather than not at all). */
  ckpt_future *one_job[1];
  ckpt_error one_err[1];
  bool one_cancel[1];
  ckpt_future **batch = one_job;
  ckpt_error *errs = one_err;
  bool *cancel = one_cancel;
  size_t max_batch = be->max_batch(e);
  if (max_batch > 1) {
    ckpt_future **hb = calloc(max_batch, sizeof *hb);
    ckpt_error *he = calloc(max_batch, sizeof *he);
    bool *hc = calloc(max_batch, sizeof *hc);
    if (hb != NULL && he != NULL && hc != NULL) {
      batch = hb;
      errs = he;
      cancel = hc;
    } else {
      free(hb);
      free(he);
      free(hc);
      max_batch = 1;
    }
  } else {
    max_batch = 1;
  }

  pthread_mutex_lock(&e->mu);
  for (;;) {
    while (!e->stop && e->ready_head == NULL)
      pthread_cond_wait(&e->work_cv, &e->mu);
    if (e->ready_head == NULL)
      break; /* stop, and nothing left */
    ckpt_future *j = pop_ready_locked(e);
    if (!is_io_kind(j->kind)) {
      bool c = should_cancel_locked(j);
      j->state = ENGINE_JOB_RUNNING;
      pthread_mutex_unlock(&e->mu);
      run_other(e, j, c);
      pthread_mutex_lock(&e->mu);
      continue;
    }
    batch[0] = j;
    size_t n = 1 + pop_io_batch_locked(e, j, batch + 1, max_batch - 1);
    for (size_t i = 0; i < n; i++) {
      cancel[i] = should_cancel_locked(batch[i]);
      batch[i]->state = ENGINE_JOB_RUNNING;
    }
    pthread_mutex_unlock(&e->mu);

    /* Canceled ones first, then the rest go to the backend together. */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
      if (cancel[i]) {
        ckpt_error err = CKPT_ERROR_INIT;
        ckpt_error_set(&err, CKPT_ECANCELED, "%s: %s of '%s' canceled after an earlier failure",
                       batch[i]->group->label,
                       batch[i]->kind == ENGINE_JOB_READ    ? "read"
                       : batch[i]->kind == ENGINE_JOB_FSYNC ? "fsync"
                                                            : "write",
                       batch[i]->file->path);
        finish_job(e, batch[i], CKPT_ECANCELED, &err, true);
      } else {
        batch[m++] = batch[i];
      }
    }
    if (m > 0) {
      for (size_t i = 0; i < m; i++)
        ckpt_error_clear(&errs[i]);
      be->run_io(e, ctx, batch, errs, m);
      for (size_t i = 0; i < m; i++) {
        ckpt_future *b = batch[i];
        if (b->status == CKPT_OK && b->kind == ENGINE_JOB_FSYNC) {
          pthread_mutex_lock(&e->mu);
          e->stats.file_fsyncs++;
          pthread_mutex_unlock(&e->mu);
          b->status = ckpt_engine_release_synced(e, b, &errs[i]);
        }
        finish_job(e, b, b->status, b->status == CKPT_OK ? NULL : &errs[i], false);
      }
    }
    pthread_mutex_lock(&e->mu);
  }
  pthread_mutex_unlock(&e->mu);
  if (batch != one_job) {
    free(batch);
    free(errs);
    free(cancel);
  }
  if (ctx != NULL)
    be->worker_fini(ctx);
  tl_worker_of = NULL;
  return NULL;
}

/* ---------------------------------------------------------------- engine life cycle */

static ckpt_status parse_env(ckpt_engine_options *o, ckpt_error *err) {
  const char *b = getenv("CKPT_IO_BACKEND");
  if (o->backend == CKPT_ENGINE_BACKEND_AUTO && b != NULL && b[0] != '\0') {
    if (strcmp(b, "uring") == 0) {
      o->backend = CKPT_ENGINE_BACKEND_URING;
    } else if (strcmp(b, "pwrite") == 0) {
      o->backend = CKPT_ENGINE_BACKEND_PWRITE;
    } else if (strcmp(b, "auto") != 0) {
      return ckpt_error_set(err, CKPT_EINVAL,
                            "CKPT_IO_BACKEND='%s': expected 'uring', 'pwrite' or 'auto'", b);
    }
  }
  const char *f = getenv("CKPT_IO_FLUSH");
  if (o->flush == CKPT_ENGINE_FLUSH_DEFAULT && f != NULL && f[0] != '\0') {
    if (strcmp(f, "writebehind") == 0) {
      o->flush = CKPT_ENGINE_FLUSH_WRITEBEHIND;
    } else if (strcmp(f, "end") == 0) {
      o->flush = CKPT_ENGINE_FLUSH_END;
    } else if (strcmp(f, "direct") == 0) {
      o->flush = CKPT_ENGINE_FLUSH_DIRECT;
    } else {
      return ckpt_error_set(err, CKPT_EINVAL,
                            "CKPT_IO_FLUSH='%s': expected 'writebehind', 'end' or 'direct'", f);
    }
  }
  const char *du = getenv("CKPT_IO_DURABILITY");
  if (o->durability == CKPT_ENGINE_DURABILITY_DEFAULT && du != NULL && du[0] != '\0') {
    if (strcmp(du, "fsync") == 0) {
      o->durability = CKPT_ENGINE_DURABILITY_FSYNC;
    } else if (strcmp(du, "syncfs") == 0) {
      o->durability = CKPT_ENGINE_DURABILITY_SYNCFS;
    } else {
      return ckpt_error_set(err, CKPT_EINVAL,
                            "CKPT_IO_DURABILITY='%s': expected 'fsync' or 'syncfs'", du);
    }
  }
  const char *t = getenv("CKPT_IO_THREADS");
  if (o->threads == 0 && t != NULL && t[0] != '\0') {
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(t, &end, 10);
    if (errno != 0 || end == t || *end != '\0' || v == 0 || v > MAX_THREADS) {
      return ckpt_error_set(err, CKPT_EINVAL, "CKPT_IO_THREADS='%s': expected 1 to %u", t,
                            MAX_THREADS);
    }
    o->threads = (unsigned)v;
  }
  return CKPT_OK;
}

static void free_groups_and_stop(ckpt_engine *e);

ckpt_status ckpt_engine_new(const ckpt_engine_options *opts, ckpt_engine **out, ckpt_error *err) {
  if (out == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_engine_new: out is NULL");
  *out = NULL;
  ckpt_engine_options o;
  ckpt_engine_options_init(&o);
  if (opts != NULL)
    o = *opts;
  if (o.threads > MAX_THREADS)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_engine_new: %u threads (at most %u)", o.threads,
                          MAX_THREADS);
  if (o.backend != CKPT_ENGINE_BACKEND_AUTO && o.backend != CKPT_ENGINE_BACKEND_URING &&
      o.backend != CKPT_ENGINE_BACKEND_PWRITE)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_engine_new: unknown backend %d", (int)o.backend);
  if (o.flush < CKPT_ENGINE_FLUSH_DEFAULT || o.flush > CKPT_ENGINE_FLUSH_DIRECT)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_engine_new: unknown flush mode %d", (int)o.flush);
  ckpt_status st = parse_env(&o, err);
  if (st != CKPT_OK)
    return st;
  if (o.threads == 0)
    o.threads = DEFAULT_THREADS;
  if (o.uring_depth == 0)
    o.uring_depth = DEFAULT_URING_DEPTH;
  if (o.uring_depth > 4096)
    o.uring_depth = 4096;
  if (o.flush == CKPT_ENGINE_FLUSH_DEFAULT)
    o.flush = CKPT_ENGINE_FLUSH_WRITEBEHIND;
  if (o.durability < CKPT_ENGINE_DURABILITY_DEFAULT || o.durability > CKPT_ENGINE_DURABILITY_SYNCFS)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_engine_new: unknown durability %d",
                          (int)o.durability);
  if (o.durability == CKPT_ENGINE_DURABILITY_DEFAULT)
    o.durability = CKPT_ENGINE_DURABILITY_FSYNC;
  if (o.writebehind_bytes == 0)
    o.writebehind_bytes = DEFAULT_WRITEBEHIND;
  if (o.segment_bytes == 0)
    o.segment_bytes = DEFAULT_SEGMENT;
  if (o.segment_bytes < CKPT_ENGINE_DIRECT_ALIGN)
    o.segment_bytes = CKPT_ENGINE_DIRECT_ALIGN;
  if (o.segment_bytes > ((size_t)1 << 30))
    o.segment_bytes = (size_t)1 << 30;
  /* Segments stay 4 KiB multiples so that O_DIRECT pieces of an aligned job stay aligned. */
  o.segment_bytes &= ~(size_t)(CKPT_ENGINE_DIRECT_ALIGN - 1);

  const engine_backend_ops *backend = &ckpt_engine_pwrite_backend;
  if (o.backend != CKPT_ENGINE_BACKEND_PWRITE) {
    int rc = ckpt_engine_uring_probe(o.uring_depth);
    if (rc == 0) {
      backend = &ckpt_engine_uring_backend;
    } else if (o.backend == CKPT_ENGINE_BACKEND_URING) {
      ckpt_error_errno(err, rc,
                       "io_uring was required (option or CKPT_IO_BACKEND) but the "
                       "kernel refused io_uring_queue_init");
      err->code = CKPT_EUNSUPPORTED;
      return CKPT_EUNSUPPORTED;
    }
  }

  ckpt_engine *e = calloc(1, sizeof *e);
  if (e == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "ckpt_engine_new: out of memory");
  e->io = o.io != NULL ? o.io : ckpt_io_default();
  e->backend = backend;
  e->flush = o.flush;
  e->durability = o.durability;
  e->nthreads = o.threads;
  e->uring_depth = o.uring_depth;
  e->max_inflight = o.max_inflight_bytes;
  e->writebehind_bytes = o.writebehind_bytes;
  e->segment_bytes = o.segment_bytes;
  pthread_mutex_init(&e->mu, NULL);
  pthread_cond_init(&e->work_cv, NULL);
  pthread_cond_init(&e->done_cv, NULL);
  pthread_cond_init(&e->budget_cv, NULL);
  e->threads = calloc(e->nthreads, sizeof *e->threads);
  if (e->threads == NULL) {
    ckpt_engine_free(e);
    return ckpt_error_set(err, CKPT_ENOMEM, "ckpt_engine_new: out of memory");
  }
  for (unsigned i = 0; i < e->nthreads; i++) {
    int rc = pthread_create(&e->threads[i], NULL, worker_main, e);
    if (rc != 0) {
      ckpt_engine_free(e);
      return ckpt_error_errno(err, rc, "ckpt_engine_new: cannot start worker thread %u", i);
    }
    e->started++;
  }
  pthread_mutex_lock(&e->mu);
  while (e->initialized < e->started)
    pthread_cond_wait(&e->done_cv, &e->mu);
  pthread_mutex_unlock(&e->mu);
  *out = e;
  return CKPT_OK;
}

void ckpt_engine_free(ckpt_engine *e) {
  if (e == NULL)
    return;
  free_groups_and_stop(e);
  free(e->threads);
  pthread_cond_destroy(&e->budget_cv);
  pthread_cond_destroy(&e->done_cv);
  pthread_cond_destroy(&e->work_cv);
  pthread_mutex_destroy(&e->mu);
  free(e);
}

static void free_groups_and_stop(ckpt_engine *e) {
  for (;;) {
    pthread_mutex_lock(&e->mu);
    ckpt_engine_group *g = e->groups;
    pthread_mutex_unlock(&e->mu);
    if (g == NULL)
      break;
    ckpt_engine_group_free(g);
  }
  pthread_mutex_lock(&e->mu);
  e->stop = true;
  pthread_cond_broadcast(&e->work_cv);
  pthread_mutex_unlock(&e->mu);
  for (unsigned i = 0; i < e->started; i++)
    pthread_join(e->threads[i], NULL);
  e->started = 0;
}

void ckpt_engine_get_stats(ckpt_engine *e, ckpt_engine_stats *s) {
  pthread_mutex_lock(&e->mu);
  *s = e->stats;
  pthread_mutex_unlock(&e->mu);
}

void ckpt_engine_reset_peak(ckpt_engine *e) {
  pthread_mutex_lock(&e->mu);
  e->stats.peak_inflight_bytes = e->stats.inflight_bytes;
  pthread_mutex_unlock(&e->mu);
}

/* Admits n bytes into the budget (mu held); waits unless on a worker thread. */
static void reserve_locked(ckpt_engine *e, uint64_t n) {
  if (n == 0)
    return;
  if (e->max_inflight > 0 && tl_worker_of != e) {
    bool waited = false;
    /* Alone is always admitted, so a job larger than the budget cannot deadlock. */
    while (e->stats.inflight_bytes > 0 && e->stats.inflight_bytes + n > e->max_inflight) {
      waited = true;
      pthread_cond_wait(&e->budget_cv, &e->mu);
    }
    if (waited)
      e->stats.budget_waits++;
  }
  e->stats.inflight_bytes += n;
  if (e->stats.inflight_bytes > e->stats.peak_inflight_bytes)
    e->stats.peak_inflight_bytes = e->stats.inflight_bytes;
}

void ckpt_engine_reserve(ckpt_engine *e, uint64_t n) {
  pthread_mutex_lock(&e->mu);
  reserve_locked(e, n);
  pthread_mutex_unlock(&e->mu);
}

void ckpt_engine_unreserve(ckpt_engine *e, uint64_t n) {
  pthread_mutex_lock(&e->mu);
  e->stats.inflight_bytes -= n <= e->stats.inflight_bytes ? n : e->stats.inflight_bytes;
  pthread_cond_broadcast(&e->budget_cv);
  pthread_mutex_unlock(&e->mu);
}

/* ---------------------------------------------------------------- groups */

ckpt_status ckpt_engine_group_new(ckpt_engine *e, const char *label, ckpt_engine_group **out,
                                  ckpt_error *err) {
  if (e == NULL || out == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_engine_group_new: NULL argument");
  *out = NULL;
  ckpt_engine_group *g = calloc(1, sizeof *g);
  if (g == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "ckpt_engine_group_new: out of memory");
  g->engine = e;
  g->sync_fd = -1;
  g->label = dup_str(label != NULL ? label : "I/O group");
  if (g->label == NULL) {
    free(g);
    return ckpt_error_set(err, CKPT_ENOMEM, "ckpt_engine_group_new: out of memory");
  }
  pthread_mutex_lock(&e->mu);
  g->next = e->groups;
  if (e->groups != NULL)
    e->groups->prev = g;
  e->groups = g;
  pthread_mutex_unlock(&e->mu);
  *out = g;
  return CKPT_OK;
}

void ckpt_engine_group_seal(ckpt_engine_group *g) {
  if (g == NULL)
    return;
  ckpt_engine *e = g->engine;
  pthread_mutex_lock(&e->mu);
  g->sealed = true;
  group_check_end_locked(g);
  pthread_mutex_unlock(&e->mu);
}

bool ckpt_engine_group_poll(ckpt_engine_group *g) {
  ckpt_engine *e = g->engine;
  pthread_mutex_lock(&e->mu);
  bool done = g->done;
  pthread_mutex_unlock(&e->mu);
  return done;
}

ckpt_status ckpt_engine_group_wait(ckpt_engine_group *g, ckpt_error *err) {
  if (g == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_engine_group_wait: group is NULL");
  ckpt_engine *e = g->engine;
  if (tl_worker_of == e)
    return ckpt_error_set(err, CKPT_ESTATE,
                          "%s: waited for from one of its engine's own "
                          "worker threads (that could deadlock); use a prerequisite instead",
                          g->label);
  pthread_mutex_lock(&e->mu);
  g->sealed = true;
  group_check_end_locked(g);
  while (!g->done)
    pthread_cond_wait(&e->done_cv, &e->mu);
  ckpt_error copy = g->error;
  pthread_mutex_unlock(&e->mu);
  if (copy.code == CKPT_OK)
    return CKPT_OK;
  if (err != NULL && err->code == CKPT_OK)
    *err = copy;
  return copy.code;
}

void ckpt_engine_group_cancel(ckpt_engine_group *g) {
  if (g == NULL)
    return;
  ckpt_engine *e = g->engine;
  pthread_mutex_lock(&e->mu);
  if (g->error.code == CKPT_OK && !g->done) {
    ckpt_error err = CKPT_ERROR_INIT;
    ckpt_error_set(&err, CKPT_ECANCELED, "%s: canceled", g->label);
    group_fail_locked(g, &err);
  }
  pthread_mutex_unlock(&e->mu);
}

ckpt_status ckpt_engine_group_note_dir(ckpt_engine_group *g, const char *dir, ckpt_error *err) {
  if (g == NULL || dir == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_engine_group_note_dir: NULL argument");
  ckpt_engine *e = g->engine;
  pthread_mutex_lock(&e->mu);
  int rc = g->dirs_queued ? -2 : ckpt_path_set_add(&g->dirs, dir);
  pthread_mutex_unlock(&e->mu);
  if (rc == -2)
    return ckpt_error_set(err, CKPT_ESTATE, "%s: directory '%s' noted after the group ended",
                          g->label, dir);
  if (rc != 0)
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory noting '%s'", g->label, dir);
  return CKPT_OK;
}

static void free_job(ckpt_future *j) {
  free(j->iov);
  free(j->dependents);
  free(j->error);
  free(j->path);
  free(j);
}

void ckpt_engine_group_free(ckpt_engine_group *g) {
  if (g == NULL)
    return;
  ckpt_engine *e = g->engine;
  ckpt_engine_group_cancel(g);
  pthread_mutex_lock(&e->mu);
  g->sealed = true;
  group_check_end_locked(g);
  while (!g->done)
    pthread_cond_wait(&e->done_cv, &e->mu);
  if (g->prev != NULL)
    g->prev->next = g->next;
  else
    e->groups = g->next;
  if (g->next != NULL)
    g->next->prev = g->prev;
  pthread_mutex_unlock(&e->mu);

  for (ckpt_engine_file *f = g->files, *next; f != NULL; f = next) {
    next = f->next;
    /* Only files whose close was never submitted (or was canceled before it ran) are still
     * open; the group already failed for them. */
    ckpt_error ignored = CKPT_ERROR_INIT;
    if (f->fd_buffered >= 0)
      ckpt_io_close(e->io, f->fd_buffered, f->path, &ignored);
    if (f->fd >= 0)
      ckpt_io_close(e->io, f->fd, f->path, &ignored);
    pthread_mutex_destroy(&f->wb_lock);
    free(f->since);
    free(f->path);
    free(f);
  }
  for (ckpt_future *j = g->all_head, *next; j != NULL; j = next) {
    next = j->all_next;
    free_job(j);
  }
  ckpt_path_set_clear(&g->dirs);
  if (g->sync_fd >= 0) {
    ckpt_error ignored = CKPT_ERROR_INIT;
    ckpt_io_close(e->io, g->sync_fd, g->sync_dir, &ignored);
  }
  free(g->sync_dir);
  free(g->label);
  free(g);
}

/* ---------------------------------------------------------------- submission */

/* Adds `dep` as a prerequisite of j unless it is already done (mu held). 0 or -1 (ENOMEM). */
static int add_dep_locked(ckpt_future *j, ckpt_future *dep) {
  if (dep == NULL || dep->state == ENGINE_JOB_DONE)
    return 0;
  if (dep->n_dependents == dep->cap_dependents) {
    size_t ncap = dep->cap_dependents ? dep->cap_dependents * 2 : 4;
    ckpt_future **nd = realloc(dep->dependents, ncap * sizeof *nd);
    if (nd == NULL)
      return -1;
    dep->dependents = nd;
    dep->cap_dependents = ncap;
  }
  dep->dependents[dep->n_dependents++] = j;
  j->deps_pending++;
  return 0;
}

/* Undoes add_dep_locked for every prerequisite of a job that could not be submitted. */
static void remove_dep_locked(ckpt_future *j, ckpt_future *dep) {
  if (dep == NULL)
    return;
  for (size_t i = 0; i < dep->n_dependents; i++) {
    if (dep->dependents[i] == j) {
      dep->dependents[i] = dep->dependents[--dep->n_dependents];
      return;
    }
  }
}

typedef struct submit_req {
  engine_job_kind kind;
  ckpt_engine_file *file;
  void *buf;
  size_t len;
  uint64_t offset;
  ckpt_engine_fn fn;
  void *fn_arg;
  const char *path;
  bool final_dir_sync;
  bool then_close;         /* FSYNC submitted by ckpt_engine_file_close */
  const struct iovec *iov; /* WRITEV: copied into the job */
  size_t iovcnt;
} submit_req;

static ckpt_status alloc_job(ckpt_engine_group *g, const submit_req *r,
                             const ckpt_engine_job_opts *opts, ckpt_future **out, ckpt_error *err) {
  ckpt_future *j = calloc(1, sizeof *j);
  if (j == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory for a job", g->label);
  j->group = g;
  j->kind = r->kind;
  j->file = r->file;
  j->buf = r->buf;
  j->len = r->len;
  j->offset = r->offset;
  j->fn = r->fn;
  j->fn_arg = r->fn_arg;
  j->final_dir_sync = r->final_dir_sync;
  j->then_close = r->then_close;
  j->state = ENGINE_JOB_WAITING;
  if (r->iovcnt > 0) {
    j->iov = malloc(r->iovcnt * sizeof *j->iov);
    if (j->iov == NULL) {
      free(j);
      return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory for a job", g->label);
    }
    memcpy(j->iov, r->iov, r->iovcnt * sizeof *j->iov);
    j->iovcnt = r->iovcnt;
  }
  const char *name = r->path != NULL ? r->path : (opts != NULL ? opts->label : NULL);
  if (name != NULL) {
    j->path = dup_str(name);
    if (j->path == NULL) {
      free(j);
      return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory for a job", g->label);
    }
  }
  if (opts != NULL) {
    j->on_done = opts->on_done;
    j->on_done_arg = opts->on_done_arg;
  }
  *out = j;
  return CKPT_OK;
}

/* The function of gate jobs (ckpt_engine_job_opts.gate): their prerequisites are the point. */
static ckpt_status gate_fn(void *arg, ckpt_error *err) {
  (void)arg;
  (void)err;
  return CKPT_OK;
}

/* The core of every submission: validates, allocates, waits for the budget, links the
 * prerequisites (the explicit ones, plus the file's open or barrier rules) and queues the job
 * when nothing holds it back. */

static ckpt_status submit(ckpt_engine_group *g, const submit_req *r,
                          const ckpt_engine_job_opts *opts, ckpt_future **fut, ckpt_error *err) {
  if (fut != NULL)
    *fut = NULL;
  ckpt_engine *e = g->engine;
  ckpt_future *j = NULL, *gate = NULL;
  ckpt_status st = alloc_job(g, r, opts, &j, err);
  if (st != CKPT_OK)
    return st;
  if (opts != NULL && opts->gate != NULL) {
    *opts->gate = NULL;
    submit_req gr = {.kind = ENGINE_JOB_CALL, .fn = gate_fn};
    ckpt_engine_job_opts go = {.label = "gate"};
    st = r->kind == ENGINE_JOB_CALL
             ? alloc_job(g, &gr, &go, &gate, err)
             : ckpt_error_set(err, CKPT_EINVAL, "%s: only a function job has a gate", g->label);
    if (st != CKPT_OK) {
      free_job(j);
      return st;
    }
  }
  bool barrier = r->kind == ENGINE_JOB_FSYNC || r->kind == ENGINE_JOB_CLOSE;
  uint64_t budget =
      (r->kind == ENGINE_JOB_READ || r->kind == ENGINE_JOB_WRITE || r->kind == ENGINE_JOB_WRITEV)
          ? r->len
          : 0;
  bool reserved = opts != NULL && opts->budget_reserved;

  pthread_mutex_lock(&e->mu);
  const char *why = NULL;
  if (g->sealed && !r->final_dir_sync && tl_running_group != g)
    why = "the group is sealed";
  else if (r->file != NULL && r->file->close_submitted)
    why = "the file was already closed";
  else if (r->file != NULL && r->file->closing && r->kind != ENGINE_JOB_CLOSE)
    why = "the file is being closed";
  for (size_t i = 0; why == NULL && opts != NULL && i < opts->n_after; i++) {
    if (opts->after[i] == NULL || opts->after[i]->group != g)
      why = "a prerequisite is NULL or belongs to another group";
  }
  if (why != NULL) {
    pthread_mutex_unlock(&e->mu);
    const char *what = r->file != NULL ? r->file->path : (j->path ? j->path : "job");
    ckpt_error_set(err, CKPT_EINVAL, "%s: cannot submit a job on '%s': %s", g->label, what, why);
    free_job(j);
    if (gate != NULL)
      free_job(gate);
    return CKPT_EINVAL;
  }
  if (budget > 0 && !reserved)
    reserve_locked(e, budget);
  j->budget = budget;
  if (r->then_close)
    r->file->closing = true; /* its fsync may release the descriptors: no job may follow */

  int rc = 0;
  size_t linked = 0;
  for (size_t i = 0; rc == 0 && opts != NULL && i < opts->n_after; i++, linked++)
    rc = add_dep_locked(j, opts->after[i]);
  ckpt_engine_file *f = r->file;
  ckpt_future **since_extra = NULL;
  if (rc == 0 && f != NULL && r->kind != ENGINE_JOB_OPEN) {
    rc = add_dep_locked(j, f->open_job);
    if (rc == 0 && barrier) {
      rc = add_dep_locked(j, f->last_barrier);
      for (size_t i = 0; rc == 0 && i < f->n_since; i++)
        rc = add_dep_locked(j, f->since[i]);
    } else if (rc == 0) {
      /* Remember it for the next barrier; done entries are dropped when the array fills. */
      if (f->n_since == f->cap_since) {
        size_t k = 0;
        for (size_t i = 0; i < f->n_since; i++)
          if (f->since[i]->state != ENGINE_JOB_DONE)
            f->since[k++] = f->since[i];
        f->n_since = k;
      }
      if (f->n_since == f->cap_since) {
        size_t ncap = f->cap_since ? f->cap_since * 2 : 8;
        since_extra = realloc(f->since, ncap * sizeof *since_extra);
        if (since_extra == NULL) {
          rc = -1;
        } else {
          f->since = since_extra;
          f->cap_since = ncap;
        }
      }
    }
  }
  if (rc == 0 && gate != NULL)
    rc = add_dep_locked(gate, j);
  if (rc != 0) {
    /* Unlink from everything linked so far; the job never existed. */
    for (size_t i = 0; opts != NULL && i < opts->n_after && i < linked; i++)
      remove_dep_locked(j, opts->after[i]);
    if (f != NULL) {
      remove_dep_locked(j, f->open_job);
      remove_dep_locked(j, f->last_barrier);
      for (size_t i = 0; i < f->n_since; i++)
        remove_dep_locked(j, f->since[i]);
    }
    if (budget > 0) {
      e->stats.inflight_bytes -= budget;
      pthread_cond_broadcast(&e->budget_cv);
    }
    pthread_mutex_unlock(&e->mu);
    free_job(j);
    if (gate != NULL)
      free_job(gate);
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory submitting a job", g->label);
  }
  if (f != NULL) {
    if (barrier) {
      f->last_barrier = j;
      f->n_since = 0;
      if (r->kind == ENGINE_JOB_CLOSE)
        f->close_submitted = true;
    } else if (r->kind != ENGINE_JOB_OPEN) {
      f->since[f->n_since++] = j;
    }
  }
  j->all_next = g->all_head;
  g->all_head = j;
  g->outstanding++;
  if (gate != NULL) {
    gate->all_next = g->all_head;
    g->all_head = gate;
    g->outstanding++;
    *opts->gate = gate; /* before j can start: j may read it */
  }
  if (j->deps_pending == 0)
    push_ready_locked(e, j);
  pthread_mutex_unlock(&e->mu);
  if (fut != NULL)
    *fut = j;
  return CKPT_OK;
}

static void queue_final_dir_syncs_locked(ckpt_engine_group *g) {
  ckpt_engine *e = g->engine;
  bool one = e->durability == CKPT_ENGINE_DURABILITY_SYNCFS; /* one syncfs covers them all */
  size_t queued = 0;
  for (size_t i = 0; i < g->dirs.cap; i++) {
    const char *d = g->dirs.slots[i];
    if (d == NULL)
      continue;
    if (one && queued > 0)
      break;
    ckpt_future *j = calloc(1, sizeof *j);
    char *p = dup_str(d);
    if (j == NULL || p == NULL) {
      free(j);
      free(p);
      ckpt_error err = CKPT_ERROR_INIT;
      ckpt_error_set(&err, CKPT_ENOMEM, "%s: out of memory queuing the fsync of '%s'", g->label, d);
      group_fail_locked(g, &err);
      return;
    }
    j->group = g;
    j->kind = ENGINE_JOB_FSYNC_DIR;
    j->path = p;
    j->final_dir_sync = true;
    queued++;
    j->all_next = g->all_head;
    g->all_head = j;
    g->outstanding++;
    push_ready_locked(e, j);
  }
}

ckpt_status ckpt_engine_file_open(ckpt_engine_group *g, const char *path, int flags, int mode,
                                  unsigned file_flags, ckpt_engine_file **out, ckpt_error *err) {
  if (out != NULL)
    *out = NULL;
  if (g == NULL || path == NULL || out == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_engine_file_open: NULL argument");
  if (file_flags & ~CKPT_ENGINE_FILE_DURABLE)
    return ckpt_error_set(err, CKPT_EINVAL, "%s: unknown file flags 0x%x for '%s'", g->label,
                          file_flags, path);
  ckpt_engine_file *f = calloc(1, sizeof *f);
  char *dir = NULL;
  if (f == NULL || (f->path = dup_str(path)) == NULL ||
      ((file_flags & CKPT_ENGINE_FILE_DURABLE) && (dir = ckpt_path_parent(path)) == NULL)) {
    if (f != NULL)
      free(f->path);
    free(f);
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory opening '%s'", g->label, path);
  }
  f->group = g;
  f->flags = flags;
  f->mode = mode;
  f->file_flags = file_flags;
  f->fd = f->fd_buffered = -1;
  pthread_mutex_init(&f->wb_lock, NULL);
  if (dir != NULL) {
    ckpt_status st = ckpt_engine_group_note_dir(g, dir, err);
    free(dir);
    if (st != CKPT_OK) {
      pthread_mutex_destroy(&f->wb_lock);
      free(f->path);
      free(f);
      return st;
    }
  }
  submit_req r = {.kind = ENGINE_JOB_OPEN, .file = f};
  /* Linked into the group first so that group_free closes it whatever happens next; the open
   * job is submitted with the engine lock taken again inside submit(). */
  ckpt_engine *e = g->engine;
  pthread_mutex_lock(&e->mu);
  f->next = g->files;
  g->files = f;
  f->close_submitted = false;
  pthread_mutex_unlock(&e->mu);
  ckpt_status st = submit(g, &r, NULL, &f->open_job, err);
  if (st != CKPT_OK) {
    /* The record stays in the group (freed with it) but counts as closed: it never opened. */
    pthread_mutex_lock(&e->mu);
    f->close_submitted = true;
    pthread_mutex_unlock(&e->mu);
    return st;
  }
  *out = f;
  return CKPT_OK;
}

ckpt_future *ckpt_engine_file_opened(ckpt_engine_file *f) {
  return f != NULL ? f->open_job : NULL;
}

static ckpt_status check_file(ckpt_engine_group *g, ckpt_engine_file *f, const char *what,
                              ckpt_error *err) {
  if (g == NULL || f == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_engine_%s: NULL group or file", what);
  if (f->group != g)
    return ckpt_error_set(err, CKPT_EINVAL, "%s: %s of '%s', a file of another group", g->label,
                          what, f->path);
  return CKPT_OK;
}

ckpt_status ckpt_engine_write(ckpt_engine_group *g, ckpt_engine_file *f, const void *buf, size_t n,
                              uint64_t offset, const ckpt_engine_job_opts *opts, ckpt_future **fut,
                              ckpt_error *err) {
  ckpt_status st = check_file(g, f, "write", err);
  if (st != CKPT_OK)
    return st;
  if (buf == NULL && n > 0)
    return ckpt_error_set(err, CKPT_EINVAL, "%s: write of '%s' from a NULL buffer", g->label,
                          f->path);
  submit_req r = {.kind = ENGINE_JOB_WRITE,
                  .file = f,
                  .buf = (void *)(uintptr_t)buf,
                  .len = n,
                  .offset = offset};
  return submit(g, &r, opts, fut, err);
}

ckpt_status ckpt_engine_writev(ckpt_engine_group *g, ckpt_engine_file *f, const struct iovec *iov,
                               size_t iovcnt, uint64_t offset, const ckpt_engine_job_opts *opts,
                               ckpt_future **fut, ckpt_error *err) {
  ckpt_status st = check_file(g, f, "writev", err);
  if (st != CKPT_OK)
    return st;
  if (iov == NULL && iovcnt > 0)
    return ckpt_error_set(err, CKPT_EINVAL, "%s: writev of '%s' from a NULL list", g->label,
                          f->path);
  size_t total = 0;
  for (size_t i = 0; i < iovcnt; i++) {
    if (iov[i].iov_base == NULL && iov[i].iov_len > 0)
      return ckpt_error_set(err, CKPT_EINVAL, "%s: writev of '%s': entry %zu is NULL", g->label,
                            f->path, i);
    if (iov[i].iov_len > SIZE_MAX - total)
      return ckpt_error_set(err, CKPT_EINVAL, "%s: writev of '%s': the entries overflow size_t",
                            g->label, f->path);
    total += iov[i].iov_len;
  }
  submit_req r = {.kind = ENGINE_JOB_WRITEV,
                  .file = f,
                  .len = total,
                  .offset = offset,
                  .iov = iov,
                  .iovcnt = iovcnt};
  return submit(g, &r, opts, fut, err);
}

ckpt_status ckpt_engine_run_writev(ckpt_engine *e, ckpt_future *j, ckpt_error *err) {
  ckpt_engine_file *f = j->file;
  /* O_DIRECT would demand every entry aligned: vectored writes use the buffered twin. */
  int fd = f->direct && f->fd_buffered >= 0 ? f->fd_buffered : f->fd;
  struct iovec *v = j->iov;
  size_t i = 0, n = j->iovcnt;
  uint64_t done = 0;
  for (;;) {
    while (i < n && v[i].iov_len == 0)
      i++;
    if (i == n)
      break;
    size_t cnt = n - i < (size_t)IOV_MAX ? n - i : (size_t)IOV_MAX;
    int fault = ckpt_io_fault_check(e->io, CKPT_IO_WRITE, f->path);
    if (fault > 0)
      return ckpt_error_errno(err, fault, "cannot write '%s' at offset %llu", f->path,
                              (unsigned long long)(j->offset + done));
    /* Injected short write: the call covers half of its bytes (at least one); the entry where
     * that half ends is shortened for the call and restored after it. */
    size_t cut = SIZE_MAX, cut_len = 0;
    if (fault == -1) {
      size_t bytes = 0;
      for (size_t k = 0; k < cnt; k++)
        bytes += v[i + k].iov_len;
      size_t want = (bytes + 1) / 2, acc = 0, k = 0;
      while (acc + v[i + k].iov_len < want)
        acc += v[i + k++].iov_len;
      cut = i + k;
      cut_len = v[cut].iov_len;
      v[cut].iov_len = want - acc;
      cnt = k + 1;
    }
    ssize_t w = pwritev(fd, &v[i], (int)cnt, (off_t)(j->offset + done));
    int en = errno;
    if (cut != SIZE_MAX)
      v[cut].iov_len = cut_len;
    if (w < 0) {
      if (en == EINTR)
        continue;
      return ckpt_error_errno(err, en, "cannot write '%s' at offset %llu", f->path,
                              (unsigned long long)(j->offset + done));
    }
    if (w == 0)
      return ckpt_error_set(err, CKPT_EIO,
                            "cannot write '%s': the device accepted no bytes at offset %llu",
                            f->path, (unsigned long long)(j->offset + done));
    done += (uint64_t)w;
    /* Resume mid-entry: consume w bytes from the front of the list. */
    size_t left = (size_t)w;
    while (left > 0) {
      size_t take = left < v[i].iov_len ? left : v[i].iov_len;
      v[i].iov_base = (unsigned char *)v[i].iov_base + take;
      v[i].iov_len -= take;
      left -= take;
      if (v[i].iov_len == 0)
        i++;
    }
  }
  j->bytes_done = j->len;
  ckpt_engine_after_write(e, f, j->offset, j->len);
  return CKPT_OK;
}

ckpt_status ckpt_engine_read(ckpt_engine_group *g, ckpt_engine_file *f, void *buf, size_t n,
                             uint64_t offset, const ckpt_engine_job_opts *opts, ckpt_future **fut,
                             ckpt_error *err) {
  ckpt_status st = check_file(g, f, "read", err);
  if (st != CKPT_OK)
    return st;
  if (buf == NULL && n > 0)
    return ckpt_error_set(err, CKPT_EINVAL, "%s: read of '%s' into a NULL buffer", g->label,
                          f->path);
  submit_req r = {.kind = ENGINE_JOB_READ, .file = f, .buf = buf, .len = n, .offset = offset};
  return submit(g, &r, opts, fut, err);
}

ckpt_status ckpt_engine_fsync(ckpt_engine_group *g, ckpt_engine_file *f,
                              const ckpt_engine_job_opts *opts, ckpt_future **fut,
                              ckpt_error *err) {
  ckpt_status st = check_file(g, f, "fsync", err);
  if (st != CKPT_OK)
    return st;
  submit_req r = {.kind = ENGINE_JOB_FSYNC, .file = f};
  return submit(g, &r, opts, fut, err);
}

ckpt_status ckpt_engine_file_close(ckpt_engine_group *g, ckpt_engine_file *f,
                                   const ckpt_engine_job_opts *opts, ckpt_future **fut,
                                   ckpt_error *err) {
  ckpt_status st = check_file(g, f, "close", err);
  if (st != CKPT_OK)
    return st;
  if ((f->file_flags & CKPT_ENGINE_FILE_DURABLE) &&
      g->engine->durability != CKPT_ENGINE_DURABILITY_SYNCFS) {
    /* The fsync as a job of its own, before the close: the io_uring backend batches fsync jobs
     * into its ring, so many files' fsyncs are in the kernel at once (a close runs its fsync as
     * one blocking call on a worker: four at a time). A small array's files wait on the
     * device's cache flush, not on bandwidth, and concurrent flushes are merged. If this
     * submission fails, the close fsyncs by itself. */
    submit_req sync = {.kind = ENGINE_JOB_FSYNC, .file = f, .then_close = true};
    ckpt_error ignored = CKPT_ERROR_INIT;
    (void)submit(g, &sync, NULL, NULL, &ignored);
  }
  submit_req r = {.kind = ENGINE_JOB_CLOSE, .file = f};
  return submit(g, &r, opts, fut, err);
}

/* on_done of a write whose buffer was handed over (ckpt_engine_write_file). */
static void free_written_text(void *arg, void *buf, ckpt_status status) {
  (void)buf;
  (void)status;
  free(arg);
}

ckpt_status ckpt_engine_write_file(ckpt_engine_group *g, const char *path, char *text, size_t len,
                                   ckpt_engine_file **keep_open, ckpt_error *err) {
  ckpt_engine_file *f;
  if (keep_open != NULL)
    *keep_open = NULL;
  ckpt_status st = ckpt_engine_file_open(g, path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0666,
                                         CKPT_ENGINE_FILE_DURABLE, &f, err);
  if (st != CKPT_OK) {
    free(text);
    return st;
  }
  ckpt_engine_job_opts o = {.on_done = free_written_text, .on_done_arg = text};
  st = ckpt_engine_write(g, f, text, len, 0, &o, NULL, err);
  if (st != CKPT_OK)
    free(text); /* not submitted: still ours */
  if (keep_open != NULL) {
    *keep_open = f;
    return st;
  }
  /* Closed even after a failed write submission: an open file would fail the group too, but
   * this way its descriptor is closed by the engine and the first error stays the real one. */
  ckpt_status cst = ckpt_engine_file_close(g, f, NULL, NULL, st == CKPT_OK ? err : NULL);
  return st != CKPT_OK ? st : cst;
}

ckpt_status ckpt_engine_fsync_dir(ckpt_engine_group *g, const char *dir,
                                  const ckpt_engine_job_opts *opts, ckpt_future **fut,
                                  ckpt_error *err) {
  if (g == NULL || dir == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_engine_fsync_dir: NULL argument");
  submit_req r = {.kind = ENGINE_JOB_FSYNC_DIR, .path = dir};
  return submit(g, &r, opts, fut, err);
}

ckpt_status ckpt_engine_call(ckpt_engine_group *g, ckpt_engine_fn fn, void *arg,
                             const ckpt_engine_job_opts *opts, ckpt_future **fut, ckpt_error *err) {
  if (g == NULL || fn == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_engine_call: NULL group or function");
  submit_req r = {.kind = ENGINE_JOB_CALL, .fn = fn, .fn_arg = arg};
  return submit(g, &r, opts, fut, err);
}

ckpt_status ckpt_engine_add_after(ckpt_future *job, ckpt_future *pre, ckpt_error *err) {
  if (job == NULL || pre == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_engine_add_after: NULL job");
  ckpt_engine *e = job->group->engine;
  pthread_mutex_lock(&e->mu);
  const char *why = job->state != ENGINE_JOB_WAITING ? "the job is no longer waiting"
                    : pre->group != job->group       ? "the jobs belong to different groups"
                                                     : NULL;
  int rc = why == NULL ? add_dep_locked(job, pre) : 0;
  pthread_mutex_unlock(&e->mu);
  if (why != NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "%s: cannot add a prerequisite: %s", job->group->label,
                          why);
  if (rc != 0)
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", job->group->label);
  return CKPT_OK;
}

/* ---------------------------------------------------------------- futures */

bool ckpt_future_poll(ckpt_future *f) {
  ckpt_engine *e = f->group->engine;
  pthread_mutex_lock(&e->mu);
  bool done = f->state == ENGINE_JOB_DONE;
  pthread_mutex_unlock(&e->mu);
  return done;
}

ckpt_status ckpt_future_wait(ckpt_future *f, ckpt_error *err) {
  if (f == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_future_wait: future is NULL");
  ckpt_engine *e = f->group->engine;
  pthread_mutex_lock(&e->mu);
  if (f->state != ENGINE_JOB_DONE && tl_worker_of == e) {
    pthread_mutex_unlock(&e->mu);
    return ckpt_error_set(err, CKPT_ESTATE,
                          "%s: a job waited for from one of its engine's "
                          "worker threads (that could deadlock); use a prerequisite instead",
                          f->group->label);
  }
  while (f->state != ENGINE_JOB_DONE)
    pthread_cond_wait(&e->done_cv, &e->mu);
  ckpt_status st = f->status;
  if (st != CKPT_OK && err != NULL && err->code == CKPT_OK) {
    if (f->error != NULL) {
      *err = *f->error;
    } else {
      ckpt_error_set(err, st, "%s: job failed (its message was lost to low memory)",
                     f->group->label);
    }
  }
  pthread_mutex_unlock(&e->mu);
  return st;
}

size_t ckpt_future_bytes(ckpt_future *f) {
  ckpt_engine *e = f->group->engine;
  pthread_mutex_lock(&e->mu);
  size_t n = f->state == ENGINE_JOB_DONE ? f->bytes_done : 0;
  pthread_mutex_unlock(&e->mu);
  return n;
}
