/* interop_util.h — what the zarr interoperability tests share: formatted strings, temporary
 * directories, files read and written whole, and running a Python peer script of this folder.
 * Header-only (static functions) so each test file stays independent. */
#ifndef CKPT_TESTS_INTEROP_UTIL_H
#define CKPT_TESTS_INTEROP_UTIL_H

#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* vasprintf that fails the test instead of returning NULL. Caller frees. */
static inline char *fmt(const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  char *s = NULL;
  if (vasprintf(&s, f, ap) < 0)
    s = NULL;
  va_end(ap);
  cr_assert_not_null(s);
  return s;
}

static inline int interop_rm_cb(const char *p, const struct stat *sb, int flag,
                                struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(p);
}

/* A fresh directory under /tmp. Caller removes it with rmtree. */
static inline char *tmpdir(void) {
  char t[] = "/tmp/ckpt_t1_interop_XXXXXX";
  cr_assert_not_null(mkdtemp(t), "%s", strerror(errno));
  return strdup(t);
}

/* Removes the tree at p and frees p. */
static inline void rmtree(char *p) {
  nftw(p, interop_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  free(p);
}

/* Runs tests/interop/<script> with args through CKPT_PYTHON; returns its exit status and its
 * output (stdout and stderr, caller frees). */
static inline int run_peer(const char *script, const char *args, char **out) {
  char *cmd = fmt("%s %s/tests/interop/%s %s 2>&1", CKPT_PYTHON, CKPT_SOURCE_DIR, script, args);
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p);
  size_t cap = 1 << 16, len = 0, got;
  char *buf = malloc(cap);
  while ((got = fread(buf + len, 1, cap - len - 1, p)) > 0)
    len += got;
  buf[len] = '\0';
  int st = pclose(p);
  free(cmd);
  *out = buf;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static inline void write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "%s: %s", path, strerror(errno));
  cr_assert_eq(fwrite(data, 1, n, f), n);
  fclose(f);
}

/* The whole file, NUL-terminated (not counted in *n). Caller frees. */
static inline void *read_file(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "%s: %s", path, strerror(errno));
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)len + 1);
  cr_assert_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
  buf[len] = '\0';
  fclose(f);
  *n = (size_t)len;
  return buf;
}

#endif
