/* io/staging_pool.c — the process-wide snapshot staging pool (see staging_pool.h for why).
 * The only global state of the PyTree engine: a cache of pre-faulted memory, never an error. */
#include "io/staging_pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "io/buffer_pool.h"

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static ckpt_buffer_pool *g_pool; /* replaced only when idle; freed when unused */
static size_t g_capacity;
static size_t g_out;   /* pooled buffers handed out and not yet released */
static size_t g_users; /* async checkpointers alive (ckpt_staging_retain) */
/* A pool is being built outside g_mu (faulting a gigabyte takes a third of a second or more,
 * and nothing else should wait on the lock meanwhile); whoever wants to prepare one too waits
 * on g_built instead of building a second. g_hints counts hint threads started and not yet
 * in prepare (ckpt_staging_prepare_start): saves wait for them too. */
static bool g_preparing;
static size_t g_hints;
static uint64_t g_built_count;    /* pools built since the process started (statistics) */
static uint64_t g_pooled_count;   /* buffers handed out from a pool (statistics) */
static pthread_cond_t g_built = PTHREAD_COND_INITIALIZER;

/* Unmaps the pool once nobody will use it again soon: no async checkpointer and no buffer out
 * (g_mu held). A save through a handler called without a checkpointer builds the pool for
 * itself and gives it back when its last buffer returns. */
static void free_if_unused_locked(void) {
  if (g_users == 0 && g_out == 0 && g_pool != NULL) {
    ckpt_buffer_pool_free(g_pool);
    g_pool = NULL;
    g_capacity = 0;
  }
}

void ckpt_staging_retain(void) {
  pthread_mutex_lock(&g_mu);
  g_users++;
  pthread_mutex_unlock(&g_mu);
}

void ckpt_staging_drop(void) {
  pthread_mutex_lock(&g_mu);
  if (g_users > 0)
    g_users--;
  free_if_unused_locked();
  pthread_mutex_unlock(&g_mu);
}

size_t ckpt_staging_capacity(void) {
  pthread_mutex_lock(&g_mu);
  size_t c = g_capacity;
  pthread_mutex_unlock(&g_mu);
  return c;
}

void ckpt_staging_get_stats(ckpt_staging_stats *s) {
  pthread_mutex_lock(&g_mu);
  s->capacity = g_capacity;
  s->pools_built = g_built_count;
  s->pooled_acquires = g_pooled_count;
  pthread_mutex_unlock(&g_mu);
}

static uint64_t max_bytes(void) {
  const char *e = getenv("CKPT_STAGING_MAX_BYTES");
  if (e != NULL && *e != '\0') {
    char *end;
    unsigned long long v = strtoull(e, &end, 10);
    if (*end == '\0')
      return v;
  }
  long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || psize <= 0)
    return UINT64_C(1) << 30;
  return (uint64_t)pages * (uint64_t)psize / 4;
}

/* The size a prepare of `total` bytes builds, or 0 for none: small snapshots are cheap to
 * malloc, a pool is worth it for large ones only. */
static uint64_t pool_size_for(uint64_t total) {
  if (total < (UINT64_C(16) << 20))
    return 0;
  uint64_t limit = max_bytes();
  if (total > limit)
    total = limit;
  return total < (UINT64_C(16) << 20) ? 0 : total;
}

/* hinted: called by a hint's thread, which holds one count of g_hints (taken when the
 * checkpointer started it) and gives it back here. Other callers wait while a hint is pending
 * or a pool is being built, so a save that follows its checkpointer's creation finds the
 * hint's pool (or a larger one it then builds) instead of racing it. */
static void prepare(uint64_t total, bool hinted) {
  total = pool_size_for(total);
  pthread_mutex_lock(&g_mu);
  if (hinted)
    g_hints--;
  while (g_preparing || (!hinted && g_hints > 0))
    pthread_cond_wait(&g_built, &g_mu);
  if (total > 0 && g_out == 0 && total > g_capacity) {
    ckpt_buffer_pool_free(g_pool);
    g_pool = NULL;
    g_capacity = 0;
    g_preparing = true;
    pthread_mutex_unlock(&g_mu);
    /* Built unlocked: acquires meanwhile find no pool and fall back to malloc, as before. */
    ckpt_buffer_pool *p = NULL;
    ckpt_error err = CKPT_ERROR_INIT;
    bool made = ckpt_buffer_pool_new((size_t)total, &p, &err) == CKPT_OK;
    pthread_mutex_lock(&g_mu);
    /* No pooled buffer can be out (there was no pool while building) and no other prepare
     * built one (they wait on g_preparing): install it. On failure staging uses malloc. */
    if (made) {
      g_pool = p;
      g_capacity = (size_t)total;
      g_built_count++;
    }
    g_preparing = false;
  }
  pthread_cond_broadcast(&g_built); /* g_preparing or g_hints changed */
  pthread_mutex_unlock(&g_mu);
}

void ckpt_staging_prepare(uint64_t total) {
  if (pool_size_for(total) > 0)
    prepare(total, false);
}

static void *prepare_thread(void *arg) {
  ckpt_staging_preparer *pr = arg;
  prepare(pr->bytes, true);
  atomic_store(&pr->done, true);
  return NULL;
}

void ckpt_staging_prepare_start(ckpt_staging_preparer *pr, uint64_t bytes) {
  pr->bytes = bytes;
  pr->started = false;
  atomic_init(&pr->done, true);
  if (pool_size_for(bytes) == 0)
    return; /* nothing a pool would be built for: ready at once */
  atomic_store(&pr->done, false);
  pthread_mutex_lock(&g_mu);
  g_hints++; /* from now on, saves wait for this hint's pool (prepare) */
  pthread_mutex_unlock(&g_mu);
  if (pthread_create(&pr->thread, NULL, prepare_thread, pr) == 0) {
    pr->started = true;
    return;
  }
  /* No thread (the process is out of them): the first save prepares the pool itself, as
   * without a hint. */
  pthread_mutex_lock(&g_mu);
  g_hints--;
  pthread_cond_broadcast(&g_built);
  pthread_mutex_unlock(&g_mu);
  atomic_store(&pr->done, true);
}

bool ckpt_staging_prepare_done(ckpt_staging_preparer *pr) { return atomic_load(&pr->done); }

void ckpt_staging_prepare_join(ckpt_staging_preparer *pr) {
  if (pr->started) {
    pthread_join(pr->thread, NULL);
    pr->started = false;
  }
}

void *ckpt_staging_acquire(size_t n, bool *pooled) {
  *pooled = false;
  pthread_mutex_lock(&g_mu);
  void *buf = NULL;
  if (g_pool != NULL && n >= CKPT_STAGING_MIN_POOLED &&
      ckpt_buffer_pool_try_acquire(g_pool, n, &buf)) {
    g_out++;
    g_pooled_count++;
    *pooled = true;
  }
  pthread_mutex_unlock(&g_mu);
  if (buf != NULL)
    return buf;
  return malloc(n > 0 ? n : 1);
}

void ckpt_staging_release(void *buf, bool pooled) {
  if (buf == NULL)
    return;
  if (!pooled) {
    free(buf);
    return;
  }
  pthread_mutex_lock(&g_mu);
  ckpt_buffer_pool_release(g_pool, buf);
  g_out--;
  free_if_unused_locked();
  pthread_mutex_unlock(&g_mu);
}
