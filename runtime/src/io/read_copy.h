/* io/read_copy.h — reading file bytes into a destination whose address is not aligned
 * with the file offset (private to libckpt).
 *
 * Why: a read() copies from page-cache pages into the destination with the kernel's
 * `rep movsb`, which on CPUs with ERMS + FSRM runs at a fraction of its speed when destination
 * and file offset differ modulo 32 bytes (docs/performance.md, "Misaligned destinations", has
 * the figures). glibc's malloc returns large blocks 16
 * bytes past a page boundary, so nearly every caller-allocated restore target, read at file
 * offset 0, is in the slow case. The remedy: read into a bounce buffer aligned like the file
 * offset (the kernel's copy is then fast; the buffer stays in the core's cache) and copy from
 * there with 16-byte loads and non-temporal stores, which do not care about the destination's
 * alignment and do not pull its lines into the cache. That beats the direct read into a
 * misaligned destination; the direct read stays for aligned destinations, where it is fastest
 * (docs/performance.md, "Figures behind design choices"). */
#ifndef CKPT_SRC_IO_READ_COPY_H
#define CKPT_SRC_IO_READ_COPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when reading file offset foff into dst would be the kernel's slow misaligned copy. */
static inline bool ckpt_read_misaligned(const void *dst, uint64_t foff) {
  return (((uintptr_t)dst - (uintptr_t)foff) & 31u) != 0;
}

/* The alignment slack ckpt_read_bounce needs on top of the piece size. */
#define CKPT_READ_BOUNCE_SLACK ((size_t)64)

/* The address in a buffer of at least n + CKPT_READ_BOUNCE_SLACK bytes at which a read of file
 * offset foff is aligned like the page cache's copy source. */
static inline void *ckpt_read_bounce(void *buf, uint64_t foff) {
  uintptr_t p = (uintptr_t)buf;
  uintptr_t want = (uintptr_t)(foff & 63u);
  return (void *)(p + ((want - p) & 63u));
}

/* memcpy for a destination that is about to leave the cache anyway: non-temporal 16-byte
 * stores where the target has them (x86-64), memcpy elsewhere. src and dst must not overlap. */
void ckpt_stream_copy(void *dst, const void *src, size_t n);

#endif
