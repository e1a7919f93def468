/* test_packed.c — the packed layout (storage/packed.h, docs/format.md "Packed arrays"): round
 * trips of mixed items (packed and zarr leaves, scalars, bytes, bfloat16, zstd, zero arrays,
 * empty dimensions, strings), the files on disk, threshold boundaries, sharded and resharded
 * restores, partial restore, metadata and verify, corrupt data files and hostile indexes,
 * checkpointers (sync, async) and the manager with packing on, and a fault sweep over every
 * I/O operation of a packed save. */
#include <stdatomic.h>

#include "test_pytree_util.h"

#include "storage/packed.h"

/* A tree with leaves on both sides of a 4 KiB threshold. */
static ckpt_tree *mixed(uint32_t seed) {
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
  ckpt_tree_dict_set(t, "params", p, &err);
  ckpt_tree_dict_set(t, "step", ckpt_tree_new_int(CKPT_DTYPE_INT64, 7 + seed), &err);
  ckpt_tree_dict_set(t, "lr", ckpt_tree_new_float(CKPT_DTYPE_FLOAT32, 0.5), &err);
  ckpt_tree_dict_set(t, "blob", ckpt_tree_new_bytes("\x01\x02\x00\x03", 4), &err);
  ckpt_tree_dict_set(t, "name", ckpt_tree_new_string("run"), &err);
  cr_assert_eq(err.code, CKPT_OK, "%s", err.message);
  return t;
}

static ckpt_status save_packed(const char *dir, const ckpt_tree *t, uint64_t limit,
                               const ckpt_pytree_leaf_save *la, size_t n_la, ckpt_error *err) {
  ckpt_pytree_save_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.tree = t;
  spec.leaf_args = la;
  spec.n_leaf_args = n_la;
  spec.pack_arrays_up_to_bytes = limit;
  return ckpt_pytree_save_sync(NULL, false, dir, &spec, err);
}

static bool has(const char *dir, const char *name) {
  char *p = pt_fmt("%s/%s", dir, name);
  bool r = pt_exists(p);
  free(p);
  return r;
}

/* Restores dir with and without a target and verifies it. Without a target bytes come back as
 * uint8 arrays and tuples as lists (as in Orbax), so only the targeted restore is compared
 * whole; the other must have the same leaf count. */
static void roundtrip(const char *dir, const ckpt_tree *t) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *back = NULL;
  cr_assert_eq(pt_restore(dir, NULL, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_tree_count(back), ckpt_tree_count(t));
  ckpt_tree_free(back);
  /* and with the saved tree as target */
  cr_assert_eq(pt_restore(dir, t, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert(ckpt_tree_equal(t, back));
  ckpt_tree_free(back);
  uint64_t n = 0;
  cr_assert_eq(ckpt_pytree_verify(NULL, dir, &n, &err), CKPT_OK, "%s", err.message);
  cr_assert_gt(n, 0);
}

Test(packed, mixed_item_round_trip_and_layout) {
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = mixed(1);
  ckpt_pytree_leaf_save la = {.param = "params.zeros", .compression = CKPT_COMPRESSION_ZSTD};
  cr_assert_eq(save_packed(dir, t, 4096, &la, 1, &err), CKPT_OK, "%s", err.message);
  roundtrip(dir, t);
  /* Small leaves are in the packed file, the 16 KiB one in its own zarr directory. */
  cr_assert(has(dir, "_PACKED") && has(dir, "_PACKED.0"));
  cr_assert(has(dir, "params.big/.zarray") && has(dir, "params.big/0.0"));
  const char *packed[] = {"params.w", "params.bf", "params.empty", "params.zeros", "step", "lr",
                          "blob"};
  for (size_t i = 0; i < sizeof packed / sizeof *packed; i++)
    cr_assert(!has(dir, packed[i]), "%s has a directory", packed[i]);
  /* The index: sorted compact JSON, zarray as the .zarray would be, compressed zero leaf. */
  char *p = pt_fmt("%s/_PACKED", dir);
  char *text = pt_read(p, NULL);
  cr_assert(strncmp(text, "{\"arrays\":{\"blob\":{\"chunks\":{\"0\":[0,", 36) == 0, "%s", text);
  cr_assert_not_null(strstr(text, "\"params.empty\":{\"chunks\":{},\"zarray\":{\"chunks\":[1,5]"));
  cr_assert_not_null(strstr(text, "\"params.zeros\":{\"chunks\":{\"0\":[0,"));
  cr_assert_not_null(strstr(text, "\"compressor\":{\"id\":\"zstd\",\"level\":1}"));
  cr_assert_not_null(strstr(text, "\"files\":[\"_PACKED.0\"],\"format\":\"ckpt-packed\","
                                  "\"version\":1}"));
  free(text);
  free(p);
  /* _CHECKSUMS lists only the zarr leaf. */
  p = pt_fmt("%s/_CHECKSUMS", dir);
  text = pt_read(p, NULL);
  cr_assert_not_null(strstr(text, "\"params.big\""));
  cr_assert_null(strstr(text, "\"params.w\""));
  free(text);
  free(p);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

Test(packed, every_dtype_and_rank) {
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = pt_every_dtype_tree(true);
  cr_assert_eq(save_packed(dir, t, 1 << 20, NULL, 0, &err), CKPT_OK, "%s", err.message);
  roundtrip(dir, t);
  /* Every chunk starts at a multiple of 64. */
  ckpt_packed_index idx;
  cr_assert_eq(ckpt_packed_read(NULL, dir, &idx, &err), CKPT_OK, "%s", err.message);
  cr_assert_gt(idx.n_arrays, 3u * CKPT_DTYPE_COUNT_); /* arrays and scalars, all packed */
  for (size_t i = 0; i < idx.n_arrays; i++)
    for (size_t k = 0; k < idx.arrays[i].n_chunks; k++)
      cr_assert_eq(idx.arrays[i].chunks[k].offset % CKPT_PACKED_ALIGN, 0);
  ckpt_packed_free(&idx);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

/* A zero-copy packed save writes straight from the caller's arrays: 3000 arrays of 2 KiB
 * (two 4 MiB segments, each one vectored write of more than IOV_MAX entries), one of them
 * cast (a private copy), round trip and CRCs checked. */
Test(packed, zero_copy_save_of_many_arrays) {
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = ckpt_tree_new_dict();
  int64_t shape[1] = {512};
  for (int i = 0; i < 3000; i++) {
    char name[32];
    snprintf(name, sizeof name, "a%04d", i);
    ckpt_tree_dict_set(t, name,
                       ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 1, shape, (uint32_t)i)),
                       &err);
  }
  cr_assert_eq(err.code, CKPT_OK, "%s", err.message);
  ckpt_pytree_leaf_save cast = {.param = "a0100", .has_dtype = true, .dtype = CKPT_DTYPE_FLOAT64};
  ckpt_pytree_save_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.tree = t;
  spec.leaf_args = &cast;
  spec.n_leaf_args = 1;
  spec.pack_arrays_up_to_bytes = 1 << 20;
  cr_assert_eq(ckpt_pytree_save_sync(NULL, true, dir, &spec, &err), CKPT_OK, "%s", err.message);
  cr_assert(has(dir, CKPT_PACKED_DATA_FILE));
  char *data = pt_fmt("%s/%s", dir, CKPT_PACKED_DATA_FILE);
  struct stat sb;
  cr_assert_eq(stat(data, &sb), 0);
  cr_assert_eq(sb.st_size, 2999 * 2048 + 4096, "every array at its offset, no gaps");
  free(data);
  uint64_t n = 0;
  cr_assert_eq(ckpt_pytree_verify(NULL, dir, &n, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(n, 3000);
  ckpt_tree *back = NULL;
  cr_assert_eq(pt_restore(dir, NULL, &back, &err), CKPT_OK, "%s", err.message);
  for (int i = 0; i < 3000; i += 7) {
    char name[32];
    snprintf(name, sizeof name, "a%04d", i);
    const ckpt_array *a = ckpt_tree_array(ckpt_tree_dict_get(back, name));
    const ckpt_array *w = ckpt_tree_array(ckpt_tree_dict_get(t, name));
    cr_assert_not_null(a);
    if (i == 100) continue; /* cast: compared below through the targeted restore */
    cr_assert_eq(memcmp(ckpt_array_data(a), ckpt_array_data(w), 2048), 0, "%s differs", name);
  }
  ckpt_tree_free(back);
  roundtrip(dir, t);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

Test(packed, threshold_is_inclusive) {
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t s[1] = {256}; /* 1024 bytes of float32 */
  ckpt_tree *t = ckpt_tree_new_dict();
  ckpt_tree_dict_set(t, "a", ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 1, s, 3)), &err);
  ckpt_pytree_leaf_save cast = {.param = "a", .has_dtype = true, .dtype = CKPT_DTYPE_FLOAT16};
  cr_assert_eq(save_packed(dir, t, 1024, NULL, 0, &err), CKPT_OK, "%s", err.message);
  cr_assert(has(dir, "_PACKED") && !has(dir, "a"));
  pt_rmtree(dir);
  dir = pt_tmpdir();
  cr_assert_eq(save_packed(dir, t, 1023, NULL, 0, &err), CKPT_OK, "%s", err.message);
  cr_assert(!has(dir, "_PACKED") && !has(dir, "_PACKED.0") && has(dir, "a/.zarray"));
  pt_rmtree(dir);
  /* Stored bytes decide: cast to float16 it has 512 bytes. */
  dir = pt_tmpdir();
  cr_assert_eq(save_packed(dir, t, 512, &cast, 1, &err), CKPT_OK, "%s", err.message);
  cr_assert(has(dir, "_PACKED") && !has(dir, "a"));
  ckpt_tree *back = NULL;
  cr_assert_eq(pt_restore(dir, NULL, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_tree_array(ckpt_tree_dict_get(back, "a"))->dtype, CKPT_DTYPE_FLOAT16);
  ckpt_tree_free(back);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

/* A 6x4 int32 array saved as two row shards (two chunks of one packed array), restored into
 * column shards and partially. */
Test(packed, sharded_resharded_and_partial_restore) {
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  int32_t src[24];
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
  cr_assert_eq(save_packed(dir, t, 4096, NULL, 0, &err), CKPT_OK, "%s", err.message);
  cr_assert(!has(dir, "x"));
  ckpt_packed_index idx;
  cr_assert_eq(ckpt_packed_read(NULL, dir, &idx, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_packed_find(&idx, "x")->n_chunks, 2);
  ckpt_packed_free(&idx);

  /* Target: column shards of float64 (a cast). */
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
        cr_assert_eq(d[i * 2 + j], (double)src[i * 4 + j + (int)s * 2], "shard %zu (%d,%d)", s,
                     i, j);
  }
  ckpt_tree_free(back);
  /* Non-strict into a larger shape: the excess reads as zeros. */
  int64_t bigger[2] = {7, 4};
  ckpt_array *tb = NULL;
  cr_assert_eq(ckpt_array_new(CKPT_DTYPE_INT32, 2, bigger, &tb, &err), CKPT_OK);
  ckpt_tree *t2 = ckpt_tree_new_dict();
  ckpt_tree_dict_set(t2, "x", ckpt_tree_new_array(tb), &err);
  spec.target = t2;
  spec.non_strict = true;
  cr_assert_eq(ckpt_pytree_restore_io(NULL, dir, &spec, &back, &err), CKPT_OK, "%s", err.message);
  const int32_t *d = ckpt_array_data(ckpt_tree_array(ckpt_tree_dict_get(back, "x")));
  cr_assert_eq(memcmp(d, src, sizeof src), 0);
  for (int i = 24; i < 28; i++)
    cr_assert_eq(d[i], 0);
  ckpt_tree_free(back);
  ckpt_tree_free(t2);
  ckpt_tree_free(target);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

Test(packed, metadata_describes_packed_leaves) {
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = mixed(2);
  cr_assert_eq(save_packed(dir, t, 4096, NULL, 0, &err), CKPT_OK, "%s", err.message);
  cJSON *md = NULL;
  cr_assert_eq(ckpt_pytree_metadata_io(NULL, dir, &md, &err), CKPT_OK, "%s", err.message);
  const cJSON *w = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(md, "tree"),
                                                           "params"),
                                       "w");
  cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(w, "dtype")), "float32");
  cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(w, "shape")), 2);
  cJSON_Delete(md);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

/* ---------------------------------------------------------------- damage */

static ckpt_tree *simple(void) {
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t s[1] = {64};
  ckpt_tree *t = ckpt_tree_new_dict();
  ckpt_tree_dict_set(t, "a", ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 1, s, 5)), &err);
  ckpt_tree_dict_set(t, "b", ckpt_tree_new_array(pt_array(CKPT_DTYPE_INT16, 1, s, 6)), &err);
  return t;
}

/* Restore, verify and metadata of dir must fail with code and a message containing want. */
static void expect_fail(const char *dir, ckpt_status code, const char *want, bool metadata_too) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *back = NULL;
  ckpt_status st = pt_restore(dir, NULL, &back, &err);
  cr_assert_eq(st, code, "restore: %s: %s", ckpt_status_name(st), err.message);
  cr_assert_not_null(strstr(err.message, want), "restore message: %s", err.message);
  cr_assert_null(back);
  ckpt_error_clear(&err);
  st = ckpt_pytree_verify(NULL, dir, NULL, &err);
  cr_assert_eq(st, code, "verify: %s: %s", ckpt_status_name(st), err.message);
  cr_assert_not_null(strstr(err.message, want), "verify message: %s", err.message);
  if (metadata_too) {
    cJSON *md = NULL;
    ckpt_error_clear(&err);
    st = ckpt_pytree_metadata_io(NULL, dir, &md, &err);
    cr_assert_eq(st, code, "metadata: %s: %s", ckpt_status_name(st), err.message);
    cr_assert_null(md);
  }
}

Test(packed, corrupt_or_truncated_data_file) {
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = simple();
  cr_assert_eq(save_packed(dir, t, 4096, NULL, 0, &err), CKPT_OK, "%s", err.message);
  char *data = pt_fmt("%s/_PACKED.0", dir);
  pt_flip(data, 10); /* inside 'a' (offset 0) */
  expect_fail(dir, CKPT_ECORRUPT, "array 'a': chunk '0' is corrupt", false);
  pt_flip(data, 10);
  roundtrip(dir, t);
  cr_assert_eq(truncate(data, 300), 0); /* 'b' starts at 256 and has 128 bytes */
  expect_fail(dir, CKPT_ECORRUPT, "array 'b': chunk '0': bytes 256..384 lie past the end", false);
  cr_assert_eq(unlink(data), 0);
  expect_fail(dir, CKPT_EINCOMPLETE, "_PACKED.0' is missing", false);
  cr_assert_eq(symlink("/etc/passwd", data), 0);
  expect_fail(dir, CKPT_EUNSAFE, "symlink", false);
  free(data);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

/* Replaces the first occurrence of from in dir/_PACKED with to. */
static void edit_index(const char *dir, const char *from, const char *to) {
  pt_forget_file_sums(dir); /* the index's own checks, not _CHECKSUMS' CRC of it */
  char *p = pt_fmt("%s/_PACKED", dir);
  char *text = pt_read(p, NULL);
  char *at = strstr(text, from);
  cr_assert_not_null(at, "'%s' not in %s", from, text);
  char *out = pt_fmt("%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
  pt_write(p, out, strlen(out));
  free(out);
  free(text);
  free(p);
}

Test(packed, hostile_index_values_are_rejected) {
  struct {
    const char *from, *to;
    ckpt_status code;
    const char *want;
  } cases[] = {
      {"\"_PACKED.0\"", "\"../x\"", CKPT_ECORRUPT, "not of the form _PACKED.<n>"},
      {"\"_PACKED.0\"", "\"/etc/passwd\"", CKPT_ECORRUPT, "not of the form _PACKED.<n>"},
      {"\"_PACKED.0\"", "\"_PACKED.00\"", CKPT_ECORRUPT, "not of the form _PACKED.<n>"},
      {"\"_PACKED.0\"", "\"_PACKED.0\",\"_PACKED.0\"", CKPT_ECORRUPT, "listed twice"},
      {"\"0\":[0,0,256,", "\"0\":[0,999999,256,", CKPT_ECORRUPT, "past the end"},
      {"\"0\":[0,0,256,", "\"0\":[0,-64,256,", CKPT_ECORRUPT, "non-negative integers"},
      {"\"0\":[0,0,256,", "\"0\":[0,1.5,256,", CKPT_ECORRUPT, "non-negative integers"},
      {"\"0\":[0,0,256,", "\"0\":[0,\"0\",256,", CKPT_ECORRUPT, "non-negative integers"},
      {"\"0\":[0,0,256,", "\"0\":[0,1e300,256,", CKPT_ECORRUPT, "non-negative integers"},
      {"\"0\":[0,0,256,", "\"0\":[0,9007199254740000,256,", CKPT_ECORRUPT, "past the end"},
      {"\"0\":[0,0,256,", "\"0\":[1,0,256,", CKPT_ECORRUPT, "names data file 1 of 1"},
      {"\"0\":[0,0,256,", "\"0\":[0,0,255,", CKPT_ECORRUPT, "has 255 bytes, expected 256"},
      {"\"0\":[0,0,256,", "\"1\":[0,0,256,", CKPT_ECORRUPT, "not a chunk key"},
      {"\"0\":[0,0,256,", "\"0\":[0,0,256,1],\"0\":[0,0,256,", CKPT_ECORRUPT,
       "key \"0\" more than once"},
      {"{\"arrays\":{\"a\":", "{\"arrays\":{\"b\":{\"chunks\":{},\"zarray\":{\"chunks\":[64],"
                             "\"compressor\":null,\"dimension_separator\":\".\",\"dtype\":\"<i2\","
                             "\"fill_value\":null,\"filters\":null,\"order\":\"C\",\"shape\":[64],"
                             "\"zarr_format\":2}},\"a\":",
       CKPT_ECORRUPT, "key \"b\" more than once"},
      {"{\"arrays\":{\"a\":", "{\"arrays\":{\"zz\":", CKPT_ECORRUPT,
       "which _METADATA does not have"},
      {"{\"arrays\":{\"a\":", "{\"arrays\":{\"x/../a\":", CKPT_EUNSAFE, "contains '/'"},
      {"\"0\":[0,0,256,", "\"0\":[0,9007199254740000,9007199254740000,", CKPT_ECORRUPT,
       "ends past 2^53"},
      {"\"version\":1", "\"version\":2", CKPT_EUNSUPPORTED, "version 2"},
      {"\"version\":1", "\"version\":\"1\"", CKPT_ECORRUPT, "not a ckpt-packed index"},
      {"\"format\":\"ckpt-packed\"", "\"format\":\"x\"", CKPT_ECORRUPT, "not a ckpt-packed"},
      {"\"files\":[\"_PACKED.0\"]", "\"files\":{}", CKPT_ECORRUPT, "\"files\" is not a list"},
      {"\"zarray\":{\"chunks\":[64]", "\"zarray\":{\"chunks\":[64],\"x\":[", CKPT_ECORRUPT,
       "_PACKED:1:"},
      {"\"dimension_separator\":\".\"", "\"dimension_separator\":\"/\"", CKPT_ECORRUPT,
       "separator"},
  };
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = simple();
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char *dir = pt_tmpdir();
    cr_assert_eq(save_packed(dir, t, 4096, NULL, 0, &err), CKPT_OK, "%s", err.message);
    edit_index(dir, cases[i].from, cases[i].to);
    ckpt_tree *back = NULL;
    ckpt_error_clear(&err);
    ckpt_status st = pt_restore(dir, NULL, &back, &err);
    cr_assert_eq(st, cases[i].code, "case %zu: %s: %s", i, ckpt_status_name(st), err.message);
    cr_assert_not_null(strstr(err.message, cases[i].want), "case %zu: %s", i, err.message);
    cr_assert_null(back);
    ckpt_error_clear(&err);
    st = ckpt_pytree_verify(NULL, dir, NULL, &err);
    cr_assert_eq(st, cases[i].code, "case %zu verify: %s", i, err.message);
    pt_rmtree(dir);
  }
  ckpt_tree_free(t);
}

Test(packed, reserved_names_cannot_be_parameters) {
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t s[1] = {2};
  const char *names[] = {"_PACKED", "_PACKED.0", "_PACKED.x"};
  for (size_t i = 0; i < 3; i++) {
    ckpt_tree *t = ckpt_tree_new_dict();
    ckpt_tree_dict_set(t, names[i], ckpt_tree_new_array(pt_array(CKPT_DTYPE_INT8, 1, s, 1)),
                       &err);
    ckpt_error_clear(&err);
    cr_assert_eq(save_packed(dir, t, 0, NULL, 0, &err), CKPT_EUNSAFE, "%s", names[i]);
    cr_assert_not_null(strstr(err.message, "reserved"), "%s", err.message);
    ckpt_tree_free(t);
  }
  /* "_PACKEDx" and "a._PACKED" are ordinary names. */
  ckpt_tree *t = ckpt_tree_new_dict();
  ckpt_tree_dict_set(t, "_PACKEDx", ckpt_tree_new_array(pt_array(CKPT_DTYPE_INT8, 1, s, 1)), &err);
  ckpt_error_clear(&err);
  cr_assert_eq(save_packed(dir, t, 16, NULL, 0, &err), CKPT_OK, "%s", err.message);
  roundtrip(dir, t);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

/* ---------------------------------------------------------------- through checkpointers */

static ckpt_checkpointer *packing_ckptr(bool async, ckpt_io *io) {
  ckpt_checkpointer_options o = CKPT_CHECKPOINTER_OPTIONS_INIT;
  o.async = async;
  o.io = io;
  o.pack_arrays_up_to_bytes = 4096;
  ckpt_checkpointer *c = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_new(&ckpt_PyTreeCheckpointHandler_desc, &o, &c, &err), CKPT_OK,
               "%s", err.message);
  return c;
}

static ckpt_status ckptr_save(ckpt_checkpointer *c, const char *path, const ckpt_tree *t,
                              ckpt_error *err) {
  ckpt_PyTreeSave *a = ckpt_PyTreeSave_new();
  a->item = ckpt_tree_clone(t);
  ckpt_status st = ckpt_checkpointer_save(c, path, &a->base, false, NULL, err);
  ckpt_args_delete(&a->base);
  if (st == CKPT_OK)
    st = ckpt_checkpointer_wait_until_finished(c, err);
  return st;
}

static void expect_restore(ckpt_checkpointer *c, const char *path, const ckpt_tree *t) {
  ckpt_value v;
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_PyTreeRestore *r = ckpt_PyTreeRestore_new();
  r->item = ckpt_tree_clone(t);
  cr_assert_eq(ckpt_checkpointer_restore(c, path, &r->base, &v, &err), CKPT_OK, "%s",
               err.message);
  ckpt_args_delete(&r->base);
  cr_assert(ckpt_tree_equal(t, v.u.tree));
  ckpt_value_free(&v);
}

Test(packed, sync_and_async_checkpointers) {
  for (int async = 0; async < 2; async++) {
    char *root = pt_tmpdir();
    char *path = pt_fmt("%s/ckpt", root);
    ckpt_checkpointer *c = packing_ckptr(async, NULL);
    ckpt_tree *t = mixed(3);
    ckpt_error err = CKPT_ERROR_INIT;
    cr_assert_eq(ckptr_save(c, path, t, &err), CKPT_OK, "%s", err.message);
    cr_assert(has(path, "_PACKED") && has(path, "_PACKED.0") && has(path, "params.big/0.0"));
    expect_restore(c, path, t);
    cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
    /* The default stays Orbax's layout. */
    char *plain = pt_fmt("%s/plain", root);
    ckpt_checkpointer_options o = CKPT_CHECKPOINTER_OPTIONS_INIT;
    o.async = async;
    cr_assert_eq(ckpt_checkpointer_new(&ckpt_PyTreeCheckpointHandler_desc, &o, &c, &err),
                 CKPT_OK);
    cr_assert_eq(ckptr_save(c, plain, t, &err), CKPT_OK, "%s", err.message);
    cr_assert(!has(plain, "_PACKED") && has(plain, "params.w/0.0"));
    cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
    free(plain);
    ckpt_tree_free(t);
    free(path);
    pt_rmtree(root);
  }
}

/* A memory budget far below the packed data: segments wait for it (as chunks do) instead of
 * failing or deadlocking, and the save round-trips. */
Test(packed, tight_memory_budget) {
  for (int async = 0; async < 2; async++) {
    char *root = pt_tmpdir();
    char *path = pt_fmt("%s/ckpt", root);
    ckpt_checkpointer_options o = CKPT_CHECKPOINTER_OPTIONS_INIT;
    o.async = async;
    o.pack_arrays_up_to_bytes = 1 << 20;
    o.memory_budget_bytes = 64 << 10;
    ckpt_checkpointer *c = NULL;
    ckpt_error err = CKPT_ERROR_INIT;
    cr_assert_eq(ckpt_checkpointer_new(&ckpt_PyTreeCheckpointHandler_desc, &o, &c, &err), CKPT_OK,
                 "%s", err.message);
    /* 20 arrays of 256 KiB: two segments, each above the whole budget (the engine admits such
     * a reservation once nothing else is in flight, so the second waits for the first). */
    ckpt_tree *t = mixed(6);
    int64_t s[1] = {65536};
    for (int k = 0; k < 20; k++) {
      char name[16];
      snprintf(name, sizeof name, "m%02d", k);
      ckpt_tree_dict_set(t, name, ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 1, s, 40 + k)),
                         &err);
    }
    cr_assert_eq(ckptr_save(c, path, t, &err), CKPT_OK, "%s", err.message);
    cr_assert(has(path, "_PACKED") && !has(path, "m00"));
    expect_restore(c, path, t);
    cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
    ckpt_tree_free(t);
    free(path);
    pt_rmtree(root);
  }
}

Test(packed, manager_passes_the_option) {
  char *root = pt_tmpdir();
  ckpt_manager_options mo = CKPT_MANAGER_OPTIONS_INIT;
  mo.pack_arrays_up_to_bytes = 4096;
  mo.max_to_keep = 2;
  ckpt_manager *m = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_new(root, &mo, &m, &err), CKPT_OK, "%s", err.message);
  ckpt_tree *t = mixed(4);
  for (int64_t step = 1; step <= 3; step++) {
    ckpt_Composite *args = ckpt_composite_new();
    ckpt_StandardSave *s = ckpt_StandardSave_new();
    ckpt_tree *item = ckpt_tree_clone(t);
    /* StandardSave takes arrays and numbers only */
    ckpt_tree_dict_remove(item, "name");
    ckpt_tree_dict_remove(item, "blob");
    s->item = item;
    cr_assert_eq(ckpt_composite_add(args, "state", &s->base, &err), CKPT_OK);
    bool saved = false;
    cr_assert_eq(ckpt_manager_save(m, step, &args->base, NULL, false, &saved, &err), CKPT_OK,
                 "%s", err.message);
    ckpt_args_delete(&args->base);
  }
  cr_assert_eq(ckpt_manager_wait_until_finished(m, &err), CKPT_OK, "%s", err.message);
  char *item = pt_fmt("%s/3/state", root);
  cr_assert(has(item, "_PACKED") && has(item, "_PACKED.0") && !has(item, "params.w"));
  free(item);
  ckpt_value v;
  cr_assert_eq(ckpt_manager_restore(m, 3, NULL, &v, &err), CKPT_OK, "%s", err.message);
  const ckpt_value *st = v.u.composite.items[0].value;
  const ckpt_array *w = ckpt_tree_array(
      ckpt_tree_dict_get(ckpt_tree_dict_get(st->u.tree, "params"), "w"));
  const ckpt_array *w0 =
      ckpt_tree_array(ckpt_tree_dict_get(ckpt_tree_dict_get(t, "params"), "w"));
  cr_assert(ckpt_array_equal(w, w0));
  ckpt_value_free(&v);
  cr_assert_eq(ckpt_manager_close(m, &err), CKPT_OK, "%s", err.message);
  ckpt_tree_free(t);
  pt_rmtree(root);
}

/* ---------------------------------------------------------------- fault sweep */

typedef struct sweep_fault {
  atomic_ulong seen;
  unsigned long nth;
  int err;
  atomic_int fired;
  char path[4096];
} sweep_fault;

static int sweep_hook(void *arg, ckpt_io_op op, const char *path) {
  (void)op;
  sweep_fault *f = arg;
  unsigned long k = atomic_fetch_add(&f->seen, 1) + 1;
  if (f->nth != 0 && k == f->nth) {
    snprintf(f->path, sizeof f->path, "%s", path);
    atomic_store(&f->fired, 1);
    return f->err;
  }
  return 0;
}

/* Every I/O operation of a packed save (sync and async) is made to fail in turn: the save
 * fails with that error naming the path, leaves nothing at the destination, and the next save
 * succeeds and restores. */
Test(packed, every_failing_operation_fails_the_save_cleanly, .timeout = 300) {
  ckpt_io *io = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
  char *root = pt_tmpdir();
  ckpt_tree *t = mixed(5);
  for (int async = 0; async < 2; async++) {
    ckpt_checkpointer *c = packing_ckptr(async, io);
    char *path = pt_fmt("%s/target", root);
    sweep_fault probe = {.nth = 0};
    ckpt_io_set_fault(io, sweep_hook, &probe);
    cr_assert_eq(ckptr_save(c, path, t, &err), CKPT_OK, "%s", err.message);
    ckpt_io_set_fault(io, NULL, NULL);
    unsigned long n = atomic_load(&probe.seen);
    cr_assert_gt(n, 20);
    pt_rmtree(strdup(path));
    for (unsigned long k = 1; k <= n; k++) {
      sweep_fault f = {.nth = k, .err = EIO};
      ckpt_io_set_fault(io, sweep_hook, &f);
      ckpt_error_clear(&err);
      ckpt_status st = ckptr_save(c, path, t, &err);
      ckpt_io_set_fault(io, NULL, NULL);
      if (!atomic_load(&f.fired))
        continue; /* the order of parallel operations varies; this run did fewer */
      cr_assert_eq(st, CKPT_EIO, "k=%lu (%s): %s: %s", k, f.path, ckpt_status_name(st),
                   err.message);
      cr_assert_not_null(strstr(err.message, f.path), "k=%lu: '%s' not named: %s", k, f.path,
                         err.message);
      cr_assert(!ckpt_is_finalized(io, path, CKPT_ATOMICITY_RENAME), "k=%lu", k);
      ckpt_error_clear(&err);
      cr_assert_eq(ckptr_save(c, path, t, &err), CKPT_OK, "k=%lu: %s", k, err.message);
      expect_restore(c, path, t);
      pt_rmtree(strdup(path));
    }
    cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
    free(path);
  }
  ckpt_tree_free(t);
  pt_rmtree(root);
  ckpt_io_free(io);
}
