/* test_cli_diff.c — `ckpt diff`: equal checkpoints exit 0 (also when chunked differently);
 * changed values, JSON items, keys only on one side, dtypes and shapes are reported and exit
 * 1; tolerances decide closeness as numpy.isclose does; NaN equals NaN; unreadable data and bad
 * paths exit 2. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_cli_support.h"

static char *dir;

static void setup(void) {
  dir = tc_mkdtemp();
}
static void teardown(void) {
  tc_rmdir(dir);
  dir = NULL;
}

TestSuite(cli_diff, .init = setup, .fini = teardown);

static char *composite(const char *name, int variant) {
  char *p = tc_join(dir, name);
  tc_save_composite(p, variant);
  return p;
}

Test(cli_diff, identical_checkpoints_exit_0) {
  char *a = composite("a", 0), *b = composite("b", 0);
  tc_run r;
  TC_TOOL(&r, "diff", a, b);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert_str_eq(r.out, "no differences\n");
  tc_run_free(&r);
  TC_TOOL(&r, "diff", "--json", a, b);
  cr_assert_eq(r.status, 0);
  cr_assert(strstr(r.out, "\"equal\": true"), "%s", r.out);
  cr_assert(strstr(r.out, "\"differences\": []"), "%s", r.out);
  tc_run_free(&r);
  free(a);
  free(b);
}

Test(cli_diff, changed_values_and_json_exit_1) {
  char *a = composite("a", 0), *b = composite("b", 1);
  tc_run r;
  TC_TOOL(&r, "diff", a, b);
  cr_assert_eq(r.status, 1, "%s", r.err);
  char *norm = tc_normalize(r.out, dir);
  tc_golden("diff_values.txt", norm);
  free(norm);
  tc_run_free(&r);
  TC_TOOL(&r, "diff", "--json", a, b);
  cr_assert_eq(r.status, 1);
  cJSON *doc = cJSON_Parse(r.out);
  cr_assert_not_null(doc, "%s", r.out);
  cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(doc, "equal")));
  cJSON *d = cJSON_GetObjectItem(doc, "differences");
  cr_assert_eq(cJSON_GetArraySize(d), 2, "%s", r.out);
  cJSON *v = cJSON_GetArrayItem(d, 1);
  cr_assert_str_eq(cJSON_GetObjectItem(v, "kind")->valuestring, "values");
  cr_assert_str_eq(cJSON_GetObjectItem(v, "item")->valuestring, "params");
  cr_assert_str_eq(cJSON_GetObjectItem(v, "key")->valuestring, "layer0.b");
  cr_assert_eq(cJSON_GetObjectItem(v, "count")->valuedouble, 1);
  cr_assert_eq(cJSON_GetObjectItem(v, "max_abs_diff")->valuedouble, 0.25);
  cJSON_Delete(doc);
  tc_run_free(&r);
  /* --item limits the comparison */
  TC_TOOL(&r, "diff", "--item", "run", a, b);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  tc_run_free(&r);
  free(a);
  free(b);
}

Test(cli_diff, tolerance) {
  char *a = composite("a", 0), *b = composite("b", 1);
  tc_run r;
  /* layer0.b differs by 0.25 (at -1.5 vs -1.25); config.lr still differs */
  TC_TOOL(&r, "diff", "--item", "params", "--atol", "0.25", a, b);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  tc_run_free(&r);
  TC_TOOL(&r, "diff", "--item", "params", "--atol", "0.2", a, b);
  cr_assert_eq(r.status, 1, "%s", r.out);
  tc_run_free(&r);
  TC_TOOL(&r, "diff", "--item", "params", "--rtol", "0.2", a, b);
  cr_assert_eq(r.status, 0, "|a-b| <= rtol*|b| = 0.25: %s", r.out);
  tc_run_free(&r);
  TC_TOOL(&r, "diff", "--item", "params", "--rtol", "0.19", a, b);
  cr_assert_eq(r.status, 1, "%s", r.out);
  tc_run_free(&r);
  free(a);
  free(b);
}

Test(cli_diff, structure_dtype_and_shape) {
  char *a = composite("a", 0), *b = composite("b", 2);
  tc_run r;
  TC_TOOL(&r, "diff", "--item", "params", a, b);
  cr_assert_eq(r.status, 1);
  cr_assert_str_eq(r.out,
                   "only in B: params/extra: scalar\n"
                   "only in A: params/lr: scalar\n"
                   "2 differences\n");
  tc_run_free(&r);

  char *x = tc_join(dir, "x"), *y = tc_join(dir, "y");
  int64_t s4[] = {4}, s5[] = {5};
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *tx = ckpt_tree_new_dict(), *ty = ckpt_tree_new_dict();
  ckpt_tree_dict_set(tx, "d", tc_array(CKPT_DTYPE_FLOAT32, 1, s4, NULL), &err);
  ckpt_tree_dict_set(ty, "d", tc_array(CKPT_DTYPE_FLOAT64, 1, s4, NULL), &err);
  ckpt_tree_dict_set(tx, "s", tc_array(CKPT_DTYPE_INT32, 1, s4, NULL), &err);
  ckpt_tree_dict_set(ty, "s", tc_array(CKPT_DTYPE_INT32, 1, s5, NULL), &err);
  ckpt_tree_dict_set(tx, "t", tc_array(CKPT_DTYPE_INT32, 1, s4, NULL), &err);
  ckpt_tree_dict_set(ty, "t", ckpt_tree_new_int(CKPT_DTYPE_INT32, 1), &err);
  tc_save_standard(x, tx, NULL, 0, false);
  tc_save_standard(y, ty, NULL, 0, false);
  TC_TOOL(&r, "diff", x, y);
  cr_assert_eq(r.status, 1);
  /* same values in another dtype: only the dtype is a difference */
  cr_assert_str_eq(r.out,
                   "dtype: d: float32 != float64\n"
                   "shape: s: [4] != [5]\n"
                   "type: t: np.ndarray != scalar\n"
                   "3 differences\n");
  tc_run_free(&r);
  free(x);
  free(y);
  free(a);
  free(b);
}

Test(cli_diff, chunking_does_not_matter_and_nan_equals_nan) {
  char *x = tc_join(dir, "x"), *y = tc_join(dir, "y");
  int64_t shape[] = {64, 50};
  double v[3200];
  for (int i = 0; i < 3200; i++)
    v[i] = i % 17 == 0 ? NAN : sin(i);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *tx = ckpt_tree_new_dict(), *ty = ckpt_tree_new_dict();
  ckpt_tree_dict_set(tx, "m", tc_array(CKPT_DTYPE_FLOAT64, 2, shape, v), &err);
  ckpt_tree_dict_set(ty, "m", tc_array(CKPT_DTYPE_FLOAT64, 2, shape, v), &err);
  tc_save_standard(x, tx, "m", 8 * 50 * 5, false); /* chunks of 5 rows */
  tc_save_standard(y, ty, "m", 8 * 50 * 16, true); /* chunks of 16 rows, zstd */
  tc_run r;
  TC_TOOL(&r, "diff", x, y);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  tc_run_free(&r);
  free(x);
  free(y);
}

Test(cli_diff, big_int64_compare_exactly) {
  char *x = tc_join(dir, "x"), *y = tc_join(dir, "y");
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *tx = ckpt_tree_new_dict(), *ty = ckpt_tree_new_dict();
  /* 2^53 and 2^53 + 1 are the same double, but different int64s */
  ckpt_tree_dict_set(tx, "n", ckpt_tree_new_int(CKPT_DTYPE_INT64, 9007199254740992LL), &err);
  ckpt_tree_dict_set(ty, "n", ckpt_tree_new_int(CKPT_DTYPE_INT64, 9007199254740993LL), &err);
  tc_save_standard(x, tx, NULL, 0, false);
  tc_save_standard(y, ty, NULL, 0, false);
  tc_run r;
  TC_TOOL(&r, "diff", x, y);
  cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "9007199254740992 != 9007199254740993"), "%s", r.out);
  tc_run_free(&r);
  free(x);
  free(y);
}

Test(cli_diff, items_only_on_one_side) {
  char *a = composite("a", 0);
  char *b = tc_join(dir, "b");
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_Composite *c = ckpt_composite_new();
  ckpt_JsonSave *j = ckpt_JsonSave_new();
  j->item = cJSON_Parse("{\"lr\": 0.001, \"layers\": [4, 3], \"name\": \"mlp\"}");
  ckpt_composite_add(c, "config", &j->base, &err);
  ckpt_JsonSave *k = ckpt_JsonSave_new();
  k->item = cJSON_Parse("[1]");
  ckpt_composite_add(c, "notes", &k->base, &err);
  tc_save_args(NULL, b, &c->base);
  tc_run r;
  TC_TOOL(&r, "diff", a, b);
  cr_assert_eq(r.status, 1);
  cr_assert_str_eq(r.out,
                   "only in A: params: item\n"
                   "only in A: run: item\n"
                   "only in B: notes: item\n"
                   "3 differences\n");
  tc_run_free(&r);
  free(a);
  free(b);
}

Test(cli_diff, errors_exit_2) {
  char *a = composite("a", 0), *b = composite("b", 0);
  char *missing = tc_join(dir, "nope");
  tc_run r;
  TC_TOOL(&r, "diff", a, missing);
  cr_assert_eq(r.status, 2);
  cr_assert(strstr(r.err, "does not exist"), "%s", r.err);
  tc_run_free(&r);
  TC_TOOL(&r, "diff", a);
  cr_assert_eq(r.status, 2);
  tc_run_free(&r);
  TC_TOOL(&r, "diff", "--rtol", "-1", a, b);
  cr_assert_eq(r.status, 2);
  cr_assert(strstr(r.err, "--rtol needs a finite number >= 0"), "%s", r.err);
  tc_run_free(&r);
  /* a damaged chunk cannot be compared: an error, not "different" */
  char *c = tc_join2(b, "params/layer0.w", "0.0");
  tc_flip_bit(c, 1);
  TC_TOOL(&r, "diff", a, b);
  cr_assert_eq(r.status, 2, "%s", r.out);
  cr_assert(strstr(r.err, "array 'layer0.w': chunk '0.0' is corrupt"), "%s", r.err);
  tc_run_free(&r);
  free(c);
  free(missing);
  free(a);
  free(b);
}
