/* io/uring_backend.c — the io_uring backend of the I/O engine (liburing).
 *
 * Each worker thread owns one ring. A worker takes a batch of ready read/write/fsync jobs (up
 * to the ring depth) and keeps the ring full with their pieces: a large job is cut into
 * segment_bytes pieces submitted together, so one 128 MiB chunk or a hundred 4 KiB chunks are
 * all in the kernel at once instead of one blocking call at a time. Short transfers are
 * completed by resubmitting the rest of the piece; EINTR/EAGAIN results are resubmitted.
 *
 * The fault hook of ckpt_io is consulted (and the operation counted) before every submission,
 * exactly as ckpt_io consults it before every system call: an errno fails the piece's job, -1
 * on a WRITE submits half the piece, which then completes short and is finished like a real
 * short write.
 *
 * A job finishes only when none of its pieces is still in the kernel, so its buffer is never
 * touched after its completion is reported. */
#include <errno.h>
#include <liburing.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "io/engine_internal.h"

int ckpt_engine_uring_probe(unsigned depth) {
  struct io_uring ring;
  int rc = io_uring_queue_init(depth, &ring, 0);
  if (rc < 0)
    return -rc;
  io_uring_queue_exit(&ring);
  return 0;
}

/* One piece in the kernel (or waiting to be resubmitted). */
typedef struct seg {
  size_t job; /* index in the batch */
  size_t pos; /* offset of the piece in the job's buffer */
  size_t len; /* bytes still wanted from this piece */
} seg;

/* Progress of one job of the batch. */
typedef struct job_state {
  size_t next; /* bytes of the buffer handed out to pieces so far */
  size_t got;  /* bytes transferred */
  unsigned inflight;
  bool failed, eof, fsync_sent;
  bool sync_done; /* a WRITEV job, already run with pwritev before the ring's pieces */
} job_state;

typedef struct uring_ctx {
  struct io_uring ring;
  unsigned depth;
  bool broken; /* submission failed unrecoverably: the rest of this worker uses pwrite */
  seg *segs;
  unsigned *free_slots;
  unsigned nfree;
  unsigned *retry; /* slots whose piece must be submitted again */
  unsigned nretry;
  job_state *js;
} uring_ctx;

static void ctx_free(uring_ctx *c) {
  if (c == NULL)
    return;
  free(c->segs);
  free(c->free_slots);
  free(c->retry);
  free(c->js);
  free(c);
}

static ckpt_status ur_worker_init(ckpt_engine *e, void **out, ckpt_error *err) {
  *out = NULL;
  unsigned depth = ckpt_engine_uring_depth(e);
  uring_ctx *c = calloc(1, sizeof *c);
  if (c == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "io_uring worker: out of memory");
  c->depth = depth;
  c->segs = calloc(depth, sizeof *c->segs);
  c->free_slots = calloc(depth, sizeof *c->free_slots);
  c->retry = calloc(depth, sizeof *c->retry);
  c->js = calloc(depth, sizeof *c->js);
  if (c->segs == NULL || c->free_slots == NULL || c->retry == NULL || c->js == NULL) {
    ctx_free(c);
    return ckpt_error_set(err, CKPT_ENOMEM, "io_uring worker: out of memory");
  }
  /* Twice the completion entries of the submission queue: never more than depth pieces are in
   * flight, so the completion queue cannot overflow. */
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = IORING_SETUP_CQSIZE;
  p.cq_entries = depth * 2;
  int rc = io_uring_queue_init_params(depth, &c->ring, &p);
  if (rc < 0) {
    ctx_free(c);
    return ckpt_error_errno(err, -rc, "io_uring_queue_init(%u)", depth);
  }
  *out = c;
  return CKPT_OK;
}

static void ur_worker_fini(void *p) {
  uring_ctx *c = p;
  if (c == NULL)
    return;
  io_uring_queue_exit(&c->ring);
  ctx_free(c);
}

static size_t ur_max_batch(ckpt_engine *e) {
  return ckpt_engine_uring_depth(e);
}

static ckpt_io_op op_of(const ckpt_future *j) {
  return j->kind == ENGINE_JOB_WRITE  ? CKPT_IO_WRITE
         : j->kind == ENGINE_JOB_READ ? CKPT_IO_READ
                                      : CKPT_IO_FSYNC;
}

static const char *verb_of(const ckpt_future *j) {
  return j->kind == ENGINE_JOB_WRITE ? "write" : j->kind == ENGINE_JOB_READ ? "read" : "fsync";
}

/* Records a failure of job i (first error of the job wins) and stops new pieces of it. */
static void fail_job(ckpt_future *j, job_state *s, ckpt_error *e, int errnum, uint64_t at) {
  s->failed = true;
  if (j->kind == ENGINE_JOB_FSYNC) {
    ckpt_error_errno(e, errnum, "cannot fsync '%s'", j->file->path);
  } else {
    ckpt_error_errno(e, errnum, "cannot %s '%s' at offset %llu", verb_of(j), j->file->path,
                     (unsigned long long)at);
  }
}

/* Prepares the SQE for the piece in slot k, consulting the fault hook. Returns false when the
 * hook failed it (the job is marked failed and the slot released). */
static bool prep_piece(ckpt_engine *e, uring_ctx *c, ckpt_future **jobs, ckpt_error *errs,
                       unsigned k) {
  seg *s = &c->segs[k];
  ckpt_future *j = jobs[s->job];
  job_state *st = &c->js[s->job];
  int fault = ckpt_io_fault_check(ckpt_engine_io(e), op_of(j), j->file->path);
  if (fault > 0) {
    fail_job(j, st, &errs[s->job], fault, j->offset + s->pos);
    c->free_slots[c->nfree++] = k;
    return false;
  }
  struct io_uring_sqe *sqe = io_uring_get_sqe(&c->ring);
  /* Cannot be NULL: pieces in flight never exceed the ring's depth. */
  if (j->kind == ENGINE_JOB_FSYNC) {
    io_uring_prep_fsync(sqe, j->file->fd, 0);
  } else {
    size_t len = s->len;
    /* A forced short write submits half; the completion is then short and finished below. */
    if (fault == -1 && j->kind == ENGINE_JOB_WRITE)
      len = (len + 1) / 2;
    unsigned char *p = (unsigned char *)j->buf + s->pos;
    uint64_t off = j->offset + s->pos;
    int fd = ckpt_engine_pick_fd(j->file, p, len, off);
    if (len > 0x7ffff000u)
      len = 0x7ffff000u; /* the kernel's per-call limit */
    if (j->kind == ENGINE_JOB_WRITE) {
      io_uring_prep_write(sqe, fd, p, (unsigned)len, off);
    } else {
      io_uring_prep_read(sqe, fd, p, (unsigned)len, off);
    }
  }
  io_uring_sqe_set_data64(sqe, (uint64_t)k);
  st->inflight++;
  return true;
}

/* Hands out the next piece of some job that still has work, or returns false. */
static bool next_piece(ckpt_engine *e, uring_ctx *c, ckpt_future **jobs, size_t n, size_t *cursor,
                       unsigned *slot) {
  size_t seg_bytes = ckpt_engine_segment_bytes(e);
  for (size_t tries = 0; tries < n; tries++) {
    size_t i = (*cursor + tries) % n;
    ckpt_future *j = jobs[i];
    job_state *st = &c->js[i];
    if (st->failed || st->eof || st->sync_done)
      continue;
    bool has_work = j->kind == ENGINE_JOB_FSYNC ? !st->fsync_sent : st->next < j->len;
    if (!has_work)
      continue;
    unsigned k = c->free_slots[--c->nfree];
    seg *s = &c->segs[k];
    s->job = i;
    if (j->kind == ENGINE_JOB_FSYNC) {
      s->pos = 0;
      s->len = 0;
      st->fsync_sent = true;
    } else {
      size_t len = j->len - st->next;
      if (len > seg_bytes)
        len = seg_bytes;
      s->pos = st->next;
      s->len = len;
      st->next += len;
    }
    /* Round robin at job granularity keeps one huge job from starving small ones. */
    *cursor = i + 1;
    *slot = k;
    return true;
  }
  return false;
}

/* Applies one completion. */
static void on_cqe(ckpt_engine *e, uring_ctx *c, ckpt_future **jobs, ckpt_error *errs, unsigned k,
                   int res) {
  seg *s = &c->segs[k];
  ckpt_future *j = jobs[s->job];
  job_state *st = &c->js[s->job];
  st->inflight--;
  bool release = true;
  if (res < 0) {
    if ((res == -EINTR || res == -EAGAIN) && !st->failed) {
      c->retry[c->nretry++] = k;
      release = false;
    } else if (!st->failed) {
      fail_job(j, st, &errs[s->job], -res, j->offset + s->pos);
    }
  } else if (j->kind == ENGINE_JOB_FSYNC) {
    /* A durable close's fsync releases its descriptors at once, not at the batch's end. */
    if (!st->failed && ckpt_engine_release_synced(e, j, &errs[s->job]) != CKPT_OK)
      st->failed = true;
  } else if (res == 0 && s->len > 0) {
    if (j->kind == ENGINE_JOB_READ) {
      st->eof = true; /* pieces beyond the end read nothing as well */
    } else if (!st->failed) {
      st->failed = true;
      ckpt_error_set(&errs[s->job], CKPT_EIO,
                     "cannot write '%s': the device accepted no bytes at offset %llu",
                     j->file->path, (unsigned long long)(j->offset + s->pos));
    }
  } else {
    size_t r = (size_t)res;
    st->got += r;
    if (r < s->len && !st->failed) {
      s->pos += r;
      s->len -= r;
      c->retry[c->nretry++] = k;
      release = false;
      ckpt_engine_count_short(e);
    }
  }
  if (release)
    c->free_slots[c->nfree++] = k;
}

/* Runs a batch with the portable backend (ring unusable). */
static void run_portable(ckpt_engine *e, ckpt_future **jobs, ckpt_error *errs, size_t n) {
  ckpt_engine_pwrite_backend.run_io(e, NULL, jobs, errs, n);
}

static void ur_run_io(ckpt_engine *e, void *p, ckpt_future **jobs, ckpt_error *errs, size_t n) {
  uring_ctx *c = p;
  if (c->broken) {
    run_portable(e, jobs, errs, n);
    return;
  }
  if (n > c->depth)
    n = c->depth; /* the worker never asks for more */
  for (size_t i = 0; i < n; i++)
    memset(&c->js[i], 0, sizeof c->js[i]);
  c->nfree = 0;
  for (unsigned k = 0; k < c->depth; k++)
    c->free_slots[c->nfree++] = c->depth - 1 - k;
  c->nretry = 0;
  /* Vectored writes run here with pwritev (ckpt_engine_run_writev), not as IORING_OP_WRITEV
   * pieces: splitting an iovec list into segment-sized pieces and resubmitting short ones is
   * not worth it for their use (packed segments of a few MiB, several workers in parallel). */
  for (size_t i = 0; i < n; i++) {
    if (jobs[i]->kind != ENGINE_JOB_WRITEV)
      continue;
    c->js[i].sync_done = true;
    jobs[i]->status = ckpt_engine_run_writev(e, jobs[i], &errs[i]);
  }
  size_t cursor = 0;
  unsigned inflight = 0; /* accepted by the kernel, completion not yet seen */
  unsigned queued = 0;   /* prepared in the ring, not yet accepted */
  unsigned busy_spins = 0;
  bool submit_failed = false;

  for (;;) {
    if (!submit_failed) {
      while (c->nretry > 0) {
        unsigned k = c->retry[--c->nretry];
        if (c->js[c->segs[k].job].failed) {
          c->free_slots[c->nfree++] = k;
          continue;
        }
        if (prep_piece(e, c, jobs, errs, k))
          queued++;
      }
      unsigned k;
      while (c->nfree > 0 && next_piece(e, c, jobs, n, &cursor, &k)) {
        if (prep_piece(e, c, jobs, errs, k))
          queued++;
      }
    }
    if (queued > 0 && !submit_failed) {
      int rc = io_uring_submit(&c->ring);
      if (rc >= 0) {
        inflight += (unsigned)rc;
        queued -= (unsigned)rc < queued ? (unsigned)rc : queued;
        busy_spins = 0;
      } else if ((rc == -EINTR || rc == -EAGAIN || rc == -EBUSY) && busy_spins++ < 10000) {
        /* The kernel is short of resources: the pieces stay queued in the ring and go with
         * the next submit, once completions have freed some. */
        if (inflight == 0)
          sched_yield();
      } else {
        /* Unrecoverable. Pieces still queued are never submitted (waiting for completions
         * below asks the kernel to consume no submissions), so their buffers are safe; the
         * jobs fail and this worker uses the portable backend from now on. */
        submit_failed = true;
        c->broken = true;
        for (size_t i = 0; i < n; i++) {
          if (!c->js[i].failed) {
            c->js[i].failed = true;
            ckpt_error_errno(&errs[i], -rc, "cannot submit %s of '%s' to io_uring",
                             verb_of(jobs[i]), jobs[i]->file->path);
          }
        }
      }
    }
    if (inflight == 0) {
      if (submit_failed || (queued == 0 && c->nretry == 0))
        break;
      continue;
    }
    struct io_uring_cqe *cqe;
    int rc = io_uring_wait_cqe(&c->ring, &cqe);
    if (rc < 0) {
      /* EINTR; anything else cannot happen with a valid ring. Either way the jobs stay
       * unfinished rather than report buffers free while the kernel may still use them. */
      if (rc != -EINTR)
        sched_yield();
      continue;
    }
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&c->ring, head, cqe) {
      on_cqe(e, c, jobs, errs, (unsigned)io_uring_cqe_get_data64(cqe), cqe->res);
      seen++;
    }
    io_uring_cq_advance(&c->ring, seen);
    inflight -= seen;
  }

  for (size_t i = 0; i < n; i++) {
    ckpt_future *j = jobs[i];
    job_state *st = &c->js[i];
    if (st->sync_done)
      continue; /* status and bytes_done set by ckpt_engine_run_writev */
    j->bytes_done = st->got;
    if (st->failed) {
      j->status = errs[i].code != CKPT_OK ? errs[i].code : CKPT_EIO;
      continue;
    }
    j->status = CKPT_OK;
    if (j->kind == ENGINE_JOB_WRITE)
      ckpt_engine_after_write(e, j->file, j->offset, j->len);
  }
}

const engine_backend_ops ckpt_engine_uring_backend = {
    .id = CKPT_ENGINE_BACKEND_URING,
    .worker_init = ur_worker_init,
    .worker_fini = ur_worker_fini,
    .max_batch = ur_max_batch,
    .run_io = ur_run_io,
};
