/* test_manager_preserve.c — the preservation rules beyond max_to_keep / keep_period / best
 * metric: keep_latest_n (Orbax's LatestN), keep_time_interval_secs (EveryNSeconds, with step
 * times from this process and from _CHECKPOINT_METADATA on disk) and should_keep_fn, alone and
 * combined, sync and async, single- and multi-item, after reopening, and under read_only. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt.h"
#include "manager/manager_internal.h"
#include "test_manager_util.h"

static char *root;

static void setup(void) {
  root = mt_tmpdir();
}
static void teardown(void) {
  mt_rmtree(root);
  free(root);
}

TestSuite(manager_preserve, .init = setup, .fini = teardown);

/* Every loss worse than the one before: without keep_latest_n each new step is its own victim. */
static const double rising[] = {1, 2, 3, 4, 5, 6, 7, 8};

static void latest_survives(bool sync) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.max_to_keep = 2;
  o.best_metric = "loss";
  o.best_mode = CKPT_BEST_MODE_MIN;
  o.keep_latest_n = 1;
  o.sync = sync;
  ckpt_manager *m = mt_open(root, &o);
  for (int64_t s = 1; s <= 5; s++) {
    mt_save_range(m, s, s, "loss", &rising[s - 1]);
    mt_wait(m);
    int64_t latest = -1;
    cr_assert(ckpt_manager_latest_step(m, &latest));
    cr_assert_eq(latest, s, "the step just saved (%" PRId64 ") was deleted", s);
    char *p = mt_path("%s/%" PRId64, root, s);
    cr_assert(mt_is_dir(p), "%s is gone", p);
    free(p);
  }
  /* The best two (1, 2) and the latest; the one before the latest went when 5 came. */
  cr_assert_str_eq(mt_steps(m), "1,2,5");
  cr_assert_str_eq(mt_ls(root), "1,2,5");
  int64_t best = -1;
  cr_assert(ckpt_manager_best_step(m, &best));
  cr_assert_eq(best, 1);
  mt_close(m);

  /* Reopened (metrics read back): the rule still holds for the next, still worse, step. */
  m = mt_open(root, &o);
  mt_save_range(m, 6, 6, "loss", &rising[5]);
  mt_wait(m);
  cr_assert_str_eq(mt_steps(m), "1,2,6");
  cr_assert_str_eq(mt_ls(root), "1,2,6");
  mt_close(m);
}

Test(manager_preserve, latest_step_survives_when_worst_by_metric_sync) {
  latest_survives(true);
}

Test(manager_preserve, latest_step_survives_when_worst_by_metric_async) {
  latest_survives(false);
}

/* The same run without keep_latest_n loses its latest step: what the rule is for. */
Test(manager_preserve, without_keep_latest_n_the_worst_latest_step_is_deleted) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.max_to_keep = 2;
  o.best_metric = "loss";
  o.best_mode = CKPT_BEST_MODE_MIN;
  ckpt_manager *m = mt_open(root, &o);
  mt_save_range(m, 1, 5, "loss", rising);
  mt_wait(m);
  cr_assert_str_eq(mt_steps(m), "1,2");
  mt_close(m);
}

/* Multi-item, async: keep_latest_n = 2 with best 1 and keep_period. */
Test(manager_preserve, multi_item_async_latest_n_best_and_period) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.max_to_keep = 1;
  o.keep_latest_n = 2;
  o.keep_period = 4;
  o.best_metric = "acc";
  ckpt_manager *m = mt_open(root, &o);
  double acc[] = {0.9, 0.1, 0.2, 0.3, 0.1, 0.2, 0.1};
  for (int64_t s = 1; s <= 7; s++) {
    ckpt_Composite *c = ckpt_composite_new();
    ckpt_error err = CKPT_ERROR_INIT;
    cr_assert_eq(ckpt_composite_add(c, "model", mt_json_save(s, "model"), &err), CKPT_OK);
    cJSON *met = mt_metrics("acc", acc[s - 1]);
    cr_assert(mt_save(m, s, &c->base, met, false));
    cJSON_Delete(met);
    ckpt_args_delete(&c->base);
  }
  mt_wait(m);
  /* Best: 1; keep_period: 4; latest two: 6, 7. */
  cr_assert_str_eq(mt_steps(m), "1,4,6,7");
  cr_assert_str_eq(mt_ls(root), "1,4,6,7");
  ckpt_value v;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_restore(m, CKPT_LATEST_STEP, NULL, &v, &err), CKPT_OK, "%s",
               err.message);
  ckpt_value *model = ckpt_value_item_get(&v, "model");
  cr_assert_not_null(model);
  cr_assert_eq(cJSON_GetObjectItemCaseSensitive(model->u.json, "step")->valuedouble, 7);
  ckpt_value_free(&v);
  mt_close(m);
}

/* Without a best metric, LatestN(keep_latest_n) and LatestN(max_to_keep) keep the larger. */
Test(manager_preserve, keep_latest_n_without_best_metric) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.max_to_keep = 1;
  o.keep_latest_n = 3;
  o.sync = true;
  ckpt_manager *m = mt_open(root, &o);
  mt_save_range(m, 1, 6, NULL, NULL);
  cr_assert_str_eq(mt_steps(m), "4,5,6");
  mt_close(m);
}

/* keep_latest_n alone never deletes: max_to_keep 0 (Orbax's None) keeps everything. */
Test(manager_preserve, keep_latest_n_with_max_to_keep_zero_keeps_everything) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.keep_latest_n = 1;
  o.keep_time_interval_secs = 3600;
  o.sync = true;
  ckpt_manager *m = mt_open(root, &o);
  mt_save_range(m, 1, 4, NULL, NULL);
  cr_assert_str_eq(mt_steps(m), "1,2,3,4");
  mt_close(m);
}

/* ---------------------------------------------------------------- should_keep_fn */

typedef struct keep_calls {
  int64_t asked[64];
  size_t n;
} keep_calls;

/* Keeps steps divisible by 3 (a CustomSteps-like rule) and records every question. */
static bool keep_multiples_of_3(void *arg, int64_t step) {
  keep_calls *k = arg;
  if (k->n < 64)
    k->asked[k->n++] = step;
  return step % 3 == 0;
}

Test(manager_preserve, should_keep_fn_keeps_what_it_says_and_is_asked_only_about_doomed_steps) {
  keep_calls calls = {{0}, 0};
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.max_to_keep = 1;
  o.should_keep_fn = keep_multiples_of_3;
  o.should_keep_arg = &calls;
  o.sync = true;
  ckpt_manager *m = mt_open(root, &o);
  mt_save_range(m, 1, 7, NULL, NULL);
  cr_assert_str_eq(mt_steps(m), "3,6,7");
  cr_assert_str_eq(mt_ls(root), "3,6,7");
  /* Never asked about the latest step (LatestN(max_to_keep) keeps it), nor while there were at
   * most max_to_keep steps; asked again about a step it keeps (Orbax asks on every save). */
  for (size_t i = 0; i < calls.n; i++)
    cr_assert_neq(calls.asked[i], 7);
  cr_assert_gt(calls.n, 0);
  cr_assert_eq(calls.asked[0], 1, "the first question is about step 1 when step 2 is saved");
  mt_close(m);
}

Test(manager_preserve, should_keep_fn_with_best_metric_and_keep_latest_n) {
  keep_calls calls = {{0}, 0};
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.max_to_keep = 1;
  o.best_metric = "loss";
  o.best_mode = CKPT_BEST_MODE_MIN;
  o.keep_latest_n = 1;
  o.should_keep_fn = keep_multiples_of_3;
  o.should_keep_arg = &calls;
  ckpt_manager *m = mt_open(root, &o);
  mt_save_range(m, 1, 8, "loss", rising);
  mt_wait(m);
  /* Best: 1; should_keep_fn: 3, 6; latest: 8. */
  cr_assert_str_eq(mt_steps(m), "1,3,6,8");
  cr_assert_str_eq(mt_ls(root), "1,3,6,8");
  for (size_t i = 0; i < calls.n; i++)
    cr_assert(calls.asked[i] != 1 && calls.asked[i] != 8, "asked about step %" PRId64,
              calls.asked[i]);
  mt_close(m);
}

/* ---------------------------------------------------------------- keep_time_interval_secs */

/* In this process every step is saved within a second or so of the first, far less than an
 * hour: the interval rule keeps only the first step. */
Test(manager_preserve, time_interval_keeps_the_first_step_of_a_short_run) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.max_to_keep = 1;
  o.keep_time_interval_secs = 3600;
  ckpt_manager *m = mt_open(root, &o);
  mt_save_range(m, 1, 5, NULL, NULL);
  mt_wait(m);
  cr_assert_str_eq(mt_steps(m), "1,5");
  cr_assert_str_eq(mt_ls(root), "1,5");
  mt_close(m);
}

/* Sets commit_timestamp_nsecs of <root>/<step>/_CHECKPOINT_METADATA to seconds * 1e9. */
static void set_commit_time(int64_t step, int64_t seconds) {
  char *path = mt_path("%s/%" PRId64 "/" CKPT_CHECKPOINT_METADATA_FILE, root, step);
  char *text = mt_slurp(path);
  cr_assert_not_null(text, "%s", path);
  cJSON *j = cJSON_Parse(text);
  free(text);
  cr_assert(cJSON_IsObject(j), "%s", path);
  char digits[32];
  snprintf(digits, sizeof digits, "%" PRId64 "000000000", seconds);
  cr_assert(
      cJSON_ReplaceItemInObjectCaseSensitive(j, "commit_timestamp_nsecs", cJSON_CreateRaw(digits)));
  char *out = cJSON_PrintUnformatted(j);
  mt_write(path, out);
  free(out);
  cJSON_Delete(j);
  free(path);
}

/* Steps found on disk take their time from _CHECKPOINT_METADATA; one without it is kept. */
Test(manager_preserve, time_interval_uses_the_commit_time_of_steps_on_disk) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.sync = true;
  ckpt_manager *m = mt_open(root, &o);
  mt_save_range(m, 1, 6, NULL, NULL);
  mt_close(m);
  /* Saved 1000 s apart, long ago. */
  for (int64_t s = 1; s <= 6; s++)
    set_commit_time(s, 1000 * s);
  /* Step 3's time cannot be known. */
  char *meta3 = mt_path("%s/3/" CKPT_CHECKPOINT_METADATA_FILE, root);
  cr_assert_eq(remove(meta3), 0);
  free(meta3);

  o.max_to_keep = 1;
  o.keep_time_interval_secs = 2500;
  m = mt_open(root, &o);
  mt_save_range(m, 7, 7, NULL, NULL);
  /* Interval 2500 s from 1 (t=1000): 4 (t=4000), then 7 (now). 3 is kept as unknown and does
   * not move the reference; 7 is also the latest. */
  cr_assert_str_eq(mt_steps(m), "1,3,4,7");
  cr_assert_str_eq(mt_ls(root), "1,3,4,7");
  mt_close(m);
}

/* ---------------------------------------------------------------- options and read_only */

Test(manager_preserve, invalid_options_are_refused) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  ckpt_manager *m = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  o.keep_latest_n = -1;
  cr_assert_eq(ckpt_manager_new(root, &o, &m, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "keep_latest_n") != NULL, "%s", err.message);
  o.keep_latest_n = 0;
  o.keep_time_interval_secs = -5;
  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_new(root, &o, &m, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "keep_time_interval_secs") != NULL, "%s", err.message);
  o.keep_time_interval_secs = INT64_MAX;
  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_new(root, &o, &m, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "too large") != NULL, "%s", err.message);
  cr_assert_null(m);
}

static bool never_called(void *arg, int64_t step) {
  (void)step;
  *(bool *)arg = true;
  return false;
}

Test(manager_preserve, read_only_applies_no_rule) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.sync = true;
  ckpt_manager *m = mt_open(root, &o);
  mt_save_range(m, 1, 4, "loss", rising);
  mt_close(m);

  bool called = false;
  o.read_only = true;
  o.max_to_keep = 1;
  o.best_metric = "loss";
  o.keep_latest_n = 1;
  o.keep_time_interval_secs = 1;
  o.should_keep_fn = never_called;
  o.should_keep_arg = &called;
  m = mt_open(root, &o);
  cr_assert_str_eq(mt_steps(m), "1,2,3,4");
  ckpt_args *a = mt_json_save(5, NULL);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_save(m, 5, a, NULL, true, NULL, &err), CKPT_ESTATE);
  ckpt_args_delete(a);
  ckpt_value v;
  cr_assert_eq(ckpt_manager_restore(m, 1, NULL, &v, &err), CKPT_OK, "%s", err.message);
  ckpt_value_free(&v);
  mt_close(m);
  cr_assert_not(called);
  cr_assert_str_eq(mt_ls(root), "1,2,3,4");
}
