/* test_composite.c — CompositeCheckpointHandler and the ckpt_Composite helpers
 * (handlers/composite.c): item layout, sorted order, item_handlers, subset restore, restore
 * without args from the recorded typestrs, item-name validation, and handler locking. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ckpt/ckpt.h"
#include "core_fixture.h"

static char *root;

static void setup(void) {
  root = cf_tmpdir();
  cf_register();
}

static void teardown(void) {
  cf_rmtree(root);
  free(root);
}

TestSuite(composite, .init = setup, .fini = teardown);

static ckpt_checkpointer *new_ckptr(ckpt_atomicity at) {
  ckpt_checkpointer_options o = CKPT_CHECKPOINTER_OPTIONS_INIT;
  o.atomicity = at;
  ckpt_checkpointer *c = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_new(NULL, &o, &c, &err), CKPT_OK, "%s", err.message);
  return c;
}

static void close_ok(ckpt_checkpointer *c) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
}

static void add(ckpt_Composite *c, const char *item, ckpt_args *a) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_composite_add(c, item, a, &err), CKPT_OK, "%s", err.message);
}

/* Saves {a: BlobSave(text_a), b: OtherSave(text_b)} at path. */
static void save_ab(ckpt_checkpointer *c, const char *path, const char *ta, const char *tb) {
  ckpt_Composite *comp = ckpt_composite_new();
  cr_assert_not_null(comp);
  add(comp, "b", cf_other_save(tb));
  add(comp, "a", cf_blob_save(ta, true));
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_save(c, path, &comp->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  ckpt_args_delete(&comp->base);
}

static const char *item_text(const ckpt_value *v, const char *item) {
  const ckpt_value *iv = ckpt_value_item_get(v, item);
  cr_assert_not_null(iv, "item %s missing from the result", item);
  cr_assert_eq(iv->kind, CKPT_VALUE_JSON);
  return cJSON_GetStringValue(iv->u.json);
}

/* ---------------------------------------------------------------- saving */

Test(composite, items_are_saved_in_their_own_directories) {
  ckpt_checkpointer *c = new_ckptr(CKPT_ATOMICITY_RENAME);
  char *path = cf_join(root, "10");
  save_ab(c, path, "A", "B");
  char *f = cf_join(path, "a/blob.txt");
  char *s = cf_slurp(f);
  cr_assert_str_eq(s, "A");
  free(s);
  free(f);
  f = cf_join(path, "b/other.txt");
  s = cf_slurp(f);
  cr_assert_str_eq(s, "B");
  free(s);
  free(f);
  /* Each item committed itself too (Orbax writes commit_success.txt per item). */
  f = cf_join(path, "a/commit_success.txt");
  s = cf_slurp(f);
  char want[4200];
  snprintf(want, sizeof want, "Checkpoint commit was successful to %s" CKPT_TMP_SUFFIX "/a", path);
  cr_assert_str_eq(s, want, "written inside the step's tmp directory, as Orbax does");
  free(s);
  free(f);
  /* Nothing temporary is left anywhere. */
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "find '%s' -name '*orbax-checkpoint-tmp*' | wc -l", root);
  char *out = cf_run(cmd);
  cr_assert_str_eq(out, "0\n");
  free(out);
  cr_assert_eq(cf_count_entries(path), 5,
               "a, b, _CHECKPOINT_METADATA, _CHECKPOINT_CHECKSUMS, commit_success.txt");
  /* item_handlers records each item's typestr. */
  f = cf_join(path, "_CHECKPOINT_METADATA");
  s = cf_slurp(f);
  cJSON *m = cJSON_Parse(s);
  cJSON *ih = cJSON_GetObjectItem(m, "item_handlers");
  cr_assert(cJSON_IsObject(ih));
  cr_assert_eq(cJSON_GetArraySize(ih), 2);
  cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(ih, "a")), "ckpt_tests.BlobHandler");
  cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(ih, "b")), "ckpt_tests.OtherHandler");
  cJSON_Delete(m);
  free(s);
  free(f);
  free(path);
  close_ok(c);
}

/* A handler logging the directories it saves into, in order. */
static char order_log[4096];
static ckpt_status log_save(ckpt_handler *h, ckpt_op *op, const char *dir, const ckpt_args *a,
                            ckpt_error *err) {
  (void)h, (void)op, (void)a, (void)err;
  strncat(order_log, dir, sizeof order_log - strlen(order_log) - 2);
  strcat(order_log, "\n");
  return CKPT_OK;
}
static ckpt_status log_restore(ckpt_handler *h, ckpt_op *op, const char *dir, const ckpt_args *a,
                               ckpt_value *out, ckpt_error *err) {
  (void)h, (void)op, (void)a, (void)err;
  strncat(order_log, dir, sizeof order_log - strlen(order_log) - 2);
  strcat(order_log, "\n");
  out->kind = CKPT_VALUE_NONE;
  return CKPT_OK;
}
static const ckpt_handler_vtable log_vt = {.save = log_save, .restore = log_restore};
static const ckpt_handler_desc LogHandler = {
    "LogHandler", "ckpt_tests.LogHandler", "ckpt_tests.LogHandler", &log_vt, NULL, NULL};
typedef struct LogArgs {
  ckpt_args base;
} LogArgs;
static const ckpt_args_desc LogArgs_desc = {CKPT_RECORD_DESC_MAGIC,
                                            CKPT_ABI_VERSION,
                                            "LogArgs",
                                            "ckpt_tests.LogArgs",
                                            "LogArgs",
                                            sizeof(LogArgs),
                                            0,
                                            NULL,
                                            true,
                                            NULL};

static void register_log(void) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_register_with_handler(&LogHandler, &LogArgs_desc, true, true, &err), CKPT_OK);
}

/* A Composite whose entries are deliberately unsorted (as hand-built or generated code may
 * leave them). */
static ckpt_Composite *unsorted(const char *const *names, size_t n) {
  ckpt_Composite *comp = ckpt_composite_new();
  comp->items = calloc(n, sizeof *comp->items);
  comp->n_items = n;
  for (size_t i = 0; i < n; i++) {
    comp->items[i].key = strdup(names[i]);
    comp->items[i].value = ckpt_args_new(&LogArgs_desc);
  }
  return comp;
}

Test(composite, items_are_processed_in_sorted_order_in_tmp_item_directories) {
  register_log();
  ckpt_checkpointer *c = new_ckptr(CKPT_ATOMICITY_RENAME);
  const char *names[] = {"zeta", "alpha", "mid"};
  ckpt_Composite *comp = unsorted(names, 3);
  char *path = cf_join(root, "5");
  ckpt_error err = CKPT_ERROR_INIT;
  order_log[0] = '\0';
  cr_assert_eq(ckpt_checkpointer_save(c, path, &comp->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  char want[8192];
  snprintf(want, sizeof want,
           "%s" CKPT_TMP_SUFFIX "/alpha" CKPT_TMP_SUFFIX "\n%s" CKPT_TMP_SUFFIX
           "/mid" CKPT_TMP_SUFFIX "\n%s" CKPT_TMP_SUFFIX "/zeta" CKPT_TMP_SUFFIX "\n",
           path, path, path);
  cr_assert_str_eq(order_log, want);
  /* Restore visits them in sorted order too, at their final names. */
  order_log[0] = '\0';
  ckpt_value v;
  cr_assert_eq(ckpt_checkpointer_restore(c, path, &comp->base, &v, &err), CKPT_OK, "%s",
               err.message);
  snprintf(want, sizeof want, "%s/alpha\n%s/mid\n%s/zeta\n", path, path, path);
  cr_assert_str_eq(order_log, want);
  cr_assert_eq(v.kind, CKPT_VALUE_COMPOSITE);
  cr_assert_eq(v.u.composite.count, 3);
  cr_assert_str_eq(v.u.composite.items[0].name, "alpha");
  cr_assert_str_eq(v.u.composite.items[2].name, "zeta");
  ckpt_value_free(&v);
  ckpt_args_delete(&comp->base);
  free(path);
  close_ok(c);
}

Test(composite, commit_file_mode_writes_items_in_place) {
  register_log();
  ckpt_checkpointer *c = new_ckptr(CKPT_ATOMICITY_COMMIT_FILE);
  const char *names[] = {"b", "a"};
  ckpt_Composite *comp = unsorted(names, 2);
  char *path = cf_join(root, "cf");
  ckpt_error err = CKPT_ERROR_INIT;
  order_log[0] = '\0';
  cr_assert_eq(ckpt_checkpointer_save(c, path, &comp->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  char want[8192];
  snprintf(want, sizeof want, "%s/a\n%s/b\n", path, path);
  cr_assert_str_eq(order_log, want);
  char *ca = cf_join(path, "a/commit_success.txt");
  cr_assert(cf_exists(ca));
  cr_assert(ckpt_is_finalized(NULL, path, CKPT_ATOMICITY_COMMIT_FILE));
  ckpt_args_delete(&comp->base);
  free(ca);
  free(path);
  close_ok(c);
}

Test(composite, duplicate_and_null_items_are_refused_before_anything_is_written) {
  register_log();
  ckpt_checkpointer *c = new_ckptr(CKPT_ATOMICITY_RENAME);
  const char *names[] = {"x", "y", "x"};
  ckpt_Composite *comp = unsorted(names, 3);
  char *path = cf_join(root, "dup");
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_save(c, path, &comp->base, false, NULL, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "\"x\" twice") != NULL, "%s", err.message);
  cr_assert_eq(cf_count_entries(root), 0);
  ckpt_args_delete(&comp->base);
  const char *one[] = {"solo"};
  comp = unsorted(one, 1);
  ckpt_args_delete(comp->items[0].value);
  comp->items[0].value = NULL;
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_save(c, path, &comp->base, false, NULL, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "\"solo\"") != NULL, "%s", err.message);
  cr_assert_eq(cf_count_entries(root), 0);
  ckpt_args_delete(&comp->base);
  free(path);
  close_ok(c);
}

/* ---------------------------------------------------------------- restoring */

Test(composite, restore_a_subset_of_items) {
  ckpt_checkpointer *c = new_ckptr(CKPT_ATOMICITY_RENAME);
  char *path = cf_join(root, "s");
  save_ab(c, path, "A", "B");
  ckpt_Composite *want = ckpt_composite_new();
  add(want, "b", cf_other_restore());
  ckpt_value v;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_restore(c, path, &want->base, &v, &err), CKPT_OK, "%s",
               err.message);
  cr_assert_eq(v.kind, CKPT_VALUE_COMPOSITE);
  cr_assert_eq(v.u.composite.count, 1);
  cr_assert_str_eq(item_text(&v, "b"), "B");
  cr_assert_null(ckpt_value_item_get(&v, "a"));
  ckpt_value_free(&v);
  ckpt_args_delete(&want->base);
  free(path);
  close_ok(c);
}

Test(composite, restore_without_args_uses_the_recorded_typestrs) {
  ckpt_checkpointer *saver = new_ckptr(CKPT_ATOMICITY_RENAME);
  char *path = cf_join(root, "all");
  save_ab(saver, path, "A", "B");
  close_ok(saver);
  /* A fresh checkpointer knows nothing of the items: everything comes from the files. */
  for (int mode = 0; mode < 2; mode++) {
    ckpt_checkpointer *c = new_ckptr(CKPT_ATOMICITY_RENAME);
    ckpt_Composite *empty = mode == 1 ? ckpt_composite_new() : NULL;
    ckpt_value v;
    ckpt_error err = CKPT_ERROR_INIT;
    cr_assert_eq(ckpt_checkpointer_restore(c, path, empty ? &empty->base : NULL, &v, &err), CKPT_OK,
                 "%s", err.message);
    cr_assert_eq(v.kind, CKPT_VALUE_COMPOSITE);
    cr_assert_eq(v.u.composite.count, 2);
    cr_assert_str_eq(item_text(&v, "a"), "A");
    cr_assert_str_eq(item_text(&v, "b"), "B");
    ckpt_value_free(&v);
    /* The restore bound the items: saving "a" with another handler's args is refused now. */
    ckpt_Composite *bad = ckpt_composite_new();
    add(bad, "a", cf_other_save("x"));
    char *p2 = cf_join(root, mode ? "locked1" : "locked0");
    cr_assert_eq(ckpt_checkpointer_save(c, p2, &bad->base, false, NULL, &err), CKPT_ETYPE);
    ckpt_args_delete(&bad->base);
    if (empty)
      ckpt_args_delete(&empty->base);
    free(p2);
    close_ok(c);
  }
  free(path);
}

static void rewrite_item_handlers(const char *path, const char *item_handlers_json) {
  char *mp = cf_join(path, "_CHECKPOINT_METADATA");
  char *s = cf_slurp(mp);
  cJSON *m = cJSON_Parse(s);
  cJSON_ReplaceItemInObject(m, "item_handlers", cJSON_Parse(item_handlers_json));
  /* a rewritten _CHECKPOINT_METADATA (as an Orbax program would leave it): no manifest */
  char *manifest = cf_join(path, "_CHECKPOINT_CHECKSUMS");
  unlink(manifest);
  free(manifest);
  char *out = cJSON_Print(m);
  cf_write(mp, out);
  cJSON_free(out);
  cJSON_Delete(m);
  free(s);
  free(mp);
}

Test(composite, restore_without_args_names_an_unknown_typestr) {
  ckpt_checkpointer *c = new_ckptr(CKPT_ATOMICITY_RENAME);
  char *path = cf_join(root, "u");
  save_ab(c, path, "A", "B");
  close_ok(c);
  rewrite_item_handlers(path, "{\"a\": \"no.such.Handler\", \"b\": \"ckpt_tests.OtherHandler\"}");
  c = new_ckptr(CKPT_ATOMICITY_RENAME);
  ckpt_value v;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_restore(c, path, NULL, &v, &err), CKPT_EUNREGISTERED);
  cr_assert(strstr(err.message, "no.such.Handler") != NULL, "%s", err.message);
  cr_assert(strstr(err.message, "\"a\"") != NULL, "%s", err.message);
  cr_assert_eq(v.kind, CKPT_VALUE_NONE);
  /* No record at all for an item on disk is an error naming the item and the file. */
  rewrite_item_handlers(path, "{\"b\": \"ckpt_tests.OtherHandler\"}");
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_restore(c, path, NULL, &v, &err), CKPT_EUNREGISTERED);
  cr_assert(strstr(err.message, "Item \"a\"") != NULL, "%s", err.message);
  cr_assert(strstr(err.message, "_CHECKPOINT_METADATA") != NULL, "%s", err.message);
  /* A corrupt metadata file is reported as such. */
  char *mp = cf_join(path, "_CHECKPOINT_METADATA");
  cf_write(mp, "[1, 2");
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_restore(c, path, NULL, &v, &err), CKPT_ECORRUPT);
  cr_assert(strstr(err.message, mp) != NULL, "%s", err.message);
  /* Explicit args do not need the metadata. */
  ckpt_Composite *want = ckpt_composite_new();
  add(want, "a", cf_blob_restore());
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_restore(c, path, &want->base, &v, &err), CKPT_OK, "%s",
               err.message);
  cr_assert_str_eq(item_text(&v, "a"), "A");
  ckpt_value_free(&v);
  ckpt_args_delete(&want->base);
  free(mp);
  free(path);
  close_ok(c);
}

Test(composite, an_item_missing_on_disk_is_named_with_the_available_ones) {
  ckpt_checkpointer *c = new_ckptr(CKPT_ATOMICITY_RENAME);
  char *path = cf_join(root, "m");
  save_ab(c, path, "A", "B");
  ckpt_Composite *want = ckpt_composite_new();
  add(want, "a", cf_blob_restore());
  add(want, "nope", cf_blob_restore());
  ckpt_value v;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_restore(c, path, &want->base, &v, &err), CKPT_ENOENT);
  cr_assert(strstr(err.message, "Item \"nope\" was not found") != NULL, "%s", err.message);
  cr_assert(strstr(err.message, "\"a\", \"b\"") != NULL, "%s", err.message);
  cr_assert_eq(v.kind, CKPT_VALUE_NONE, "no partial result");
  ckpt_args_delete(&want->base);
  free(path);
  close_ok(c);
}

Test(composite, symlinked_items_are_never_followed) {
  ckpt_checkpointer *c = new_ckptr(CKPT_ATOMICITY_RENAME);
  char *path = cf_join(root, "l");
  save_ab(c, path, "A", "B");
  char *outside = cf_tmpdir();
  char *ob = cf_join(outside, "blob.txt");
  cf_write(ob, "OUTSIDE");
  char *planted = cf_join(path, "evil");
  cr_assert_eq(symlink(outside, planted), 0);
  /* Restore-all ignores it ... */
  ckpt_value v;
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_checkpointer *fresh = new_ckptr(CKPT_ATOMICITY_RENAME);
  cr_assert_eq(ckpt_checkpointer_restore(fresh, path, NULL, &v, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(v.u.composite.count, 2);
  cr_assert_null(ckpt_value_item_get(&v, "evil"));
  ckpt_value_free(&v);
  /* ... and asking for it explicitly is refused. */
  ckpt_Composite *want = ckpt_composite_new();
  add(want, "evil", cf_blob_restore());
  cr_assert_eq(ckpt_checkpointer_restore(fresh, path, &want->base, &v, &err), CKPT_EUNSAFE);
  cr_assert(strstr(err.message, "symlink") != NULL, "%s", err.message);
  ckpt_args_delete(&want->base);
  close_ok(fresh);
  cf_rmtree(outside);
  free(outside);
  free(ob);
  free(planted);
  free(path);
  close_ok(c);
}

Test(composite, null_args_restore_an_item_only_when_its_handler_is_known) {
  ckpt_checkpointer *c = new_ckptr(CKPT_ATOMICITY_RENAME);
  char *path = cf_join(root, "n");
  save_ab(c, path, "A", "B");
  ckpt_Composite *want = ckpt_composite_new();
  want->items = calloc(1, sizeof *want->items);
  want->n_items = 1;
  want->items[0].key = strdup("a");
  ckpt_value v;
  ckpt_error err = CKPT_ERROR_INIT;
  /* This checkpointer saved "a", so it knows its handler. */
  cr_assert_eq(ckpt_checkpointer_restore(c, path, &want->base, &v, &err), CKPT_OK, "%s",
               err.message);
  cr_assert_str_eq(item_text(&v, "a"), "A");
  ckpt_value_free(&v);
  ckpt_checkpointer *fresh = new_ckptr(CKPT_ATOMICITY_RENAME);
  cr_assert_eq(ckpt_checkpointer_restore(fresh, path, &want->base, &v, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "\"a\"") != NULL, "%s", err.message);
  close_ok(fresh);
  ckpt_args_delete(&want->base);
  free(path);
  close_ok(c);
}

/* ---------------------------------------------------------------- handler locking */

Test(composite, the_first_use_locks_an_items_handler) {
  ckpt_checkpointer *c = new_ckptr(CKPT_ATOMICITY_RENAME);
  char *p1 = cf_join(root, "1"), *p2 = cf_join(root, "2");
  ckpt_Composite *comp = ckpt_composite_new();
  add(comp, "state", cf_blob_save("s", false));
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_save(c, p1, &comp->base, false, NULL, &err), CKPT_OK);
  ckpt_args_delete(&comp->base);
  /* Same item, args of another handler. */
  comp = ckpt_composite_new();
  add(comp, "state", cf_other_save("o"));
  cr_assert_eq(ckpt_checkpointer_save(c, p2, &comp->base, false, NULL, &err), CKPT_ETYPE);
  cr_assert(strstr(err.message,
                   "Item \"state\" and args \"ckpt_tests.cf_OtherSave\" does not "
                   "match with any registered handler") != NULL,
            "%s", err.message);
  cr_assert(strstr(err.message, "ckpt_tests.BlobHandler") != NULL, "%s", err.message);
  cr_assert(!cf_exists(p2));
  cr_assert_eq(cf_count_entries(root), 1, "the failed save left nothing");
  /* Restore with the wrong type is refused the same way. */
  ckpt_Composite *rest = ckpt_composite_new();
  add(rest, "state", cf_other_restore());
  ckpt_value v;
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_restore(c, p1, &rest->base, &v, &err), CKPT_ETYPE);
  ckpt_args_delete(&rest->base);
  /* The bound handler's restore args are fine; so is another item with the other handler. */
  rest = ckpt_composite_new();
  add(rest, "state", cf_blob_restore());
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_restore(c, p1, &rest->base, &v, &err), CKPT_OK, "%s", err.message);
  ckpt_value_free(&v);
  ckpt_args_delete(&rest->base);
  ckpt_args_delete(&comp->base);
  comp = ckpt_composite_new();
  add(comp, "other", cf_other_save("o"));
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_save(c, p2, &comp->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  ckpt_args_delete(&comp->base);
  /* Locking is per handler instance: a new checkpointer may use either handler. */
  ckpt_checkpointer *c2 = new_ckptr(CKPT_ATOMICITY_RENAME);
  comp = ckpt_composite_new();
  add(comp, "state", cf_other_save("o"));
  char *p3 = cf_join(root, "3");
  cr_assert_eq(ckpt_checkpointer_save(c2, p3, &comp->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  ckpt_args_delete(&comp->base);
  close_ok(c2);
  free(p1);
  free(p2);
  free(p3);
  close_ok(c);
}

Test(composite, an_unregistered_args_type_is_named) {
  ckpt_checkpointer *c = new_ckptr(CKPT_ATOMICITY_RENAME);
  static const ckpt_args_desc Unreg = {CKPT_RECORD_DESC_MAGIC,
                                       CKPT_ABI_VERSION,
                                       "Unreg",
                                       "ckpt_tests.Unreg",
                                       "Unreg",
                                       sizeof(ckpt_args),
                                       0,
                                       NULL,
                                       true,
                                       NULL};
  ckpt_Composite *comp = ckpt_composite_new();
  add(comp, "x", ckpt_args_new(&Unreg));
  char *p = cf_join(root, "x");
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_save(c, p, &comp->base, false, NULL, &err), CKPT_EUNREGISTERED);
  cr_assert(strstr(err.message, "ckpt_tests.Unreg") != NULL, "%s", err.message);
  cr_assert(strstr(err.message, "\"x\"") != NULL, "%s", err.message);
  cr_assert_eq(cf_count_entries(root), 0);
  ckpt_args_delete(&comp->base);
  free(p);
  close_ok(c);
}

/* ---------------------------------------------------------------- metadata */

Test(composite, metadata_lists_each_items_metadata) {
  ckpt_checkpointer *c = new_ckptr(CKPT_ATOMICITY_RENAME);
  char *path = cf_join(root, "md");
  save_ab(c, path, "AAA", "B");
  close_ok(c);
  c = new_ckptr(CKPT_ATOMICITY_RENAME); /* from the files alone */
  cJSON *m;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_metadata(c, path, &m, &err), CKPT_OK, "%s", err.message);
  cJSON *items = cJSON_GetObjectItem(m, "item_metadata");
  cr_assert_eq(cJSON_GetArraySize(items), 2);
  cr_assert_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(items, "a"), "bytes")),
               3);
  cr_assert(cJSON_IsNull(cJSON_GetObjectItem(items, "b")), "OtherHandler has no metadata");
  cJSON *ih = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "step_metadata"), "item_handlers");
  cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(ih, "a")), "ckpt_tests.BlobHandler");
  cJSON_Delete(m);
  free(path);
  close_ok(c);
}

/* ---------------------------------------------------------------- ckpt_Composite helpers */

Test(composite, item_names_are_validated) {
  ckpt_error err = CKPT_ERROR_INIT;
  /* The limit leaves room for the tmp suffix the item directory carries until the commit. */
  char long_ok[256], too_long[257];
  memset(long_ok, 'n', CKPT_COMPOSITE_ITEM_NAME_MAX);
  long_ok[CKPT_COMPOSITE_ITEM_NAME_MAX] = '\0';
  memset(too_long, 'n', CKPT_COMPOSITE_ITEM_NAME_MAX + 1);
  too_long[CKPT_COMPOSITE_ITEM_NAME_MAX + 1] = '\0';
  const char *bad[] = {"",
                       "a/b",
                       "/abs",
                       ".",
                       "..",
                       "__dunder",
                       "descriptor",
                       too_long,
                       "_CHECKPOINT_METADATA",
                       "commit_success.txt",
                       "x" CKPT_TMP_SUFFIX,
                       "../escape"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ckpt_error_clear(&err);
    ckpt_status st = ckpt_composite_check_item_name(bad[i], &err);
    cr_assert(st == CKPT_EINVAL || st == CKPT_EUNSAFE, "\"%s\" accepted", bad[i]);
    cr_assert_neq(err.message[0], '\0');
  }
  const char *good[] = {"state", "a.b", "_private", "x_", long_ok, "step-1", ".hidden", "_"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    cr_assert_eq(ckpt_composite_check_item_name(good[i], &err), CKPT_OK, "\"%s\": %s", good[i],
                 err.message);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_composite_check_item_name(NULL, &err), CKPT_EINVAL);
}

Test(composite, add_keeps_items_sorted_and_owns_args_even_on_failure) {
  ckpt_Composite *c = ckpt_composite_new();
  add(c, "m", cf_blob_save("1", false));
  add(c, "a", cf_blob_save("2", false));
  add(c, "z", cf_blob_save("3", false));
  cr_assert_eq(c->n_items, 3);
  cr_assert_str_eq(c->items[0].key, "a");
  cr_assert_str_eq(c->items[1].key, "m");
  cr_assert_str_eq(c->items[2].key, "z");
  cr_assert_str_eq(((cf_BlobSave *)ckpt_composite_get(c, "m"))->text, "1");
  cr_assert_null(ckpt_composite_get(c, "nope"));
  ckpt_error err = CKPT_ERROR_INIT;
  /* Failures free the args (ASan would report the leak otherwise). */
  cr_assert_eq(ckpt_composite_add(c, "a", cf_blob_save("dup", false), &err), CKPT_EEXIST);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_composite_add(c, "a/b", cf_blob_save("bad", false), &err), CKPT_EUNSAFE);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_composite_add(c, "__x", cf_blob_save("bad", false), &err), CKPT_EINVAL);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_composite_add(c, "ok", NULL, &err), CKPT_EINVAL);
  cr_assert_eq(c->n_items, 3);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_composite_remove(c, "m", &err), CKPT_OK);
  cr_assert_eq(ckpt_composite_remove(c, "m", &err), CKPT_ENOENT);
  cr_assert_eq(c->n_items, 2);
  cr_assert_str_eq(c->items[1].key, "z");
  /* Composites compare as maps (order-insensitive), item args deeply. */
  ckpt_Composite *d = ckpt_composite_new();
  add(d, "z", cf_blob_save("3", false));
  add(d, "a", cf_blob_save("2", false));
  cr_assert(ckpt_args_equal(&c->base, &d->base));
  ((cf_BlobSave *)ckpt_composite_get(d, "z"))->defer = true;
  cr_assert(!ckpt_args_equal(&c->base, &d->base));
  ckpt_args_delete(&d->base);
  ckpt_args_delete(&c->base);
}

Test(composite, the_composite_handler_refuses_other_args) {
  ckpt_checkpointer *c = new_ckptr(CKPT_ATOMICITY_RENAME);
  char *p = cf_join(root, "o");
  ckpt_args *a = cf_blob_save("x", false);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_save(c, p, a, false, NULL, &err), CKPT_ETYPE);
  cr_assert(!cf_exists(p));
  ckpt_args_delete(a);
  free(p);
  close_ok(c);
}

/* ---------------------------------------------------------------- with a built-in handler */

Test(composite, json_items_round_trip_and_python_reads_the_layout) {
  ckpt_checkpointer *c = new_ckptr(CKPT_ATOMICITY_RENAME);
  char *path = cf_join(root, "42");
  ckpt_JsonSave *js = ckpt_JsonSave_new();
  js->item = cJSON_Parse("{\"lr\": 0.5, \"tags\": [\"a\", \"b\"]}");
  ckpt_Composite *comp = ckpt_composite_new();
  add(comp, "meta", &js->base);
  add(comp, "blob", cf_blob_save("payload", false));
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_save(c, path, &comp->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  ckpt_args_delete(&comp->base);
  close_ok(c);
  /* Python sees Orbax's layout: <step>/meta/metadata holds the JSON, item_handlers the
   * JsonCheckpointHandler typestr. */
  char cmd[8192];
  snprintf(cmd, sizeof cmd,
           CKPT_PYTHON
           " -c \"import json,sys,os; p=sys.argv[1]; "
           "m=json.load(open(os.path.join(p,'_CHECKPOINT_METADATA'))); "
           "d=json.load(open(os.path.join(p,'meta','metadata'))); "
           "print(m['item_handlers']['meta']); print(d['tags'][1], d['lr'])\" '%s'",
           path);
  char *out = cf_run(cmd);
  cr_assert_str_eq(out,
                   "orbax.checkpoint._src.handlers.json_checkpoint_handler.JsonCheckpointHandler"
                   "\nb 0.5\n");
  free(out);
  /* A fresh checkpointer restores both without args, dispatching on the typestrs. */
  c = new_ckptr(CKPT_ATOMICITY_RENAME);
  ckpt_value v;
  cr_assert_eq(ckpt_checkpointer_restore(c, path, NULL, &v, &err), CKPT_OK, "%s", err.message);
  const ckpt_value *meta = ckpt_value_item_get(&v, "meta");
  cr_assert_not_null(meta);
  cr_assert_eq(meta->kind, CKPT_VALUE_JSON);
  cr_assert_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(meta->u.json, "lr")), 0.5);
  cr_assert_str_eq(item_text(&v, "blob"), "payload");
  ckpt_value_free(&v);
  /* The item is now bound to the JSON handler. */
  ckpt_Composite *bad = ckpt_composite_new();
  add(bad, "meta", cf_blob_save("x", false));
  char *p2 = cf_join(root, "43");
  cr_assert_eq(ckpt_checkpointer_save(c, p2, &bad->base, false, NULL, &err), CKPT_ETYPE);
  cr_assert(strstr(err.message, "JsonCheckpointHandler") != NULL, "%s", err.message);
  ckpt_args_delete(&bad->base);
  free(p2);
  free(path);
  close_ok(c);
}
