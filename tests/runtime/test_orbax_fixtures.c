/* test_orbax_fixtures.c — the acceptance test of Orbax compatibility through the C API: every
 * real Orbax checkpoint of ../shared/orbax-fixtures (written by Orbax + TensorStore; its
 * README lists them and the values they hold), copied into a temporary directory, restores
 * with exactly those values — without args, with args into the caller's buffers, partially,
 * resharded, through a CheckpointManager — and keeps its custom metadata; with Orbax's
 * optional files deleted (_METADATA, _CHECKPOINT_METADATA, _sharding and array_metadatas/) it
 * still restores without args. The damaged one (v0_standard_missing_d) fails on every path
 * with an error naming the missing data. Skipped, saying so, when the fixtures are absent.
 * The ckpt tool's side is tests/cli/test_cli_orbax_fixtures.c. */
#include "test_pytree_util.h"

#define ORBAX_FIXTURES CKPT_SOURCE_DIR "/../shared/orbax-fixtures"

#define NEED_FIXTURES()                                                             \
  do {                                                                              \
    if (!pt_exists(ORBAX_FIXTURES "/v0_standard"))                                  \
      cr_skip_test("Orbax fixtures not found at %s: test skipped", ORBAX_FIXTURES); \
  } while (0)

static const int32_t WANT_A[8] = {0, 1, 2, 3, 4, 5, 6, 7}, WANT_BC[3] = {1, 2, 3};

/* The three good fixtures; the first is a single StandardCheckpointHandler item, the others
 * composites with items `state` (the tree) and `metadata` (JSON). */
static const char *const GOOD[] = {"v0_standard", "v0_composite", "v1_composite_zarr3"};
#define N_GOOD (sizeof GOOD / sizeof *GOOD)

static bool is_standard(size_t i) {
  return i == 0;
}

/* A copy of fixture name at <tmp>/<as> (as may be "1" for a step); returns the copy's path,
 * *root the temporary directory (pt_rmtree it). */
static char *copy_fixture(const char *name, const char *as, char **root) {
  *root = pt_tmpdir();
  char *dst = pt_fmt("%s/%s", *root, as);
  char *cmd = pt_fmt("cp -r '%s/%s' '%s'", ORBAX_FIXTURES, name, dst);
  cr_assert_eq(system(cmd), 0, "%s", cmd);
  free(cmd);
  return dst;
}

/* The directory of the PyTree item in a copy of GOOD[i]. */
static char *item_dir(const char *ck, size_t i) {
  return is_standard(i) ? pt_fmt("%s", ck) : pt_fmt("%s/state", ck);
}

static void remove_path(const char *dir, const char *rel) {
  char *cmd = pt_fmt("rm -r '%s/%s'", dir, rel);
  cr_assert_eq(system(cmd), 0, "%s", cmd);
  free(cmd);
}

static void expect_int32(const ckpt_tree *t, const char *path, size_t n, const int32_t *want) {
  const ckpt_array *a = ckpt_tree_array(ckpt_tree_get(t, path));
  cr_assert_not_null(a, "no array at %s", path);
  cr_assert_eq(a->dtype, CKPT_DTYPE_INT32, "%s", path);
  cr_assert(a->ndim == 1 && a->shape[0] == (int64_t)n, "%s", path);
  cr_assert_eq(a->n_shards, 1, "%s", path);
  cr_assert_arr_eq(a->shards[0].data, want, n * sizeof *want, "%s", path);
}

static void expect_tree(const ckpt_tree *t) {
  cr_assert_eq(ckpt_tree_count(t), 2);
  expect_int32(t, "a", 8, WANT_A);
  expect_int32(t, "b.c", 3, WANT_BC);
}

static void expect_json_item(const ckpt_value *v) {
  const ckpt_value *m = ckpt_value_item_get(v, "metadata");
  cr_assert(m != NULL && m->kind == CKPT_VALUE_JSON);
  cr_assert_eq(cJSON_GetArraySize(m->u.json), 1);
  cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m->u.json, "metadata")),
                   "json_data");
}

/* The value a restore without args gives for GOOD[i]. */
static void expect_value(const ckpt_value *v, size_t i) {
  if (is_standard(i)) {
    cr_assert_eq(v->kind, CKPT_VALUE_TREE);
    expect_tree(v->u.tree);
    return;
  }
  cr_assert_eq(v->kind, CKPT_VALUE_COMPOSITE);
  cr_assert_eq(v->u.composite.count, 2, "%s: %zu items", GOOD[i], v->u.composite.count);
  const ckpt_value *s = ckpt_value_item_get(v, "state");
  cr_assert(s != NULL && s->kind == CKPT_VALUE_TREE);
  expect_tree(s->u.tree);
  expect_json_item(v);
}

static ckpt_checkpointer *checkpointer_for(size_t i) {
  ckpt_checkpointer *c = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_new(is_standard(i) ? &ckpt_StandardCheckpointHandler_desc : NULL,
                                     NULL, &c, &err),
               CKPT_OK, "%s", err.message);
  return c;
}

static void close_ok(ckpt_checkpointer *c) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
}

/* Restores GOOD[i] (a copy at ck) without args and checks every value. */
static void restore_without_args(const char *ck, size_t i) {
  ckpt_checkpointer *c = checkpointer_for(i);
  ckpt_value v = {0};
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_restore(c, ck, NULL, &v, &err), CKPT_OK, "%s: %s", ck,
               err.message);
  expect_value(&v, i);
  ckpt_value_free(&v);
  close_ok(c);
}

Test(orbax_fixtures, restore_without_args) {
  NEED_FIXTURES();
  for (size_t i = 0; i < N_GOOD; i++) {
    char *root;
    char *ck = copy_fixture(GOOD[i], "ck", &root);
    restore_without_args(ck, i);
    pt_rmtree(root);
    free(ck);
  }
}

/* The args of a restore of GOOD[i] with target as the tree: StandardRestore for the standard
 * item, else Composite{state: PyTreeRestore (partial as asked), metadata: JsonRestore}. The
 * args own target. */
static ckpt_args *restore_args(size_t i, ckpt_tree *target, bool partial) {
  ckpt_error err = CKPT_ERROR_INIT;
  if (is_standard(i) && !partial) {
    ckpt_StandardRestore *s = ckpt_StandardRestore_new();
    s->item = target;
    s->strict = true;
    return &s->base;
  }
  ckpt_PyTreeRestore *p = ckpt_PyTreeRestore_new();
  p->item = target;
  p->partial_restore = partial;
  if (is_standard(i))
    return &p->base;
  ckpt_Composite *args = ckpt_composite_new();
  cr_assert_eq(ckpt_composite_add(args, "state", &p->base, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_composite_add(args, "metadata", &ckpt_JsonRestore_new()->base, &err),
               CKPT_OK, "%s", err.message);
  return &args->base;
}

static const ckpt_tree *restored_tree(const ckpt_value *v, size_t i) {
  if (is_standard(i)) {
    cr_assert_eq(v->kind, CKPT_VALUE_TREE);
    return v->u.tree;
  }
  cr_assert_eq(v->kind, CKPT_VALUE_COMPOSITE);
  expect_json_item(v);
  const ckpt_value *s = ckpt_value_item_get(v, "state");
  cr_assert(s != NULL && s->kind == CKPT_VALUE_TREE);
  return s->u.tree;
}

/* A checkpointer that takes the args restore_args builds: a PyTree one for the standard
 * fixture read partially (StandardRestore has no partial_restore). */
static ckpt_checkpointer *checkpointer_for_args(size_t i, bool partial) {
  if (!(is_standard(i) && partial))
    return checkpointer_for(i);
  ckpt_checkpointer *c = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_new(&ckpt_PyTreeCheckpointHandler_desc, NULL, &c, &err), CKPT_OK,
               "%s", err.message);
  return c;
}

Test(orbax_fixtures, restore_with_args_into_caller_buffers) {
  NEED_FIXTURES();
  for (size_t i = 0; i < N_GOOD; i++) {
    char *root;
    char *ck = copy_fixture(GOOD[i], "ck", &root);
    int32_t buf_a[8], buf_c[3];
    memset(buf_a, 0x5a, sizeof buf_a);
    memset(buf_c, 0x5a, sizeof buf_c);
    int64_t sa[1] = {8}, sc[1] = {3};
    ckpt_array *a = NULL, *c = NULL;
    ckpt_error err = CKPT_ERROR_INIT;
    cr_assert_eq(ckpt_array_wrap(CKPT_DTYPE_INT32, 1, sa, buf_a, &a, &err), CKPT_OK);
    cr_assert_eq(ckpt_array_wrap(CKPT_DTYPE_INT32, 1, sc, buf_c, &c, &err), CKPT_OK);
    ckpt_tree *target = ckpt_tree_new_dict(), *b = ckpt_tree_new_dict();
    cr_assert_eq(ckpt_tree_dict_set(b, "c", ckpt_tree_new_array(c), &err), CKPT_OK);
    cr_assert_eq(ckpt_tree_dict_set(target, "a", ckpt_tree_new_array(a), &err), CKPT_OK);
    cr_assert_eq(ckpt_tree_dict_set(target, "b", b, &err), CKPT_OK);
    ckpt_args *args = restore_args(i, target, false);
    ckpt_checkpointer *ckptr = checkpointer_for_args(i, false);
    ckpt_value v = {0};
    cr_assert_eq(ckpt_checkpointer_restore(ckptr, ck, args, &v, &err), CKPT_OK, "%s: %s",
                 GOOD[i], err.message);
    expect_tree(restored_tree(&v, i));
    /* the values went into the caller's memory */
    cr_assert_arr_eq(buf_a, WANT_A, sizeof buf_a, "%s", GOOD[i]);
    cr_assert_arr_eq(buf_c, WANT_BC, sizeof buf_c, "%s", GOOD[i]);
    ckpt_value_free(&v);
    ckpt_args_delete(args);
    close_ok(ckptr);
    pt_rmtree(root);
    free(ck);
  }
}

Test(orbax_fixtures, partial_and_resharded_restores) {
  NEED_FIXTURES();
  for (size_t i = 0; i < N_GOOD; i++) {
    char *root;
    char *ck = copy_fixture(GOOD[i], "ck", &root);
    ckpt_error err = CKPT_ERROR_INIT;
    ckpt_checkpointer *ckptr = checkpointer_for_args(i, true);
    /* only b.c */
    int64_t sc[1] = {3};
    ckpt_array *c = NULL;
    cr_assert_eq(ckpt_array_new(CKPT_DTYPE_INT32, 1, sc, &c, &err), CKPT_OK);
    ckpt_tree *target = ckpt_tree_new_dict(), *b = ckpt_tree_new_dict();
    cr_assert_eq(ckpt_tree_dict_set(b, "c", ckpt_tree_new_array(c), &err), CKPT_OK);
    cr_assert_eq(ckpt_tree_dict_set(target, "b", b, &err), CKPT_OK);
    ckpt_args *args = restore_args(i, target, true);
    ckpt_value v = {0};
    cr_assert_eq(ckpt_checkpointer_restore(ckptr, ck, args, &v, &err), CKPT_OK, "%s: %s",
                 GOOD[i], err.message);
    const ckpt_tree *t = restored_tree(&v, i);
    cr_assert_eq(ckpt_tree_count(t), 1, "%s", GOOD[i]);
    cr_assert_null(ckpt_tree_get(t, "a"));
    expect_int32(t, "b.c", 3, WANT_BC);
    ckpt_value_free(&v);
    ckpt_args_delete(args);
    /* a alone, in two shards cutting its one stored chunk: [0, 3) and [3, 8) */
    int64_t shape[1] = {8}, o0[1] = {0}, s0[1] = {3}, o1[1] = {3}, s1[1] = {5};
    ckpt_array *tgt = NULL;
    cr_assert_eq(ckpt_array_new_sharded(CKPT_DTYPE_INT32, 1, shape, &tgt, &err), CKPT_OK);
    cr_assert_eq(ckpt_array_add_shard(tgt, o0, s0, NULL, 0, &err), CKPT_OK);
    cr_assert_eq(ckpt_array_add_shard(tgt, o1, s1, NULL, 0, &err), CKPT_OK);
    target = ckpt_tree_new_dict();
    cr_assert_eq(ckpt_tree_dict_set(target, "a", ckpt_tree_new_array(tgt), &err), CKPT_OK);
    args = restore_args(i, target, true);
    cr_assert_eq(ckpt_checkpointer_restore(ckptr, ck, args, &v, &err), CKPT_OK, "%s: %s",
                 GOOD[i], err.message);
    t = restored_tree(&v, i);
    cr_assert_null(ckpt_tree_get(t, "b"));
    const ckpt_array *a = ckpt_tree_array(ckpt_tree_get(t, "a"));
    cr_assert(a != NULL && a->n_shards == 2, "%s", GOOD[i]);
    cr_assert(a->shards[0].offset[0] == 0 && a->shards[1].offset[0] == 3);
    cr_assert_arr_eq(a->shards[0].data, WANT_A, 3 * sizeof(int32_t), "%s", GOOD[i]);
    cr_assert_arr_eq(a->shards[1].data, WANT_A + 3, 5 * sizeof(int32_t), "%s", GOOD[i]);
    ckpt_value_free(&v);
    ckpt_args_delete(args);
    close_ok(ckptr);
    pt_rmtree(root);
    free(ck);
  }
}

static void expect_custom(const cJSON *step_metadata, const char *what) {
  const cJSON *cm = cJSON_GetObjectItemCaseSensitive(step_metadata, "custom_metadata");
  cr_assert(cJSON_IsObject(cm), "%s: no custom_metadata object", what);
  cr_assert_eq(cJSON_GetArraySize(cm), 1, "%s", what);
  cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cm, "custom")), "meta",
                   "%s", what);
}

Test(orbax_fixtures, custom_metadata) {
  NEED_FIXTURES();
  for (size_t i = 0; i < N_GOOD; i++) {
    char *root;
    char *ck = copy_fixture(GOOD[i], "ck", &root);
    ckpt_checkpointer *c = checkpointer_for(i);
    cJSON *md = NULL;
    ckpt_error err = CKPT_ERROR_INIT;
    cr_assert_eq(ckpt_checkpointer_metadata(c, ck, &md, &err), CKPT_OK, "%s: %s", GOOD[i],
                 err.message);
    expect_custom(cJSON_GetObjectItemCaseSensitive(md, "step_metadata"), GOOD[i]);
    cJSON_Delete(md);
    close_ok(c);
    pt_rmtree(root);
    free(ck);
  }
}

/* A manager's directory holding fixture name as step 1: a composite is the step directory; a
 * single-handler checkpoint is the item `default` of a single-item step, as a manager saves
 * one (its _CHECKPOINT_METADATA moved up to the step). Returns the step's path. */
static char *copy_as_step(const char *name, bool single, char **root) {
  if (!single)
    return copy_fixture(name, "1", root);
  char *item = copy_fixture(name, "default", root);
  char *step = pt_fmt("%s/1", *root);
  char *cmd = pt_fmt("mkdir '%s' && mv '%s' '%s/' && mv '%s/default/_CHECKPOINT_METADATA' '%s/'",
                     step, item, step, step, step);
  cr_assert_eq(system(cmd), 0, "%s", cmd);
  free(cmd);
  free(item);
  return step;
}

/* Each fixture as step 1 of a manager's directory: latest step found, restored without args,
 * its custom metadata read. */
Test(orbax_fixtures, through_a_checkpoint_manager) {
  NEED_FIXTURES();
  for (size_t i = 0; i < N_GOOD; i++) {
    char *root;
    char *step = copy_as_step(GOOD[i], is_standard(i), &root);
    ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
    o.read_only = true;
    ckpt_manager *m = NULL;
    ckpt_error err = CKPT_ERROR_INIT;
    cr_assert_eq(ckpt_manager_new(root, &o, &m, &err), CKPT_OK, "%s", err.message);
    ckpt_value v = {0};
    cr_assert_eq(ckpt_manager_restore(m, CKPT_LATEST_STEP, NULL, &v, &err), CKPT_OK, "%s: %s",
                 GOOD[i], err.message);
    expect_value(&v, i);
    ckpt_value_free(&v);
    cJSON *md = NULL;
    cr_assert_eq(ckpt_manager_metadata(m, 1, &md, &err), CKPT_OK, "%s: %s", GOOD[i], err.message);
    const cJSON *sm = cJSON_GetObjectItemCaseSensitive(md, "step_metadata");
    expect_custom(sm, GOOD[i]);
    cJSON_Delete(md);
    cr_assert_eq(ckpt_manager_close(m, &err), CKPT_OK, "%s", err.message);
    pt_rmtree(root);
    free(step);
  }
}

/* Orbax's optional files deleted: each copy still restores without args, values exact. */
Test(orbax_fixtures, optional_files_deleted) {
  NEED_FIXTURES();
  static const char *const variants[][2] = {
      {"_METADATA", NULL},
      {"_sharding", "array_metadatas"},
      {"_METADATA", "array_metadatas"}, /* the tree from the array files alone */
  };
  for (size_t i = 0; i < N_GOOD; i++) {
    for (size_t k = 0; k < sizeof variants / sizeof *variants; k++) {
      char *root;
      char *ck = copy_fixture(GOOD[i], "ck", &root);
      char *item = item_dir(ck, i);
      for (int f = 0; f < 2 && variants[k][f] != NULL; f++)
        remove_path(item, variants[k][f]);
      restore_without_args(ck, i);
      pt_rmtree(root);
      free(item);
      free(ck);
    }
    /* _CHECKPOINT_METADATA: the handlers come from the item files */
    char *root;
    char *ck = copy_fixture(GOOD[i], "ck", &root);
    remove_path(ck, "_CHECKPOINT_METADATA");
    restore_without_args(ck, i);
    pt_rmtree(root);
    free(ck);
  }
}

/* v0_standard_missing_d: every path fails, naming the missing data directory; no value. */
static void expect_missing_d(ckpt_status st, const ckpt_value *v, const ckpt_error *err,
                             const char *what) {
  cr_assert_neq(st, CKPT_OK, "%s restored a checkpoint without its data", what);
  cr_assert_eq(v->kind, CKPT_VALUE_NONE, "%s: a value came back", what);
  cr_assert(strstr(err->message, "/d' is missing") != NULL, "%s: %s", what, err->message);
}

Test(orbax_fixtures, missing_data_fails_on_every_path) {
  NEED_FIXTURES();
  char *root;
  char *step = copy_as_step("v0_standard_missing_d", true, &root);
  char *ck = pt_fmt("%s/default", step);
  ckpt_checkpointer *c = checkpointer_for(0);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_value v = {0};
  expect_missing_d(ckpt_checkpointer_restore(c, ck, NULL, &v, &err), &v, &err, "without args");
  ckpt_error_clear(&err);
  int64_t sa[1] = {8};
  ckpt_array *a = NULL;
  cr_assert_eq(ckpt_array_new(CKPT_DTYPE_INT32, 1, sa, &a, &err), CKPT_OK);
  ckpt_tree *target = ckpt_tree_new_dict();
  cr_assert_eq(ckpt_tree_dict_set(target, "a", ckpt_tree_new_array(a), &err), CKPT_OK);
  ckpt_args *args = restore_args(0, target, true);
  close_ok(c);
  c = checkpointer_for_args(0, true);
  expect_missing_d(ckpt_checkpointer_restore(c, ck, args, &v, &err), &v, &err, "partial");
  ckpt_error_clear(&err);
  ckpt_args_delete(args);
  close_ok(c);
  /* through a manager */
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.read_only = true;
  ckpt_manager *m = NULL;
  cr_assert_eq(ckpt_manager_new(root, &o, &m, &err), CKPT_OK, "%s", err.message);
  expect_missing_d(ckpt_manager_restore(m, CKPT_LATEST_STEP, NULL, &v, &err), &v, &err,
                   "manager");
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_manager_close(m, &err), CKPT_OK, "%s", err.message);
  /* and without its _METADATA: the tree cannot even be listed, which the error says */
  remove_path(ck, "_METADATA");
  c = checkpointer_for(0);
  expect_missing_d(ckpt_checkpointer_restore(c, ck, NULL, &v, &err), &v, &err,
                   "without _METADATA");
  close_ok(c);
  pt_rmtree(root);
  free(ck);
  free(step);
}
