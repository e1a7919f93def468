/* test_commit.c — the commit protocol under I/O faults (SQLite-style): a save is first run
 * cleanly while counting its I/O operations; then, for EVERY operation index k, the k-th
 * operation is made to fail (ENOSPC, then EIO). Each failed save must return that error with a
 * message naming the path, leave no checkpoint at the destination (and no temporary directory),
 * leave an earlier checkpoint at another path untouched, and not prevent the next save. Leaks
 * are caught by running the suite under ASan (`make check`). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ckpt/ckpt.h"
#include "core_fixture.h"

static char *root;
static ckpt_io *io;

static void setup(void) {
  root = cf_tmpdir();
  cf_register();
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
}

static void teardown(void) {
  ckpt_io_free(io);
  cf_rmtree(root);
  free(root);
}

TestSuite(commit, .init = setup, .fini = teardown);

static ckpt_checkpointer *new_ckptr(ckpt_atomicity at, bool async) {
  ckpt_checkpointer_options o = CKPT_CHECKPOINTER_OPTIONS_INIT;
  o.atomicity = at;
  o.async = async;
  o.io = io;
  ckpt_checkpointer *c = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_new(NULL, &o, &c, &err), CKPT_OK, "%s", err.message);
  return c;
}

/* {blob: BlobSave(text, deferred), other: OtherSave(text)} */
static ckpt_Composite *args_for(const char *text) {
  ckpt_Composite *c = ckpt_composite_new();
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_composite_add(c, "blob", cf_blob_save(text, true), &err), CKPT_OK);
  cr_assert_eq(ckpt_composite_add(c, "other", cf_other_save(text), &err), CKPT_OK);
  return c;
}

static ckpt_status save(ckpt_checkpointer *c, const char *path, const char *text, bool force,
                        ckpt_error *err) {
  ckpt_Composite *a = args_for(text);
  cJSON *custom = cJSON_Parse("{\"note\": \"sweep\"}");
  ckpt_status st = ckpt_checkpointer_save(c, path, &a->base, force, custom, err);
  if (st == CKPT_OK)
    st = ckpt_checkpointer_wait_until_finished(c, err);
  cJSON_Delete(custom);
  ckpt_args_delete(&a->base);
  return st;
}

/* Restores both items (without args) and checks they hold text. */
static void expect_checkpoint(ckpt_checkpointer *c, const char *path, const char *text) {
  ckpt_value v;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_restore(c, path, NULL, &v, &err), CKPT_OK, "%s: %s", path,
               err.message);
  cr_assert_eq(v.u.composite.count, 2);
  for (size_t i = 0; i < 2; i++) {
    const ckpt_value *item = v.u.composite.items[i].value;
    cr_assert_str_eq(cJSON_GetStringValue(item->u.json), text, "%s item %s", path,
                     v.u.composite.items[i].name);
  }
  ckpt_value_free(&v);
}

static char *tmp_of(const char *path) {
  char *t = malloc(strlen(path) + sizeof CKPT_TMP_SUFFIX);
  sprintf(t, "%s%s", path, CKPT_TMP_SUFFIX);
  return t;
}

static ckpt_status status_of(int e) {
  return e == ENOSPC ? CKPT_ENOSPC : CKPT_EIO;
}

/* The number of I/O operations of one clean save to a fresh path. */
static unsigned long count_ops(ckpt_checkpointer *c, const char *path) {
  cf_fault f = {.nth = 0, .fired_op = -1};
  ckpt_io_set_fault(io, cf_fault_hook, &f);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_status st = save(c, path, "probe", false, &err);
  ckpt_io_set_fault(io, NULL, NULL);
  cr_assert_eq(st, CKPT_OK, "%s", err.message);
  cf_rmtree(path);
  cr_assert_gt(f.seen, 20, "a save does a fair number of operations");
  return f.seen;
}

/* The sweep. force_over_old: the destination already holds a checkpoint ("old") that the save
 * replaces with force. */
static void sweep(ckpt_atomicity at, bool async, bool force_over_old, const int *errnos,
                  int n_errnos) {
  ckpt_checkpointer *c = new_ckptr(at, async);
  char *earlier = cf_join(root, "earlier");
  char *path = cf_join(root, "target");
  char *tmp = tmp_of(path);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(save(c, earlier, "earlier", false, &err), CKPT_OK, "%s", err.message);
  if (force_over_old)
    cr_assert_eq(save(c, path, "old", false, &err), CKPT_OK, "%s", err.message);
  char *probe = cf_join(root, "probe");
  unsigned long n = count_ops(c, probe);
  free(probe);
  if (force_over_old)
    cr_assert_eq(save(c, path, "old", true, &err), CKPT_OK, "%s", err.message);

  for (int e = 0; e < n_errnos; e++) {
    for (unsigned long k = 1; k <= n; k++) {
      cf_fault f = {.nth = k, .err = errnos[e], .fired_op = -1};
      ckpt_io_set_fault(io, cf_fault_hook, &f);
      ckpt_error_clear(&err);
      ckpt_status st = save(c, path, "new", force_over_old, &err);
      ckpt_io_set_fault(io, NULL, NULL);
      cr_assert_neq(f.fired_op, -1, "k=%lu: the save did fewer operations than counted", k);
      bool committed_anyway = false;
      if (force_over_old && st != CKPT_OK)
        committed_anyway = strstr(err.message, "checkpoint committed at") != NULL;
      cr_assert_eq(st, status_of(errnos[e]),
                   "k=%lu (%s of '%s' failing with %s): save returned %s: %s", k,
                   ckpt_io_op_name((ckpt_io_op)f.fired_op), f.fired_path, strerror(errnos[e]),
                   ckpt_status_name(st), err.message);
      cr_assert(strstr(err.message, f.fired_path) != NULL,
                "k=%lu: the message does not name '%s': %s", k, f.fired_path, err.message);
      if (force_over_old) {
        /* The old checkpoint is intact unless the new one was committed and only the removal
         * of the old one failed (which the error says). */
        expect_checkpoint(c, path, committed_anyway ? "new" : "old");
      } else {
        cr_assert(!cf_exists(path), "k=%lu (%s of '%s'): something is at the destination", k,
                  ckpt_io_op_name((ckpt_io_op)f.fired_op), f.fired_path);
        cr_assert(!ckpt_is_finalized(io, path, at));
      }
      if (at == CKPT_ATOMICITY_RENAME && !committed_anyway)
        cr_assert(!cf_exists(tmp), "k=%lu: the tmp directory was not cleaned up", k);
      expect_checkpoint(c, earlier, "earlier");
      /* The next save without faults succeeds. */
      ckpt_error_clear(&err);
      cr_assert_eq(save(c, path, "new", force_over_old, &err), CKPT_OK, "k=%lu: %s", k,
                   err.message);
      expect_checkpoint(c, path, "new");
      if (force_over_old) {
        cr_assert_eq(save(c, path, "old", true, &err), CKPT_OK, "%s", err.message);
      } else {
        cf_rmtree(path);
      }
    }
  }
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
  free(earlier);
  free(path);
  free(tmp);
}

static const int both[] = {ENOSPC, EIO};
static const int enospc[] = {ENOSPC};

Test(commit, every_failing_operation_fails_a_rename_mode_save_cleanly, .timeout = 300) {
  sweep(CKPT_ATOMICITY_RENAME, false, false, both, 2);
}

Test(commit, every_failing_operation_fails_a_commit_file_mode_save_cleanly, .timeout = 300) {
  sweep(CKPT_ATOMICITY_COMMIT_FILE, false, false, both, 2);
}

Test(commit, every_failing_operation_keeps_the_checkpoint_being_replaced, .timeout = 300) {
  sweep(CKPT_ATOMICITY_RENAME, false, true, both, 2);
}

Test(commit, every_failing_operation_of_an_async_save_is_reported_later, .timeout = 300) {
  sweep(CKPT_ATOMICITY_RENAME, true, false, enospc, 1);
}

static int always_short(void *arg, ckpt_io_op op, const char *path) {
  (void)arg;
  (void)path;
  return op == CKPT_IO_WRITE ? -1 : 0;
}

Test(commit, short_writes_everywhere_still_commit_intact_data) {
  ckpt_checkpointer *c = new_ckptr(CKPT_ATOMICITY_RENAME, false);
  char *path = cf_join(root, "short");
  const char *text = "a fairly long text that takes several short writes";
  ckpt_io_set_fault(io, always_short, NULL);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(save(c, path, text, false, &err), CKPT_OK, "%s", err.message);
  ckpt_io_set_fault(io, NULL, NULL);
  expect_checkpoint(c, path, text);
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK);
  free(path);
}

/* Fails the first REMOVE operation with EIO. */
static int fail_first_remove(void *arg, ckpt_io_op op, const char *path) {
  int *removes = arg;
  (void)path;
  if (op == CKPT_IO_REMOVE && (*removes)++ == 0)
    return EIO;
  return 0;
}

Test(commit, a_failure_while_removing_a_stale_tmp_directory_is_reported) {
  ckpt_checkpointer *c = new_ckptr(CKPT_ATOMICITY_RENAME, false);
  char *path = cf_join(root, "stale");
  char *tmp = tmp_of(path);
  char *cmd = malloc(9000);
  snprintf(cmd, 9000, "mkdir -p '%s/sub' && echo x > '%s/sub/file'", tmp, tmp);
  free(cf_run(cmd));
  free(cmd);
  int removes = 0;
  ckpt_io_set_fault(io, fail_first_remove, &removes);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(save(c, path, "x", false, &err), CKPT_EIO);
  ckpt_io_set_fault(io, NULL, NULL);
  cr_assert(strstr(err.message, "sub/file") != NULL, "%s", err.message);
  cr_assert(!cf_exists(path));
  ckpt_error_clear(&err);
  cr_assert_eq(save(c, path, "x", false, &err), CKPT_OK, "%s", err.message);
  cr_assert(!cf_exists(tmp));
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK);
  free(tmp);
  free(path);
}

/* A checkpoint name carrying the tmp marker anywhere is refused at save: every reader treats
 * such a name as a save in flight (util/path.h, ckpt_path_is_tmp), so a save committed under it
 * could never be restored. */
Test(commit, names_with_the_tmp_marker_anywhere_are_refused) {
  const char *names[] = {"a" CKPT_TMP_SUFFIX, "a" CKPT_TMP_SUFFIX "-x", "a" CKPT_TMP_SUFFIX "A",
                         "pre" CKPT_TMP_SUFFIX "post"};
  ckpt_atomicity modes[] = {CKPT_ATOMICITY_RENAME, CKPT_ATOMICITY_COMMIT_FILE};
  for (size_t m = 0; m < 2; m++) {
    ckpt_checkpointer *c = new_ckptr(modes[m], false);
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
      char *path = cf_join(root, names[i]);
      ckpt_error err = CKPT_ERROR_INIT;
      cr_assert_eq(save(c, path, "x", false, &err), CKPT_EINVAL, "'%s' accepted", names[i]);
      cr_assert(strstr(err.message, "temporary"), "%s", err.message);
      free(path);
    }
    ckpt_error err = CKPT_ERROR_INIT;
    cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK);
  }
}

/* A forced replace on a file system without RENAME_EXCHANGE, killed between its two renames:
 * the old checkpoint is only at <path>.orbax-checkpoint-tmp-replaced and the new one is still
 * the tmp directory. The next save to <path> must bring the old one back, not delete it as a
 * leftover. */
Test(commit, a_replace_killed_between_its_two_renames_loses_nothing) {
  ckpt_checkpointer *c = new_ckptr(CKPT_ATOMICITY_RENAME, false);
  char *path = cf_join(root, "step");
  char *newer = cf_join(root, "newer");
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(save(c, path, "old", false, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(save(c, newer, "new", false, &err), CKPT_OK, "%s", err.message);
  char *aside = malloc(strlen(path) + sizeof ".orbax-checkpoint-tmp-replaced");
  sprintf(aside, "%s.orbax-checkpoint-tmp-replaced", path);
  char *tmp = tmp_of(path);
  cr_assert_eq(rename(path, aside), 0); /* the first rename happened */
  cr_assert_eq(rename(newer, tmp), 0);  /* the new checkpoint still under its tmp name */
  /* Without force the old checkpoint is there again: the save is refused. */
  cr_assert_eq(save(c, path, "third", false, &err), CKPT_EEXIST, "%s", err.message);
  expect_checkpoint(c, path, "old");
  /* And a forced save replaces it as usual. */
  ckpt_error_clear(&err);
  cr_assert_eq(save(c, path, "third", true, &err), CKPT_OK, "%s", err.message);
  expect_checkpoint(c, path, "third");
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK);
  free(tmp);
  free(aside);
  free(newer);
  free(path);
}
