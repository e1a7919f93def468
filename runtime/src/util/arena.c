/* util/arena.c — the bump allocator of arena.h. Blocks start at 64 KiB and double up to 1 MiB,
 * so a small document costs one malloc and a large one a few dozen; a request larger than a
 * block gets a block of its own. */
#include "util/arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct ckpt_arena_block {
  ckpt_arena_block *next;
  alignas(max_align_t) unsigned char data[];
};

#define ARENA_FIRST_BLOCK ((size_t)64 * 1024)
#define ARENA_MAX_BLOCK ((size_t)1024 * 1024)
#define ARENA_ALIGN (alignof(max_align_t))

static size_t round_up(size_t n) {
  return (n + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
}

void *ckpt_arena_alloc(ckpt_arena *a, size_t n) {
  if (n > SIZE_MAX / 2)
    return NULL;
  size_t need = round_up(n ? n : 1);
  if (a->head == NULL || a->cap - a->used < need) {
    size_t cap = a->cap == 0 ? ARENA_FIRST_BLOCK : a->cap * 2;
    if (cap > ARENA_MAX_BLOCK)
      cap = ARENA_MAX_BLOCK;
    if (cap < need)
      cap = need;
    ckpt_arena_block *b = malloc(sizeof *b + cap);
    if (b == NULL)
      return NULL;
    b->next = a->head;
    a->head = b;
    a->cap = cap;
    a->used = 0;
  }
  void *p = a->head->data + a->used;
  a->used += need;
  return p;
}

void *ckpt_arena_calloc(ckpt_arena *a, size_t n) {
  void *p = ckpt_arena_alloc(a, n);
  if (p != NULL)
    memset(p, 0, n);
  return p;
}

char *ckpt_arena_strndup(ckpt_arena *a, const char *s, size_t n) {
  if (n == SIZE_MAX)
    return NULL;
  char *p = ckpt_arena_alloc(a, n + 1);
  if (p != NULL) {
    memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}

char *ckpt_arena_strdup(ckpt_arena *a, const char *s) {
  return ckpt_arena_strndup(a, s, strlen(s));
}

void ckpt_arena_free(ckpt_arena *a) {
  if (a == NULL)
    return;
  ckpt_arena_block *b = a->head;
  while (b != NULL) {
    ckpt_arena_block *next = b->next;
    free(b);
    b = next;
  }
  a->head = NULL;
  a->used = a->cap = 0;
}
