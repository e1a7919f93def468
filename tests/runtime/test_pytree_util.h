/* test_pytree_util.h — helpers for the tree / array / zarr / PyTree-handler tests: temporary
 * directories, deterministic array contents, file surgery on saved checkpoints, and calling
 * the Debian Python (CKPT_PYTHON) with numpy and zarr.
 *
 * Header-only (static functions) so every test file that includes it stays independent. */
#ifndef CKPT_TESTS_PYTREE_UTIL_H
#define CKPT_TESTS_PYTREE_UTIL_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "handlers/pytree.h"

/* A fresh directory under /tmp; caller frees the path after pt_rmtree. */
static inline char *pt_tmpdir(void) {
  char tmpl[] = "/tmp/ckpt_t1_XXXXXX";
  char *d = mkdtemp(tmpl);
  cr_assert_not_null(d, "mkdtemp: %s", strerror(errno));
  return strdup(d);
}

static inline int pt_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static inline void pt_rmtree(char *path) {
  if (path == NULL)
    return;
  nftw(path, pt_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  free(path);
}

/* printf into a malloc'ed string. */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static inline char *
pt_fmt(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0)
    s = NULL;
  va_end(ap);
  cr_assert_not_null(s);
  return s;
}

/* A contiguous array of dtype/shape whose byte i is a deterministic function of (seed, i),
 * with float dtypes given finite values (so comparisons are bitwise meaningful). */
static inline ckpt_array *pt_array(ckpt_dtype dt, int ndim, const int64_t *shape, uint32_t seed) {
  ckpt_array *a = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_array_new(dt, ndim, shape, &a, &err), CKPT_OK, "%s", err.message);
  int64_t n = ckpt_array_num_elements(a);
  unsigned char *p = ckpt_array_data(a);
  uint32_t x = seed * 2654435761u + 12345u;
  for (int64_t i = 0; i < n; i++) {
    x = x * 1103515245u + 12345u;
    double v = (double)((int32_t)(x >> 8) % 2000) / 8.0; /* exact in every float format */
    int64_t iv = (int64_t)((x >> 4) & 0x7fff) - 0x4000;
    size_t es = ckpt_dtype_size(dt);
    switch (ckpt_dtype_class_of(dt)) {
      case CKPT_DTYPE_CLASS_BOOL:
        p[i] = (x >> 16) & 1;
        break;
      case CKPT_DTYPE_CLASS_SIGNED:
      case CKPT_DTYPE_CLASS_UNSIGNED:
        ckpt_dtype_convert(dt, p + (size_t)i * es, CKPT_DTYPE_INT64, &iv, 1);
        break;
      case CKPT_DTYPE_CLASS_FLOAT:
        ckpt_dtype_convert(dt, p + (size_t)i * es, CKPT_DTYPE_FLOAT64, &v, 1);
        break;
      case CKPT_DTYPE_CLASS_COMPLEX: {
        double c[2] = {v, -v / 2};
        if (dt == CKPT_DTYPE_COMPLEX64) {
          float f[2] = {(float)c[0], (float)c[1]};
          memcpy(p + (size_t)i * es, f, 8);
        } else {
          memcpy(p + (size_t)i * es, c, 16);
        }
        break;
      }
    }
  }
  return a;
}

/* Writes or overwrites a whole file. */
static inline void pt_write(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "fopen %s: %s", path, strerror(errno));
  cr_assert_eq(fwrite(data, 1, n, f), n);
  fclose(f);
}

/* Reads a whole file (NUL-terminated); caller frees. */
static inline char *pt_read(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "fopen %s: %s", path, strerror(errno));
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)len + 1);
  cr_assert_not_null(buf);
  cr_assert_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
  buf[len] = '\0';
  fclose(f);
  if (n)
    *n = (size_t)len;
  return buf;
}

/* Makes dir's _CHECKSUMS forget its metadata files ("files"), as in an item written before they
 * were recorded: what the parsers do with damaged metadata is then what a test sees, not the
 * CRC that would catch it first. */
static inline void pt_forget_file_sums(const char *dir) {
  char *k = pt_fmt("%s/_CHECKSUMS", dir);
  char *text = pt_read(k, NULL);
  char *at = strstr(text, ",\"files\":{");
  cr_assert_not_null(at, "%s", text);
  memcpy(at, ",\"fileZ\":{", 10);
  pt_write(k, text, strlen(text));
  free(text);
  free(k);
}

static inline bool pt_exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

/* Flips one bit of a file at offset. */
static inline void pt_flip(const char *path, long offset) {
  int fd = open(path, O_RDWR);
  cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
  unsigned char b;
  cr_assert_eq(pread(fd, &b, 1, offset), 1);
  b ^= 0x10;
  cr_assert_eq(pwrite(fd, &b, 1, offset), 1);
  close(fd);
}

/* Runs CKPT_PYTHON with a script file and arguments; returns the exit status, output in *out
 * (caller frees) when out is not NULL. */
static inline int pt_python(const char *script, const char *args, char **out) {
  char *cmd = pt_fmt("%s %s/%s %s 2>&1", CKPT_PYTHON, CKPT_SOURCE_DIR, script, args);
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p);
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  size_t got;
  while ((got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
    len += got;
    if (cap - len < 1024) {
      cap *= 2;
      buf = realloc(buf, cap);
    }
  }
  buf[len] = '\0';
  int status = pclose(p);
  free(cmd);
  if (out)
    *out = buf;
  else
    free(buf);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* {<dtype name>: {"r0": 0-d, "r1": [7], "r4": [2, 3, 1, 5] arrays of that dtype, and with
 * scalars a "scalar" leaf for the non-complex dtypes}} for every dtype; caller frees. */
static inline ckpt_tree *pt_every_dtype_tree(bool scalars) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = ckpt_tree_new_dict();
  int64_t s1[1] = {7}, s4[4] = {2, 3, 1, 5};
  for (int d = 0; d < CKPT_DTYPE_COUNT_; d++) {
    ckpt_tree *per = ckpt_tree_new_dict();
    ckpt_tree_dict_set(per, "r0",
                       ckpt_tree_new_array(pt_array((ckpt_dtype)d, 0, NULL, (uint32_t)d)), &err);
    ckpt_tree_dict_set(
        per, "r1", ckpt_tree_new_array(pt_array((ckpt_dtype)d, 1, s1, (uint32_t)d + 100)), &err);
    ckpt_tree_dict_set(
        per, "r4", ckpt_tree_new_array(pt_array((ckpt_dtype)d, 4, s4, (uint32_t)d + 200)), &err);
    if (scalars && ckpt_dtype_class_of((ckpt_dtype)d) != CKPT_DTYPE_CLASS_COMPLEX)
      ckpt_tree_dict_set(per, "scalar", ckpt_tree_new_int((ckpt_dtype)d, 1), &err);
    ckpt_tree_dict_set(t, ckpt_dtype_name((ckpt_dtype)d), per, &err);
  }
  cr_assert_eq(err.code, CKPT_OK, "%s", err.message);
  return t;
}

/* Save spec / restore helpers with the default I/O. */
static inline ckpt_status pt_save(const char *dir, const ckpt_tree *tree, ckpt_error *err) {
  ckpt_pytree_save_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.tree = tree;
  return ckpt_pytree_save_sync(NULL, false, dir, &spec, err);
}

static inline ckpt_status pt_restore(const char *dir, const ckpt_tree *target, ckpt_tree **out,
                                     ckpt_error *err) {
  ckpt_pytree_restore_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.target = target;
  spec.transforms_default_to_original = true;
  return ckpt_pytree_restore_io(NULL, dir, &spec, out, err);
}

/* True when dir/name exists. */
static inline bool pt_has(const char *dir, const char *name) {
  char *p = pt_fmt("%s/%s", dir, name);
  bool r = pt_exists(p);
  free(p);
  return r;
}

/* Restores dir with and without a target and verifies it (the layouts' round trip: zarr v2,
 * packed, OCDBT). Without a target bytes come back as uint8 arrays and tuples as lists (as in
 * Orbax), so only the targeted restore is compared whole; the other must have the same leaf
 * count. */
static inline void pt_roundtrip(const char *dir, const ckpt_tree *t) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *back = NULL;
  cr_assert_eq(pt_restore(dir, NULL, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_tree_count(back), ckpt_tree_count(t));
  ckpt_tree_free(back);
  cr_assert_eq(pt_restore(dir, t, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert(ckpt_tree_equal(t, back), "'%s' restores other values", dir);
  ckpt_tree_free(back);
  uint64_t n = 0;
  cr_assert_eq(ckpt_pytree_verify(NULL, dir, &n, &err), CKPT_OK, "%s", err.message);
  cr_assert_gt(n, 0);
}

/* The resharding case shared by the layouts' tests (packed, OCDBT): {"x": a 6x4 int32 array
 * saved as two row shards (values i*7-30, filled into src), "y": int32 9}. Caller frees. */
static inline ckpt_tree *pt_row_sharded_tree(int32_t src[24]) {
  ckpt_error err = CKPT_ERROR_INIT;
  for (int i = 0; i < 24; i++)
    src[i] = i * 7 - 30;
  int64_t shape[2] = {6, 4}, rows[2] = {3, 4}, o0[2] = {0, 0}, o1[2] = {3, 0};
  ckpt_array *a = NULL;
  cr_assert_eq(ckpt_array_new_sharded(CKPT_DTYPE_INT32, 2, shape, &a, &err), CKPT_OK);
  cr_assert_eq(ckpt_array_add_shard(a, o0, rows, src, 0, &err), CKPT_OK);
  cr_assert_eq(ckpt_array_add_shard(a, o1, rows, src + 12, 0, &err), CKPT_OK);
  ckpt_tree *t = ckpt_tree_new_dict();
  ckpt_tree_dict_set(t, "x", ckpt_tree_new_array(a), &err);
  ckpt_tree_dict_set(t, "y", ckpt_tree_new_int(CKPT_DTYPE_INT32, 9), &err);
  return t;
}

/* Restores the pt_row_sharded_tree saved in dir (whatever the layout) into column shards of
 * float64 (a cast), partially (only "x"), then non-strict into a larger 7x4 shape, where the
 * excess must read as zeros. */
static inline void pt_check_resharded_restore(const char *dir, const int32_t src[24]) {
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t shape[2] = {6, 4}, o0[2] = {0, 0};
  int64_t cols[2] = {6, 2}, c1[2] = {0, 2};
  ckpt_array *ta = NULL;
  cr_assert_eq(ckpt_array_new_sharded(CKPT_DTYPE_FLOAT64, 2, shape, &ta, &err), CKPT_OK);
  cr_assert_eq(ckpt_array_add_shard(ta, o0, cols, NULL, 0, &err), CKPT_OK);
  cr_assert_eq(ckpt_array_add_shard(ta, c1, cols, NULL, 0, &err), CKPT_OK);
  ckpt_tree *target = ckpt_tree_new_dict();
  ckpt_tree_dict_set(target, "x", ckpt_tree_new_array(ta), &err);
  ckpt_pytree_restore_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.target = target;
  spec.partial_restore = true;
  spec.transforms_default_to_original = true;
  ckpt_tree *back = NULL;
  cr_assert_eq(ckpt_pytree_restore_io(NULL, dir, &spec, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_tree_count(back), 1);
  const ckpt_array *r = ckpt_tree_array(ckpt_tree_dict_get(back, "x"));
  cr_assert_eq(r->n_shards, 2);
  for (size_t s = 0; s < 2; s++) {
    const double *d = r->shards[s].data;
    for (int i = 0; i < 6; i++)
      for (int j = 0; j < 2; j++)
        cr_assert_eq(d[i * 2 + j], (double)src[i * 4 + j + (int)s * 2], "shard %zu (%d,%d)", s, i,
                     j);
  }
  ckpt_tree_free(back);
  int64_t bigger[2] = {7, 4};
  ckpt_array *tb = NULL;
  cr_assert_eq(ckpt_array_new(CKPT_DTYPE_INT32, 2, bigger, &tb, &err), CKPT_OK);
  ckpt_tree *t2 = ckpt_tree_new_dict();
  ckpt_tree_dict_set(t2, "x", ckpt_tree_new_array(tb), &err);
  spec.target = t2;
  spec.non_strict = true;
  cr_assert_eq(ckpt_pytree_restore_io(NULL, dir, &spec, &back, &err), CKPT_OK, "%s", err.message);
  const int32_t *d = ckpt_array_data(ckpt_tree_array(ckpt_tree_dict_get(back, "x")));
  cr_assert_eq(memcmp(d, src, 24 * sizeof *src), 0);
  for (int i = 24; i < 28; i++)
    cr_assert_eq(d[i], 0);
  ckpt_tree_free(back);
  ckpt_tree_free(t2);
  ckpt_tree_free(target);
}

/* The grid case shared by the restore tests (zarr v2, zarr v3, OCDBT): saves {"w": rows x cols
 * int32, value row*1000+col} in chunks of chunk_rows rows, as zarr v3 when use_zarr3; returns a
 * copy of the array (caller frees). */
static inline ckpt_array *pt_save_grid(const char *dir, int64_t rows, int64_t cols,
                                       int64_t chunk_rows, ckpt_compression comp, bool use_zarr3) {
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t shape[2] = {rows, cols};
  ckpt_array *a = NULL;
  cr_assert_eq(ckpt_array_new(CKPT_DTYPE_INT32, 2, shape, &a, &err), CKPT_OK);
  int32_t *d = ckpt_array_data(a);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++)
      d[r * cols + c] = (int32_t)(r * 1000 + c);
  ckpt_tree *t = ckpt_tree_new_dict();
  ckpt_tree_dict_set(t, "w", ckpt_tree_new_array(ckpt_array_clone(a)), &err);
  ckpt_pytree_leaf_save la;
  memset(&la, 0, sizeof la);
  la.param = "w";
  la.chunk_byte_size = chunk_rows * cols * 4;
  la.compression = comp;
  ckpt_pytree_save_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.tree = t;
  spec.n_leaf_args = 1;
  spec.leaf_args = &la;
  spec.use_zarr3 = use_zarr3;
  cr_assert_eq(ckpt_pytree_save_sync(NULL, false, dir, &spec, &err), CKPT_OK, "%s", err.message);
  ckpt_tree_free(t);
  return a;
}

/* Checks every shard of an array restored from pt_save_grid against value = row*1000+col. */
static inline void pt_check_grid(const ckpt_array *a) {
  for (size_t s = 0; s < a->n_shards; s++) {
    const ckpt_shard *sh = &a->shards[s];
    const int32_t *d = sh->data;
    for (int64_t r = 0; r < sh->shape[0]; r++)
      for (int64_t c = 0; c < sh->shape[1]; c++) {
        int64_t gr = sh->offset[0] + r, gc = sh->offset[1] + c;
        cr_assert_eq(d[r * sh->shape[1] + c], (int32_t)(gr * 1000 + gc), "shard %zu at (%lld,%lld)",
                     s, (long long)gr, (long long)gc);
      }
  }
}

/* Mixed leaves for the layout tests (packed, OCDBT): small (8x16 float32) and large (64x64
 * float32) arrays on both sides of a 4 KiB threshold, bfloat16, an empty dimension, zeros, a 0-d
 * int16 array when zero_d, and scalars, bytes and a string. Caller frees. */
static inline ckpt_tree *pt_mixed_tree(uint32_t seed, bool zero_d) {
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t small[2] = {8, 16}, big[2] = {64, 64}, empty[2] = {0, 5}, b16[1] = {33}, z[1] = {256};
  ckpt_tree *t = ckpt_tree_new_dict();
  ckpt_tree *p = ckpt_tree_new_dict();
  ckpt_tree_dict_set(p, "w", ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 2, small, seed)),
                     &err);
  ckpt_tree_dict_set(p, "big", ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 2, big, seed + 1)),
                     &err);
  ckpt_tree_dict_set(p, "bf", ckpt_tree_new_array(pt_array(CKPT_DTYPE_BFLOAT16, 1, b16, seed + 2)),
                     &err);
  ckpt_tree_dict_set(p, "empty",
                     ckpt_tree_new_array(pt_array(CKPT_DTYPE_INT32, 2, empty, seed + 3)), &err);
  ckpt_array *zeros = NULL;
  cr_assert_eq(ckpt_array_new(CKPT_DTYPE_FLOAT64, 1, z, &zeros, &err), CKPT_OK);
  memset(ckpt_array_data(zeros), 0, 256 * 8);
  ckpt_tree_dict_set(p, "zeros", ckpt_tree_new_array(zeros), &err);
  if (zero_d)
    ckpt_tree_dict_set(p, "zd", ckpt_tree_new_array(pt_array(CKPT_DTYPE_INT16, 0, NULL, seed + 4)),
                       &err);
  ckpt_tree_dict_set(t, "params", p, &err);
  ckpt_tree_dict_set(t, "step", ckpt_tree_new_int(CKPT_DTYPE_INT64, 7 + seed), &err);
  ckpt_tree_dict_set(t, "lr", ckpt_tree_new_float(CKPT_DTYPE_FLOAT32, 0.5), &err);
  ckpt_tree_dict_set(t, "blob", ckpt_tree_new_bytes("\x01\x02\x00\x03", 4), &err);
  ckpt_tree_dict_set(t, "name", ckpt_tree_new_string("run"), &err);
  cr_assert_eq(err.code, CKPT_OK, "%s", err.message);
  return t;
}

#endif
