/* test_async.c — saves and restores on the checkpointer's I/O engine (engineer S): async
 * semantics as Orbax's AsyncCheckpointer (docs/api.md, "Checkpointer") — the snapshot is taken
 * before save returns, errors of the background part come back from the next call, close waits, a
 * second save waits for the first — under both engine backends, with a failure injected into
 * one chunk's I/O through ckpt_io_set_fault, and a save running while another checkpointer
 * restores. Real files in a temporary directory; restores compared bit for bit. */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>

#include "io/staging_pool.h"
#include "test_pytree_util.h"

#define N_ARRAYS 12
#define ELEMS 70000 /* 280 KB of float32 per array: one chunk file each */

static ckpt_tree *make_state(uint32_t seed) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = ckpt_tree_new_dict();
  ckpt_tree *p = ckpt_tree_new_dict();
  for (int i = 0; i < N_ARRAYS; i++) {
    char name[16];
    snprintf(name, sizeof name, "a%d", i);
    int64_t shape[2] = {ELEMS / 100, 100};
    ckpt_tree_dict_set(p, name, ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 2, shape,
                                                             seed + (uint32_t)i)),
                       &err);
  }
  ckpt_tree_dict_set(t, "params", p, &err);
  ckpt_tree_dict_set(t, "step", ckpt_tree_new_int(CKPT_DTYPE_INT64, 7), &err);
  cr_assert_eq(err.code, CKPT_OK, "%s", err.message);
  return t;
}

static ckpt_checkpointer *new_ckptr(bool async, int threads, ckpt_io *io, ckpt_status *st_out) {
  ckpt_checkpointer_options o = CKPT_CHECKPOINTER_OPTIONS_INIT;
  o.async = async;
  o.io_threads = threads;
  o.io = io;
  ckpt_checkpointer *c = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_status st = ckpt_checkpointer_new(&ckpt_StandardCheckpointHandler_desc, &o, &c, &err);
  if (st_out != NULL) {
    *st_out = st;
    return c;
  }
  cr_assert_eq(st, CKPT_OK, "%s", err.message);
  return c;
}

static ckpt_status save(ckpt_checkpointer *c, const char *path, ckpt_tree *item,
                        ckpt_error *err) {
  ckpt_StandardSave *a = ckpt_StandardSave_new();
  cr_assert_not_null(a);
  a->item = item; /* the args own the tree now */
  ckpt_status st = ckpt_checkpointer_save(c, path, &a->base, false, NULL, err);
  /* The args (and the tree they wrap) may go at once: the save holds its snapshot. */
  ckpt_args_delete(&a->base);
  return st;
}

/* Restores path with the given checkpointer and checks it equals expect. */
static void restore_equals(ckpt_checkpointer *c, const char *path, const ckpt_tree *expect) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_StandardRestore *r = ckpt_StandardRestore_new();
  r->item = ckpt_tree_clone(expect);
  ckpt_value v;
  memset(&v, 0, sizeof v);
  cr_assert_eq(ckpt_checkpointer_restore(c, path, &r->base, &v, &err), CKPT_OK, "%s",
               err.message);
  cr_assert_eq(v.kind, CKPT_VALUE_TREE);
  cr_assert(ckpt_tree_equal(v.u.tree, expect), "restored '%s' differs from what was saved",
            path);
  ckpt_value_free(&v);
  ckpt_args_delete(&r->base);
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  cr_assert_not_null(d);
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

static bool exists(const char *path) {
  struct stat sb;
  return lstat(path, &sb) == 0;
}

/* ---------------------------------------------------------------- both backends */

Test(async, engine_backed_saves_under_both_backends) {
  const char *backends[] = {"pwrite", "uring"};
  for (int b = 0; b < 2; b++) {
    setenv("CKPT_IO_BACKEND", backends[b], 1);
    ckpt_status st;
    ckpt_checkpointer *c = new_ckptr(true, 2, NULL, &st);
    if (st == CKPT_EUNSUPPORTED) {
      cr_log_warn("io_uring refused by this kernel: the uring half of this test is skipped");
      continue;
    }
    cr_assert_eq(st, CKPT_OK, "backend %s", backends[b]);
    char *root = pt_tmpdir();
    char *path = pt_fmt("%s/ckpt", root);
    ckpt_tree *expect = make_state(10);
    ckpt_error err = CKPT_ERROR_INIT;
    cr_assert_eq(save(c, path, ckpt_tree_clone(expect), &err), CKPT_OK, "%s", err.message);
    cr_assert_eq(ckpt_checkpointer_wait_until_finished(c, &err), CKPT_OK, "%s: %s",
                 backends[b], err.message);
    cr_assert(ckpt_is_finalized(NULL, path, CKPT_ATOMICITY_RENAME));
    char *chunk = pt_fmt("%s/params.a3/0.0", path);
    cr_assert(exists(chunk), "%s: chunk file missing", backends[b]);
    free(chunk);
    restore_equals(c, path, expect);
    cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
    ckpt_tree_free(expect);
    free(path);
    pt_rmtree(root);
  }
  unsetenv("CKPT_IO_BACKEND");
}

/* ---------------------------------------------------------------- the executor */

typedef struct thread_log {
  pthread_mutex_t mu;
  pthread_t ids[64];
  int n;
  atomic_int writes;
} thread_log;

static int log_writer_threads(void *arg, ckpt_io_op op, const char *path) {
  (void)path;
  thread_log *l = arg;
  if (op != CKPT_IO_WRITE)
    return 0;
  atomic_fetch_add(&l->writes, 1);
  pthread_t self = pthread_self();
  pthread_mutex_lock(&l->mu);
  bool seen = false;
  for (int i = 0; i < l->n && !seen; i++)
    seen = pthread_equal(l->ids[i], self);
  if (!seen && l->n < 64)
    l->ids[l->n++] = self;
  pthread_mutex_unlock(&l->mu);
  return 0;
}

Test(async, writes_run_on_the_checkpointers_io_threads) {
  /* Every write of a save — chunks, .zarray, _METADATA, step metadata aside — runs on the
   * engine's workers: never on the caller's thread, and on no more threads than io_threads
   * (the step metadata written on the blocking path is the one exception, counted apart). */
  ckpt_io *io = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
  thread_log log;
  memset(&log, 0, sizeof log);
  pthread_mutex_init(&log.mu, NULL);
  ckpt_io_set_fault(io, log_writer_threads, &log);
  setenv("CKPT_IO_BACKEND", "pwrite", 1); /* writes through ckpt_io_pwrite_all, counted */
  ckpt_checkpointer *c = new_ckptr(false, 2, io, NULL);
  char *root = pt_tmpdir();
  char *path = pt_fmt("%s/ckpt", root);
  ckpt_tree *expect = make_state(20);
  cr_assert_eq(save(c, path, ckpt_tree_clone(expect), &err), CKPT_OK, "%s", err.message);
  cr_assert_gt(atomic_load(&log.writes), N_ARRAYS, "the chunks were written through the io");
  int on_caller = 0;
  for (int i = 0; i < log.n; i++)
    on_caller += pthread_equal(log.ids[i], pthread_self()) != 0;
  /* The caller wrote only the small files of the blocking part and the commit. */
  cr_assert_leq(log.n - on_caller, 2, "%d writer threads besides the caller, io_threads is 2",
                log.n - on_caller);
  restore_equals(c, path, expect);
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
  unsetenv("CKPT_IO_BACKEND");
  ckpt_io_free(io);
  pthread_mutex_destroy(&log.mu);
  ckpt_tree_free(expect);
  free(path);
  pt_rmtree(root);
}

Test(async, bad_io_threads_is_refused) {
  ckpt_checkpointer_options o = CKPT_CHECKPOINTER_OPTIONS_INIT;
  o.io_threads = -1;
  ckpt_checkpointer *c = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_new(NULL, &o, &c, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "io_threads") != NULL, "%s", err.message);
  cr_assert_null(c);
}

/* ---------------------------------------------------------------- failures */

typedef struct fail_one {
  const char *needle;   /* fail the first WRITE of a path containing this */
  atomic_bool failed;
  atomic_int opens_after; /* chunk-file opens that ran after the failure */
} fail_one;

static int fail_one_chunk(void *arg, ckpt_io_op op, const char *path) {
  fail_one *f = arg;
  if (path == NULL)
    return 0;
  if (op == CKPT_IO_OPEN && atomic_load(&f->failed) && strstr(path, "/params.a") != NULL &&
      strstr(path, "/0.0") != NULL)
    atomic_fetch_add(&f->opens_after, 1);
  if (op == CKPT_IO_WRITE && strstr(path, f->needle) != NULL) {
    bool expected = false;
    if (atomic_compare_exchange_strong(&f->failed, &expected, true))
      return ENOSPC;
  }
  return 0;
}

Test(async, a_failed_chunk_fails_the_save_cancels_the_rest_and_leaks_nothing) {
  const char *backends[] = {"pwrite", "uring"};
  for (int b = 0; b < 2; b++) {
    setenv("CKPT_IO_BACKEND", backends[b], 1);
    ckpt_io *io = NULL;
    ckpt_error err = CKPT_ERROR_INIT;
    cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
    fail_one f = {.needle = "/params.a2/0.0"};
    ckpt_io_set_fault(io, fail_one_chunk, &f);
    int fds_before = count_fds();
    ckpt_status st;
    /* One worker: jobs run in submission order, so the chunks after a2's are still queued
     * when its write fails, and must be canceled rather than run. */
    ckpt_checkpointer *c = new_ckptr(false, 1, io, &st);
    if (st == CKPT_EUNSUPPORTED) {
      cr_log_warn("io_uring refused by this kernel: the uring half of this test is skipped");
      ckpt_io_free(io);
      continue;
    }
    cr_assert_eq(st, CKPT_OK);
    char *root = pt_tmpdir();
    char *path = pt_fmt("%s/ckpt", root);
    ckpt_tree *t = make_state(30);
    st = save(c, path, t, &err);
    cr_assert_eq(st, CKPT_ENOSPC, "%s: got %s: %s", backends[b], ckpt_status_text(st),
                 err.message);
    cr_assert(strstr(err.message, "params.a2/0.0") != NULL, "the message names the chunk: %s",
              err.message);
    cr_assert(atomic_load(&f.failed));
    cr_assert_lt(atomic_load(&f.opens_after), N_ARRAYS - 3,
                 "%s: %d chunk files were still opened after the failure", backends[b],
                 atomic_load(&f.opens_after));
    cr_assert(!exists(path), "no checkpoint after a failed save");
    char *tmp = pt_fmt("%s" CKPT_TMP_SUFFIX, path);
    cr_assert(!exists(tmp), "the tmp directory was removed");
    free(tmp);
    cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK);
    cr_assert_eq(count_fds(), fds_before, "%s: descriptors leaked", backends[b]);
    ckpt_io_free(io);
    free(path);
    pt_rmtree(root);
  }
  unsetenv("CKPT_IO_BACKEND");
}

Test(async, background_errors_surface_on_the_next_call_once) {
  ckpt_io *io = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
  fail_one f = {.needle = "/params.a5/"};
  ckpt_io_set_fault(io, fail_one_chunk, &f);
  ckpt_checkpointer *c = new_ckptr(true, 2, io, NULL);
  char *root = pt_tmpdir();
  char *p1 = pt_fmt("%s/one", root), *p2 = pt_fmt("%s/two", root);
  ckpt_tree *expect = make_state(40);
  /* The blocking part succeeds: the failure happens in the background. */
  cr_assert_eq(save(c, p1, ckpt_tree_clone(expect), &err), CKPT_OK, "%s", err.message);
  /* The next save reports it (and does not save). */
  ckpt_status st = save(c, p2, ckpt_tree_clone(expect), &err);
  cr_assert_eq(st, CKPT_ENOSPC, "got %s: %s", ckpt_status_text(st), err.message);
  cr_assert(strstr(err.message, "params.a5") != NULL, "%s", err.message);
  cr_assert(!exists(p1) && !exists(p2));
  /* Reported once: the same save now goes through. */
  ckpt_error_clear(&err);
  cr_assert_eq(save(c, p2, ckpt_tree_clone(expect), &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_checkpointer_wait_until_finished(c, &err), CKPT_OK, "%s", err.message);
  restore_equals(c, p2, expect);
  /* wait_until_finished and check_for_errors report a background failure too. */
  atomic_store(&f.failed, false);
  char *p3 = pt_fmt("%s/three", root);
  cr_assert_eq(save(c, p3, ckpt_tree_clone(expect), &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_checkpointer_wait_until_finished(c, &err), CKPT_ENOSPC);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_check_for_errors(c, &err), CKPT_OK, "reported once");
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
  ckpt_io_free(io);
  ckpt_tree_free(expect);
  free(p1);
  free(p2);
  free(p3);
  pt_rmtree(root);
}

/* ---------------------------------------------------------------- async semantics */

Test(async, staged_save_is_not_changed_by_mutating_the_source_after_save_returns) {
  ckpt_checkpointer *c = new_ckptr(true, 2, NULL, NULL);
  char *root = pt_tmpdir();
  char *path = pt_fmt("%s/ckpt", root);
  ckpt_tree *t = make_state(50);
  ckpt_tree *expect = ckpt_tree_clone(t); /* the pre-mutation values */
  ckpt_StandardSave *a = ckpt_StandardSave_new();
  a->item = t;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_save(c, path, &a->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  /* Right after save returns: overwrite every source array. */
  for (int i = 0; i < N_ARRAYS; i++) {
    char key[32];
    snprintf(key, sizeof key, "params.a%d", i);
    ckpt_array *arr = ckpt_tree_array(ckpt_tree_get(t, key));
    float *d = ckpt_array_data(arr);
    for (int64_t k = 0; k < ckpt_array_num_elements(arr); k++)
      d[k] = -1.0f - (float)k;
  }
  cr_assert(!ckpt_tree_equal(t, expect), "the mutation changed the source");
  cr_assert_eq(ckpt_checkpointer_wait_until_finished(c, &err), CKPT_OK, "%s", err.message);
  ckpt_args_delete(&a->base);
  restore_equals(c, path, expect);
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
  ckpt_tree_free(expect);
  free(path);
  pt_rmtree(root);
}

Test(async, close_waits_for_the_commit) {
  ckpt_checkpointer *c = new_ckptr(true, 2, NULL, NULL);
  char *root = pt_tmpdir();
  char *path = pt_fmt("%s/ckpt", root);
  ckpt_tree *expect = make_state(60);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(save(c, path, ckpt_tree_clone(expect), &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
  /* Like leaving Python's `with`: committed once close returned. */
  cr_assert(ckpt_is_finalized(NULL, path, CKPT_ATOMICITY_RENAME));
  char *tmp = pt_fmt("%s" CKPT_TMP_SUFFIX, path);
  cr_assert(!exists(tmp));
  free(tmp);
  c = new_ckptr(false, 0, NULL, NULL);
  restore_equals(c, path, expect);
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
  ckpt_tree_free(expect);
  free(path);
  pt_rmtree(root);
}

Test(async, two_saves_in_a_row) {
  ckpt_checkpointer *c = new_ckptr(true, 2, NULL, NULL);
  char *root = pt_tmpdir();
  char *p1 = pt_fmt("%s/1", root), *p2 = pt_fmt("%s/2", root);
  ckpt_tree *e1 = make_state(70), *e2 = make_state(80);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(save(c, p1, ckpt_tree_clone(e1), &err), CKPT_OK, "%s", err.message);
  /* The second save first waits for the first (which is then committed). */
  cr_assert_eq(save(c, p2, ckpt_tree_clone(e2), &err), CKPT_OK, "%s", err.message);
  cr_assert(ckpt_is_finalized(NULL, p1, CKPT_ATOMICITY_RENAME),
            "the first save committed before the second started");
  cr_assert_eq(ckpt_checkpointer_wait_until_finished(c, &err), CKPT_OK, "%s", err.message);
  restore_equals(c, p1, e1);
  restore_equals(c, p2, e2);
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
  ckpt_tree_free(e1);
  ckpt_tree_free(e2);
  free(p1);
  free(p2);
  pt_rmtree(root);
}

typedef struct restorer {
  const char *path;
  const ckpt_tree *expect;
  int rounds;
  ckpt_status st;
  char msg[1100];
} restorer;

static void *restore_loop(void *arg) {
  restorer *r = arg;
  ckpt_checkpointer *c = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  r->st = ckpt_checkpointer_new(&ckpt_StandardCheckpointHandler_desc, NULL, &c, &err);
  for (int i = 0; r->st == CKPT_OK && i < r->rounds; i++) {
    ckpt_StandardRestore *a = ckpt_StandardRestore_new();
    a->item = ckpt_tree_clone(r->expect);
    ckpt_value v;
    memset(&v, 0, sizeof v);
    r->st = ckpt_checkpointer_restore(c, r->path, &a->base, &v, &err);
    if (r->st == CKPT_OK && !ckpt_tree_equal(v.u.tree, r->expect)) {
      r->st = CKPT_ECORRUPT;
      snprintf(err.message, sizeof err.message, "restore %d differs", i);
    }
    ckpt_value_free(&v);
    ckpt_args_delete(&a->base);
  }
  snprintf(r->msg, sizeof r->msg, "%s", err.message);
  ckpt_checkpointer_close(c, NULL);
  return NULL;
}

Test(async, save_while_a_restore_of_another_path_runs) {
  char *root = pt_tmpdir();
  char *p1 = pt_fmt("%s/old", root), *p2 = pt_fmt("%s/new", root);
  ckpt_tree *e1 = make_state(90), *e2 = make_state(100);
  ckpt_checkpointer *c = new_ckptr(true, 2, NULL, NULL);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(save(c, p1, ckpt_tree_clone(e1), &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_checkpointer_wait_until_finished(c, &err), CKPT_OK, "%s", err.message);
  restorer r = {.path = p1, .expect = e1, .rounds = 4};
  pthread_t th;
  cr_assert_eq(pthread_create(&th, NULL, restore_loop, &r), 0);
  for (int i = 0; i < 3; i++) {
    char *p = pt_fmt("%s.%d", p2, i);
    cr_assert_eq(save(c, p, ckpt_tree_clone(e2), &err), CKPT_OK, "%s", err.message);
    free(p);
  }
  cr_assert_eq(ckpt_checkpointer_wait_until_finished(c, &err), CKPT_OK, "%s", err.message);
  pthread_join(th, NULL);
  cr_assert_eq(r.st, CKPT_OK, "the concurrent restore failed: %s", r.msg);
  for (int i = 0; i < 3; i++) {
    char *p = pt_fmt("%s.%d", p2, i);
    restore_equals(c, p, e2);
    free(p);
  }
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
  ckpt_tree_free(e1);
  ckpt_tree_free(e2);
  free(p1);
  free(p2);
  pt_rmtree(root);
}

Test(async, a_memory_budget_smaller_than_one_chunk_still_saves_and_restores) {
  /* Every chunk is larger than the budget: each is admitted alone (never a deadlock), for the
   * save's writes and for the restore's reads. */
  ckpt_checkpointer_options o = CKPT_CHECKPOINTER_OPTIONS_INIT;
  o.async = true;
  o.io_threads = 3;
  o.memory_budget_bytes = 4096;
  ckpt_checkpointer *c = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_new(&ckpt_StandardCheckpointHandler_desc, &o, &c, &err),
               CKPT_OK, "%s", err.message);
  char *root = pt_tmpdir();
  char *path = pt_fmt("%s/ckpt", root);
  ckpt_tree *expect = make_state(110);
  cr_assert_eq(save(c, path, ckpt_tree_clone(expect), &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_checkpointer_wait_until_finished(c, &err), CKPT_OK, "%s", err.message);
  restore_equals(c, path, expect);
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
  ckpt_tree_free(expect);
  free(path);
  pt_rmtree(root);
}

/* ---------------------------------------------------------------- syncfs durability */

static uint64_t fsyncs_of_a_save(const char *durability, const char *path, const ckpt_tree *e) {
  setenv("CKPT_IO_DURABILITY", durability, 1);
  ckpt_io *io = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
  ckpt_checkpointer *c = new_ckptr(false, 2, io, NULL);
  cr_assert_eq(save(c, path, ckpt_tree_clone(e), &err), CKPT_OK, "%s: %s", durability,
               err.message);
  uint64_t n = ckpt_io_count(io, CKPT_IO_FSYNC);
  restore_equals(c, path, e);
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
  ckpt_io_free(io);
  unsetenv("CKPT_IO_DURABILITY");
  return n;
}

Test(async, syncfs_durability_replaces_the_per_file_fsyncs) {
  char *root = pt_tmpdir();
  char *p1 = pt_fmt("%s/fsync", root), *p2 = pt_fmt("%s/syncfs", root);
  ckpt_tree *expect = make_state(120);
  uint64_t with_fsync = fsyncs_of_a_save("fsync", p1, expect);
  uint64_t with_syncfs = fsyncs_of_a_save("syncfs", p2, expect);
  /* Per-file mode: every chunk and .zarray file, every array directory (then the commit's own
   * pass). syncfs mode: one per engine group instead of those. */
  cr_assert_geq(with_fsync, with_syncfs + 3 * N_ARRAYS - 4, "fsync mode %llu, syncfs mode %llu",
                (unsigned long long)with_fsync, (unsigned long long)with_syncfs);
  ckpt_tree_free(expect);
  free(p1);
  free(p2);
  pt_rmtree(root);
}

static int fail_first_tmp_fsync(void *arg, ckpt_io_op op, const char *path) {
  atomic_bool *failed = arg;
  if (op != CKPT_IO_FSYNC || path == NULL || strstr(path, CKPT_TMP_SUFFIX) == NULL)
    return 0;
  bool expected = false;
  return atomic_compare_exchange_strong(failed, &expected, true) ? EIO : 0;
}

Test(async, a_failed_syncfs_fails_the_save) {
  setenv("CKPT_IO_DURABILITY", "syncfs", 1);
  ckpt_io *io = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
  atomic_bool failed;
  atomic_init(&failed, false);
  ckpt_io_set_fault(io, fail_first_tmp_fsync, &failed);
  ckpt_checkpointer *c = new_ckptr(true, 2, io, NULL);
  char *root = pt_tmpdir();
  char *path = pt_fmt("%s/ckpt", root);
  cr_assert_eq(save(c, path, make_state(130), &err), CKPT_OK, "%s", err.message);
  ckpt_status st = ckpt_checkpointer_wait_until_finished(c, &err);
  cr_assert_eq(st, CKPT_EIO, "got %s: %s", ckpt_status_text(st), err.message);
  cr_assert(strstr(err.message, "syncfs") != NULL, "%s", err.message);
  cr_assert(!exists(path));
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK);
  ckpt_io_free(io);
  unsetenv("CKPT_IO_DURABILITY");
  free(path);
  pt_rmtree(root);
}

/* ---------------------------------------------------------------- many files */

#include <sys/resource.h>

/* Lowers this test process's descriptor limit (the save's batches are a fraction of it). */
static void limit_descriptors(rlim_t n) {
  struct rlimit rl;
  cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
  rl.rlim_cur = n;
  cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

/* Saves t with a sync and then an async checkpointer, each into a new directory, and checks
 * that each restores equal to t. */
static void save_and_restore_sync_and_async(const ckpt_tree *t) {
  ckpt_error err = CKPT_ERROR_INIT;
  for (int async = 0; async < 2; async++) {
    ckpt_checkpointer *c = new_ckptr(async, 2, NULL, NULL);
    char *root = pt_tmpdir();
    char *path = pt_fmt("%s/ckpt", root);
    cr_assert_eq(save(c, path, ckpt_tree_clone(t), &err), CKPT_OK, "%s", err.message);
    cr_assert_eq(ckpt_checkpointer_wait_until_finished(c, &err), CKPT_OK, "%s", err.message);
    restore_equals(c, path, t);
    cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
    free(path);
    pt_rmtree(root);
  }
}

Test(async, many_arrays_do_not_exhaust_file_descriptors) {
  /* 300 arrays are 600 files; with 96 descriptors allowed they can only be written if files are
   * closed as the save goes (all files open at once failed with EMFILE). */
  limit_descriptors(96);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = ckpt_tree_new_dict();
  for (int i = 0; i < 300; i++) {
    char name[16];
    snprintf(name, sizeof name, "w%03d", i);
    int64_t shape[1] = {64};
    ckpt_tree_dict_set(t, name, ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 1, shape,
                                                             (uint32_t)i)),
                       &err);
  }
  cr_assert_eq(err.code, CKPT_OK, "%s", err.message);
  save_and_restore_sync_and_async(t);
  ckpt_tree_free(t);
}

/* The save writes arrays of at most 1 MiB first, in their own batches, then the others
 * (storage/zarr_write.c, write_arrays): with 64 descriptors (batches of 8 files) and every tenth
 * array above 1 MiB, both passes have several batches whose index ranges hold arrays of the
 * other class, which each batch's closing job must skip (a double close, a leaked descriptor
 * or a missed fsync would show as an error, EMFILE or a wrong restore). */
static void save_small_and_large_interleaved(void) {
  limit_descriptors(64);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = ckpt_tree_new_dict();
  for (int i = 0; i < 120; i++) {
    char name[16];
    snprintf(name, sizeof name, "w%03d", i);
    int64_t shape[1] = {i % 10 == 3 ? 300000 : 64 + i}; /* 1.2 MB or a few hundred bytes */
    ckpt_tree_dict_set(t, name, ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 1, shape,
                                                             (uint32_t)i)),
                       &err);
  }
  cr_assert_eq(err.code, CKPT_OK, "%s", err.message);
  save_and_restore_sync_and_async(t);
  ckpt_tree_free(t);
}

Test(async, small_and_large_arrays_interleaved_in_batches_of_both_passes) {
  save_small_and_large_interleaved();
}

Test(async, the_direct_flush_mode_stays_within_64_descriptors_too) {
  /* O_DIRECT files hold two descriptors each (io-engine.md): the batch size must leave room. */
  setenv("CKPT_IO_FLUSH", "direct", 1);
  save_small_and_large_interleaved();
}

/* The snapshot pool (io/staging_pool.h) stays while any async checkpointer lives, so the
 * next save finds it warm, and is unmapped when the last one closes; synchronous checkpointers
 * never build it (they save zero-copy). */
Test(async, the_staging_pool_lives_as_long_as_an_async_checkpointer) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = ckpt_tree_new_dict();
  int64_t shape[2] = {5000, 1024}; /* 20 MB: above the pool's 16 MiB threshold */
  ckpt_tree_dict_set(t, "w", ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 2, shape, 3)),
                     &err);
  char *root = pt_tmpdir();
  char *sync_path = pt_fmt("%s/sync", root), *a_path = pt_fmt("%s/a", root);

  ckpt_checkpointer *s = new_ckptr(false, 2, NULL, NULL);
  cr_assert_eq(save(s, sync_path, ckpt_tree_clone(t), &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_checkpointer_close(s, &err), CKPT_OK, "%s", err.message);
  cr_expect_eq(ckpt_staging_capacity(), 0, "a synchronous save built the staging pool");

  ckpt_checkpointer *a = new_ckptr(true, 2, NULL, NULL);
  ckpt_checkpointer *b = new_ckptr(true, 2, NULL, NULL);
  cr_assert_eq(save(a, a_path, ckpt_tree_clone(t), &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_checkpointer_wait_until_finished(a, &err), CKPT_OK, "%s", err.message);
  size_t warm = ckpt_staging_capacity();
  cr_expect_geq(warm, (size_t)5000 * 1024 * 4, "the pool should hold the 20 MB snapshot");
  restore_equals(a, a_path, t);
  cr_assert_eq(ckpt_checkpointer_close(a, &err), CKPT_OK, "%s", err.message);
  cr_expect_eq(ckpt_staging_capacity(), warm, "b is still open: the pool must stay warm");
  cr_assert_eq(ckpt_checkpointer_close(b, &err), CKPT_OK, "%s", err.message);
  cr_expect_eq(ckpt_staging_capacity(), 0, "the last async checkpointer closed");

  free(sync_path);
  free(a_path);
  pt_rmtree(root);
  ckpt_tree_free(t);
}
