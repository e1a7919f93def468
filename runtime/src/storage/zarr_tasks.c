/* storage/zarr_tasks.c — a minimal parallel-for for chunk reads and writes.
 *
 * Chunk I/O is many independent pieces of work of similar size; a shared atomic counter hands
 * out indices to a few threads started for the duration of one call. Threads live only as
 * long as the call, so there is nothing to shut down and no global state. */
#include "storage/zarr_io.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

void *ckpt_scratch_get(ckpt_scratch *s, size_t n) {
  if (n == 0)
    n = 1;
  if (s->cap >= n)
    return s->data;
  void *p = malloc(n);
  if (p == NULL)
    return NULL;
  free(s->data);
  s->data = p;
  s->cap = n;
  return p;
}

void ckpt_scratch_free(ckpt_scratch *s) {
  free(s->data);
  s->data = NULL;
  s->cap = 0;
}

unsigned ckpt_task_threads(void) {
  const char *e = getenv("CKPT_IO_THREADS");
  if (e != NULL && *e != '\0') {
    char *end;
    long v = strtol(e, &end, 10);
    if (*end == '\0' && v >= 1 && v <= 256)
      return (unsigned)v;
  }
  return 4;
}

typedef struct pf_state {
  size_t n;
  ckpt_task_fn fn;
  void *ctx;
  atomic_size_t next;
  atomic_bool stop;
  pthread_mutex_t mu;
  size_t err_index; /* lowest failing index so far (n when none) */
  ckpt_error err;
} pf_state;

static void *pf_worker(void *arg) {
  pf_state *s = arg;
  ckpt_scratch scratch = {NULL, 0};
  for (;;) {
    if (atomic_load(&s->stop))
      break;
    size_t i = atomic_fetch_add(&s->next, 1);
    if (i >= s->n)
      break;
    ckpt_error e = CKPT_ERROR_INIT;
    ckpt_status st = s->fn(s->ctx, i, &scratch, &e);
    if (st != CKPT_OK) {
      if (e.code == CKPT_OK)
        ckpt_error_set(&e, st, "task %zu failed", i);
      pthread_mutex_lock(&s->mu);
      if (i < s->err_index) {
        s->err_index = i;
        s->err = e;
      }
      pthread_mutex_unlock(&s->mu);
      atomic_store(&s->stop, true);
    }
  }
  ckpt_scratch_free(&scratch);
  return NULL;
}

ckpt_status ckpt_parallel_for(size_t n, unsigned threads, ckpt_task_fn fn, void *ctx,
                              ckpt_error *err) {
  if (n == 0)
    return CKPT_OK;
  if (threads == 0)
    threads = ckpt_task_threads();
  if (threads > n)
    threads = (unsigned)n;
  pf_state s;
  s.n = n;
  s.fn = fn;
  s.ctx = ctx;
  atomic_init(&s.next, 0);
  atomic_init(&s.stop, false);
  s.err_index = n;
  ckpt_error_clear(&s.err);
  if (pthread_mutex_init(&s.mu, NULL) != 0)
    return ckpt_error_set(err, CKPT_ENOMEM, "parallel_for: cannot create a mutex");
  pthread_t tids[256];
  unsigned started = 0;
  /* The calling thread works too, so threads-1 helpers; if a thread cannot be created the
   * others (at least the caller) still finish the work. */
  for (unsigned t = 1; t < threads && t < 256; t++) {
    if (pthread_create(&tids[started], NULL, pf_worker, &s) != 0)
      break;
    started++;
  }
  pf_worker(&s);
  for (unsigned t = 0; t < started; t++)
    pthread_join(tids[t], NULL);
  pthread_mutex_destroy(&s.mu);
  if (s.err_index < n) {
    if (err != NULL && err->code == CKPT_OK)
      *err = s.err;
    return s.err.code;
  }
  return CKPT_OK;
}
