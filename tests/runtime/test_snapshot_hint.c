/* test_snapshot_hint.c — ckpt_checkpointer_options.snapshot_bytes_hint (and the manager's):
 * an async checkpointer created with a hint prepares the staging pool on a thread of its own
 * (io/staging_pool.h), the first save takes its buffers from that pool instead of building
 * one, closing before the pool is ready neither leaks nor crashes, and synchronous
 * checkpointers ignore the hint. Never timed: what is checked is which pool exists and who
 * built it (ckpt_staging_get_stats). Criterion runs each test in a process of its own, so the
 * process-wide pool starts empty in every test. */
#include <time.h>

#include "io/staging_pool.h"
#include "test_pytree_util.h"

#define HINT ((uint64_t)32 << 20)

static ckpt_checkpointer *new_hinted_opts(bool async, bool zero_copy, uint64_t hint) {
  ckpt_checkpointer_options o = CKPT_CHECKPOINTER_OPTIONS_INIT;
  o.async = async;
  o.zero_copy = zero_copy;
  o.io_threads = 2;
  o.snapshot_bytes_hint = hint;
  ckpt_checkpointer *c = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_new(&ckpt_StandardCheckpointHandler_desc, &o, &c, &err),
               CKPT_OK, "%s", err.message);
  return c;
}

static ckpt_checkpointer *new_hinted(bool async, uint64_t hint) {
  return new_hinted_opts(async, false, hint);
}

/* Polls until the hinted pool is ready; fails (rather than hangs) after a minute. */
static void wait_ready(const ckpt_checkpointer *c) {
  struct timespec pause = {0, 2 * 1000 * 1000};
  for (int i = 0; i < 30000 && !ckpt_checkpointer_snapshot_pool_ready(c); i++)
    nanosleep(&pause, NULL);
  cr_assert(ckpt_checkpointer_snapshot_pool_ready(c), "the hinted pool never became ready");
}

/* 20 MB in two arrays, both large enough to be staged in the pool (CKPT_STAGING_MIN_POOLED). */
static ckpt_tree *state(void) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = ckpt_tree_new_dict();
  int64_t a[2] = {4000, 1024}, b[1] = {1000 * 1024};
  ckpt_tree_dict_set(t, "w", ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 2, a, 5)), &err);
  ckpt_tree_dict_set(t, "b", ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 1, b, 6)), &err);
  cr_assert_eq(err.code, CKPT_OK, "%s", err.message);
  return t;
}

static void save_and_check(ckpt_checkpointer *c, const char *path, const ckpt_tree *t) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_StandardSave *a = ckpt_StandardSave_new();
  a->item = ckpt_tree_clone(t);
  cr_assert_eq(ckpt_checkpointer_save(c, path, &a->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  ckpt_args_delete(&a->base); /* the snapshot was taken: the caller's tree may go */
  cr_assert_eq(ckpt_checkpointer_wait_until_finished(c, &err), CKPT_OK, "%s", err.message);
  ckpt_StandardRestore *r = ckpt_StandardRestore_new();
  r->item = ckpt_tree_clone(t);
  ckpt_value v;
  memset(&v, 0, sizeof v);
  cr_assert_eq(ckpt_checkpointer_restore(c, path, &r->base, &v, &err), CKPT_OK, "%s",
               err.message);
  cr_assert(ckpt_tree_equal(v.u.tree, t), "the restored state differs from the saved one");
  ckpt_value_free(&v);
  ckpt_args_delete(&r->base);
}

Test(snapshot_hint, the_first_save_uses_the_pool_the_hint_prepared) {
  ckpt_checkpointer *c = new_hinted(true, HINT);
  wait_ready(c);
  ckpt_staging_stats before;
  ckpt_staging_get_stats(&before);
  cr_expect_eq(before.pools_built, 1, "the hint should have built exactly one pool");
  cr_expect_eq(before.capacity, (size_t)HINT, "the pool should have the hint's size");
  cr_expect_eq(before.pooled_acquires, 0, "nothing was saved yet");

  ckpt_tree *t = state();
  char *root = pt_tmpdir();
  char *path = pt_fmt("%s/step_1", root);
  save_and_check(c, path, t);
  ckpt_staging_stats after;
  ckpt_staging_get_stats(&after);
  cr_expect_eq(after.pools_built, 1, "the first save built a pool of its own");
  cr_expect_eq(after.capacity, (size_t)HINT, "the first save replaced the hinted pool");
  cr_expect_geq(after.pooled_acquires, 2, "both arrays should have been staged in the pool");

  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
  cr_expect_eq(ckpt_staging_capacity(), 0, "the last async checkpointer closed: pool unmapped");
  free(path);
  pt_rmtree(root);
  ckpt_tree_free(t);
}

Test(snapshot_hint, a_save_right_after_creation_shares_the_pool_being_built) {
  /* No wait: the save comes while the hint's thread may not even have started. Either way
   * one pool is built: from the checkpointer's creation on, a save waits for the hint's pool
   * instead of making one of its own (staging_pool.h). */
  ckpt_checkpointer *c = new_hinted(true, HINT);
  ckpt_tree *t = state();
  char *root = pt_tmpdir();
  char *path = pt_fmt("%s/step_1", root);
  save_and_check(c, path, t);
  ckpt_staging_stats s;
  ckpt_staging_get_stats(&s);
  cr_expect_eq(s.pools_built, 1, "two pools were built for one snapshot");
  cr_expect_geq(s.pooled_acquires, 2);
  cr_expect(ckpt_checkpointer_snapshot_pool_ready(c));
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
  free(path);
  pt_rmtree(root);
  ckpt_tree_free(t);
}

Test(snapshot_hint, closing_before_the_pool_is_ready_gives_everything_back) {
  /* Closed at once: close joins the preparing thread, then drops the pool (ASan: no leak). */
  ckpt_checkpointer *c = new_hinted(true, (uint64_t)64 << 20);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
  cr_expect_eq(ckpt_staging_capacity(), 0, "the pool outlived its only checkpointer");
}

Test(snapshot_hint, checkpointers_that_never_copy_ignore_the_hint) {
  ckpt_checkpointer *c = new_hinted(false, HINT);
  ckpt_checkpointer *z = new_hinted_opts(true, true, HINT); /* async, zero-copy */
  cr_expect(ckpt_checkpointer_snapshot_pool_ready(c), "nothing to prepare: ready at once");
  cr_expect(ckpt_checkpointer_snapshot_pool_ready(z), "nothing to prepare: ready at once");
  ckpt_staging_stats s;
  ckpt_staging_get_stats(&s);
  cr_expect_eq(s.pools_built, 0, "a checkpointer that never copies built a pool");
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_close(z, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
  cr_expect_not(ckpt_checkpointer_snapshot_pool_ready(NULL));
}

Test(snapshot_hint, a_hint_below_the_pool_threshold_builds_nothing) {
  /* Snapshots under 16 MiB are malloc'ed (staging_pool.h): the hint is ready at once. */
  ckpt_checkpointer *c = new_hinted(true, (uint64_t)1 << 20);
  cr_expect(ckpt_checkpointer_snapshot_pool_ready(c));
  cr_expect_eq(ckpt_staging_capacity(), 0);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
}

Test(snapshot_hint, the_manager_passes_the_hint_to_its_checkpointer) {
  char *root = pt_tmpdir();
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.snapshot_bytes_hint = HINT;
  ckpt_manager *m = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_new(root, &o, &m, &err), CKPT_OK, "%s", err.message);
  cr_assert(ckpt_manager_is_async(m));
  /* The manager does not expose its checkpointer: poll the pool itself (a minute at most). */
  struct timespec pause = {0, 2 * 1000 * 1000};
  for (int i = 0; i < 30000 && ckpt_staging_capacity() < HINT; i++)
    nanosleep(&pause, NULL);
  cr_expect_eq(ckpt_staging_capacity(), (size_t)HINT, "the manager's hint built no pool");
  cr_assert_eq(ckpt_manager_close(m, &err), CKPT_OK, "%s", err.message);
  cr_expect_eq(ckpt_staging_capacity(), 0, "the manager closed: pool unmapped");
  pt_rmtree(root);
}
