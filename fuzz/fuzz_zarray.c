/* fuzz/fuzz_zarray.c — storage/zarr.c's .zarray decoder (ckpt_zarr_meta_decode), which every
 * array restore and `ckpt verify` runs on a file from the checkpoint.
 *
 * Properties: no crash, leak or UB; a failure carries a message; an accepted document gives a
 * chunk grid whose arithmetic stays in range (every chunk's box lies inside the shape), and,
 * when ckpt can write its dtype, encoding it and decoding that gives the same metadata. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "storage/zarr.h"

static void check_grid(const ckpt_zarr_meta *m) {
  int64_t grid[CKPT_MAX_RANK];
  uint64_t n = ckpt_zarr_grid(m, grid);
  (void)ckpt_zarr_chunk_elements(m);
  if (n == 0)
    return;
  /* The first and the last chunk: their keys and boxes. */
  uint64_t probe[2] = {0, n - 1};
  for (int i = 0; i < 2; i++) {
    int64_t index[CKPT_MAX_RANK], off[CKPT_MAX_RANK], ext[CKPT_MAX_RANK];
    char key[CKPT_ZARR_KEY_MAX];
    ckpt_zarr_chunk_index(m, grid, probe[i], index);
    ckpt_zarr_chunk_key(m, index, key);
    ckpt_zarr_chunk_box(m, index, off, ext);
    for (int d = 0; d < m->ndim; d++)
      fuzz_require(off[d] >= 0 && ext[d] > 0 && ext[d] <= m->shape[d] - off[d],
                   "a chunk's box lies outside the array");
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_zarr_meta m;
  ckpt_status st = ckpt_zarr_meta_decode((const char *)data, size, "fuzz/.zarray", &m, &err);
  fuzz_require_error(st, &err, "ckpt_zarr_meta_decode");
  if (st != CKPT_OK)
    return 0;
  fuzz_require(m.ndim >= 0 && m.ndim <= CKPT_MAX_RANK, "rank out of range");
  check_grid(&m);
  if (m.big_endian || ckpt_dtype_zarr(m.dtype) == NULL)
    return 0; /* read-only forms: ckpt never writes them */
  char *json = NULL;
  size_t len = 0;
  st = ckpt_zarr_meta_encode(&m, &json, &len, &err);
  fuzz_require(st == CKPT_OK, "accepted metadata cannot be encoded");
  ckpt_zarr_meta back;
  st = ckpt_zarr_meta_decode(json, len, "encoded", &back, &err);
  fuzz_require(st == CKPT_OK, "encoded metadata is not decoded");
  fuzz_require(back.dtype == m.dtype && back.ndim == m.ndim &&
                   memcmp(back.shape, m.shape, sizeof m.shape[0] * (size_t)m.ndim) == 0 &&
                   memcmp(back.chunks, m.chunks, sizeof m.chunks[0] * (size_t)m.ndim) == 0 &&
                   back.compressor == m.compressor &&
                   (m.compressor != CKPT_COMPRESSION_ZSTD || back.level == m.level) &&
                   back.separator == (m.separator ? m.separator : '.'),
               "decode(encode(meta)) differs from meta");
  free(json);
  return 0;
}
