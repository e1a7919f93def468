/* array.c — ckpt_array: a dtype, a global shape, and the shards (boxes of data) this process
 * holds. Sizes are computed in 64 bits with overflow checks, so arrays over 4 GiB work and a
 * hostile shape cannot wrap a size into a small allocation. */
#include "ckpt/array.h"
#include "core/array_internal.h"

#include <stdlib.h>
#include <string.h>

/* Element count of a box, or -1 when a dimension is negative or the product overflows the
 * 64-bit byte size of elem_size-byte elements. */
static int64_t box_elements(int ndim, const int64_t *shape, size_t elem_size) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0)
      return -1;
    if (shape[d] == 0) {
      n = 0;
      continue;
    }
    if (n > INT64_MAX / shape[d])
      return -1;
    n *= shape[d];
  }
  if (elem_size > 0 && n > 0 && (uint64_t)n > (uint64_t)INT64_MAX / elem_size)
    return -1;
  if (elem_size > 0 && (uint64_t)n * elem_size > (uint64_t)SIZE_MAX)
    return -1;
  return n;
}

static ckpt_status check_shape(ckpt_dtype dtype, int ndim, const int64_t *shape, ckpt_error *err) {
  if (!ckpt_dtype_valid(dtype))
    return ckpt_error_set(err, CKPT_EINVAL, "array: invalid dtype %d", (int)dtype);
  if (ndim < 0 || ndim > CKPT_MAX_RANK)
    return ckpt_error_set(err, CKPT_EINVAL, "array: rank %d outside 0..%d", ndim, CKPT_MAX_RANK);
  if (ndim > 0 && shape == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "array: rank %d without a shape", ndim);
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0)
      return ckpt_error_set(err, CKPT_EINVAL, "array: dimension %d has negative size %lld", d,
                            (long long)shape[d]);
  }
  if (box_elements(ndim, shape, ckpt_dtype_size(dtype)) < 0)
    return ckpt_error_set(err, CKPT_EINVAL, "array: shape too large (size overflows)");
  return CKPT_OK;
}

ckpt_status ckpt_array_new_sharded(ckpt_dtype dtype, int ndim, const int64_t *shape,
                                   ckpt_array **out, ckpt_error *err) {
  *out = NULL;
  ckpt_status st = check_shape(dtype, ndim, shape, err);
  if (st != CKPT_OK)
    return st;
  ckpt_array *a = calloc(1, sizeof *a);
  if (a == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "array: out of memory");
  a->dtype = dtype;
  a->ndim = ndim;
  for (int d = 0; d < ndim; d++)
    a->shape[d] = shape[d];
  *out = a;
  return CKPT_OK;
}

ckpt_status ckpt_array_add_shard(ckpt_array *array, const int64_t *offset, const int64_t *shape,
                                 void *data, int replica_id, ckpt_error *err) {
  if (array == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "array_add_shard: NULL array");
  if (array->ndim > 0 && (offset == NULL || shape == NULL))
    return ckpt_error_set(err, CKPT_EINVAL, "array_add_shard: NULL offset or shape");
  if (replica_id < 0)
    return ckpt_error_set(err, CKPT_EINVAL, "array_add_shard: negative replica id %d", replica_id);
  for (int d = 0; d < array->ndim; d++) {
    if (offset[d] < 0 || shape[d] < 0 || offset[d] > array->shape[d] ||
        shape[d] > array->shape[d] - offset[d])
      return ckpt_error_set(err, CKPT_EINVAL,
                            "array_add_shard: box [%lld, +%lld) of dimension %d lies outside "
                            "the global size %lld",
                            (long long)offset[d], (long long)shape[d], d,
                            (long long)array->shape[d]);
  }
  size_t esize = ckpt_dtype_size(array->dtype);
  int64_t n = box_elements(array->ndim, shape, esize);
  ckpt_shard *grown = realloc(array->shards, (array->n_shards + 1) * sizeof *grown);
  if (grown == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "array_add_shard: out of memory");
  array->shards = grown;
  ckpt_shard *s = &array->shards[array->n_shards];
  memset(s, 0, sizeof *s);
  for (int d = 0; d < array->ndim; d++) {
    s->offset[d] = offset[d];
    s->shape[d] = shape[d];
  }
  s->replica_id = replica_id;
  if (data != NULL) {
    s->data = data;
    s->owns_data = false;
  } else {
    /* calloc: zero pages are mapped lazily, so a large zero array costs no RSS until touched.
     * At least one byte so that an empty shard still has a distinct non-NULL buffer. */
    size_t bytes = (size_t)n * esize;
    s->data = calloc(bytes > 0 ? bytes : 1, 1);
    if (s->data == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "array_add_shard: cannot allocate %zu bytes", bytes);
    s->owns_data = true;
  }
  array->n_shards++;
  return CKPT_OK;
}

static ckpt_status new_whole(ckpt_dtype dtype, int ndim, const int64_t *shape, void *data,
                             ckpt_array **out, ckpt_error *err) {
  ckpt_status st = ckpt_array_new_sharded(dtype, ndim, shape, out, err);
  if (st != CKPT_OK)
    return st;
  int64_t zero[CKPT_MAX_RANK] = {0};
  st = ckpt_array_add_shard(*out, zero, (*out)->shape, data, 0, err);
  if (st != CKPT_OK) {
    ckpt_array_free(*out);
    *out = NULL;
  }
  return st;
}

ckpt_status ckpt_array_new(ckpt_dtype dtype, int ndim, const int64_t *shape, ckpt_array **out,
                           ckpt_error *err) {
  return new_whole(dtype, ndim, shape, NULL, out, err);
}

ckpt_status ckpt_array_wrap(ckpt_dtype dtype, int ndim, const int64_t *shape, void *data,
                            ckpt_array **out, ckpt_error *err) {
  if (data == NULL) {
    *out = NULL;
    return ckpt_error_set(err, CKPT_EINVAL, "array_wrap: NULL data");
  }
  return new_whole(dtype, ndim, shape, data, out, err);
}

void ckpt_array_free(ckpt_array *array) {
  if (array == NULL)
    return;
  for (size_t i = 0; i < array->n_shards; i++) {
    if (array->shards[i].owns_data)
      free(array->shards[i].data);
  }
  free(array->shards);
  free(array);
}

static uint64_t shard_bytes(const ckpt_array *a, const ckpt_shard *s) {
  int64_t n = box_elements(a->ndim, s->shape, ckpt_dtype_size(a->dtype));
  return n < 0 ? 0 : (uint64_t)n * ckpt_dtype_size(a->dtype);
}

ckpt_array *ckpt_array_clone(const ckpt_array *array) {
  if (array == NULL)
    return NULL;
  ckpt_array *c = calloc(1, sizeof *c);
  if (c == NULL)
    return NULL;
  c->dtype = array->dtype;
  c->ndim = array->ndim;
  memcpy(c->shape, array->shape, sizeof c->shape);
  if (array->n_shards > 0) {
    c->shards = calloc(array->n_shards, sizeof *c->shards);
    if (c->shards == NULL) {
      free(c);
      return NULL;
    }
  }
  for (size_t i = 0; i < array->n_shards; i++) {
    const ckpt_shard *s = &array->shards[i];
    ckpt_shard *d = &c->shards[i];
    *d = *s;
    size_t bytes = (size_t)shard_bytes(array, s);
    d->data = malloc(bytes > 0 ? bytes : 1);
    d->owns_data = true;
    if (d->data == NULL) {
      c->n_shards = i;
      ckpt_array_free(c);
      return NULL;
    }
    if (bytes > 0)
      memcpy(d->data, s->data, bytes);
    c->n_shards = i + 1;
  }
  return c;
}

bool ckpt_array_equal(const ckpt_array *a, const ckpt_array *b) {
  if (a == b)
    return true;
  if (a == NULL || b == NULL)
    return false;
  if (a->dtype != b->dtype || a->ndim != b->ndim || a->n_shards != b->n_shards)
    return false;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d])
      return false;
  for (size_t i = 0; i < a->n_shards; i++) {
    const ckpt_shard *x = &a->shards[i], *y = &b->shards[i];
    for (int d = 0; d < a->ndim; d++)
      if (x->offset[d] != y->offset[d] || x->shape[d] != y->shape[d])
        return false;
    uint64_t bytes = shard_bytes(a, x);
    if (bytes > 0 && memcmp(x->data, y->data, (size_t)bytes) != 0)
      return false;
  }
  return true;
}

int64_t ckpt_array_num_elements(const ckpt_array *array) {
  if (array == NULL)
    return 0;
  int64_t n = box_elements(array->ndim, array->shape, 0);
  return n < 0 ? 0 : n;
}

uint64_t ckpt_array_nbytes(const ckpt_array *array) {
  if (array == NULL)
    return 0;
  return (uint64_t)ckpt_array_num_elements(array) * ckpt_dtype_size(array->dtype);
}

void *ckpt_array_data(const ckpt_array *array) {
  if (array == NULL || array->n_shards != 1)
    return NULL;
  const ckpt_shard *s = &array->shards[0];
  for (int d = 0; d < array->ndim; d++)
    if (s->offset[d] != 0 || s->shape[d] != array->shape[d])
      return NULL;
  return s->data;
}

/* a's layout (dtype, shape, shard boxes, replica ids) with each shard's memory either shared
 * with a (share) or freshly zeroed. */
static ckpt_status same_layout(const ckpt_array *a, bool share, ckpt_array **out,
                               ckpt_error *err) {
  ckpt_array *v = NULL;
  *out = NULL;
  ckpt_status st = ckpt_array_new_sharded(a->dtype, a->ndim, a->shape, &v, err);
  if (st != CKPT_OK)
    return st;
  for (size_t i = 0; i < a->n_shards; i++) {
    const ckpt_shard *s = &a->shards[i];
    st = ckpt_array_add_shard(v, s->offset, s->shape, share ? s->data : NULL, s->replica_id, err);
    if (st != CKPT_OK) {
      ckpt_array_free(v);
      return st;
    }
  }
  *out = v;
  return CKPT_OK;
}

ckpt_status ckpt_array_like(const ckpt_array *a, ckpt_array **out, ckpt_error *err) {
  return same_layout(a, false, out, err);
}

ckpt_status ckpt_array_view(const ckpt_array *a, ckpt_array **out, ckpt_error *err) {
  return same_layout(a, true, out, err);
}
