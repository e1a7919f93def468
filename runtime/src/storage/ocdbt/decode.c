/* storage/ocdbt/decode.c — OCDBT's primitive decoders (format.h): varints, fixed-width
 * integers, envelopes (header, CRC-32C, zstd body) and data-file tables. Pure functions over
 * memory: no file access, so the fuzz target and the tests drive them directly. */
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "storage/ocdbt/format.h"
#include "util/crc32c.h"

static ckpt_status truncated(ckpt_ocdbt_in *in, const char *field, ckpt_error *err) {
  return ckpt_error_set(err, CKPT_ECORRUPT, "%s: %s truncated at byte %zu (of %zu)", in->where,
                        field, ckpt_ocdbt_in_pos(in), (size_t)(in->end - in->start));
}

ckpt_status ckpt_ocdbt_get_varint(ckpt_ocdbt_in *in, const char *field, uint64_t *v,
                                  ckpt_error *err) {
  uint64_t x = 0;
  const uint8_t *p = in->p;
  for (unsigned i = 0; i < CKPT_OCDBT_VARINT_MAX_BYTES; i++) {
    if (p == in->end)
      return truncated(in, field, err);
    uint8_t b = *p++;
    /* The tenth byte may only carry bit 63. */
    if (i == CKPT_OCDBT_VARINT_MAX_BYTES - 1 && (b & 0xfe))
      return ckpt_error_set(err, CKPT_ECORRUPT, "%s: %s at byte %zu: varint exceeds 64 bits",
                            in->where, field, ckpt_ocdbt_in_pos(in));
    x |= (uint64_t)(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) {
      in->p = p;
      *v = x;
      return CKPT_OK;
    }
  }
  return ckpt_error_set(err, CKPT_ECORRUPT, "%s: %s at byte %zu: varint longer than %u bytes",
                        in->where, field, ckpt_ocdbt_in_pos(in), CKPT_OCDBT_VARINT_MAX_BYTES);
}

ckpt_status ckpt_ocdbt_get_varint_max(ckpt_ocdbt_in *in, const char *field, uint64_t max,
                                      uint64_t *v, ckpt_error *err) {
  size_t pos = ckpt_ocdbt_in_pos(in);
  ckpt_status st = ckpt_ocdbt_get_varint(in, field, v, err);
  if (st != CKPT_OK)
    return st;
  if (*v > max)
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s: %s at byte %zu is %llu, more than %llu",
                          in->where, field, pos, (unsigned long long)*v, (unsigned long long)max);
  return CKPT_OK;
}

ckpt_status ckpt_ocdbt_get_u8(ckpt_ocdbt_in *in, const char *field, uint8_t *v, ckpt_error *err) {
  if (ckpt_ocdbt_in_left(in) < 1)
    return truncated(in, field, err);
  *v = *in->p++;
  return CKPT_OK;
}

ckpt_status ckpt_ocdbt_get_u32le(ckpt_ocdbt_in *in, const char *field, uint32_t *v,
                                 ckpt_error *err) {
  if (ckpt_ocdbt_in_left(in) < 4)
    return truncated(in, field, err);
  uint32_t x = 0;
  for (int i = 3; i >= 0; i--)
    x = (x << 8) | in->p[i];
  in->p += 4;
  *v = x;
  return CKPT_OK;
}

ckpt_status ckpt_ocdbt_get_u64le(ckpt_ocdbt_in *in, const char *field, uint64_t *v,
                                 ckpt_error *err) {
  if (ckpt_ocdbt_in_left(in) < 8)
    return truncated(in, field, err);
  uint64_t x = 0;
  for (int i = 7; i >= 0; i--)
    x = (x << 8) | in->p[i];
  in->p += 8;
  *v = x;
  return CKPT_OK;
}

ckpt_status ckpt_ocdbt_get_bytes(ckpt_ocdbt_in *in, const char *field, uint64_t n,
                                 const uint8_t **bytes, ckpt_error *err) {
  if (n > ckpt_ocdbt_in_left(in))
    return ckpt_error_set(err, CKPT_ECORRUPT,
                          "%s: %s of %llu bytes at byte %zu overruns the %zu "
                          "bytes left",
                          in->where, field, (unsigned long long)n, ckpt_ocdbt_in_pos(in),
                          ckpt_ocdbt_in_left(in));
  *bytes = in->p;
  in->p += n;
  return CKPT_OK;
}

/* ---------------------------------------------------------------- envelope */

/* One zstd frame of unknown decoded size, grown as it decodes up to max bytes. */
static ckpt_status unzstd(const uint8_t *src, size_t n, uint64_t max, const char *where,
                          uint8_t **out, size_t *out_len, ckpt_error *err) {
  unsigned long long known = ZSTD_getFrameContentSize(src, n);
  if (known == ZSTD_CONTENTSIZE_ERROR)
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s: body is not a zstd frame", where);
  if (known != ZSTD_CONTENTSIZE_UNKNOWN && known > max)
    return ckpt_error_set(err, CKPT_ECORRUPT,
                          "%s: decoded body of %llu bytes exceeds the "
                          "limit of %llu",
                          where, known, (unsigned long long)max);
  size_t cap = known != ZSTD_CONTENTSIZE_UNKNOWN ? (size_t)known + 1 : (n < 4096 ? 4096 : 4 * n);
  if (cap > max + 1)
    cap = (size_t)max + 1;
  ZSTD_DCtx *dctx = ZSTD_createDCtx();
  uint8_t *buf = malloc(cap);
  if (!dctx || !buf) {
    ZSTD_freeDCtx(dctx);
    free(buf);
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory decompressing", where);
  }
  ZSTD_inBuffer in = {src, n, 0};
  ZSTD_outBuffer o = {buf, cap, 0};
  ckpt_status st = CKPT_OK;
  for (;;) {
    size_t r = ZSTD_decompressStream(dctx, &o, &in);
    if (ZSTD_isError(r)) {
      st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: zstd: %s", where, ZSTD_getErrorName(r));
      break;
    }
    if (o.pos > max) {
      st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: decoded body exceeds the limit of %llu bytes",
                          where, (unsigned long long)max);
      break;
    }
    if (r == 0) { /* frame complete */
      if (in.pos != in.size)
        st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: %zu bytes after the zstd frame", where,
                            in.size - in.pos);
      break;
    }
    if (o.pos == o.size) {
      size_t ncap = o.size * 2;
      if (ncap > max + 1)
        ncap = (size_t)max + 1;
      uint8_t *nb = realloc(buf, ncap);
      if (!nb) {
        st = ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory decompressing", where);
        break;
      }
      buf = nb;
      o.dst = buf;
      o.size = ncap;
    } else if (in.pos == in.size) {
      st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: zstd frame truncated", where);
      break;
    }
  }
  ZSTD_freeDCtx(dctx);
  if (st != CKPT_OK) {
    free(buf);
    return st;
  }
  *out = buf;
  *out_len = o.pos;
  return CKPT_OK;
}

ckpt_status ckpt_ocdbt_open_envelope(const void *data, size_t n, uint32_t magic,
                                     uint64_t max_decoded, const char *where, uint8_t **body,
                                     size_t *body_len, ckpt_error *err) {
  *body = NULL;
  *body_len = 0;
  const uint8_t *b = data;
  if (n < CKPT_OCDBT_HEADER_FIXED_BYTES + 2 + CKPT_OCDBT_FOOTER_BYTES)
    return ckpt_error_set(err, CKPT_ECORRUPT,
                          "%s: %zu bytes is too short for a header and a "
                          "checksum",
                          where, n);
  uint32_t got_magic = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
  if (got_magic != magic)
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s: bad magic 0x%08x (expected 0x%08x)", where,
                          got_magic, magic);
  ckpt_ocdbt_in in = ckpt_ocdbt_in_make(b, n, where);
  in.p += 4;
  uint64_t length, version, compression;
  ckpt_status st = ckpt_ocdbt_get_u64le(&in, "length", &length, err);
  if (st != CKPT_OK)
    return st;
  if (length != n)
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s: header says %llu bytes but %zu are there%s",
                          where, (unsigned long long)length, n, length > n ? " (truncated)" : "");
  /* The checksum first: a damaged header field is then reported as what it is. */
  in.end -= CKPT_OCDBT_FOOTER_BYTES;
  uint32_t want = (uint32_t)b[n - 4] | (uint32_t)b[n - 3] << 8 | (uint32_t)b[n - 2] << 16 |
                  (uint32_t)b[n - 1] << 24;
  uint32_t crc = ckpt_crc32c(0, b, n - CKPT_OCDBT_FOOTER_BYTES);
  if (crc != want)
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s: CRC-32C mismatch (stored %08x, computed %08x)",
                          where, want, crc);
  if ((st = ckpt_ocdbt_get_varint(&in, "version", &version, err)) != CKPT_OK)
    return st;
  if (version != CKPT_OCDBT_FORMAT_VERSION)
    return ckpt_error_set(err, CKPT_EVERSION, "%s: format version %llu (only %u is known)", where,
                          (unsigned long long)version, CKPT_OCDBT_FORMAT_VERSION);
  if ((st = ckpt_ocdbt_get_varint(&in, "compression", &compression, err)) != CKPT_OK)
    return st;
  size_t left = ckpt_ocdbt_in_left(&in);
  if (compression == CKPT_OCDBT_COMPRESSION_ZSTD)
    return unzstd(in.p, left, max_decoded, where, body, body_len, err);
  if (compression != CKPT_OCDBT_COMPRESSION_NONE)
    return ckpt_error_set(err, CKPT_EUNSUPPORTED, "%s: unknown compression format %llu", where,
                          (unsigned long long)compression);
  if (left > max_decoded)
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s: body of %zu bytes exceeds the limit of %llu",
                          where, left, (unsigned long long)max_decoded);
  uint8_t *copy = malloc(left ? left : 1);
  if (!copy)
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", where);
  if (left)
    memcpy(copy, in.p, left);
  *body = copy;
  *body_len = left;
  return CKPT_OK;
}

/* ---------------------------------------------------------------- data-file tables */

void ckpt_ocdbt_file_table_free(ckpt_ocdbt_file_table *t) {
  if (!t)
    return;
  if (t->path)
    for (size_t i = 0; i < t->n; i++)
      free(t->path[i]);
  free(t->path);
  free(t->path_len);
  free(t->base_len);
  memset(t, 0, sizeof *t);
}

/* No NUL, not absolute, no empty, "." or ".." component (a trailing '/' is allowed: base
 * paths end with one). */
static bool safe_relative_path(const char *p, size_t n) {
  if (n == 0 || p[0] == '/' || memchr(p, '\0', n))
    return false;
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && p[j] != '/')
      j++;
    size_t len = j - i;
    if (len == 0)
      return false; /* "a//b" */
    if ((len == 1 && p[i] == '.') || (len == 2 && p[i] == '.' && p[i + 1] == '.'))
      return false;
    i = j + 1;
  }
  return true;
}

ckpt_status ckpt_ocdbt_get_file_table(ckpt_ocdbt_in *in, ckpt_ocdbt_file_table *t,
                                      ckpt_error *err) {
  memset(t, 0, sizeof *t);
  uint64_t n;
  /* Each file costs at least two bytes of varints: a count beyond that is a lie. */
  ckpt_status st =
      ckpt_ocdbt_get_varint_max(in, "data file count", ckpt_ocdbt_in_left(in) / 2, &n, err);
  if (st != CKPT_OK)
    return st;
  if (n == 0)
    return CKPT_OK;
  uint64_t *prefix = calloc(n, sizeof *prefix);
  uint64_t *suffix = calloc(n, sizeof *suffix);
  t->path = calloc(n, sizeof *t->path);
  t->path_len = calloc(n, sizeof *t->path_len);
  t->base_len = calloc(n, sizeof *t->base_len);
  if (!prefix || !suffix || !t->path || !t->path_len || !t->base_len) {
    free(prefix);
    free(suffix);
    ckpt_ocdbt_file_table_free(t);
    return ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory for %llu data files", in->where,
                          (unsigned long long)n);
  }
  t->n = (size_t)n;
  for (size_t i = 1; i < t->n && st == CKPT_OK; i++)
    st = ckpt_ocdbt_get_varint_max(in, "data file path prefix length", CKPT_OCDBT_MAX_PATH,
                                   &prefix[i], err);
  for (size_t i = 0; i < t->n && st == CKPT_OK; i++)
    st = ckpt_ocdbt_get_varint_max(in, "data file path suffix length", CKPT_OCDBT_MAX_PATH,
                                   &suffix[i], err);
  for (size_t i = 0; i < t->n && st == CKPT_OK; i++) {
    uint64_t base;
    st = ckpt_ocdbt_get_varint_max(in, "data file base path length", CKPT_OCDBT_MAX_PATH, &base,
                                   err);
    t->base_len[i] = (size_t)base;
  }
  for (size_t i = 0; i < t->n && st == CKPT_OK; i++) {
    const uint8_t *s = NULL;
    size_t pos = ckpt_ocdbt_in_pos(in);
    if ((st = ckpt_ocdbt_get_bytes(in, "data file path suffix", suffix[i], &s, err)) != CKPT_OK)
      break;
    size_t prev_len = i ? t->path_len[i - 1] : 0;
    if (prefix[i] > prev_len) {
      st = ckpt_error_set(err, CKPT_ECORRUPT,
                          "%s: data file %zu: path prefix length %llu "
                          "exceeds previous path length %zu",
                          in->where, i, (unsigned long long)prefix[i], prev_len);
      break;
    }
    size_t len = (size_t)prefix[i] + (size_t)suffix[i];
    if (len > CKPT_OCDBT_MAX_PATH || t->base_len[i] > len) {
      st = ckpt_error_set(err, CKPT_ECORRUPT,
                          "%s: data file %zu at byte %zu: path of %zu bytes "
                          "with a base path of %zu bytes",
                          in->where, i, pos, len, t->base_len[i]);
      break;
    }
    char *p = malloc(len + 1);
    if (!p) {
      st = ckpt_error_set(err, CKPT_ENOMEM, "%s: out of memory", in->where);
      break;
    }
    if (prefix[i])
      memcpy(p, t->path[i - 1], (size_t)prefix[i]);
    if (suffix[i])
      memcpy(p + prefix[i], s, (size_t)suffix[i]);
    p[len] = '\0';
    t->path[i] = p;
    t->path_len[i] = len;
    if (!safe_relative_path(p, len)) {
      st = ckpt_error_set(err, CKPT_EUNSAFE,
                          "%s: data file %zu: path '%.*s' is not a plain "
                          "relative path inside the database",
                          in->where, i, (int)(len > 200 ? 200 : len), p);
      break;
    }
  }
  free(prefix);
  free(suffix);
  if (st != CKPT_OK)
    ckpt_ocdbt_file_table_free(t);
  return st;
}
