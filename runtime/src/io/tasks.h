/* io/tasks.h — indexed tasks on the I/O engine: "run fn(ctx, i) for i in [0, n)", with
 * per-worker scratch memory and an optional memory budget per task. The chunk readers of a
 * restore and `ckpt verify` fan out through it; it knows nothing about file formats. */
#ifndef CKPT_IO_TASKS_H
#define CKPT_IO_TASKS_H

#include <stddef.h>
#include <stdint.h>

#include "ckpt/error.h"

/* Per-worker scratch memory, reused across the tasks one worker runs (fresh allocations of
 * large buffers cost page faults on every use). */
typedef struct ckpt_scratch {
  void *data;
  size_t cap;
} ckpt_scratch;

/* Returns a page-aligned buffer of at least n bytes (contents undefined); NULL when memory runs
 * out. */
void *ckpt_scratch_get(ckpt_scratch *s, size_t n);
void ckpt_scratch_free(ckpt_scratch *s);

typedef ckpt_status (*ckpt_task_fn)(void *ctx, size_t index, ckpt_scratch *scratch,
                                    ckpt_error *err);

/* Default worker count for chunk I/O: CKPT_IO_THREADS from the environment, else 4. */
unsigned ckpt_task_threads(void);

struct ckpt_engine;

/* Bytes task i holds in memory or in flight while it is queued or running (its chunk size). */
typedef uint64_t (*ckpt_task_weight_fn)(void *ctx, size_t index);

/* Runs fn(ctx, i) for every i in [0, n) as function jobs of engine (one group; NULL engine:
 * as ckpt_parallel_for). With weight, each task reserves its bytes in the engine's memory
 * budget before it is submitted (the submitting thread blocks while the budget is used up)
 * and releases them when it ends, so a restore's read-ahead stays within the budget. Waits for
 * all of them, so it must not be called from one of the engine's own workers. After a failure
 * the tasks not started yet are canceled; the error of the lowest failing index is returned,
 * so the report does not depend on thread timing. */
ckpt_status ckpt_task_run(struct ckpt_engine *engine, const char *label, size_t n, ckpt_task_fn fn,
                          ckpt_task_weight_fn weight, void *ctx, ckpt_error *err);

/* The same on a short-lived engine of `threads` workers (0 = ckpt_task_threads()), for
 * callers that have no engine (the CLI, verification). */
ckpt_status ckpt_parallel_for(size_t n, unsigned threads, ckpt_task_fn fn, void *ctx,
                              ckpt_error *err);

#endif
