/* io/staging_pool.h — staging memory for save snapshots.
 *
 * The blocking part of a save is one copy of every shard. Copying into freshly malloc'ed
 * memory costs a page fault per 4 KiB page, several times the copy itself (docs/performance.md,
 * "Figures behind design choices"), so snapshots are taken into a process-wide, pre-faulted buffer pool
 * (io/buffer_pool.h) that is reused from one save to the next. The pool is sized to the largest
 * snapshot seen (up to CKPT_STAGING_MAX_BYTES, default a quarter of physical memory) and only
 * resized while no buffer is out; whatever does not fit falls back to malloc, so staging never
 * blocks and never fails where malloc would not. It lives while an async checkpointer does
 * (ckpt_staging_retain). Thread-safe. */
#ifndef CKPT_STORAGE_ZARR_STAGING_H
#define CKPT_STORAGE_ZARR_STAGING_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The pool's users: every async checkpointer retains it while it lives (ckpt_checkpointer_new,
 * ckpt_checkpointer_close). When the last one drops it and no buffer is out (or later, when
 * the last buffer comes back), the pool is unmapped: a process that stops checkpointing gets
 * its memory back, one that keeps an async checkpointer open keeps the pool warm. */
void ckpt_staging_retain(void);
void ckpt_staging_drop(void);
/* Bytes the pool holds now (0 when it has none); for tests and statistics. */
size_t ckpt_staging_capacity(void);
/* The same, and how many pools were built and buffers handed out from one since the process
 * started (tests: a save used the pool a hint prepared, and built none of its own). */
typedef struct ckpt_staging_stats {
  size_t capacity;
  uint64_t pools_built;
  uint64_t pooled_acquires;
} ckpt_staging_stats;
void ckpt_staging_get_stats(ckpt_staging_stats *s);

/* Smaller buffers come from malloc (cheap, and warm after the first save). */
#define CKPT_STAGING_MIN_POOLED ((size_t)64 << 10)

/* Announces that a snapshot of about `total` bytes is coming, so the pool can grow (only while
 * it is idle) before the buffers are taken. The pool is built (mapped and pre-faulted) without
 * holding the pool's lock; a prepare that finds another one building waits for it and then
 * grows the pool only if it is still too small. */
void ckpt_staging_prepare(uint64_t total);

/* Preparing the pool off the caller's path (ckpt_checkpointer_options.snapshot_bytes_hint):
 * the first async save of a process otherwise faults its whole staging pool in while the
 * caller waits (0.39 s for 1.06 GiB against a 0.067 s memcpy, docs/performance.md
 * "No slow first save"). ckpt_staging_prepare_start runs ckpt_staging_prepare(bytes) on a
 * thread of its own (nothing when bytes is 0 or no thread can be started); the owner must
 * ckpt_staging_prepare_join it before dropping its ckpt_staging_retain. From the start on, a
 * ckpt_staging_prepare (a save) waits until the hint's pool is built (the rest of the
 * faulting, not all of it) and then grows the pool only if the hint was too small, so one
 * pool is built, whichever thread gets to run first. Hints under 16 MiB build nothing (such
 * snapshots are malloc'ed). The struct is the owner's (a checkpointer's member); not copyable
 * while started. */
typedef struct ckpt_staging_preparer {
  pthread_t thread;
  bool started;
  atomic_bool done; /* the preparation finished (or never started) */
  uint64_t bytes;
} ckpt_staging_preparer;

void ckpt_staging_prepare_start(ckpt_staging_preparer *pr, uint64_t bytes);
/* True once the pool of the hint is ready (or nothing was started). */
bool ckpt_staging_prepare_done(ckpt_staging_preparer *pr);
void ckpt_staging_prepare_join(ckpt_staging_preparer *pr);

/* A buffer of n bytes (contents unspecified) or NULL when memory runs out. *pooled tells which
 * release it needs; pass it back to ckpt_staging_release. */
void *ckpt_staging_acquire(size_t n, bool *pooled);
void ckpt_staging_release(void *buf, bool pooled);

#endif
