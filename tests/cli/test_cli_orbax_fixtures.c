/* test_cli_orbax_fixtures.c — the acceptance test of Orbax compatibility through the ckpt tool:
 * every real Orbax checkpoint of ../shared/orbax-fixtures (their README lists the values),
 * copied into a temporary directory, is listed (`ls`), verified (`verify`) and printed (`cat`:
 * every array leaf and the JSON item, exact text) — as it is, as step 1 of a directory of
 * steps, and with Orbax's optional files deleted (_METADATA, _CHECKPOINT_METADATA, _sharding and
 * array_metadatas/). The damaged one (v0_standard_missing_d) fails in every command with an
 * error naming the missing data and prints no values. Skipped, saying so, when the fixtures
 * are absent. The C API's side is tests/runtime/test_orbax_fixtures.c. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_cli_support.h"

#define ORBAX_FIXTURES CKPT_SOURCE_DIR "/../shared/orbax-fixtures"

#define NEED_FIXTURES()                                                             \
  do {                                                                              \
    if (!tc_exists(ORBAX_FIXTURES "/v0_standard"))                                  \
      cr_skip_test("Orbax fixtures not found at %s: test skipped", ORBAX_FIXTURES); \
  } while (0)

/* The good fixtures and the prefix of their tree's keys in `ckpt cat` (the item). */
static const struct {
  const char *name, *prefix;
} GOOD[] = {{"v0_standard", ""}, {"v0_composite", "state/"}, {"v1_composite_zarr3", "state/"}};
#define N_GOOD (sizeof GOOD / sizeof *GOOD)

/* A copy of fixture name at <tmp>/<as>; *root the temporary directory (tc_rmdir it). */
static char *copy_fixture(const char *name, const char *as, char **root) {
  *root = tc_mkdtemp();
  char *dst = tc_join(*root, as);
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "cp -r '%s/%s' '%s'", ORBAX_FIXTURES, name, dst);
  cr_assert_eq(system(cmd), 0, "%s", cmd);
  return dst;
}

static void remove_path(const char *dir, const char *rel) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "rm -r '%s/%s'", dir, rel);
  cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* `ckpt cat [--step 1] path key` prints exactly want. */
static void cat_is(const char *path, bool step, const char *prefix, const char *leaf,
                   const char *want) {
  char key[256];
  snprintf(key, sizeof key, "%s%s", prefix, leaf);
  tc_run r;
  if (step)
    TC_TOOL(&r, "cat", "--step", "1", path, key);
  else
    TC_TOOL(&r, "cat", path, key);
  cr_assert_eq(r.status, 0, "cat %s %s: %s%s", path, key, r.out, r.err);
  cr_assert_str_eq(r.out, want, "cat %s %s", path, key);
  tc_run_free(&r);
}

/* Every leaf of fixture i (a copy at path) printed exactly; the JSON item for composites. */
static void cat_all(const char *path, bool step, size_t i) {
  cat_is(path, step, GOOD[i].prefix, "a", "[0 1 2 3 4 5 6 7]\n");
  cat_is(path, step, GOOD[i].prefix, "b.c", "[1 2 3]\n");
  if (GOOD[i].prefix[0] != '\0')
    cat_is(path, step, "", "metadata", "{\"metadata\": \"json_data\"}\n");
}

static void verify_ok(const char *path) {
  tc_run r;
  TC_TOOL(&r, "verify", path);
  cr_assert_eq(r.status, 0, "verify %s: %s%s", path, r.out, r.err);
  cr_assert(strstr(r.out, ": ok (") && strstr(r.out, "2 arrays, 2 chunks"), "%s", r.out);
  cr_assert(!strstr(r.out, "damaged"), "%s", r.out);
  tc_run_free(&r);
}

Test(cli_orbax_fixtures, ls_cat_verify_every_fixture) {
  NEED_FIXTURES();
  for (size_t i = 0; i < N_GOOD; i++) {
    char *root;
    char *ck = copy_fixture(GOOD[i].name, "ck", &root);
    tc_run r;
    TC_TOOL(&r, "ls", ck);
    cr_assert_eq(r.status, 0, "ls %s: %s%s", GOOD[i].name, r.out, r.err);
    cr_assert(strstr(r.out, "custom     object, 1 key: {\"custom\": \"meta\"}"), "%s", r.out);
    cr_assert(strstr(r.out, "2 leaves, 2 arrays") && strstr(r.out, "(OCDBT)"), "%s", r.out);
    cr_assert(strstr(r.out, "  a    ") && strstr(r.out, "  b.c  "), "%s", r.out);
    cr_assert(strstr(r.out, "int32  [8]") && strstr(r.out, "int32  [3]"), "%s", r.out);
    cr_assert(!strstr(r.out, "  ! ") && !strstr(r.out, " ? "), "%s", r.out);
    if (GOOD[i].prefix[0] != '\0')
      cr_assert(strstr(r.out, "json     object, 1 key: {\"metadata\": \"json_data\"}"), "%s",
                r.out);
    tc_run_free(&r);
    verify_ok(ck);
    cat_all(ck, false, i);
    free(ck);
    tc_rmdir(root);
  }
}

/* A directory of steps holding the fixture as step 1: `--step 1` and the latest step. */
Test(cli_orbax_fixtures, fixture_as_a_step) {
  NEED_FIXTURES();
  for (size_t i = 0; i < N_GOOD; i++) {
    char *root;
    char *step = copy_fixture(GOOD[i].name, "1", &root);
    cat_all(root, true, i);
    tc_run r;
    TC_TOOL(&r, "cat", root, GOOD[i].prefix[0] ? "state/b.c" : "b.c");
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    cr_assert_str_eq(r.out, "[1 2 3]\n");
    tc_run_free(&r);
    TC_TOOL(&r, "ls", root);
    cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
    cr_assert(strstr(r.out, "steps in ") && strstr(r.out, ": 1 finalized"), "%s", r.out);
    cr_assert(strstr(r.out, GOOD[i].prefix[0] ? "metadata,state" : "finalized"), "%s", r.out);
    tc_run_free(&r);
    free(step);
    tc_rmdir(root);
  }
}

Test(cli_orbax_fixtures, optional_files_deleted) {
  NEED_FIXTURES();
  static const char *const variants[][2] = {
      {"_METADATA", NULL},
      {"_sharding", "array_metadatas"},
      {"_METADATA", "array_metadatas"},
  };
  for (size_t i = 0; i < N_GOOD; i++) {
    for (size_t k = 0; k <= sizeof variants / sizeof *variants; k++) {
      char *root;
      char *ck = copy_fixture(GOOD[i].name, "ck", &root);
      char *item = GOOD[i].prefix[0] ? tc_join(ck, "state") : tc_join(ck, ".");
      if (k == sizeof variants / sizeof *variants)
        remove_path(ck, "_CHECKPOINT_METADATA");
      else
        for (int f = 0; f < 2 && variants[k][f] != NULL; f++)
          remove_path(item, variants[k][f]);
      cat_all(ck, false, i);
      verify_ok(ck);
      free(item);
      free(ck);
      tc_rmdir(root);
    }
  }
}

/* Exit status 1 (damage), the missing data directory named, no values printed. */
static void fails_naming_d(const tc_run *r, const char *what) {
  cr_assert_eq(r->status, 1, "%s: status %d\n%s%s", what, r->status, r->out, r->err);
  cr_assert(strstr(r->out, "/d' is missing") || strstr(r->err, "/d' is missing"), "%s: %s%s", what,
            r->out, r->err);
  cr_assert(!strstr(r->out, "[0 1 2") && !strstr(r->out, "[1 2 3]"), "%s: %s", what, r->out);
}

Test(cli_orbax_fixtures, missing_data_fails_in_every_command) {
  NEED_FIXTURES();
  char *root;
  char *ck = copy_fixture("v0_standard_missing_d", "ck", &root);
  for (int pass = 0; pass < 2; pass++) {
    tc_run r;
    TC_TOOL(&r, "ls", ck);
    fails_naming_d(&r, "ls");
    tc_run_free(&r);
    TC_TOOL(&r, "verify", ck);
    fails_naming_d(&r, "verify");
    cr_assert(strstr(r.out, "DAMAGED"), "%s", r.out);
    tc_run_free(&r);
    TC_TOOL(&r, "cat", ck, "a");
    fails_naming_d(&r, "cat a");
    tc_run_free(&r);
    TC_TOOL(&r, "cat", ck, "b.c");
    fails_naming_d(&r, "cat b.c");
    tc_run_free(&r);
    /* again without _METADATA: the tree itself is then in the missing database */
    if (pass == 0)
      remove_path(ck, "_METADATA");
  }
  free(ck);
  tc_rmdir(root);
}
