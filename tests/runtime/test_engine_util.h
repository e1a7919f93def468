/* tests/runtime/test_engine_util.h — helpers shared by the I/O engine and buffer pool tests:
 * temporary directories, deterministic random data, whole-file comparison, descriptor
 * counting, and a configurable fault hook. Everything is static so the suite's other files
 * are not affected. */
#ifndef TEST_ENGINE_UTIL_H
#define TEST_ENGINE_UTIL_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt/io.h"
#include "io/engine.h"

/* Creates a fresh directory under /tmp; the caller removes it with te_rmdir. */
static inline char *te_mkdtemp(void) {
  char tmpl[] = "/tmp/ckpt_engine_test_XXXXXX";
  char *d = mkdtemp(tmpl);
  cr_assert_not_null(d, "mkdtemp: %s", strerror(errno));
  return strdup(d);
}

static inline void te_rmdir(char *dir) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_io_remove_tree(NULL, dir, &err), CKPT_OK, "%s", err.message);
  free(dir);
}

static inline char *te_path(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  cr_assert_not_null(p);
  snprintf(p, n, "%s/%s", dir, name);
  return p;
}

/* xorshift64*: the same seed gives the same bytes on every run. */
static inline uint64_t te_rand(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 2685821657736338717ull;
}

/* Bytes that depend on the file and the position, so misplaced data is caught. */
static inline void te_fill(unsigned char *p, size_t n, uint64_t file_seed, uint64_t offset) {
  for (size_t i = 0; i < n; i++) {
    uint64_t v = (offset + i) * 0x9E3779B97F4A7C15ull ^ file_seed;
    p[i] = (unsigned char)(v >> 29);
  }
}

/* Compares the file's whole content with te_fill(size, seed). */
static inline void te_check_file(const char *path, size_t size, uint64_t seed) {
  int fd = open(path, O_RDONLY);
  cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
  struct stat sb;
  cr_assert_eq(fstat(fd, &sb), 0);
  cr_assert_eq((size_t)sb.st_size, size, "%s is %lld bytes, expected %zu", path,
               (long long)sb.st_size, size);
  unsigned char *got = malloc(size + 1), *want = malloc(size + 1);
  cr_assert(got && want);
  size_t done = 0;
  while (done < size) {
    ssize_t r = read(fd, got + done, size - done);
    cr_assert_gt(r, 0, "read %s", path);
    done += (size_t)r;
  }
  close(fd);
  te_fill(want, size, seed, 0);
  for (size_t i = 0; i < size; i++) {
    if (got[i] != want[i]) cr_assert_fail("%s differs at byte %zu of %zu", path, i, size);
  }
  free(got);
  free(want);
}

static inline int te_count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  cr_assert_not_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

/* A fault hook driven by counters: fail the fail_at-th operation of kind fail_op with
 * fail_errno (1-based; 0 = never), and make every short_every-th WRITE short. */
typedef struct te_fault {
  ckpt_io_op fail_op;
  int fail_errno;
  long fail_at;
  long short_every;
  const char *only_path_containing; /* NULL: any path */
  atomic_long seen_fail_op;
  atomic_long seen_writes;
  atomic_long failures_injected;
  atomic_long shorts_injected;
} te_fault;

static inline int te_fault_hook(void *arg, ckpt_io_op op, const char *path) {
  te_fault *f = arg;
  if (f->only_path_containing != NULL && strstr(path, f->only_path_containing) == NULL) return 0;
  if (f->fail_at > 0 && op == f->fail_op) {
    long n = atomic_fetch_add(&f->seen_fail_op, 1) + 1;
    if (n == f->fail_at) {
      atomic_fetch_add(&f->failures_injected, 1);
      return f->fail_errno;
    }
  }
  if (f->short_every > 0 && op == CKPT_IO_WRITE) {
    long n = atomic_fetch_add(&f->seen_writes, 1) + 1;
    if (n % f->short_every == 0) {
      atomic_fetch_add(&f->shorts_injected, 1);
      return -1;
    }
  }
  return 0;
}

/* Defines a test body run twice: as engine_uring::name and engine_pwrite::name. */
#define BOTH_BACKENDS(name)                                                                  \
  static void name(ckpt_engine_backend backend);                                           \
  Test(engine_uring, name, .timeout = 120) { name(CKPT_ENGINE_BACKEND_URING); }              \
  Test(engine_pwrite, name, .timeout = 120) { name(CKPT_ENGINE_BACKEND_PWRITE); }            \
  static void name(ckpt_engine_backend backend)

/* Creates an engine with the given backend, or skips the test when io_uring is refused. */
static inline ckpt_engine *te_engine(ckpt_engine_options *o) {
  ckpt_engine *e = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_status st = ckpt_engine_new(o, &e, &err);
  if (st == CKPT_EUNSUPPORTED && o->backend == CKPT_ENGINE_BACKEND_URING) {
    cr_skip_test("io_uring refused by this kernel: %s", err.message);
  }
  cr_assert_eq(st, CKPT_OK, "ckpt_engine_new: %s", err.message);
  if (o->backend != CKPT_ENGINE_BACKEND_AUTO)
    cr_assert_eq(ckpt_engine_backend_used(e), o->backend);
  return e;
}

/* te_engine with default options apart from the backend. */
static inline ckpt_engine *te_engine_on(ckpt_engine_backend backend) {
  ckpt_engine_options o;
  ckpt_engine_options_init(&o);
  o.backend = backend;
  return te_engine(&o);
}

#endif
