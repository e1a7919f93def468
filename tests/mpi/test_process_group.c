/* test_process_group.c — the process-group seam without MPI: the single group's collectives,
 * a transport's argument checks, and the checkpointer options that need a group. A two-rank
 * group here is a fake transport that never runs a collective (only option checks use it). */
#include <criterion/criterion.h>

#include <string.h>

#include "ckpt/checkpointer.h"
#include "ckpt/process_group.h"
#include "ckpt/builtin.ckpt.h"
#include "ckpt/manager.h"

#include <signal.h>
#include <unistd.h>

Test(process_group, single_group_collectives) {
  ckpt_process_group *pg = ckpt_process_group_single();
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_process_group_rank(pg), 0);
  cr_assert_eq(ckpt_process_group_size(pg), 1);
  cr_assert_eq(ckpt_process_group_size(NULL), 1);
  cr_assert_str_eq(ckpt_process_group_name(pg), "single");
  cr_assert_eq(ckpt_process_group_barrier(pg, &err), CKPT_OK);
  int x = 7, y = 0;
  cr_assert_eq(ckpt_process_group_broadcast(pg, 0, &x, sizeof x, &err), CKPT_OK);
  cr_assert_eq(ckpt_process_group_broadcast(pg, 1, &x, sizeof x, &err), CKPT_EINVAL);
  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_process_group_allgather(pg, &x, sizeof x, &y, &err), CKPT_OK);
  cr_assert_eq(y, 7);
  void *all = NULL;
  size_t *sizes = NULL;
  cr_assert_eq(ckpt_process_group_allgatherv(pg, "abc", 3, &all, &sizes, &err), CKPT_OK);
  cr_assert_eq(sizes[0], 3);
  cr_assert(memcmp(all, "abc", 3) == 0);
  free(all);
  free(sizes);
  cr_assert_eq(ckpt_process_group_gatherv(pg, 0, "de", 2, &all, &sizes, &err), CKPT_OK);
  cr_assert_eq(sizes[0], 2);
  cr_assert(memcmp(all, "de", 2) == 0);
  free(all);
  free(sizes);
  /* Agreement alone: the local status, message untouched. */
  cr_assert_eq(ckpt_process_group_agree(pg, CKPT_OK, &err), CKPT_OK);
  ckpt_error_set(&err, CKPT_EIO, "disk on fire");
  cr_assert_eq(ckpt_process_group_agree(pg, CKPT_EIO, &err), CKPT_EIO);
  cr_assert_str_eq(err.message, "disk on fire");
  cr_assert_eq(ckpt_process_group_share_outcome(pg, 0, CKPT_EIO, &err), CKPT_EIO);
  ckpt_process_group_free(pg); /* a no-op for the static group */
}

static ckpt_status never(void *impl, ckpt_error *err) {
  (void)impl;
  return ckpt_error_set(err, CKPT_ESTATE, "the fake transport runs no collective");
}
static ckpt_status never_bcast(void *impl, int root, void *buf, size_t n, ckpt_error *err) {
  (void)root, (void)buf, (void)n;
  return never(impl, err);
}
static ckpt_status never_gather(void *impl, const void *in, size_t n, void *out,
                                const size_t *c, const size_t *d, ckpt_error *err) {
  (void)in, (void)n, (void)out, (void)c, (void)d;
  return never(impl, err);
}
static ckpt_status never_gatherv(void *impl, int root, const void *in, size_t n, void *out,
                                 const size_t *c, const size_t *d, ckpt_error *err) {
  (void)root;
  return never_gather(impl, in, n, out, c, d, err);
}
static int destroyed;
static void count_destroy(void *impl) {
  (void)impl;
  destroyed++;
}
static const ckpt_process_group_vtable fake = {"fake",       never,         never_bcast,
                                               never_gather, never_gatherv, count_destroy};

Test(process_group, new_checks_its_arguments_and_owns_impl) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_process_group *pg = NULL;
  destroyed = 0;
  cr_assert_eq(ckpt_process_group_new(&fake, NULL, 2, 2, &pg, &err), CKPT_EINVAL);
  cr_assert_null(pg);
  cr_assert_eq(destroyed, 1, "impl not released on failure");
  cr_assert(strstr(err.message, "rank 2 of size 2") != NULL, "%s", err.message);
  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_process_group_new(&fake, NULL, 1, 2, &pg, &err), CKPT_OK);
  cr_assert_eq(ckpt_process_group_rank(pg), 1);
  cr_assert_eq(ckpt_process_group_size(pg), 2);
  cr_assert_str_eq(ckpt_process_group_name(pg), "fake");
  /* A transport's failure comes back as it is. */
  cr_assert_eq(ckpt_process_group_barrier(pg, &err), CKPT_ESTATE);
  ckpt_process_group_free(pg);
  cr_assert_eq(destroyed, 2);
}

/* A primary outside the group is refused; OCDBT (use_ocdbt, or packing, which selects it) is
 * written with a group (each process its database, docs/multiprocess.md) and accepted. */
Test(process_group, checkpointer_options_need_a_valid_primary) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_process_group *pg = NULL;
  cr_assert_eq(ckpt_process_group_new(&fake, NULL, 0, 2, &pg, &err), CKPT_OK);
  ckpt_checkpointer_options o = CKPT_CHECKPOINTER_OPTIONS_INIT;
  o.process_group = pg;
  o.primary = 2;
  ckpt_checkpointer *c = NULL;
  cr_assert_eq(ckpt_checkpointer_new(&ckpt_StandardCheckpointHandler_desc, &o, &c, &err),
               CKPT_EINVAL);
  cr_assert(strstr(err.message, "primary process 2") != NULL, "%s", err.message);
  err = (ckpt_error)CKPT_ERROR_INIT;
  o.primary = 1;
  o.pack_arrays_up_to_bytes = 4096;
  cr_assert_eq(ckpt_checkpointer_new(&ckpt_StandardCheckpointHandler_desc, &o, &c, &err), CKPT_OK,
               "%s", err.message);
  ckpt_checkpointer_close(c, &err);
  o.pack_arrays_up_to_bytes = 0;
  o.use_ocdbt = true;
  o.use_zarr3 = true;
  cr_assert_eq(ckpt_checkpointer_new(&ckpt_StandardCheckpointHandler_desc, &o, &c, &err), CKPT_OK,
               "%s", err.message);
  ckpt_checkpointer_close(c, &err);
  o.use_ocdbt = false;
  o.use_zarr3 = false;
  cr_assert_eq(ckpt_checkpointer_new(&ckpt_StandardCheckpointHandler_desc, &o, &c, &err), CKPT_OK,
               "%s", err.message);
  ckpt_checkpointer_close(c, &err);
  ckpt_process_group_free(pg);
}

Test(process_group, manager_options_need_a_valid_primary) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_process_group *pg = NULL;
  cr_assert_eq(ckpt_process_group_new(&fake, NULL, 0, 2, &pg, &err), CKPT_OK);
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.process_group = pg;
  o.primary = -1;
  ckpt_manager *m = NULL;
  cr_assert_eq(ckpt_manager_new("/nonexistent/ckpt-mpi-test", &o, &m, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "primary process -1") != NULL, "%s", err.message);
  cr_assert_null(m);
  ckpt_process_group_free(pg);
}

/* Alone, reached_preemption is this process's own signal. */
Test(process_group, preemption_alone) {
  ckpt_error err = CKPT_ERROR_INIT;
  char dir[] = "/tmp/ckpt-preempt-XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  ckpt_manager *m = NULL;
  cr_assert_eq(ckpt_manager_new(dir, NULL, &m, &err), CKPT_OK, "%s", err.message);
  bool reached = true;
  cr_assert_eq(ckpt_manager_reached_preemption(m, 1, &reached, &err), CKPT_OK);
  cr_assert(!reached);
  cr_assert_eq(ckpt_preemption_watch(SIGUSR1, &err), CKPT_OK, "%s", err.message);
  raise(SIGUSR1);
  cr_assert(ckpt_preemption_received());
  cr_assert_eq(ckpt_manager_reached_preemption(m, 2, &reached, &err), CKPT_OK);
  cr_assert(reached);
  ckpt_manager_close(m, &err);
  rmdir(dir);
}
