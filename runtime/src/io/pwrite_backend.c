/* io/pwrite_backend.c — the portable backend of the I/O engine: each worker thread runs one
 * read, write or fsync at a time with pread/pwrite/fsync through ckpt/io.h (which consults the
 * fault hook and completes short transfers), and vectored writes with the engine's pwritev loop
 * (ckpt_engine_run_writev). Used when io_uring is refused by the kernel or
 * not wanted (CKPT_IO_BACKEND=pwrite); parallelism comes from the worker threads. */
#include <errno.h>
#include <limits.h>
#include <unistd.h>

#include "io/engine_internal.h"

/* Writes through an O_DIRECT descriptor. Same contract as ckpt_io_pwrite_all, but when a write
 * comes back short (the kernel, or the fault hook's -1) the remainder is usually no longer
 * 4 KiB-aligned, and O_DIRECT would refuse it: it goes through the buffered twin instead. */
static ckpt_status direct_write(ckpt_engine *e, ckpt_engine_file *f, const unsigned char *buf,
                                size_t n, uint64_t offset, ckpt_error *err) {
  ckpt_io *io = ckpt_engine_io(e);
  size_t done = 0;
  while (done < n) {
    int fd = ckpt_engine_pick_fd(f, buf + done, n - done, offset + done);
    if (fd != f->fd) {
      return ckpt_io_pwrite_all(io, fd, f->path, buf + done, n - done, offset + done, err);
    }
    size_t want = n - done;
    if (want > (size_t)SSIZE_MAX)
      want = (size_t)SSIZE_MAX & ~(size_t)(CKPT_ENGINE_DIRECT_ALIGN - 1);
    int fault = ckpt_io_fault_check(io, CKPT_IO_WRITE, f->path);
    if (fault > 0)
      return ckpt_error_errno(err, fault, "cannot write '%s'", f->path);
    if (fault == -1)
      want = (want + 1) / 2;
    ssize_t w = pwrite(fd, buf + done, want, (off_t)(offset + done));
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return ckpt_error_errno(err, errno, "cannot write '%s' (O_DIRECT) at offset %llu", f->path,
                              (unsigned long long)(offset + done));
    }
    if (w == 0) {
      return ckpt_error_set(err, CKPT_EIO,
                            "cannot write '%s': the device accepted no bytes at offset %llu",
                            f->path, (unsigned long long)(offset + done));
    }
    done += (size_t)w;
  }
  return CKPT_OK;
}

static ckpt_status run_one(ckpt_engine *e, ckpt_future *j, ckpt_error *err) {
  ckpt_engine_file *f = j->file;
  ckpt_io *io = ckpt_engine_io(e);
  ckpt_status st;
  switch (j->kind) {
    case ENGINE_JOB_WRITE:
      if (f->direct) {
        st = direct_write(e, f, j->buf, j->len, j->offset, err);
      } else {
        st = ckpt_io_pwrite_all(io, f->fd, f->path, j->buf, j->len, j->offset, err);
      }
      if (st == CKPT_OK) {
        j->bytes_done = j->len;
        ckpt_engine_after_write(e, f, j->offset, j->len);
      }
      return st;
    case ENGINE_JOB_WRITEV:
      return ckpt_engine_run_writev(e, j, err);
    case ENGINE_JOB_READ: {
      int fd = ckpt_engine_pick_fd(f, j->buf, j->len, j->offset);
      size_t got = 0;
      st = ckpt_io_pread_all(io, fd, f->path, j->buf, j->len, j->offset, &got, err);
      j->bytes_done = got;
      return st;
    }
    case ENGINE_JOB_FSYNC:
      return ckpt_io_fsync(io, f->fd, f->path, err);
    default:
      return ckpt_error_set(err, CKPT_EINVAL, "internal: pwrite backend given job kind %d",
                            (int)j->kind);
  }
}

static ckpt_status pw_worker_init(ckpt_engine *e, void **ctx, ckpt_error *err) {
  (void)e;
  (void)err;
  *ctx = NULL;
  return CKPT_OK;
}

static void pw_worker_fini(void *ctx) {
  (void)ctx;
}

static size_t pw_max_batch(ckpt_engine *e) {
  (void)e;
  return 1; /* one blocking call at a time; the threads give the parallelism */
}

static void pw_run_io(ckpt_engine *e, void *ctx, ckpt_future **jobs, ckpt_error *errs, size_t n) {
  (void)ctx;
  for (size_t i = 0; i < n; i++)
    jobs[i]->status = run_one(e, jobs[i], &errs[i]);
}

const engine_backend_ops ckpt_engine_pwrite_backend = {
    .id = CKPT_ENGINE_BACKEND_PWRITE,
    .worker_init = pw_worker_init,
    .worker_fini = pw_worker_fini,
    .max_batch = pw_max_batch,
    .run_io = pw_run_io,
};
