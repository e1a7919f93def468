/* ckpt/array.h — n-dimensional arrays as a process holds them: a dtype, a global shape and the
 * shards this process owns (an offset box, the data in C order, a replica id).
 *
 * A plain host array is one shard covering the whole array. Sizes and offsets are 64-bit
 * everywhere, so arrays over 4 GiB work. */
#ifndef CKPT_ARRAY_H
#define CKPT_ARRAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt/api.h"
#include "ckpt/dtype.h"
#include "ckpt/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CKPT_MAX_RANK 32

typedef struct ckpt_shard {
  int64_t offset[CKPT_MAX_RANK]; /* where the box starts in the global array */
  int64_t shape[CKPT_MAX_RANK];  /* the box's extent */
  void *data;                    /* C-order elements of the box */
  int replica_id;                /* only replica 0 is written */
  bool owns_data;                /* free(data) when the array is freed */
} ckpt_shard;

typedef struct ckpt_array {
  ckpt_dtype dtype;
  int ndim;                     /* 0 for a scalar */
  int64_t shape[CKPT_MAX_RANK]; /* global shape */
  size_t n_shards;
  ckpt_shard *shards;           /* owned */
} ckpt_array;

/* A zero-filled array held as one shard that covers it; *out owned by the caller (free with
 * ckpt_array_free). */
CKPT_API ckpt_status ckpt_array_new(ckpt_dtype dtype, int ndim, const int64_t *shape,
                                    ckpt_array **out, ckpt_error *err);
/* An array over caller memory (not copied, not freed) as one shard covering it. */
CKPT_API ckpt_status ckpt_array_wrap(ckpt_dtype dtype, int ndim, const int64_t *shape, void *data,
                                     ckpt_array **out, ckpt_error *err);
/* An array with a global shape and no shards yet; add them with ckpt_array_add_shard. */
CKPT_API ckpt_status ckpt_array_new_sharded(ckpt_dtype dtype, int ndim, const int64_t *shape,
                                            ckpt_array **out, ckpt_error *err);
/* Adds a shard box; data NULL allocates zeroed memory owned by the array, otherwise the
 * caller's memory is borrowed. The box must lie inside the global shape. */
CKPT_API ckpt_status ckpt_array_add_shard(ckpt_array *array, const int64_t *offset,
                                          const int64_t *shape, void *data, int replica_id,
                                          ckpt_error *err);
CKPT_API void ckpt_array_free(ckpt_array *array);
/* Deep copy with owned data. NULL on allocation failure. */
CKPT_API ckpt_array *ckpt_array_clone(const ckpt_array *array);
/* Same dtype, shape, shard boxes and bytes. */
CKPT_API bool ckpt_array_equal(const ckpt_array *a, const ckpt_array *b);

CKPT_API int64_t ckpt_array_num_elements(const ckpt_array *array);
CKPT_API uint64_t ckpt_array_nbytes(const ckpt_array *array); /* of the global array */
/* The data of a single shard covering the whole array; NULL otherwise. */
CKPT_API void *ckpt_array_data(const ckpt_array *array);

#ifdef __cplusplus
}
#endif
#endif
