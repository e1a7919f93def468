/* io/buffer_pool.c — the staging-buffer pool: one pre-faulted arena, first-fit page runs,
 * coalescing free list, blocking acquire. See buffer_pool.h for the why. */
#include "io/buffer_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PAGE ((size_t)CKPT_BUFFER_POOL_PAGE)

typedef struct extent {
  size_t start, pages; /* in pages from the arena's start */
} extent;

typedef struct oversize_buf {
  void *addr;
  size_t bytes;
  struct oversize_buf *next;
} oversize_buf;

struct ckpt_buffer_pool {
  pthread_mutex_t mu;
  pthread_cond_t released;
  unsigned char *arena;
  size_t pages;
  uint32_t *run_pages; /* per page: length of the run handed out starting there, 0 if none */
  extent *free_list;   /* sorted by start, never two adjacent ones */
  size_t n_free;       /* entries in free_list (capacity: pages/2 + 1 suffices) */
  oversize_buf *oversize;
  ckpt_buffer_pool_stats stats;
};

static size_t pages_for(size_t n) { return n == 0 ? 1 : (n + PAGE - 1) / PAGE; }

ckpt_status ckpt_buffer_pool_new(size_t capacity, ckpt_buffer_pool **out, ckpt_error *err) {
  if (out == NULL) return ckpt_error_set(err, CKPT_EINVAL, "ckpt_buffer_pool_new: out is NULL");
  *out = NULL;
  size_t pages = pages_for(capacity);
  if (pages > UINT32_MAX || pages > SIZE_MAX / PAGE)
    return ckpt_error_set(err, CKPT_EINVAL, "staging buffer pool of %zu bytes is too large",
                          capacity);
  ckpt_buffer_pool *p = calloc(1, sizeof *p);
  if (p == NULL) return ckpt_error_set(err, CKPT_ENOMEM, "staging buffer pool: out of memory");
  p->pages = pages;
  p->run_pages = calloc(pages, sizeof *p->run_pages);
  p->free_list = calloc(pages / 2 + 1, sizeof *p->free_list);
  size_t bytes = pages * PAGE;
  void *a = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p->run_pages == NULL || p->free_list == NULL || a == MAP_FAILED) {
    int e = errno;
    if (a != MAP_FAILED) munmap(a, bytes);
    free(p->run_pages);
    free(p->free_list);
    free(p);
    return ckpt_error_errno(err, a == MAP_FAILED ? e : ENOMEM,
                            "cannot allocate a staging buffer pool of %zu bytes", bytes);
  }
  /* Huge pages make both the pre-faulting and later copies cheaper; advice only. */
#ifdef MADV_HUGEPAGE
  (void)madvise(a, bytes, MADV_HUGEPAGE);
#endif
  /* Pre-fault: touch every page now so no copy into the pool ever takes a page fault. A write,
   * not a read: reading would map the shared zero page and fault again on the first store. */
  p->arena = a;
  for (size_t i = 0; i < bytes; i += PAGE) p->arena[i] = 0;
  p->free_list[0] = (extent){0, pages};
  p->n_free = 1;
  p->stats.capacity = bytes;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->released, NULL);
  *out = p;
  return CKPT_OK;
}

void ckpt_buffer_pool_free(ckpt_buffer_pool *p) {
  if (p == NULL) return;
  for (oversize_buf *o = p->oversize, *next; o != NULL; o = next) {
    next = o->next;
    munmap(o->addr, o->bytes);
    free(o);
  }
  munmap(p->arena, p->pages * PAGE);
  free(p->run_pages);
  free(p->free_list);
  pthread_cond_destroy(&p->released);
  pthread_mutex_destroy(&p->mu);
  free(p);
}

/* First fit (mu held). Returns the run's first page, or SIZE_MAX when nothing fits. */
static size_t take_locked(ckpt_buffer_pool *p, size_t want) {
  for (size_t i = 0; i < p->n_free; i++) {
    extent *x = &p->free_list[i];
    if (x->pages < want) continue;
    size_t start = x->start;
    x->start += want;
    x->pages -= want;
    if (x->pages == 0) {
      memmove(x, x + 1, (p->n_free - i - 1) * sizeof *x);
      p->n_free--;
    }
    p->run_pages[start] = (uint32_t)want;
    p->stats.in_use += want * PAGE;
    if (p->stats.in_use > p->stats.peak_in_use) p->stats.peak_in_use = p->stats.in_use;
    p->stats.acquires++;
    return start;
  }
  return SIZE_MAX;
}

/* Inserts [start, start+pages) into the sorted free list, merging with its neighbours. */
static void give_back_locked(ckpt_buffer_pool *p, size_t start, size_t pages) {
  size_t lo = 0, hi = p->n_free;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (p->free_list[mid].start < start) lo = mid + 1;
    else hi = mid;
  }
  bool merge_prev = lo > 0 && p->free_list[lo - 1].start + p->free_list[lo - 1].pages == start;
  bool merge_next = lo < p->n_free && start + pages == p->free_list[lo].start;
  if (merge_prev && merge_next) {
    p->free_list[lo - 1].pages += pages + p->free_list[lo].pages;
    memmove(&p->free_list[lo], &p->free_list[lo + 1], (p->n_free - lo - 1) * sizeof(extent));
    p->n_free--;
  } else if (merge_prev) {
    p->free_list[lo - 1].pages += pages;
  } else if (merge_next) {
    p->free_list[lo].start = start;
    p->free_list[lo].pages += pages;
  } else {
    memmove(&p->free_list[lo + 1], &p->free_list[lo], (p->n_free - lo) * sizeof(extent));
    p->free_list[lo] = (extent){start, pages};
    p->n_free++;
  }
}

static ckpt_status acquire_oversize(ckpt_buffer_pool *p, size_t n, void **buf, ckpt_error *err) {
  size_t bytes = pages_for(n) * PAGE;
  oversize_buf *o = malloc(sizeof *o);
  void *a = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (o == NULL || a == MAP_FAILED) {
    int e = errno;
    free(o);
    if (a != MAP_FAILED) munmap(a, bytes);
    return ckpt_error_errno(err, a == MAP_FAILED ? e : ENOMEM,
                            "cannot allocate a %zu-byte staging buffer (larger than the %zu-byte "
                            "pool)", n, p->stats.capacity);
  }
  o->addr = a;
  o->bytes = bytes;
  pthread_mutex_lock(&p->mu);
  o->next = p->oversize;
  p->oversize = o;
  p->stats.oversize++;
  p->stats.acquires++;
  pthread_mutex_unlock(&p->mu);
  *buf = a;
  return CKPT_OK;
}

ckpt_status ckpt_buffer_pool_acquire(ckpt_buffer_pool *p, size_t n, void **buf, ckpt_error *err) {
  if (p == NULL || buf == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_buffer_pool_acquire: NULL argument");
  *buf = NULL;
  size_t want = pages_for(n);
  if (want > p->pages) return acquire_oversize(p, n, buf, err);
  pthread_mutex_lock(&p->mu);
  size_t start = take_locked(p, want);
  if (start == SIZE_MAX) {
    p->stats.waits++;
    while ((start = take_locked(p, want)) == SIZE_MAX) pthread_cond_wait(&p->released, &p->mu);
  }
  pthread_mutex_unlock(&p->mu);
  *buf = p->arena + start * PAGE;
  return CKPT_OK;
}

bool ckpt_buffer_pool_try_acquire(ckpt_buffer_pool *p, size_t n, void **buf) {
  if (p == NULL || buf == NULL) return false;
  *buf = NULL;
  size_t want = pages_for(n);
  if (want > p->pages) return false;
  pthread_mutex_lock(&p->mu);
  size_t start = take_locked(p, want);
  pthread_mutex_unlock(&p->mu);
  if (start == SIZE_MAX) return false;
  *buf = p->arena + start * PAGE;
  return true;
}

/* The arena page index of buf if it is the start of a run handed out, else SIZE_MAX (mu held). */
static size_t run_of_locked(ckpt_buffer_pool *p, const void *buf) {
  const unsigned char *b = buf;
  if (b < p->arena || b >= p->arena + p->pages * PAGE) return SIZE_MAX;
  size_t off = (size_t)(b - p->arena);
  if (off % PAGE != 0) return SIZE_MAX;
  size_t page = off / PAGE;
  return p->run_pages[page] != 0 ? page : SIZE_MAX;
}

void ckpt_buffer_pool_release(ckpt_buffer_pool *p, void *buf) {
  if (p == NULL || buf == NULL) return;
  pthread_mutex_lock(&p->mu);
  size_t page = run_of_locked(p, buf);
  if (page != SIZE_MAX) {
    size_t pages = p->run_pages[page];
    p->run_pages[page] = 0;
    p->stats.in_use -= pages * PAGE;
    give_back_locked(p, page, pages);
    pthread_cond_broadcast(&p->released);
    pthread_mutex_unlock(&p->mu);
    return;
  }
  oversize_buf **link = &p->oversize;
  while (*link != NULL && (*link)->addr != buf) link = &(*link)->next;
  oversize_buf *o = *link;
  if (o != NULL) *link = o->next;
  pthread_mutex_unlock(&p->mu);
  if (o != NULL) {
    munmap(o->addr, o->bytes);
    free(o);
  }
}

void ckpt_buffer_pool_on_done(void *pool, void *buf, ckpt_status status) {
  (void)status;
  ckpt_buffer_pool_release(pool, buf);
}

bool ckpt_buffer_pool_owns(ckpt_buffer_pool *p, const void *buf) {
  if (p == NULL || buf == NULL) return false;
  pthread_mutex_lock(&p->mu);
  bool owns = run_of_locked(p, buf) != SIZE_MAX;
  for (oversize_buf *o = p->oversize; !owns && o != NULL; o = o->next) owns = o->addr == buf;
  pthread_mutex_unlock(&p->mu);
  return owns;
}

void ckpt_buffer_pool_get_stats(ckpt_buffer_pool *p, ckpt_buffer_pool_stats *s) {
  pthread_mutex_lock(&p->mu);
  *s = p->stats;
  pthread_mutex_unlock(&p->mu);
}
