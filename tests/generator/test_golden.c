/* test_golden.c — ckptgen's output for the example schemas and the built-in schema, pinned byte for
 * byte by tests/fixtures/golden/ (regenerate with `make golden`, then review the diff), and the
 * determinism of that output: the same bytes from run to run, from any working directory, and
 * whether schemas are compiled one per run or together.
 *
 * Every test runs the real ckptgen (CKPTGEN_PATH) as a child process on the real schemas. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen_support.h"

#define GOLDEN_DIR CKPT_SOURCE_DIR "/tests/fixtures/golden"
#define SCHEMA_DIR CKPT_SOURCE_DIR "/schemas"

/* Temporary output directories are removed even when an assertion ends a test early. */
TestSuite(golden, .fini = gs_cleanup_tmpdirs);
TestSuite(determinism, .fini = gs_cleanup_tmpdirs);

/* The schemas the golden set covers, relative to schemas/ (as scripts/update-golden lists
 * them): the built-in schema and every example. */
static gs_list golden_schemas(void) {
  static const char *const ckpt_suffix[] = {".ckpt", NULL};
  gs_list examples = gs_list_files(SCHEMA_DIR "/examples", ckpt_suffix);
  gs_list all = {NULL, 0, 0};
  gs_list_push(&all, gs_fmt("ckpt/builtin.ckpt"));
  for (size_t i = 0; i < examples.count; i++) {
    gs_list_push(&all, gs_fmt("examples/%s", examples.items[i]));
  }
  gs_free_list(&examples);
  cr_assert(all.count >= 4, "expected the built-in schema and at least 3 examples, found %zu",
            all.count);
  return all;
}

/* Runs ckptgen on the given schemas (relative to schemas/) into outdir, from the source
 * directory, exactly as scripts/update-golden does. */
static void run_ckptgen(const char *outdir, char *const *schemas, size_t count) {
  char **argv = calloc(count + 6, sizeof *argv);
  cr_assert(argv != NULL);
  size_t n = 0;
  argv[n++] = (char *)CKPTGEN_PATH;
  argv[n++] = (char *)"-I";
  argv[n++] = (char *)"schemas";
  argv[n++] = (char *)"-o";
  argv[n++] = (char *)outdir;
  char **paths = calloc(count, sizeof *paths);
  cr_assert(paths != NULL);
  for (size_t i = 0; i < count; i++) {
    paths[i] = gs_fmt("schemas/%s", schemas[i]);
    argv[n++] = paths[i];
  }
  argv[n] = NULL;
  gs_result r = gs_run(CKPT_SOURCE_DIR, argv, NULL);
  gs_expect_success(&r, "ckptgen");
  gs_result_free(&r);
  for (size_t i = 0; i < count; i++) free(paths[i]);
  free(paths);
  free(argv);
}

/* Compares two files byte for byte; on a difference, fails naming the first differing line of
 * each. */
static void expect_same_file(const char *expected_path, const char *actual_path,
                             const char *hint) {
  size_t elen = 0, alen = 0;
  char *expected = gs_read_file(expected_path, &elen);
  char *actual = gs_read_file(actual_path, &alen);
  cr_assert(expected != NULL, "cannot read %s (%s)", expected_path, hint);
  cr_assert(actual != NULL, "cannot read %s", actual_path);
  if (elen != alen || memcmp(expected, actual, elen) != 0) {
    size_t i = 0, line = 1, line_start = 0;
    while (i < elen && i < alen && expected[i] == actual[i]) {
      if (expected[i] == '\n') {
        line++;
        line_start = i + 1;
      }
      i++;
    }
    const char *e = expected + line_start, *a = actual + line_start;
    int elen_line = (int)strcspn(e, "\n"), alen_line = (int)strcspn(a, "\n");
    cr_assert_fail("%s differs from %s at line %zu (%s):\n  expected: %.*s\n  actual:   %.*s",
                   actual_path, expected_path, line, hint, elen_line, e, alen_line, a);
  }
  free(expected);
  free(actual);
}

static const char *const generated_suffixes[] = {".ckpt.c", ".ckpt.h", NULL};

Test(golden, example_schemas_match_golden_files) {
  gs_list schemas = golden_schemas();
  char *out = gs_mkdtemp("golden");
  run_ckptgen(out, schemas.items, schemas.count);
  for (size_t i = 0; i < schemas.count; i++) {
    for (int h = 0; h < 2; h++) {
      const char *ext = h ? "h" : "c";
      char *golden = gs_fmt("%s/%s.%s", GOLDEN_DIR, schemas.items[i], ext);
      char *actual = gs_fmt("%s/%s.%s", out, schemas.items[i], ext);
      expect_same_file(golden, actual,
                       "if the change to generated code is intended, run `make golden`");
      free(golden);
      free(actual);
    }
  }
  gs_rmtree(out);
  free(out);
  gs_free_list(&schemas);
}

/* The golden directory holds exactly the outputs of the current schemas: a removed or renamed
 * schema must not leave a golden file that no test compares any more. */
Test(golden, no_stale_or_missing_golden_files) {
  gs_list schemas = golden_schemas();
  gs_list files = gs_list_files(GOLDEN_DIR, generated_suffixes);
  gs_list expected = {NULL, 0, 0};
  for (size_t i = 0; i < schemas.count; i++) {
    gs_list_push(&expected, gs_fmt("%s.c", schemas.items[i]));
    gs_list_push(&expected, gs_fmt("%s.h", schemas.items[i]));
  }
  qsort(expected.items, expected.count, sizeof *expected.items, gs_cmp_str_);
  for (size_t i = 0; i < expected.count || i < files.count; i++) {
    const char *want = i < expected.count ? expected.items[i] : "(nothing)";
    const char *have = i < files.count ? files.items[i] : "(nothing)";
    cr_assert_str_eq(have, want, "golden file set differs at entry %zu: have %s, want %s "
                     "(run `make golden`)", i, have, want);
  }
  gs_free_list(&expected);
  gs_free_list(&files);
  gs_free_list(&schemas);
}

/* Golden files must be what the build compiles: the build runs ckptgen with --depfile, which
 * must not change the generated code. */
Test(golden, build_outputs_match_golden_files) {
  gs_list schemas = golden_schemas();
  for (size_t i = 0; i < schemas.count; i++) {
    for (int h = 0; h < 2; h++) {
      const char *ext = h ? "h" : "c";
      char *golden = gs_fmt("%s/%s.%s", GOLDEN_DIR, schemas.items[i], ext);
      char *built = gs_fmt("%s/gen/%s.%s", CKPT_BUILD_DIR, schemas.items[i], ext);
      expect_same_file(golden, built,
                       "the build's generated file; run `make golden` if the golden one is old");
      free(golden);
      free(built);
    }
  }
  gs_free_list(&schemas);
}

static void expect_same_tree(const char *a, const char *b, const char *what) {
  gs_list la = gs_list_files(a, generated_suffixes);
  gs_list lb = gs_list_files(b, generated_suffixes);
  cr_assert_eq(la.count, lb.count, "%s: %zu vs %zu generated files", what, la.count, lb.count);
  for (size_t i = 0; i < la.count; i++) {
    cr_assert_str_eq(la.items[i], lb.items[i], "%s: file lists differ", what);
    char *pa = gs_fmt("%s/%s", a, la.items[i]);
    char *pb = gs_fmt("%s/%s", b, lb.items[i]);
    expect_same_file(pa, pb, what);
    free(pa);
    free(pb);
  }
  gs_free_list(&la);
  gs_free_list(&lb);
}

Test(determinism, same_bytes_from_run_to_run) {
  gs_list schemas = golden_schemas();
  char *first = gs_mkdtemp("det1");
  char *second = gs_mkdtemp("det2");
  run_ckptgen(first, schemas.items, schemas.count);
  run_ckptgen(second, schemas.items, schemas.count);
  expect_same_tree(first, second, "two runs of ckptgen on the same schemas");
  gs_rmtree(first);
  gs_rmtree(second);
  free(first);
  free(second);
  gs_free_list(&schemas);
}

/* One schema per run and all schemas in one run give the same files: nothing one schema
 * declares leaks into the output of the next. */
Test(determinism, same_bytes_one_schema_per_run) {
  gs_list schemas = golden_schemas();
  char *together = gs_mkdtemp("dettog");
  char *apart = gs_mkdtemp("detapart");
  run_ckptgen(together, schemas.items, schemas.count);
  for (size_t i = schemas.count; i-- > 0;) run_ckptgen(apart, &schemas.items[i], 1);
  expect_same_tree(together, apart, "all schemas in one run vs one per run (reverse order)");
  gs_rmtree(together);
  gs_rmtree(apart);
  free(together);
  free(apart);
  gs_free_list(&schemas);
}

/* Absolute paths, another working directory, another locale and time zone: the output must not
 * record where or when it was generated (reproducible builds), so it equals the golden files. */
Test(determinism, independent_of_paths_cwd_and_environment) {
  gs_list schemas = golden_schemas();
  char *out = gs_mkdtemp("detabs");
  for (size_t i = 0; i < schemas.count; i++) {
    char *schema = gs_fmt("%s/%s", SCHEMA_DIR, schemas.items[i]);
    char *argv[] = {(char *)CKPTGEN_PATH, (char *)"-I", (char *)SCHEMA_DIR, (char *)"-o", out,
                    schema, NULL};
    const char *const env[] = {"TZ=Pacific/Kiritimati", "LC_ALL=C.UTF-8",
                               "SOURCE_DATE_EPOCH=1", NULL};
    gs_result r = gs_run("/", argv, env);
    gs_expect_success(&r, "ckptgen with absolute paths from /");
    gs_result_free(&r);
    free(schema);
  }
  for (size_t i = 0; i < schemas.count; i++) {
    for (int h = 0; h < 2; h++) {
      const char *ext = h ? "h" : "c";
      char *golden = gs_fmt("%s/%s.%s", GOLDEN_DIR, schemas.items[i], ext);
      char *actual = gs_fmt("%s/%s.%s", out, schemas.items[i], ext);
      expect_same_file(golden, actual, "generated with absolute paths from another directory");
      free(golden);
      free(actual);
    }
  }
  gs_rmtree(out);
  free(out);
  gs_free_list(&schemas);
}
