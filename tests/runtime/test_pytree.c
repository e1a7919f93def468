/* test_pytree.c — the PyTree engine end to end through its internal API: round trips of every
 * leaf kind and dtype, the on-disk layout (_METADATA text, .zarray, chunk files), chunking,
 * resharding restores, partial and non-strict restores, transforms and placeholders. */
#include "test_pytree_util.h"

#include "storage/pytree_meta.h"

Test(pytree, roundtrip_basic) {
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = ckpt_tree_new_dict();
  int64_t shape[2] = {4, 8};
  ckpt_tree *layer = ckpt_tree_new_dict();
  ckpt_tree_dict_set(layer, "w", ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 2, shape, 1)),
                     &err);
  ckpt_tree_dict_set(t, "layer0", layer, &err);
  ckpt_tree_dict_set(t, "step", ckpt_tree_new_int(CKPT_DTYPE_INT64, 10), &err);
  cr_assert_eq(err.code, CKPT_OK, "%s", err.message);
  cr_assert_eq(pt_save(dir, t, &err), CKPT_OK, "%s", err.message);
  ckpt_tree *back = NULL;
  cr_assert_eq(pt_restore(dir, NULL, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert(ckpt_tree_equal(t, back));
  char *p = pt_fmt("%s/_METADATA", dir);
  char *text = pt_read(p, NULL);
  cr_assert_str_eq(
      text,
      "{\"tree_metadata\": {\"('layer0', 'w')\": {\"key_metadata\": [{\"key\": \"layer0\", "
      "\"key_type\": 2}, {\"key\": \"w\", \"key_type\": 2}], \"value_metadata\": "
      "{\"value_type\": \"np.ndarray\", \"skip_deserialize\": false, \"write_shape\": [4, 8]}}, "
      "\"('step',)\": {\"key_metadata\": [{\"key\": \"step\", \"key_type\": 2}], "
      "\"value_metadata\": {\"value_type\": \"scalar\", \"skip_deserialize\": false}}}, "
      "\"use_ocdbt\": false, \"use_zarr3\": false, "
      "\"store_array_data_equal_to_fill_value\": true, \"custom_metadata\": null}");
  free(text);
  free(p);
  p = pt_fmt("%s/layer0.w/.zarray", dir);
  text = pt_read(p, NULL);
  cr_assert_str_eq(text,
                   "{\"chunks\":[4,8],\"compressor\":null,\"dimension_separator\":\".\","
                   "\"dtype\":\"<f4\",\"fill_value\":null,\"filters\":null,\"order\":\"C\","
                   "\"shape\":[4,8],\"zarr_format\":2}");
  free(text);
  free(p);
  ckpt_tree_free(back);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

static ckpt_tree *dict1(const char *k, ckpt_tree *v) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = ckpt_tree_new_dict();
  cr_assert_eq(ckpt_tree_dict_set(t, k, v, &err), CKPT_OK);
  return t;
}

Test(pytree, every_dtype_and_rank) {
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = pt_every_dtype_tree(true);
  cr_assert_eq(pt_save(dir, t, &err), CKPT_OK, "%s", err.message);
  ckpt_tree *back = NULL;
  cr_assert_eq(pt_restore(dir, NULL, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert(ckpt_tree_equal(t, back));
  /* The .zarray dtypes are NumPy typestrs (bfloat16 by name). */
  for (int d = 0; d < CKPT_DTYPE_COUNT_; d++) {
    char *p = pt_fmt("%s/%s.r1/.zarray", dir, ckpt_dtype_name((ckpt_dtype)d));
    char *text = pt_read(p, NULL);
    char *want = pt_fmt("\"dtype\":\"%s\"", ckpt_dtype_zarr((ckpt_dtype)d));
    cr_assert(strstr(text, want) != NULL, "%s", text);
    free(want);
    free(text);
    free(p);
  }
  /* 0-d arrays are one chunk named "0". */
  char *p = pt_fmt("%s/float32.r0/0", dir);
  cr_assert(pt_exists(p));
  free(p);
  ckpt_tree_free(back);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

Test(pytree, empty_arrays_and_empty_nodes) {
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = ckpt_tree_new_dict();
  int64_t e1[1] = {0}, e3[3] = {3, 0, 2};
  ckpt_tree_dict_set(t, "e1", ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 1, e1, 1)), &err);
  ckpt_tree_dict_set(t, "e3", ckpt_tree_new_array(pt_array(CKPT_DTYPE_INT16, 3, e3, 1)), &err);
  ckpt_tree_dict_set(t, "d", ckpt_tree_new_dict(), &err);
  ckpt_tree_dict_set(t, "l", ckpt_tree_new_list(), &err);
  ckpt_tree_dict_set(t, "t", ckpt_tree_new_tuple(), &err);
  ckpt_tree_dict_set(t, "n", ckpt_tree_new_none(), &err);
  cr_assert_eq(pt_save(dir, t, &err), CKPT_OK, "%s", err.message);
  ckpt_tree *back = NULL;
  cr_assert_eq(pt_restore(dir, NULL, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert(ckpt_tree_equal(t, back));
  char *meta = pt_fmt("%s/_METADATA", dir);
  char *text = pt_read(meta, NULL);
  cr_assert(
      strstr(text,
             "\"('d',)\": {\"key_metadata\": [{\"key\": \"d\", \"key_type\": 2}], "
             "\"value_metadata\": {\"value_type\": \"Dict\", \"skip_deserialize\": true}}") != NULL,
      "%s", text);
  cr_assert(strstr(text, "{\"value_type\": \"Tuple\", \"skip_deserialize\": true}") != NULL);
  cr_assert(strstr(text, "{\"value_type\": \"None\", \"skip_deserialize\": true}") != NULL);
  cr_assert(strstr(text, "{\"value_type\": \"List\", \"skip_deserialize\": true}") != NULL);
  free(text);
  free(meta);
  char *z = pt_fmt("%s/e3/.zarray", dir);
  text = pt_read(z, NULL);
  cr_assert(strstr(text, "\"chunks\":[3,1,2]") != NULL, "zero dims become 1: %s", text);
  free(text);
  free(z);
  ckpt_tree_free(back);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

Test(pytree, sequences_and_strings) {
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = ckpt_tree_new_dict();
  ckpt_tree *l = ckpt_tree_new_list();
  for (int i = 0; i < 12; i++)
    ckpt_tree_append(l, ckpt_tree_new_int(CKPT_DTYPE_INT32, i * i), &err);
  ckpt_tree_dict_set(t, "list", l, &err);
  ckpt_tree_dict_set(t, "name", ckpt_tree_new_string("héllo \"w\"\n"), &err);
  ckpt_tree_dict_set(t, "raw", ckpt_tree_new_bytes("\x00\x01\xff", 3), &err);
  cr_assert_eq(pt_save(dir, t, &err), CKPT_OK, "%s", err.message);
  char *sp = pt_fmt("%s/_strings.json", dir);
  char *text = pt_read(sp, NULL);
  cr_assert_str_eq(text, "{\"name\":\"héllo \\\"w\\\"\\n\"}");
  free(text);
  free(sp);
  /* Without a target, bytes come back as the uint8 array they are stored as; with one, as
   * bytes; lists keep their order past index 9 (numeric, not lexical). */
  ckpt_tree *back = NULL;
  cr_assert_eq(pt_restore(dir, NULL, &back, &err), CKPT_OK, "%s", err.message);
  ckpt_scalar s;
  cr_assert(ckpt_tree_scalar(ckpt_tree_get(back, "list.11"), &s));
  cr_assert_eq(s.v.i, 121);
  cr_assert_eq(ckpt_tree_kind(ckpt_tree_get(back, "raw")), CKPT_NODE_ARRAY);
  ckpt_tree_free(back);
  cr_assert_eq(pt_restore(dir, t, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert(ckpt_tree_equal(t, back));
  ckpt_tree_free(back);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

Test(pytree, chunking_non_divisible) {
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t shape[2] = {10, 6};
  ckpt_tree *t = dict1("w", ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT64, 2, shape, 3)));
  ckpt_pytree_save_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.tree = t;
  spec.default_chunk_bytes = 4 * 6 * 8; /* 4 rows */
  cr_assert_eq(ckpt_pytree_save_sync(NULL, false, dir, &spec, &err), CKPT_OK, "%s", err.message);
  for (int i = 0; i < 3; i++) {
    char *c = pt_fmt("%s/w/%d.0", dir, i);
    size_t n;
    char *data = pt_read(c, &n);
    cr_assert_eq(n, 4 * 6 * 8, "every chunk file holds a full (padded) chunk");
    free(data);
    free(c);
  }
  char *c3 = pt_fmt("%s/w/3.0", dir);
  cr_assert(!pt_exists(c3));
  free(c3);
  ckpt_tree *back = NULL;
  cr_assert_eq(pt_restore(dir, NULL, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert(ckpt_tree_equal(t, back));
  ckpt_tree_free(back);
  /* Per-leaf chunk_byte_size and zstd compression. */
  ckpt_pytree_leaf_save la;
  memset(&la, 0, sizeof la);
  la.param = "w";
  la.chunk_byte_size = 2 * 6 * 8;
  la.compression = CKPT_COMPRESSION_ZSTD;
  spec.n_leaf_args = 1;
  spec.leaf_args = &la;
  char *dir2 = pt_tmpdir();
  cr_assert_eq(ckpt_pytree_save_sync(NULL, false, dir2, &spec, &err), CKPT_OK, "%s", err.message);
  char *z = pt_fmt("%s/w/.zarray", dir2);
  char *text = pt_read(z, NULL);
  cr_assert(strstr(text, "\"chunks\":[2,6],\"compressor\":{\"id\":\"zstd\",\"level\":1}") != NULL,
            "%s", text);
  free(text);
  free(z);
  cr_assert_eq(pt_restore(dir2, NULL, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert(ckpt_tree_equal(t, back));
  ckpt_tree_free(back);
  ckpt_tree_free(t);
  pt_rmtree(dir2);
  pt_rmtree(dir);
}

Test(pytree, sharded_save_writes_replica_zero_only) {
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t shape[2] = {4, 6};
  ckpt_array *full = pt_array(CKPT_DTYPE_INT32, 2, shape, 9);
  ckpt_array *a = NULL;
  cr_assert_eq(ckpt_array_new_sharded(CKPT_DTYPE_INT32, 2, shape, &a, &err), CKPT_OK);
  /* Two row shards (replica 0) plus a garbage replica 1 that must not be written. */
  int32_t *src = ckpt_array_data(full);
  int64_t o0[2] = {0, 0}, o1[2] = {2, 0}, s[2] = {2, 6};
  cr_assert_eq(ckpt_array_add_shard(a, o0, s, src, 0, &err), CKPT_OK);
  cr_assert_eq(ckpt_array_add_shard(a, o1, s, src + 12, 0, &err), CKPT_OK);
  cr_assert_eq(ckpt_array_add_shard(a, o0, s, NULL, 1, &err), CKPT_OK);
  memset(a->shards[2].data, 0x55, 48);
  ckpt_tree *t = dict1("w", ckpt_tree_new_array(a));
  cr_assert_eq(pt_save(dir, t, &err), CKPT_OK, "%s", err.message);
  char *z = pt_fmt("%s/w/.zarray", dir);
  char *text = pt_read(z, NULL);
  cr_assert(strstr(text, "\"chunks\":[2,6]") != NULL, "chunk = shard: %s", text);
  free(text);
  free(z);
  ckpt_tree *back = NULL;
  cr_assert_eq(pt_restore(dir, NULL, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert(ckpt_array_equal(ckpt_tree_array(ckpt_tree_dict_get(back, "w")), full));
  ckpt_tree_free(back);
  ckpt_tree_free(t);
  ckpt_array_free(full);
  pt_rmtree(dir);
}

Test(pytree, custom_metadata_and_metadata_query) {
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t shape[1] = {5};
  ckpt_tree *t = dict1("w", ckpt_tree_new_array(pt_array(CKPT_DTYPE_BFLOAT16, 1, shape, 3)));
  ckpt_tree_dict_set(t, "s", ckpt_tree_new_string("x"), &err);
  cJSON *cm = cJSON_Parse("{\"epoch\": 3, \"lr\": 0.5, \"tags\": [\"a\"]}");
  ckpt_pytree_save_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.tree = t;
  spec.custom_metadata = cm;
  cr_assert_eq(ckpt_pytree_save_sync(NULL, false, dir, &spec, &err), CKPT_OK, "%s", err.message);
  char *mp = pt_fmt("%s/_METADATA", dir);
  char *text = pt_read(mp, NULL);
  cr_assert(
      strstr(text, "\"custom_metadata\": {\"epoch\": 3, \"lr\": 0.5, \"tags\": [\"a\"]}}") != NULL,
      "%s", text);
  free(text);
  free(mp);
  cJSON *md = NULL;
  cr_assert_eq(ckpt_pytree_metadata_io(NULL, dir, &md, &err), CKPT_OK, "%s", err.message);
  char *printed = cJSON_PrintUnformatted(md);
  cr_assert(strstr(printed,
                   "\"w\":{\"value_type\":\"np.ndarray\",\"param\":\"w\",\"dtype\":"
                   "\"bfloat16\",\"shape\":[5],\"chunk_shape\":[5]") != NULL,
            "%s", printed);
  cr_assert(
      strstr(printed, "\"s\":{\"value_type\":\"string\",\"param\":\"s\",\"value\":\"x\"}") != NULL,
      "%s", printed);
  cr_assert(strstr(printed, "\"custom_metadata\":{\"epoch\":3") != NULL, "%s", printed);
  free(printed);
  cJSON_Delete(md);
  uint64_t n = 0;
  cr_assert_eq(ckpt_pytree_verify(NULL, dir, &n, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(n, 1);
  cJSON_Delete(cm);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

Test(pytree, save_dtype_cast_and_zero_copy) {
  char *dir = pt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t shape[1] = {6};
  float vals[6] = {1.0f, 1.00390625f, 1.01171875f, -3.5f, 1e-3f, 65504.0f};
  ckpt_array *a = NULL;
  cr_assert_eq(ckpt_array_wrap(CKPT_DTYPE_FLOAT32, 1, shape, vals, &a, &err), CKPT_OK);
  ckpt_tree *t = dict1("w", ckpt_tree_new_array(a));
  ckpt_pytree_leaf_save la;
  memset(&la, 0, sizeof la);
  la.param = "w";
  la.has_dtype = true;
  la.dtype = CKPT_DTYPE_BFLOAT16;
  ckpt_pytree_save_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.tree = t;
  spec.n_leaf_args = 1;
  spec.leaf_args = &la;
  for (int zc = 0; zc < 2; zc++) {
    char *d = pt_fmt("%s/%d", dir, zc);
    cr_assert_eq(mkdir(d, 0777), 0);
    cr_assert_eq(ckpt_pytree_save_sync(NULL, zc == 1, d, &spec, &err), CKPT_OK, "%s", err.message);
    ckpt_tree *back = NULL;
    cr_assert_eq(pt_restore(d, NULL, &back, &err), CKPT_OK, "%s", err.message);
    ckpt_array *b = ckpt_tree_array(ckpt_tree_dict_get(back, "w"));
    cr_assert_eq(b->dtype, CKPT_DTYPE_BFLOAT16, "the save dtype is the stored dtype");
    uint16_t *h = ckpt_array_data(b);
    for (int i = 0; i < 6; i++)
      cr_assert_eq(h[i], ckpt_float_to_bfloat16(vals[i]), "element %d", i);
    ckpt_tree_free(back);
    free(d);
  }
  ckpt_tree_free(t);
  pt_rmtree(dir);
}

Test(pytree, save_args_for_many_leaves_each_reach_their_own_leaf) {
  /* Options are looked up by binary search over the sorted save_args (pytree_save.c,
   * find_leaf_args): given in reverse order, every odd leaf must get zstd and every even one
   * none; of two options for the same leaf the first given wins, as with the search in order. */
  enum { N = 500 };
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = ckpt_tree_new_dict();
  static char names[N][16];
  ckpt_pytree_leaf_save la[N + 1];
  memset(la, 0, sizeof la);
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof names[i], "w%03d", i);
    int64_t shape[1] = {16 + i % 7};
    ckpt_tree_dict_set(t, names[i],
                       ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 1, shape, (uint32_t)i)),
                       &err);
    ckpt_pytree_leaf_save *o = &la[N - 1 - i];
    o->param = names[i];
    o->compression = i % 2 ? CKPT_COMPRESSION_ZSTD : CKPT_COMPRESSION_NONE;
  }
  cr_assert_eq(err.code, CKPT_OK, "%s", err.message);
  la[N].param = names[1]; /* a second option for w001, given last: ignored */
  la[N].compression = CKPT_COMPRESSION_NONE;
  ckpt_pytree_save_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.tree = t;
  spec.leaf_args = la;
  spec.n_leaf_args = N + 1;
  char *dir = pt_tmpdir();
  cr_assert_eq(ckpt_pytree_save_sync(NULL, false, dir, &spec, &err), CKPT_OK, "%s", err.message);
  for (int i = 0; i < N; i++) {
    char *z = pt_fmt("%s/%s/.zarray", dir, names[i]);
    char *text = pt_read(z, NULL);
    bool zstd = strstr(text, "\"compressor\":{\"id\":\"zstd\"") != NULL;
    cr_assert_eq(zstd, i % 2 == 1, "%s: %s", names[i], text);
    free(text);
    free(z);
  }
  ckpt_tree *back = NULL;
  cr_assert_eq(pt_restore(dir, NULL, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert(ckpt_tree_equal(t, back));
  ckpt_tree_free(back);
  /* A param that names no leaf is still refused, wherever it sorts. */
  la[N].param = "w0005";
  char *dir2 = pt_tmpdir();
  cr_assert_eq(ckpt_pytree_save_sync(NULL, false, dir2, &spec, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "'w0005'") != NULL, "%s", err.message);
  pt_rmtree(dir2);
  ckpt_tree_free(t);
  pt_rmtree(dir);
}
