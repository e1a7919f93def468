/* test_zarr.c — the storage building blocks: .zarray encoding and parsing (TensorStore's exact
 * text, zarr-python's variants, malformed and unsupported documents), chunk keys and grids,
 * chunk-shape choice (shard alignment, splitting by size, coverage checks), strided box copies,
 * path safety and _METADATA text (CRC-32C: test_crc32c.c). */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "ckpt/ckpt.h"
#include "util/path.h"
#include "storage/pytree_meta.h"
#include "storage/zarr.h"

static ckpt_zarr_meta meta2(ckpt_dtype dt, int64_t s0, int64_t s1, int64_t c0, int64_t c1) {
  ckpt_zarr_meta m;
  memset(&m, 0, sizeof m);
  m.dtype = dt;
  m.ndim = 2;
  m.shape[0] = s0;
  m.shape[1] = s1;
  m.chunks[0] = c0;
  m.chunks[1] = c1;
  m.separator = '.';
  m.compressor = CKPT_COMPRESSION_NONE;
  return m;
}

Test(zarr, encode_matches_tensorstore) {
  ckpt_zarr_meta m = meta2(CKPT_DTYPE_BFLOAT16, 10, 7, 5, 7);
  char *txt;
  size_t len;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_zarr_meta_encode(&m, &txt, &len, &err), CKPT_OK);
  cr_assert_str_eq(txt,
                   "{\"chunks\":[5,7],\"compressor\":null,\"dimension_separator\":\".\","
                   "\"dtype\":\"bfloat16\",\"fill_value\":null,\"filters\":null,"
                   "\"order\":\"C\",\"shape\":[10,7],\"zarr_format\":2}");
  cr_assert_eq(len, strlen(txt));
  free(txt);
  m.compressor = CKPT_COMPRESSION_ZSTD;
  m.level = 1;
  m.ndim = 0;
  m.dtype = CKPT_DTYPE_BOOL;
  cr_assert_eq(ckpt_zarr_meta_encode(&m, &txt, &len, &err), CKPT_OK);
  cr_assert_str_eq(txt,
                   "{\"chunks\":[],\"compressor\":{\"id\":\"zstd\",\"level\":1},"
                   "\"dimension_separator\":\".\",\"dtype\":\"|b1\",\"fill_value\":null,"
                   "\"filters\":null,\"order\":\"C\",\"shape\":[],\"zarr_format\":2}");
  free(txt);
}

Test(zarr, decode_round_trip_and_variants) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_zarr_meta m;
  /* zarr-python's own formatting (indent, key order, fill_value 0.0, no separator key). */
  const char *py =
      "{\n    \"chunks\": [\n        3\n    ],\n    \"compressor\": {\n        \"id\": "
      "\"zstd\",\n        \"level\": 3, \"checksum\": false\n    },\n    \"dtype\": \">i4\",\n    "
      "\"fill_value\": 7,\n    \"filters\": null,\n    \"order\": \"C\",\n    \"shape\": [\n       "
      " "
      "10\n    ],\n    \"zarr_format\": 2\n}";
  cr_assert_eq(ckpt_zarr_meta_decode(py, strlen(py), "x/.zarray", &m, &err), CKPT_OK, "%s",
               err.message);
  cr_assert_eq(m.dtype, CKPT_DTYPE_INT32);
  cr_assert(m.big_endian);
  cr_assert_eq(m.ndim, 1);
  cr_assert_eq(m.shape[0], 10);
  cr_assert_eq(m.chunks[0], 3);
  cr_assert_eq(m.compressor, CKPT_COMPRESSION_ZSTD);
  cr_assert_eq(m.level, 3);
  cr_assert_eq(m.separator, '.');
  int32_t fill;
  memcpy(&fill, m.fill, 4);
  cr_assert_eq(fill, 7);
  const char *nan =
      "{\"chunks\":[2],\"compressor\":null,\"dtype\":\"<f8\",\"fill_value\":\"NaN\","
      "\"filters\":[],\"order\":\"C\",\"shape\":[4],\"zarr_format\":2,"
      "\"dimension_separator\":\"/\"}";
  cr_assert_eq(ckpt_zarr_meta_decode(nan, strlen(nan), "y", &m, &err), CKPT_OK, "%s", err.message);
  double f;
  memcpy(&f, m.fill, 8);
  cr_assert(isnan(f));
  cr_assert_eq(m.separator, '/');
}

static void expect_decode_error(const char *doc, ckpt_status code, const char *needle) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_zarr_meta m;
  cr_assert_eq(ckpt_zarr_meta_decode(doc, strlen(doc), "arr/.zarray", &m, &err), code, "%s -> %s",
               doc, err.message);
  cr_assert(strstr(err.message, "arr/.zarray") != NULL, "%s", err.message);
  if (needle)
    cr_assert(strstr(err.message, needle) != NULL, "%s", err.message);
}

Test(zarr, decode_errors) {
  expect_decode_error("{", CKPT_ECORRUPT, "arr/.zarray:1:2:");
  expect_decode_error("[]", CKPT_ECORRUPT, NULL);
  expect_decode_error("{\"zarr_format\":3}", CKPT_EUNSUPPORTED, "zarr_format");
  expect_decode_error("{\"zarr_format\":2,\"shape\":[4],\"chunks\":[0],\"dtype\":\"<f4\"}",
                      CKPT_ECORRUPT, "chunks");
  expect_decode_error("{\"zarr_format\":2,\"shape\":[-4],\"chunks\":[1],\"dtype\":\"<f4\"}",
                      CKPT_ECORRUPT, "shape");
  expect_decode_error("{\"zarr_format\":2,\"shape\":[4,4],\"chunks\":[1],\"dtype\":\"<f4\"}",
                      CKPT_ECORRUPT, "rank");
  expect_decode_error("{\"zarr_format\":2,\"shape\":[4],\"chunks\":[1],\"dtype\":\"|S4\"}",
                      CKPT_EUNSUPPORTED, "dtype");
  expect_decode_error(
      "{\"zarr_format\":2,\"shape\":[4],\"chunks\":[1],\"dtype\":[[\"a\",\"<f4\"]]}",
      CKPT_EUNSUPPORTED, "dtype");
  expect_decode_error(
      "{\"zarr_format\":2,\"shape\":[4],\"chunks\":[1],\"dtype\":\"<f4\","
      "\"order\":\"F\"}",
      CKPT_EUNSUPPORTED, "order");
  expect_decode_error(
      "{\"zarr_format\":2,\"shape\":[4],\"chunks\":[1],\"dtype\":\"<f4\","
      "\"compressor\":{\"id\":\"blosc\"}}",
      CKPT_EUNSUPPORTED, "blosc");
  expect_decode_error(
      "{\"zarr_format\":2,\"shape\":[4],\"chunks\":[1],\"dtype\":\"<f4\","
      "\"filters\":[{\"id\":\"delta\"}]}",
      CKPT_EUNSUPPORTED, "filters");
  expect_decode_error(
      "{\"zarr_format\":2,\"shape\":[4000000000,4000000000,4000000000],"
      "\"chunks\":[1,1,1],\"dtype\":\"<f4\"}",
      CKPT_ECORRUPT, "large");
}

Test(zarr, grid_and_keys) {
  ckpt_zarr_meta m = meta2(CKPT_DTYPE_FLOAT32, 10, 7, 4, 7);
  int64_t grid[2];
  cr_assert_eq(ckpt_zarr_grid(&m, grid), 3);
  cr_assert_eq(grid[0], 3);
  cr_assert_eq(grid[1], 1);
  int64_t idx[2], off[2], ext[2];
  ckpt_zarr_chunk_index(&m, grid, 2, idx);
  cr_assert_eq(idx[0], 2);
  ckpt_zarr_chunk_box(&m, idx, off, ext);
  cr_assert_eq(off[0], 8);
  cr_assert_eq(ext[0], 2, "the edge chunk is clipped");
  char key[CKPT_ZARR_KEY_MAX];
  ckpt_zarr_chunk_key(&m, idx, key);
  cr_assert_str_eq(key, "2.0");
  m.ndim = 0;
  cr_assert_eq(ckpt_zarr_grid(&m, grid), 1);
  ckpt_zarr_chunk_key(&m, idx, key);
  cr_assert_str_eq(key, "0");
  m = meta2(CKPT_DTYPE_FLOAT32, 0, 7, 1, 7);
  cr_assert_eq(ckpt_zarr_grid(&m, grid), 0, "an empty array has no chunks");
}

static ckpt_array *sharded(int64_t s0, int64_t s1) {
  ckpt_array *a = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t shape[2] = {s0, s1};
  cr_assert_eq(ckpt_array_new_sharded(CKPT_DTYPE_FLOAT32, 2, shape, &a, &err), CKPT_OK);
  return a;
}

static void add(ckpt_array *a, int64_t o0, int64_t o1, int64_t e0, int64_t e1, int replica) {
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t o[2] = {o0, o1}, e[2] = {e0, e1};
  cr_assert_eq(ckpt_array_add_shard(a, o, e, NULL, replica, &err), CKPT_OK, "%s", err.message);
}

Test(zarr, choose_chunks) {
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t c[2];
  /* One shard, small: chunk = the whole array. */
  ckpt_array *a = sharded(8, 16);
  add(a, 0, 0, 8, 16, 0);
  cr_assert_eq(ckpt_zarr_choose_chunks(a, 4, 1 << 20, NULL, 0, "a", c, &err), CKPT_OK);
  cr_assert_eq(c[0], 8);
  cr_assert_eq(c[1], 16);
  /* Split by size along the outermost axis, rows stay whole (contiguous chunks). */
  cr_assert_eq(ckpt_zarr_choose_chunks(a, 4, 128, NULL, 0, "a", c, &err), CKPT_OK);
  cr_assert_eq(c[0], 2);
  cr_assert_eq(c[1], 16);
  /* A single row over the target splits the row too. */
  cr_assert_eq(ckpt_zarr_choose_chunks(a, 4, 40, NULL, 0, "a", c, &err), CKPT_OK);
  cr_assert_eq(c[0], 1);
  cr_assert(c[1] * 4 <= 40);
  /* shard_axes first. */
  int32_t axes[1] = {1};
  cr_assert_eq(ckpt_zarr_choose_chunks(a, 4, 256, axes, 1, "a", c, &err), CKPT_OK);
  cr_assert_eq(c[0], 8);
  cr_assert_eq(c[1], 8);
  ckpt_array_free(a);
  /* Non-divisible single-shard axes get balanced chunks with a padded edge chunk. */
  a = sharded(10, 3);
  add(a, 0, 0, 10, 3, 0);
  cr_assert_eq(ckpt_zarr_choose_chunks(a, 4, 4 * 3 * 4, NULL, 0, "a", c, &err), CKPT_OK);
  cr_assert_eq(c[0], 4, "ceil(10 / ceil(10/4)) = 4");
  ckpt_array_free(a);
  /* Sharded: chunks align to the shard grid and never straddle shards; replicas ignored. */
  a = sharded(8, 12);
  add(a, 0, 0, 4, 6, 0);
  add(a, 0, 6, 4, 6, 0);
  add(a, 4, 0, 4, 6, 0);
  add(a, 4, 6, 4, 6, 0);
  add(a, 0, 0, 8, 12, 1);
  cr_assert_eq(ckpt_zarr_choose_chunks(a, 4, 1 << 20, NULL, 0, "a", c, &err), CKPT_OK);
  cr_assert_eq(c[0], 4);
  cr_assert_eq(c[1], 6);
  cr_assert_eq(ckpt_zarr_choose_chunks(a, 4, 30, NULL, 0, "a", c, &err), CKPT_OK);
  cr_assert_eq(4 % c[0], 0, "divides the shard");
  cr_assert_eq(6 % c[1], 0);
  ckpt_array_free(a);
  /* Uneven shards (4 + 2 rows, as jax shards 6 rows over 2 devices): chunk 4, the last chunk
   * clipped by the array's end lies inside the second shard. */
  a = sharded(6, 2);
  add(a, 0, 0, 4, 2, 0);
  add(a, 4, 0, 2, 2, 0);
  cr_assert_eq(ckpt_zarr_choose_chunks(a, 4, 1 << 20, NULL, 0, "a", c, &err), CKPT_OK);
  cr_assert_eq(c[0], 4);
  ckpt_array_free(a);
  /* Shards of 3 + 2 + 1 rows: boundaries at 3 and 5 force chunks of 1. */
  a = sharded(6, 2);
  add(a, 0, 0, 3, 2, 0);
  add(a, 3, 0, 2, 2, 0);
  add(a, 5, 0, 1, 2, 0);
  cr_assert_eq(ckpt_zarr_choose_chunks(a, 4, 1 << 20, NULL, 0, "a", c, &err), CKPT_OK);
  cr_assert_eq(c[0], 1);
  ckpt_array_free(a);
}

Test(zarr, choose_chunks_rejects_gaps_and_overlaps) {
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t c[2];
  ckpt_array *a = sharded(4, 4);
  add(a, 0, 0, 2, 4, 0);
  cr_assert_eq(ckpt_zarr_choose_chunks(a, 4, 0, NULL, 0, "params.w", c, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "params.w") != NULL, "%s", err.message);
  cr_assert(strstr(err.message, "cover 8 of 16") != NULL, "%s", err.message);
  ckpt_error_clear(&err);
  add(a, 1, 0, 3, 4, 0);
  cr_assert_eq(ckpt_zarr_choose_chunks(a, 4, 0, NULL, 0, "w", c, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "overlap") != NULL, "%s", err.message);
  ckpt_error_clear(&err);
  int32_t bad_axis[1] = {5};
  ckpt_array_free(a);
  a = sharded(4, 4);
  add(a, 0, 0, 4, 4, 0);
  cr_assert_eq(ckpt_zarr_choose_chunks(a, 4, 8, bad_axis, 1, "w", c, &err), CKPT_EINVAL);
  ckpt_array_free(a);
}

Test(zarr, box_copy_and_fill) {
  /* Copy a 2x3 box from a 4x5 int16 source at (1,2) into a 3x4 float32 destination at (1,0). */
  int16_t src[20];
  for (int i = 0; i < 20; i++)
    src[i] = (int16_t)i;
  float dst[12];
  for (int i = 0; i < 12; i++)
    dst[i] = -1;
  int64_t region[2] = {2, 3}, sshape[2] = {4, 5}, soff[2] = {1, 2}, dshape[2] = {3, 4},
          doff[2] = {1, 0};
  ckpt_box_copy(2, region, dst, CKPT_DTYPE_FLOAT32, dshape, doff, src, CKPT_DTYPE_INT16, sshape,
                soff);
  float want[12] = {-1, -1, -1, -1, 7, 8, 9, -1, 12, 13, 14, -1};
  cr_assert_eq(memcmp(dst, want, sizeof want), 0);
  /* Full rows in both: one contiguous run. */
  int64_t r2[2] = {2, 5}, s2[2] = {4, 5}, o2[2] = {2, 0}, d2[2] = {2, 5}, z[2] = {0, 0};
  int16_t out[10];
  ckpt_box_copy(2, r2, out, CKPT_DTYPE_INT16, d2, z, src, CKPT_DTYPE_INT16, s2, o2);
  for (int i = 0; i < 10; i++)
    cr_assert_eq(out[i], 10 + i);
  float seven = 7;
  int64_t fr[2] = {1, 2}, fo[2] = {2, 2};
  ckpt_box_fill(2, fr, dst, 4, dshape, fo, &seven);
  cr_assert_eq(dst[10], 7);
  cr_assert_eq(dst[11], 7);
  cr_assert_eq(dst[9], 13);
  int64_t shp[3] = {4, 5, 6};
  int64_t rr[3] = {1, 5, 6};
  cr_assert(ckpt_box_contiguous(3, rr, shp));
  int64_t rr2[3] = {2, 2, 6};
  cr_assert(!ckpt_box_contiguous(3, rr2, shp));
  int64_t rr3[3] = {1, 1, 3};
  cr_assert(ckpt_box_contiguous(3, rr3, shp));
}

Test(zarr, path_safety) {
  ckpt_error err = CKPT_ERROR_INIT;
  /* Control characters are ordinary bytes in a directory entry (TensorStore, hence Orbax,
   * writes them as they are): accepted, never escaped. */
  const char *ok[] = {"w",          "layer0.w", "opt.0.mu", "a b",   "π",       "a..b",
                      "x_METADATA", "t\tab",    "a\nb",     "\x01x", "del\x7f", "x\x1b[31m"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
    cr_assert_eq(ckpt_path_check_name(ok[i], "name", &err), CKPT_OK, "%s: %s", ok[i], err.message);
  const char *bad[] = {"",
                       ".",
                       "..",
                       "../x",
                       "/etc/x",
                       "a/b",
                       ".zarray",
                       ".hidden",
                       "_METADATA",
                       "_CHECKSUMS",
                       "_strings.json",
                       "x.orbax-checkpoint-tmp",
                       "commit_success.txt"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ckpt_error e = CKPT_ERROR_INIT;
    cr_assert_eq(ckpt_path_check_name(bad[i], "parameter name", &e), CKPT_EUNSAFE, "%s", bad[i]);
    cr_assert(strstr(e.message, "parameter name") != NULL);
  }
  ckpt_error slash = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_path_check_name("ab/c", "parameter name", &slash), CKPT_EUNSAFE);
  cr_assert_str_eq(slash.message, "parameter name 'ab/c' contains '/' at byte 2");
  char longname[4001];
  memset(longname, 'a', 4000);
  longname[4000] = '\0';
  cr_assert_eq(ckpt_path_check_name(longname, "name", &err), CKPT_EUNSAFE);
  char *p = ckpt_path_join("d", "a/b");
  cr_assert_str_eq(p, "d/a/b");
  free(p);
}

Test(zarr, python_tuple_repr) {
  const char *k1[] = {"a"};
  char *r = ckpt_py_tuple_repr(k1, 1);
  cr_assert_str_eq(r, "('a',)");
  free(r);
  const char *k2[] = {"it's", "0", "say \"hi\"", "both ' \"", "tab\there", "back\\slash"};
  r = ckpt_py_tuple_repr(k2, 6);
  cr_assert_str_eq(r,
                   "(\"it's\", '0', 'say \"hi\"', 'both \\' \"', 'tab\\there', 'back\\\\slash')");
  free(r);
  r = ckpt_py_tuple_repr(NULL, 0);
  cr_assert_str_eq(r, "()");
  free(r);
}

Test(zarr, metadata_parse_errors) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_pytree_meta m;
  const char *docs[] = {
      "not json",
      "{}",
      "{\"tree_metadata\": {\"('a',)\": {}}}",
      "{\"tree_metadata\": {\"('a',)\": {\"key_metadata\": [{\"key\": \"a\", \"key_type\": 7}], "
      "\"value_metadata\": {\"value_type\": \"np.ndarray\", \"skip_deserialize\": false}}}}",
      "{\"tree_metadata\": {\"('a',)\": {\"key_metadata\": [{\"key\": \"x\", \"key_type\": 1}], "
      "\"value_metadata\": {\"value_type\": \"np.ndarray\", \"skip_deserialize\": false}}}}",
      "{\"tree_metadata\": {\"()\": {\"key_metadata\": [], "
      "\"value_metadata\": {\"value_type\": \"np.ndarray\", \"skip_deserialize\": false}}}}",
  };
  for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
    ckpt_error_clear(&err);
    cr_assert_eq(ckpt_pytree_meta_parse(docs[i], strlen(docs[i]), "d/_METADATA", &m, &err),
                 CKPT_ECORRUPT, "doc %zu", i);
    cr_assert(strstr(err.message, "d/_METADATA") != NULL, "%s", err.message);
    ckpt_pytree_meta_free(&m);
  }
  /* Newer Orbax writes sequence keys as numbers; both forms are read. */
  const char *num =
      "{\"tree_metadata\": {\"('a', '0')\": {\"key_metadata\": [{\"key\": \"a\", "
      "\"key_type\": 2}, {\"key\": 0, \"key_type\": 1}], \"value_metadata\": "
      "{\"value_type\": \"scalar\", \"skip_deserialize\": false}}}, "
      "\"use_ocdbt\": false, \"custom_metadata\": {\"x\": NaN}}";
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_pytree_meta_parse(num, strlen(num), "m", &m, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(m.n, 1);
  cr_assert_str_eq(m.entries[0].param, "a.0");
  cr_assert(!m.store_array_data_equal_to_fill_value, "absent means false (old checkpoints)");
  cr_assert_not_null(m.custom_metadata);
  ckpt_pytree_meta_free(&m);
}
