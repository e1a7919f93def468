/* bench/bench_split.h — how the MPI benchmarks (bench_mpi_ckpt.c, bench_mpi_hdf5.c) divide the
 * benchmark state among ranks: every array is cut along its first axis into `size` blocks of
 * consecutive rows (the first rows % size blocks one row longer), and rank r holds block r of
 * every array. So every rank holds about 1/size of every array and of the bytes, and every
 * array is written by every rank: the case of data-parallel training with sharded optimizer
 * state, and the one where the processes' writes interleave most.
 *
 * A rank generates only its own rows (bench_fill_range), so four ranks together hold one copy
 * of the state, not four. Exits (bench_die) when an array has fewer rows than ranks. */
#ifndef BENCH_SPLIT_H
#define BENCH_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "bench_common.h"

/* Rows [*lo, *lo + *n) of `rows` are block r of `size`. */
void bench_split_rows(int64_t rows, int size, int r, int64_t *lo, int64_t *n);

typedef struct bench_slice {
  int64_t lo, rows;   /* this rank's rows of the array */
  size_t row_elems;   /* float32 elements per row (1 for a 1-D array) */
  size_t nbytes;      /* rows * row_elems * 4 */
  float *data;        /* the rows' bytes, faulted; owned; NULL until bench_slices_generate */
} bench_slice;

/* Block r of `size` of every array of st (st's arrays need no data). Release with
 * bench_slices_free; *total gets the slices' bytes. */
bench_slice *bench_slices_new(const bench_state *st, int size, int r, size_t *total);
/* Fills every slice with its rows of the state (the bytes bench_state_generate would hold). */
void bench_slices_generate(const bench_state *st, bench_slice *s);
/* Exits naming the array when buf (the rows of slice s of array a) differs from the state. */
void bench_slice_verify(const bench_array *a, const bench_slice *s, const void *buf,
                        const char *what);
void bench_slices_free(const bench_state *st, bench_slice *s);

#endif
