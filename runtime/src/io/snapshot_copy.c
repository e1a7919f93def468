/* io/snapshot_copy.c — a snapshot's copies, shared between the caller and engine jobs
 * (see snapshot_copy.h for why and how). */
#include "io/snapshot_copy.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "io/engine.h"

#define MAX_HELPERS 7u

int ckpt_copy_list_add(ckpt_copy_list *l, void *dst, ckpt_dtype dst_dtype, const void *src,
                       ckpt_dtype src_dtype, size_t n) {
  if (l->n == l->cap) {
    size_t ncap = l->cap ? l->cap * 2 : 64;
    ckpt_copy_item *ni = realloc(l->items, ncap * sizeof *ni);
    if (ni == NULL)
      return -1;
    l->items = ni;
    l->cap = ncap;
  }
  l->items[l->n++] = (ckpt_copy_item){dst, src, dst_dtype, src_dtype, n};
  l->bytes += (uint64_t)n * ckpt_dtype_size(dst_dtype);
  return 0;
}

void ckpt_copy_list_free(ckpt_copy_list *l) {
  free(l->items);
  l->items = NULL;
  l->n = l->cap = 0;
  l->bytes = 0;
}

/* The pieces: item i, elements [first, first + n). */
typedef struct piece {
  size_t item, first, n;
} piece;

typedef struct copy_run {
  const ckpt_copy_list *list;
  piece *pieces;
  size_t n_pieces;
  atomic_size_t next;
} copy_run;

static void copy_piece(const ckpt_copy_list *l, const piece *p) {
  const ckpt_copy_item *it = &l->items[p->item];
  size_t ds = ckpt_dtype_size(it->dst_dtype), ss = ckpt_dtype_size(it->src_dtype);
  ckpt_dtype_convert(it->dst_dtype, (unsigned char *)it->dst + p->first * ds, it->src_dtype,
                     (const unsigned char *)it->src + p->first * ss, p->n);
}

/* Takes pieces until none is left; run by the caller and by each helper job. */
static void drain(copy_run *r) {
  size_t i;
  while ((i = atomic_fetch_add(&r->next, 1)) < r->n_pieces)
    copy_piece(r->list, &r->pieces[i]);
}

static ckpt_status helper_job(void *arg, ckpt_error *err) {
  (void)err;
  drain(arg);
  return CKPT_OK;
}

static void copy_alone(const ckpt_copy_list *l) {
  for (size_t i = 0; i < l->n; i++)
    ckpt_dtype_convert(l->items[i].dst_dtype, l->items[i].dst, l->items[i].src_dtype,
                       l->items[i].src, l->items[i].n);
}

/* Helpers worth starting: one per other online core, within the engine's workers. */
static unsigned helpers_for(const ckpt_copy_list *l, ckpt_engine *engine) {
  if (engine == NULL || l->bytes < CKPT_COPY_PARALLEL_MIN)
    return 0;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  unsigned h = cores > 1 ? (unsigned)(cores - 1) : 0;
  if (h > ckpt_engine_threads(engine))
    h = ckpt_engine_threads(engine);
  return h > MAX_HELPERS ? MAX_HELPERS : h;
}

void ckpt_copy_list_run(ckpt_copy_list *l, ckpt_engine *engine) {
  unsigned helpers = helpers_for(l, engine);
  size_t n_pieces = 0;
  for (size_t i = 0; helpers > 0 && i < l->n; i++) {
    size_t per = CKPT_COPY_PIECE / ckpt_dtype_size(l->items[i].dst_dtype);
    n_pieces += l->items[i].n == 0 ? 0 : (l->items[i].n + per - 1) / per;
  }
  copy_run r = {.list = l, .n_pieces = 0};
  atomic_init(&r.next, 0);
  r.pieces = helpers > 0 ? malloc(n_pieces * sizeof *r.pieces) : NULL;
  ckpt_engine_group *g = NULL;
  ckpt_error ignore = CKPT_ERROR_INIT;
  if (r.pieces == NULL || ckpt_engine_group_new(engine, "snapshot copy", &g, &ignore) != CKPT_OK) {
    free(r.pieces);
    copy_alone(l);
    l->n = 0;
    l->bytes = 0;
    return;
  }
  for (size_t i = 0; i < l->n; i++) {
    size_t per = CKPT_COPY_PIECE / ckpt_dtype_size(l->items[i].dst_dtype);
    for (size_t first = 0; first < l->items[i].n; first += per) {
      size_t left = l->items[i].n - first;
      r.pieces[r.n_pieces++] = (piece){i, first, left < per ? left : per};
    }
  }
  for (unsigned h = 0; h < helpers; h++)
    if (ckpt_engine_call(g, helper_job, &r, NULL, NULL, &ignore) != CKPT_OK)
      break; /* fewer helpers: the caller takes their share */
  drain(&r);
  /* Every piece is taken: helpers still queued are canceled (they would find nothing), and
   * freeing the group waits only for a helper finishing the piece it holds. */
  ckpt_engine_group_cancel(g);
  ckpt_engine_group_free(g);
  free(r.pieces);
  l->n = 0;
  l->bytes = 0;
}
