/* test_cli_ls.c — `ckpt ls` on real checkpoints written by the library: a Composite with PyTree,
 * JSON and proto items, a single-item StandardSave checkpoint, an item directory, and a
 * CheckpointManager directory with prefixed, padded steps, metrics and a leftover tmp dir.
 * Outputs are compared with golden text and JSON under tests/fixtures/cli/. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "test_cli_support.h"

static char *dir;

static void setup(void) {
  dir = tc_mkdtemp();
}
static void teardown(void) {
  tc_rmdir(dir);
  dir = NULL;
}

TestSuite(cli_ls, .init = setup, .fini = teardown);

static void golden_run(const char *golden, const char *const *args, int want_status) {
  tc_run r;
  tc_tool(&r, args);
  cr_assert_eq(r.status, want_status, "exit %d, stderr: %s", r.status, r.err);
  char *norm = tc_normalize(r.out, dir);
  tc_golden(golden, norm);
  free(norm);
  tc_run_free(&r);
}

Test(cli_ls, composite_text_and_json) {
  char *ck = tc_join(dir, "ckpt");
  tc_save_composite(ck, 0);
  golden_run("ls_composite.txt", (const char *const[]){"ls", ck, NULL}, 0);
  golden_run("ls_composite.json", (const char *const[]){"ls", "--json", ck, NULL}, 0);
  free(ck);
}

Test(cli_ls, json_reports_stored_bytes_of_every_chunk) {
  char *ck = tc_join(dir, "ckpt");
  tc_save_composite(ck, 0);
  tc_run r;
  TC_TOOL(&r, "ls", "--json", ck);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cJSON *doc = cJSON_Parse(r.out);
  cr_assert_not_null(doc, "not JSON: %s", r.out);
  /* items sorted by name: config, params, run */
  cJSON *params = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "items"), 1);
  cr_assert_str_eq(cJSON_GetObjectItem(params, "name")->valuestring, "params");
  cJSON *leaf;
  int found = 0;
  cJSON_ArrayForEach(leaf, cJSON_GetObjectItem(params, "leaves")) {
    if (strcmp(cJSON_GetObjectItem(leaf, "key")->valuestring, "layer0.w") != 0)
      continue;
    found = 1;
    cr_assert_eq(cJSON_GetObjectItem(leaf, "n_chunks")->valuedouble, 2);
    /* the sizes the tool reports are the sizes on disk */
    struct stat a, b;
    char *c0 = tc_join2(ck, "params/layer0.w", "0.0"), *c1 = tc_join2(ck, "params/layer0.w", "1.0");
    cr_assert_eq(stat(c0, &a), 0);
    cr_assert_eq(stat(c1, &b), 0);
    cr_assert_eq(cJSON_GetObjectItem(leaf, "stored_bytes")->valuedouble,
                 (double)(a.st_size + b.st_size));
    free(c0);
    free(c1);
  }
  cr_assert(found);
  cJSON_Delete(doc);
  tc_run_free(&r);
  free(ck);
}

Test(cli_ls, single_item_checkpoint) {
  char *ck = tc_join(dir, "single");
  ckpt_tree *t = ckpt_tree_new_dict();
  int64_t s[] = {2, 3};
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree_dict_set(t, "a", tc_array(CKPT_DTYPE_INT32, 2, s, NULL), &err);
  ckpt_tree_dict_set(t, "b", ckpt_tree_new_float(CKPT_DTYPE_FLOAT64, 2.5), &err);
  tc_save_standard(ck, t, NULL, 0, false);
  golden_run("ls_single.txt", (const char *const[]){"ls", ck, NULL}, 0);
  free(ck);
}

Test(cli_ls, item_directory) {
  char *ck = tc_join(dir, "ckpt");
  tc_save_composite(ck, 0);
  char *item = tc_join(ck, "params");
  golden_run("ls_item.txt", (const char *const[]){"ls", item, NULL}, 0);
  free(item);
  free(ck);
}

static void make_manager(const char *m) {
  tc_save_step(m, "step", 4, 1, 0.5);
  tc_save_step(m, "step", 4, 2, 0.25);
  tc_save_step(m, "step", 4, 10, 0.125);
  /* the leftover of an interrupted save, and an unrelated file */
  char *tmp = tc_join(m, "step_0011.orbax-checkpoint-tmp");
  cr_assert_eq(mkdir(tmp, 0755), 0);
  char *f = tc_join(tmp, "junk");
  tc_write(f, "x", 1);
  char *other = tc_join(m, "README");
  tc_write(other, "not a step", 10);
  free(f);
  free(tmp);
  free(other);
}

Test(cli_ls, manager_directory) {
  char *m = tc_join(dir, "run");
  make_manager(m);
  golden_run("ls_manager.txt", (const char *const[]){"ls", m, NULL}, 0);
  golden_run("ls_manager.json", (const char *const[]){"ls", "--json", m, NULL}, 0);
  free(m);
}

Test(cli_ls, manager_step_option_lists_that_step) {
  char *m = tc_join(dir, "run");
  make_manager(m);
  golden_run("ls_manager_step2.txt", (const char *const[]){"ls", "--step", "2", m, NULL}, 0);
  tc_run r;
  TC_TOOL(&r, "ls", "--step", "3", m);
  cr_assert_eq(r.status, 2);
  cr_assert(strstr(r.err, "no finalized step 3"), "%s", r.err);
  tc_run_free(&r);
  free(m);
}

Test(cli_ls, unpadded_steps_without_prefix) {
  char *m = tc_join(dir, "plain");
  tc_save_step(m, NULL, 0, 7, 1.0);
  tc_save_step(m, NULL, 0, 12, 2.0);
  tc_run r;
  TC_TOOL(&r, "ls", "--json", m);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cJSON *doc = cJSON_Parse(r.out);
  cr_assert_not_null(doc);
  cr_assert_str_eq(cJSON_GetObjectItem(doc, "type")->valuestring, "manager");
  cJSON *steps = cJSON_GetObjectItem(doc, "steps");
  cr_assert_eq(cJSON_GetArraySize(steps), 2);
  cr_assert_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(steps, 0), "step")->valuedouble, 7);
  cr_assert_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(steps, 1), "step")->valuedouble, 12);
  cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(steps, 1), "name")->valuestring, "12");
  cJSON_Delete(doc);
  tc_run_free(&r);
  free(m);
}

Test(cli_ls, exact_commit_timestamp_in_json) {
  char *ck = tc_join(dir, "ckpt");
  tc_save_composite(ck, 0);
  char *mp = tc_join(ck, "_CHECKPOINT_METADATA");
  char *meta = tc_read(mp, NULL);
  const char *key = "\"commit_timestamp_nsecs\":";
  char *at = strstr(meta, key);
  cr_assert_not_null(at);
  at += strlen(key);
  while (*at == ' ')
    at++;
  char digits[32] = {0};
  for (int i = 0; i < 31 && at[i] >= '0' && at[i] <= '9'; i++)
    digits[i] = at[i];
  tc_run r;
  TC_TOOL(&r, "ls", "--json", ck);
  char want[64];
  snprintf(want, sizeof want, "\"commit_timestamp_nsecs\": %s,", digits);
  cr_assert(strstr(r.out, want), "%s not in %s", want, r.out);
  tc_run_free(&r);
  free(meta);
  free(mp);
  free(ck);
}

Test(cli_ls, damaged_zarray_is_listed_and_exit_1) {
  char *ck = tc_join(dir, "ckpt");
  tc_save_composite(ck, 0);
  char *z = tc_join2(ck, "params/layer0.b", ".zarray");
  tc_write(z, "{not json", 9);
  tc_run r;
  TC_TOOL(&r, "ls", ck);
  cr_assert_eq(r.status, 1, "%s", r.err);
  cr_assert(strstr(r.out, "layer0.w"), "other leaves still listed: %s", r.out);
  cr_assert(strstr(r.out, "! layer0.b:"), "%s", r.out);
  tc_run_free(&r);
  free(z);
  free(ck);
}
