/* jsonproto_testfs.h — temporary directories and whole-file helpers for the JSON and proto
 * handler tests (test_json*.c, test_proto_handler.c). Directories are created with mkdtemp
 * under /tmp and removed by the test that made them. */
#ifndef CKPT_TEST_JSONPROTO_TESTFS_H
#define CKPT_TEST_JSONPROTO_TESTFS_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

static inline char *jp_mkdtemp(void) {
  char *d = strdup("/tmp/ckpt-jp-XXXXXX");
  cr_assert_not_null(d);
  cr_assert_not_null(mkdtemp(d), "mkdtemp failed");
  return d;
}

static int jp_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

/* Removes the tree and frees dir. */
static inline void jp_rmtree(char *dir) {
  if (!dir)
    return;
  nftw(dir, jp_rm_one, 16, FTW_DEPTH | FTW_PHYS);
  free(dir);
}

static inline char *jp_path(const char *dir, const char *name) {
  char *p = malloc(strlen(dir) + strlen(name) + 2);
  cr_assert_not_null(p);
  sprintf(p, "%s/%s", dir, name);
  return p;
}

/* Whole file as a NUL-terminated string (caller frees), or NULL when it cannot be read. */
static inline char *jp_slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  cr_assert_not_null(buf);
  size_t got;
  while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
    n += got;
    if (cap - n - 1 == 0) {
      cap *= 2;
      buf = realloc(buf, cap);
      cr_assert_not_null(buf);
    }
  }
  fclose(f);
  buf[n] = '\0';
  if (len)
    *len = n;
  return buf;
}

static inline void jp_spit(const char *path, const char *data, size_t len) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "cannot create %s", path);
  cr_assert_eq(fwrite(data, 1, len, f), len);
  cr_assert_eq(fclose(f), 0);
}

#endif
