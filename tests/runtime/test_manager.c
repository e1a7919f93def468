/* test_manager.c — CheckpointManager (runtime/src/manager/): options, should_save (interval,
 * specific steps, initial save, should_save_fn, force), step naming and discovery (prefix,
 * padding, foreign and tmp entries), single- and multi-item modes, metrics, restore
 * (latest/specific/missing), delete, reload, read-only, cleanup_tmp_directories and the
 * on-disk layout Orbax reads. Retention is in test_manager_retention.c, injected failures in
 * test_manager_faults.c. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "test_manager_util.h"

#define JSON_TYPESTR "orbax.checkpoint._src.handlers.json_checkpoint_handler.JsonCheckpointHandler"

static char *root;

static void setup(void) {
  root = mt_tmpdir();
}
static void teardown(void) {
  mt_rmtree(root);
  free(root);
}

TestSuite(manager, .init = setup, .fini = teardown);

/* Restores step as a bare JSON item and returns its "step" member. */
static int64_t restore_json_step(ckpt_manager *m, int64_t step) {
  ckpt_value v;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_restore(m, step, NULL, &v, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(v.kind, CKPT_VALUE_JSON, "got %s", ckpt_value_kind_name(v.kind));
  const cJSON *s = cJSON_GetObjectItemCaseSensitive(v.u.json, "step");
  cr_assert(cJSON_IsNumber(s));
  int64_t r = (int64_t)s->valuedouble;
  ckpt_value_free(&v);
  return r;
}

static cJSON *read_json_file(const char *path) {
  char *text = mt_slurp(path);
  cr_assert_not_null(text, "cannot read %s", path);
  cJSON *j = cJSON_Parse(text);
  cr_assert_not_null(j, "%s is not JSON: %s", path, text);
  free(text);
  return j;
}

/* ---------------------------------------------------------------- options */

Test(manager, zero_options_are_orbax_defaults) {
  ckpt_manager_options a, b = CKPT_MANAGER_OPTIONS_INIT, zero;
  memset(&a, 0xff, sizeof a);
  ckpt_manager_options_init(&a);
  memset(&zero, 0, sizeof zero);
  cr_assert_eq(memcmp(&a, &zero, sizeof a), 0);
  /* The macro names every member with its zero value (compared member by member, since
   * padding is not part of an initializer). */
  cr_assert(b.save_interval_steps == 0 && b.save_on_steps == NULL && b.n_save_on_steps == 0 &&
            b.should_save_fn == NULL && b.should_save_arg == NULL && b.max_to_keep == 0 &&
            b.keep_period == 0 && b.best_metric == NULL && b.best_mode == CKPT_BEST_MODE_MAX &&
            !b.drop_checkpoints_without_metrics && b.step_prefix == NULL &&
            b.step_format_fixed_length == 0 && !b.no_create && !b.cleanup_tmp_directories &&
            !b.read_only && !b.sync && b.atomicity == CKPT_ATOMICITY_RENAME && !b.zero_copy &&
            b.io == NULL);

  /* The directory is created (create=True), saves are async, every step may be saved. */
  char *dir = mt_path("%s/run/a", root);
  ckpt_manager *m = mt_open(dir, NULL);
  cr_assert(mt_is_dir(dir));
  cr_assert(ckpt_manager_is_async(m));
  cr_assert_str_eq(ckpt_manager_directory(m), dir);
  for (int64_t s = 0; s < 4; s++)
    cr_assert(ckpt_manager_should_save(m, s));
  for (int64_t s = 0; s < 4; s++)
    cr_assert(mt_save_json(m, s));
  mt_close(m);
  cr_assert_str_eq(mt_ls(dir), "0,1,2,3"); /* max_to_keep None: all kept, names unpadded */
  free(dir);
}

/* ckpt_manager_new fails with CKPT_EINVAL and a message containing needle. */
static void expect_invalid(const ckpt_manager_options *o, const char *needle) {
  ckpt_manager *m = (ckpt_manager *)(uintptr_t)1;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_new(root, o, &m, &err), CKPT_EINVAL, "%s", err.message);
  cr_assert_null(m);
  cr_assert(strstr(err.message, needle) != NULL, "'%s' not in: %s", needle, err.message);
}

Test(manager, invalid_options_are_errors) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.max_to_keep = -1;
  expect_invalid(&o, "max_to_keep");
  o = (ckpt_manager_options)CKPT_MANAGER_OPTIONS_INIT;
  o.save_interval_steps = -2;
  expect_invalid(&o, "save_interval_steps");
  o = (ckpt_manager_options)CKPT_MANAGER_OPTIONS_INIT;
  o.keep_period = -3;
  expect_invalid(&o, "keep_period");
  o = (ckpt_manager_options)CKPT_MANAGER_OPTIONS_INIT;
  o.best_mode = (ckpt_best_mode)7;
  expect_invalid(&o, "best_mode");
  o = (ckpt_manager_options)CKPT_MANAGER_OPTIONS_INIT;
  o.best_metric = "";
  expect_invalid(&o, "best_metric");
  o = (ckpt_manager_options)CKPT_MANAGER_OPTIONS_INIT;
  o.step_prefix = "a/b";
  expect_invalid(&o, "a/b");
  o.step_prefix = "x" CKPT_TMP_SUFFIX;
  expect_invalid(&o, "step_prefix");
  o = (ckpt_manager_options)CKPT_MANAGER_OPTIONS_INIT;
  o.step_format_fixed_length = -1;
  expect_invalid(&o, "step_format_fixed_length");
  o = (ckpt_manager_options)CKPT_MANAGER_OPTIONS_INIT;
  int64_t steps[] = {3, -4};
  o.save_on_steps = steps;
  o.n_save_on_steps = 2;
  expect_invalid(&o, "save_on_steps[1]");
  o.save_on_steps = NULL;
  expect_invalid(&o, "save_on_steps");
  o = (ckpt_manager_options)CKPT_MANAGER_OPTIONS_INIT;
  o.atomicity = (ckpt_atomicity)9;
  expect_invalid(&o, "atomicity");

  ckpt_manager *m = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_new("", NULL, &m, &err), CKPT_EINVAL);
  err = (ckpt_error)CKPT_ERROR_INIT;
  char *file = mt_path("%s/plainfile", root);
  mt_write(file, "x");
  cr_assert_eq(ckpt_manager_new(file, NULL, &m, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "not a directory") != NULL, "%s", err.message);
  free(file);
}

/* ---------------------------------------------------------------- should_save */

Test(manager, should_save_interval_specific_steps_and_initial_save) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.save_interval_steps = 3;
  int64_t on[] = {7, 4};
  o.save_on_steps = on;
  o.n_save_on_steps = 2;
  o.sync = true;
  ckpt_manager *m = mt_open(root, &o);
  cr_assert_not(ckpt_manager_should_save(m, -1));
  /* InitialSavePolicy: nothing saved yet, so step 1 is saved although 1 % 3 != 0. */
  bool expect[] = {false, true, false, true, true, false, true, true, false, true};
  for (int64_t s = 1; s <= 9; s++)
    cr_assert_eq(mt_save_json(m, s), expect[s], "step %" PRId64, s);
  cr_assert_str_eq(mt_steps(m), "1,3,4,6,7,9");
  /* latest_step >= step: never, whatever the interval says. */
  cr_assert_not(ckpt_manager_should_save(m, 9));
  cr_assert_not(ckpt_manager_should_save(m, 6));
  cr_assert_not(mt_save_json(m, 3));
  cr_assert(ckpt_manager_should_save(m, 12));
  cr_assert_not(ckpt_manager_should_save(m, 13));
  mt_close(m);
  cr_assert_str_eq(mt_ls(root), "1,3,4,6,7,9");
}

static int fn_calls;
static bool even_only(void *arg, int64_t step, bool has_latest, int64_t latest) {
  cr_assert_eq(arg, &fn_calls);
  fn_calls++;
  if (has_latest)
    cr_assert_lt(latest, step);
  return step % 2 == 0;
}

Test(manager, should_save_fn_replaces_interval_and_initial_save) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.save_interval_steps = 1;
  o.should_save_fn = even_only;
  o.should_save_arg = &fn_calls;
  o.sync = true;
  ckpt_manager *m = mt_open(root, &o);
  cr_assert_not(mt_save_json(m, 1)); /* no initial save: the function decides */
  cr_assert(mt_save_json(m, 2));
  cr_assert_not(mt_save_json(m, 3));
  cr_assert(mt_save_json(m, 4));
  int before = fn_calls;
  cr_assert_not(ckpt_manager_should_save(m, 4)); /* latest >= step: not even asked */
  cr_assert_eq(fn_calls, before);
  cr_assert_str_eq(mt_steps(m), "2,4");
  mt_close(m);
}

Test(manager, force_bypasses_should_save_but_never_overwrites) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.save_interval_steps = 10;
  ckpt_manager *m = mt_open(root, &o);
  cr_assert(mt_save_json(m, 10));
  cr_assert_not(mt_save_json(m, 15));
  ckpt_args *a = mt_json_save(15, "forced");
  cr_assert(mt_save(m, 15, a, NULL, true));
  ckpt_args_delete(a);
  /* An older step that does not exist yet may be forced in. */
  a = mt_json_save(5, NULL);
  cr_assert(mt_save(m, 5, a, NULL, true));
  ckpt_args_delete(a);
  mt_wait(m);
  cr_assert_str_eq(mt_steps(m), "5,10,15");

  a = mt_json_save(99, "overwrite?");
  ckpt_error err = CKPT_ERROR_INIT;
  bool saved = true;
  cr_assert_eq(ckpt_manager_save(m, 10, a, NULL, true, &saved, &err), CKPT_EEXIST);
  cr_assert_not(saved);
  cr_assert(strstr(err.message, "step 10 already exists") != NULL, "%s", err.message);
  ckpt_args_delete(a);
  cr_assert_eq(restore_json_step(m, 10), 10);
  mt_close(m);
}

Test(manager, force_refuses_a_step_another_writer_created) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.sync = true;
  ckpt_manager *m = mt_open(root, &o);
  ckpt_manager *other = mt_open(root, &o);
  cr_assert(mt_save_json(other, 4));
  /* m does not know step 4 yet; forcing it must still not replace the other's checkpoint. */
  ckpt_args *a = mt_json_save(44, NULL);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_save(m, 4, a, NULL, true, NULL, &err), CKPT_EEXIST, "%s", err.message);
  ckpt_args_delete(a);
  cr_assert_eq(restore_json_step(other, 4), 4);
  mt_close(other);
  mt_close(m);
}

/* ---------------------------------------------------------------- naming and discovery */

Test(manager, prefix_and_fixed_length_name_steps) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.step_prefix = "step";
  o.step_format_fixed_length = 4;
  ckpt_manager *m = mt_open(root, &o);
  cr_assert(mt_save_json(m, 0));
  cr_assert(mt_save_json(m, 23));
  cr_assert(mt_save_json(m, 12345));
  char *p;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_step_path(m, 23, &p, &err), CKPT_OK);
  char *want = mt_path("%s/step_0023", root);
  cr_assert_str_eq(p, want);
  free(p);
  free(want);
  mt_close(m);
  cr_assert_str_eq(mt_ls(root), "step_0000,step_0023,step_12345");

  /* Entries such a manager must not take for steps. */
  const char *foreign[] = {"0024",       "step_023",   "step_00025",
                           "steps_0026", "step_0027x", "step_-028",
                           "step_",      "Step_0029",  ("step_0030" CKPT_TMP_SUFFIX)};
  for (size_t i = 0; i < sizeof foreign / sizeof *foreign; i++) {
    char *d = mt_path("%s/%s", root, foreign[i]);
    mt_mkdir(d);
    free(d);
  }
  char *f = mt_path("%s/step_0031", root); /* a file, not a checkpoint directory */
  mt_write(f, "not a step");
  free(f);
  /* A directory named right counts once it is finalized (here by its commit file); an empty
   * one is what a commit-file save killed right after its mkdir leaves (storage/step_dirs.h). */
  char *plain = mt_path("%s/step_0032", root), *empty = mt_path("%s/step_0033", root);
  char *plain_cf = mt_path("%s/step_0032/" CKPT_COMMIT_FILE, root);
  mt_mkdir(plain);
  mt_write(plain_cf, "committed");
  mt_mkdir(empty);
  free(plain);
  free(plain_cf);
  free(empty);
  m = mt_open(root, &o);
  cr_assert_str_eq(mt_steps(m), "0,23,32,12345");
  cr_assert_eq(restore_json_step(m, 23), 23);
  mt_close(m);
}

Test(manager, discovery_ignores_tmp_and_foreign_entries) {
  ckpt_manager *m = mt_open(root, NULL);
  cr_assert(mt_save_json(m, 7));
  mt_close(m);
  const char *dirs[] = {
      "abc", "007", ("13" CKPT_TMP_SUFFIX), "-5", "+5",
      "5 ",  " 5",  "99999999999999999999", "08", ("14" CKPT_TMP_SUFFIX "-deleting")};
  for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
    char *d = mt_path("%s/%s", root, dirs[i]);
    mt_mkdir(d);
    free(d);
  }
  char *f = mt_path("%s/12", root);
  mt_write(f, "a file named like a step");
  free(f);
  char *target = mt_path("%s/abc", root), *link = mt_path("%s/15", root);
  cr_assert_eq(symlink(target, link), 0);
  free(target);
  free(link);
  char *ok = mt_path("%s/0", root); /* step 0 is "0", the one legal leading zero */
  char *ok_cf = mt_path("%s/0/" CKPT_COMMIT_FILE, root);
  mt_mkdir(ok);
  mt_write(ok_cf, "committed");
  free(ok);
  free(ok_cf);

  m = mt_open(root, NULL);
  cr_assert_str_eq(mt_steps(m), "0,7");
  int64_t latest = -1;
  cr_assert(ckpt_manager_latest_step(m, &latest));
  cr_assert_eq(latest, 7);
  mt_close(m);
  /* Nothing foreign was touched (cleanup_tmp_directories is off by default). */
  char *tmp = mt_path("%s/13" CKPT_TMP_SUFFIX, root);
  cr_assert(mt_is_dir(tmp));
  free(tmp);
}

Test(manager, commit_file_mode_lists_only_committed_steps) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.atomicity = CKPT_ATOMICITY_COMMIT_FILE;
  ckpt_manager *m = mt_open(root, &o);
  cr_assert(mt_save_json(m, 1));
  mt_wait(m);
  char *cf = mt_path("%s/1/" CKPT_COMMIT_FILE, root);
  cr_assert(mt_exists(cf));
  free(cf);
  char *half = mt_path("%s/2", root); /* an interrupted save: no commit file */
  mt_mkdir(half);
  cr_assert_eq(ckpt_manager_reload(m, NULL), CKPT_OK);
  cr_assert_str_eq(mt_steps(m), "1");
  ckpt_value v;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_restore(m, 2, NULL, &v, &err), CKPT_EINCOMPLETE, "%s", err.message);
  cr_assert(strstr(err.message, "incomplete") != NULL, "%s", err.message);
  mt_close(m);

  /* cleanup_tmp_directories removes it in this mode; the committed step stays. */
  o.cleanup_tmp_directories = true;
  m = mt_open(root, &o);
  cr_assert_not(mt_exists(half));
  cr_assert_str_eq(mt_steps(m), "1");
  cr_assert_eq(restore_json_step(m, 1), 1);
  mt_close(m);
  free(half);
}

Test(manager, cleanup_tmp_directories_removes_leftovers_only) {
  ckpt_manager *m = mt_open(root, NULL);
  cr_assert(mt_save_json(m, 3));
  mt_close(m);
  char *t1 = mt_path("%s/13" CKPT_TMP_SUFFIX, root);
  char *t2 = mt_path("%s/4" CKPT_TMP_SUFFIX "-deleting", root);
  char *inner = mt_path("%s/13" CKPT_TMP_SUFFIX "/default", root);
  char *foreign = mt_path("%s/notes", root);
  mt_mkdir(t1);
  mt_mkdir(inner);
  mt_mkdir(t2);
  mt_mkdir(foreign);

  m = mt_open(root, NULL); /* off by default: kept, and not listed */
  cr_assert(mt_exists(t1));
  cr_assert_str_eq(mt_steps(m), "3");
  mt_close(m);

  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.cleanup_tmp_directories = true;
  m = mt_open(root, &o);
  cr_assert_not(mt_exists(t1));
  cr_assert_not(mt_exists(t2));
  cr_assert(mt_is_dir(foreign));
  cr_assert_str_eq(mt_steps(m), "3");
  cr_assert_eq(restore_json_step(m, 3), 3);
  mt_close(m);
  free(t1);
  free(t2);
  free(inner);
  free(foreign);
}

/* ---------------------------------------------------------------- layout and metrics */

Test(manager, single_item_layout_is_orbax_s) {
  ckpt_manager *m = mt_open(root, NULL);
  cr_assert(mt_save_json(m, 5));
  mt_close(m);
  cr_assert_str_eq(mt_ls(root), "5");
  char *step = mt_path("%s/5", root);
  cr_assert_str_eq(mt_ls(step), "_CHECKPOINT_CHECKSUMS,_CHECKPOINT_METADATA,commit_success.txt,default");
  char *item = mt_path("%s/5/default", root);
  cr_assert_str_eq(mt_ls(item), "commit_success.txt,metadata");
  char *mp = mt_path("%s/5/_CHECKPOINT_METADATA", root);
  cJSON *meta = read_json_file(mp);
  const cJSON *ih = cJSON_GetObjectItemCaseSensitive(meta, "item_handlers");
  cr_assert(cJSON_IsObject(ih));
  cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ih, "default")),
                   JSON_TYPESTR);
  cr_assert_eq(cJSON_GetArraySize(ih), 1);
  cJSON_Delete(meta);
  free(step);
  free(item);
  free(mp);
}

Test(manager, metrics_saved_only_with_best_metric) {
  /* Without best_metric metrics are ignored, as Orbax does. */
  ckpt_manager *m = mt_open(root, NULL);
  cJSON *met = mt_metrics("loss", 0.25);
  ckpt_args *a = mt_json_save(1, NULL);
  cr_assert(mt_save(m, 1, a, met, false));
  ckpt_args_delete(a);
  mt_wait(m);
  char *md = mt_path("%s/1/metrics", root);
  cr_assert_not(mt_exists(md));
  free(md);
  cJSON *got = (cJSON *)(uintptr_t)1;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_metrics(m, 1, &got, &err), CKPT_OK, "%s", err.message);
  cr_assert_null(got);
  cr_assert_eq(ckpt_manager_metrics(m, 2, &got, &err), CKPT_ENOENT);
  mt_close(m);

  char *dir2 = mt_path("%s/best", root);
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.best_metric = "loss";
  m = mt_open(dir2, &o);
  a = mt_json_save(1, NULL);
  cr_assert(mt_save(m, 1, a, met, false));
  ckpt_args_delete(a);
  mt_close(m);
  char *file = mt_path("%s/1/metrics/metrics", dir2);
  char *text = mt_slurp(file);
  cr_assert_not_null(text);
  cr_assert_str_eq(text, "{\"loss\": 0.25}"); /* json.dumps' text */
  free(text);
  char *mp = mt_path("%s/1/_CHECKPOINT_METADATA", dir2);
  cJSON *meta = read_json_file(mp);
  const cJSON *ih = cJSON_GetObjectItemCaseSensitive(meta, "item_handlers");
  cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ih, "metrics")),
                   JSON_TYPESTR);
  cJSON_Delete(meta);
  /* The typestr leads to the ordinary JSON handler. */
  const ckpt_handler_desc *h = NULL;
  cr_assert_eq(ckpt_get_handler_by_typestr(JSON_TYPESTR, &h, NULL), CKPT_OK);
  cr_assert_eq(h, &ckpt_JsonCheckpointHandler_desc);

  m = mt_open(dir2, &o);
  cr_assert_eq(ckpt_manager_metrics(m, 1, &got, &err), CKPT_OK, "%s", err.message);
  cr_assert(cJSON_Compare(got, met, true));
  cJSON_Delete(got);
  /* A single-item restore returns the item alone, not the metrics. */
  cr_assert_eq(restore_json_step(m, 1), 1);
  mt_close(m);
  cJSON_Delete(met);
  free(file);
  free(mp);
  free(dir2);
}

/* ---- managers created concurrently: the metrics item needs no registration */

typedef struct racer {
  char *dir;
  int id;
  ckpt_status st;
  ckpt_error err;
} racer;

static atomic_int racers_ready;

/* Creates a manager tracking "loss", saves steps 1..3 with metrics, closes. Asserts nothing
 * (Criterion asserts belong to the test's thread); the result is in r->st / r->err. */
static void *race_manager(void *arg) {
  racer *r = arg;
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.best_metric = "loss";
  atomic_fetch_add(&racers_ready, 1);
  while (atomic_load(&racers_ready) < 4) {
  } /* start together, so the constructors overlap */
  ckpt_manager *m = NULL;
  r->st = ckpt_manager_new(r->dir, &o, &m, &r->err);
  for (int64_t step = 1; step <= 3 && r->st == CKPT_OK; step++) {
    cJSON *met = mt_metrics("loss", (double)(r->id * 10 + step));
    ckpt_args *a = mt_json_save(step, NULL);
    r->st = ckpt_manager_save(m, step, a, met, false, NULL, &r->err);
    ckpt_args_delete(a);
    cJSON_Delete(met);
  }
  ckpt_status st = ckpt_manager_close(m, &r->err);
  if (r->st == CKPT_OK)
    r->st = st;
  return NULL;
}

Test(manager, managers_created_concurrently_save_their_metrics) {
  racer r[4];
  pthread_t t[4];
  for (int i = 0; i < 4; i++) {
    r[i] = (racer){mt_path("%s/run%d", root, i), i, CKPT_OK, CKPT_ERROR_INIT};
    cr_assert_eq(pthread_create(&t[i], NULL, race_manager, &r[i]), 0);
  }
  /* Meanwhile the registry must keep answering with the built-in JSON handler. */
  while (atomic_load(&racers_ready) < 4) {
  }
  for (int k = 0; k < 2000; k++) {
    const ckpt_handler_desc *h = NULL;
    cr_assert_eq(ckpt_get_handler_by_typestr(JSON_TYPESTR, &h, NULL), CKPT_OK);
    cr_assert_eq(h, &ckpt_JsonCheckpointHandler_desc);
    cr_assert_eq(ckpt_get_registered_handler(&ckpt_JsonSave_desc, &h, NULL), CKPT_OK);
    cr_assert_eq(h, &ckpt_JsonCheckpointHandler_desc);
  }
  for (int i = 0; i < 4; i++) {
    cr_assert_eq(pthread_join(t[i], NULL), 0);
    cr_assert_eq(r[i].st, CKPT_OK, "manager %d: %s", i, r[i].err.message);
    for (int64_t step = 1; step <= 3; step++) {
      /* Orbax's layout: <step>/metrics/metrics, the JSON handler's typestr recorded. */
      char *file = mt_path("%s/%" PRId64 "/metrics/metrics", r[i].dir, step);
      char *text = mt_slurp(file);
      char want[64];
      snprintf(want, sizeof want, "{\"loss\": %d}", (int)(i * 10 + step));
      cr_assert_str_eq(text, want, "%s: %s", file, text);
      free(text);
      free(file);
      char *mp = mt_path("%s/%" PRId64 "/_CHECKPOINT_METADATA", r[i].dir, step);
      cJSON *meta = read_json_file(mp);
      const cJSON *ih = cJSON_GetObjectItemCaseSensitive(meta, "item_handlers");
      cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ih, "metrics")),
                       JSON_TYPESTR);
      cJSON_Delete(meta);
      free(mp);
    }
    ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
    o.best_metric = "loss";
    ckpt_manager *m = mt_open(r[i].dir, &o);
    int64_t best = -1;
    cr_assert(ckpt_manager_best_step(m, &best));
    cr_assert_eq(best, 3, "metrics read back from the files");
    mt_close(m);
    free(r[i].dir);
  }
}

Test(manager, metrics_must_hold_the_best_metric) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.best_metric = "acc";
  ckpt_manager *m = mt_open(root, &o);
  cJSON *bad[3] = {mt_metrics("loss", 1), cJSON_CreateNumber(3),
                   cJSON_Parse("{\"acc\": \"high\"}")};
  for (int i = 0; i < 3; i++) {
    ckpt_args *a = mt_json_save(i, NULL);
    ckpt_error err = CKPT_ERROR_INIT;
    bool saved = true;
    cr_assert_eq(ckpt_manager_save(m, i, a, bad[i], false, &saved, &err), CKPT_EINVAL);
    cr_assert_not(saved);
    cr_assert(strstr(err.message, "\"acc\"") != NULL, "%s", err.message);
    ckpt_args_delete(a);
    cJSON_Delete(bad[i]);
  }
  /* No metrics at all is fine (a step without metrics). */
  cr_assert(mt_save_json(m, 3));
  mt_close(m);
  cr_assert_str_eq(mt_ls(root), "3");
}

/* ---------------------------------------------------------------- modes */

static ckpt_Composite *two_items(int64_t step) {
  ckpt_Composite *c = ckpt_composite_new();
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_composite_add(c, "state", mt_json_save(step, "state"), &err), CKPT_OK);
  cr_assert_eq(ckpt_composite_add(c, "config", mt_json_text_save("{\"lr\": 0.5}"), &err), CKPT_OK);
  return c;
}

Test(manager, multi_item_save_and_restore) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.best_metric = "loss";
  ckpt_manager *m = mt_open(root, &o);
  ckpt_Composite *c = two_items(2);
  cJSON *met = mt_metrics("loss", 1.5);
  cr_assert(mt_save(m, 2, &c->base, met, false));
  ckpt_args_delete(&c->base);
  mt_wait(m);
  char *step = mt_path("%s/2", root);
  cr_assert_str_eq(mt_ls(step), "_CHECKPOINT_CHECKSUMS,_CHECKPOINT_METADATA,commit_success.txt,config,metrics,state");

  /* Restore everything as saved: the items and the metrics. */
  ckpt_value v;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_restore(m, CKPT_LATEST_STEP, NULL, &v, &err), CKPT_OK, "%s",
               err.message);
  cr_assert_eq(v.kind, CKPT_VALUE_COMPOSITE);
  cr_assert_eq(v.u.composite.count, 3);
  ckpt_value *state = ckpt_value_item_get(&v, "state");
  cr_assert_not_null(state);
  cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(state->u.json, "tag")),
                   "state");
  ckpt_value *metrics = ckpt_value_item_get(&v, "metrics");
  cr_assert_not_null(metrics);
  cr_assert_eq(metrics->kind, CKPT_VALUE_JSON);
  cr_assert(cJSON_Compare(metrics->u.json, met, true));
  ckpt_value_free(&v);

  /* Restore some items, with args. */
  ckpt_Composite *r = ckpt_composite_new();
  cr_assert_eq(ckpt_composite_add(r, "config", &ckpt_JsonRestore_new()->base, &err), CKPT_OK);
  cr_assert_eq(ckpt_composite_add(r, "metrics", &ckpt_JsonRestore_new()->base, &err), CKPT_OK);
  cr_assert_eq(ckpt_manager_restore(m, 2, &r->base, &v, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(v.u.composite.count, 2);
  cr_assert_not_null(ckpt_value_item_get(&v, "config"));
  cr_assert_not_null(ckpt_value_item_get(&v, "metrics"));
  cr_assert_null(ckpt_value_item_get(&v, "state"));
  ckpt_value_free(&v);
  ckpt_args_delete(&r->base);

  /* Single args against a multi-item step are refused, and so is a missing item. */
  ckpt_args *jr = &ckpt_JsonRestore_new()->base;
  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_restore(m, 2, jr, &v, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "Composite") != NULL, "%s", err.message);
  cr_assert_eq(v.kind, CKPT_VALUE_NONE);
  ckpt_args_delete(jr);
  r = ckpt_composite_new();
  cr_assert_eq(ckpt_composite_add(r, "optimizer", &ckpt_JsonRestore_new()->base, &err), CKPT_OK);
  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_restore(m, 2, &r->base, &v, &err), CKPT_ENOENT, "%s", err.message);
  cr_assert(strstr(err.message, "optimizer") != NULL, "%s", err.message);
  ckpt_args_delete(&r->base);

  /* A manager stays in its mode. */
  ckpt_args *single = mt_json_save(3, NULL);
  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_save(m, 3, single, NULL, false, NULL, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "multi-item") != NULL, "%s", err.message);
  ckpt_args_delete(single);
  mt_close(m);

  /* A new manager on the directory adopts the mode found on disk. */
  m = mt_open(root, &o);
  single = mt_json_save(4, NULL);
  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_save(m, 4, single, NULL, false, NULL, &err), CKPT_EINVAL);
  ckpt_args_delete(single);
  mt_close(m);
  cJSON_Delete(met);
  free(step);
}

Test(manager, single_mode_refuses_composite_and_reserved_items) {
  ckpt_manager *m = mt_open(root, NULL);
  cr_assert(mt_save_json(m, 1));
  ckpt_Composite *c = two_items(2);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_save(m, 2, &c->base, NULL, false, NULL, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "single-item") != NULL, "%s", err.message);
  ckpt_args_delete(&c->base);
  /* Restoring a single-item step with Composite args is refused too. */
  ckpt_Composite *r = ckpt_composite_new();
  cr_assert_eq(ckpt_composite_add(r, "default", &ckpt_JsonRestore_new()->base, &err), CKPT_OK);
  ckpt_value v;
  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_restore(m, 1, &r->base, &v, &err), CKPT_EINVAL);
  ckpt_args_delete(&r->base);
  /* With the item's own args it works. */
  ckpt_args *jr = &ckpt_JsonRestore_new()->base;
  cr_assert_eq(ckpt_manager_restore(m, 1, jr, &v, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(v.kind, CKPT_VALUE_JSON);
  ckpt_value_free(&v);
  ckpt_args_delete(jr);
  mt_close(m);

  /* "metrics" and "default" are reserved item names; an empty Composite saves nothing. */
  char *dir = mt_path("%s/multi", root);
  m = mt_open(dir, NULL);
  const char *reserved[] = {"metrics", "default"};
  for (int i = 0; i < 2; i++) {
    c = ckpt_composite_new();
    cr_assert_eq(ckpt_composite_add(c, reserved[i], mt_json_save(1, NULL), &err), CKPT_OK);
    err = (ckpt_error)CKPT_ERROR_INIT;
    cr_assert_eq(ckpt_manager_save(m, 1, &c->base, NULL, false, NULL, &err), CKPT_EINVAL);
    cr_assert(strstr(err.message, "reserved") != NULL, "%s", err.message);
    ckpt_args_delete(&c->base);
  }
  c = ckpt_composite_new();
  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_save(m, 1, &c->base, NULL, false, NULL, &err), CKPT_EINVAL);
  ckpt_args_delete(&c->base);
  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_save(m, 1, NULL, NULL, false, NULL, &err), CKPT_EINVAL);
  mt_close(m);
  cr_assert_str_eq(mt_ls(dir), "");
  free(dir);
}

Test(manager, standard_save_trees_round_trip) {
  float w[6] = {1, 2, 3, 4, 5, 6};
  int64_t shape[2] = {2, 3};
  ckpt_array *arr;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_array_wrap(CKPT_DTYPE_FLOAT32, 2, shape, w, &arr, &err), CKPT_OK);
  ckpt_tree *tree = ckpt_tree_new_dict();
  cr_assert_eq(ckpt_tree_dict_set(tree, "w", ckpt_tree_new_array(arr), &err), CKPT_OK);
  cr_assert_eq(ckpt_tree_dict_set(tree, "step", ckpt_tree_new_int(CKPT_DTYPE_INT64, 7), &err),
               CKPT_OK);
  ckpt_StandardSave *s = ckpt_StandardSave_new();
  s->item = tree;

  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.max_to_keep = 1;
  ckpt_manager *m = mt_open(root, &o);
  cr_assert(mt_save(m, 7, &s->base, NULL, false));
  w[0] = 100; /* the async save returned after its snapshot: step 7 keeps the old value */
  ckpt_value v;
  cr_assert_eq(ckpt_manager_restore(m, 7, NULL, &v, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(v.kind, CKPT_VALUE_TREE, "%s", ckpt_value_kind_name(v.kind));
  const float *got = ckpt_array_data(ckpt_tree_array(ckpt_tree_get(v.u.tree, "w")));
  cr_assert_not_null(got);
  cr_assert_eq(got[0], 1.0f);
  cr_assert_eq(got[5], 6.0f);
  ckpt_value_free(&v);
  cr_assert(mt_save(m, 8, &s->base, NULL, false));
  mt_wait(m);
  cr_assert_str_eq(mt_steps(m), "8");
  mt_close(m);

  m = mt_open(root, &o);
  cr_assert_eq(ckpt_manager_restore(m, CKPT_LATEST_STEP, NULL, &v, &err), CKPT_OK, "%s",
               err.message);
  cr_assert_eq(v.kind, CKPT_VALUE_TREE, "%s", ckpt_value_kind_name(v.kind));
  cr_assert(ckpt_tree_equal(v.u.tree, tree));
  ckpt_value_free(&v);
  mt_close(m);
  ckpt_args_delete(&s->base);
}

/* ---------------------------------------------------------------- restore, delete, reload */

Test(manager, restore_latest_specific_and_missing) {
  ckpt_manager *m = mt_open(root, NULL);
  ckpt_value v;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_restore(m, CKPT_LATEST_STEP, NULL, &v, &err), CKPT_ENOENT);
  cr_assert(strstr(err.message, "No checkpoints found") != NULL, "%s", err.message);
  cr_assert_eq(v.kind, CKPT_VALUE_NONE);
  int64_t latest = 1234;
  cr_assert_not(ckpt_manager_latest_step(m, &latest));
  cr_assert_eq(latest, 1234);
  cr_assert_not(ckpt_manager_best_step(m, &latest));

  for (int64_t s = 1; s <= 3; s++)
    cr_assert(mt_save_json(m, s * 10));
  /* The in-flight save counts for latest_step, and restore waits for it. */
  cr_assert(ckpt_manager_latest_step(m, &latest));
  cr_assert_eq(latest, 30);
  cr_assert_eq(restore_json_step(m, CKPT_LATEST_STEP), 30);
  cr_assert_eq(restore_json_step(m, 20), 20);
  cr_assert(ckpt_manager_best_step(m, &latest)); /* no best_metric: the latest */
  cr_assert_eq(latest, 30);

  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_restore(m, 25, NULL, &v, &err), CKPT_ENOENT);
  cr_assert(strstr(err.message, "step 25") != NULL, "%s", err.message);
  cr_assert(strstr(err.message, "10, 20, 30") != NULL, "%s", err.message);
  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_restore(m, -7, NULL, &v, &err), CKPT_EINVAL);
  mt_close(m);
}

Test(manager, metadata_of_a_step) {
  ckpt_manager *m = mt_open(root, NULL);
  cr_assert(mt_save_json(m, 4));
  cJSON *md = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_metadata(m, 4, &md, &err), CKPT_OK, "%s", err.message);
  const cJSON *sm = cJSON_GetObjectItemCaseSensitive(md, "step_metadata");
  cr_assert(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(sm, "commit_timestamp_nsecs")));
  cJSON_Delete(md);
  cr_assert_eq(ckpt_manager_metadata(m, 5, &md, &err), CKPT_ENOENT);
  mt_close(m);
}

Test(manager, delete_steps) {
  ckpt_manager *m = mt_open(root, NULL);
  for (int64_t s = 1; s <= 3; s++)
    cr_assert(mt_save_json(m, s));
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_delete(m, 2, &err), CKPT_OK, "%s", err.message);
  cr_assert_str_eq(mt_steps(m), "1,3");
  cr_assert_str_eq(mt_ls(root), "1,3");
  cr_assert_eq(ckpt_manager_delete(m, 2, &err), CKPT_ENOENT);
  cr_assert(strstr(err.message, "non-existent step: 2") != NULL, "%s", err.message);
  /* A deleted step may be saved again. */
  cr_assert(mt_save_json(m, 4));
  ckpt_args *a = mt_json_save(2, "again");
  cr_assert(mt_save(m, 2, a, NULL, true));
  ckpt_args_delete(a);
  cr_assert_eq(restore_json_step(m, 2), 2);
  cr_assert_str_eq(mt_steps(m), "1,2,3,4");
  mt_close(m);
}

Test(manager, reload_sees_what_another_manager_wrote) {
  ckpt_manager *reader = mt_open(root, NULL);
  ckpt_manager *writer = mt_open(root, NULL);
  cr_assert(mt_save_json(writer, 1));
  cr_assert(mt_save_json(writer, 2));
  mt_wait(writer);
  cr_assert_str_eq(mt_steps(reader), "");
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_reload(reader, &err), CKPT_OK, "%s", err.message);
  cr_assert_str_eq(mt_steps(reader), "1,2");
  cr_assert_eq(restore_json_step(reader, CKPT_LATEST_STEP), 2);
  /* And deletions. */
  cr_assert_eq(ckpt_manager_delete(writer, 1, &err), CKPT_OK);
  cr_assert_eq(ckpt_manager_reload(reader, &err), CKPT_OK);
  cr_assert_str_eq(mt_steps(reader), "2");
  mt_close(writer);
  mt_close(reader);
}

Test(manager, read_only_refuses_save_delete_and_cleanup) {
  char *missing = mt_path("%s/missing", root);
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.read_only = true;
  o.cleanup_tmp_directories = true;
  ckpt_manager *m = mt_open(missing, &o); /* read_only: not created, no steps */
  cr_assert_not(mt_exists(missing));
  cr_assert_str_eq(mt_steps(m), "");
  mt_close(m);

  ckpt_manager *w = mt_open(root, NULL);
  cr_assert(mt_save_json(w, 1));
  mt_close(w);
  char *tmp = mt_path("%s/2" CKPT_TMP_SUFFIX, root);
  mt_mkdir(tmp);

  m = mt_open(root, &o);
  cr_assert(mt_exists(tmp)); /* no cleanup */
  cr_assert_not(ckpt_manager_should_save(m, 5));
  ckpt_args *a = mt_json_save(5, NULL);
  ckpt_error err = CKPT_ERROR_INIT;
  bool saved = true;
  cr_assert_eq(ckpt_manager_save(m, 5, a, NULL, true, &saved, &err), CKPT_ESTATE);
  cr_assert_not(saved);
  cr_assert(strstr(err.message, "read-only") != NULL, "%s", err.message);
  ckpt_args_delete(a);
  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_delete(m, 1, &err), CKPT_ESTATE);
  cr_assert(strstr(err.message, "read-only") != NULL, "%s", err.message);
  cr_assert_eq(restore_json_step(m, 1), 1);
  mt_close(m);
  cr_assert_str_eq(mt_ls(root), "1,2" CKPT_TMP_SUFFIX);
  free(tmp);
  free(missing);
}

Test(manager, no_create_does_not_create_the_directory_up_front) {
  char *missing = mt_path("%s/nope/deeper", root);
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.no_create = true;
  o.sync = true;
  ckpt_manager *m = mt_open(missing, &o);
  cr_assert_not(mt_exists(missing));
  cr_assert_str_eq(mt_steps(m), "");
  cr_assert(ckpt_manager_should_save(m, 1));
  /* The first save makes the parents of its step directory, as Orbax's does. */
  cr_assert(mt_save_json(m, 1));
  cr_assert_str_eq(mt_ls(missing), "1");
  mt_close(m);
  free(missing);
}

/* ---------------------------------------------------------------- Python reads it */

Test(manager, python_reads_the_layout) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.best_metric = "loss";
  o.step_prefix = "ckpt";
  o.step_format_fixed_length = 3;
  ckpt_manager *m = mt_open(root, &o);
  cJSON *met = mt_metrics("loss", 0.125);
  ckpt_args *a = mt_json_save(9, "py");
  cr_assert(mt_save(m, 9, a, met, false));
  ckpt_args_delete(a);
  cJSON_Delete(met);
  mt_close(m);
  char *script = mt_path(
      "import json, os, sys\n"
      "d = os.path.join(sys.argv[1], 'ckpt_009')\n"
      "meta = json.load(open(os.path.join(d, '_CHECKPOINT_METADATA')))\n"
      "assert set(meta) == {'item_handlers', 'metrics', 'performance_metrics',\n"
      "  'init_timestamp_nsecs', 'commit_timestamp_nsecs', 'custom_metadata'}, meta\n"
      "assert meta['item_handlers'] == {'default': '%s', 'metrics': '%s'}, meta\n"
      "assert json.load(open(os.path.join(d, 'metrics', 'metrics'))) == {'loss': 0.125}\n"
      "assert json.load(open(os.path.join(d, 'default', 'metadata'))) == "
      "{'step': 9, 'tag': 'py'}\n"
      "assert os.path.exists(os.path.join(d, 'commit_success.txt'))\n",
      JSON_TYPESTR, JSON_TYPESTR);
  char *sp = mt_path("%s/check.py", root);
  mt_write(sp, script);
  char *cmd = mt_path("%s %s %s", CKPT_PYTHON, sp, root);
  cr_assert_eq(system(cmd), 0, "python check failed: %s", cmd);
  free(cmd);
  free(sp);
  free(script);
}
