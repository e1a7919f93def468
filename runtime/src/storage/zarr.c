/* storage/zarr.c — zarr v2 metadata (.zarray), chunk-grid arithmetic, the choice of chunk
 * shapes, and strided box copies between C-order buffers. No file I/O here (zarr_io.c). */
#include "storage/zarr.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "text/json.h"
#include "util/text.h"

/* ---------------------------------------------------------------- .zarray */

static void put_i64_list(char *buf, size_t cap, size_t *pos, int n, const int64_t *v) {
  *pos += (size_t)snprintf(buf + *pos, cap - *pos, "[");
  for (int i = 0; i < n; i++)
    *pos += (size_t)snprintf(buf + *pos, cap - *pos, "%s%lld", i ? "," : "", (long long)v[i]);
  *pos += (size_t)snprintf(buf + *pos, cap - *pos, "]");
}

ckpt_status ckpt_zarr_meta_encode(const ckpt_zarr_meta *m, char **json, size_t *len,
                                  ckpt_error *err) {
  *json = NULL;
  const char *dt = ckpt_dtype_zarr(m->dtype);
  if (dt == NULL || m->big_endian)
    return ckpt_error_set(err, CKPT_EINVAL, "zarr: cannot encode dtype %d", (int)m->dtype);
  /* Every field is bounded: 2 lists of at most CKPT_MAX_RANK 20-digit numbers plus ~200 bytes
   * of fixed text. */
  size_t cap = 2 * (size_t)CKPT_MAX_RANK * 22 + 512;
  char *buf = malloc(cap);
  if (buf == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "zarr: out of memory");
  size_t pos = 0;
  pos += (size_t)snprintf(buf + pos, cap - pos, "{\"chunks\":");
  put_i64_list(buf, cap, &pos, m->ndim, m->chunks);
  if (m->compressor == CKPT_COMPRESSION_ZSTD)
    pos += (size_t)snprintf(buf + pos, cap - pos, ",\"compressor\":{\"id\":\"zstd\",\"level\":%d}",
                            m->level);
  else
    pos += (size_t)snprintf(buf + pos, cap - pos, ",\"compressor\":null");
  pos += (size_t)snprintf(buf + pos, cap - pos,
                          ",\"dimension_separator\":\"%c\",\"dtype\":\"%s\",\"fill_value\":null,"
                          "\"filters\":null,\"order\":\"C\",\"shape\":",
                          m->separator ? m->separator : '.', dt);
  put_i64_list(buf, cap, &pos, m->ndim, m->shape);
  pos += (size_t)snprintf(buf + pos, cap - pos, ",\"zarr_format\":2}");
  *json = buf;
  *len = pos;
  return CKPT_OK;
}

static bool json_to_i64(const cJSON *v, int64_t *out) {
  if (!cJSON_IsNumber(v))
    return false;
  double d = v->valuedouble;
  if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0) || d != floor(d))
    return false;
  *out = (int64_t)d;
  return true;
}

ckpt_status ckpt_zarr_parse_dims(const cJSON *doc, const char *key, const char *where, int *ndim,
                                 int64_t *out, bool positive, ckpt_error *err) {
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(doc, key);
  if (!cJSON_IsArray(a))
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s: \"%s\" is missing or not a list", where, key);
  int n = cJSON_GetArraySize(a);
  if (n > CKPT_MAX_RANK)
    return ckpt_error_set(err, CKPT_EUNSUPPORTED, "%s: rank %d exceeds %d", where, n,
                          CKPT_MAX_RANK);
  int i = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, a) {
    int64_t v;
    if (!json_to_i64(e, &v) || v < 0 || (positive && v == 0))
      return ckpt_error_set(err, CKPT_ECORRUPT, "%s: \"%s\"[%d] is not a %s integer", where, key, i,
                            positive ? "positive" : "non-negative");
    out[i++] = v;
  }
  *ndim = n;
  return CKPT_OK;
}

/* NumPy typestr → dtype and byte order. */
static bool parse_typestr(const char *s, ckpt_dtype *dt, bool *big) {
  *big = false;
  if (ckpt_dtype_parse(s, dt) && strcmp(s, ckpt_dtype_name(*dt)) != 0)
    return true;
  if (strcmp(s, "bfloat16") == 0)
    return ckpt_dtype_parse(s, dt);
  if (s[0] == '>') {
    char tmp[16];
    if (strlen(s) >= sizeof tmp)
      return false;
    strcpy(tmp, s);
    tmp[0] = '<';
    if (!ckpt_dtype_parse(tmp, dt))
      return false;
    *big = ckpt_dtype_size(*dt) > 1;
    return true;
  }
  return false;
}

ckpt_status ckpt_zarr_fill_from_json(const cJSON *fv, ckpt_zarr_meta *m, const char *where,
                                     ckpt_error *err) {
  memset(m->fill, 0, sizeof m->fill);
  m->fill_is_null = fv == NULL || cJSON_IsNull(fv);
  if (m->fill_is_null)
    return CKPT_OK;
  ckpt_dtype_class cls = ckpt_dtype_class_of(m->dtype);
  double parts[2] = {0, 0};
  const cJSON *items[2] = {fv, NULL};
  int n = 1;
  if (cls == CKPT_DTYPE_CLASS_COMPLEX) {
    if (!cJSON_IsArray(fv) || cJSON_GetArraySize(fv) != 2)
      return ckpt_error_set(err, CKPT_ECORRUPT, "%s: complex fill_value must be [re, im]", where);
    items[0] = cJSON_GetArrayItem(fv, 0);
    items[1] = cJSON_GetArrayItem(fv, 1);
    n = 2;
  }
  for (int i = 0; i < n; i++) {
    const cJSON *v = items[i];
    if (cJSON_IsBool(v)) {
      parts[i] = cJSON_IsTrue(v) ? 1.0 : 0.0;
    } else if (cJSON_IsNumber(v) || cJSON_IsRaw(v)) {
      if (cls == CKPT_DTYPE_CLASS_SIGNED || cls == CKPT_DTYPE_CLASS_UNSIGNED) {
        /* Integers exactly, also beyond 2^53 (the reader keeps those digits as raw items). */
        int64_t iv;
        uint64_t uv;
        if (cls == CKPT_DTYPE_CLASS_UNSIGNED && ckpt_json_get_uint64(v, &uv)) {
          ckpt_dtype_convert(m->dtype, m->fill, CKPT_DTYPE_UINT64, &uv, 1);
        } else if (ckpt_json_get_int64(v, &iv)) {
          if (cls == CKPT_DTYPE_CLASS_SIGNED) {
            ckpt_dtype_convert(m->dtype, m->fill, CKPT_DTYPE_INT64, &iv, 1);
          } else {
            uv = (uint64_t)iv;
            ckpt_dtype_convert(m->dtype, m->fill, CKPT_DTYPE_UINT64, &uv, 1);
          }
        } else {
          return ckpt_error_set(err, CKPT_ECORRUPT, "%s: fill_value is not an integer", where);
        }
        return CKPT_OK;
      }
      parts[i] = cJSON_IsRaw(v) ? ckpt_tf_strtod(v->valuestring, NULL) : v->valuedouble;
    } else if (cJSON_IsString(v)) {
      if (strcmp(v->valuestring, "NaN") == 0)
        parts[i] = NAN;
      else if (strcmp(v->valuestring, "Infinity") == 0)
        parts[i] = INFINITY;
      else if (strcmp(v->valuestring, "-Infinity") == 0)
        parts[i] = -INFINITY;
      else
        return ckpt_error_set(err, CKPT_EUNSUPPORTED, "%s: fill_value \"%.40s\" not understood",
                              where, v->valuestring);
    } else {
      return ckpt_error_set(err, CKPT_ECORRUPT, "%s: fill_value has an invalid type", where);
    }
  }
  if (cls == CKPT_DTYPE_CLASS_COMPLEX) {
    if (m->dtype == CKPT_DTYPE_COMPLEX64) {
      float f[2] = {(float)parts[0], (float)parts[1]};
      memcpy(m->fill, f, sizeof f);
    } else {
      memcpy(m->fill, parts, sizeof parts);
    }
  } else {
    ckpt_dtype_convert(m->dtype, m->fill, CKPT_DTYPE_FLOAT64, &parts[0], 1);
  }
  return CKPT_OK;
}

ckpt_status ckpt_zarr_meta_decode(const char *json, size_t len, const char *where,
                                  ckpt_zarr_meta *m, ckpt_error *err) {
  memset(m, 0, sizeof *m);
  cJSON *doc = NULL;
  ckpt_status st = ckpt_json_load(json, len, where, &doc, err);
  if (st == CKPT_OK)
    st = ckpt_zarr_meta_from_json(doc, where, m, err);
  cJSON_Delete(doc);
  return st;
}

ckpt_status ckpt_zarr_meta_from_json(const cJSON *doc, const char *where, ckpt_zarr_meta *m,
                                     ckpt_error *err) {
  memset(m, 0, sizeof *m);
  ckpt_status st = CKPT_OK;
  if (!cJSON_IsObject(doc)) {
    st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: not a JSON object", where);
    goto done;
  }
  int64_t fmt;
  if (!json_to_i64(cJSON_GetObjectItemCaseSensitive(doc, "zarr_format"), &fmt) || fmt != 2) {
    st = ckpt_error_set(err, CKPT_EUNSUPPORTED, "%s: zarr_format is not 2", where);
    goto done;
  }
  int nshape = 0, nchunks = 0;
  if ((st = ckpt_zarr_parse_dims(doc, "shape", where, &nshape, m->shape, false, err)) != CKPT_OK)
    goto done;
  if ((st = ckpt_zarr_parse_dims(doc, "chunks", where, &nchunks, m->chunks, true, err)) != CKPT_OK)
    goto done;
  if (nshape != nchunks) {
    st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: shape has rank %d but chunks has rank %d", where,
                        nshape, nchunks);
    goto done;
  }
  m->ndim = nshape;
  {
    /* Overflow guard: the element count of the array and of one chunk must fit in 63 bits. */
    double total = 1, chunk = 1;
    for (int d = 0; d < m->ndim; d++) {
      total *= (double)m->shape[d];
      chunk *= (double)m->chunks[d];
    }
    if (total > 4.0e18 || chunk > 4.0e18) {
      st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: shape or chunks too large", where);
      goto done;
    }
  }
  const cJSON *dt = cJSON_GetObjectItemCaseSensitive(doc, "dtype");
  if (!cJSON_IsString(dt)) {
    st = ckpt_error_set(err, CKPT_EUNSUPPORTED, "%s: dtype is not a simple type string", where);
    goto done;
  }
  if (!parse_typestr(dt->valuestring, &m->dtype, &m->big_endian)) {
    st = ckpt_error_set(err, CKPT_EUNSUPPORTED, "%s: dtype \"%.40s\" is not supported", where,
                        dt->valuestring);
    goto done;
  }
  {
    double chunk_bytes = (double)ckpt_dtype_size(m->dtype);
    for (int d = 0; d < m->ndim; d++)
      chunk_bytes *= (double)m->chunks[d];
    if (chunk_bytes > (double)(SIZE_MAX / 2)) {
      st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: chunk too large", where);
      goto done;
    }
  }
  const cJSON *order = cJSON_GetObjectItemCaseSensitive(doc, "order");
  if (order != NULL && !(cJSON_IsString(order) && strcmp(order->valuestring, "C") == 0)) {
    st = ckpt_error_set(err, CKPT_EUNSUPPORTED, "%s: only order \"C\" is supported", where);
    goto done;
  }
  const cJSON *filters = cJSON_GetObjectItemCaseSensitive(doc, "filters");
  if (filters != NULL && !cJSON_IsNull(filters) &&
      !(cJSON_IsArray(filters) && cJSON_GetArraySize(filters) == 0)) {
    st = ckpt_error_set(err, CKPT_EUNSUPPORTED, "%s: filters are not supported", where);
    goto done;
  }
  const cJSON *comp = cJSON_GetObjectItemCaseSensitive(doc, "compressor");
  m->compressor = CKPT_COMPRESSION_NONE;
  if (comp != NULL && !cJSON_IsNull(comp)) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(comp, "id");
    if (!cJSON_IsString(id)) {
      st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: compressor without an id", where);
      goto done;
    }
    if (strcmp(id->valuestring, "zstd") != 0) {
      st = ckpt_error_set(err, CKPT_EUNSUPPORTED,
                          "%s: compressor \"%.40s\" is not supported (only zstd or none)", where,
                          id->valuestring);
      goto done;
    }
    m->compressor = CKPT_COMPRESSION_ZSTD;
    int64_t level = 1;
    const cJSON *lv = cJSON_GetObjectItemCaseSensitive(comp, "level");
    if (lv != NULL && !json_to_i64(lv, &level))
      level = 1;
    m->level = (int)level;
  }
  const cJSON *sep = cJSON_GetObjectItemCaseSensitive(doc, "dimension_separator");
  m->separator = '.';
  if (sep != NULL && !cJSON_IsNull(sep)) {
    if (!cJSON_IsString(sep) ||
        (strcmp(sep->valuestring, ".") != 0 && strcmp(sep->valuestring, "/") != 0)) {
      st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: dimension_separator must be \".\" or \"/\"",
                          where);
      goto done;
    }
    m->separator = sep->valuestring[0];
  }
  st = ckpt_zarr_fill_from_json(cJSON_GetObjectItemCaseSensitive(doc, "fill_value"), m, where, err);
done:
  return st;
}

/* ---------------------------------------------------------------- grid */

uint64_t ckpt_zarr_grid(const ckpt_zarr_meta *m, int64_t *grid) {
  uint64_t total = 1;
  for (int d = 0; d < m->ndim; d++) {
    grid[d] = m->shape[d] == 0 ? 0 : (m->shape[d] + m->chunks[d] - 1) / m->chunks[d];
    total *= (uint64_t)grid[d];
  }
  return total;
}

uint64_t ckpt_zarr_chunk_elements(const ckpt_zarr_meta *m) {
  uint64_t n = 1;
  for (int d = 0; d < m->ndim; d++)
    n *= (uint64_t)m->chunks[d];
  return n;
}

void ckpt_zarr_chunk_key(const ckpt_zarr_meta *m, const int64_t *index, char *buf) {
  size_t pos = 0;
  if (m->zarr3 && m->v3.key_default) {
    /* zarr v3 "default" encoding: "c", then each index after the separator ("c" for 0-d) */
    buf[pos++] = 'c';
    for (int d = 0; d < m->ndim; d++) {
      buf[pos++] = m->separator ? m->separator : '/';
      pos += (size_t)snprintf(buf + pos, 21, "%lld", (long long)index[d]);
    }
    buf[pos] = '\0';
    return;
  }
  if (m->ndim == 0) {
    strcpy(buf, "0");
    return;
  }
  for (int d = 0; d < m->ndim; d++) {
    if (d)
      buf[pos++] = m->separator ? m->separator : '.';
    pos += (size_t)snprintf(buf + pos, 21, "%lld", (long long)index[d]);
  }
  buf[pos] = '\0';
}

void ckpt_zarr_chunk_index(const ckpt_zarr_meta *m, const int64_t *grid, uint64_t linear,
                           int64_t *index) {
  for (int d = m->ndim - 1; d >= 0; d--) {
    index[d] = (int64_t)(linear % (uint64_t)grid[d]);
    linear /= (uint64_t)grid[d];
  }
}

void ckpt_zarr_chunk_box(const ckpt_zarr_meta *m, const int64_t *index, int64_t *offset,
                         int64_t *extent) {
  for (int d = 0; d < m->ndim; d++) {
    offset[d] = index[d] * m->chunks[d];
    int64_t end = offset[d] + m->chunks[d];
    if (end > m->shape[d])
      end = m->shape[d];
    extent[d] = end - offset[d];
  }
}

/* ---------------------------------------------------------------- chunk choice */

static int64_t gcd64(int64_t a, int64_t b) {
  while (b != 0) {
    int64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

ckpt_status ckpt_zarr_choose_chunks(const ckpt_array *array, size_t elem_size,
                                    uint64_t target_bytes, const int32_t *shard_axes,
                                    size_t n_shard_axes, const char *name, int64_t *chunks,
                                    ckpt_error *err) {
  int nd = array->ndim;
  int64_t g[CKPT_MAX_RANK];
  for (int d = 0; d < nd; d++)
    g[d] = 0;
  /* Coverage: the replica-0 shards must tile the array (single-process saves write every
   * chunk; a gap would become a missing chunk that restore rightly refuses). */
  double covered = 0;
  size_t n0 = 0;
  for (size_t i = 0; i < array->n_shards; i++) {
    const ckpt_shard *s = &array->shards[i];
    if (s->replica_id != 0)
      continue;
    n0++;
    double vol = 1;
    for (int d = 0; d < nd; d++) {
      vol *= (double)s->shape[d];
      if (s->offset[d] > 0)
        g[d] = gcd64(g[d], s->offset[d]);
      if (s->offset[d] + s->shape[d] < array->shape[d])
        g[d] = gcd64(g[d], s->shape[d]);
    }
    covered += vol;
    for (size_t j = 0; j < i; j++) {
      const ckpt_shard *t = &array->shards[j];
      if (t->replica_id != 0)
        continue;
      int64_t io[CKPT_MAX_RANK], ie[CKPT_MAX_RANK];
      if (ckpt_box_intersect(nd, s->offset, s->shape, t->offset, t->shape, io, ie))
        return ckpt_error_set(err, CKPT_EINVAL, "array '%s': replica-0 shards %zu and %zu overlap",
                              name, j, i);
    }
  }
  double total = 1;
  for (int d = 0; d < nd; d++)
    total *= (double)array->shape[d];
  if ((n0 == 0 && total != 0) || covered != total)
    return ckpt_error_set(err, CKPT_EINVAL,
                          "array '%s': its replica-0 shards cover %.0f of %.0f elements "
                          "(every element needs exactly one replica-0 shard)",
                          name, n0 == 0 ? 0.0 : covered, total);
  bool single[CKPT_MAX_RANK]; /* one grid cell along d: any chunk size keeps chunks in a shard */
  for (int d = 0; d < nd; d++) {
    single[d] = g[d] == 0;
    if (g[d] == 0)
      g[d] = array->shape[d];
    if (g[d] == 0)
      g[d] = 1; /* zarr chunks are at least 1 even along an empty axis */
    chunks[d] = g[d];
  }
  if (target_bytes == 0)
    return CKPT_OK;
  double bytes = (double)elem_size;
  for (int d = 0; d < nd; d++)
    bytes *= (double)chunks[d];
  if (bytes <= (double)target_bytes)
    return CKPT_OK;

  /* Axis order: the requested shard axes, then outermost first (splitting outer axes keeps
   * each chunk one contiguous run of the shard, which restore can read in place). */
  int order[2 * CKPT_MAX_RANK];
  int n_order = 0;
  for (size_t i = 0; i < n_shard_axes; i++) {
    int a = shard_axes[i];
    if (a < 0)
      a += nd;
    if (a < 0 || a >= nd)
      return ckpt_error_set(err, CKPT_EINVAL, "array '%s': shard axis %d out of range for rank %d",
                            name, (int)shard_axes[i], nd);
    order[n_order++] = a;
  }
  for (int d = 0; d < nd; d++)
    order[n_order++] = d;
  for (int k = 0; k < n_order; k++) {
    int d = order[k];
    double others = (double)elem_size;
    for (int e = 0; e < nd; e++)
      if (e != d)
        others *= (double)chunks[e];
    double m = floor((double)target_bytes / others);
    if (m >= (double)chunks[d])
      return CKPT_OK;
    if (m >= 1) {
      int64_t lim = (int64_t)m;
      if (single[d]) {
        int64_t parts = (chunks[d] + lim - 1) / lim;
        chunks[d] = (chunks[d] + parts - 1) / parts;
      } else {
        int64_t best = 1;
        for (int64_t c = lim; c >= 1; c--) {
          if (g[d] % c == 0) {
            best = c;
            break;
          }
        }
        chunks[d] = best;
      }
      return CKPT_OK;
    }
    chunks[d] = 1;
  }
  return CKPT_OK; /* one element per chunk: the target is smaller than an element */
}

/* ---------------------------------------------------------------- boxes */

bool ckpt_box_intersect(int ndim, const int64_t *ao, const int64_t *ae, const int64_t *bo,
                        const int64_t *be, int64_t *io, int64_t *ie) {
  for (int d = 0; d < ndim; d++) {
    int64_t lo = ao[d] > bo[d] ? ao[d] : bo[d];
    int64_t ah = ao[d] + ae[d], bh = bo[d] + be[d];
    int64_t hi = ah < bh ? ah : bh;
    if (hi <= lo)
      return false;
    io[d] = lo;
    ie[d] = hi - lo;
  }
  return true;
}

uint64_t ckpt_box_offset(int ndim, const int64_t *shape, const int64_t *off) {
  uint64_t o = 0;
  for (int d = 0; d < ndim; d++)
    o = o * (uint64_t)shape[d] + (uint64_t)off[d];
  return o;
}

bool ckpt_box_contiguous(int ndim, const int64_t *region, const int64_t *shape) {
  /* Contiguous iff, scanning from the innermost axis, every axis is full up to some axis k,
   * axis k is anything, and every axis before k has extent 1. */
  int d = ndim - 1;
  while (d > 0 && region[d] == shape[d])
    d--;
  for (int e = 0; e < d; e++)
    if (region[e] != 1)
      return false;
  return true;
}

/* The innermost run contiguous in both arrays: axes [k, ndim) with every axis after k full in
 * both. Returns k and the run's element count. */
static int inner_run(int ndim, const int64_t *region, const int64_t *a, const int64_t *b,
                     uint64_t *run) {
  int k = ndim - 1;
  uint64_t n = (uint64_t)region[k];
  while (k > 0 && region[k] == a[k] && region[k] == b[k]) {
    k--;
    n *= (uint64_t)region[k];
  }
  *run = n;
  return k;
}

void ckpt_box_copy(int ndim, const int64_t *region, void *dst, ckpt_dtype ddt,
                   const int64_t *dshape, const int64_t *doff, const void *src, ckpt_dtype sdt,
                   const int64_t *sshape, const int64_t *soff) {
  size_t ds = ckpt_dtype_size(ddt), ss = ckpt_dtype_size(sdt);
  if (ndim == 0) {
    ckpt_dtype_convert(ddt, dst, sdt, src, 1);
    return;
  }
  for (int d = 0; d < ndim; d++)
    if (region[d] == 0)
      return;
  uint64_t run;
  int k = inner_run(ndim, region, sshape, dshape, &run);
  uint64_t sstride[CKPT_MAX_RANK], dstride[CKPT_MAX_RANK];
  sstride[ndim - 1] = dstride[ndim - 1] = 1;
  for (int d = ndim - 2; d >= 0; d--) {
    sstride[d] = sstride[d + 1] * (uint64_t)sshape[d + 1];
    dstride[d] = dstride[d + 1] * (uint64_t)dshape[d + 1];
  }
  int64_t idx[CKPT_MAX_RANK] = {0};
  for (;;) {
    uint64_t so = 0, dof = 0;
    for (int d = 0; d < k; d++) {
      so += (uint64_t)(soff[d] + idx[d]) * sstride[d];
      dof += (uint64_t)(doff[d] + idx[d]) * dstride[d];
    }
    so += (uint64_t)soff[k] * sstride[k];
    dof += (uint64_t)doff[k] * dstride[k];
    ckpt_dtype_convert(ddt, (unsigned char *)dst + dof * ds, sdt,
                       (const unsigned char *)src + so * ss, (size_t)run);
    int d = k - 1;
    while (d >= 0) {
      if (++idx[d] < region[d])
        break;
      idx[d] = 0;
      d--;
    }
    if (d < 0)
      break;
  }
}

void ckpt_box_fill(int ndim, const int64_t *region, void *dst, size_t elem_size,
                   const int64_t *dshape, const int64_t *doff, const void *value) {
  if (ndim == 0) {
    memcpy(dst, value, elem_size);
    return;
  }
  for (int d = 0; d < ndim; d++)
    if (region[d] == 0)
      return;
  uint64_t run;
  int k = inner_run(ndim, region, dshape, dshape, &run);
  uint64_t dstride[CKPT_MAX_RANK];
  dstride[ndim - 1] = 1;
  for (int d = ndim - 2; d >= 0; d--)
    dstride[d] = dstride[d + 1] * (uint64_t)dshape[d + 1];
  bool zero = true;
  for (size_t i = 0; i < elem_size; i++)
    zero &= ((const unsigned char *)value)[i] == 0;
  int64_t idx[CKPT_MAX_RANK] = {0};
  for (;;) {
    uint64_t o = 0;
    for (int d = 0; d < k; d++)
      o += (uint64_t)(doff[d] + idx[d]) * dstride[d];
    o += (uint64_t)doff[k] * dstride[k];
    unsigned char *p = (unsigned char *)dst + o * elem_size;
    if (zero) {
      memset(p, 0, (size_t)run * elem_size);
    } else {
      for (uint64_t i = 0; i < run; i++)
        memcpy(p + i * elem_size, value, elem_size);
    }
    int d = k - 1;
    while (d >= 0) {
      if (++idx[d] < region[d])
        break;
      idx[d] = 0;
      d--;
    }
    if (d < 0)
      break;
  }
}

void ckpt_zarr_byteswap(ckpt_dtype dt, void *buf, size_t n) {
  size_t es = ckpt_dtype_size(dt);
  size_t unit = ckpt_dtype_class_of(dt) == CKPT_DTYPE_CLASS_COMPLEX ? es / 2 : es;
  if (unit <= 1)
    return;
  unsigned char *p = buf;
  size_t units = n * (es / unit);
  for (size_t i = 0; i < units; i++, p += unit) {
    for (size_t a = 0, b = unit - 1; a < b; a++, b--) {
      unsigned char t = p[a];
      p[a] = p[b];
      p[b] = t;
    }
  }
}
