/* storage/zarr3_internal.h — what zarr3_codec.c (the chains) and zarr3_shard.c
 * (sharding_indexed) share. Private to those two files. */
#ifndef CKPT_STORAGE_ZARR3_INTERNAL_H
#define CKPT_STORAGE_ZARR3_INTERNAL_H

#include "storage/zarr.h"

/* One decode or encode: the array, its spec, and what messages name. */
typedef struct z3_ctx {
  const ckpt_zarr_meta *m;
  const ckpt_zarr3_spec *spec;
  const char *name; /* the array (parameter) */
  const char *key;  /* the chunk */
  const char *what; /* the part being decoded: "the chunk", "inner chunk 3", "the shard index" */
  ckpt_error *err;
} z3_ctx;

/* "array '<name>': chunk '<key>': " + fmt (one %s: detail). */
ckpt_status ckpt_zarr3_fail(z3_ctx *x, ckpt_status code, const char *fmt, const char *detail);
uint64_t ckpt_zarr3_elements(int rank, const int64_t *shape);
/* Upper bound on the encoded size of an array of shape through ch. */
uint64_t ckpt_zarr3_chain_bound(const ckpt_zarr3_spec *spec, const ckpt_zarr3_chain *ch, int rank,
                                const int64_t *shape, size_t es);

/* Decodes n bytes through ch into out (C order, shape, dt). want_off/want_ext: see
 * ckpt_zarr3_decode_chunk (used by sharding only, and only without a transpose before it). */
ckpt_status ckpt_zarr3_chain_decode(z3_ctx *x, const ckpt_zarr3_chain *ch, ckpt_dtype dt, int rank,
                                    const int64_t *shape, const unsigned char *in, size_t n,
                                    unsigned char *out, const int64_t *want_off,
                                    const int64_t *want_ext);
/* Encodes raw (C order, shape, dt) through ch into *out (malloc'ed). */
ckpt_status ckpt_zarr3_chain_encode(z3_ctx *x, const ckpt_zarr3_chain *ch, ckpt_dtype dt, int rank,
                                    const int64_t *shape, const unsigned char *raw,
                                    unsigned char **out, size_t *out_n);

/* sharding_indexed: a shard of shape (the codec's input) from/into its bytes. */
ckpt_status ckpt_zarr3_shard_decode(z3_ctx *x, ckpt_dtype dt, int rank, const int64_t *shape,
                                    const unsigned char *in, size_t n, unsigned char *out,
                                    const int64_t *want_off, const int64_t *want_ext);
ckpt_status ckpt_zarr3_shard_encode(z3_ctx *x, ckpt_dtype dt, int rank, const int64_t *shape,
                                    const unsigned char *raw, unsigned char **out, size_t *out_n);

#endif
