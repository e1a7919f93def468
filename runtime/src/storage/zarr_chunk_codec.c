/* storage/zarr_chunk_codec.c — one chunk's stored bytes ↔ its raw C-order buffer, for either
 * zarr version, as a unit: what `ckpt convert` needs to move a chunk between value formats
 * (zarr v2 ⇄ zarr v3) without a write plan or a read request. The decoders and encoders are
 * the reader's and writer's own (zstd frames for v2, zarr3_codec.c's chain for v3): this file
 * only dispatches, so a converted chunk is exactly what a save of the same data would store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "storage/zarr_io.h"

ckpt_status ckpt_zarr_decompress_v2(const void *stored, size_t n, void *raw, uint64_t raw_bytes,
                                    const char *name, const char *key, ckpt_error *err) {
  unsigned long long fsz = ZSTD_getFrameContentSize(stored, n);
  if (fsz == ZSTD_CONTENTSIZE_ERROR || (fsz != ZSTD_CONTENTSIZE_UNKNOWN && fsz != raw_bytes))
    return ckpt_error_set(err, CKPT_ECORRUPT,
                          "array '%s': chunk '%s' is not a zstd frame of %llu bytes", name, key,
                          (unsigned long long)raw_bytes);
  size_t r = ZSTD_decompress(raw, (size_t)raw_bytes, stored, n);
  if (ZSTD_isError(r) || r != raw_bytes)
    return ckpt_error_set(err, CKPT_ECORRUPT, "array '%s': chunk '%s' does not decompress: %s",
                          name, key, ZSTD_isError(r) ? ZSTD_getErrorName(r) : "wrong size");
  return CKPT_OK;
}

bool ckpt_zarr_frame_has_size(const void *stored, size_t n) {
  unsigned long long fsz = ZSTD_getFrameContentSize(stored, n);
  return fsz != ZSTD_CONTENTSIZE_UNKNOWN && fsz != ZSTD_CONTENTSIZE_ERROR;
}

ckpt_status ckpt_zarr_decode_chunk(const ckpt_zarr_meta *m, const void *stored, size_t n, void *raw,
                                   const char *name, const char *key, ckpt_error *err) {
  uint64_t raw_bytes = ckpt_zarr_chunk_elements(m) * ckpt_dtype_size(m->dtype);
  if (m->zarr3)
    return ckpt_zarr3_decode_chunk(m, stored, n, raw, NULL, NULL, name, key, err);
  if (m->compressor == CKPT_COMPRESSION_NONE) {
    if (n != raw_bytes)
      return ckpt_error_set(err, CKPT_ECORRUPT,
                            "array '%s': chunk '%s' holds %zu bytes, expected %llu", name, key, n,
                            (unsigned long long)raw_bytes);
    memcpy(raw, stored, n);
  } else {
    ckpt_status st = ckpt_zarr_decompress_v2(stored, n, raw, raw_bytes, name, key, err);
    if (st != CKPT_OK)
      return st;
  }
  if (m->big_endian)
    ckpt_zarr_byteswap(m->dtype, raw, (size_t)(raw_bytes / ckpt_dtype_size(m->dtype)));
  return CKPT_OK;
}

ckpt_status ckpt_zarr_encode_chunk(const ckpt_zarr_meta *m, const void *raw, void **out,
                                   size_t *out_n, const char *name, const char *key,
                                   ckpt_error *err) {
  *out = NULL;
  *out_n = 0;
  size_t raw_bytes = (size_t)(ckpt_zarr_chunk_elements(m) * ckpt_dtype_size(m->dtype));
  if (m->zarr3)
    return ckpt_zarr3_encode_chunk(m, raw, out, out_n, name, key, err);
  if (m->big_endian)
    return ckpt_error_set(err, CKPT_EUNSUPPORTED,
                          "array '%s': chunk '%s': big-endian zarr v2 chunks are read, not written",
                          name, key);
  if (m->compressor == CKPT_COMPRESSION_ZSTD) {
    char what[300];
    snprintf(what, sizeof what, "array '%.200s' chunk '%.40s'", name, key);
    /* ZSTD_compress records the content size in the frame header (zarr-python needs it). */
    return ckpt_zarr_compress(raw, raw_bytes, m->level, out, out_n, what, err);
  }
  void *copy = malloc(raw_bytes > 0 ? raw_bytes : 1);
  if (copy == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "array '%s': cannot allocate chunk '%s'", name, key);
  memcpy(copy, raw, raw_bytes);
  *out = copy;
  *out_n = raw_bytes;
  return CKPT_OK;
}
