/* test_array_handler.c — ArrayCheckpointHandler: one array stored as Orbax stores it (the
 * PyTree {"checkpoint": item} without OCDBT), restored as saved, into caller boxes, with a
 * dtype cast and a global shape, and for 0-d arrays. */
#include "test_pytree_util.h"

static ckpt_checkpointer *array_ckptr(void) {
  ckpt_checkpointer *c = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_new(&ckpt_ArrayCheckpointHandler_desc, NULL, &c, &err), CKPT_OK,
               "%s", err.message);
  return c;
}

static ckpt_value restore_array(ckpt_checkpointer *c, const char *path, ckpt_ArrayRestore *r) {
  ckpt_value v;
  memset(&v, 0, sizeof v);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_restore(c, path, r ? &r->base : NULL, &v, &err), CKPT_OK, "%s",
               err.message);
  cr_assert_eq(v.kind, CKPT_VALUE_ARRAY);
  return v;
}

Test(array_handler, layout_and_round_trip) {
  char *root = pt_tmpdir();
  char *path = pt_fmt("%s/a", root);
  ckpt_checkpointer *c = array_ckptr();
  int64_t shape[3] = {5, 4, 3};
  ckpt_ArraySave *a = ckpt_ArraySave_new();
  a->item = pt_array(CKPT_DTYPE_INT16, 3, shape, 11);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_save(c, path, &a->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  char *m = pt_fmt("%s/_METADATA", path);
  char *text = pt_read(m, NULL);
  cr_assert(strstr(text,
                   "{\"tree_metadata\": {\"('checkpoint',)\": {\"key_metadata\": [{\"key\": "
                   "\"checkpoint\", \"key_type\": 2}], \"value_metadata\": {\"value_type\": "
                   "\"np.ndarray\"") != NULL,
            "%s", text);
  cr_assert(strstr(text, "\"use_ocdbt\": false") != NULL);
  free(text);
  free(m);
  char *z = pt_fmt("%s/checkpoint/.zarray", path);
  cr_assert(pt_exists(z));
  free(z);
  ckpt_value v = restore_array(c, path, NULL);
  cr_assert(ckpt_array_equal(v.u.array, a->item));
  ckpt_value_free(&v);
  ckpt_args_delete(&a->base);
  ckpt_error e2 = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_close(c, &e2), CKPT_OK);
  free(path);
  pt_rmtree(root);
}

Test(array_handler, restore_into_boxes_with_cast_and_shape) {
  char *root = pt_tmpdir();
  char *path = pt_fmt("%s/a", root);
  ckpt_checkpointer *c = array_ckptr();
  int64_t shape[2] = {6, 4};
  ckpt_ArraySave *a = ckpt_ArraySave_new();
  a->item = pt_array(CKPT_DTYPE_FLOAT32, 2, shape, 12);
  a->has_save_args = true;
  ckpt_SaveArgs_init(&a->save_args);
  a->save_args.has_chunk_byte_size = true;
  a->save_args.chunk_byte_size = 4 * 4 * 4; /* chunks of 4 rows: 4 + 2 (padded) */
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_save(c, path, &a->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  /* Target boxes: two column halves, one in caller memory. */
  ckpt_ArrayRestore *r = ckpt_ArrayRestore_new();
  float left[12];
  ckpt_array_new_sharded(CKPT_DTYPE_FLOAT32, 2, shape, &r->item, &err);
  int64_t o0[2] = {0, 0}, o1[2] = {0, 2}, s[2] = {6, 2};
  ckpt_array_add_shard(r->item, o0, s, left, 0, &err);
  ckpt_array_add_shard(r->item, o1, s, NULL, 0, &err);
  ckpt_value v = restore_array(c, path, r);
  const float *src = ckpt_array_data(a->item);
  cr_assert_eq(v.u.array->shards[0].data, left);
  for (int row = 0; row < 6; row++)
    for (int col = 0; col < 4; col++) {
      const ckpt_shard *sh = &v.u.array->shards[col / 2];
      cr_assert_eq(((const float *)sh->data)[row * 2 + col % 2], src[row * 4 + col]);
    }
  ckpt_value_free(&v);
  ckpt_args_delete(&r->base);
  /* restore_args: a cast to float64 and a smaller global shape (non-strict truncation). */
  r = ckpt_ArrayRestore_new();
  r->has_restore_args = true;
  ckpt_RestoreArgs_init(&r->restore_args);
  r->restore_args.dtype = strdup("float64");
  r->restore_args.has_global_shape = true;
  r->restore_args.n_global_shape = 2;
  r->restore_args.global_shape = calloc(2, sizeof(int64_t));
  r->restore_args.global_shape[0] = 3;
  r->restore_args.global_shape[1] = 4;
  ckpt_error_clear(&err);
  ckpt_value bad;
  memset(&bad, 0, sizeof bad);
  cr_assert_eq(ckpt_checkpointer_restore(c, path, &r->base, &bad, &err), CKPT_EMISMATCH,
               "strict by default");
  r->restore_args.strict = false;
  v = restore_array(c, path, r);
  cr_assert_eq(v.u.array->dtype, CKPT_DTYPE_FLOAT64);
  cr_assert_eq(v.u.array->shape[0], 3);
  const double *d = ckpt_array_data(v.u.array);
  for (int i = 0; i < 12; i++)
    cr_assert_eq(d[i], (double)src[i]);
  ckpt_value_free(&v);
  ckpt_args_delete(&r->base);
  ckpt_args_delete(&a->base);
  ckpt_error e2 = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_close(c, &e2), CKPT_OK);
  free(path);
  pt_rmtree(root);
}

Test(array_handler, zero_d_array) {
  char *root = pt_tmpdir();
  char *path = pt_fmt("%s/a", root);
  ckpt_checkpointer *c = array_ckptr();
  ckpt_ArraySave *a = ckpt_ArraySave_new();
  a->item = pt_array(CKPT_DTYPE_COMPLEX128, 0, NULL, 13);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_save(c, path, &a->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  char *chunk = pt_fmt("%s/checkpoint/0", path);
  size_t n;
  char *data = pt_read(chunk, &n);
  cr_assert_eq(n, 16);
  free(data);
  free(chunk);
  ckpt_value v = restore_array(c, path, NULL);
  cr_assert_eq(v.u.array->ndim, 0);
  cr_assert(ckpt_array_equal(v.u.array, a->item));
  ckpt_value_free(&v);
  ckpt_args_delete(&a->base);
  ckpt_error e2 = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_close(c, &e2), CKPT_OK);
  free(path);
  pt_rmtree(root);
}
