/* test_commit_window.c — every interrupted state of a save and of retention, in both atomicity
 * modes, is either invisible to readers or cleaned (storage/step_dirs.h, docs/reliability.md).
 *
 * A crash is emulated at I/O operation k: the fault hook lets k operations through and fails
 * every later one, so nothing after the crash point reaches the disk — not even the save's own
 * cleanup — and the directory is left exactly as a SIGKILL at that point would leave it. For
 * every k of a manager save of step 2 that also deletes step 1 (max_to_keep 1), a fresh
 * manager and the tool's scan (the same ckpt_step_dirs_list, under the rule the tool applies)
 * must list the same steps, every listed step must restore its exact value, a step is lost
 * only once a newer one is listed, and cleanup_tmp_directories leaves nothing but finalized
 * steps. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt.h"
#include "storage/step_dirs.h"
#include "test_manager_util.h"

typedef struct crash_hook {
  atomic_long left; /* operations still allowed; below zero: crashed */
} crash_hook;

static int crash_fn(void *arg, ckpt_io_op op, const char *path) {
  (void)op;
  (void)path;
  crash_hook *h = arg;
  return atomic_fetch_sub(&h->left, 1) > 0 ? 0 : EIO;
}

static ckpt_manager_options options(ckpt_atomicity at, ckpt_io *io) {
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.atomicity = at;
  o.sync = true;
  o.max_to_keep = 1;
  o.io = io;
  return o;
}

static int64_t json_step_of(ckpt_manager *m, int64_t step) {
  ckpt_value v;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_restore(m, step, NULL, &v, &err), CKPT_OK,
               "listed step %lld does not restore: %s", (long long)step, err.message);
  const cJSON *s = cJSON_GetObjectItemCaseSensitive(v.u.json, "step");
  cr_assert(cJSON_IsNumber(s));
  int64_t r = (int64_t)s->valuedouble;
  ckpt_value_free(&v);
  return r;
}

/* The finalized steps the tool sees (every step name, the rule without knowledge of the mode),
 * as "1,2". */
static const char *tool_steps(const char *root) {
  static char buf[256];
  ckpt_step_filter f = {.any_name = true, .rule = CKPT_FINALIZED_ANY, .finalized_only = true};
  ckpt_step_dir *d;
  size_t n;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_step_dirs_list(NULL, root, &f, &d, &n, &err), CKPT_OK, "%s", err.message);
  buf[0] = '\0';
  for (size_t i = 0; i < n; i++)
    snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%lld", i ? "," : "",
             (long long)d[i].step);
  ckpt_step_dirs_free(d, n);
  return buf;
}

/* One crash at operation k of saving step 2 over step 1; returns false once k is past the end
 * (the save completed without reaching the crash point). */
static bool crash_at(ckpt_atomicity at, long k) {
  char *root = mt_tmpdir();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_io *io;
  cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
  ckpt_manager_options o = options(at, io);
  ckpt_manager *m = mt_open(root, &o);
  cr_assert(mt_save_json(m, 1));

  crash_hook h;
  atomic_init(&h.left, k);
  ckpt_io_set_fault(io, crash_fn, &h);
  ckpt_args *a = mt_json_save(2, "two");
  bool saved = false;
  ckpt_status st = ckpt_manager_save(m, 2, a, NULL, false, &saved, &err);
  ckpt_args_delete(a);
  ckpt_manager_close(m, NULL);
  bool crashed = atomic_load(&h.left) < 0;
  ckpt_io_set_fault(io, NULL, NULL);
  cr_assert(crashed || st == CKPT_OK, "k=%ld: failed without a crash: %s", k, err.message);

  /* What a reader sees after the crash. */
  ckpt_manager_options ro = options(at, io);
  ro.read_only = true;
  ckpt_manager *r = mt_open(root, &ro);
  char listed[256];
  snprintf(listed, sizeof listed, "%s", mt_steps(r));
  cr_assert_str_eq(tool_steps(root), listed, "k=%ld (%s mode): the tool and the manager disagree",
                   k, at == CKPT_ATOMICITY_RENAME ? "rename" : "commit-file");
  cr_assert(strlen(listed) > 0, "k=%ld: no step left at all (%s)", k, mt_ls(root));
  if (!crashed)
    cr_assert_str_eq(listed, "2", "a completed save lists step 2 only");
  if (strstr(listed, "1") != NULL)
    cr_assert_eq(json_step_of(r, 1), 1);
  if (strstr(listed, "2") != NULL)
    cr_assert_eq(json_step_of(r, 2), 2);
  mt_close(r);

  /* The manager's cleanup leaves only finalized steps. */
  ckpt_manager_options co = options(at, io);
  co.cleanup_tmp_directories = true;
  ckpt_manager *c = mt_open(root, &co);
  cr_assert_str_eq(mt_steps(c), listed, "k=%ld: cleanup changed the listing", k);
  cr_assert_str_eq(mt_ls(root), listed, "k=%ld: cleanup left more than the finalized steps", k);
  mt_close(c);

  ckpt_io_free(io);
  mt_rmtree(root);
  free(root);
  return crashed;
}

static void sweep(ckpt_atomicity at) {
  long k = 0;
  while (crash_at(at, k))
    k++;
  cr_assert_gt(k, 20, "only %ld operations in a save and a deletion?", k);
}

Test(commit_window, every_crash_point_of_a_commit_file_save_and_its_retention) {
  sweep(CKPT_ATOMICITY_COMMIT_FILE);
}

Test(commit_window, every_crash_point_of_a_rename_save_and_its_retention) {
  sweep(CKPT_ATOMICITY_RENAME);
}

/* The state the issue found, built by hand: a commit-file step holding its commit timestamp
 * but neither its commit file nor the pending marker cannot come from this ckpt; with the
 * marker (what a kill between the timestamp and the commit leaves now) nobody lists it. */
Test(commit_window, a_commit_timestamp_without_the_commit_is_not_finalized) {
  char *root = mt_tmpdir();
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.atomicity = CKPT_ATOMICITY_COMMIT_FILE;
  o.sync = true;
  ckpt_manager *m = mt_open(root, &o);
  cr_assert(mt_save_json(m, 1));
  cr_assert(mt_save_json(m, 2));
  mt_close(m);
  char *cf = mt_path("%s/2/%s", root, CKPT_COMMIT_FILE);
  char *pending = mt_path("%s/2/%s", root, CKPT_COMMIT_PENDING_FILE);
  cr_assert_eq(rename(cf, pending), 0);
  cr_assert_str_eq(tool_steps(root), "1");
  m = mt_open(root, &o);
  cr_assert_str_eq(mt_steps(m), "1");
  int64_t latest = -1;
  cr_assert(ckpt_manager_latest_step(m, &latest));
  cr_assert_eq(latest, 1);
  mt_close(m);
  char *step2 = mt_path("%s/2", root);
  cr_assert_not(ckpt_is_finalized(NULL, step2, CKPT_ATOMICITY_RENAME),
                "the pending marker outweighs the rename rule too");
  free(step2);
  free(cf);
  free(pending);
  mt_rmtree(root);
  free(root);
}
