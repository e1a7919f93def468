/* storage/zarr3_codec.c — the zarr v3 codec pipeline (zarr3.h): a stored chunk decoded into
 * the raw C-order chunk and back. Bytes→bytes codecs (zstd, blosc, gzip, crc32c), array→array
 * (transpose), array→bytes (bytes; sharding_indexed, whose shard index and inner chunks are in
 * zarr3_shard.c). No file I/O: the bytes come from zarr_read.c and go to zarr_write.c.
 *
 * Buffers: each stage allocates its output (malloc) and frees its input if it owned it; the
 * final array→bytes stage writes into the caller's buffer when no transpose follows. Every
 * decoded size is checked against the size the next stage expects, and decompression never
 * writes past a bound derived from the chunk's shape. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <blosc.h>
#include <zlib.h>
#include <zstd.h>

#include "storage/zarr.h"
#include "storage/zarr3_internal.h"
#include "util/crc32c.h"

/* ---------------------------------------------------------------- helpers */

ckpt_status ckpt_zarr3_fail(z3_ctx *x, ckpt_status code, const char *fmt, const char *detail) {
  char what[200];
  snprintf(what, sizeof what, fmt, detail ? detail : "");
  return ckpt_error_set(x->err, code, "array '%s': chunk '%s': %s", x->name, x->key, what);
}

uint64_t ckpt_zarr3_elements(int rank, const int64_t *shape) {
  uint64_t n = 1;
  for (int i = 0; i < rank; i++)
    n *= (uint64_t)shape[i];
  return n;
}

/* Shapes after each array→array codec: shapes[0] is the decoded shape, shapes[k+1] what codec k
 * (a transpose) produces. Returns the index of the array→bytes codec. */
static int chain_shapes(const ckpt_zarr3_chain *ch, int rank, const int64_t *shape,
                        int64_t (*shapes)[CKPT_MAX_RANK + 1]) {
  memcpy(shapes[0], shape, sizeof(int64_t) * (size_t)rank);
  int k = 0;
  for (; k < ch->n && ch->c[k].id == CKPT_ZARR3_TRANSPOSE; k++)
    for (int i = 0; i < rank; i++)
      shapes[k + 1][i] = shapes[k][ch->c[k].order[i]];
  return k;
}

/* Transposes between the decoded layout (shape dshape) and the encoded one (encoded dim i is
 * decoded dim order[i]). encode: dec → enc; else enc → dec. */
static void transpose(int rank, const uint8_t *order, const int64_t *dshape, size_t es,
                      const unsigned char *src, unsigned char *dst, bool encode) {
  uint64_t dstride[CKPT_MAX_RANK + 1], estride[CKPT_MAX_RANK + 1];
  int64_t eshape[CKPT_MAX_RANK + 1], idx[CKPT_MAX_RANK + 1] = {0};
  uint64_t s = 1;
  for (int i = rank - 1; i >= 0; i--) {
    dstride[i] = s;
    s *= (uint64_t)dshape[i];
  }
  for (int i = 0; i < rank; i++)
    eshape[i] = dshape[order[i]];
  s = 1;
  for (int i = rank - 1; i >= 0; i--) {
    estride[i] = s;
    s *= (uint64_t)eshape[i];
  }
  uint64_t total = s;
  for (uint64_t e = 0; e < total; e++) {
    uint64_t d = 0, ee = 0;
    for (int i = 0; i < rank; i++) {
      d += (uint64_t)idx[i] * dstride[order[i]];
      ee += (uint64_t)idx[i] * estride[i];
    }
    if (encode)
      memcpy(dst + ee * es, src + d * es, es);
    else
      memcpy(dst + d * es, src + ee * es, es);
    for (int i = rank - 1; i >= 0; i--) {
      if (++idx[i] < eshape[i])
        break;
      idx[i] = 0;
    }
  }
}

/* An upper bound on what the bytes→bytes codecs after position k produce from n bytes. */
static uint64_t bb_bound(const ckpt_zarr3_chain *ch, int from, uint64_t n) {
  for (int k = from; k < ch->n; k++) {
    switch (ch->c[k].id) {
      case CKPT_ZARR3_ZSTD:
        n = ZSTD_compressBound(n) + 4096;
        break;
      case CKPT_ZARR3_BLOSC:
        n = n + BLOSC_MAX_OVERHEAD + 4096;
        break;
      case CKPT_ZARR3_GZIP:
        n = compressBound((uLong)n) + 4096;
        break;
      case CKPT_ZARR3_CRC32C:
        n += 4;
        break;
      default:
        break;
    }
  }
  return n;
}

uint64_t ckpt_zarr3_chain_bound(const ckpt_zarr3_spec *spec, const ckpt_zarr3_chain *ch, int rank,
                                const int64_t *shape, size_t es) {
  int64_t shapes[CKPT_ZARR3_MAX_CODECS + 1][CKPT_MAX_RANK + 1];
  int ab = chain_shapes(ch, rank, shape, shapes);
  uint64_t raw = ckpt_zarr3_elements(rank, shape) * es, mid = raw;
  if (ab < ch->n && ch->c[ab].id == CKPT_ZARR3_SHARDING) {
    uint64_t n_inner = 1;
    for (int i = 0; i < rank; i++)
      n_inner *=
          (uint64_t)(spec->inner[i] > 0 ? (shapes[ab][i] + spec->inner[i] - 1) / spec->inner[i]
                                        : 1);
    mid = n_inner * ckpt_zarr3_chain_bound(spec, &spec->inner_codecs, rank, spec->inner, es) +
          n_inner * 16 + 64;
  }
  return bb_bound(ch, ab + 1, mid);
}

/* ---------------------------------------------------------------- bytes→bytes */

/* Decodes one bytes→bytes codec: *out is in itself (crc32c: the same bytes, shorter), dst when
 * given (at least limit bytes, the caller's), else a buffer malloc'ed here. */
static ckpt_status bb_decode(z3_ctx *x, const ckpt_zarr3_codec *c, const unsigned char *in,
                             size_t n, uint64_t limit, unsigned char *dst, unsigned char **out,
                             size_t *out_n) {
  *out = NULL;
  if (c->id == CKPT_ZARR3_CRC32C) {
    if (n < 4)
      return ckpt_zarr3_fail(x, CKPT_ECORRUPT, "crc32c: %s fewer than 4 bytes", x->what);
    uint32_t want = (uint32_t)in[n - 4] | (uint32_t)in[n - 3] << 8 | (uint32_t)in[n - 2] << 16 |
                    (uint32_t)in[n - 1] << 24;
    uint32_t got = ckpt_crc32c(0, in, n - 4);
    if (got != want) {
      char d[120];
      snprintf(d, sizeof d, "%s is corrupt (crc32c %08x, expected %08x)", x->what, got, want);
      return ckpt_zarr3_fail(x, CKPT_ECORRUPT, "%s", d);
    }
    *out = (unsigned char *)in; /* not copied: the caller sees the same buffer, shorter */
    *out_n = n - 4;
    return CKPT_OK;
  }
  if (limit > SIZE_MAX / 2)
    return ckpt_zarr3_fail(x, CKPT_ECORRUPT, "%s too large", x->what);
  unsigned char *buf = dst != NULL ? dst : malloc(limit > 0 ? (size_t)limit : 1);
  if (buf == NULL)
    return ckpt_zarr3_fail(x, CKPT_ENOMEM, "out of memory decoding %s", x->what);
  size_t got = 0;
  ckpt_status st = CKPT_OK;
  if (c->id == CKPT_ZARR3_ZSTD) {
    size_t r = ZSTD_decompress(buf, (size_t)limit, in, n);
    if (ZSTD_isError(r)) {
      char d[160];
      snprintf(d, sizeof d, "%s does not zstd-decompress: %s", x->what, ZSTD_getErrorName(r));
      st = ckpt_zarr3_fail(x, CKPT_ECORRUPT, "%s", d);
    }
    got = r;
  } else if (c->id == CKPT_ZARR3_BLOSC) {
    size_t nbytes = 0;
    if (n < BLOSC_MIN_HEADER_LENGTH || blosc_cbuffer_validate(in, n, &nbytes) != 0 ||
        nbytes > limit) {
      st = ckpt_zarr3_fail(x, CKPT_ECORRUPT, "%s is not a blosc buffer of the expected size",
                           x->what);
    } else {
      int r = blosc_decompress_ctx(in, buf, (size_t)limit, 1);
      if (r < 0 || (size_t)r != nbytes)
        st = ckpt_zarr3_fail(x, CKPT_ECORRUPT, "%s does not blosc-decompress", x->what);
      got = nbytes;
    }
  } else if (c->id == CKPT_ZARR3_GZIP) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
      st = ckpt_zarr3_fail(x, CKPT_ENOMEM, "gzip: cannot start inflating %s", x->what);
    } else {
      zs.next_in = (Bytef *)in;
      zs.avail_in = (uInt)n;
      zs.next_out = buf;
      zs.avail_out = (uInt)limit;
      int r = n > UINT32_MAX || limit > UINT32_MAX ? Z_BUF_ERROR : inflate(&zs, Z_FINISH);
      if (r != Z_STREAM_END || zs.avail_in != 0)
        st = ckpt_zarr3_fail(x, CKPT_ECORRUPT, "%s does not gunzip to the expected size", x->what);
      got = (size_t)zs.total_out;
      inflateEnd(&zs);
    }
  } else {
    st = ckpt_zarr3_fail(x, CKPT_EUNSUPPORTED, "codec \"%s\" is not a bytes→bytes codec",
                         ckpt_zarr3_codec_name(c->id));
  }
  if (st != CKPT_OK) {
    if (buf != dst)
      free(buf);
    return st;
  }
  *out = buf;
  *out_n = got;
  return CKPT_OK;
}

static ckpt_status bb_encode(z3_ctx *x, const ckpt_zarr3_codec *c, size_t es,
                             const unsigned char *in, size_t n, unsigned char **out,
                             size_t *out_n) {
  *out = NULL;
  if (c->id == CKPT_ZARR3_CRC32C) {
    unsigned char *buf = malloc(n + 4);
    if (buf == NULL)
      return ckpt_zarr3_fail(x, CKPT_ENOMEM, "out of memory encoding %s", x->what);
    memcpy(buf, in, n);
    uint32_t crc = ckpt_crc32c(0, in, n);
    for (int i = 0; i < 4; i++)
      buf[n + (size_t)i] = (unsigned char)(crc >> (8 * i));
    *out = buf;
    *out_n = n + 4;
    return CKPT_OK;
  }
  if (c->id == CKPT_ZARR3_ZSTD) {
    size_t cap = ZSTD_compressBound(n);
    unsigned char *buf = malloc(cap ? cap : 1);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    size_t r = 0;
    if (buf != NULL && cc != NULL) {
      ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, c->level);
      ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, c->checksum ? 1 : 0);
      r = ZSTD_compress2(cc, buf, cap, in, n);
    }
    ZSTD_freeCCtx(cc);
    if (buf == NULL || cc == NULL) {
      free(buf);
      return ckpt_zarr3_fail(x, CKPT_ENOMEM, "out of memory compressing %s with zstd", x->what);
    }
    if (ZSTD_isError(r)) {
      free(buf);
      return ckpt_zarr3_fail(x, CKPT_EIO, "zstd cannot compress it: %s", ZSTD_getErrorName(r));
    }
    *out = buf;
    *out_n = r;
    return CKPT_OK;
  }
  if (c->id == CKPT_ZARR3_BLOSC) {
    size_t cap = n + BLOSC_MAX_OVERHEAD;
    unsigned char *buf = malloc(cap);
    int r = -1;
    if (buf != NULL && n <= (size_t)BLOSC_MAX_BUFFERSIZE)
      r = blosc_compress_ctx(c->level, c->shuffle, c->typesize ? c->typesize : es, n, in, buf, cap,
                             c->cname, c->blocksize, 1);
    if (r <= 0) {
      free(buf);
      return ckpt_zarr3_fail(x, CKPT_EIO, "blosc cannot compress %s", x->what);
    }
    *out = buf;
    *out_n = (size_t)r;
    return CKPT_OK;
  }
  if (c->id == CKPT_ZARR3_GZIP) {
    uLong cap = compressBound((uLong)n) + 64;
    unsigned char *buf = malloc(cap);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    int r = Z_MEM_ERROR;
    if (buf != NULL && n <= UINT32_MAX &&
        deflateInit2(&zs, c->level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK) {
      zs.next_in = (Bytef *)in;
      zs.avail_in = (uInt)n;
      zs.next_out = buf;
      zs.avail_out = (uInt)cap;
      r = deflate(&zs, Z_FINISH);
      deflateEnd(&zs);
    }
    if (r != Z_STREAM_END) {
      free(buf);
      return ckpt_zarr3_fail(x, CKPT_ENOMEM, "gzip cannot compress %s", x->what);
    }
    *out = buf;
    *out_n = (size_t)zs.total_out;
    return CKPT_OK;
  }
  return ckpt_zarr3_fail(x, CKPT_EUNSUPPORTED, "codec \"%s\" is not a bytes→bytes codec",
                         ckpt_zarr3_codec_name(c->id));
}

/* ---------------------------------------------------------------- chains */

ckpt_status ckpt_zarr3_chain_decode(z3_ctx *x, const ckpt_zarr3_chain *ch, ckpt_dtype dt, int rank,
                                    const int64_t *shape, const unsigned char *in, size_t n,
                                    unsigned char *out, const int64_t *want_off,
                                    const int64_t *want_ext) {
  size_t es = ckpt_dtype_size(dt);
  int64_t shapes[CKPT_ZARR3_MAX_CODECS + 1][CKPT_MAX_RANK + 1];
  int ab = chain_shapes(ch, rank, shape, shapes);
  uint64_t raw = ckpt_zarr3_elements(rank, shape) * es;
  /* bytes→bytes, last first; each stage's output bounded by what the stages before it could
   * have made of the raw array */
  const unsigned char *cur = in;
  unsigned char *owned = NULL;
  size_t cur_n = n;
  ckpt_status st = CKPT_OK;
  for (int k = ch->n - 1; k > ab && st == CKPT_OK; k--) {
    unsigned char *next = NULL;
    size_t next_n = 0;
    ckpt_zarr3_chain part = *ch; /* what codecs 0 .. k-1 make at most */
    part.n = k;
    uint64_t limit = ckpt_zarr3_chain_bound(x->spec, &part, rank, shape, es);
    /* the stage that yields the array's bytes, untransposed: straight into out (no copy) */
    bool direct = k == ab + 1 && ab == 0 && ch->c[ab].id == CKPT_ZARR3_BYTES;
    st = bb_decode(x, &ch->c[k], cur, cur_n, limit, direct ? out : NULL, &next, &next_n);
    if (st == CKPT_OK && next != cur && next != out) {
      free(owned);
      owned = next;
    }
    if (st == CKPT_OK) {
      cur = next;
      cur_n = next_n;
    }
  }
  /* array→bytes into the encoded shape, then the transposes backwards */
  unsigned char *arr = out, *tmp = NULL;
  if (st == CKPT_OK && ab > 0) {
    tmp = malloc(raw > 0 ? (size_t)raw : 1);
    if (tmp == NULL)
      st = ckpt_zarr3_fail(x, CKPT_ENOMEM, "out of memory decoding %s", x->what);
    arr = tmp;
  }
  if (st == CKPT_OK) {
    const ckpt_zarr3_codec *c = &ch->c[ab];
    if (c->id == CKPT_ZARR3_BYTES) {
      if (cur_n != raw) {
        char d[120];
        snprintf(d, sizeof d, "%s has %zu bytes, expected %llu", x->what, cur_n,
                 (unsigned long long)raw);
        st = ckpt_zarr3_fail(x, CKPT_ECORRUPT, "%s", d);
      } else {
        if (cur != arr)
          memcpy(arr, cur, (size_t)raw);
        if (c->big_endian)
          ckpt_zarr_byteswap(dt, arr, (size_t)(raw / es));
      }
    } else {
      st = ckpt_zarr3_shard_decode(x, dt, rank, shapes[ab], cur, cur_n, arr,
                                   ab == 0 ? want_off : NULL, ab == 0 ? want_ext : NULL);
    }
  }
  for (int k = ab - 1; st == CKPT_OK && k >= 0; k--) {
    unsigned char *dst = k == 0 ? out : malloc(raw > 0 ? (size_t)raw : 1);
    if (dst == NULL) {
      st = ckpt_zarr3_fail(x, CKPT_ENOMEM, "out of memory decoding %s", x->what);
      break;
    }
    transpose(rank, ch->c[k].order, shapes[k], es, arr, dst, false);
    if (arr != out)
      free(arr);
    arr = dst;
    tmp = NULL;
  }
  if (arr != out)
    free(arr);
  else
    free(tmp);
  free(owned);
  return st;
}

ckpt_status ckpt_zarr3_chain_encode(z3_ctx *x, const ckpt_zarr3_chain *ch, ckpt_dtype dt, int rank,
                                    const int64_t *shape, const unsigned char *raw,
                                    unsigned char **out, size_t *out_n) {
  size_t es = ckpt_dtype_size(dt);
  int64_t shapes[CKPT_ZARR3_MAX_CODECS + 1][CKPT_MAX_RANK + 1];
  int ab = chain_shapes(ch, rank, shape, shapes);
  uint64_t nb = ckpt_zarr3_elements(rank, shape) * es;
  const unsigned char *arr = raw;
  unsigned char *owned = NULL;
  ckpt_status st = CKPT_OK;
  for (int k = 0; k < ab; k++) {
    unsigned char *dst = malloc(nb > 0 ? (size_t)nb : 1);
    if (dst == NULL) {
      free(owned);
      return ckpt_zarr3_fail(x, CKPT_ENOMEM, "out of memory encoding %s", x->what);
    }
    transpose(rank, ch->c[k].order, shapes[k], es, arr, dst, true);
    free(owned);
    owned = dst;
    arr = dst;
  }
  unsigned char *cur = NULL;
  size_t cur_n = 0;
  const ckpt_zarr3_codec *c = &ch->c[ab];
  /* little-endian bytes followed by a compressor: the compressor reads the array itself */
  const unsigned char *view = NULL;
  if (c->id == CKPT_ZARR3_BYTES && !c->big_endian && ab + 1 < ch->n) {
    view = arr;
    cur_n = (size_t)nb;
  } else if (c->id == CKPT_ZARR3_BYTES) {
    cur = malloc(nb > 0 ? (size_t)nb : 1);
    if (cur == NULL) {
      st = ckpt_zarr3_fail(x, CKPT_ENOMEM, "out of memory encoding %s", x->what);
    } else {
      memcpy(cur, arr, (size_t)nb);
      cur_n = (size_t)nb;
      if (c->big_endian)
        ckpt_zarr_byteswap(dt, cur, (size_t)(nb / es));
    }
  } else {
    st = ckpt_zarr3_shard_encode(x, dt, rank, shapes[ab], arr, &cur, &cur_n);
  }
  for (int k = ab + 1; st == CKPT_OK && k < ch->n; k++) {
    unsigned char *next = NULL;
    size_t next_n = 0;
    st = bb_encode(x, &ch->c[k], es, view != NULL ? view : cur, cur_n, &next, &next_n);
    if (st == CKPT_OK) {
      free(cur);
      view = NULL;
      cur = next;
      cur_n = next_n;
    }
  }
  free(owned); /* after the stages: view may point into it */
  if (st != CKPT_OK) {
    free(cur);
    return st;
  }
  *out = cur;
  *out_n = cur_n;
  return CKPT_OK;
}

/* ---------------------------------------------------------------- the chunk API */

uint64_t ckpt_zarr3_stored_limit(const ckpt_zarr_meta *m) {
  return ckpt_zarr3_chain_bound(&m->v3, &m->v3.codecs, m->ndim, m->chunks,
                                ckpt_dtype_size(m->dtype)) +
         ((uint64_t)1 << 20);
}

ckpt_status ckpt_zarr3_decode_chunk(const ckpt_zarr_meta *m, const void *stored, size_t n,
                                    void *out, const int64_t *want_off, const int64_t *want_ext,
                                    const char *name, const char *key, ckpt_error *err) {
  z3_ctx x = {m, &m->v3, name, key, "the chunk", err};
  return ckpt_zarr3_chain_decode(&x, &m->v3.codecs, m->dtype, m->ndim, m->chunks, stored, n, out,
                                 want_off, want_ext);
}

ckpt_status ckpt_zarr3_encode_chunk(const ckpt_zarr_meta *m, const void *raw, void **out,
                                    size_t *out_n, const char *name, const char *key,
                                    ckpt_error *err) {
  z3_ctx x = {m, &m->v3, name, key, "the chunk", err};
  unsigned char *o = NULL;
  ckpt_status st =
      ckpt_zarr3_chain_encode(&x, &m->v3.codecs, m->dtype, m->ndim, m->chunks, raw, &o, out_n);
  *out = o;
  return st;
}
