/* io/buffer_pool.h — staging buffers for snapshots (private to libckpt).
 *
 * Why: the blocking part of an async save is one copy of each shard into memory the save owns.
 * Copying into freshly allocated memory costs a page fault per 4 KiB page — several times a
 * memcpy (docs/performance.md, "Figures behind design choices") — so staging memory is allocated once,
 * pre-faulted (every page touched, transparent huge pages requested), and reused across saves.
 * A save that must not copy at all (zero-copy mode) hands the caller's pointers to the engine
 * and does not use the pool.
 *
 * How: one arena of `capacity` bytes, split into 4 KiB pages; a request takes the first run of
 * free pages that fits (first fit, neighbours coalesced on release). Buffers are 4 KiB-aligned
 * (usable with O_DIRECT) and their size is rounded up to whole pages.
 *
 * Exhaustion: ckpt_buffer_pool_acquire blocks until enough contiguous pages are released
 * (normally by the engine finishing writes: pass ckpt_buffer_pool_on_done as a job's on_done).
 * A request larger than the whole arena could never be served from it, so it gets a dedicated
 * mapping of its own (pre-faulted with MAP_POPULATE), unmapped on release — a slow path the
 * stats count, rather than a deadlock or an error. Because a request no larger than the arena
 * always fits once everything is released, acquire cannot block forever unless buffers are
 * never released.
 *
 * Thread-safe: any thread may acquire and release. */
#ifndef CKPT_IO_BUFFER_POOL_H
#define CKPT_IO_BUFFER_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt/error.h"

typedef struct ckpt_buffer_pool ckpt_buffer_pool;

#define CKPT_BUFFER_POOL_PAGE 4096u

typedef struct ckpt_buffer_pool_stats {
  size_t capacity;     /* bytes in the arena */
  size_t in_use;       /* arena bytes handed out now (page-rounded) */
  size_t peak_in_use;
  uint64_t acquires;   /* successful acquires, arena and oversize */
  uint64_t waits;      /* acquires that had to wait for releases */
  uint64_t oversize;   /* requests larger than the arena, served by their own mapping */
} ckpt_buffer_pool_stats;

/* Maps and pre-faults an arena of capacity bytes (rounded up to whole pages; at least one).
 * *out is owned by the caller: release with ckpt_buffer_pool_free. */
ckpt_status ckpt_buffer_pool_new(size_t capacity, ckpt_buffer_pool **out, ckpt_error *err);
/* Unmaps everything. Every buffer must have been released (pointers still held become
 * invalid). NULL is a no-op. */
void ckpt_buffer_pool_free(ckpt_buffer_pool *p);

/* A buffer of at least n bytes (n == 0 gives one page), 4 KiB-aligned, contents unspecified.
 * Blocks while the arena has no room. *buf belongs to the caller until released with
 * ckpt_buffer_pool_release. Fails only with CKPT_ENOMEM (an oversize mapping failed) or
 * CKPT_EINVAL. */
ckpt_status ckpt_buffer_pool_acquire(ckpt_buffer_pool *p, size_t n, void **buf, ckpt_error *err);
/* As acquire, but returns false instead of blocking (and for oversize requests). */
bool ckpt_buffer_pool_try_acquire(ckpt_buffer_pool *p, size_t n, void **buf);
/* Returns a buffer from acquire. NULL is a no-op; a pointer the pool did not hand out is
 * ignored (and counted nowhere) rather than corrupting the arena. */
void ckpt_buffer_pool_release(ckpt_buffer_pool *p, void *buf);
/* Same as release, with the engine's on_done signature (arg is the pool), so a write job can
 * return its staging buffer the moment it is done. */
void ckpt_buffer_pool_on_done(void *pool, void *buf, ckpt_status status);

/* True when buf was handed out by p and not yet released. */
bool ckpt_buffer_pool_owns(ckpt_buffer_pool *p, const void *buf);
void ckpt_buffer_pool_get_stats(ckpt_buffer_pool *p, ckpt_buffer_pool_stats *s);

#endif
