/* util.h — the generator's small building blocks: an arena that owns every allocation of a
 * run, a string-keyed hash map (so name look-ups stay O(1) on 500k-line schemas) and a
 * growable text buffer for the emitters.
 *
 * ckptgen is a short-lived program: running out of memory ends it with a message (xmalloc),
 * which keeps every other function free of allocation-failure paths. */
#ifndef CKPTGEN_UTIL_H
#define CKPTGEN_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* malloc/realloc that print "ckptgen: out of memory" and exit(1) on failure. */
void *xmalloc(size_t n);
void *xrealloc(void *p, size_t n);

/* ---- arena: bump allocation, freed all at once ---- */
typedef struct arena_block arena_block;
typedef struct arena {
  arena_block *head;
} arena;

void arena_init(arena *a);
/* Zeroed, max_align_t-aligned memory owned by the arena. */
void *arena_alloc(arena *a, size_t n);
/* NUL-terminated copy of s[0..n) owned by the arena. */
char *arena_strndup(arena *a, const char *s, size_t n);
char *arena_strdup(arena *a, const char *s);
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
char *arena_printf(arena *a, const char *fmt, ...);
void arena_free(arena *a);

/* ---- strmap: string → pointer, open addressing; keys are borrowed (must outlive the map) --- */
typedef struct strmap_slot {
  const char *key;
  size_t len;
  uint64_t hash;
  void *value;
} strmap_slot;

typedef struct strmap {
  strmap_slot *slots;
  size_t cap;   /* power of two, or 0 */
  size_t count;
} strmap;

uint64_t fnv1a64(const void *data, size_t len);
void strmap_init(strmap *m);
void *strmap_get(const strmap *m, const char *key);
void *strmap_getn(const strmap *m, const char *key, size_t len);
/* Inserts key → value unless present; returns the value already there, or NULL if inserted. */
void *strmap_put(strmap *m, const char *key, void *value);
void strmap_free(strmap *m);

/* ---- buf: growable NUL-terminated text (heap; release with buf_free) ---- */
typedef struct buf {
  char *data;
  size_t len;
  size_t cap;
} buf;

void buf_init(buf *b);
void buf_putn(buf *b, const char *s, size_t n);
void buf_puts(buf *b, const char *s);
void buf_putc(buf *b, char c);
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void buf_printf(buf *b, const char *fmt, ...);
void buf_vprintf(buf *b, const char *fmt, va_list ap);
void buf_free(buf *b);

#endif
