/* test_cli_windows.c — the states an interrupted save or deletion leaves in a directory of
 * steps, seen by `ckpt ls`, `ckpt cat` and `ckpt gc` exactly as the CheckpointManager sees them
 * (one rule, storage/step_dirs.h): a commit-file save killed between its commit timestamp and
 * its commit (the pending marker, no commit file) and a step killed half-way through its
 * deletion are never listed, never read as the latest, and `gc` removes both. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt.h"
#include "storage/step_dirs.h"
#include "test_cli_support.h"

static void sh(const char *fmt, const char *a, const char *b) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, fmt, a, b);
  cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* run/1 and run/2 committed; run/3 a copy of step 1 whose save was killed after its commit
 * timestamp, before its commit; run/4.orbax-checkpoint-tmp-deleting half deleted. */
static char *make_run(char *dir) {
  char *m = tc_join(dir, "run");
  tc_save_step(m, NULL, 0, 1, 0.5);
  tc_save_step(m, NULL, 0, 2, 0.25);
  char *s1 = tc_join(m, "1"), *s3 = tc_join(m, "3");
  sh("cp -a '%s' '%s'", s1, s3);
  char *cf = tc_join(s3, CKPT_COMMIT_FILE), *pending = tc_join(s3, CKPT_COMMIT_PENDING_FILE);
  cr_assert_eq(rename(cf, pending), 0);
  char *doomed = tc_join(m, "4" CKPT_DELETING_SUFFIX);
  sh("cp -a '%s' '%s'", s1, doomed);
  sh("rm -f '%s/%s'", doomed, CKPT_CHECKPOINT_METADATA_FILE);
  free(s1);
  free(s3);
  free(cf);
  free(pending);
  free(doomed);
  return m;
}

Test(cli_windows, ls_cat_gc_and_the_manager_agree) {
  char *dir = tc_mkdtemp();
  char *m = make_run(dir);
  tc_run r;
  TC_TOOL(&r, "ls", "--json", m);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cJSON *doc = cJSON_Parse(r.out);
  cr_assert_not_null(doc, "%s", r.out);
  char fin[64] = "";
  const cJSON *s;
  cJSON_ArrayForEach(s, cJSON_GetObjectItem(doc, "steps")) {
    if (cJSON_IsTrue(cJSON_GetObjectItem(s, "finalized")))
      snprintf(fin + strlen(fin), sizeof fin - strlen(fin), "%s%d", fin[0] ? "," : "",
               cJSON_GetObjectItem(s, "step")->valueint);
  }
  cJSON_Delete(doc);
  tc_run_free(&r);
  cr_assert_str_eq(fin, "1,2", "ls lists an interrupted step as finalized");

  /* The manager lists the same steps, whichever mode it writes in. */
  for (int mode = 0; mode < 2; mode++) {
    ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
    o.read_only = true;
    o.atomicity = mode ? CKPT_ATOMICITY_COMMIT_FILE : CKPT_ATOMICITY_RENAME;
    ckpt_manager *mg;
    ckpt_error err = CKPT_ERROR_INIT;
    cr_assert_eq(ckpt_manager_new(m, &o, &mg, &err), CKPT_OK, "%s", err.message);
    int64_t *steps;
    size_t n;
    cr_assert_eq(ckpt_manager_all_steps(mg, &steps, &n, &err), CKPT_OK, "%s", err.message);
    cr_assert(n == 2 && steps[0] == 1 && steps[1] == 2, "mode %d: %zu steps", mode, n);
    free(steps);
    ckpt_manager_close(mg, NULL);
  }

  /* cat reads the latest finalized step: 2, not the interrupted 3 (a copy of step 1). */
  TC_TOOL(&r, "cat", m, "default/step");
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert(strstr(r.out, "2") && !strstr(r.out, "1"), "cat read the wrong step: %s", r.out);
  tc_run_free(&r);

  /* gc removes both leftovers and keeps the committed steps. */
  TC_TOOL(&r, "gc", m);
  cr_assert_eq(r.status, 0, "%s", r.err);
  tc_run_free(&r);
  char *s3 = tc_join(m, "3"), *s4 = tc_join(m, "4" CKPT_DELETING_SUFFIX);
  char *s1 = tc_join(m, "1"), *s2 = tc_join(m, "2");
  cr_assert_not(tc_exists(s3), "gc kept the interrupted commit-file save");
  cr_assert_not(tc_exists(s4), "gc kept the half-deleted step");
  cr_assert(tc_exists(s1) && tc_exists(s2));
  free(s1);
  free(s2);
  free(s3);
  free(s4);
  free(m);
  tc_rmdir(dir);
}
