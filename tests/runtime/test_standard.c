/* test_standard.c — StandardCheckpointHandler and PyTreeCheckpointHandler through real
 * checkpointers (sync and async, copying and zero-copy) and inside a Composite: Orbax's leaf
 * rules, strict restores, per-leaf save/restore args from the generated maps, transforms,
 * partial restore, metadata, and the typestr recorded in _CHECKPOINT_METADATA. */
#include "test_pytree_util.h"

static ckpt_checkpointer *ckptr(const ckpt_handler_desc *h, bool async, bool zero_copy) {
  ckpt_checkpointer_options o = CKPT_CHECKPOINTER_OPTIONS_INIT;
  o.async = async;
  o.zero_copy = zero_copy;
  ckpt_checkpointer *c = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_new(h, &o, &c, &err), CKPT_OK, "%s", err.message);
  return c;
}

static void close_ok(ckpt_checkpointer *c) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
}

static ckpt_tree *state(uint32_t seed) {
  ckpt_error err = CKPT_ERROR_INIT;
  int64_t s2[2] = {16, 8}, s1[1] = {8};
  ckpt_tree *t = ckpt_tree_new_dict();
  ckpt_tree *p = ckpt_tree_new_dict();
  ckpt_tree_dict_set(p, "w", ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 2, s2, seed)), &err);
  ckpt_tree_dict_set(p, "b", ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 1, s1, seed + 1)),
                     &err);
  ckpt_tree_dict_set(t, "params", p, &err);
  ckpt_tree *o = ckpt_tree_new_tuple();
  ckpt_tree_append(o, ckpt_tree_new_array(pt_array(CKPT_DTYPE_BFLOAT16, 2, s2, seed + 2)), &err);
  ckpt_tree_append(o, ckpt_tree_new_int(CKPT_DTYPE_INT32, 5), &err);
  ckpt_tree_dict_set(t, "opt", o, &err);
  ckpt_tree_dict_set(t, "step", ckpt_tree_new_int(CKPT_DTYPE_INT64, 100), &err);
  cr_assert_eq(err.code, CKPT_OK, "%s", err.message);
  return t;
}

static ckpt_StandardSave *standard_save(ckpt_tree *item) {
  ckpt_StandardSave *a = ckpt_StandardSave_new();
  cr_assert_not_null(a);
  a->item = item;
  return a;
}

Test(standard, round_trip_sync_and_async) {
  for (int mode = 0; mode < 3; mode++) {
    bool async = mode >= 1, zc = mode == 2;
    char *root = pt_tmpdir();
    char *path = pt_fmt("%s/ckpt", root);
    ckpt_checkpointer *c = ckptr(&ckpt_StandardCheckpointHandler_desc, async, zc);
    ckpt_tree *t = state(1);
    ckpt_tree *expect = ckpt_tree_clone(t);
    ckpt_StandardSave *a = standard_save(t);
    ckpt_error err = CKPT_ERROR_INIT;
    cr_assert_eq(ckpt_checkpointer_save(c, path, &a->base, false, NULL, &err), CKPT_OK, "%s",
                 err.message);
    if (!zc) {
      /* A copying save has its snapshot: changing the source now must not matter. */
      float *w = ckpt_array_data(ckpt_tree_array(ckpt_tree_get(t, "params.w")));
      w[0] = 12345.0f;
    }
    cr_assert_eq(ckpt_checkpointer_wait_until_finished(c, &err), CKPT_OK, "%s", err.message);
    ckpt_args_delete(&a->base);
    ckpt_value v;
    memset(&v, 0, sizeof v);
    cr_assert_eq(ckpt_checkpointer_restore(c, path, NULL, &v, &err), CKPT_OK, "%s", err.message);
    cr_assert_eq(v.kind, CKPT_VALUE_TREE);
    /* Without a target tuples come back as lists (as in Orbax); compare leaf by leaf. */
    cr_assert(ckpt_tree_equal(ckpt_tree_dict_get(v.u.tree, "params"),
                              ckpt_tree_dict_get(expect, "params")));
    cr_assert(ckpt_tree_equal(ckpt_tree_get(v.u.tree, "opt.0"), ckpt_tree_get(expect, "opt.0")));
    ckpt_value_free(&v);
    /* With a target, the tuple structure is kept exactly. */
    ckpt_StandardRestore *r = ckpt_StandardRestore_new();
    r->item = ckpt_tree_clone(expect);
    cr_assert_eq(ckpt_checkpointer_restore(c, path, &r->base, &v, &err), CKPT_OK, "%s",
                 err.message);
    cr_assert(ckpt_tree_equal(v.u.tree, expect));
    ckpt_value_free(&v);
    ckpt_args_delete(&r->base);
    char *cm = pt_fmt("%s/_CHECKPOINT_METADATA", path);
    char *text = pt_read(cm, NULL);
    cr_assert(strstr(text,
                     "orbax.checkpoint._src.handlers.standard_checkpoint_handler."
                     "StandardCheckpointHandler") != NULL,
              "%s", text);
    free(text);
    free(cm);
    ckpt_tree_free(expect);
    close_ok(c);
    free(path);
    pt_rmtree(root);
  }
}

Test(standard, leaf_rules) {
  char *root = pt_tmpdir();
  char *path = pt_fmt("%s/ckpt", root);
  ckpt_checkpointer *c = ckptr(&ckpt_StandardCheckpointHandler_desc, false, false);
  ckpt_tree *t = state(2);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree_dict_set(ckpt_tree_dict_get(t, "params"), "name", ckpt_tree_new_string("x"), &err);
  ckpt_StandardSave *a = standard_save(t);
  cr_assert_eq(ckpt_checkpointer_save(c, path, &a->base, false, NULL, &err), CKPT_ETYPE);
  cr_assert(strstr(err.message, "('params', 'name')") != NULL, "%s", err.message);
  cr_assert(!pt_exists(path), "a failed save leaves nothing behind");
  ckpt_tree_dict_remove(ckpt_tree_dict_get(t, "params"), "name");
  /* aggregate=true is rejected, an unknown dtype name too. */
  a->save_args = calloc(1, sizeof *a->save_args);
  a->n_save_args = 1;
  a->has_save_args = true;
  a->save_args[0].key = strdup("params.w");
  ckpt_SaveArgs_init(&a->save_args[0].value);
  a->save_args[0].value.aggregate = true;
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_save(c, path, &a->base, false, NULL, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "aggregate") != NULL, "%s", err.message);
  a->save_args[0].value.aggregate = false;
  a->save_args[0].value.dtype = strdup("float33");
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_save(c, path, &a->base, false, NULL, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "float33") != NULL, "%s", err.message);
  free(a->save_args[0].value.dtype);
  a->save_args[0].value.dtype = strdup("float16");
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_save(c, path, &a->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  char *z = pt_fmt("%s/params.w/.zarray", path);
  char *text = pt_read(z, NULL);
  cr_assert(strstr(text, "\"dtype\":\"<f2\"") != NULL, "%s", text);
  free(text);
  free(z);
  /* Wrong args types are refused by name. */
  ckpt_PyTreeRestore *wrong = ckpt_PyTreeRestore_new();
  ckpt_value v;
  memset(&v, 0, sizeof v);
  ckpt_error_clear(&err);
  cr_assert_neq(ckpt_checkpointer_restore(c, path, &wrong->base, &v, &err), CKPT_OK);
  ckpt_args_delete(&wrong->base);
  ckpt_args_delete(&a->base);
  close_ok(c);
  free(path);
  pt_rmtree(root);
}

Test(standard, strict_restore) {
  char *root = pt_tmpdir();
  char *path = pt_fmt("%s/ckpt", root);
  ckpt_checkpointer *c = ckptr(&ckpt_StandardCheckpointHandler_desc, false, false);
  ckpt_StandardSave *a = standard_save(state(3));
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_save(c, path, &a->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  /* A larger model from a smaller checkpoint is an error (orbax#2972), unless strict=false. */
  ckpt_tree *target = ckpt_tree_clone(a->item);
  int64_t bigger[1] = {12};
  ckpt_array *b = NULL;
  ckpt_array_new(CKPT_DTYPE_FLOAT32, 1, bigger, &b, &err);
  ckpt_tree_dict_set(ckpt_tree_dict_get(target, "params"), "b", ckpt_tree_new_array(b), &err);
  ckpt_StandardRestore *r = ckpt_StandardRestore_new();
  cr_assert(r->strict, "strict defaults to true");
  r->item = target;
  ckpt_value v;
  memset(&v, 0, sizeof v);
  cr_assert_eq(ckpt_checkpointer_restore(c, path, &r->base, &v, &err), CKPT_EMISMATCH);
  cr_assert(strstr(err.message, "('params', 'b')") != NULL, "%s", err.message);
  r->strict = false;
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_restore(c, path, &r->base, &v, &err), CKPT_OK, "%s", err.message);
  const float *got = ckpt_array_data(ckpt_tree_array(ckpt_tree_get(v.u.tree, "params.b")));
  const float *want = ckpt_array_data(ckpt_tree_array(ckpt_tree_get(a->item, "params.b")));
  for (int i = 0; i < 12; i++)
    cr_assert_eq(got[i], i < 8 ? want[i] : 0.0f);
  ckpt_value_free(&v);
  /* An extra leaf in the target: structure mismatch (StandardRestore has no partial mode). */
  ckpt_tree_dict_set(r->item, "extra", ckpt_tree_new_int(CKPT_DTYPE_INT8, 1), &err);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_restore(c, path, &r->base, &v, &err), CKPT_EMISMATCH);
  cr_assert(strstr(err.message, "('extra',)") != NULL, "%s", err.message);
  ckpt_args_delete(&r->base);
  ckpt_args_delete(&a->base);
  close_ok(c);
  free(path);
  pt_rmtree(root);
}

Test(pytree_handler, args_maps_transforms_partial_and_metadata) {
  char *root = pt_tmpdir();
  char *path = pt_fmt("%s/ckpt", root);
  ckpt_checkpointer *c = ckptr(&ckpt_PyTreeCheckpointHandler_desc, true, false);
  ckpt_tree *t = state(4);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree_dict_set(t, "name", ckpt_tree_new_string("run-7"), &err);
  ckpt_PyTreeSave *a = ckpt_PyTreeSave_new();
  a->item = t;
  a->has_save_args = true;
  a->n_save_args = 1;
  a->save_args = calloc(1, sizeof *a->save_args);
  a->save_args[0].key = strdup("params.w");
  ckpt_SaveArgs_init(&a->save_args[0].value);
  a->save_args[0].value.has_chunk_byte_size = true;
  a->save_args[0].value.chunk_byte_size = 4 * 8 * 4;
  a->save_args[0].value.compression = strdup("zstd");
  a->custom_metadata = cJSON_Parse("{\"note\": \"hi\"}");
  cr_assert_eq(ckpt_checkpointer_save(c, path, &a->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  cr_assert_eq(ckpt_checkpointer_wait_until_finished(c, &err), CKPT_OK, "%s", err.message);
  char *z = pt_fmt("%s/params.w/.zarray", path);
  char *text = pt_read(z, NULL);
  cr_assert(strstr(text, "\"chunks\":[4,8],\"compressor\":{\"id\":\"zstd\"") != NULL, "%s", text);
  free(text);
  free(z);
  /* Restore: rename params.* to model.*, cast model.w to float64, partial (no opt). */
  ckpt_PyTreeRestore *r = ckpt_PyTreeRestore_new();
  cr_assert(r->transforms_default_to_original);
  r->has_transforms = true;
  r->n_transforms = 1;
  r->transforms = calloc(1, sizeof *r->transforms);
  r->transforms[0].pattern = strdup("params\\.(.*)");
  r->transforms[0].replacement = strdup("model.\\1");
  r->has_restore_args = true;
  r->n_restore_args = 1;
  r->restore_args = calloc(1, sizeof *r->restore_args);
  r->restore_args[0].key = strdup("model.w");
  ckpt_RestoreArgs_init(&r->restore_args[0].value);
  r->restore_args[0].value.dtype = strdup("float64");
  ckpt_tree *target = ckpt_tree_new_dict();
  ckpt_tree *m = ckpt_tree_new_dict();
  int64_t s2[2] = {16, 8};
  ckpt_array *w = NULL;
  ckpt_array_new(CKPT_DTYPE_FLOAT32, 2, s2, &w, &err);
  ckpt_tree_dict_set(m, "w", ckpt_tree_new_array(w), &err);
  ckpt_tree_dict_set(target, "model", m, &err);
  ckpt_tree_dict_set(target, "name", ckpt_tree_new_string(""), &err);
  r->item = target;
  r->partial_restore = true;
  ckpt_value v;
  memset(&v, 0, sizeof v);
  cr_assert_eq(ckpt_checkpointer_restore(c, path, &r->base, &v, &err), CKPT_OK, "%s", err.message);
  const ckpt_array *got = ckpt_tree_array(ckpt_tree_get(v.u.tree, "model.w"));
  cr_assert_eq(got->dtype, CKPT_DTYPE_FLOAT64, "restore_args dtype wins over the target's");
  const float *orig = ckpt_array_data(ckpt_tree_array(ckpt_tree_get(t, "params.w")));
  for (int i = 0; i < 128; i++)
    cr_assert_eq(((const double *)ckpt_array_data(got))[i], (double)orig[i]);
  cr_assert_str_eq(ckpt_tree_string(ckpt_tree_dict_get(v.u.tree, "name")), "run-7");
  cr_assert_null(ckpt_tree_dict_get(v.u.tree, "opt"));
  ckpt_value_free(&v);
  /* Metadata through the checkpointer: the handler's tree description is included. */
  cJSON *md = NULL;
  cr_assert_eq(ckpt_checkpointer_metadata(c, path, &md, &err), CKPT_OK, "%s", err.message);
  char *printed = cJSON_PrintUnformatted(md);
  cr_assert(strstr(printed, "\"chunk_shape\":[4,8]") != NULL, "%s", printed);
  cr_assert(strstr(printed, "\"note\":\"hi\"") != NULL, "%s", printed);
  free(printed);
  cJSON_Delete(md);
  ckpt_args_delete(&r->base);
  ckpt_args_delete(&a->base);
  close_ok(c);
  free(path);
  pt_rmtree(root);
}

Test(pytree_handler, inside_a_composite) {
  char *root = pt_tmpdir();
  char *path = pt_fmt("%s/7", root);
  ckpt_checkpointer *c = ckptr(NULL, true, false);
  ckpt_Composite *comp = ckpt_composite_new();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = state(5);
  ckpt_tree *expect = ckpt_tree_clone(t);
  cr_assert_eq(ckpt_composite_add(comp, "state", &standard_save(t)->base, &err), CKPT_OK);
  ckpt_PyTreeSave *meta = ckpt_PyTreeSave_new();
  meta->item = ckpt_tree_new_dict();
  ckpt_tree_dict_set(meta->item, "tag", ckpt_tree_new_string("best"), &err);
  cr_assert_eq(ckpt_composite_add(comp, "extra", &meta->base, &err), CKPT_OK);
  cr_assert_eq(ckpt_checkpointer_save(c, path, &comp->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  ckpt_args_delete(&comp->base);
  cr_assert_eq(ckpt_checkpointer_wait_until_finished(c, &err), CKPT_OK, "%s", err.message);
  char *f = pt_fmt("%s/state/params.w/0.0", path);
  cr_assert(pt_exists(f));
  free(f);
  f = pt_fmt("%s/extra/_strings.json", path);
  cr_assert(pt_exists(f));
  free(f);
  ckpt_value v;
  memset(&v, 0, sizeof v);
  cr_assert_eq(ckpt_checkpointer_restore(c, path, NULL, &v, &err), CKPT_OK, "%s", err.message);
  ckpt_value *sv = ckpt_value_item_get(&v, "state");
  cr_assert_not_null(sv);
  cr_assert(ckpt_tree_equal(ckpt_tree_dict_get(sv->u.tree, "params"),
                            ckpt_tree_dict_get(expect, "params")));
  ckpt_value *ev = ckpt_value_item_get(&v, "extra");
  cr_assert_str_eq(ckpt_tree_string(ckpt_tree_dict_get(ev->u.tree, "tag")), "best");
  ckpt_value_free(&v);
  ckpt_tree_free(expect);
  close_ok(c);
  free(path);
  pt_rmtree(root);
}
