/* storage/zarr3_shard.c — the sharding_indexed codec (zarr3.h): a shard is a grid of inner
 * chunks, each encoded by the inner chain and stored at (offset, nbytes) in the shard; the
 * index of those pairs (uint64, shape inner grid + [2], 2^64-1 twice for an inner chunk that
 * is not stored) is encoded by the index chain and sits at the start or the end. The index has
 * a fixed size (zarr3_meta.c allows only bytes, transpose and crc32c on it), so it is found
 * without reading anything else; every pair is checked to lie inside the shard before an inner
 * chunk is decoded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/zarr3_internal.h"

#define MISSING UINT64_MAX

/* The inner grid of a shard of shape; false when shape is not a multiple of the inner shape. */
static bool inner_grid(const ckpt_zarr3_spec *spec, int rank, const int64_t *shape, int64_t *grid,
                       uint64_t *n_inner) {
  *n_inner = 1;
  for (int i = 0; i < rank; i++) {
    if (spec->inner[i] <= 0 || shape[i] % spec->inner[i] != 0)
      return false;
    grid[i] = shape[i] / spec->inner[i];
    *n_inner *= (uint64_t)grid[i];
  }
  return true;
}

static uint64_t index_bytes(const ckpt_zarr3_spec *spec, uint64_t n_inner) {
  uint64_t n = n_inner * 16;
  for (int k = 0; k < spec->index_codecs.n; k++)
    if (spec->index_codecs.c[k].id == CKPT_ZARR3_CRC32C)
      n += 4;
  return n;
}

/* Reads and checks the index of a shard (n bytes); *pairs malloc'ed. */
static ckpt_status read_index(z3_ctx *x, int rank, const int64_t *shape, const unsigned char *in,
                              size_t n, uint64_t **pairs, uint64_t *n_inner, int64_t *grid) {
  *pairs = NULL;
  const ckpt_zarr3_spec *spec = x->spec;
  if (!inner_grid(spec, rank, shape, grid, n_inner))
    return ckpt_zarr3_fail(x, CKPT_ECORRUPT,
                           "the shard's shape is not a multiple of the inner chunk shape%s", "");
  uint64_t isz = index_bytes(spec, *n_inner);
  if (isz > n) {
    char d[120];
    snprintf(d, sizeof d, "the shard has %zu bytes, fewer than its index (%llu)", n,
             (unsigned long long)isz);
    return ckpt_zarr3_fail(x, CKPT_ECORRUPT, "%s", d);
  }
  uint64_t *p = malloc((size_t)(*n_inner * 16));
  if (p == NULL)
    return ckpt_zarr3_fail(x, CKPT_ENOMEM, "out of memory for the shard index%s", "");
  int64_t ishape[CKPT_MAX_RANK + 1];
  memcpy(ishape, grid, sizeof(int64_t) * (size_t)rank);
  ishape[rank] = 2;
  z3_ctx ix = *x;
  ix.what = "the shard index";
  const unsigned char *at = spec->index_at_start ? in : in + (n - isz);
  ckpt_status st = ckpt_zarr3_chain_decode(&ix, &spec->index_codecs, CKPT_DTYPE_UINT64, rank + 1,
                                           ishape, at, (size_t)isz, (unsigned char *)p, NULL, NULL);
  for (uint64_t i = 0; st == CKPT_OK && i < *n_inner; i++) {
    uint64_t off = p[2 * i], nb = p[2 * i + 1];
    if (off == MISSING && nb == MISSING)
      continue;
    if (nb > n || off > n - nb) {
      char d[160];
      snprintf(d, sizeof d,
               "inner chunk %llu at offset %llu, %llu bytes, lies outside the shard's %zu bytes",
               (unsigned long long)i, (unsigned long long)off, (unsigned long long)nb, n);
      st = ckpt_zarr3_fail(x, CKPT_ECORRUPT, "%s", d);
    }
  }
  if (st != CKPT_OK) {
    free(p);
    return st;
  }
  *pairs = p;
  return CKPT_OK;
}

ckpt_status ckpt_zarr3_shard_decode(z3_ctx *x, ckpt_dtype dt, int rank, const int64_t *shape,
                                    const unsigned char *in, size_t n, unsigned char *out,
                                    const int64_t *want_off, const int64_t *want_ext) {
  const ckpt_zarr3_spec *spec = x->spec;
  int64_t grid[CKPT_MAX_RANK + 1];
  uint64_t n_inner, *pairs;
  ckpt_status st = read_index(x, rank, shape, in, n, &pairs, &n_inner, grid);
  if (st != CKPT_OK)
    return st;
  size_t es = ckpt_dtype_size(dt);
  uint64_t inner_bytes = ckpt_zarr3_elements(rank, spec->inner) * es;
  unsigned char *tmp = NULL;
  if (n_inner > 1) {
    tmp = malloc(inner_bytes > 0 ? (size_t)inner_bytes : 1);
    if (tmp == NULL) {
      free(pairs);
      return ckpt_zarr3_fail(x, CKPT_ENOMEM, "out of memory for an inner chunk%s", "");
    }
  }
  int64_t idx[CKPT_MAX_RANK + 1] = {0}, zero[CKPT_MAX_RANK + 1] = {0};
  for (uint64_t i = 0; st == CKPT_OK && i < n_inner; i++) {
    int64_t off[CKPT_MAX_RANK + 1], io[CKPT_MAX_RANK + 1], ie[CKPT_MAX_RANK + 1];
    for (int d = 0; d < rank; d++)
      off[d] = idx[d] * spec->inner[d];
    bool wanted = want_off == NULL || rank == 0 ||
                  ckpt_box_intersect(rank, off, spec->inner, want_off, want_ext, io, ie);
    if (wanted && pairs[2 * i] == MISSING) {
      /* not stored: the fill value (stored dtype; the array's, as shards hold its elements) */
      ckpt_box_fill(rank, spec->inner, out, es, shape, off, x->m->fill);
    } else if (wanted) {
      char what[48];
      snprintf(what, sizeof what, "inner chunk %llu", (unsigned long long)i);
      z3_ctx ic = *x;
      ic.what = what;
      unsigned char *dst = n_inner > 1 ? tmp : out;
      st = ckpt_zarr3_chain_decode(&ic, &spec->inner_codecs, dt, rank, spec->inner,
                                   in + pairs[2 * i], (size_t)pairs[2 * i + 1], dst, NULL, NULL);
      if (st == CKPT_OK && n_inner > 1)
        ckpt_box_copy(rank, spec->inner, out, dt, shape, off, tmp, dt, spec->inner, zero);
    }
    for (int d = rank - 1; d >= 0; d--) {
      if (++idx[d] < grid[d])
        break;
      idx[d] = 0;
    }
  }
  free(tmp);
  free(pairs);
  return st;
}

ckpt_status ckpt_zarr3_shard_encode(z3_ctx *x, ckpt_dtype dt, int rank, const int64_t *shape,
                                    const unsigned char *raw, unsigned char **out, size_t *out_n) {
  const ckpt_zarr3_spec *spec = x->spec;
  *out = NULL;
  int64_t grid[CKPT_MAX_RANK + 1];
  uint64_t n_inner;
  if (!inner_grid(spec, rank, shape, grid, &n_inner))
    return ckpt_zarr3_fail(x, CKPT_EINVAL,
                           "the shard's shape is not a multiple of the inner chunk shape%s", "");
  size_t es = ckpt_dtype_size(dt);
  uint64_t inner_bytes = ckpt_zarr3_elements(rank, spec->inner) * es;
  uint64_t isz = index_bytes(spec, n_inner);
  uint64_t *pairs = malloc((size_t)(n_inner * 16));
  unsigned char **pieces = calloc((size_t)n_inner, sizeof *pieces);
  unsigned char *tmp = n_inner > 1 ? malloc(inner_bytes > 0 ? (size_t)inner_bytes : 1) : NULL;
  unsigned char *index = NULL, *buf = NULL;
  size_t index_n = 0;
  ckpt_status st = CKPT_OK;
  if (pairs == NULL || pieces == NULL || (n_inner > 1 && tmp == NULL))
    st = ckpt_zarr3_fail(x, CKPT_ENOMEM, "out of memory encoding a shard%s", "");
  int64_t idx[CKPT_MAX_RANK + 1] = {0}, zero[CKPT_MAX_RANK + 1] = {0};
  uint64_t pos = spec->index_at_start ? isz : 0;
  for (uint64_t i = 0; st == CKPT_OK && i < n_inner; i++) {
    int64_t off[CKPT_MAX_RANK + 1];
    for (int d = 0; d < rank; d++)
      off[d] = idx[d] * spec->inner[d];
    const unsigned char *src = raw;
    if (n_inner > 1) {
      ckpt_box_copy(rank, spec->inner, tmp, dt, spec->inner, zero, raw, dt, shape, off);
      src = tmp;
    }
    size_t pn = 0;
    st = ckpt_zarr3_chain_encode(x, &spec->inner_codecs, dt, rank, spec->inner, src, &pieces[i],
                                 &pn);
    pairs[2 * i] = pos;
    pairs[2 * i + 1] = pn;
    pos += pn;
    for (int d = rank - 1; d >= 0; d--) {
      if (++idx[d] < grid[d])
        break;
      idx[d] = 0;
    }
  }
  if (st == CKPT_OK) {
    int64_t ishape[CKPT_MAX_RANK + 1];
    memcpy(ishape, grid, sizeof(int64_t) * (size_t)rank);
    ishape[rank] = 2;
    z3_ctx ix = *x;
    ix.what = "the shard index";
    st = ckpt_zarr3_chain_encode(&ix, &spec->index_codecs, CKPT_DTYPE_UINT64, rank + 1, ishape,
                                 (const unsigned char *)pairs, &index, &index_n);
    if (st == CKPT_OK && index_n != isz)
      st = ckpt_zarr3_fail(x, CKPT_EINVAL, "the shard index has an unexpected size%s", "");
  }
  uint64_t total = pos + (spec->index_at_start ? 0 : isz);
  if (st == CKPT_OK && (buf = malloc(total > 0 ? (size_t)total : 1)) == NULL)
    st = ckpt_zarr3_fail(x, CKPT_ENOMEM, "out of memory encoding a shard%s", "");
  if (st == CKPT_OK) {
    if (spec->index_at_start)
      memcpy(buf, index, index_n);
    for (uint64_t i = 0; i < n_inner; i++)
      memcpy(buf + pairs[2 * i], pieces[i], (size_t)pairs[2 * i + 1]);
    if (!spec->index_at_start)
      memcpy(buf + pos, index, index_n);
    *out = buf;
    *out_n = (size_t)total;
  }
  for (uint64_t i = 0; pieces != NULL && i < n_inner; i++)
    free(pieces[i]);
  free(pieces);
  free(pairs);
  free(tmp);
  free(index);
  return st;
}

ckpt_status ckpt_zarr3_shard_index(const ckpt_zarr_meta *m, const void *shard, size_t n,
                                   uint64_t **pairs, uint64_t *n_inner, const char *name,
                                   const char *key, ckpt_error *err) {
  *pairs = NULL;
  *n_inner = 0;
  z3_ctx x = {m, &m->v3, name, key, "the shard", err};
  const ckpt_zarr3_chain *ch = &m->v3.codecs;
  int64_t shape[CKPT_MAX_RANK + 1];
  memcpy(shape, m->chunks, sizeof(int64_t) * (size_t)m->ndim);
  int k = 0;
  for (; k < ch->n && ch->c[k].id == CKPT_ZARR3_TRANSPOSE; k++) {
    int64_t t[CKPT_MAX_RANK + 1];
    for (int i = 0; i < m->ndim; i++)
      t[i] = shape[ch->c[k].order[i]];
    memcpy(shape, t, sizeof(int64_t) * (size_t)m->ndim);
  }
  if (k >= ch->n || ch->c[k].id != CKPT_ZARR3_SHARDING)
    return ckpt_error_set(err, CKPT_EINVAL, "array '%s': not a sharded array", name);
  int64_t grid[CKPT_MAX_RANK + 1];
  return read_index(&x, m->ndim, shape, shard, n, pairs, n_inner, grid);
}
