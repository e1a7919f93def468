/* storage/zarr3_meta.c — zarr.json (zarr v3 array metadata): parsing into ckpt_zarr_meta and
 * encoding, and Orbax's codec chain (zarr3.h). No file I/O here; the codecs run in
 * zarr3_codec.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/zarr.h"
#include "text/json.h"

static const char *const CODEC_NAMES[] = {
    [CKPT_ZARR3_BYTES] = "bytes",         [CKPT_ZARR3_SHARDING] = "sharding_indexed",
    [CKPT_ZARR3_TRANSPOSE] = "transpose", [CKPT_ZARR3_ZSTD] = "zstd",
    [CKPT_ZARR3_BLOSC] = "blosc",         [CKPT_ZARR3_GZIP] = "gzip",
    [CKPT_ZARR3_CRC32C] = "crc32c"};

const char *ckpt_zarr3_codec_name(int id) {
  if (id < CKPT_ZARR3_BYTES || id > CKPT_ZARR3_CRC32C)
    return "?";
  return CODEC_NAMES[id];
}

const char *ckpt_zarr3_compression(const ckpt_zarr_meta *m) {
  const ckpt_zarr3_chain *chains[] = {&m->v3.codecs, &m->v3.inner_codecs};
  for (int k = 0; k < 2; k++)
    for (int i = 0; i < chains[k]->n; i++)
      switch (chains[k]->c[i].id) {
        case CKPT_ZARR3_ZSTD:
          return "zarr3 zstd";
        case CKPT_ZARR3_BLOSC:
          return "zarr3 blosc";
        case CKPT_ZARR3_GZIP:
          return "zarr3 gzip";
        default:
          break;
      }
  return "zarr3 none";
}

/* ---------------------------------------------------------------- parsing */

typedef struct parse_ctx {
  const char *where;
  ckpt_error *err;
  ckpt_dtype dtype;
} parse_ctx;

static bool get_int(const cJSON *v, int64_t lo, int64_t hi, int64_t *out) {
  int64_t x;
  if (!ckpt_json_get_int64(v, &x) || x < lo || x > hi)
    return false;
  *out = x;
  return true;
}

/* One codec: {"name": ..., "configuration": {...}} or the bare name. rank is the rank of the
 * array the codec sees (transpose's order has that length). */
static ckpt_status parse_codec(parse_ctx *p, const cJSON *j, int rank, int depth,
                               ckpt_zarr3_spec *spec, ckpt_zarr3_codec *c);

static ckpt_status parse_chain(parse_ctx *p, const cJSON *list, const char *what, int rank,
                               int depth, ckpt_zarr3_spec *spec, ckpt_zarr3_chain *chain) {
  memset(chain, 0, sizeof *chain);
  if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0)
    return ckpt_error_set(p->err, CKPT_ECORRUPT, "%s: \"%s\" is missing or not a non-empty list",
                          p->where, what);
  if (cJSON_GetArraySize(list) > CKPT_ZARR3_MAX_CODECS)
    return ckpt_error_set(p->err, CKPT_EUNSUPPORTED, "%s: \"%s\" has more than %d codecs", p->where,
                          what, CKPT_ZARR3_MAX_CODECS);
  const cJSON *e;
  int n_ab = 0, stage = 0; /* 0: array→array, 1: bytes→bytes (after the array→bytes codec) */
  cJSON_ArrayForEach(e, list) {
    ckpt_zarr3_codec *c = &chain->c[chain->n];
    ckpt_status st = parse_codec(p, e, rank, depth, spec, c);
    if (st != CKPT_OK)
      return st;
    bool ab = c->id == CKPT_ZARR3_BYTES || c->id == CKPT_ZARR3_SHARDING;
    bool aa = c->id == CKPT_ZARR3_TRANSPOSE;
    if ((aa && stage != 0) || (!aa && !ab && stage != 1) || (ab && n_ab > 0))
      return ckpt_error_set(p->err, CKPT_ECORRUPT,
                            "%s: \"%s\": codec \"%s\" out of order (array→array codecs, one "
                            "array→bytes codec, then bytes→bytes codecs)",
                            p->where, what, ckpt_zarr3_codec_name(c->id));
    if (ab) {
      n_ab++;
      stage = 1;
    }
    chain->n++;
  }
  if (n_ab != 1)
    return ckpt_error_set(p->err, CKPT_ECORRUPT,
                          "%s: \"%s\" has no array→bytes codec (bytes or sharding_indexed)",
                          p->where, what);
  return CKPT_OK;
}

static ckpt_status parse_sharding(parse_ctx *p, const cJSON *cfg, int rank, int depth,
                                  ckpt_zarr3_spec *spec) {
  if (depth > 0)
    return ckpt_error_set(p->err, CKPT_EUNSUPPORTED,
                          "%s: nested sharding_indexed codecs are not supported", p->where);
  if (!cJSON_IsObject(cfg))
    return ckpt_error_set(p->err, CKPT_ECORRUPT, "%s: sharding_indexed without a configuration",
                          p->where);
  int n = 0;
  ckpt_status st =
      ckpt_zarr_parse_dims(cfg, "chunk_shape", p->where, &n, spec->inner, true, p->err);
  if (st != CKPT_OK)
    return st;
  if (n != rank)
    return ckpt_error_set(p->err, CKPT_ECORRUPT,
                          "%s: sharding_indexed chunk_shape has rank %d, the array %d", p->where, n,
                          rank);
  st = parse_chain(p, cJSON_GetObjectItemCaseSensitive(cfg, "codecs"), "sharding codecs", rank,
                   depth + 1, spec, &spec->inner_codecs);
  if (st != CKPT_OK)
    return st;
  /* The index is a uint64 array of shape inner grid + [2]. */
  ckpt_dtype saved = p->dtype;
  p->dtype = CKPT_DTYPE_UINT64;
  st = parse_chain(p, cJSON_GetObjectItemCaseSensitive(cfg, "index_codecs"), "index_codecs",
                   rank + 1, depth + 1, spec, &spec->index_codecs);
  p->dtype = saved;
  if (st != CKPT_OK)
    return st;
  /* The index must have a size known without reading it. */
  for (int i = 0; i < spec->index_codecs.n; i++) {
    int id = spec->index_codecs.c[i].id;
    if (id != CKPT_ZARR3_BYTES && id != CKPT_ZARR3_CRC32C && id != CKPT_ZARR3_TRANSPOSE)
      return ckpt_error_set(p->err, CKPT_EUNSUPPORTED,
                            "%s: index codec \"%s\" is not supported (bytes, transpose, crc32c: "
                            "the index must have a fixed size)",
                            p->where, ckpt_zarr3_codec_name(id));
  }
  const cJSON *loc = cJSON_GetObjectItemCaseSensitive(cfg, "index_location");
  spec->index_at_start = false;
  if (loc != NULL) {
    if (cJSON_IsString(loc) && strcmp(loc->valuestring, "start") == 0)
      spec->index_at_start = true;
    else if (!cJSON_IsString(loc) || strcmp(loc->valuestring, "end") != 0)
      return ckpt_error_set(p->err, CKPT_ECORRUPT,
                            "%s: index_location must be \"start\" or \"end\"", p->where);
  }
  return CKPT_OK;
}

static ckpt_status parse_codec(parse_ctx *p, const cJSON *j, int rank, int depth,
                               ckpt_zarr3_spec *spec, ckpt_zarr3_codec *c) {
  memset(c, 0, sizeof *c);
  const cJSON *name = j, *cfg = NULL;
  if (cJSON_IsObject(j)) {
    name = cJSON_GetObjectItemCaseSensitive(j, "name");
    cfg = cJSON_GetObjectItemCaseSensitive(j, "configuration");
    if (cfg != NULL && !cJSON_IsObject(cfg))
      return ckpt_error_set(p->err, CKPT_ECORRUPT, "%s: a codec's configuration is not an object",
                            p->where);
  }
  if (!cJSON_IsString(name))
    return ckpt_error_set(p->err, CKPT_ECORRUPT, "%s: a codec without a name", p->where);
  const char *nm = name->valuestring;
  size_t es = ckpt_dtype_size(p->dtype);
  if (strcmp(nm, "bytes") == 0) {
    c->id = CKPT_ZARR3_BYTES;
    const cJSON *en = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "endian") : NULL;
    if (en == NULL) {
      if (es > 1)
        return ckpt_error_set(p->err, CKPT_ECORRUPT,
                              "%s: bytes codec without \"endian\" for a %zu-byte data type",
                              p->where, es);
    } else if (cJSON_IsString(en) && strcmp(en->valuestring, "big") == 0) {
      c->big_endian = es > 1;
    } else if (!cJSON_IsString(en) || strcmp(en->valuestring, "little") != 0) {
      return ckpt_error_set(p->err, CKPT_ECORRUPT, "%s: bytes endian must be \"little\" or \"big\"",
                            p->where);
    }
  } else if (strcmp(nm, "sharding_indexed") == 0) {
    c->id = CKPT_ZARR3_SHARDING;
    return parse_sharding(p, cfg, rank, depth, spec);
  } else if (strcmp(nm, "transpose") == 0) {
    c->id = CKPT_ZARR3_TRANSPOSE;
    const cJSON *o = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "order") : NULL;
    bool seen[CKPT_MAX_RANK + 1] = {false};
    if (cJSON_IsString(o) &&
        (strcmp(o->valuestring, "C") == 0 || strcmp(o->valuestring, "F") == 0)) {
      bool f = o->valuestring[0] == 'F'; /* the early drafts' names */
      for (int i = 0; i < rank; i++)
        c->order[i] = (uint8_t)(f ? rank - 1 - i : i);
      return CKPT_OK;
    }
    if (!cJSON_IsArray(o) || cJSON_GetArraySize(o) != rank)
      return ckpt_error_set(p->err, CKPT_ECORRUPT,
                            "%s: transpose order must be a permutation of the %d dimensions",
                            p->where, rank);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, o) {
      int64_t v;
      if (!get_int(e, 0, rank - 1, &v) || seen[v])
        return ckpt_error_set(p->err, CKPT_ECORRUPT,
                              "%s: transpose order must be a permutation of the %d dimensions",
                              p->where, rank);
      seen[v] = true;
      c->order[i++] = (uint8_t)v;
    }
  } else if (strcmp(nm, "zstd") == 0) {
    c->id = CKPT_ZARR3_ZSTD;
    const cJSON *lv = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "level") : NULL;
    const cJSON *ck = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "checksum") : NULL;
    int64_t level = 0;
    if (lv != NULL && !get_int(lv, -131072, 22, &level))
      return ckpt_error_set(p->err, CKPT_ECORRUPT, "%s: zstd level is not an integer", p->where);
    c->level = (int16_t)(level < -32768 ? -32768 : level);
    c->checksum = cJSON_IsTrue(ck);
  } else if (strcmp(nm, "gzip") == 0) {
    c->id = CKPT_ZARR3_GZIP;
    const cJSON *lv = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "level") : NULL;
    int64_t level = 6;
    if (lv != NULL && !get_int(lv, 0, 9, &level))
      return ckpt_error_set(p->err, CKPT_ECORRUPT, "%s: gzip level must be 0-9", p->where);
    c->level = (int16_t)level;
  } else if (strcmp(nm, "crc32c") == 0) {
    c->id = CKPT_ZARR3_CRC32C;
  } else if (strcmp(nm, "blosc") == 0) {
    c->id = CKPT_ZARR3_BLOSC;
    const cJSON *cn = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "cname") : NULL;
    const cJSON *cl = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "clevel") : NULL;
    const cJSON *sh = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "shuffle") : NULL;
    const cJSON *ts = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "typesize") : NULL;
    const cJSON *bs = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "blocksize") : NULL;
    static const char *const cnames[] = {"blosclz", "lz4", "lz4hc", "snappy", "zlib", "zstd"};
    const char *cname = cJSON_IsString(cn) ? cn->valuestring : (cn == NULL ? "lz4" : NULL);
    bool known = false;
    for (size_t i = 0; cname != NULL && i < sizeof cnames / sizeof *cnames; i++)
      known |= strcmp(cname, cnames[i]) == 0;
    if (!known)
      return ckpt_error_set(p->err, CKPT_ECORRUPT, "%s: blosc cname is not one of blosc's",
                            p->where);
    strcpy(c->cname, cname);
    int64_t v = 5;
    if (cl != NULL && !get_int(cl, 0, 9, &v))
      return ckpt_error_set(p->err, CKPT_ECORRUPT, "%s: blosc clevel must be 0-9", p->where);
    c->level = (int16_t)v;
    c->shuffle = 0;
    if (sh != NULL) {
      if (cJSON_IsString(sh) && strcmp(sh->valuestring, "shuffle") == 0)
        c->shuffle = 1;
      else if (cJSON_IsString(sh) && strcmp(sh->valuestring, "bitshuffle") == 0)
        c->shuffle = 2;
      else if (!cJSON_IsString(sh) || strcmp(sh->valuestring, "noshuffle") != 0)
        return ckpt_error_set(p->err, CKPT_ECORRUPT,
                              "%s: blosc shuffle must be noshuffle, shuffle or bitshuffle",
                              p->where);
    }
    v = (int64_t)es;
    if (ts != NULL && !get_int(ts, 1, 255, &v))
      return ckpt_error_set(p->err, CKPT_ECORRUPT, "%s: blosc typesize must be 1-255", p->where);
    c->typesize = (uint8_t)v;
    v = 0;
    if (bs != NULL && !get_int(bs, 0, INT32_MAX, &v))
      return ckpt_error_set(p->err, CKPT_ECORRUPT, "%s: blosc blocksize is not a size", p->where);
    c->blocksize = (uint32_t)v;
  } else {
    return ckpt_error_set(p->err, CKPT_EUNSUPPORTED, "%s: codec \"%.60s\" is not supported",
                          p->where, nm);
  }
  return CKPT_OK;
}

/* A data type name → dtype (the v3 names are ckpt's own names). */
static bool parse_data_type(const char *s, ckpt_dtype *dt) {
  return ckpt_dtype_parse(s, dt) && strcmp(s, ckpt_dtype_name(*dt)) == 0;
}

static int hexval(char ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

/* A floating fill value written as "0x" + the big-endian hex digits of its bits (one
 * element; complex: one per part). */
static bool parse_hex_float(const char *s, size_t size, unsigned char *out) {
  if (strncmp(s, "0x", 2) != 0 || strlen(s) != 2 + 2 * size)
    return false;
  uint64_t v = 0;
  for (size_t i = 0; i < 2 * size; i++) {
    int h = hexval(s[2 + i]);
    if (h < 0)
      return false;
    v = v << 4 | (uint64_t)h;
  }
  for (size_t i = 0; i < size; i++) /* host little-endian, as every buffer ckpt holds */
    out[i] = (unsigned char)(v >> (8 * i));
  return true;
}

static ckpt_status parse_fill(parse_ctx *p, const cJSON *fv, ckpt_zarr_meta *m) {
  if (fv == NULL || cJSON_IsNull(fv))
    return ckpt_error_set(p->err, CKPT_ECORRUPT, "%s: \"fill_value\" is missing", p->where);
  ckpt_dtype_class cls = ckpt_dtype_class_of(m->dtype);
  size_t es = ckpt_dtype_size(m->dtype);
  if (cls == CKPT_DTYPE_CLASS_FLOAT && cJSON_IsString(fv) &&
      strncmp(fv->valuestring, "0x", 2) == 0) {
    memset(m->fill, 0, sizeof m->fill);
    if (!parse_hex_float(fv->valuestring, es, m->fill))
      return ckpt_error_set(p->err, CKPT_ECORRUPT, "%s: fill_value \"%.40s\" is not %zu hex bytes",
                            p->where, fv->valuestring, es);
    return CKPT_OK;
  }
  if (cls == CKPT_DTYPE_CLASS_COMPLEX && cJSON_IsArray(fv) && cJSON_GetArraySize(fv) == 2) {
    /* [re, im], each a number, a name or hex bits of its float type */
    memset(m->fill, 0, sizeof m->fill);
    ckpt_zarr_meta part;
    memset(&part, 0, sizeof part);
    part.dtype = m->dtype == CKPT_DTYPE_COMPLEX64 ? CKPT_DTYPE_FLOAT32 : CKPT_DTYPE_FLOAT64;
    for (int i = 0; i < 2; i++) {
      const cJSON *v = cJSON_GetArrayItem(fv, i);
      if (cJSON_IsString(v) && strncmp(v->valuestring, "0x", 2) == 0) {
        if (!parse_hex_float(v->valuestring, es / 2, m->fill + (size_t)i * (es / 2)))
          return ckpt_error_set(p->err, CKPT_ECORRUPT, "%s: complex fill_value hex is malformed",
                                p->where);
        continue;
      }
      if (!cJSON_IsNumber(v) && !cJSON_IsString(v))
        return ckpt_error_set(p->err, CKPT_ECORRUPT,
                              "%s: complex fill_value part is not a "
                              "number",
                              p->where);
      ckpt_status st = ckpt_zarr_fill_from_json(v, &part, p->where, p->err);
      if (st != CKPT_OK)
        return st;
      memcpy(m->fill + (size_t)i * (es / 2), part.fill, es / 2);
    }
    m->fill_is_null = false;
    return CKPT_OK;
  }
  if (cls != CKPT_DTYPE_CLASS_BOOL && cJSON_IsBool(fv))
    return ckpt_error_set(p->err, CKPT_ECORRUPT, "%s: fill_value true/false for %s", p->where,
                          ckpt_dtype_name(m->dtype));
  if (cls == CKPT_DTYPE_CLASS_BOOL && !cJSON_IsBool(fv))
    return ckpt_error_set(p->err, CKPT_ECORRUPT,
                          "%s: a bool array's fill_value must be true or "
                          "false",
                          p->where);
  ckpt_status st = ckpt_zarr_fill_from_json(fv, m, p->where, p->err);
  m->fill_is_null = false;
  return st;
}

/* Top-level keys: known ones, and extensions that say they need not be understood. */
static ckpt_status check_keys(parse_ctx *p, const cJSON *doc) {
  static const char *const known[] = {
      "zarr_format",         "node_type",  "shape",  "data_type",  "chunk_grid",
      "chunk_key_encoding",  "fill_value", "codecs", "attributes", "dimension_names",
      "storage_transformers"};
  const cJSON *e;
  cJSON_ArrayForEach(e, doc) {
    bool ok = false;
    for (size_t i = 0; i < sizeof known / sizeof *known && !ok; i++)
      ok = strcmp(e->string, known[i]) == 0;
    if (!ok && cJSON_IsObject(e) &&
        cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(e, "must_understand")))
      ok = true;
    if (!ok)
      return ckpt_error_set(p->err, CKPT_EUNSUPPORTED,
                            "%s: \"%.60s\" is an extension ckpt does not understand", p->where,
                            e->string);
  }
  return CKPT_OK;
}

static ckpt_status parse_key_encoding(parse_ctx *p, const cJSON *ke, ckpt_zarr_meta *m) {
  const cJSON *name = cJSON_IsObject(ke) ? cJSON_GetObjectItemCaseSensitive(ke, "name") : NULL;
  const cJSON *cfg =
      cJSON_IsObject(ke) ? cJSON_GetObjectItemCaseSensitive(ke, "configuration") : NULL;
  if (!cJSON_IsString(name))
    return ckpt_error_set(p->err, CKPT_ECORRUPT, "%s: chunk_key_encoding has no name", p->where);
  if (strcmp(name->valuestring, "default") == 0) {
    m->v3.key_default = true;
    m->separator = '/';
  } else if (strcmp(name->valuestring, "v2") == 0) {
    m->v3.key_default = false;
    m->separator = '.';
  } else {
    return ckpt_error_set(p->err, CKPT_EUNSUPPORTED,
                          "%s: chunk_key_encoding \"%.40s\" is not supported", p->where,
                          name->valuestring);
  }
  const cJSON *sep =
      cJSON_IsObject(cfg) ? cJSON_GetObjectItemCaseSensitive(cfg, "separator") : NULL;
  if (sep != NULL) {
    if (!cJSON_IsString(sep) ||
        (strcmp(sep->valuestring, "/") != 0 && strcmp(sep->valuestring, ".") != 0))
      return ckpt_error_set(p->err, CKPT_ECORRUPT,
                            "%s: chunk_key_encoding separator must be \"/\" or \".\"", p->where);
    m->separator = sep->valuestring[0];
  }
  return CKPT_OK;
}

ckpt_status ckpt_zarr3_meta_from_json(const cJSON *doc, const char *where, ckpt_zarr_meta *m,
                                      ckpt_error *err) {
  memset(m, 0, sizeof *m);
  m->zarr3 = true;
  m->compressor = CKPT_COMPRESSION_NONE;
  parse_ctx p = {where, err, CKPT_DTYPE_BOOL};
  if (!cJSON_IsObject(doc))
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s: not a JSON object", where);
  int64_t fmt;
  if (!get_int(cJSON_GetObjectItemCaseSensitive(doc, "zarr_format"), 0, 1000, &fmt) || fmt != 3)
    return ckpt_error_set(err, CKPT_EUNSUPPORTED, "%s: zarr_format is not 3", where);
  const cJSON *nt = cJSON_GetObjectItemCaseSensitive(doc, "node_type");
  if (!cJSON_IsString(nt))
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s: \"node_type\" is missing", where);
  if (strcmp(nt->valuestring, "array") != 0)
    return ckpt_error_set(err, CKPT_EUNSUPPORTED, "%s: node_type \"%.20s\" is not an array", where,
                          nt->valuestring);
  ckpt_status st = check_keys(&p, doc);
  if (st != CKPT_OK)
    return st;
  int nshape = 0, nchunks = 0;
  st = ckpt_zarr_parse_dims(doc, "shape", where, &nshape, m->shape, false, err);
  if (st != CKPT_OK)
    return st;
  m->ndim = nshape;
  const cJSON *dt = cJSON_GetObjectItemCaseSensitive(doc, "data_type");
  if (!cJSON_IsString(dt))
    return ckpt_error_set(err, CKPT_EUNSUPPORTED, "%s: data_type is not a type name", where);
  if (!parse_data_type(dt->valuestring, &m->dtype))
    return ckpt_error_set(err, CKPT_EUNSUPPORTED, "%s: data_type \"%.40s\" is not supported", where,
                          dt->valuestring);
  p.dtype = m->dtype;
  const cJSON *grid = cJSON_GetObjectItemCaseSensitive(doc, "chunk_grid");
  const cJSON *gname = cJSON_IsObject(grid) ? cJSON_GetObjectItemCaseSensitive(grid, "name") : NULL;
  const cJSON *gcfg =
      cJSON_IsObject(grid) ? cJSON_GetObjectItemCaseSensitive(grid, "configuration") : NULL;
  if (!cJSON_IsString(gname) || !cJSON_IsObject(gcfg))
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s: chunk_grid is missing or malformed", where);
  if (strcmp(gname->valuestring, "regular") != 0)
    return ckpt_error_set(err, CKPT_EUNSUPPORTED, "%s: chunk_grid \"%.40s\" is not supported",
                          where, gname->valuestring);
  st = ckpt_zarr_parse_dims(gcfg, "chunk_shape", where, &nchunks, m->chunks, true, err);
  if (st != CKPT_OK)
    return st;
  if (nchunks != nshape)
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s: shape has rank %d but chunk_shape has rank %d",
                          where, nshape, nchunks);
  /* Overflow guard, as for .zarray: element counts fit in 63 bits, one chunk in memory. */
  double total = 1, chunk = (double)ckpt_dtype_size(m->dtype);
  for (int d = 0; d < m->ndim; d++) {
    total *= (double)m->shape[d];
    chunk *= (double)m->chunks[d];
  }
  if (total > 4.0e18 || chunk > (double)(SIZE_MAX / 4))
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s: shape or chunk_shape too large", where);
  st = parse_key_encoding(&p, cJSON_GetObjectItemCaseSensitive(doc, "chunk_key_encoding"), m);
  if (st != CKPT_OK)
    return st;
  st = parse_fill(&p, cJSON_GetObjectItemCaseSensitive(doc, "fill_value"), m);
  if (st != CKPT_OK)
    return st;
  st = parse_chain(&p, cJSON_GetObjectItemCaseSensitive(doc, "codecs"), "codecs", m->ndim, 0,
                   &m->v3, &m->v3.codecs);
  if (st != CKPT_OK)
    return st;
  const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(doc, "attributes");
  if (attrs != NULL && !cJSON_IsObject(attrs))
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s: attributes is not an object", where);
  const cJSON *dn = cJSON_GetObjectItemCaseSensitive(doc, "dimension_names");
  if (dn != NULL && !cJSON_IsNull(dn)) {
    if (!cJSON_IsArray(dn) || cJSON_GetArraySize(dn) != m->ndim)
      return ckpt_error_set(err, CKPT_ECORRUPT, "%s: dimension_names must be a list of %d names",
                            where, m->ndim);
    const cJSON *e;
    cJSON_ArrayForEach(e, dn) {
      if (!cJSON_IsString(e) && !cJSON_IsNull(e))
        return ckpt_error_set(err, CKPT_ECORRUPT, "%s: a dimension name is not a string or null",
                              where);
    }
  }
  const cJSON *tr = cJSON_GetObjectItemCaseSensitive(doc, "storage_transformers");
  if (tr != NULL && !(cJSON_IsArray(tr) && cJSON_GetArraySize(tr) == 0))
    return ckpt_error_set(err, CKPT_EUNSUPPORTED, "%s: storage_transformers are not supported",
                          where);
  return CKPT_OK;
}

ckpt_status ckpt_zarr3_meta_decode(const char *json, size_t len, const char *where,
                                   ckpt_zarr_meta *m, ckpt_error *err) {
  memset(m, 0, sizeof *m);
  cJSON *doc = NULL;
  ckpt_status st = ckpt_json_load(json, len, where, &doc, err);
  if (st == CKPT_OK)
    st = ckpt_zarr3_meta_from_json(doc, where, m, err);
  cJSON_Delete(doc);
  return st;
}

/* ---------------------------------------------------------------- encoding */

static cJSON *int_list(const int64_t *v, int n) {
  cJSON *a = cJSON_CreateArray();
  for (int i = 0; a != NULL && i < n; i++)
    if (!cJSON_AddItemToArray(a, cJSON_CreateNumber((double)v[i]))) {
      cJSON_Delete(a);
      return NULL;
    }
  return a;
}

static cJSON *chain_json(const ckpt_zarr3_spec *spec, const ckpt_zarr3_chain *ch, int rank);

static cJSON *codec_json(const ckpt_zarr3_spec *spec, const ckpt_zarr3_codec *c, int rank) {
  cJSON *o = cJSON_CreateObject(), *cfg = NULL;
  if (o == NULL || !cJSON_AddStringToObject(o, "name", ckpt_zarr3_codec_name(c->id)))
    goto fail;
  if (c->id == CKPT_ZARR3_CRC32C)
    return o;
  cfg = cJSON_AddObjectToObject(o, "configuration");
  if (cfg == NULL)
    goto fail;
  bool ok = true;
  switch (c->id) {
    case CKPT_ZARR3_BYTES:
      ok = cJSON_AddStringToObject(cfg, "endian", c->big_endian ? "big" : "little") != NULL;
      break;
    case CKPT_ZARR3_TRANSPOSE: {
      int64_t ord[CKPT_MAX_RANK + 1];
      for (int i = 0; i < rank; i++)
        ord[i] = c->order[i];
      cJSON *a = int_list(ord, rank);
      ok = a != NULL && cJSON_AddItemToObject(cfg, "order", a);
      break;
    }
    case CKPT_ZARR3_ZSTD:
      ok = cJSON_AddNumberToObject(cfg, "level", c->level) != NULL &&
           cJSON_AddBoolToObject(cfg, "checksum", c->checksum) != NULL;
      break;
    case CKPT_ZARR3_GZIP:
      ok = cJSON_AddNumberToObject(cfg, "level", c->level) != NULL;
      break;
    case CKPT_ZARR3_BLOSC: {
      static const char *const sh[] = {"noshuffle", "shuffle", "bitshuffle"};
      ok = cJSON_AddStringToObject(cfg, "cname", c->cname) != NULL &&
           cJSON_AddNumberToObject(cfg, "clevel", c->level) != NULL &&
           cJSON_AddStringToObject(cfg, "shuffle", sh[c->shuffle % 3]) != NULL &&
           cJSON_AddNumberToObject(cfg, "typesize", c->typesize) != NULL &&
           cJSON_AddNumberToObject(cfg, "blocksize", c->blocksize) != NULL;
      break;
    }
    case CKPT_ZARR3_SHARDING: {
      cJSON *shape = int_list(spec->inner, rank);
      cJSON *codecs = chain_json(spec, &spec->inner_codecs, rank);
      cJSON *index = chain_json(spec, &spec->index_codecs, rank + 1);
      ok = shape != NULL && codecs != NULL && index != NULL;
      if (!ok) {
        cJSON_Delete(shape);
        cJSON_Delete(codecs);
        cJSON_Delete(index);
        break;
      }
      cJSON_AddItemToObject(cfg, "chunk_shape", shape);
      cJSON_AddItemToObject(cfg, "codecs", codecs);
      cJSON_AddItemToObject(cfg, "index_codecs", index);
      /* "end" is the default, and TensorStore leaves it out */
      ok = !spec->index_at_start || cJSON_AddStringToObject(cfg, "index_location", "start") != NULL;
      break;
    }
    default:
      ok = false;
  }
  if (ok)
    return o;
fail:
  cJSON_Delete(o);
  return NULL;
}

static cJSON *chain_json(const ckpt_zarr3_spec *spec, const ckpt_zarr3_chain *ch, int rank) {
  cJSON *a = cJSON_CreateArray();
  for (int i = 0; a != NULL && i < ch->n; i++) {
    cJSON *c = codec_json(spec, &ch->c[i], rank);
    if (c == NULL || !cJSON_AddItemToArray(a, c)) {
      cJSON_Delete(c);
      cJSON_Delete(a);
      return NULL;
    }
  }
  return a;
}

/* The fill value as JSON: numbers where exact, "NaN"/"Infinity" names, and the hex form for
 * any other float bit pattern JSON cannot carry (negative zero, NaN payloads). */
static cJSON *fill_json(const ckpt_zarr_meta *m) {
  ckpt_dtype_class cls = ckpt_dtype_class_of(m->dtype);
  size_t es = ckpt_dtype_size(m->dtype);
  if (cls == CKPT_DTYPE_CLASS_BOOL)
    return cJSON_CreateBool(m->fill[0] != 0);
  if (cls == CKPT_DTYPE_CLASS_SIGNED || cls == CKPT_DTYPE_CLASS_UNSIGNED) {
    char buf[32];
    if (cls == CKPT_DTYPE_CLASS_SIGNED) {
      int64_t v;
      ckpt_dtype_convert(CKPT_DTYPE_INT64, &v, m->dtype, m->fill, 1);
      snprintf(buf, sizeof buf, "%lld", (long long)v);
    } else {
      uint64_t v;
      ckpt_dtype_convert(CKPT_DTYPE_UINT64, &v, m->dtype, m->fill, 1);
      snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    }
    return cJSON_CreateRaw(buf); /* exact beyond 2^53 */
  }
  size_t part = cls == CKPT_DTYPE_CLASS_COMPLEX ? es / 2 : es;
  ckpt_dtype pdt = cls != CKPT_DTYPE_CLASS_COMPLEX    ? m->dtype
                   : m->dtype == CKPT_DTYPE_COMPLEX64 ? CKPT_DTYPE_FLOAT32
                                                      : CKPT_DTYPE_FLOAT64;
  cJSON *items[2] = {NULL, NULL};
  int n = cls == CKPT_DTYPE_CLASS_COMPLEX ? 2 : 1;
  for (int i = 0; i < n; i++) {
    double d;
    ckpt_dtype_convert(CKPT_DTYPE_FLOAT64, &d, pdt, m->fill + i * part, 1);
    unsigned char back[8] = {0};
    ckpt_dtype_convert(pdt, back, CKPT_DTYPE_FLOAT64, &d, 1);
    bool exact = memcmp(back, m->fill + i * part, part) == 0 && !(d == 0 && signbit(d));
    if (isnan(d)) {
      /* "NaN" is the canonical quiet NaN only; any other payload keeps its bits in hex */
      double qnan = NAN;
      unsigned char canon[8] = {0};
      ckpt_dtype_convert(pdt, canon, CKPT_DTYPE_FLOAT64, &qnan, 1);
      exact = memcmp(canon, m->fill + i * part, part) == 0;
    }
    if (isnan(d) && exact)
      items[i] = cJSON_CreateString("NaN");
    else if (isinf(d))
      items[i] = cJSON_CreateString(d > 0 ? "Infinity" : "-Infinity");
    else if (exact)
      items[i] = cJSON_CreateNumber(d);
    else {
      char hex[24];
      size_t pos = (size_t)snprintf(hex, sizeof hex, "0x");
      for (size_t b = part; b-- > 0;)
        pos += (size_t)snprintf(hex + pos, sizeof hex - pos, "%02x", m->fill[i * part + b]);
      items[i] = cJSON_CreateString(hex);
    }
  }
  if (n == 1)
    return items[0];
  cJSON *a = cJSON_CreateArray();
  if (a == NULL || items[0] == NULL || items[1] == NULL) {
    cJSON_Delete(a);
    cJSON_Delete(items[0]);
    cJSON_Delete(items[1]);
    return NULL;
  }
  cJSON_AddItemToArray(a, items[0]);
  cJSON_AddItemToArray(a, items[1]);
  return a;
}

ckpt_status ckpt_zarr3_meta_encode(const ckpt_zarr_meta *m, char **json, size_t *len,
                                   ckpt_error *err) {
  *json = NULL;
  if (!m->zarr3)
    return ckpt_error_set(err, CKPT_EINVAL, "zarr3: metadata is not zarr v3");
  cJSON *doc = cJSON_CreateObject();
  bool ok = doc != NULL;
  /* keys in the order zarr-python and TensorStore readers expect nothing of; sorted, like
   * TensorStore's output */
  cJSON *grid = ok ? cJSON_AddObjectToObject(doc, "chunk_grid") : NULL;
  cJSON *gcfg = grid ? cJSON_AddObjectToObject(grid, "configuration") : NULL;
  cJSON *cs = gcfg ? int_list(m->chunks, m->ndim) : NULL;
  ok = cs != NULL && cJSON_AddItemToObject(gcfg, "chunk_shape", cs) &&
       cJSON_AddStringToObject(grid, "name", "regular") != NULL;
  cJSON *ke = ok ? cJSON_AddObjectToObject(doc, "chunk_key_encoding") : NULL;
  /* the separator only when it is not the encoding's default ("/" for "default", "." for "v2"),
   * as TensorStore writes it */
  char dflt = m->v3.key_default ? '/' : '.';
  char sep[2] = {m->separator ? m->separator : dflt, '\0'};
  cJSON *kcfg = ke != NULL && sep[0] != dflt ? cJSON_AddObjectToObject(ke, "configuration") : NULL;
  ok = ke != NULL && (sep[0] == dflt || kcfg != NULL);
  ok = ok && (kcfg == NULL || cJSON_AddStringToObject(kcfg, "separator", sep) != NULL) &&
       cJSON_AddStringToObject(ke, "name", m->v3.key_default ? "default" : "v2") != NULL;
  cJSON *codecs = ok ? chain_json(&m->v3, &m->v3.codecs, m->ndim) : NULL;
  ok = codecs != NULL && cJSON_AddItemToObject(doc, "codecs", codecs);
  ok = ok && cJSON_AddStringToObject(doc, "data_type", ckpt_dtype_name(m->dtype)) != NULL;
  cJSON *fill = ok ? fill_json(m) : NULL;
  ok = fill != NULL && cJSON_AddItemToObject(doc, "fill_value", fill);
  ok = ok && cJSON_AddStringToObject(doc, "node_type", "array") != NULL;
  cJSON *shape = ok ? int_list(m->shape, m->ndim) : NULL;
  ok = shape != NULL && cJSON_AddItemToObject(doc, "shape", shape);
  ok = ok && cJSON_AddNumberToObject(doc, "zarr_format", 3) != NULL;
  ckpt_status st = ok ? ckpt_json_dump_compact(doc, json, len, err)
                      : ckpt_error_set(err, CKPT_ENOMEM, "zarr3: out of memory encoding zarr.json");
  cJSON_Delete(doc);
  return st;
}

void ckpt_zarr3_set_orbax(ckpt_zarr_meta *m, int level, char separator) {
  m->zarr3 = true;
  m->compressor = CKPT_COMPRESSION_NONE;
  m->level = 0;
  m->big_endian = false;
  m->fill_is_null = false;
  memset(m->fill, 0, sizeof m->fill);
  memset(&m->v3, 0, sizeof m->v3);
  m->v3.key_default = true;
  m->separator = separator == '.' ? '.' : '/';
  ckpt_zarr3_spec *s = &m->v3;
  s->codecs.n = 1;
  s->codecs.c[0].id = CKPT_ZARR3_SHARDING;
  memcpy(s->inner, m->chunks, sizeof s->inner);
  s->inner_codecs.c[s->inner_codecs.n++].id = CKPT_ZARR3_BYTES;
  if (level >= 0) {
    ckpt_zarr3_codec *z = &s->inner_codecs.c[s->inner_codecs.n++];
    z->id = CKPT_ZARR3_ZSTD;
    z->level = (int16_t)level;
  }
  s->index_codecs.n = 2;
  s->index_codecs.c[0].id = CKPT_ZARR3_BYTES;
  s->index_codecs.c[1].id = CKPT_ZARR3_CRC32C;
  s->index_at_start = false;
}
