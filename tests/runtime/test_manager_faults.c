/* test_manager_faults.c — the CheckpointManager under injected I/O failures (ckpt_io_set_fault):
 * a failed commit never deletes a good step and its error surfaces (sync: from save; async:
 * from the next call), failed deletions leave no half-deleted step listed, failures while
 * listing are reported, and a sweep failing every I/O call of a save in turn always leaves a
 * directory whose listed steps all restore. */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "test_manager_util.h"

static char *root;
static ckpt_io *io;

static void setup(void) {
  root = mt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK, "%s", err.message);
}

static void teardown(void) {
  ckpt_io_free(io);
  mt_rmtree(root);
  free(root);
}

TestSuite(manager_faults, .init = setup, .fini = teardown);

/* Fails op on paths ending with suffix (or every op when suffix is NULL, from the nth call). */
typedef struct fault {
  ckpt_io_op op;
  const char *suffix;
  int errnum;
  int hits;
} fault;

static bool ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int fail_matching(void *arg, ckpt_io_op op, const char *path) {
  fault *f = arg;
  if (op != f->op || !ends_with(path, f->suffix))
    return 0;
  f->hits++;
  return f->errnum;
}

static ckpt_manager *open_io(int max_to_keep, bool sync) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.max_to_keep = max_to_keep;
  o.sync = sync;
  o.io = io;
  return mt_open(root, &o);
}

/* Restores step (single JSON item) and returns its "step" member. */
static int64_t restore_step(ckpt_manager *m, int64_t step) {
  ckpt_value v;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_restore(m, step, NULL, &v, &err), CKPT_OK, "%s", err.message);
  int64_t r = (int64_t)cJSON_GetObjectItemCaseSensitive(v.u.json, "step")->valuedouble;
  ckpt_value_free(&v);
  return r;
}

/* Every listed step restores, and the directory lists exactly want. */
static void check_intact(const char *want) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.read_only = true;
  ckpt_manager *m = mt_open(root, &o);
  cr_assert_str_eq(mt_steps(m), want);
  int64_t *steps;
  size_t n;
  cr_assert_eq(ckpt_manager_all_steps(m, &steps, &n, NULL), CKPT_OK);
  for (size_t i = 0; i < n; i++) {
    ckpt_value v;
    ckpt_error err = CKPT_ERROR_INIT;
    cr_assert_eq(ckpt_manager_restore(m, steps[i], NULL, &v, &err), CKPT_OK, "step %" PRId64 ": %s",
                 steps[i], err.message);
    cr_assert_eq(cJSON_GetObjectItemCaseSensitive(v.u.json, "step")->valuedouble, (double)steps[i]);
    ckpt_value_free(&v);
  }
  free(steps);
  mt_close(m);
}

Test(manager_faults, failed_commit_rename_sync_deletes_nothing) {
  ckpt_manager *m = open_io(2, true);
  cr_assert(mt_save_json(m, 1));
  cr_assert(mt_save_json(m, 2));
  fault f = {CKPT_IO_RENAME, "/3" CKPT_TMP_SUFFIX, EIO, 0};
  ckpt_io_set_fault(io, fail_matching, &f);
  ckpt_args *a = mt_json_save(3, NULL);
  ckpt_error err = CKPT_ERROR_INIT;
  bool saved = true;
  cr_assert_eq(ckpt_manager_save(m, 3, a, NULL, false, &saved, &err), CKPT_EIO);
  cr_assert_eq(f.hits, 1);
  cr_assert_not(saved);
  cr_assert(strstr(err.message, "step 3") != NULL, "%s", err.message);
  cr_assert(strstr(err.message, "rename") != NULL || strstr(err.message, "3" CKPT_TMP_SUFFIX), "%s",
            err.message);
  cr_assert_str_eq(mt_steps(m), "1,2");
  cr_assert_str_eq(mt_ls(root), "1,2");
  check_intact("1,2");

  /* The next attempt succeeds and only then retention deletes step 1. */
  ckpt_io_set_fault(io, NULL, NULL);
  cr_assert(mt_save(m, 3, a, NULL, false));
  ckpt_args_delete(a);
  cr_assert_str_eq(mt_steps(m), "2,3");
  mt_close(m);
  check_intact("2,3");
}

Test(manager_faults, failed_commit_rename_async_surfaces_and_deletes_nothing) {
  ckpt_manager *m = open_io(2, false);
  cr_assert(mt_save_json(m, 1));
  cr_assert(mt_save_json(m, 2));
  mt_wait(m);
  fault f = {CKPT_IO_RENAME, "/3" CKPT_TMP_SUFFIX, ENOSPC, 0};
  ckpt_io_set_fault(io, fail_matching, &f);
  cr_assert(mt_save_json(m, 3));        /* the blocking part succeeds */
  cr_assert_str_eq(mt_steps(m), "2,3"); /* as Orbax: 1 is set aside at once */
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_wait_until_finished(m, &err), CKPT_ENOSPC);
  cr_assert(strstr(err.message, "3" CKPT_TMP_SUFFIX) != NULL, "%s", err.message);
  cr_assert_eq(f.hits, 1);
  /* The failed step is dropped and the step set aside is back. */
  cr_assert_str_eq(mt_steps(m), "1,2");
  int64_t latest;
  cr_assert(ckpt_manager_latest_step(m, &latest));
  cr_assert_eq(latest, 2);
  cr_assert_str_eq(mt_ls(root), "1,2");
  /* Reported once. */
  cr_assert_eq(ckpt_manager_wait_until_finished(m, &err), CKPT_OK);
  ckpt_io_set_fault(io, NULL, NULL);
  cr_assert(mt_save_json(m, 3));
  mt_close(m);
  check_intact("2,3");
}

Test(manager_faults, async_failure_is_reported_by_the_next_save) {
  ckpt_manager *m = open_io(2, false);
  cr_assert(mt_save_json(m, 1));
  cr_assert(mt_save_json(m, 2));
  fault f = {CKPT_IO_RENAME, "/3" CKPT_TMP_SUFFIX, EIO, 0};
  ckpt_io_set_fault(io, fail_matching, &f);
  cr_assert(mt_save_json(m, 3));
  ckpt_args *a = mt_json_save(4, NULL);
  ckpt_error err = CKPT_ERROR_INIT;
  bool saved = true;
  cr_assert_eq(ckpt_manager_save(m, 4, a, NULL, false, &saved, &err), CKPT_EIO);
  cr_assert_not(saved); /* nothing new is started on top of a failure */
  ckpt_args_delete(a);
  ckpt_io_set_fault(io, NULL, NULL);
  cr_assert_str_eq(mt_steps(m), "1,2");
  cr_assert_str_eq(mt_ls(root), "1,2");
  cr_assert(mt_save_json(m, 4));
  mt_close(m);
  check_intact("2,4");
}

Test(manager_faults, close_and_restore_report_a_pending_failure) {
  ckpt_manager *m = open_io(0, false);
  cr_assert(mt_save_json(m, 1));
  fault f = {CKPT_IO_RENAME, "/2" CKPT_TMP_SUFFIX, EIO, 0};
  ckpt_io_set_fault(io, fail_matching, &f);
  cr_assert(mt_save_json(m, 2));
  ckpt_value v;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_restore(m, CKPT_LATEST_STEP, NULL, &v, &err), CKPT_EIO);
  cr_assert_eq(v.kind, CKPT_VALUE_NONE);
  cr_assert_eq(restore_step(m, CKPT_LATEST_STEP), 1);
  f.suffix = "/3" CKPT_TMP_SUFFIX;
  cr_assert(mt_save_json(m, 3));
  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_close(m, &err), CKPT_EIO);
  cr_assert(strstr(err.message, "3" CKPT_TMP_SUFFIX) != NULL, "%s", err.message);
  ckpt_io_set_fault(io, NULL, NULL);
  check_intact("1");
}

Test(manager_faults, failed_deletion_before_the_rename_keeps_the_step_listed) {
  ckpt_manager *m = open_io(2, true);
  cr_assert(mt_save_json(m, 1));
  cr_assert(mt_save_json(m, 2));
  /* Deleting step 1 starts by renaming "<root>/1" out of the step namespace. */
  fault f = {CKPT_IO_RENAME, "/1", EACCES, 0};
  ckpt_io_set_fault(io, fail_matching, &f);
  ckpt_args *a = mt_json_save(3, NULL);
  ckpt_error err = CKPT_ERROR_INIT;
  bool saved = false;
  cr_assert_neq(ckpt_manager_save(m, 3, a, NULL, false, &saved, &err), CKPT_OK);
  ckpt_args_delete(a);
  cr_assert(saved); /* the save itself committed */
  cr_assert(strstr(err.message, "step 3 was saved") != NULL, "%s", err.message);
  cr_assert(strstr(err.message, "/1") != NULL, "%s", err.message);
  cr_assert_eq(f.hits, 1);
  cr_assert_str_eq(mt_steps(m), "1,2,3");
  ckpt_io_set_fault(io, NULL, NULL);
  /* The next save catches up. */
  cr_assert(mt_save_json(m, 4));
  cr_assert_str_eq(mt_steps(m), "3,4");
  mt_close(m);
  check_intact("3,4");
}

Test(manager_faults, failed_deletion_after_the_rename_leaves_only_a_tmp_leftover) {
  ckpt_manager *m = open_io(1, false);
  cr_assert(mt_save_json(m, 1));
  mt_wait(m);
  /* The rename succeeds; removing the renamed tree fails. */
  fault f = {CKPT_IO_REMOVE, "metadata", EIO, 0};
  ckpt_io_set_fault(io, fail_matching, &f);
  cr_assert(mt_save_json(m, 2));
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_wait_until_finished(m, &err), CKPT_EIO);
  cr_assert(strstr(err.message, "deleting") != NULL, "%s", err.message);
  cr_assert_gt(f.hits, 0);
  ckpt_io_set_fault(io, NULL, NULL);
  cr_assert_str_eq(mt_steps(m), "2");
  cr_assert_str_eq(mt_ls(root), "1" CKPT_TMP_SUFFIX "-deleting,2");
  cr_assert_eq(ckpt_manager_reload(m, &err), CKPT_OK, "%s", err.message);
  cr_assert_str_eq(mt_steps(m), "2");
  mt_close(m);
  check_intact("2");
  /* cleanup_tmp_directories finishes the job. */
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.cleanup_tmp_directories = true;
  m = mt_open(root, &o);
  mt_close(m);
  cr_assert_str_eq(mt_ls(root), "2");
}

Test(manager_faults, listing_failures_are_reported) {
  ckpt_manager *m = open_io(0, true);
  cr_assert(mt_save_json(m, 1));
  fault f = {CKPT_IO_LIST, "", EIO, 0};
  f.suffix = root + strlen(root) - 6; /* the root directory itself */
  ckpt_io_set_fault(io, fail_matching, &f);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_reload(m, &err), CKPT_EIO);
  cr_assert(strstr(err.message, root) != NULL, "%s", err.message);
  cr_assert_str_eq(mt_steps(m), "1"); /* the old list stays */
  ckpt_manager *m2 = (ckpt_manager *)(uintptr_t)1;
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.io = io;
  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_new(root, &o, &m2, &err), CKPT_EIO);
  cr_assert_null(m2);
  ckpt_io_set_fault(io, NULL, NULL);
  mt_close(m);
}

/* Fails the nth I/O call (of any kind) counted from when it is armed. */
typedef struct nth {
  long n, seen;
  int errnum;
  bool fired;
} nth;

static int fail_nth(void *arg, ckpt_io_op op, const char *path) {
  (void)op;
  (void)path;
  nth *f = arg;
  if (++f->seen != f->n)
    return 0;
  f->fired = true;
  return f->errnum;
}

/* Saves 1 and 2 (max_to_keep 2), then step 3 with the nth I/O call failing. Whatever fails,
 * the directory afterwards lists either 1,2 (the save failed, nothing deleted) or 2,3 / 1,2,3
 * (the save committed; a deletion may have failed), and every listed step restores. */
static bool sweep_one(long n, bool sync) {
  char *dir = mt_path("%s/sweep%ld%c", root, n, sync ? 's' : 'a');
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.max_to_keep = 2;
  o.sync = sync;
  o.io = io;
  ckpt_manager *m = mt_open(dir, &o);
  cr_assert(mt_save_json(m, 1));
  cr_assert(mt_save_json(m, 2));
  mt_wait(m);
  nth f = {n, 0, n % 2 ? EIO : ENOSPC, false};
  ckpt_io_set_fault(io, fail_nth, &f);
  ckpt_args *a = mt_json_save(3, NULL);
  ckpt_error err = CKPT_ERROR_INIT;
  bool saved = false;
  ckpt_status st = ckpt_manager_save(m, 3, a, NULL, false, &saved, &err);
  if (st == CKPT_OK)
    st = ckpt_manager_wait_until_finished(m, &err);
  ckpt_args_delete(a);
  ckpt_io_set_fault(io, NULL, NULL);
  if (f.fired)
    cr_assert_neq(st, CKPT_OK, "call %ld failed silently", n);
  else
    cr_assert_eq(st, CKPT_OK, "%s", err.message);
  if (st != CKPT_OK)
    cr_assert_neq(err.message[0], '\0');
  const char *listed = mt_steps(m);
  bool committed = strcmp(listed, "1,2") != 0;
  cr_assert(!committed || strcmp(listed, "2,3") == 0 || strcmp(listed, "1,2,3") == 0 ||
                strcmp(listed, "3") == 0,
            "call %ld: steps %s", n, listed);
  /* Step 2 is never lost: it is one of the two latest whatever happened. */
  cr_assert(strstr(listed, "2") != NULL, "call %ld: steps %s", n, listed);
  mt_close(m);

  /* What a fresh reader finds matches, and restores. */
  ckpt_manager_options ro = CKPT_MANAGER_OPTIONS_INIT;
  ro.read_only = true;
  m = mt_open(dir, &ro);
  const char *fresh = mt_steps(m);
  cr_assert(strcmp(fresh, "1,2") == 0 || strcmp(fresh, "2,3") == 0 || strcmp(fresh, "1,2,3") == 0,
            "call %ld: fresh steps %s", n, fresh);
  int64_t *steps;
  size_t k;
  cr_assert_eq(ckpt_manager_all_steps(m, &steps, &k, NULL), CKPT_OK);
  for (size_t i = 0; i < k; i++)
    cr_assert_eq(restore_step(m, steps[i]), steps[i]);
  free(steps);
  mt_close(m);
  mt_rmtree(dir);
  free(dir);
  return f.fired;
}

static void sweep(bool sync) {
  long n = 1;
  while (sweep_one(n, sync)) {
    n++;
    cr_assert_lt(n, 2000, "the sweep does not end");
  }
  cr_assert_gt(n, 20, "suspiciously few I/O calls in a save: %ld", n);
}

Test(manager_faults, every_io_call_of_a_save_failing_in_turn_sync, .timeout = 120) {
  sweep(true);
}

Test(manager_faults, every_io_call_of_a_save_failing_in_turn_async, .timeout = 120) {
  sweep(false);
}

Test(manager_faults, check_for_errors_reports_a_finished_failure_without_waiting) {
  ckpt_manager *m = open_io(0, false);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_check_for_errors(m, &err), CKPT_OK); /* nothing pending */
  cr_assert(mt_save_json(m, 1));
  fault f = {CKPT_IO_RENAME, "/2" CKPT_TMP_SUFFIX, EIO, 0};
  ckpt_io_set_fault(io, fail_matching, &f);
  cr_assert(mt_save_json(m, 2));
  /* Poll (bounded) until the background save has finished and failed. */
  ckpt_status st = CKPT_OK;
  for (int i = 0; i < 2000 && st == CKPT_OK; i++) {
    st = ckpt_manager_check_for_errors(m, &err);
    if (st == CKPT_OK)
      usleep(5000);
  }
  cr_assert_eq(st, CKPT_EIO, "%s", err.message);
  cr_assert(strstr(err.message, "step 2") != NULL, "%s", err.message);
  cr_assert_str_eq(mt_steps(m), "1");
  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_check_for_errors(m, &err), CKPT_OK); /* once */
  ckpt_io_set_fault(io, NULL, NULL);
  mt_close(m);
  check_intact("1");
}
