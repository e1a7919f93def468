/* io/snapshot_copy.h — the copies of a snapshot, run in parallel (private to libckpt).
 *
 * Why: the blocking part of an async save is one copy of the state into staging memory, and
 * one thread's memcpy is the floor it is measured against (performance.md: blocking_vs_memcpy).
 * Where a second core is free, copying with it takes that floor down instead of sitting on it.
 *
 * How: a save collects its large copies (ckpt_copy_list_add) while it plans, then runs them at
 * once (ckpt_copy_list_run). The copies are cut into pieces of at most CKPT_COPY_PIECE bytes
 * that the calling thread and up to (cores - 1) function jobs of the save's I/O engine take
 * from one atomic counter. The caller does not wait for helpers to start: once every piece is
 * taken it cancels the helper jobs still queued (a worker dequeues them and does nothing) and
 * waits only for the piece a running helper holds, so on a loaded machine, where no core is
 * free for a helper, the caller simply copies (nearly) everything itself, as before.
 * Small snapshots (under CKPT_COPY_PARALLEL_MIN bytes) or no engine: the caller copies alone.
 * No thread is started outside the engine. */
#ifndef CKPT_SRC_STORAGE_SNAPSHOT_COPY_H
#define CKPT_SRC_STORAGE_SNAPSHOT_COPY_H

#include <stddef.h>
#include <stdint.h>

#include "ckpt/dtype.h"

struct ckpt_engine;

#define CKPT_COPY_PIECE ((size_t)4 << 20)
#define CKPT_COPY_PARALLEL_MIN (UINT64_C(32) << 20)

typedef struct ckpt_copy_item {
  void *dst;
  const void *src;
  ckpt_dtype dst_dtype, src_dtype;
  size_t n; /* elements */
} ckpt_copy_item;

typedef struct ckpt_copy_list {
  ckpt_copy_item *items;
  size_t n, cap;
  uint64_t bytes; /* destination bytes of all items */
} ckpt_copy_list;

/* Queues ckpt_dtype_convert(dst_dtype, dst, src_dtype, src, n); both buffers must stay valid
 * until ckpt_copy_list_run returns. 0, or -1 when out of memory (then copy it yourself). */
int ckpt_copy_list_add(ckpt_copy_list *l, void *dst, ckpt_dtype dst_dtype, const void *src,
                       ckpt_dtype src_dtype, size_t n);
/* Runs every queued copy (engine may be NULL) and empties the list. Cannot fail: when the
 * engine refuses a helper job the caller copies more itself. */
void ckpt_copy_list_run(ckpt_copy_list *l, struct ckpt_engine *engine);
void ckpt_copy_list_free(ckpt_copy_list *l);

#endif
