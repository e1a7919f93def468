/* tests/runtime/test_engine.c — the I/O engine under both backends: many concurrent jobs of
 * random sizes verified byte for byte, completed short writes and reads at end of file, the
 * flush strategies, batched directory fsyncs, futures and prerequisites. Every test runs once
 * with io_uring (skipped when the kernel refuses it) and once with pread/pwrite. */
#include "test_engine_util.h"

typedef struct planned_file {
  char *path;
  uint64_t seed;
  size_t size;
  ckpt_engine_file *f;
} planned_file;

typedef struct planned_write {
  size_t file;
  size_t offset, len;
  unsigned char *buf;
} planned_write;

/* Writes nfiles files, each cut into random pieces (1 byte to max_piece), submitted in a
 * shuffled order across files, closed durably; then checks every file on disk. */
static void write_random_files(ckpt_engine *e, const char *dir, size_t nfiles, size_t max_piece,
                               uint64_t seed, ckpt_status expect) {
  uint64_t rs = seed;
  planned_file *files = calloc(nfiles, sizeof *files);
  planned_write *w = NULL;
  size_t nw = 0, capw = 0;
  for (size_t i = 0; i < nfiles; i++) {
    char name[64];
    snprintf(name, sizeof name, "file%03zu.bin", i);
    files[i].path = te_path(dir, name);
    files[i].seed = te_rand(&rs);
    size_t pieces = 1 + te_rand(&rs) % 8, off = 0;
    for (size_t k = 0; k < pieces; k++) {
      size_t len = 1 + te_rand(&rs) % max_piece;
      if (nw == capw) {
        capw = capw ? capw * 2 : 64;
        w = realloc(w, capw * sizeof *w);
      }
      w[nw].file = i;
      w[nw].offset = off;
      w[nw].len = len;
      w[nw].buf = malloc(len);
      te_fill(w[nw].buf, len, files[i].seed, off);
      nw++;
      off += len;
    }
    files[i].size = off;
  }
  for (size_t i = nw; i > 1; i--) { /* Fisher-Yates */
    size_t j = te_rand(&rs) % i;
    planned_write t = w[i - 1];
    w[i - 1] = w[j];
    w[j] = t;
  }
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_engine_group *g;
  cr_assert_eq(ckpt_engine_group_new(e, "random files", &g, &err), CKPT_OK);
  for (size_t i = 0; i < nfiles; i++) {
    cr_assert_eq(ckpt_engine_file_open(g, files[i].path, O_WRONLY | O_CREAT | O_TRUNC, 0644,
                                       CKPT_ENGINE_FILE_DURABLE, &files[i].f, &err),
                 CKPT_OK, "%s", err.message);
  }
  ckpt_future **futs = calloc(nw, sizeof *futs);
  for (size_t i = 0; i < nw; i++) {
    cr_assert_eq(ckpt_engine_write(g, files[w[i].file].f, w[i].buf, w[i].len, w[i].offset, NULL,
                                   &futs[i], &err),
                 CKPT_OK, "%s", err.message);
  }
  for (size_t i = 0; i < nfiles; i++)
    cr_assert_eq(ckpt_engine_file_close(g, files[i].f, NULL, NULL, &err), CKPT_OK);
  ckpt_status st = ckpt_engine_group_wait(g, &err);
  cr_assert_eq(st, expect, "group: %s (%s)", ckpt_status_name(st), err.message);
  if (expect == CKPT_OK) {
    for (size_t i = 0; i < nw; i++) {
      cr_assert(ckpt_future_poll(futs[i]));
      cr_assert_eq(ckpt_future_bytes(futs[i]), w[i].len);
    }
    for (size_t i = 0; i < nfiles; i++) te_check_file(files[i].path, files[i].size, files[i].seed);
  }
  ckpt_engine_group_free(g);
  for (size_t i = 0; i < nw; i++) free(w[i].buf);
  for (size_t i = 0; i < nfiles; i++) free(files[i].path);
  free(w);
  free(files);
  free(futs);
}

BOTH_BACKENDS(many_random_writes_land_byte_for_byte) {
  char *dir = te_mkdtemp();
  ckpt_engine_options o;
  ckpt_engine_options_init(&o);
  o.backend = backend;
  o.threads = 3;
  o.segment_bytes = 64 << 10; /* many pieces per job under io_uring */
  ckpt_engine *e = te_engine(&o);
  int fds_before = te_count_fds();
  write_random_files(e, dir, 24, 300 << 10, 42, CKPT_OK);
  cr_assert_eq(te_count_fds(), fds_before, "descriptors leaked");
  ckpt_engine_stats s;
  ckpt_engine_get_stats(e, &s);
  cr_assert_eq(s.file_fsyncs, 24);
  cr_assert_eq(s.dir_fsyncs, 1, "one directory, one batched fsync (got %llu)",
               (unsigned long long)s.dir_fsyncs);
  cr_assert_eq(s.inflight_bytes, 0);
  ckpt_engine_free(e);
  te_rmdir(dir);
}

BOTH_BACKENDS(short_writes_are_completed) {
  char *dir = te_mkdtemp();
  ckpt_io *io;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
  te_fault fault = {.short_every = 2};
  ckpt_io_set_fault(io, te_fault_hook, &fault);
  ckpt_engine_options o;
  ckpt_engine_options_init(&o);
  o.backend = backend;
  o.io = io;
  o.segment_bytes = 16 << 10;
  ckpt_engine *e = te_engine(&o);
  write_random_files(e, dir, 8, 100 << 10, 7, CKPT_OK);
  cr_assert_gt(atomic_load(&fault.shorts_injected), 10);
  ckpt_engine_stats s;
  ckpt_engine_get_stats(e, &s);
  if (backend == CKPT_ENGINE_BACKEND_URING) {
    /* Each forced short write came back short from the kernel and was finished by another
     * request, the same path a real short write takes. */
    cr_assert_geq(s.short_resubmits, (uint64_t)atomic_load(&fault.shorts_injected));
  }
  /* Every write consulted the hook: more WRITE operations than write jobs. */
  cr_assert_gt(ckpt_io_count(io, CKPT_IO_WRITE), s.jobs_done / 3);
  ckpt_engine_free(e);
  ckpt_io_free(io);
  te_rmdir(dir);
}

BOTH_BACKENDS(reads_return_data_and_stop_at_end_of_file) {
  char *dir = te_mkdtemp();
  char *path = te_path(dir, "data.bin");
  size_t size = (3 << 20) + 12345;
  unsigned char *data = malloc(size);
  te_fill(data, size, 99, 0);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_io_write_file(NULL, path, data, size, false, &err), CKPT_OK);

  ckpt_engine_options o;
  ckpt_engine_options_init(&o);
  o.backend = backend;
  o.segment_bytes = 256 << 10;
  ckpt_engine *e = te_engine(&o);
  ckpt_engine_group *g;
  cr_assert_eq(ckpt_engine_group_new(e, "reads", &g, &err), CKPT_OK);
  ckpt_engine_file *f;
  cr_assert_eq(ckpt_engine_file_open(g, path, O_RDONLY, 0, 0, &f, &err), CKPT_OK);
  /* Random pieces, some crossing the end of the file, one entirely beyond it. */
  enum { N = 40 };
  unsigned char *bufs[N];
  size_t offs[N], lens[N];
  ckpt_future *futs[N];
  uint64_t rs = 5;
  for (int i = 0; i < N; i++) {
    offs[i] = i == N - 1 ? size + 100 : te_rand(&rs) % size;
    lens[i] = 1 + te_rand(&rs) % (1 << 20);
    bufs[i] = malloc(lens[i]);
    cr_assert_eq(ckpt_engine_read(g, f, bufs[i], lens[i], offs[i], NULL, &futs[i], &err),
                 CKPT_OK);
  }
  /* One read of the whole file in a buffer twice as large. */
  unsigned char *all = malloc(2 * size);
  ckpt_future *fall;
  cr_assert_eq(ckpt_engine_read(g, f, all, 2 * size, 0, NULL, &fall, &err), CKPT_OK);
  cr_assert_eq(ckpt_engine_file_close(g, f, NULL, NULL, &err), CKPT_OK);
  cr_assert_eq(ckpt_engine_group_wait(g, &err), CKPT_OK, "%s", err.message);
  for (int i = 0; i < N; i++) {
    size_t want = offs[i] >= size ? 0 : (size - offs[i] < lens[i] ? size - offs[i] : lens[i]);
    cr_assert_eq(ckpt_future_wait(futs[i], &err), CKPT_OK);
    cr_assert_eq(ckpt_future_bytes(futs[i]), want, "read %d: %zu bytes, expected %zu", i,
                 ckpt_future_bytes(futs[i]), want);
    if (want > 0) cr_assert(memcmp(bufs[i], data + offs[i], want) == 0, "read %d differs", i);
    free(bufs[i]);
  }
  cr_assert_eq(ckpt_future_bytes(fall), size);
  cr_assert(memcmp(all, data, size) == 0);
  ckpt_engine_stats s;
  ckpt_engine_get_stats(e, &s);
  cr_assert_eq(s.dir_fsyncs, 0, "a read-only group has nothing to make durable");
  ckpt_engine_group_free(g);
  ckpt_engine_free(e);
  free(all);
  free(data);
  free(path);
  te_rmdir(dir);
}

/* The three durability strategies all produce the right bytes; write-behind flushes while
 * writing; O_DIRECT takes aligned pieces directly and unaligned ones through the buffered
 * twin. */
static void flush_mode(ckpt_engine_backend backend, ckpt_engine_flush flush) {
  char *dir = te_mkdtemp();
  ckpt_engine_options o;
  ckpt_engine_options_init(&o);
  o.backend = backend;
  o.flush = flush;
  o.writebehind_bytes = 128 << 10;
  o.segment_bytes = 64 << 10;
  ckpt_engine *e = te_engine(&o);
  cr_assert_eq(ckpt_engine_flush_used(e), flush);
  char *path = te_path(dir, "flush.bin");
  /* Aligned 4 KiB-multiple pieces from an aligned buffer, then an odd tail. */
  size_t aligned = 2 << 20, tail = 777, size = aligned + tail;
  unsigned char *buf;
  cr_assert_eq(posix_memalign((void **)&buf, 4096, size + 4096), 0);
  te_fill(buf, size, 3, 0);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_engine_group *g;
  cr_assert_eq(ckpt_engine_group_new(e, "flush", &g, &err), CKPT_OK);
  ckpt_engine_file *f;
  cr_assert_eq(ckpt_engine_file_open(g, path, O_WRONLY | O_CREAT | O_TRUNC, 0644,
                                     CKPT_ENGINE_FILE_DURABLE, &f, &err),
               CKPT_OK);
  for (size_t off = 0; off < aligned; off += 256 << 10)
    cr_assert_eq(ckpt_engine_write(g, f, buf + off, 256 << 10, off, NULL, NULL, &err), CKPT_OK);
  cr_assert_eq(ckpt_engine_write(g, f, buf + aligned, tail, aligned, NULL, NULL, &err), CKPT_OK);
  cr_assert_eq(ckpt_engine_file_close(g, f, NULL, NULL, &err), CKPT_OK);
  cr_assert_eq(ckpt_engine_group_wait(g, &err), CKPT_OK, "%s", err.message);
  ckpt_engine_group_free(g);
  te_check_file(path, size, 3);
  ckpt_engine_stats s;
  ckpt_engine_get_stats(e, &s);
  if (flush == CKPT_ENGINE_FLUSH_WRITEBEHIND) cr_assert_geq(s.writebehind_flushes, 8);
  else cr_assert_eq(s.writebehind_flushes, 0);
  cr_assert_eq(s.file_fsyncs, 1);
  ckpt_engine_free(e);
  free(buf);
  free(path);
  te_rmdir(dir);
}

BOTH_BACKENDS(flush_writebehind) { flush_mode(backend, CKPT_ENGINE_FLUSH_WRITEBEHIND); }
BOTH_BACKENDS(flush_end) { flush_mode(backend, CKPT_ENGINE_FLUSH_END); }
BOTH_BACKENDS(flush_direct) { flush_mode(backend, CKPT_ENGINE_FLUSH_DIRECT); }

/* O_DIRECT plus forced short writes: the unaligned remainder must take the buffered path. */
BOTH_BACKENDS(direct_with_short_writes) {
  char *dir = te_mkdtemp();
  ckpt_io *io;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
  te_fault fault = {.short_every = 3};
  ckpt_io_set_fault(io, te_fault_hook, &fault);
  ckpt_engine_options o;
  ckpt_engine_options_init(&o);
  o.backend = backend;
  o.io = io;
  o.flush = CKPT_ENGINE_FLUSH_DIRECT;
  ckpt_engine *e = te_engine(&o);
  char *path = te_path(dir, "direct.bin");
  size_t piece = 12288 + 4096 * 3, n = 16, size = piece * n;
  unsigned char *buf;
  cr_assert_eq(posix_memalign((void **)&buf, 4096, size), 0);
  te_fill(buf, size, 11, 0);
  ckpt_engine_group *g;
  cr_assert_eq(ckpt_engine_group_new(e, "direct short", &g, &err), CKPT_OK);
  ckpt_engine_file *f;
  cr_assert_eq(ckpt_engine_file_open(g, path, O_WRONLY | O_CREAT | O_TRUNC, 0644,
                                     CKPT_ENGINE_FILE_DURABLE, &f, &err),
               CKPT_OK);
  for (size_t i = 0; i < n; i++)
    cr_assert_eq(ckpt_engine_write(g, f, buf + i * piece, piece, i * piece, NULL, NULL, &err),
                 CKPT_OK);
  cr_assert_eq(ckpt_engine_file_close(g, f, NULL, NULL, &err), CKPT_OK);
  cr_assert_eq(ckpt_engine_group_wait(g, &err), CKPT_OK, "%s", err.message);
  cr_assert_gt(atomic_load(&fault.shorts_injected), 0);
  ckpt_engine_group_free(g);
  te_check_file(path, size, 11);
  ckpt_engine_free(e);
  ckpt_io_free(io);
  free(buf);
  free(path);
  te_rmdir(dir);
}

BOTH_BACKENDS(directory_fsyncs_are_batched_per_directory) {
  char *dir = te_mkdtemp();
  char *a = te_path(dir, "a"), *b = te_path(dir, "b");
  cr_assert_eq(mkdir(a, 0777), 0);
  cr_assert_eq(mkdir(b, 0777), 0);
  ckpt_io *io;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
  ckpt_engine_options o;
  ckpt_engine_options_init(&o);
  o.backend = backend;
  o.io = io;
  ckpt_engine *e = te_engine(&o);
  ckpt_engine_group *g;
  cr_assert_eq(ckpt_engine_group_new(e, "dirs", &g, &err), CKPT_OK);
  unsigned char byte = 1;
  for (int i = 0; i < 20; i++) {
    char name[32];
    snprintf(name, sizeof name, "f%d", i);
    char *p = te_path(i % 2 ? a : b, name);
    ckpt_engine_file *f;
    cr_assert_eq(ckpt_engine_file_open(g, p, O_WRONLY | O_CREAT | O_TRUNC, 0644,
                                       CKPT_ENGINE_FILE_DURABLE, &f, &err),
                 CKPT_OK);
    cr_assert_eq(ckpt_engine_write(g, f, &byte, 1, 0, NULL, NULL, &err), CKPT_OK);
    cr_assert_eq(ckpt_engine_file_close(g, f, NULL, NULL, &err), CKPT_OK);
    free(p);
  }
  cr_assert_eq(ckpt_engine_group_note_dir(g, dir, &err), CKPT_OK);
  cr_assert_eq(ckpt_engine_group_note_dir(g, a, &err), CKPT_OK); /* already noted: once */
  cr_assert_eq(ckpt_engine_group_wait(g, &err), CKPT_OK, "%s", err.message);
  ckpt_engine_stats s;
  ckpt_engine_get_stats(e, &s);
  cr_assert_eq(s.file_fsyncs, 20);
  cr_assert_eq(s.dir_fsyncs, 3);
  cr_assert_eq(ckpt_io_count(io, CKPT_IO_FSYNC), 23);
  cr_assert_eq(ckpt_engine_group_note_dir(g, a, &err), CKPT_ESTATE, "noting after the end");
  ckpt_engine_group_free(g);
  ckpt_engine_free(e);
  ckpt_io_free(io);
  free(a);
  free(b);
  te_rmdir(dir);
}

/* ---------------------------------------------------------------- function jobs, futures */

typedef struct gate {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool open;
  atomic_int order[8];
  atomic_int next;
} gate;

static ckpt_status wait_gate(void *arg, ckpt_error *err) {
  (void)err;
  gate *g = arg;
  pthread_mutex_lock(&g->mu);
  while (!g->open) pthread_cond_wait(&g->cv, &g->mu);
  pthread_mutex_unlock(&g->mu);
  g->order[atomic_fetch_add(&g->next, 1)] = 1;
  return CKPT_OK;
}

static ckpt_status record_second(void *arg, ckpt_error *err) {
  (void)err;
  gate *g = arg;
  g->order[atomic_fetch_add(&g->next, 1)] = 2;
  return CKPT_OK;
}

BOTH_BACKENDS(futures_poll_and_prerequisites_order_jobs) {
  ckpt_engine_options o;
  ckpt_engine_options_init(&o);
  o.backend = backend;
  ckpt_engine *e = te_engine(&o);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_engine_group *g;
  cr_assert_eq(ckpt_engine_group_new(e, "futures", &g, &err), CKPT_OK);
  gate gt = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
  ckpt_future *first, *second;
  cr_assert_eq(ckpt_engine_call(g, wait_gate, &gt, NULL, &first, &err), CKPT_OK);
  ckpt_engine_job_opts after = {.after = &first, .n_after = 1, .label = "second"};
  cr_assert_eq(ckpt_engine_call(g, record_second, &gt, &after, &second, &err), CKPT_OK);
  ckpt_engine_group_seal(g);
  cr_assert_not(ckpt_future_poll(first));
  cr_assert_not(ckpt_future_poll(second));
  cr_assert_not(ckpt_engine_group_poll(g));
  /* Sealed: no more jobs. */
  cr_assert_eq(ckpt_engine_call(g, record_second, &gt, NULL, NULL, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "sealed") != NULL, "%s", err.message);
  pthread_mutex_lock(&gt.mu);
  gt.open = true;
  pthread_cond_broadcast(&gt.cv);
  pthread_mutex_unlock(&gt.mu);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_future_wait(second, &err), CKPT_OK);
  cr_assert(ckpt_future_poll(first));
  cr_assert_eq(gt.order[0], 1);
  cr_assert_eq(gt.order[1], 2);
  cr_assert_eq(ckpt_engine_group_wait(g, &err), CKPT_OK);
  cr_assert(ckpt_engine_group_poll(g));
  ckpt_engine_group_free(g);
  ckpt_engine_free(e);
}

static ckpt_status wait_inside_worker(void *arg, ckpt_error *err) {
  return ckpt_engine_group_wait(arg, err);
}

BOTH_BACKENDS(waiting_from_a_worker_is_refused_not_deadlocked) {
  ckpt_engine_options o;
  ckpt_engine_options_init(&o);
  o.backend = backend;
  o.threads = 1;
  ckpt_engine *e = te_engine(&o);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_engine_group *g;
  cr_assert_eq(ckpt_engine_group_new(e, "self wait", &g, &err), CKPT_OK);
  cr_assert_eq(ckpt_engine_call(g, wait_inside_worker, g, NULL, NULL, &err), CKPT_OK);
  cr_assert_eq(ckpt_engine_group_wait(g, &err), CKPT_ESTATE);
  cr_assert(strstr(err.message, "worker") != NULL, "%s", err.message);
  ckpt_engine_group_free(g);
  ckpt_engine_free(e);
}

BOTH_BACKENDS(a_file_never_closed_fails_the_group) {
  char *dir = te_mkdtemp();
  char *path = te_path(dir, "forgotten");
  ckpt_engine_options o;
  ckpt_engine_options_init(&o);
  o.backend = backend;
  ckpt_engine *e = te_engine(&o);
  int fds_before = te_count_fds();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_engine_group *g;
  cr_assert_eq(ckpt_engine_group_new(e, "forgetful save", &g, &err), CKPT_OK);
  ckpt_engine_file *f;
  cr_assert_eq(ckpt_engine_file_open(g, path, O_WRONLY | O_CREAT, 0644, CKPT_ENGINE_FILE_DURABLE,
                                     &f, &err),
               CKPT_OK);
  cr_assert_eq(ckpt_engine_write(g, f, "x", 1, 0, NULL, NULL, &err), CKPT_OK);
  cr_assert_eq(ckpt_engine_group_wait(g, &err), CKPT_ESTATE);
  cr_assert(strstr(err.message, "forgotten") && strstr(err.message, "forgetful save"), "%s",
            err.message);
  ckpt_engine_group_free(g);
  cr_assert_eq(te_count_fds(), fds_before, "the descriptor was released by group_free");
  ckpt_engine_free(e);
  free(path);
  te_rmdir(dir);
}

BOTH_BACKENDS(submission_errors_leave_no_job) {
  char *dir = te_mkdtemp();
  char *path = te_path(dir, "f");
  ckpt_engine_options o;
  ckpt_engine_options_init(&o);
  o.backend = backend;
  ckpt_engine *e = te_engine(&o);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_engine_group *g, *other;
  cr_assert_eq(ckpt_engine_group_new(e, "g", &g, &err), CKPT_OK);
  cr_assert_eq(ckpt_engine_group_new(e, "other", &other, &err), CKPT_OK);
  ckpt_engine_file *f;
  cr_assert_eq(ckpt_engine_file_open(g, path, O_WRONLY | O_CREAT, 0644, 0, &f, &err), CKPT_OK);
  ckpt_future *fo;
  static gate unused_gate;
  cr_assert_eq(ckpt_engine_call(other, record_second, &unused_gate, NULL, &fo, &err), CKPT_OK);
  cr_assert_eq(ckpt_future_wait(fo, &err), CKPT_OK);
  ckpt_engine_job_opts bad = {.after = &fo, .n_after = 1};
  cr_assert_eq(ckpt_engine_write(g, f, "x", 1, 0, &bad, NULL, &err), CKPT_EINVAL);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_engine_write(other, f, "x", 1, 0, NULL, NULL, &err), CKPT_EINVAL);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_engine_write(g, f, NULL, 1, 0, NULL, NULL, &err), CKPT_EINVAL);
  ckpt_error_clear(&err);
  ckpt_engine_file *f2 = (ckpt_engine_file *)1;
  cr_assert_eq(ckpt_engine_file_open(g, path, 0, 0, 0x80, &f2, &err), CKPT_EINVAL);
  cr_assert_null(f2);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_engine_file_close(g, f, NULL, NULL, &err), CKPT_OK);
  cr_assert_eq(ckpt_engine_write(g, f, "x", 1, 0, NULL, NULL, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "closed") != NULL, "%s", err.message);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_engine_group_wait(g, &err), CKPT_OK, "%s", err.message);
  ckpt_engine_stats s;
  ckpt_engine_get_stats(e, &s);
  cr_assert_eq(s.jobs_done, 3, "open, close and the other group's call ran, nothing else");
  ckpt_engine_group_free(g);
  ckpt_engine_free(e); /* frees the group left over, `other` */
  free(path);
  te_rmdir(dir);
}
