/* tests/runtime/test_buffer_pool.c — the staging-buffer pool: alignment and sizes, first fit
 * and coalescing, blocking acquire woken by a release from another thread, oversize requests,
 * and reuse across saves when the engine returns buffers through on_done. */
#include <pthread.h>
#include <stdint.h>

#include "io/buffer_pool.h"
#include "test_engine_util.h"

#define KiB ((size_t)1024)

static ckpt_buffer_pool *new_pool(size_t cap) {
  ckpt_buffer_pool *p;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_buffer_pool_new(cap, &p, &err), CKPT_OK, "%s", err.message);
  return p;
}

Test(buffer_pool, buffers_are_aligned_disjoint_and_writable) {
  ckpt_buffer_pool *p = new_pool(1 << 20);
  ckpt_error err = CKPT_ERROR_INIT;
  void *b[6];
  size_t sizes[6] = {1, 4096, 4097, 0, 100 * KiB, 3};
  for (int i = 0; i < 6; i++) {
    cr_assert_eq(ckpt_buffer_pool_acquire(p, sizes[i], &b[i], &err), CKPT_OK);
    cr_assert_eq((uintptr_t)b[i] % 4096, 0, "buffer %d is not 4 KiB-aligned", i);
    memset(b[i], i + 1, sizes[i]);
    cr_assert(ckpt_buffer_pool_owns(p, b[i]));
  }
  for (int i = 0; i < 6; i++) {
    const unsigned char *c = b[i];
    for (size_t k = 0; k < sizes[i]; k++) cr_assert_eq(c[k], i + 1, "buffers overlap");
  }
  ckpt_buffer_pool_stats s;
  ckpt_buffer_pool_get_stats(p, &s);
  /* 1 + 1 + 2 + 1 + 25 + 1 pages */
  cr_assert_eq(s.in_use, 31 * 4096);
  for (int i = 0; i < 6; i++) ckpt_buffer_pool_release(p, b[i]);
  ckpt_buffer_pool_get_stats(p, &s);
  cr_assert_eq(s.in_use, 0);
  cr_assert_eq(s.peak_in_use, 31 * 4096);
  cr_assert_not(ckpt_buffer_pool_owns(p, b[0]));
  ckpt_buffer_pool_release(p, b[0]); /* double release: ignored */
  int local;
  ckpt_buffer_pool_release(p, &local); /* foreign pointer: ignored */
  ckpt_buffer_pool_get_stats(p, &s);
  cr_assert_eq(s.in_use, 0);
  ckpt_buffer_pool_free(p);
}

Test(buffer_pool, freed_runs_coalesce_so_the_whole_arena_fits_again) {
  ckpt_buffer_pool *p = new_pool(64 * KiB);
  void *b[16];
  for (int i = 0; i < 16; i++) cr_assert(ckpt_buffer_pool_try_acquire(p, 4 * KiB, &b[i]));
  void *extra;
  cr_assert_not(ckpt_buffer_pool_try_acquire(p, 1, &extra), "the arena is full");
  /* Release in an order that needs merges on both sides. */
  static const int order[16] = {3, 5, 4, 0, 15, 1, 2, 14, 7, 9, 8, 6, 13, 11, 12, 10};
  for (int i = 0; i < 16; i++) ckpt_buffer_pool_release(p, b[order[i]]);
  void *all;
  cr_assert(ckpt_buffer_pool_try_acquire(p, 64 * KiB, &all), "free runs did not coalesce");
  cr_assert_eq(all, b[0], "first fit starts at the arena's start");
  ckpt_buffer_pool_release(p, all);
  ckpt_buffer_pool_free(p);
}

typedef struct releaser {
  ckpt_buffer_pool *p;
  void *buf;
} releaser;

static void *release_later(void *arg) {
  releaser *r = arg;
  /* Wait until the main thread is blocked in acquire (waits counter), then release. */
  for (;;) {
    ckpt_buffer_pool_stats s;
    ckpt_buffer_pool_get_stats(r->p, &s);
    if (s.waits > 0) break;
    sched_yield();
  }
  ckpt_buffer_pool_release(r->p, r->buf);
  return NULL;
}

Test(buffer_pool, acquire_blocks_until_a_release, .timeout = 60) {
  ckpt_buffer_pool *p = new_pool(32 * KiB);
  ckpt_error err = CKPT_ERROR_INIT;
  void *first;
  cr_assert_eq(ckpt_buffer_pool_acquire(p, 32 * KiB, &first, &err), CKPT_OK);
  releaser r = {p, first};
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, release_later, &r), 0);
  void *second;
  cr_assert_eq(ckpt_buffer_pool_acquire(p, 16 * KiB, &second, &err), CKPT_OK);
  pthread_join(t, NULL);
  cr_assert_eq(second, first, "the released run was reused");
  ckpt_buffer_pool_stats s;
  ckpt_buffer_pool_get_stats(p, &s);
  cr_assert_eq(s.waits, 1);
  ckpt_buffer_pool_release(p, second);
  ckpt_buffer_pool_free(p);
}

Test(buffer_pool, a_request_larger_than_the_arena_gets_its_own_mapping) {
  ckpt_buffer_pool *p = new_pool(16 * KiB);
  ckpt_error err = CKPT_ERROR_INIT;
  void *big;
  cr_assert_eq(ckpt_buffer_pool_acquire(p, 1 << 20, &big, &err), CKPT_OK);
  memset(big, 7, 1 << 20);
  cr_assert(ckpt_buffer_pool_owns(p, big));
  void *no;
  cr_assert_not(ckpt_buffer_pool_try_acquire(p, 1 << 20, &no));
  ckpt_buffer_pool_stats s;
  ckpt_buffer_pool_get_stats(p, &s);
  cr_assert_eq(s.oversize, 1);
  cr_assert_eq(s.in_use, 0, "oversize buffers are not arena bytes");
  ckpt_buffer_pool_release(p, big);
  cr_assert_not(ckpt_buffer_pool_owns(p, big));
  /* One left unreleased: freed with the pool (ASan checks nothing leaks). */
  cr_assert_eq(ckpt_buffer_pool_acquire(p, 1 << 20, &big, &err), CKPT_OK);
  ckpt_buffer_pool_free(p);
}

Test(buffer_pool, bad_arguments) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_buffer_pool_new(1, NULL, &err), CKPT_EINVAL);
  ckpt_buffer_pool *p = new_pool(4096);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_buffer_pool_acquire(p, 1, NULL, &err), CKPT_EINVAL);
  ckpt_buffer_pool_free(p);
  ckpt_buffer_pool_free(NULL);
}

/* Three saves through the engine, each of 4 MiB in 256 KiB chunks, through a 1 MiB pool: the
 * snapshot copies block until writes return buffers (on_done), the same arena addresses serve
 * every save, and every file is right. */
Test(buffer_pool, reused_across_saves_through_the_engine, .timeout = 120) {
  char *dir = te_mkdtemp();
  ckpt_buffer_pool *p = new_pool(1 << 20);
  ckpt_engine_options o;
  ckpt_engine_options_init(&o);
  ckpt_engine *e = te_engine(&o);
  ckpt_error err = CKPT_ERROR_INIT;
  size_t chunk = 256 * KiB, n = 16, size = chunk * n;
  unsigned char *state = malloc(size);
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  for (int save = 0; save < 3; save++) {
    te_fill(state, size, (uint64_t)save, 0);
    char name[32];
    snprintf(name, sizeof name, "step%d", save);
    char *path = te_path(dir, name);
    ckpt_engine_group *g;
    cr_assert_eq(ckpt_engine_group_new(e, name, &g, &err), CKPT_OK);
    ckpt_engine_file *f;
    cr_assert_eq(ckpt_engine_file_open(g, path, O_WRONLY | O_CREAT | O_TRUNC, 0644,
                                       CKPT_ENGINE_FILE_DURABLE, &f, &err),
                 CKPT_OK);
    ckpt_engine_job_opts opts = {.on_done = ckpt_buffer_pool_on_done, .on_done_arg = p};
    for (size_t i = 0; i < n; i++) {
      void *b;
      cr_assert_eq(ckpt_buffer_pool_acquire(p, chunk, &b, &err), CKPT_OK);
      if ((uintptr_t)b < lo) lo = (uintptr_t)b;
      if ((uintptr_t)b > hi) hi = (uintptr_t)b;
      memcpy(b, state + i * chunk, chunk); /* the snapshot */
      cr_assert_eq(ckpt_engine_write(g, f, b, chunk, i * chunk, &opts, NULL, &err), CKPT_OK);
    }
    /* The caller may change its state now: the save owns copies. */
    memset(state, 0, size);
    cr_assert_eq(ckpt_engine_file_close(g, f, NULL, NULL, &err), CKPT_OK);
    cr_assert_eq(ckpt_engine_group_wait(g, &err), CKPT_OK, "%s", err.message);
    ckpt_engine_group_free(g);
    te_check_file(path, size, (uint64_t)save);
    free(path);
    ckpt_buffer_pool_stats s;
    ckpt_buffer_pool_get_stats(p, &s);
    cr_assert_eq(s.in_use, 0, "every buffer came back");
  }
  ckpt_buffer_pool_stats s;
  ckpt_buffer_pool_get_stats(p, &s);
  cr_assert_eq(s.acquires, 3 * n);
  cr_assert_eq(s.oversize, 0);
  cr_assert_leq(s.peak_in_use, (size_t)1 << 20);
  cr_assert_leq(hi + chunk - lo, (uintptr_t)1 << 20, "all buffers came from the one arena");
  ckpt_engine_free(e);
  ckpt_buffer_pool_free(p);
  free(state);
  te_rmdir(dir);
}
