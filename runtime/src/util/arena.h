/* util/arena.h — a bump allocator for many small objects that die together.
 *
 * Why: a restore of 10,000 small arrays builds hundreds of thousands of small objects (the
 * JSON items of _METADATA and _CHECKSUMS, the per-leaf names and destination boxes) and
 * freed them one by one: malloc and free were a fifth of the restore
 * (docs/performance.md, "OCDBT and the small state"). An arena hands out memory from large
 * blocks and frees the blocks at once.
 *
 * Ownership: everything allocated from an arena belongs to it; nothing allocated from it may be
 * passed to free() or realloc(). Not thread-safe: one arena, one thread at a time. */
#ifndef CKPT_UTIL_ARENA_H
#define CKPT_UTIL_ARENA_H

#include <stddef.h>

typedef struct ckpt_arena_block ckpt_arena_block;

typedef struct ckpt_arena {
  ckpt_arena_block *head; /* the block being filled; older blocks follow */
  size_t used, cap;       /* bytes of head used, and its capacity */
} ckpt_arena;

#define CKPT_ARENA_INIT {NULL, 0, 0}

/* n bytes aligned for any object (max_align_t), or NULL when memory runs out or n is absurd.
 * Not zeroed. */
void *ckpt_arena_alloc(ckpt_arena *a, size_t n);
/* ckpt_arena_alloc, zeroed. */
void *ckpt_arena_calloc(ckpt_arena *a, size_t n);
/* A NUL-terminated copy of the n bytes at s (which need no terminator), or NULL. */
char *ckpt_arena_strndup(ckpt_arena *a, const char *s, size_t n);
/* A copy of the string s, or NULL. */
char *ckpt_arena_strdup(ckpt_arena *a, const char *s);
/* Frees every block; the arena is empty (and reusable) afterwards. NULL is a no-op. */
void ckpt_arena_free(ckpt_arena *a);

#endif
