/* fuzz/fuzz_zarr3.c — storage/zarr3.h's zarr.json parser and chunk decoder (sharding index
 * included), which every restore and `ckpt verify` of a zarr v3 array runs on bytes from the
 * checkpoint.
 *
 * Input: zarr.json, a NUL byte, then the stored bytes of chunk 0 (without a NUL, the whole
 * input is zarr.json). Properties: no crash, leak or UB; a failure carries a message; accepted
 * metadata survives encode → decode; a chunk that decodes re-encodes (ckpt's own encoder) and
 * decodes back to the same elements; a shard index that decodes lies inside the shard. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "storage/zarr.h"

/* Decoding allocates the chunk: keep the fuzzer's chunks small. */
#define MAX_CHUNK_BYTES ((uint64_t)1 << 20)

static void check_chunk(const ckpt_zarr_meta *m, const uint8_t *stored, size_t n) {
  uint64_t bytes = ckpt_zarr_chunk_elements(m) * ckpt_dtype_size(m->dtype);
  if (bytes > MAX_CHUNK_BYTES || n > ckpt_zarr3_stored_limit(m))
    return;
  ckpt_error err = CKPT_ERROR_INIT;
  if (m->v3.codecs.c[0].id == CKPT_ZARR3_SHARDING) {
    uint64_t *pairs = NULL, n_inner = 0;
    ckpt_status st = ckpt_zarr3_shard_index(m, stored, n, &pairs, &n_inner, "x", "c", &err);
    fuzz_require_error(st, &err, "ckpt_zarr3_shard_index");
    for (uint64_t i = 0; st == CKPT_OK && i < n_inner; i++)
      fuzz_require(pairs[2 * i] == UINT64_MAX ||
                       (pairs[2 * i + 1] <= n && pairs[2 * i] <= n - pairs[2 * i + 1]),
                   "an accepted index entry lies outside the shard");
    free(pairs);
    err = (ckpt_error)CKPT_ERROR_INIT;
  }
  unsigned char *out = malloc(bytes ? (size_t)bytes : 1);
  fuzz_require(out != NULL, "out of memory");
  ckpt_status st = ckpt_zarr3_decode_chunk(m, stored, n, out, NULL, NULL, "x", "c", &err);
  fuzz_require_error(st, &err, "ckpt_zarr3_decode_chunk");
  if (st == CKPT_OK) {
    void *enc = NULL;
    size_t en = 0;
    st = ckpt_zarr3_encode_chunk(m, out, &enc, &en, "x", "c", &err);
    fuzz_require_error(st, &err, "ckpt_zarr3_encode_chunk");
    if (st == CKPT_OK) {
      unsigned char *back = malloc(bytes ? (size_t)bytes : 1);
      fuzz_require(back != NULL, "out of memory");
      st = ckpt_zarr3_decode_chunk(m, enc, en, back, NULL, NULL, "x", "c", &err);
      fuzz_require(st == CKPT_OK, "ckpt's own encoding does not decode");
      fuzz_require(memcmp(back, out, (size_t)bytes) == 0, "decode(encode(chunk)) differs");
      free(back);
    }
    free(enc);
  }
  free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *nul = memchr(data, 0, size);
  size_t jn = nul ? (size_t)(nul - data) : size;
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_zarr_meta m;
  ckpt_status st = ckpt_zarr3_meta_decode((const char *)data, jn, "fuzz/zarr.json", &m, &err);
  fuzz_require_error(st, &err, "ckpt_zarr3_meta_decode");
  if (st != CKPT_OK)
    return 0;
  fuzz_require(m.zarr3 && m.ndim >= 0 && m.ndim <= CKPT_MAX_RANK, "rank out of range");
  char *json = NULL;
  size_t len = 0;
  st = ckpt_zarr3_meta_encode(&m, &json, &len, &err);
  fuzz_require(st == CKPT_OK, "accepted metadata cannot be encoded");
  ckpt_zarr_meta back;
  st = ckpt_zarr3_meta_decode(json, len, "encoded", &back, &err);
  fuzz_require(st == CKPT_OK, "encoded metadata is not decoded");
  fuzz_require(back.dtype == m.dtype && back.ndim == m.ndim &&
                   memcmp(back.shape, m.shape, sizeof m.shape[0] * (size_t)m.ndim) == 0 &&
                   memcmp(back.chunks, m.chunks, sizeof m.chunks[0] * (size_t)m.ndim) == 0 &&
                   memcmp(back.fill, m.fill, ckpt_dtype_size(m.dtype)) == 0 &&
                   back.separator == m.separator && back.v3.key_default == m.v3.key_default &&
                   back.v3.codecs.n == m.v3.codecs.n &&
                   back.v3.inner_codecs.n == m.v3.inner_codecs.n &&
                   back.v3.index_codecs.n == m.v3.index_codecs.n,
               "decode(encode(meta)) differs from meta");
  free(json);
  if (nul != NULL)
    check_chunk(&m, nul + 1, size - jn - 1);
  return 0;
}
