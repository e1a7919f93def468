/* test_interop_zarr.c — ckpt's zarr v2 / Orbax layout against the real peers (Debian's
 * python3 with numpy and zarr-python 2.13, run through CKPT_PYTHON and zarr_peer.py):
 *   - every dtype zarr-python supports, written by C (ranks 0-4, empty, chunked with padded
 *     edge chunks, zstd), reads back in zarr-python bit-exact, with _METADATA and
 *     _strings.json as Orbax writes them and _CHECKSUMS ignored;
 *   - a checkpoint written by Python following Orbax's non-OCDBT layout (zarr-python arrays,
 *     zstd and raw, '/' separators, big-endian dtypes, json.dumps _METADATA) restores in C;
 *   - ckpt's dtype casts agree with NumPy's astype wherever NumPy defines the result. */
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "handlers/pytree.h"
#include "interop_util.h"

/* Runs zarr_peer.py; returns its exit status and output (caller frees). */
static int peer(const char *args, char **out) {
  return run_peer("zarr_peer.py", args, out);
}

/* Deterministic contents with finite floats. */
static ckpt_array *make(ckpt_dtype dt, int nd, const int64_t *shape, uint32_t seed) {
  ckpt_array *a = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_array_new(dt, nd, shape, &a, &err), CKPT_OK);
  int64_t n = ckpt_array_num_elements(a);
  size_t es = ckpt_dtype_size(dt);
  unsigned char *p = ckpt_array_data(a);
  uint32_t x = seed * 747796405u + 1u;
  for (int64_t i = 0; i < n; i++) {
    x = x * 1664525u + 1013904223u;
    if (ckpt_dtype_class_of(dt) == CKPT_DTYPE_CLASS_FLOAT ||
        ckpt_dtype_class_of(dt) == CKPT_DTYPE_CLASS_COMPLEX) {
      double v[2] = {((double)(x >> 9) - 4194304.0) / 1024.0, (double)(x & 0xff) / 4.0};
      if (dt == CKPT_DTYPE_COMPLEX64) {
        float f[2] = {(float)v[0], (float)v[1]};
        memcpy(p + (size_t)i * es, f, 8);
      } else if (dt == CKPT_DTYPE_COMPLEX128) {
        memcpy(p + (size_t)i * es, v, 16);
      } else {
        ckpt_dtype_convert(dt, p + (size_t)i * es, CKPT_DTYPE_FLOAT64, v, 1);
      }
    } else if (dt == CKPT_DTYPE_BOOL) {
      p[i] = (x >> 20) & 1;
    } else {
      uint64_t u = ((uint64_t)x << 32) ^ (x * 2654435761u);
      memcpy(p + (size_t)i * es, &u, es);
    }
  }
  return a;
}

Test(interop_zarr, c_writes_zarr_python_reads) {
  char *root = tmpdir();
  char *item = fmt("%s/item", root), *expect = fmt("%s/expect", root);
  cr_assert_eq(mkdir(item, 0777), 0);
  cr_assert_eq(mkdir(expect, 0777), 0);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = ckpt_tree_new_dict();
  cJSON *manifest = cJSON_CreateObject();
  cJSON *arrays = cJSON_AddObjectToObject(manifest, "arrays");
  cJSON *strings = cJSON_AddObjectToObject(manifest, "strings");
  ckpt_pytree_leaf_save leaf_args[64];
  size_t n_args = 0;
  static const int64_t shapes[5][4] = {{0}, {13}, {7, 5}, {0, 3}, {3, 4, 2, 5}};
  static const int ranks[5] = {0, 1, 2, 2, 4};
  for (int d = 0; d < CKPT_DTYPE_COUNT_; d++) {
    ckpt_dtype dt = (ckpt_dtype)d;
    ckpt_tree *per = ckpt_tree_new_dict();
    for (int s = 0; s < 5; s++) {
      char key[16];
      snprintf(key, sizeof key, "s%d", s);
      ckpt_array *a = make(dt, ranks[s], shapes[s], (uint32_t)(d * 10 + s));
      char *param = fmt("%s.%s", ckpt_dtype_name(dt), key);
      char *bin = fmt("%s/%s.bin", expect, param);
      write_file(bin, ckpt_array_data(a), (size_t)ckpt_array_nbytes(a));
      cJSON *info = cJSON_AddObjectToObject(arrays, param);
      cJSON_AddStringToObject(info, "dtype", ckpt_dtype_name(dt));
      cJSON *sh = cJSON_AddArrayToObject(info, "shape");
      for (int k = 0; k < ranks[s]; k++)
        cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)shapes[s][k]));
      if (s == 2 || s == 4) {
        /* Small chunks that do not divide the shape (padded edge chunks), zstd on some. */
        ckpt_pytree_leaf_save *la = &leaf_args[n_args++];
        memset(la, 0, sizeof *la);
        la->param = param; /* freed at the end */
        la->chunk_byte_size = (int64_t)(3 * 5 * ckpt_dtype_size(dt));
        la->compression = d % 2 ? CKPT_COMPRESSION_ZSTD : CKPT_COMPRESSION_NONE;
      } else {
        free(param);
      }
      free(bin);
      ckpt_tree_dict_set(per, key, ckpt_tree_new_array(a), &err);
    }
    ckpt_tree_dict_set(t, ckpt_dtype_name(dt), per, &err);
  }
  /* Keys whose Python repr needs care: non-ASCII, a single quote, both quotes, a space, and
   * control characters (tab, newline, ESC, DEL), which are kept as they are in the directory
   * names (as Orbax keeps them) and escaped only inside _METADATA's text. */
  static const char *odd_keys[] = {"wëird", "it's",      "both '\"",   "sp ace",
                                   "t\tab", "new\nline", "esc\x1b[0m", "del\x7f"};
  ckpt_tree *odd = ckpt_tree_new_dict();
  for (size_t k = 0; k < sizeof odd_keys / sizeof odd_keys[0]; k++) {
    int64_t s1[1] = {3};
    ckpt_array *a = make(CKPT_DTYPE_INT32, 1, s1, (uint32_t)(500 + k));
    char *param = fmt("odd.%s", odd_keys[k]);
    char *bin = fmt("%s/%s.bin", expect, param);
    write_file(bin, ckpt_array_data(a), (size_t)ckpt_array_nbytes(a));
    cJSON *info = cJSON_AddObjectToObject(arrays, param);
    cJSON_AddStringToObject(info, "dtype", "int32");
    cJSON *sh = cJSON_AddArrayToObject(info, "shape");
    cJSON_AddItemToArray(sh, cJSON_CreateNumber(3));
    ckpt_tree_dict_set(odd, odd_keys[k], ckpt_tree_new_array(a), &err);
    free(bin);
    free(param);
  }
  ckpt_tree_dict_set(t, "odd", odd, &err);
  ckpt_tree_dict_set(t, "note", ckpt_tree_new_string("written by C: ü"), &err);
  cJSON_AddStringToObject(strings, "note", "written by C: ü");
  cr_assert_eq(err.code, CKPT_OK, "%s", err.message);
  char *mtext = cJSON_Print(manifest);
  char *mpath = fmt("%s/manifest.json", expect);
  write_file(mpath, mtext, strlen(mtext));
  ckpt_pytree_save_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.tree = t;
  spec.n_leaf_args = n_args;
  spec.leaf_args = leaf_args;
  cr_assert_eq(ckpt_pytree_save_sync(NULL, false, item, &spec, &err), CKPT_OK, "%s", err.message);
  char *cs = fmt("%s/_CHECKSUMS", item);
  struct stat st;
  cr_assert_eq(stat(cs, &st), 0, "the checksum file exists and zarr-python must ignore it");
  char *args = fmt("check %s %s", item, expect), *out = NULL;
  int rc = peer(args, &out);
  cr_assert_eq(rc, 0, "%s", out);
  int checked = 0;
  cr_assert_eq(sscanf(out, "OK %d", &checked), 1, "%s", out);
  cr_assert_eq(checked, (CKPT_DTYPE_COUNT_ - 1) * 5 + (int)(sizeof odd_keys / sizeof *odd_keys) + 1,
               "%s", out);
  /* The directory of a tab key is named with the tab itself. */
  char *tab_dir = fmt("%s/odd.t\tab/.zarray", item);
  cr_assert_eq(stat(tab_dir, &st), 0, "%s", tab_dir);
  free(tab_dir);
  free(out);
  free(args);
  free(cs);
  for (size_t i = 0; i < n_args; i++)
    free((char *)leaf_args[i].param);
  free(mpath);
  free(mtext);
  cJSON_Delete(manifest);
  ckpt_tree_free(t);
  free(item);
  free(expect);
  rmtree(root);
}

static void compare_leaf(const ckpt_tree *node, const char *expect, const char *param) {
  const ckpt_array *a = ckpt_tree_array(node);
  char *bin = fmt("%s/%s.bin", expect, param);
  size_t n;
  void *want = read_file(bin, &n);
  if (a != NULL) {
    cr_assert_eq(ckpt_array_nbytes(a), n, "%s", param);
    cr_assert_eq(memcmp(ckpt_array_data(a), want, n), 0, "%s: bytes differ", param);
  } else {
    ckpt_scalar s;
    cr_assert(ckpt_tree_scalar(node, &s), "%s is neither array nor scalar", param);
    unsigned char buf[16];
    ckpt_scalar_store(&s, buf);
    cr_assert_eq(ckpt_dtype_size(s.dtype), n);
    cr_assert_eq(memcmp(buf, want, n), 0, "%s", param);
  }
  free(want);
  free(bin);
}

Test(interop_zarr, python_writes_orbax_layout_c_restores) {
  char *root = tmpdir();
  char *item = fmt("%s/item", root), *expect = fmt("%s/expect", root);
  char *args = fmt("write %s %s", item, expect), *out = NULL;
  int rc = peer(args, &out);
  cr_assert_eq(rc, 0, "%s", out);
  free(out);
  free(args);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = NULL;
  cr_assert_eq(ckpt_pytree_restore_io(NULL, item, NULL, &t, &err), CKPT_OK, "%s", err.message);
  static const char *dts[] = {"bool",    "int8",    "int16",     "int32",     "int64",
                              "uint8",   "uint16",  "uint32",    "uint64",    "float16",
                              "float32", "float64", "complex64", "complex128"};
  for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) {
    char *param = fmt("arrays.%s", dts[i]);
    ckpt_tree *node = ckpt_tree_get(t, param);
    cr_assert_not_null(node, "%s", param);
    ckpt_dtype dt;
    ckpt_dtype_parse(dts[i], &dt);
    cr_assert_eq(ckpt_tree_array(node)->dtype, dt);
    compare_leaf(node, expect, param);
    free(param);
  }
  compare_leaf(ckpt_tree_get(t, "big.endian"), expect, "big.endian");
  compare_leaf(ckpt_tree_get(t, "big.f8"), expect, "big.f8");
  cr_assert_eq(ckpt_tree_kind(ckpt_tree_dict_get(t, "layers")), CKPT_NODE_LIST,
               "sequence keys rebuild a list");
  compare_leaf(ckpt_tree_get(t, "layers.0.w"), expect, "layers.0.w");
  compare_leaf(ckpt_tree_get(t, "layers.1.w"), expect, "layers.1.w");
  compare_leaf(ckpt_tree_get(t, "step"), expect, "step");
  compare_leaf(ckpt_tree_get(t, "lr"), expect, "lr");
  /* Keys with control characters, in directories named with them (as Orbax writes them). */
  compare_leaf(ckpt_tree_get(t, "odd.t\tab"), expect, "odd.t\tab");
  compare_leaf(ckpt_tree_get(t, "odd.new\nline"), expect, "odd.new\nline");
  cr_assert_str_eq(ckpt_tree_key(ckpt_tree_dict_get(t, "odd"), 0), "new\nline");
  cr_assert_eq(ckpt_tree_kind(ckpt_tree_get(t, "step")), CKPT_NODE_SCALAR);
  cr_assert_str_eq(ckpt_tree_string(ckpt_tree_get(t, "name")), "orbax-written");
  cr_assert_eq(ckpt_tree_kind(ckpt_tree_get(t, "none")), CKPT_NODE_NONE);
  const ckpt_array *e = ckpt_tree_array(ckpt_tree_get(t, "empty"));
  cr_assert_eq(e->shape[0], 0);
  cr_assert_eq(e->shape[1], 3);
  cJSON *md = NULL;
  cr_assert_eq(ckpt_pytree_metadata_io(NULL, item, &md, &err), CKPT_OK, "%s", err.message);
  cJSON *by = cJSON_GetObjectItem(cJSON_GetObjectItem(md, "custom_metadata"), "by");
  cr_assert(cJSON_IsString(by) && strcmp(by->valuestring, "python") == 0);
  cJSON_Delete(md);
  /* Verify works without _CHECKSUMS (none: Python wrote it) and reads every chunk. */
  uint64_t n = 0;
  cr_assert_eq(ckpt_pytree_verify(NULL, item, &n, &err), CKPT_OK, "%s", err.message);
  cr_assert_gt(n, 20);
  ckpt_tree_free(t);
  free(item);
  free(expect);
  rmtree(root);
}

/* Values of every dtype, including the special ones of floats. */
static const double k_float_vals[] = {0.0,    -0.0,  1.0,   -1.5,    2.5,   0.1,   1.0 / 3.0,
                                      65504,  65520, 1e10,  -1e-8,   6e-8,  3e38,  127.9,
                                      -128.4, 255.5, 1e-45, 70000.5, -3.75, 1e300, -7e-310};
static const int64_t k_int_vals[] = {0,
                                     1,
                                     -1,
                                     127,
                                     -128,
                                     255,
                                     256,
                                     32767,
                                     -32768,
                                     65535,
                                     2147483647,
                                     -2147483648LL,
                                     (1LL << 53) + 1,
                                     1LL << 62,
                                     INT64_MIN,
                                     INT64_MAX,
                                     12345,
                                     -9876};

Test(interop_zarr, numpy_casts) {
  char *dir = tmpdir();
  enum {
    NF = sizeof k_float_vals / sizeof k_float_vals[0] + 3,
    NI = sizeof k_int_vals / sizeof k_int_vals[0]
  };
  static const char *names[] = {"bool",    "int8",    "int16",     "int32",     "int64",
                                "uint8",   "uint16",  "uint32",    "uint64",    "float16",
                                "float32", "float64", "complex64", "complex128"};
  size_t counts[14];
  unsigned char *src[14];
  for (int i = 0; i < 14; i++) {
    ckpt_dtype dt;
    ckpt_dtype_parse(names[i], &dt);
    size_t es = ckpt_dtype_size(dt);
    ckpt_dtype_class cls = ckpt_dtype_class_of(dt);
    if (cls == CKPT_DTYPE_CLASS_FLOAT || cls == CKPT_DTYPE_CLASS_COMPLEX) {
      double v[NF];
      memcpy(v, k_float_vals, sizeof k_float_vals);
      v[NF - 3] = INFINITY;
      v[NF - 2] = -INFINITY;
      v[NF - 1] = NAN;
      counts[i] = NF;
      src[i] = calloc(NF, es);
      if (cls == CKPT_DTYPE_CLASS_COMPLEX) {
        for (int k = 0; k < NF; k++) {
          double c[2] = {v[k], v[(k + 5) % NF]};
          if (dt == CKPT_DTYPE_COMPLEX64) {
            float f[2] = {(float)c[0], (float)c[1]};
            memcpy(src[i] + k * es, f, 8);
          } else {
            memcpy(src[i] + k * es, c, 16);
          }
        }
      } else {
        ckpt_dtype_convert(dt, src[i], CKPT_DTYPE_FLOAT64, v, NF);
      }
    } else {
      counts[i] = NI;
      src[i] = calloc(NI, es);
      ckpt_dtype_convert(dt, src[i], CKPT_DTYPE_INT64, k_int_vals, NI);
    }
    char *p = fmt("%s/%s.bin", dir, names[i]);
    write_file(p, src[i], counts[i] * es);
    free(p);
  }
  char *args = fmt("casts %s", dir), *out = NULL;
  int rc = peer(args, &out);
  cr_assert_eq(rc, 0, "%s", out);
  free(out);
  free(args);
  int compared = 0;
  for (int i = 0; i < 14; i++) {
    ckpt_dtype from;
    ckpt_dtype_parse(names[i], &from);
    size_t fs = ckpt_dtype_size(from);
    for (int j = 0; j < 14; j++) {
      ckpt_dtype to;
      ckpt_dtype_parse(names[j], &to);
      size_t ts = ckpt_dtype_size(to);
      char *p = fmt("%s/%s-%s.bin", dir, names[i], names[j]);
      size_t n;
      unsigned char *np_out = read_file(p, &n);
      cr_assert_eq(n, counts[i] * ts);
      unsigned char *mine = calloc(counts[i], ts);
      ckpt_dtype_convert(to, mine, from, src[i], counts[i]);
      ckpt_dtype_class tc = ckpt_dtype_class_of(to), fc = ckpt_dtype_class_of(from);
      for (size_t k = 0; k < counts[i]; k++) {
        if ((fc == CKPT_DTYPE_CLASS_FLOAT || fc == CKPT_DTYPE_CLASS_COMPLEX) &&
            (tc == CKPT_DTYPE_CLASS_SIGNED || tc == CKPT_DTYPE_CLASS_UNSIGNED)) {
          /* NumPy leaves NaN, infinities and out-of-range values undefined. */
          double v;
          ckpt_dtype_convert(CKPT_DTYPE_FLOAT64, &v, from, src[i] + k * fs, 1);
          double lo = tc == CKPT_DTYPE_CLASS_UNSIGNED ? 0.0 : -pow(2, 8.0 * (double)ts - 1);
          double hi = tc == CKPT_DTYPE_CLASS_UNSIGNED ? pow(2, 8.0 * (double)ts)
                                                      : pow(2, 8.0 * (double)ts - 1);
          if (!(v > lo - 1 && v < hi))
            continue;
        }
        bool same = memcmp(mine + k * ts, np_out + k * ts, ts) == 0;
        if (!same && (tc == CKPT_DTYPE_CLASS_FLOAT || tc == CKPT_DTYPE_CLASS_COMPLEX)) {
          /* NaN payloads may differ; both must be NaN. */
          double a, b;
          ckpt_dtype_convert(CKPT_DTYPE_FLOAT64, &a, to, mine + k * ts, 1);
          ckpt_dtype_convert(CKPT_DTYPE_FLOAT64, &b, to, np_out + k * ts, 1);
          same = isnan(a) && isnan(b);
          if (tc == CKPT_DTYPE_CLASS_COMPLEX && same) {
            size_t h = ts / 2;
            same = memcmp(mine + k * ts + h, np_out + k * ts + h, h) == 0;
          }
        }
        cr_assert(same, "%s -> %s, element %zu differs from NumPy", names[i], names[j], k);
        compared++;
      }
      free(mine);
      free(np_out);
      free(p);
    }
  }
  cr_assert_gt(compared, 3000);
  for (int i = 0; i < 14; i++)
    free(src[i]);
  rmtree(dir);
}
