/* io/tasks.c — indexed tasks (chunk reads, verifications) as function jobs of the I/O engine.
 *
 * Chunk I/O is many independent pieces of similar size. They run on the engine of the
 * save/restore (io/engine.h), the one executor of libckpt, so that a checkpointer's saves,
 * restores and their fsyncs share one bounded set of worker threads instead of each call
 * starting threads of its own. Each task borrows a per-worker scratch buffer from a small set
 * owned by the call (at most ckpt_engine_threads() tasks of one call run at once), so large
 * scratch allocations are reused across tasks. ckpt_parallel_for keeps its old contract for
 * callers without an engine (the CLI, verification): it runs the tasks on a short-lived engine. */
#include "io/tasks.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/engine.h"

void *ckpt_scratch_get(ckpt_scratch *s, size_t n) {
  if (n == 0)
    n = 1;
  if (s->cap >= n)
    return s->data;
  /* Page-aligned: chunks are read into scratch from file offset 0, and the kernel copies into
   * a destination misaligned with the file offset 2-3x slower (io/read_copy.h); malloc's
   * large blocks sit 16 bytes past a page boundary. */
  void *p = NULL;
  if (posix_memalign(&p, 4096, n) != 0)
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

typedef struct task_run {
  ckpt_task_fn fn;
  void *ctx;
  size_t n;
  pthread_mutex_t mu;
  ckpt_scratch *slots; /* free scratch buffers: slots[0 .. n_free) */
  size_t n_free;
  size_t err_index; /* lowest failing index so far (n when none) */
  ckpt_error err;
} task_run;

typedef struct task_item {
  task_run *run;
  size_t index;
  ckpt_engine *engine;
  uint64_t reserved; /* budget held while the task is queued or running */
} task_item;

/* on_done of every task (also a canceled one): its share of the memory budget goes back. */
static void item_done(void *arg, void *buf, ckpt_status status) {
  (void)buf;
  (void)status;
  task_item *it = arg;
  if (it->reserved > 0)
    ckpt_engine_unreserve(it->engine, it->reserved);
  it->reserved = 0;
}

static ckpt_status run_item(void *arg, ckpt_error *err) {
  task_item *it = arg;
  task_run *r = it->run;
  ckpt_scratch scratch = {NULL, 0};
  pthread_mutex_lock(&r->mu);
  if (r->n_free > 0)
    scratch = r->slots[--r->n_free];
  pthread_mutex_unlock(&r->mu);
  ckpt_error e = CKPT_ERROR_INIT;
  ckpt_status st = r->fn(r->ctx, it->index, &scratch, &e);
  if (st != CKPT_OK && e.code == CKPT_OK)
    ckpt_error_set(&e, st, "task %zu failed", it->index);
  pthread_mutex_lock(&r->mu);
  r->slots[r->n_free++] = scratch; /* never more than were taken out */
  if (st != CKPT_OK && it->index < r->err_index) {
    r->err_index = it->index;
    r->err = e;
  }
  pthread_mutex_unlock(&r->mu);
  if (st != CKPT_OK && err != NULL)
    *err = e; /* fails the group: tasks not started yet are canceled */
  return st;
}

ckpt_status ckpt_task_run(ckpt_engine *engine, const char *label, size_t n, ckpt_task_fn fn,
                          ckpt_task_weight_fn weight, void *ctx, ckpt_error *err) {
  if (n == 0)
    return CKPT_OK;
  if (engine == NULL)
    return ckpt_parallel_for(n, 0, fn, ctx, err); /* no budget without an engine to hold it */
  task_run r;
  memset(&r, 0, sizeof r);
  r.fn = fn;
  r.ctx = ctx;
  r.n = n;
  r.err_index = n;
  size_t nslots = ckpt_engine_threads(engine);
  if (nslots == 0)
    nslots = 1;
  r.slots = calloc(nslots, sizeof *r.slots);
  task_item *items = malloc(n * sizeof *items);
  if (r.slots == NULL || items == NULL) {
    free(r.slots);
    free(items);
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory planning %zu tasks", label, n);
  }
  r.n_free = nslots;
  if (pthread_mutex_init(&r.mu, NULL) != 0) {
    free(r.slots);
    free(items);
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: cannot create a lock", label);
  }
  ckpt_engine_group *g = NULL;
  ckpt_error gerr = CKPT_ERROR_INIT;
  ckpt_status st = ckpt_engine_group_new(engine, label, &g, &gerr);
  for (size_t i = 0; st == CKPT_OK && i < n; i++) {
    items[i] = (task_item){&r, i, engine, weight != NULL ? weight(ctx, i) : 0};
    /* Blocks while the engine's memory budget is used up: read-ahead stays within it. */
    if (items[i].reserved > 0)
      ckpt_engine_reserve(engine, items[i].reserved);
    ckpt_engine_job_opts o = {.on_done = item_done, .on_done_arg = &items[i], .label = label};
    st = ckpt_engine_call(g, run_item, &items[i], &o, NULL, &gerr);
    if (st != CKPT_OK) {
      item_done(&items[i], NULL, st); /* not submitted: its on_done will not run */
      ckpt_engine_group_cancel(g);
    }
  }
  if (g != NULL) {
    ckpt_status wst = ckpt_engine_group_wait(g, st == CKPT_OK ? &gerr : NULL);
    if (st == CKPT_OK)
      st = wst;
    ckpt_engine_group_free(g);
  }
  /* The lowest failing index is reported, so the message does not depend on thread timing;
   * a failure outside the tasks (submission, the engine) is reported as it is. */
  ckpt_status result = CKPT_OK;
  if (r.err_index < n) {
    result = r.err.code;
    if (err != NULL && err->code == CKPT_OK)
      *err = r.err;
  } else if (st != CKPT_OK) {
    result = st;
    if (err != NULL && err->code == CKPT_OK)
      *err = gerr;
  }
  for (size_t i = 0; i < r.n_free; i++)
    ckpt_scratch_free(&r.slots[i]);
  pthread_mutex_destroy(&r.mu);
  free(r.slots);
  free(items);
  return result;
}

ckpt_status ckpt_parallel_for(size_t n, unsigned threads, ckpt_task_fn fn, void *ctx,
                              ckpt_error *err) {
  if (n == 0)
    return CKPT_OK;
  ckpt_engine_options o;
  ckpt_engine_options_init(&o);
  o.threads = threads; /* 0: CKPT_IO_THREADS or the engine's default */
  if (threads == 0) {
    unsigned t = ckpt_task_threads();
    o.threads = t;
  }
  if (o.threads > n)
    o.threads = (unsigned)n;
  /* Function jobs only: the pwrite backend avoids setting up io_uring rings for nothing. */
  o.backend = CKPT_ENGINE_BACKEND_PWRITE;
  ckpt_engine *e = NULL;
  ckpt_status st = ckpt_engine_new(&o, &e, err);
  if (st != CKPT_OK)
    return st;
  st = ckpt_task_run(e, "parallel tasks", n, fn, NULL, ctx, err);
  ckpt_engine_free(e);
  return st;
}
