/* test_train_mlp.c — examples/train_mlp survives SIGKILL: killed at several points (right after
 * the first commit, mid-run, with an asynchronous save provably in flight, before anything
 * committed, twice in a row) and resumed with --resume, the run logs exactly the losses of an
 * uninterrupted run (every float32 bit: 9 significant digits) and ends with bit-identical
 * weights, checked through the logged state fingerprint and by restoring both final steps
 * with the library (PyTreeRestore: the record is an ordinary PyTree on disk) and comparing
 * the trees. Also: the retention rule (K best by val_loss plus the latest), a directory that
 * holds a run is not overwritten without --resume, and a damaged checkpoint stops the resume
 * with an error naming the array.
 *
 * The real binary runs as a child process (CKPT_BUILD_DIR/bin/examples/train_mlp, built by
 * `make all`); every wait is bounded; no assertion depends on timing: the in-flight kill uses
 * the program's --stall-save-at, which holds the save's background I/O until the kill. */
#include <criterion/criterion.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ckpt/ckpt.h>

#include "test_train_mlp_util.h"

TestSuite(train_mlp, .fini = tm_cleanup, .timeout = 600);

/* One configuration for the kill tests: 5 checkpoints (steps 1, 20, 40, 60, 80). */
#define STEPS 80
#define SAVE_EVERY 20
#define KEEP 2

static tm_args base_args(const char *dir, const char *log) {
  return (tm_args){dir, log, STEPS, SAVE_EVERY, KEEP, 0, -1, false};
}

/* An uninterrupted run in <tmp>/ref with its log in <tmp>/ref.log. */
typedef struct reference {
  char *dir, *log;
} reference;

static reference run_reference(const char *tmp) {
  reference r = {tm_fmt("%s/ref", tmp), tm_fmt("%s/ref.log", tmp)};
  tm_args a = base_args(r.dir, r.log);
  tm_run_ok(&a, "reference");
  return r;
}

/* The step a run resumed from, read from its stderr: 0 when it found no checkpoint. */
static int64_t resumed_from(const char *err_path) {
  char *err = tm_slurp(err_path);
  cr_assert(err != NULL);
  const char *at = strstr(err, "resumed from step ");
  int64_t step = -1;
  if (at != NULL)
    step = strtoll(at + strlen("resumed from step "), NULL, 10);
  else if (strstr(err, "no checkpoint in ") != NULL)
    step = 0;
  cr_assert(step >= 0, "the run neither resumed nor started fresh; stderr:\n%s", err);
  free(err);
  return step;
}

/* A run's log (without its '#' comments) must be exactly the reference's lines after step
 * `from`: the losses, the validation lines and the final fingerprint. A killed run's log
 * (complete == false) may stop early; a finished run's must not. */
static void expect_log_matches_reference(const char *ref_log, const char *log, int64_t from,
                                         bool complete) {
  size_t nr, nl;
  char **ref = tm_log_lines(ref_log, &nr);
  char **got = tm_log_lines(log, &nl);
  size_t k = 0;
  for (size_t i = 0; i < nr && (complete || k < nl); i++) {
    int64_t s = tm_line_step(ref[i]);
    if (s >= 0 && s <= from)
      continue;
    cr_assert(k < nl, "the log %s ends after %zu lines; the reference goes on with '%s'", log, nl,
              ref[i]);
    cr_assert_str_eq(got[k], ref[i],
                     "%s: line %zu after step %" PRId64
                     " differs:\n  run:       %s\n"
                     "  reference: %s",
                     log, k + 1, from, got[k], ref[i]);
    k++;
  }
  cr_assert_eq(k, nl, "the log %s has %zu extra lines, first '%s'", log, nl - k,
               k < nl ? got[k] : "");
  cr_assert(!complete || k > 0, "nothing to compare in %s", log);
  tm_lines_free(ref, nr);
  tm_lines_free(got, nl);
}

/* Restores `step` of a train_mlp directory as a plain PyTree (PyTreeRestore, read-only
 * manager): the record handler's layout is an ordinary PyTree item, so no schema is needed.
 * (StandardRestore refuses the string leaf rng.bit_generator, as Orbax's does.) */
static ckpt_value restore_tree(const char *dir, int64_t step) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.read_only = true;
  ckpt_manager *m = NULL;
  cr_assert_eq(ckpt_manager_new(dir, &o, &m, &err), CKPT_OK, "%s", err.message);
  ckpt_PyTreeRestore *args = ckpt_PyTreeRestore_new();
  cr_assert(args != NULL);
  ckpt_value v = {0};
  ckpt_status st = ckpt_manager_restore(m, step, &args->base, &v, &err);
  ckpt_args_delete(&args->base);
  cr_assert_eq(st, CKPT_OK, "restoring step %" PRId64 " of %s: %s", step, dir, err.message);
  cr_assert_eq(ckpt_manager_close(m, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(v.kind, CKPT_VALUE_TREE, "got a %s", ckpt_value_kind_name(v.kind));
  return v;
}

/* The final checkpoints of both runs hold bit-identical trees (every array's bytes: weights,
 * Adam moments, the permutation; the random state; the loader; the hyper-parameters). */
static void expect_same_final_state(const char *ref_dir, const char *dir) {
  ckpt_value a = restore_tree(ref_dir, STEPS), b = restore_tree(dir, STEPS);
  ckpt_scalar step;
  cr_assert(ckpt_tree_scalar(ckpt_tree_get(b.u.tree, "step"), &step));
  cr_assert_eq(step.v.i, STEPS);
  const ckpt_array *w1 = ckpt_tree_array(ckpt_tree_get(b.u.tree, "w1"));
  cr_assert(w1 != NULL && w1->dtype == CKPT_DTYPE_FLOAT32 && w1->ndim == 2);
  cr_assert(ckpt_tree_num_leaves(a.u.tree) > 30);
  cr_assert(ckpt_tree_equal(a.u.tree, b.u.tree), "the final states differ");
  ckpt_value_free(&a);
  ckpt_value_free(&b);
}

/* Resumes dir to the end and checks everything against the reference; returns the step the
 * run resumed from. */
static int64_t resume_and_compare(const reference *ref, const char *dir, const char *tag) {
  char *log = tm_fmt("%s.%s.log", dir, tag);
  tm_args a = base_args(dir, log);
  a.resume = true;
  tm_child c = tm_start(&a, tag);
  int rc = tm_wait(&c);
  char *err = tm_slurp(c.err);
  cr_assert_eq(rc, 0, "the resumed run exited with %d:\n%s", rc, err != NULL ? err : "");
  free(err);
  int64_t from = resumed_from(c.err);
  expect_log_matches_reference(ref->log, log, from, true);
  expect_same_final_state(ref->dir, dir);
  cr_assert(!tm_has_tmp_entries(dir), "an interrupted save's tmp directory survived the resume");
  tm_child_free(&c);
  free(log);
  return from;
}

static void free_reference(reference *r) {
  free(r->dir);
  free(r->log);
}

/* A child that died before its expected kill point fails the test with its stderr. */
static void expect_alive(bool reached, tm_child *c, const char *what) {
  if (reached)
    return;
  char *err = tm_slurp(c->err);
  cr_assert_fail("train_mlp exited before %s; its stderr:\n%s", what, err != NULL ? err : "");
}

Test(train_mlp, resumes_bit_exact_after_kill_right_after_first_commit) {
  char *tmp = tm_mkdtemp();
  reference ref = run_reference(tmp);
  char *dir = tm_fmt("%s/run", tmp), *log = tm_fmt("%s/run.log", tmp);
  tm_args a = base_args(dir, log);
  a.sleep_ms = 5;
  tm_child c = tm_start(&a, "victim");
  expect_alive(tm_wait_for_step(&c, dir, 0), &c, "its first commit");
  tm_kill(&c);
  expect_log_matches_reference(ref.log, log, 0, false);
  int64_t from = resume_and_compare(&ref, dir, "resume");
  cr_assert(from >= 1, "a step had committed, but the run resumed from %" PRId64, from);
  tm_child_free(&c);
  free(dir);
  free(log);
  free_reference(&ref);
  free(tmp);
}

Test(train_mlp, resumes_bit_exact_after_kill_mid_run) {
  char *tmp = tm_mkdtemp();
  reference ref = run_reference(tmp);
  char *dir = tm_fmt("%s/run", tmp), *log = tm_fmt("%s/run.log", tmp);
  tm_args a = base_args(dir, log);
  a.sleep_ms = 5;
  tm_child c = tm_start(&a, "victim");
  /* Step 50 runs after the save of step 40 began, which first waited for the save of 20 to
   * commit: at least step 20 is on disk, whenever exactly the kill lands after that. */
  expect_alive(tm_wait_for_text(&c, log, "step 50 loss "), &c, "step 50");
  tm_kill(&c);
  expect_log_matches_reference(ref.log, log, 0, false);
  int64_t from = resume_and_compare(&ref, dir, "resume");
  cr_assert(from >= 20, "step 20 had committed, but the run resumed from %" PRId64, from);
  tm_child_free(&c);
  free(dir);
  free(log);
  free_reference(&ref);
  free(tmp);
}

Test(train_mlp, resumes_bit_exact_after_kill_with_async_save_in_flight) {
  char *tmp = tm_mkdtemp();
  reference ref = run_reference(tmp);
  char *dir = tm_fmt("%s/run", tmp), *log = tm_fmt("%s/run.log", tmp);
  tm_args a = base_args(dir, log);
  a.stall_save_at = 40;
  tm_child c = tm_start(&a, "victim");
  /* The line is written by the I/O hook of the save of step 40 while it holds that save's
   * background I/O: the save has started and cannot commit before the kill. */
  expect_alive(tm_wait_for_text(&c, c.err, "stalled: the save of step 40 is in flight"), &c,
               "the stall");
  tm_kill(&c);
  size_t n;
  int64_t *steps = tm_steps(dir, &n);
  cr_assert(n >= 1 && steps[n - 1] == 20,
            "after the kill the latest step should be 20 (40 was in flight); it is %" PRId64,
            n > 0 ? steps[n - 1] : -1);
  free(steps);
  expect_log_matches_reference(ref.log, log, 0, false);
  cr_assert_eq(resume_and_compare(&ref, dir, "resume"), 20);
  tm_child_free(&c);
  free(dir);
  free(log);
  free_reference(&ref);
  free(tmp);
}

Test(train_mlp, starts_over_when_killed_before_anything_committed) {
  char *tmp = tm_mkdtemp();
  reference ref = run_reference(tmp);
  char *dir = tm_fmt("%s/run", tmp), *log = tm_fmt("%s/run.log", tmp);
  tm_args a = base_args(dir, log);
  a.stall_save_at = 1; /* the very first save never commits */
  tm_child c = tm_start(&a, "victim");
  expect_alive(tm_wait_for_text(&c, c.err, "stalled: the save of step 1 is in flight"), &c,
               "the stall");
  tm_kill(&c);
  size_t n;
  free(tm_steps(dir, &n));
  cr_assert_eq(n, 0, "nothing committed, yet %zu steps are listed", n);
  cr_assert_eq(resume_and_compare(&ref, dir, "resume"), 0);
  tm_child_free(&c);
  free(dir);
  free(log);
  free_reference(&ref);
  free(tmp);
}

Test(train_mlp, resumes_bit_exact_after_two_kills) {
  char *tmp = tm_mkdtemp();
  reference ref = run_reference(tmp);
  char *dir = tm_fmt("%s/run", tmp);
  char *log1 = tm_fmt("%s/run.1.log", tmp), *log2 = tm_fmt("%s/run.2.log", tmp);
  tm_args a = base_args(dir, log1);
  a.stall_save_at = 40;
  tm_child c1 = tm_start(&a, "victim1");
  expect_alive(tm_wait_for_text(&c1, c1.err, "stalled: the save of step 40"), &c1, "stall 1");
  tm_kill(&c1);
  expect_log_matches_reference(ref.log, log1, 0, false);
  /* Second life: resumes from 20, dies with the save of 60 in flight. */
  a.log = log2;
  a.resume = true;
  a.stall_save_at = 60;
  tm_child c2 = tm_start(&a, "victim2");
  expect_alive(tm_wait_for_text(&c2, c2.err, "stalled: the save of step 60"), &c2, "stall 2");
  tm_kill(&c2);
  cr_assert_eq(resumed_from(c2.err), 20);
  expect_log_matches_reference(ref.log, log2, 20, false);
  /* Third life: from 40 to the end. */
  cr_assert_eq(resume_and_compare(&ref, dir, "resume"), 40);
  tm_child_free(&c1);
  tm_child_free(&c2);
  free(dir);
  free(log1);
  free(log2);
  free_reference(&ref);
  free(tmp);
}

Test(train_mlp, keeps_the_best_k_by_val_loss_and_the_latest) {
  char *tmp = tm_mkdtemp();
  char *dir = tm_fmt("%s/run", tmp), *log = tm_fmt("%s/run.log", tmp);
  /* Saves at 1, 10, ..., 90; with this seed the validation loss of step 90 is worse than that
   * of step 80, so BestN(1) alone would delete the latest step. */
  tm_args a = {dir, log, 90, 10, 1, 0, -1, false};
  tm_run_ok(&a, "run");
  size_t nl;
  char **lines = tm_log_lines(log, &nl);
  int64_t best = -1, latest = -1;
  double best_loss = 0;
  for (size_t i = 0; i < nl; i++) {
    long long s;
    double v;
    if (sscanf(lines[i], "step %lld val_loss %lf", &s, &v) != 2)
      continue;
    if (best < 0 || v < best_loss || (v == best_loss && s > best)) {
      best = s;
      best_loss = v;
    }
    latest = s;
  }
  tm_lines_free(lines, nl);
  cr_assert_eq(latest, 90);
  cr_assert_neq(best, latest,
                "this test needs a run whose last step is not its best (change its steps)");
  size_t n;
  int64_t *steps = tm_steps(dir, &n);
  cr_assert_eq(n, 2, "expected steps {%" PRId64 ", %" PRId64 "}, found %zu steps", best, latest, n);
  cr_assert_eq(steps[0], best);
  cr_assert_eq(steps[1], latest);
  free(steps);
  /* A resume continues from the latest step, not from the best. */
  tm_args r = a;
  r.steps = 100;
  r.resume = true;
  tm_child c = tm_start(&r, "resume");
  cr_assert_eq(tm_wait(&c), 0);
  cr_assert_eq(resumed_from(c.err), 90);
  tm_child_free(&c);
  free(dir);
  free(log);
  free(tmp);
}

Test(train_mlp, refuses_a_directory_with_checkpoints_without_resume) {
  char *tmp = tm_mkdtemp();
  char *dir = tm_fmt("%s/run", tmp);
  tm_args a = {dir, NULL, 20, 10, 2, 0, -1, false};
  tm_run_ok(&a, "first");
  size_t n1, n2;
  int64_t *before = tm_steps(dir, &n1);
  tm_child c = tm_start(&a, "second");
  cr_assert_eq(tm_wait(&c), 1);
  char *err = tm_slurp(c.err);
  cr_assert(err != NULL && strstr(err, "already holds checkpoints (latest step 20)") != NULL &&
                strstr(err, "--resume") != NULL,
            "stderr: %s", err != NULL ? err : "");
  int64_t *after = tm_steps(dir, &n2);
  cr_assert_eq(n1, n2);
  cr_assert_arr_eq(before, after, n1 * sizeof *before);
  free(before);
  free(after);
  free(err);
  tm_child_free(&c);
  free(dir);
  free(tmp);
}

Test(train_mlp, a_damaged_latest_step_stops_the_resume_with_its_name) {
  char *tmp = tm_mkdtemp();
  char *dir = tm_fmt("%s/run", tmp);
  tm_args a = {dir, NULL, 20, 10, 2, 0, -1, false};
  tm_run_ok(&a, "first");
  /* Truncate the chunk of w1 in the latest step. */
  char *chunk = tm_fmt("%s/20/default/w1/0.0", dir);
  cr_assert_eq(truncate(chunk, 100), 0, "truncate %s", chunk);
  a.resume = true;
  a.steps = 30;
  tm_child c = tm_start(&a, "resume");
  cr_assert_eq(tm_wait(&c), 1, "a damaged checkpoint must fail the resume, not crash or restart");
  char *err = tm_slurp(c.err);
  cr_assert(err != NULL && strstr(err, "cannot resume") != NULL && strstr(err, "w1") != NULL,
            "the error should name the damaged array; stderr: %s", err != NULL ? err : "");
  free(err);
  tm_child_free(&c);
  free(chunk);
  free(dir);
  free(tmp);
}
