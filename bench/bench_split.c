/* bench/bench_split.c — the MPI benchmarks' division of the state among ranks (bench_split.h). */
#include "bench_split.h"

#include <stdlib.h>
#include <string.h>

void bench_split_rows(int64_t rows, int size, int r, int64_t *lo, int64_t *n) {
  int64_t q = rows / size, extra = rows % size;
  *lo = r * q + (r < extra ? r : extra);
  *n = q + (r < extra ? 1 : 0);
}

bench_slice *bench_slices_new(const bench_state *st, int size, int r, size_t *total) {
  bench_slice *s = calloc(st->n_arrays, sizeof *s);
  if (s == NULL)
    bench_die(false, "out of memory");
  *total = 0;
  for (size_t k = 0; k < st->n_arrays; k++) {
    const bench_array *a = &st->arrays[k];
    if (a->ndim < 1 || a->shape[0] < size)
      bench_die(false, "%s: %s has %lld rows, fewer than the %d ranks", st->name, a->name,
                a->ndim < 1 ? 0LL : (long long)a->shape[0], size);
    bench_split_rows(a->shape[0], size, r, &s[k].lo, &s[k].rows);
    s[k].row_elems = 1;
    for (int d = 1; d < a->ndim; d++)
      s[k].row_elems *= (size_t)a->shape[d];
    s[k].nbytes = (size_t)s[k].rows * s[k].row_elems * 4;
    *total += s[k].nbytes;
  }
  return s;
}

void bench_slices_generate(const bench_state *st, bench_slice *s) {
  for (size_t k = 0; k < st->n_arrays; k++) {
    s[k].data = bench_alloc_faulted(s[k].nbytes ? s[k].nbytes : 4);
    bench_fill_range(st->arrays[k].seed, (size_t)s[k].lo * s[k].row_elems,
                     (uint32_t *)(void *)s[k].data, s[k].nbytes / 4);
  }
}

void bench_slice_verify(const bench_array *a, const bench_slice *s, const void *buf,
                        const char *what) {
  /* Against freshly generated rows, so a slice other than this rank's own can be checked. */
  uint32_t *want = malloc(s->nbytes ? s->nbytes : 4);
  if (want == NULL)
    bench_die(false, "out of memory");
  bench_fill_range(a->seed, (size_t)s->lo * s->row_elems, want, s->nbytes / 4);
  if (memcmp(want, buf, s->nbytes) != 0)
    bench_die(false, "%s: rows %lld..%lld of %s hold different bytes", what, (long long)s->lo,
              (long long)(s->lo + s->rows), a->name);
  free(want);
}

void bench_slices_free(const bench_state *st, bench_slice *s) {
  if (s == NULL)
    return;
  for (size_t k = 0; k < st->n_arrays; k++)
    free(s[k].data);
  free(s);
}
