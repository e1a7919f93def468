/* test_manager_retention.c — the CheckpointManager's retention (AnyPreservationPolicy):
 * max_to_keep (LatestN), keep_period (EveryNSteps), best metric (BestN, min and max) with and
 * without keep_checkpoints_without_metrics, in single- and multi-item mode, sync and async,
 * after reopening (metrics read back from disk); plus the step-name parser and the policy
 * function on their own (also with keep_latest_n, keep_time_interval_secs and should_keep_fn,
 * whose manager-level tests are in test_manager_preserve.c). */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt.h"
#include "manager/manager_internal.h"
#include "storage/step_name.h"
#include "test_manager_util.h"

static char *root;

static void setup(void) {
  root = mt_tmpdir();
}
static void teardown(void) {
  mt_rmtree(root);
  free(root);
}

TestSuite(manager_retention, .init = setup, .fini = teardown);

Test(manager_retention, max_to_keep_keeps_the_latest) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.max_to_keep = 2;
  ckpt_manager *m = mt_open(root, &o);
  mt_save_range(m, 1, 5, NULL, NULL);
  mt_wait(m);
  cr_assert_str_eq(mt_steps(m), "4,5");
  cr_assert_str_eq(mt_ls(root), "4,5");
  mt_close(m);
}

Test(manager_retention, max_to_keep_zero_keeps_everything) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.max_to_keep = 0;
  o.keep_period = 4;
  o.sync = true;
  ckpt_manager *m = mt_open(root, &o);
  mt_save_range(m, 1, 6, NULL, NULL);
  cr_assert_str_eq(mt_ls(root), "1,2,3,4,5,6");
  mt_close(m);
}

Test(manager_retention, keep_period_with_max_to_keep) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.max_to_keep = 2;
  o.keep_period = 3;
  ckpt_manager *m = mt_open(root, &o);
  mt_save_range(m, 1, 8, NULL, NULL);
  mt_wait(m);
  cr_assert_str_eq(mt_steps(m), "3,6,7,8");
  cr_assert_str_eq(mt_ls(root), "3,6,7,8");
  mt_close(m);
  /* A new manager applies the same policy to what it finds. */
  m = mt_open(root, &o);
  mt_save_range(m, 9, 10, NULL, NULL);
  mt_wait(m);
  cr_assert_str_eq(mt_steps(m), "3,6,9,10");
  mt_close(m);
}

Test(manager_retention, best_metric_max_keeps_the_highest) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.max_to_keep = 2;
  o.best_metric = "acc";
  ckpt_manager *m = mt_open(root, &o);
  double acc[] = {0.5, 0.9, 0.1, 0.7, 0.3};
  mt_save_range(m, 1, 5, "acc", acc);
  mt_wait(m);
  /* A step worse than the best two is deleted right after its own commit, as in Orbax. */
  cr_assert_str_eq(mt_steps(m), "2,4");
  cr_assert_str_eq(mt_ls(root), "2,4");
  int64_t best = -1, latest = -1;
  cr_assert(ckpt_manager_best_step(m, &best));
  cr_assert_eq(best, 2);
  cr_assert(ckpt_manager_latest_step(m, &latest));
  cr_assert_eq(latest, 4);
  mt_close(m);

  /* Reopened: the metrics come back from disk and drive the next decision. */
  m = mt_open(root, &o);
  cr_assert(ckpt_manager_best_step(m, &best));
  cr_assert_eq(best, 2);
  double more[] = {0.8};
  mt_save_range(m, 6, 6, "acc", more);
  mt_wait(m);
  cr_assert_str_eq(mt_steps(m), "2,6");
  mt_close(m);
}

Test(manager_retention, best_metric_min_keeps_the_lowest) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.max_to_keep = 2;
  o.best_metric = "loss";
  o.best_mode = CKPT_BEST_MODE_MIN;
  o.sync = true;
  ckpt_manager *m = mt_open(root, &o);
  double loss[] = {0.5, 0.9, 0.1, 0.7, 0.3};
  mt_save_range(m, 1, 5, "loss", loss);
  cr_assert_str_eq(mt_steps(m), "3,5");
  cr_assert_str_eq(mt_ls(root), "3,5");
  int64_t best = -1;
  cr_assert(ckpt_manager_best_step(m, &best));
  cr_assert_eq(best, 3);
  mt_close(m);
}

Test(manager_retention, nan_metric_ranks_worst) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.max_to_keep = 1;
  o.best_metric = "loss";
  o.best_mode = CKPT_BEST_MODE_MIN;
  o.sync = true;
  ckpt_manager *m = mt_open(root, &o);
  for (int64_t s = 1; s <= 2; s++) {
    cJSON *met = cJSON_CreateObject();
    cJSON_AddNumberToObject(met, "loss", s == 1 ? 3.0 : NAN);
    ckpt_args *a = mt_json_save(s, NULL);
    cr_assert(mt_save(m, s, a, met, false));
    ckpt_args_delete(a);
    cJSON_Delete(met);
  }
  cr_assert_str_eq(mt_steps(m), "1");
  mt_close(m);
}

Test(manager_retention, steps_without_metrics_are_kept_by_default) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.max_to_keep = 1;
  o.best_metric = "acc";
  ckpt_manager *m = mt_open(root, &o);
  double acc[] = {0.5, NAN, 0.7, NAN, 0.6};
  mt_save_range(m, 1, 5, "acc", acc);
  mt_wait(m);
  cr_assert_str_eq(mt_steps(m), "2,3,4");
  int64_t best = -1;
  cr_assert(ckpt_manager_best_step(m, &best));
  cr_assert_eq(best, 3);
  mt_close(m);
  cr_assert_str_eq(mt_ls(root), "2,3,4");
}

Test(manager_retention, drop_checkpoints_without_metrics) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.max_to_keep = 1;
  o.best_metric = "acc";
  o.drop_checkpoints_without_metrics = true;
  ckpt_manager *m = mt_open(root, &o);
  double acc[] = {0.5, NAN, 0.7, NAN};
  mt_save_range(m, 1, 4, "acc", acc);
  mt_wait(m);
  cr_assert_str_eq(mt_steps(m), "3");
  cr_assert_str_eq(mt_ls(root), "3");
  mt_close(m);

  /* best_step with no metrics anywhere: none (Orbax's None), while latest exists. */
  char *dir = mt_path("%s/nometrics", root);
  o.drop_checkpoints_without_metrics = false;
  m = mt_open(dir, &o);
  cr_assert(mt_save_json(m, 1));
  int64_t s;
  cr_assert_not(ckpt_manager_best_step(m, &s));
  cr_assert(ckpt_manager_latest_step(m, &s));
  mt_close(m);
  free(dir);
}

/* Multi-item mode: items plus metrics; best metric with keep_period, min mode. */
Test(manager_retention, multi_item_best_metric_and_keep_period) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.max_to_keep = 2;
  o.keep_period = 4;
  o.best_metric = "loss";
  o.best_mode = CKPT_BEST_MODE_MIN;
  o.step_prefix = "s";
  o.step_format_fixed_length = 2;
  ckpt_manager *m = mt_open(root, &o);
  double loss[] = {9, 8, 1, 7, 2, 6, 5, 4};
  for (int64_t s = 1; s <= 8; s++) {
    ckpt_Composite *c = ckpt_composite_new();
    ckpt_error err = CKPT_ERROR_INIT;
    cr_assert_eq(ckpt_composite_add(c, "model", mt_json_save(s, "model"), &err), CKPT_OK);
    cr_assert_eq(ckpt_composite_add(c, "opt", mt_json_save(s, "opt"), &err), CKPT_OK);
    cJSON *met = mt_metrics("loss", loss[s - 1]);
    cr_assert(mt_save(m, s, &c->base, met, false));
    cJSON_Delete(met);
    ckpt_args_delete(&c->base);
  }
  mt_wait(m);
  /* Best two by loss: 3 (1) and 5 (2); keep_period 4: 4 and 8. */
  cr_assert_str_eq(mt_steps(m), "3,4,5,8");
  cr_assert_str_eq(mt_ls(root), "s_03,s_04,s_05,s_08");
  int64_t best = -1;
  cr_assert(ckpt_manager_best_step(m, &best));
  cr_assert_eq(best, 3);
  ckpt_value v;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_restore(m, best, NULL, &v, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(v.u.composite.count, 3);
  ckpt_value *model = ckpt_value_item_get(&v, "model");
  cr_assert_not_null(model);
  cr_assert_eq(cJSON_GetObjectItemCaseSensitive(model->u.json, "step")->valuedouble, 3);
  ckpt_value_free(&v);
  mt_close(m);
}

/* Single-item mode, best max with keep_period, sync. */
Test(manager_retention, single_item_best_metric_and_keep_period) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.max_to_keep = 1;
  o.keep_period = 5;
  o.best_metric = "acc";
  o.sync = true;
  ckpt_manager *m = mt_open(root, &o);
  double acc[] = {0.1, 0.2, 0.9, 0.3, 0.4, 0.5, 0.05};
  mt_save_range(m, 1, 7, "acc", acc);
  cr_assert_str_eq(mt_steps(m), "3,5");
  mt_close(m);
}

Test(manager_retention, commit_file_mode_deletes_the_commit_file_first) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.max_to_keep = 1;
  o.atomicity = CKPT_ATOMICITY_COMMIT_FILE;
  o.best_metric = "acc";
  ckpt_manager *m = mt_open(root, &o);
  double acc[] = {0.2, 0.1, 0.3};
  mt_save_range(m, 1, 3, "acc", acc);
  /* The metrics of the step still being saved are there once it is. */
  cJSON *got = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_metrics(m, 3, &got, &err), CKPT_OK, "%s", err.message);
  cr_assert_not_null(got);
  cr_assert_eq(cJSON_GetObjectItemCaseSensitive(got, "acc")->valuedouble, 0.3);
  cJSON_Delete(got);
  cr_assert_str_eq(mt_steps(m), "3");
  cr_assert_str_eq(mt_ls(root), "3");
  mt_close(m);
}

/* ---------------------------------------------------------------- the pieces alone */

static mgr_config config(const char *prefix, int len) {
  mgr_config c;
  memset(&c, 0, sizeof c);
  c.step_prefix = (char *)(uintptr_t)prefix;
  c.step_len = len;
  return c;
}

Test(manager_retention, step_names_parse_strictly) {
  mgr_config c = config(NULL, 0);
  int64_t s = -1;
  cr_assert(ckpt_step_name_match("0", c.step_prefix, c.step_len, &s) && s == 0);
  cr_assert(ckpt_step_name_match("42", c.step_prefix, c.step_len, &s) && s == 42);
  cr_assert(ckpt_step_name_match("9223372036854775807", c.step_prefix, c.step_len, &s) &&
            s == INT64_MAX);
  const char *bad[] = {"",
                       "00",
                       "042",
                       "-1",
                       "+1",
                       "1a",
                       " 1",
                       "1 ",
                       "4.0",
                       "9223372036854775808",
                       ("1" CKPT_TMP_SUFFIX),
                       "step_1"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    cr_assert_not(ckpt_step_name_match(bad[i], c.step_prefix, c.step_len, &s), "accepted \"%s\"",
                  bad[i]);

  c = config("step", 3);
  cr_assert(ckpt_step_name_match("step_007", c.step_prefix, c.step_len, &s) && s == 7);
  cr_assert(ckpt_step_name_match("step_000", c.step_prefix, c.step_len, &s) && s == 0);
  cr_assert(ckpt_step_name_match("step_1234", c.step_prefix, c.step_len, &s) && s == 1234);
  const char *bad2[] = {"step_7",    "step_07",   "step_0123", "007",     "step007",
                        "step__007", "stepx_007", "step_",     "Step_007"};
  for (size_t i = 0; i < sizeof bad2 / sizeof *bad2; i++)
    cr_assert_not(ckpt_step_name_match(bad2[i], c.step_prefix, c.step_len, &s), "accepted \"%s\"",
                  bad2[i]);

  /* Names round-trip. */
  int64_t steps[] = {0, 7, 999, 1000, 123456789};
  for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
    char *n = ckpt_step_name_format(c.step_prefix, c.step_len, steps[i]);
    cr_assert(ckpt_step_name_match(n, c.step_prefix, c.step_len, &s) && s == steps[i], "%s", n);
    free(n);
  }
}

/* The tool's view (storage/step_name.h): every name Orbax's naming can produce, tmp marker
 * included, whatever the manager's options were. */
Test(manager_retention, step_names_parse_as_the_tool_sees_them) {
  struct {
    const char *name;
    int64_t step;
    size_t prefix_len, n_digits;
    bool tmp;
  } good[] = {{"7", 7, 0, 1, false},
              {"007", 7, 0, 3, false},
              {"step_12", 12, 4, 2, false},
              {"a_b_3", 3, 3, 1, false},
              {"5" CKPT_TMP_SUFFIX, 5, 0, 1, true},
              {"s_5" CKPT_TMP_SUFFIX "-replaced", 5, 1, 1, true},
              {"9223372036854775807", INT64_MAX, 0, 19, false}};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    ckpt_step_name s;
    cr_assert(ckpt_step_name_parse(good[i].name, &s), "rejected \"%s\"", good[i].name);
    cr_assert(s.step == good[i].step && s.prefix_len == good[i].prefix_len &&
                  s.n_digits == good[i].n_digits && s.tmp == good[i].tmp,
              "%s", good[i].name);
  }
  const char *bad[] = {
      "", "_5", "step", "step_", "5x", "5" CKPT_TMP_SUFFIX "x", "9223372036854775808", "step5"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    ckpt_step_name s;
    cr_assert_not(ckpt_step_name_parse(bad[i], &s), "accepted \"%s\"", bad[i]);
  }
}

static const char *removed(const mgr_config *c, const mgr_steps *s) {
  static char buf[256];
  int64_t *v;
  size_t n;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(mgr_steps_to_remove(c, s, &v, &n, &err), CKPT_OK, "%s", err.message);
  buf[0] = '\0';
  size_t used = 0;
  for (size_t i = 0; i < n; i++)
    used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%" PRId64, i ? "," : "", v[i]);
  free(v);
  return buf;
}

Test(manager_retention, policy_function) {
  mgr_steps s = {0};
  double vals[] = {3, 1, 4, 1, 5, 9, 2, 6};
  for (int64_t i = 0; i < 8; i++) {
    mgr_step st = {(i + 1) * 10, i == 2 ? NULL : mt_metrics("m", vals[i]), MGR_TIME_UNKNOWN};
    cr_assert_eq(mgr_steps_insert(&s, st, NULL), CKPT_OK);
  }
  mgr_config c = config(NULL, 0);
  c.keep_without_metrics = true;
  cr_assert_str_eq(removed(&c, &s), ""); /* max_to_keep 0 */
  c.max_to_keep = 8;
  cr_assert_str_eq(removed(&c, &s), ""); /* at most max_to_keep steps */
  c.max_to_keep = 3;
  cr_assert_str_eq(removed(&c, &s), "10,20,30,40,50");
  c.keep_period = 20;
  cr_assert_str_eq(removed(&c, &s), "10,30,50");
  c.keep_period = 0;
  c.best_metric = "m";
  /* Best 3 of max: 60 (9), 80 (6), 50 (5); 30 has no metric and is kept. */
  cr_assert_str_eq(removed(&c, &s), "10,20,40,70");
  c.keep_without_metrics = false;
  cr_assert_str_eq(removed(&c, &s), "10,20,30,40,70");
  c.best_mode = CKPT_BEST_MODE_MIN;
  /* Best 3 of min: 20 (1), 40 (1), 70 (2); ties keep both. */
  cr_assert_str_eq(removed(&c, &s), "10,30,50,60,80");
  c.keep_period = 50;
  cr_assert_str_eq(removed(&c, &s), "10,30,60,80");
  mgr_steps_clear(&s);
}

static bool keep_50(void *arg, int64_t step) {
  (void)arg;
  return step == 50;
}

Test(manager_retention, policy_function_preservation_rules) {
  mgr_steps s = {0};
  /* Steps 10..80, metric falling (so the latest is the worst for max), times in seconds. */
  int64_t secs[] = {0, 10, 20, 100, 110, 250, 260, 270};
  for (int64_t i = 0; i < 8; i++) {
    mgr_step st = {(i + 1) * 10, mt_metrics("m", 8.0 - (double)i), secs[i] * 1000000000};
    cr_assert_eq(mgr_steps_insert(&s, st, NULL), CKPT_OK);
  }
  mgr_config c;
  memset(&c, 0, sizeof c);
  c.max_to_keep = 2;
  c.best_metric = "m";
  c.keep_without_metrics = true;
  cr_assert_str_eq(removed(&c, &s), "30,40,50,60,70,80");
  c.keep_latest_n = 1;
  cr_assert_str_eq(removed(&c, &s), "30,40,50,60,70");
  c.keep_latest_n = 100; /* more than there are */
  cr_assert_str_eq(removed(&c, &s), "");
  c.keep_latest_n = 0;
  /* Interval 100 s: 10 (t=0), 40 (t=100), 60 (t=250). */
  c.keep_interval_ns = 100 * 1000000000LL;
  cr_assert_str_eq(removed(&c, &s), "30,50,70,80");
  c.should_keep_fn = keep_50;
  cr_assert_str_eq(removed(&c, &s), "30,70,80");
  /* An unknown time keeps its step and leaves the reference where it was. */
  s.v[2].time_ns = MGR_TIME_UNKNOWN; /* step 30 */
  cr_assert_str_eq(removed(&c, &s), "70,80");
  /* The whole policy keeps everything while there are at most max_to_keep steps. */
  c.max_to_keep = 8;
  cr_assert_str_eq(removed(&c, &s), "");
  mgr_steps_clear(&s);
}
