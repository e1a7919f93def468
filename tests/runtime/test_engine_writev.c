/* tests/runtime/test_engine_writev.c — ckpt_engine_writev (io/engine.h) on both backends: an
 * iovec list of thousands of entries (more than IOV_MAX, empty ones among them) lands byte for
 * byte at its offset (also to an O_DIRECT file); forced short writes are resumed mid-entry; an
 * injected failure fails the job and the group with the file's name; the caller's iovec array
 * may be reused at once. */
#include <limits.h>
#include <sys/uio.h>

#include "test_engine_util.h"

#define WV_BOTH_BACKENDS(name)                                                              \
  static void name(ckpt_engine_backend backend);                                           \
  Test(engine_writev_uring, name, .timeout = 120) { name(CKPT_ENGINE_BACKEND_URING); }       \
  Test(engine_writev_pwrite, name, .timeout = 120) { name(CKPT_ENGINE_BACKEND_PWRITE); }     \
  static void name(ckpt_engine_backend backend)

/* Cuts buf[0 .. size) into pieces of 0 to 3000 bytes (deterministic); returns their count. */
static size_t cut_pieces(unsigned char *buf, size_t size, struct iovec *iov, size_t max) {
  uint64_t seed = 7;
  size_t n = 0, pos = 0;
  while (pos < size) {
    cr_assert_lt(n, max);
    size_t len = (size_t)(te_rand(&seed) % 3001);
    if (len > size - pos) len = size - pos;
    iov[n++] = (struct iovec){.iov_base = buf + pos, .iov_len = len};
    pos += len;
  }
  return n;
}

/* Writes a te_fill(size, 11) file as [write of the first `head` bytes][one writev of the rest]
 * through an engine on backend with flush and io (which may carry a fault hook). Returns the
 * group's status; err receives its message. The file is path. */
static ckpt_status write_file(ckpt_engine_backend backend, ckpt_engine_flush flush, ckpt_io *io,
                              const char *path, size_t size, size_t head, size_t *n_entries,
                              ckpt_error *err) {
  ckpt_engine_options o;
  ckpt_engine_options_init(&o);
  o.backend = backend;
  o.flush = flush;
  o.io = io;
  o.threads = 2;
  ckpt_engine *e = te_engine(&o);
  unsigned char *buf = malloc(size);
  cr_assert_not_null(buf);
  te_fill(buf, size, 11, 0);
  size_t max = size / 100 + 16;
  struct iovec *iov = malloc(max * sizeof *iov);
  cr_assert_not_null(iov);
  size_t n = cut_pieces(buf + head, size - head, iov, max);
  *n_entries = n;
  ckpt_engine_group *g;
  cr_assert_eq(ckpt_engine_group_new(e, "writev test", &g, err), CKPT_OK);
  ckpt_engine_file *f;
  cr_assert_eq(ckpt_engine_file_open(g, path, O_WRONLY | O_CREAT | O_TRUNC, 0644,
                                     CKPT_ENGINE_FILE_DURABLE, &f, err),
               CKPT_OK);
  ckpt_future *fut;
  cr_assert_eq(ckpt_engine_write(g, f, buf, head, 0, NULL, NULL, err), CKPT_OK);
  cr_assert_eq(ckpt_engine_writev(g, f, iov, n, head, NULL, &fut, err), CKPT_OK);
  /* The array was copied: scribbling over it now must not change what is written. */
  memset(iov, 0xA5, max * sizeof *iov);
  free(iov);
  cr_assert_eq(ckpt_engine_file_close(g, f, NULL, NULL, err), CKPT_OK);
  ckpt_status st = ckpt_engine_group_wait(g, err);
  ckpt_error ferr = CKPT_ERROR_INIT;
  ckpt_status fst = ckpt_future_wait(fut, &ferr);
  if (st == CKPT_OK) {
    cr_assert_eq(fst, CKPT_OK);
    cr_assert_eq(ckpt_future_bytes(fut), size - head);
  }
  ckpt_engine_group_free(g);
  ckpt_engine_stats s;
  ckpt_engine_get_stats(e, &s);
  cr_assert_eq(s.inflight_bytes, 0, "the writev's budget was released");
  if (st == CKPT_OK) cr_assert_eq(s.bytes_written, size);
  ckpt_engine_free(e);
  free(buf);
  return st;
}

/* write_file in a fresh directory, through an io whose hook is fault (NULL: none); on success
 * the file's bytes are checked. Returns write_file's status (message in err); *n_entries as
 * write_file's. */
static ckpt_status write_in_tmp(ckpt_engine_backend backend, ckpt_engine_flush flush,
                                te_fault *fault, size_t size, size_t head, size_t *n_entries,
                                ckpt_error *err) {
  char *dir = te_mkdtemp();
  char *path = te_path(dir, "data");
  ckpt_io *io;
  cr_assert_eq(ckpt_io_new(&io, err), CKPT_OK);
  if (fault != NULL) ckpt_io_set_fault(io, te_fault_hook, fault);
  ckpt_status st = write_file(backend, flush, io, path, size, head, n_entries, err);
  if (st == CKPT_OK) te_check_file(path, size, 11);
  ckpt_io_free(io);
  free(path);
  te_rmdir(dir);
  return st;
}

static ckpt_status write_with_fault(ckpt_engine_backend backend, te_fault *fault, size_t size,
                                    size_t head, ckpt_error *err) {
  size_t n = 0;
  return write_in_tmp(backend, CKPT_ENGINE_FLUSH_DEFAULT, fault, size, head, &n, err);
}

WV_BOTH_BACKENDS(more_entries_than_iov_max_land_byte_for_byte) {
  ckpt_error err = CKPT_ERROR_INIT;
  size_t n = 0;
  cr_assert_eq(write_in_tmp(backend, CKPT_ENGINE_FLUSH_DEFAULT, NULL, 6 << 20, 4097, &n, &err),
               CKPT_OK, "%s", err.message);
  cr_assert_gt(n, 2 * (size_t)IOV_MAX, "the list needs several pwritev calls (%zu entries)", n);
}

/* With O_DIRECT files the list goes through the buffered twin descriptor (its entries are not
 * aligned); the aligned plain write before it through the direct one. */
WV_BOTH_BACKENDS(direct_files_take_vectored_writes) {
  ckpt_error err = CKPT_ERROR_INIT;
  size_t n = 0;
  cr_assert_eq(write_in_tmp(backend, CKPT_ENGINE_FLUSH_DIRECT, NULL, 2 << 20, 64 << 10, &n, &err),
               CKPT_OK, "%s", err.message);
}

WV_BOTH_BACKENDS(short_writes_resume_mid_entry) {
  ckpt_error err = CKPT_ERROR_INIT;
  te_fault fault = {.short_every = 1, .only_path_containing = "/data"}; /* every call short */
  cr_assert_eq(write_with_fault(backend, &fault, 3 << 20, 100, &err), CKPT_OK, "%s", err.message);
  cr_assert_gt(atomic_load(&fault.shorts_injected), 4);
}

WV_BOTH_BACKENDS(an_injected_failure_fails_the_group_naming_the_file) {
  ckpt_error err = CKPT_ERROR_INIT;
  /* No plain write (head 0 bytes makes no call): the third WRITE the hook sees is the writev's
   * third pwritev call, in the middle of the list. */
  te_fault fault = {.fail_op = CKPT_IO_WRITE, .fail_errno = ENOSPC, .fail_at = 3,
                    .only_path_containing = "/data"};
  cr_assert_neq(write_with_fault(backend, &fault, 6 << 20, 0, &err), CKPT_OK);
  cr_assert_eq(atomic_load(&fault.failures_injected), 1);
  cr_assert_not_null(strstr(err.message, "/data'"), "message names the file: %s", err.message);
  cr_assert_not_null(strstr(err.message, "No space"), "message says why: %s", err.message);
}

/* An empty list (or one of empty entries) is a job that writes nothing and succeeds. */
WV_BOTH_BACKENDS(an_empty_list_writes_nothing) {
  char *dir = te_mkdtemp();
  char *path = te_path(dir, "data");
  ckpt_engine_options o;
  ckpt_engine_options_init(&o);
  o.backend = backend;
  ckpt_engine *e = te_engine(&o);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_engine_group *g;
  cr_assert_eq(ckpt_engine_group_new(e, "writev test", &g, &err), CKPT_OK);
  ckpt_engine_file *f;
  cr_assert_eq(ckpt_engine_file_open(g, path, O_WRONLY | O_CREAT | O_TRUNC, 0644, 0, &f, &err),
               CKPT_OK);
  struct iovec empty[3] = {{0}};
  cr_assert_eq(ckpt_engine_writev(g, f, NULL, 0, 0, NULL, NULL, &err), CKPT_OK);
  cr_assert_eq(ckpt_engine_writev(g, f, empty, 3, 0, NULL, NULL, &err), CKPT_OK);
  cr_assert_eq(ckpt_engine_writev(g, f, NULL, 2, 0, NULL, NULL, &err), CKPT_EINVAL,
               "a NULL list with entries is refused");
  cr_assert_eq(ckpt_engine_file_close(g, f, NULL, NULL, &err), CKPT_OK);
  cr_assert_eq(ckpt_engine_group_wait(g, &err), CKPT_OK, "%s", err.message);
  ckpt_engine_group_free(g);
  struct stat sb;
  cr_assert_eq(stat(path, &sb), 0);
  cr_assert_eq(sb.st_size, 0);
  ckpt_engine_free(e);
  free(path);
  te_rmdir(dir);
}
