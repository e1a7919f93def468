/* test_cli_gc.c — `ckpt gc` removes the leftover *.orbax-checkpoint-tmp directories of a
 * manager directory and nothing else: finalized steps, unrelated files and directories, files
 * and symlinks carrying the tmp marker, and whatever a symlink points to all stay. --dry-run
 * removes nothing. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_cli_support.h"

static char *dir, *mgr;

static void mkdir_with_file(const char *parent, const char *name) {
  char *d = tc_join(parent, name);
  cr_assert_eq(mkdir(d, 0755), 0, "%s", d);
  char *f = tc_join(d, "chunk");
  tc_write(f, "0123456789", 10);
  free(f);
  free(d);
}

static void setup(void) {
  dir = tc_mkdtemp();
  mgr = tc_join(dir, "run");
  tc_save_step(mgr, NULL, 0, 1, 0.5);
  tc_save_step(mgr, NULL, 0, 2, 0.25);
  mkdir_with_file(mgr, "3.orbax-checkpoint-tmp");
  mkdir_with_file(mgr, "4.orbax-checkpoint-tmp-1712345678"); /* legacy counter */
  mkdir_with_file(mgr, "1.orbax-checkpoint-tmp-deleting");   /* ckpt's deletion */
  mkdir_with_file(mgr, "notes");                             /* unrelated */
  char *f = tc_join(mgr, "5.orbax-checkpoint-tmp");          /* a file: kept */
  tc_write(f, "x", 1);
  free(f);
  /* a symlink with the marker, pointing at precious data outside: neither is touched */
  mkdir_with_file(dir, "precious");
  char *target = tc_join(dir, "precious"), *link = tc_join(mgr, "6.orbax-checkpoint-tmp");
  cr_assert_eq(symlink(target, link), 0);
  free(target);
  free(link);
}

static void teardown(void) {
  free(mgr);
  tc_rmdir(dir);
  dir = mgr = NULL;
}

TestSuite(cli_gc, .init = setup, .fini = teardown);

static bool has(const char *name) {
  char *p = tc_join(mgr, name);
  bool e = tc_exists(p);
  free(p);
  return e;
}

static void everything_else_kept(void) {
  cr_assert(has("1"));
  cr_assert(has("2"));
  cr_assert(has("notes"));
  cr_assert(has("5.orbax-checkpoint-tmp"));
  cr_assert(has("6.orbax-checkpoint-tmp"));
  char *p = tc_join2(dir, "precious", "chunk");
  cr_assert(tc_exists(p), "the symlink's target was touched");
  free(p);
}

Test(cli_gc, dry_run_removes_nothing) {
  tc_run r;
  TC_TOOL(&r, "gc", "--dry-run", mgr);
  cr_assert_eq(r.status, 0, "%s", r.err);
  char *norm = tc_normalize(r.out, dir);
  tc_golden("gc_dry_run.txt", norm);
  free(norm);
  tc_run_free(&r);
  cr_assert(has("3.orbax-checkpoint-tmp"));
  cr_assert(has("4.orbax-checkpoint-tmp-1712345678"));
  cr_assert(has("1.orbax-checkpoint-tmp-deleting"));
  everything_else_kept();
}

Test(cli_gc, removes_only_tmp_directories) {
  tc_run r;
  TC_TOOL(&r, "gc", "--json", mgr);
  cr_assert_eq(r.status, 0, "%s", r.err);
  char *norm = tc_normalize(r.out, dir);
  tc_golden("gc_removed.json", norm);
  free(norm);
  tc_run_free(&r);
  cr_assert_not(has("3.orbax-checkpoint-tmp"));
  cr_assert_not(has("4.orbax-checkpoint-tmp-1712345678"));
  cr_assert_not(has("1.orbax-checkpoint-tmp-deleting"));
  everything_else_kept();
  /* the steps are still sound checkpoints, and a second gc finds nothing */
  TC_TOOL(&r, "verify", mgr);
  cr_assert_eq(r.status, 0, "%s", r.out);
  tc_run_free(&r);
  TC_TOOL(&r, "gc", mgr);
  cr_assert_eq(r.status, 0);
  cr_assert(strstr(r.out, "0 temporary directories removed"), "%s", r.out);
  tc_run_free(&r);
}

Test(cli_gc, bad_directory_exit_2) {
  char *missing = tc_join(dir, "nope");
  tc_run r;
  TC_TOOL(&r, "gc", missing);
  cr_assert_eq(r.status, 2);
  cr_assert(strstr(r.err, "does not exist"), "%s", r.err);
  tc_run_free(&r);
  char *file = tc_join(mgr, "5.orbax-checkpoint-tmp");
  TC_TOOL(&r, "gc", file);
  cr_assert_eq(r.status, 2);
  cr_assert(strstr(r.err, "is not a directory"), "%s", r.err);
  tc_run_free(&r);
  free(file);
  free(missing);
}
