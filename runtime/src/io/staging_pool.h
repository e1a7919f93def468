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

/* Smaller buffers come from malloc (cheap, and warm after the first save). */
#define CKPT_STAGING_MIN_POOLED ((size_t)64 << 10)

/* Announces that a snapshot of about `total` bytes is coming, so the pool can grow (only while
 * it is idle) before the buffers are taken. */
void ckpt_staging_prepare(uint64_t total);

/* A buffer of n bytes (contents unspecified) or NULL when memory runs out. *pooled tells which
 * release it needs; pass it back to ckpt_staging_release. */
void *ckpt_staging_acquire(size_t n, bool *pooled);
void ckpt_staging_release(void *buf, bool pooled);

#endif
