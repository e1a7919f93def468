/* util.c — arena, hash map and text buffer of the generator (see util.h). */
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL) {
    fputs("ckptgen: error: out of memory\n", stderr);
    exit(1);
  }
  return p;
}

void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (q == NULL) {
    fputs("ckptgen: error: out of memory\n", stderr);
    exit(1);
  }
  return q;
}

/* ---------------------------------------------------------------- arena */

struct arena_block {
  arena_block *next;
  size_t cap;
  size_t used;
  max_align_t data[];
};

#define ARENA_BLOCK_MIN ((size_t)64 * 1024)

void arena_init(arena *a) { a->head = NULL; }

void *arena_alloc(arena *a, size_t n) {
  const size_t align = sizeof(max_align_t);
  n = (n + align - 1) / align * align;
  if (n == 0) n = align;
  arena_block *b = a->head;
  if (b == NULL || b->cap - b->used < n) {
    /* Large requests get a block of their own so a 10 MB token does not waste the tail of a
     * normal block, and ordinary blocks stay small. */
    size_t cap = n > ARENA_BLOCK_MIN / 4 ? n : ARENA_BLOCK_MIN;
    arena_block *nb = xmalloc(sizeof *nb + cap);
    nb->cap = cap;
    nb->used = 0;
    if (b != NULL && cap != ARENA_BLOCK_MIN) {
      /* keep the current (partly used) block at the head */
      nb->next = b->next;
      b->next = nb;
      nb->used = n;
      memset(nb->data, 0, n);
      return nb->data;
    }
    nb->next = b;
    a->head = nb;
    b = nb;
  }
  void *p = (char *)b->data + b->used;
  b->used += n;
  memset(p, 0, n);
  return p;
}

char *arena_strndup(arena *a, const char *s, size_t n) {
  char *p = arena_alloc(a, n + 1);
  if (n) memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

char *arena_strdup(arena *a, const char *s) { return arena_strndup(a, s, strlen(s)); }

char *arena_printf(arena *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  buf b;
  buf_init(&b);
  buf_vprintf(&b, fmt, ap);
  va_end(ap);
  char *p = arena_strndup(a, b.data, b.len);
  buf_free(&b);
  return p;
}

void arena_free(arena *a) {
  arena_block *b = a->head;
  while (b != NULL) {
    arena_block *next = b->next;
    free(b);
    b = next;
  }
  a->head = NULL;
}

/* ---------------------------------------------------------------- strmap */

uint64_t fnv1a64(const void *data, size_t len) {
  const unsigned char *p = data;
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

void strmap_init(strmap *m) {
  m->slots = NULL;
  m->cap = 0;
  m->count = 0;
}

static strmap_slot *strmap_find(const strmap *m, const char *key, size_t len, uint64_t h) {
  if (m->cap == 0) return NULL;
  size_t mask = m->cap - 1;
  for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
    strmap_slot *s = &m->slots[i];
    if (s->key == NULL) return s;
    if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0) return s;
  }
}

void *strmap_getn(const strmap *m, const char *key, size_t len) {
  strmap_slot *s = strmap_find(m, key, len, fnv1a64(key, len));
  return s != NULL && s->key != NULL ? s->value : NULL;
}

void *strmap_get(const strmap *m, const char *key) { return strmap_getn(m, key, strlen(key)); }

static void strmap_grow(strmap *m) {
  size_t ncap = m->cap ? m->cap * 2 : 64;
  strmap_slot *old = m->slots;
  size_t ocap = m->cap;
  m->slots = xmalloc(ncap * sizeof *m->slots);
  memset(m->slots, 0, ncap * sizeof *m->slots);
  m->cap = ncap;
  for (size_t i = 0; i < ocap; i++) {
    if (old[i].key == NULL) continue;
    strmap_slot *s = strmap_find(m, old[i].key, old[i].len, old[i].hash);
    *s = old[i];
  }
  free(old);
}

void *strmap_put(strmap *m, const char *key, void *value) {
  size_t len = strlen(key);
  uint64_t h = fnv1a64(key, len);
  if ((m->count + 1) * 2 > m->cap) strmap_grow(m);
  strmap_slot *s = strmap_find(m, key, len, h);
  if (s->key != NULL) return s->value;
  s->key = key;
  s->len = len;
  s->hash = h;
  s->value = value;
  m->count++;
  return NULL;
}

void strmap_free(strmap *m) {
  free(m->slots);
  strmap_init(m);
}

/* ---------------------------------------------------------------- buf */

void buf_init(buf *b) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}

static void buf_reserve(buf *b, size_t extra) {
  if (b->len + extra + 1 <= b->cap) return;
  size_t ncap = b->cap ? b->cap : 256;
  while (ncap < b->len + extra + 1) ncap *= 2;
  b->data = xrealloc(b->data, ncap);
  b->cap = ncap;
}

void buf_putn(buf *b, const char *s, size_t n) {
  buf_reserve(b, n);
  if (n) memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void buf_puts(buf *b, const char *s) { buf_putn(b, s, strlen(s)); }

void buf_putc(buf *b, char c) { buf_putn(b, &c, 1); }

void buf_vprintf(buf *b, const char *fmt, va_list ap) {
  /* One formatting pass in the common case: format into the spare capacity, and only when it
   * did not fit, grow and format again. */
  buf_reserve(b, 128);
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap2);
  va_end(ap2);
  if (n < 0) {
    b->data[b->len] = '\0';
    return;
  }
  if ((size_t)n >= b->cap - b->len) {
    buf_reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  }
  b->len += (size_t)n;
}

void buf_printf(buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  buf_vprintf(b, fmt, ap);
  va_end(ap);
}

void buf_free(buf *b) {
  free(b->data);
  buf_init(b);
}
