/* tests/runtime/test_engine_close.c — how a durable close runs (engine.c,
 * ckpt_engine_file_close): its fsync is a job of its own, batched by the io_uring backend, that
 * releases the descriptors as soon as it succeeds; the close then fsyncs nothing again unless a
 * write came after that fsync; a failed fsync fails the group and still leaks no descriptor.
 * And the two tools a save uses to bound its open files: ckpt_engine_add_after and gate jobs. */
#include <pthread.h>

#include "test_engine_util.h"

/* Counts fsyncs per file (by path) and can fail the n-th fsync of one file. */
typedef struct fsync_count {
  const char *path;
  atomic_long fsyncs;
  long fail_at; /* 0: never */
} fsync_count;

static int count_fsyncs(void *arg, ckpt_io_op op, const char *path) {
  fsync_count *c = arg;
  if (op != CKPT_IO_FSYNC || strcmp(path, c->path) != 0)
    return 0;
  long n = atomic_fetch_add(&c->fsyncs, 1) + 1;
  return n == c->fail_at ? EIO : 0;
}

/* Writes 3 pieces of data to path as a durable file and closes it, with an explicit fsync after
 * the first piece when fsync_between, and returns the group's status. */
static ckpt_status write_durable(ckpt_engine *e, const char *path, bool fsync_between,
                                 ckpt_error *err) {
  static unsigned char data[3][4096];
  for (int k = 0; k < 3; k++)
    te_fill(data[k], sizeof data[k], 7, (uint64_t)k * 4096);
  ckpt_engine_group *g;
  cr_assert_eq(ckpt_engine_group_new(e, "close test", &g, err), CKPT_OK);
  ckpt_engine_file *f;
  cr_assert_eq(ckpt_engine_file_open(g, path, O_WRONLY | O_CREAT | O_TRUNC, 0644,
                                     CKPT_ENGINE_FILE_DURABLE, &f, err),
               CKPT_OK);
  cr_assert_eq(ckpt_engine_write(g, f, data[0], 4096, 0, NULL, NULL, err), CKPT_OK);
  if (fsync_between)
    cr_assert_eq(ckpt_engine_fsync(g, f, NULL, NULL, err), CKPT_OK);
  cr_assert_eq(ckpt_engine_write(g, f, data[1], 4096, 4096, NULL, NULL, err), CKPT_OK);
  cr_assert_eq(ckpt_engine_write(g, f, data[2], 4096, 8192, NULL, NULL, err), CKPT_OK);
  cr_assert_eq(ckpt_engine_file_close(g, f, NULL, NULL, err), CKPT_OK);
  ckpt_status st = ckpt_engine_group_wait(g, err);
  ckpt_engine_group_free(g);
  return st;
}

/* An engine with the given backend whose I/O layer counts (and may fail) fsyncs through c. */
static ckpt_engine *counting_engine(ckpt_engine_backend backend, fsync_count *c, ckpt_io **io) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_io_new(io, &err), CKPT_OK);
  ckpt_io_set_fault(*io, count_fsyncs, c);
  ckpt_engine_options o;
  ckpt_engine_options_init(&o);
  o.backend = backend;
  o.io = *io;
  return te_engine(&o);
}

BOTH_BACKENDS(a_durable_close_fsyncs_once_after_the_last_write) {
  char *dir = te_mkdtemp();
  char *path = te_path(dir, "data");
  ckpt_error err = CKPT_ERROR_INIT;
  fsync_count c = {.path = path};
  ckpt_io *io = NULL;
  ckpt_engine *e = counting_engine(backend, &c, &io);
  int fds = te_count_fds();

  cr_assert_eq(write_durable(e, path, false, &err), CKPT_OK, "%s", err.message);
  cr_expect_eq(atomic_load(&c.fsyncs), 1, "one fsync for one close, not the close's twice");
  te_check_file(path, 3 * 4096, 7);
  /* An fsync between writes does not stand in for the close's: writes came after it. */
  atomic_store(&c.fsyncs, 0);
  cr_assert_eq(write_durable(e, path, true, &err), CKPT_OK, "%s", err.message);
  cr_expect_eq(atomic_load(&c.fsyncs), 2);
  te_check_file(path, 3 * 4096, 7);
  cr_expect_eq(te_count_fds(), fds, "a descriptor leaked");

  ckpt_engine_free(e);
  ckpt_io_free(io);
  free(path);
  te_rmdir(dir);
}

BOTH_BACKENDS(a_failed_close_fsync_fails_the_group_and_leaks_nothing) {
  char *dir = te_mkdtemp();
  char *path = te_path(dir, "data");
  ckpt_error err = CKPT_ERROR_INIT;
  fsync_count c = {.path = path, .fail_at = 1};
  ckpt_io *io = NULL;
  ckpt_engine *e = counting_engine(backend, &c, &io);
  int fds = te_count_fds();
  cr_assert_eq(write_durable(e, path, false, &err), CKPT_EIO);
  cr_expect(strstr(err.message, "fsync") != NULL && strstr(err.message, path) != NULL, "%s",
            err.message);
  cr_expect_eq(atomic_load(&c.fsyncs), 1, "the canceled close must not fsync again");
  cr_expect_eq(te_count_fds(), fds, "a descriptor leaked");
  ckpt_engine_free(e);
  ckpt_io_free(io);
  free(path);
  te_rmdir(dir);
}

/* ---------------------------------------------------------------- late prerequisites, gates */

typedef struct latch {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool open;
} latch;

static ckpt_status wait_latch(void *arg, ckpt_error *err) {
  (void)err;
  latch *l = arg;
  pthread_mutex_lock(&l->mu);
  while (!l->open)
    pthread_cond_wait(&l->cv, &l->mu);
  pthread_mutex_unlock(&l->mu);
  return CKPT_OK;
}

typedef struct gated {
  ckpt_engine_group *g;
  latch *l;
  ckpt_future *gate;    /* set by the engine before spawn_and_gate runs */
  ckpt_future *spawned; /* the job spawn_and_gate submitted */
  ckpt_status add_status;
} gated;

/* Submits a job that waits for the latch and adds it to its own gate. */
static ckpt_status spawn_and_gate(void *arg, ckpt_error *err) {
  gated *s = arg;
  ckpt_status st = ckpt_engine_call(s->g, wait_latch, s->l, NULL, &s->spawned, err);
  if (st == CKPT_OK)
    st = s->add_status = ckpt_engine_add_after(s->gate, s->spawned, err);
  return st;
}

static ckpt_status nothing(void *arg, ckpt_error *err) {
  (void)arg;
  (void)err;
  return CKPT_OK;
}

BOTH_BACKENDS(a_gate_waits_for_the_jobs_its_job_added) {
  ckpt_engine *e = te_engine_on(backend);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_engine_group *g;
  cr_assert_eq(ckpt_engine_group_new(e, "gates", &g, &err), CKPT_OK);
  latch l = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
  gated s = {.g = g, .l = &l};
  ckpt_future *spawner, *after_gate;
  ckpt_engine_job_opts so = {.label = "spawner", .gate = &s.gate};
  cr_assert_eq(ckpt_engine_call(g, spawn_and_gate, &s, &so, &spawner, &err), CKPT_OK);
  cr_assert_not_null(s.gate);
  ckpt_engine_job_opts ao = {.after = &s.gate, .n_after = 1, .label = "after the gate"};
  cr_assert_eq(ckpt_engine_call(g, nothing, NULL, &ao, &after_gate, &err), CKPT_OK);
  cr_assert_eq(ckpt_future_wait(spawner, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(s.add_status, CKPT_OK);
  /* The spawned job holds the gate, and the gate the job after it. */
  for (int i = 0; i < 20; i++)
    sched_yield();
  cr_expect_not(ckpt_future_poll(s.gate));
  cr_expect_not(ckpt_future_poll(after_gate));
  /* A finished job takes no new prerequisite; nor does one of another group. */
  cr_expect_eq(ckpt_engine_add_after(spawner, s.spawned, &err), CKPT_EINVAL);
  cr_expect(strstr(err.message, "no longer waiting") != NULL, "%s", err.message);
  ckpt_engine_group *other;
  cr_assert_eq(ckpt_engine_group_new(e, "other", &other, &err), CKPT_OK);
  ckpt_future *foreign;
  cr_assert_eq(ckpt_engine_call(other, nothing, NULL, NULL, &foreign, &err), CKPT_OK);
  ckpt_error_clear(&err);
  cr_expect_eq(ckpt_engine_add_after(s.gate, foreign, &err), CKPT_EINVAL);
  cr_expect(strstr(err.message, "different groups") != NULL, "%s", err.message);
  /* A gate belongs to function jobs only. */
  ckpt_future *unused = NULL;
  ckpt_engine_job_opts bad = {.gate = &unused};
  cr_expect_eq(ckpt_engine_fsync_dir(g, "/", &bad, NULL, &err), CKPT_EINVAL);
  cr_assert_eq(ckpt_engine_group_wait(other, &err), CKPT_OK);
  ckpt_engine_group_free(other);

  pthread_mutex_lock(&l.mu);
  l.open = true;
  pthread_cond_broadcast(&l.cv);
  pthread_mutex_unlock(&l.mu);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_future_wait(after_gate, &err), CKPT_OK, "%s", err.message);
  cr_expect(ckpt_future_poll(s.spawned));
  cr_expect(ckpt_future_poll(s.gate));
  cr_assert_eq(ckpt_engine_group_wait(g, &err), CKPT_OK);
  ckpt_engine_group_free(g);
  ckpt_engine_free(e);
}
