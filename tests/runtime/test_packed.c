/* test_packed.c — the packed layout's READER (storage/packed.h, docs/format.md "Packed
 * arrays"). ckpt no longer writes the layout (pack_arrays_up_to_bytes now saves OCDBT,
 * test_ocdbt_write.c), but checkpoints that have it must still restore: the items here are
 * saved as zarr directories and then packed by the test's own code (packed_by_hand.h). Round
 * trips of mixed items (packed and zarr leaves, scalars, bytes, bfloat16, zstd, zero arrays,
 * empty dimensions), sharded and resharded restores, partial restore, metadata and verify,
 * corrupt data files and hostile indexes. */
#include <dirent.h>

#include "packed_by_hand.h"
#include "test_pytree_util.h"

#include "storage/packed.h"

/* Bytes of one element of a .zarray dtype ("<f4", "|b1", "bfloat16", ...). */
static uint64_t dtype_bytes(const char *dt) {
  if (strcmp(dt, "bfloat16") == 0)
    return 2;
  size_t n = strlen(dt);
  while (n > 0 && dt[n - 1] >= '0' && dt[n - 1] <= '9')
    n--;
  return strtoull(dt + n, NULL, 10);
}

/* What the packed writer did: the tree saved with every array of at most limit stored bytes
 * (before compression) packed; here saved as zarr directories, then packed by hand. */
static ckpt_status save_packed(const char *dir, const ckpt_tree *t, uint64_t limit,
                               const ckpt_pytree_leaf_save *la, size_t n_la, ckpt_error *err) {
  ckpt_pytree_save_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.tree = t;
  spec.leaf_args = la;
  spec.n_leaf_args = n_la;
  ckpt_status st = ckpt_pytree_save_sync(NULL, false, dir, &spec, err);
  if (st != CKPT_OK || limit == 0)
    return st;
  DIR *d = opendir(dir);
  cr_assert_not_null(d);
  char **names = NULL;
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    char *z = pt_fmt("%s/%s/.zarray", dir, e->d_name);
    if (e->d_name[0] != '.' && pt_exists(z)) {
      char *text = pt_read(z, NULL);
      cJSON *zj = cJSON_Parse(text);
      uint64_t bytes = dtype_bytes(cJSON_GetStringValue(cJSON_GetObjectItem(zj, "dtype")));
      const cJSON *dim;
      cJSON_ArrayForEach(dim, cJSON_GetObjectItem(zj, "shape")) bytes *= (uint64_t)dim->valuedouble;
      if (bytes <= limit) {
        names = realloc(names, (n + 1) * sizeof *names);
        names[n++] = strdup(e->d_name);
      }
      cJSON_Delete(zj);
      free(text);
    }
    free(z);
  }
  closedir(d);
  for (size_t i = 1; i < n; i++) /* the index lists arrays sorted, as the writer did */
    for (size_t k = i; k > 0 && strcmp(names[k - 1], names[k]) > 0; k--) {
      char *x = names[k];
      names[k] = names[k - 1];
      names[k - 1] = x;
    }
  if (n > 0)
    pack_by_hand(dir, (const char *const *)names, n);
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
  return CKPT_OK;
}

Test(packed, mixed_item_round_trip_and_layout) {
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = pt_mixed_tree(1, false);
  ckpt_pytree_leaf_save la = {.param = "params.zeros", .compression = CKPT_COMPRESSION_ZSTD};
  cr_assert_eq(save_packed(dir, t, 4096, &la, 1, &err), CKPT_OK, "%s", err.message);
  pt_roundtrip(dir, t);
  /* Small leaves are in the packed file, the 16 KiB one in its own zarr directory. */
  cr_assert(pt_has(dir, "_PACKED") && pt_has(dir, "_PACKED.0"));
  cr_assert(pt_has(dir, "params.big/.zarray") && pt_has(dir, "params.big/0.0"));
  const char *packed[] = {"params.w", "params.bf", "params.empty", "params.zeros",
                          "step",     "lr",        "blob"};
  for (size_t i = 0; i < sizeof packed / sizeof *packed; i++)
    cr_assert(!pt_has(dir, packed[i]), "%s has a directory", packed[i]);
  /* The index: sorted compact JSON, zarray as the .zarray would be, compressed zero leaf. */
  char *p = pt_fmt("%s/_PACKED", dir);
  char *text = pt_read(p, NULL);
  cr_assert(strncmp(text, "{\"arrays\":{\"blob\":{\"chunks\":{\"0\":[0,", 36) == 0, "%s", text);
  cr_assert_not_null(strstr(text, "\"params.empty\":{\"chunks\":{},\"zarray\":{\"chunks\":[1,5]"));
  cr_assert_not_null(strstr(text, "\"params.zeros\":{\"chunks\":{\"0\":[0,"));
  cr_assert_not_null(strstr(text, "\"compressor\":{\"id\":\"zstd\",\"level\":1}"));
  cr_assert_not_null(strstr(text,
                            "\"files\":[\"_PACKED.0\"],\"format\":\"ckpt-packed\","
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
  pt_roundtrip(dir, t);
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

/* A 6x4 int32 array saved as two row shards (two chunks of one packed array), restored into
 * column shards and partially. */
Test(packed, sharded_resharded_and_partial_restore) {
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  int32_t src[24];
  ckpt_tree *t = pt_row_sharded_tree(src);
  cr_assert_eq(save_packed(dir, t, 4096, NULL, 0, &err), CKPT_OK, "%s", err.message);
  cr_assert(!pt_has(dir, "x"));
  ckpt_packed_index idx;
  cr_assert_eq(ckpt_packed_read(NULL, dir, &idx, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_packed_find(&idx, "x")->n_chunks, 2);
  ckpt_packed_free(&idx);

  /* Column shards of float64 (a cast), partial, then non-strict into a larger shape. */
  pt_check_resharded_restore(dir, src);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

Test(packed, metadata_describes_packed_leaves) {
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = pt_mixed_tree(2, false);
  cr_assert_eq(save_packed(dir, t, 4096, NULL, 0, &err), CKPT_OK, "%s", err.message);
  cJSON *md = NULL;
  cr_assert_eq(ckpt_pytree_metadata_io(NULL, dir, &md, &err), CKPT_OK, "%s", err.message);
  const cJSON *w =
      cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(md, "tree"), "params"), "w");
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
  pt_roundtrip(dir, t);
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
      {"{\"arrays\":{\"a\":",
       "{\"arrays\":{\"b\":{\"chunks\":{},\"zarray\":{\"chunks\":[64],"
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
    ckpt_tree_dict_set(t, names[i], ckpt_tree_new_array(pt_array(CKPT_DTYPE_INT8, 1, s, 1)), &err);
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
  pt_roundtrip(dir, t);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}
