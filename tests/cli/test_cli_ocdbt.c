/* test_cli_ocdbt.c — `ckpt ls`, `cat`, `verify` and `diff` on Orbax's own OCDBT checkpoints
 * (copies of ../shared/orbax-fixtures in a temporary directory; skipped when absent): the
 * values Orbax saved, a comparison with a ckpt-written zarr checkpoint of the same tree, and
 * the damaged ones (the data directory deleted, manifest.ocdbt deleted) named as damage. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_cli_support.h"

#define ORBAX_FIXTURES CKPT_SOURCE_DIR "/../shared/orbax-fixtures"

static char *dir;

static void setup(void) {
  dir = tc_mkdtemp();
}
static void teardown(void) {
  tc_rmdir(dir);
  dir = NULL;
}

TestSuite(cli_ocdbt, .init = setup, .fini = teardown);

/* A writable copy of fixture `name` in dir; NULL after skipping the test when absent. */
static char *copy_fixture(const char *name) {
  char *src = tc_join(ORBAX_FIXTURES, name);
  if (!tc_exists(src)) {
    free(src);
    cr_skip_test("Orbax fixtures not found at %s: test skipped", ORBAX_FIXTURES);
    return NULL;
  }
  char *dst = tc_join(dir, name);
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "cp -R '%s' '%s' && chmod -R u+w '%s'", src, dst, dst);
  cr_assert_eq(system(cmd), 0, "%s", cmd);
  free(src);
  return dst;
}

static void expect_out(const char *cmd, const char *path, const char *key, int status,
                       const char *want) {
  tc_run r;
  if (key)
    TC_TOOL(&r, cmd, path, key);
  else
    TC_TOOL(&r, cmd, path);
  cr_assert_eq(r.status, status, "ckpt %s %s: %s%s", cmd, path, r.out, r.err);
  cr_assert(strstr(r.out, want) || strstr(r.err, want), "'%s' not in: %s%s", want, r.out, r.err);
  tc_run_free(&r);
}

Test(cli_ocdbt, standard_ls_cat_verify) {
  char *ck = copy_fixture("v0_standard");
  expect_out("ls", ck, NULL, 0, "2 leaves, 2 arrays, 62 B stored (OCDBT)");
  expect_out("ls", ck, NULL, 0, "b.c  jax.Array  int32  [3]    [3]");
  expect_out("cat", ck, "a", 0, "[0 1 2 3 4 5 6 7]\n");
  expect_out("cat", ck, "b.c", 0, "[1 2 3]\n");
  expect_out("verify", ck, NULL, 0, ": ok (1 item, 2 arrays, 2 chunks");
  free(ck);
}

Test(cli_ocdbt, composite_ls_cat_verify) {
  char *ck = copy_fixture("v0_composite");
  expect_out("ls", ck, NULL, 0, "item state: PyTreeCheckpointHandler");
  expect_out("cat", ck, "state/a", 0, "[0 1 2 3 4 5 6 7]\n");
  expect_out("cat", ck, "state/b.c", 0, "[1 2 3]\n");
  expect_out("verify", ck, NULL, 0, ": ok (2 items, 2 arrays, 2 chunks");
  free(ck);
}

Test(cli_ocdbt, diff_against_copies_and_a_zarr_checkpoint) {
  char *ck = copy_fixture("v0_standard");
  char *other = tc_join(dir, "other");
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "cp -R '%s' '%s'", ck, other);
  cr_assert_eq(system(cmd), 0);
  tc_run r;
  TC_TOOL(&r, "diff", ck, other);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert_str_eq(r.out, "no differences\n");
  tc_run_free(&r);
  /* the same tree written by ckpt (zarr directories), one value changed */
  const double a[8] = {0, 1, 2, 3, 4, 5, 6, 9}, bc[3] = {1, 2, 3};
  int64_t sa[1] = {8}, sbc[1] = {3};
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = ckpt_tree_new_dict(), *b = ckpt_tree_new_dict();
  ckpt_tree_dict_set(t, "a", tc_array(CKPT_DTYPE_INT32, 1, sa, a), &err);
  ckpt_tree_dict_set(b, "c", tc_array(CKPT_DTYPE_INT32, 1, sbc, bc), &err);
  ckpt_tree_dict_set(t, "b", b, &err);
  cr_assert_eq(err.code, CKPT_OK, "%s", err.message);
  char *mine = tc_join(dir, "mine");
  tc_save_standard(mine, t, NULL, 0, false);
  TC_TOOL(&r, "diff", ck, mine);
  cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "values: a: 1 of 8 elements differ; first at [7]: 7 != 9"), "%s", r.out);
  cr_assert(strstr(r.out, "1 difference"), "%s", r.out);
  cr_assert(!strstr(r.out, "b.c"), "b.c is equal: %s", r.out);
  tc_run_free(&r);
  free(mine);
  free(other);
  free(ck);
}

Test(cli_ocdbt, missing_data_directory_is_damage) {
  char *ck = copy_fixture("v0_standard_missing_d");
  expect_out("ls", ck, NULL, 1, "v0_standard_missing_d/d' is missing");
  expect_out("verify", ck, NULL, 1, "DAMAGED");
  expect_out("verify", ck, NULL, 1, "v0_standard_missing_d/d' is missing");
  expect_out("cat", ck, "a", 1, "array 'a': '");
  free(ck);
}

Test(cli_ocdbt, missing_manifest_is_damage) {
  char *ck = copy_fixture("v0_standard");
  char *m = tc_join(ck, "manifest.ocdbt");
  cr_assert_eq(unlink(m), 0);
  expect_out("ls", ck, NULL, 1, "manifest.ocdbt' is missing");
  expect_out("verify", ck, NULL, 1, "DAMAGED");
  expect_out("cat", ck, "b.c", 1, "manifest.ocdbt' is missing");
  free(m);
  free(ck);
}
