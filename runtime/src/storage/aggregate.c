/* storage/aggregate.c — decoding the legacy msgpack aggregate file (see the header for the
 * encoding). msgpack-c does the msgpack; this file checks what it is handed and what it hands
 * back, and turns Flax's extension types into ckpt trees. */
#include "storage/aggregate.h"

#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "util/path.h"

/* Flax's extension type codes (flax/serialization.py _MsgpackExtType; Orbax adds TUPLE). */
enum { EXT_NDARRAY = 1, EXT_COMPLEX = 2, EXT_NPSCALAR = 3, EXT_TUPLE = 4 };

#define CHUNKED_KEY "__msgpack_chunked_array__"

typedef struct agg_ctx {
  const char *where;
  char path[256]; /* the key path being decoded, '.'-joined, for messages (truncated) */
} agg_ctx;

static const char *at(const agg_ctx *c) {
  return c->path[0] ? c->path : "(root)";
}

static ckpt_status corrupt(const agg_ctx *c, ckpt_error *err, const char *what) {
  return ckpt_error_set(err, CKPT_ECORRUPT, "'%s': at %s: %s", c->where, at(c), what);
}

static uint64_t be(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++)
    v = v << 8 | p[i];
  return v;
}

/* msgpack-c allocates a container's element slots from the count in its header before it reads
 * the elements, so a 5-byte header could make it ask for 100 GB. Every element takes at least
 * one byte of the input, so a well-formed document's containers claim at most len elements in
 * all: this walks the headers in order (payloads of str/bin/ext skipped, not interpreted) and
 * checks that sum. Malformed headers are left to msgpack-c, which reports them. */
static bool counts_fit(const unsigned char *p, size_t len) {
  uint64_t claimed = 0;
  size_t i = 0;
  while (i < len) {
    unsigned b = p[i];
    uint64_t head = 1, payload = 0, count = 0;
    int lenbytes = 0;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
      /* fixints, nil, bool */
    } else if (b <= 0x8f) {
      count = 2u * (b & 0x0f);
    } else if (b <= 0x9f) {
      count = b & 0x0f;
    } else if (b <= 0xbf) {
      payload = b & 0x1f;
    } else {
      switch (b) {
        case 0xc4: case 0xd9: lenbytes = 1; break;                 /* bin8, str8 */
        case 0xc5: case 0xda: lenbytes = 2; break;                 /* bin16, str16 */
        case 0xc6: case 0xdb: lenbytes = 4; break;                 /* bin32, str32 */
        case 0xc7: lenbytes = 1; head = 1; payload = 1; break;     /* ext8: + type byte */
        case 0xc8: lenbytes = 2; head = 1; payload = 1; break;
        case 0xc9: lenbytes = 4; head = 1; payload = 1; break;
        case 0xca: head = 5; break;
        case 0xcb: head = 9; break;
        case 0xcc: case 0xd0: head = 2; break;
        case 0xcd: case 0xd1: head = 3; break;
        case 0xce: case 0xd2: head = 5; break;
        case 0xcf: case 0xd3: head = 9; break;
        case 0xd4: head = 3; break; /* fixext 1..16: type + data */
        case 0xd5: head = 4; break;
        case 0xd6: head = 6; break;
        case 0xd7: head = 10; break;
        case 0xd8: head = 18; break;
        case 0xdc: case 0xdd: case 0xde: case 0xdf: {
          int n = b == 0xdc || b == 0xde ? 2 : 4;
          if (len - i < (size_t)n + 1)
            return true;
          count = be(p + i + 1, n) * (b >= 0xde ? 2u : 1u);
          head = (uint64_t)n + 1;
          break;
        }
        default:
          return true; /* 0xc1: never used; msgpack-c refuses it */
      }
      if (lenbytes > 0) {
        if (len - i < (size_t)lenbytes + 1)
          return true;
        payload += be(p + i + 1, lenbytes);
        head += (uint64_t)lenbytes;
      }
    }
    claimed += count;
    if (claimed > len)
      return false;
    if (head + payload > len - i)
      return true; /* truncated: msgpack-c says so */
    i += (size_t)(head + payload);
  }
  return true;
}

/* Unpacks exactly one object spanning data[0, len). */
static ckpt_status unpack_one(const agg_ctx *c, const void *data, size_t len, msgpack_unpacked *u,
                              const char *what, ckpt_error *err) {
  if (!counts_fit(data, len)) {
    char msg[160];
    snprintf(msg, sizeof msg, "%s: its containers claim more elements than its %zu bytes hold",
             what, len);
    return corrupt(c, err, msg);
  }
  size_t off = 0;
  msgpack_unpack_return r = msgpack_unpack_next(u, data, len, &off);
  if (r == MSGPACK_UNPACK_NOMEM_ERROR)
    return ckpt_error_set(err, CKPT_ENOMEM, "'%s': out of memory decoding msgpack", c->where);
  char msg[160];
  if (r != MSGPACK_UNPACK_SUCCESS) {
    snprintf(msg, sizeof msg, "%s is not valid msgpack (%s)", what,
             r == MSGPACK_UNPACK_CONTINUE ? "truncated" : "parse error");
    return corrupt(c, err, msg);
  }
  if (off != len) {
    snprintf(msg, sizeof msg, "%s has %zu bytes after its msgpack object", what, len - off);
    return corrupt(c, err, msg);
  }
  return CKPT_OK;
}

/* A str or bin as a NUL-free C string copy; NULL with *bad set when it holds a NUL. */
static char *text_of(const msgpack_object *o, bool *bad) {
  const char *p = o->type == MSGPACK_OBJECT_STR ? o->via.str.ptr : o->via.bin.ptr;
  uint32_t n = o->type == MSGPACK_OBJECT_STR ? o->via.str.size : o->via.bin.size;
  *bad = n > 0 && memchr(p, '\0', n) != NULL;
  if (*bad)
    return NULL;
  char *s = malloc((size_t)n + 1);
  if (s != NULL) {
    if (n > 0)
      memcpy(s, p, n);
    s[n] = '\0';
  }
  return s;
}

static bool is_text(const msgpack_object *o) {
  return o->type == MSGPACK_OBJECT_STR || o->type == MSGPACK_OBJECT_BIN;
}

/* Flax's ndarray encoding, msgpack [shape, dtype name, bytes], into a fresh array. */
static ckpt_status decode_ndarray(const agg_ctx *c, const void *data, size_t len, ckpt_array **out,
                                  ckpt_error *err) {
  *out = NULL;
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  ckpt_status st = unpack_one(c, data, len, &u, "an ndarray", err);
  const msgpack_object *o = &u.data;
  if (st == CKPT_OK && (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 3))
    st = corrupt(c, err, "an ndarray is not [shape, dtype, bytes]");
  const msgpack_object *shp = st == CKPT_OK ? &o->via.array.ptr[0] : NULL;
  const msgpack_object *dto = st == CKPT_OK ? &o->via.array.ptr[1] : NULL;
  const msgpack_object *buf = st == CKPT_OK ? &o->via.array.ptr[2] : NULL;
  if (st == CKPT_OK && (shp->type != MSGPACK_OBJECT_ARRAY || !is_text(dto) || !is_text(buf)))
    st = corrupt(c, err, "an ndarray is not [shape, dtype, bytes]");
  if (st == CKPT_OK && shp->via.array.size > CKPT_MAX_RANK) {
    char msg[96];
    snprintf(msg, sizeof msg, "an ndarray has rank %" PRIu32 " (at most %d)", shp->via.array.size,
             CKPT_MAX_RANK);
    st = corrupt(c, err, msg);
  }
  int nd = st == CKPT_OK ? (int)shp->via.array.size : 0;
  int64_t shape[CKPT_MAX_RANK] = {0};
  uint64_t elems = 1;
  bool overflow = false;
  for (int d = 0; st == CKPT_OK && d < nd; d++) {
    const msgpack_object *e = &shp->via.array.ptr[d];
    if (e->type != MSGPACK_OBJECT_POSITIVE_INTEGER || e->via.u64 > INT64_MAX) {
      st = corrupt(c, err, "an ndarray's shape holds something other than a size");
      break;
    }
    shape[d] = (int64_t)e->via.u64;
    if (shape[d] != 0 && elems > UINT64_MAX / (uint64_t)shape[d])
      overflow = true;
    else
      elems *= (uint64_t)shape[d];
  }
  ckpt_dtype dt = CKPT_DTYPE_COUNT_;
  if (st == CKPT_OK) {
    bool bad;
    char *name = text_of(dto, &bad);
    if (name == NULL && !bad)
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    else if (name == NULL || strlen(name) > 32 || name[0] == '<' || name[0] == '>' ||
             name[0] == '|' || !ckpt_dtype_parse(name, &dt)) {
      char msg[128];
      snprintf(msg, sizeof msg, "ndarray dtype '%.32s' is not one ckpt reads", name ? name : "?");
      st = ckpt_error_set(err, CKPT_EUNSUPPORTED, "'%s': at %s: %s", c->where, at(c), msg);
    }
    free(name);
  }
  size_t nbytes = 0;
  if (st == CKPT_OK) {
    size_t isz = ckpt_dtype_size(dt);
    uint32_t have = buf->type == MSGPACK_OBJECT_BIN ? buf->via.bin.size : buf->via.str.size;
    if (overflow || elems > SIZE_MAX / isz || elems * isz != have) {
      char msg[200];
      snprintf(msg, sizeof msg,
               "an ndarray of %s holds %" PRIu32 " bytes, which its shape does not account for",
               ckpt_dtype_name(dt), have);
      st = corrupt(c, err, msg);
    } else {
      nbytes = (size_t)(elems * isz);
    }
  }
  ckpt_array *a = NULL;
  if (st == CKPT_OK)
    st = ckpt_array_new(dt, nd, shape, &a, err);
  if (st == CKPT_OK && nbytes > 0) {
    void *dst = ckpt_array_data(a);
    const char *src = buf->type == MSGPACK_OBJECT_BIN ? buf->via.bin.ptr : buf->via.str.ptr;
    if (dst == NULL)
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    else
      memcpy(dst, src, nbytes);
  }
  msgpack_unpacked_destroy(&u);
  if (st != CKPT_OK) {
    ckpt_array_free(a);
    return st;
  }
  *out = a;
  return CKPT_OK;
}

static ckpt_tree *complex_leaf(double re, double im) {
  int64_t none[CKPT_MAX_RANK] = {0};
  ckpt_array *a;
  if (ckpt_array_new(CKPT_DTYPE_COMPLEX128, 0, none, &a, NULL) != CKPT_OK)
    return NULL;
  double *v = ckpt_array_data(a);
  if (v == NULL) {
    ckpt_array_free(a);
    return NULL;
  }
  v[0] = re;
  v[1] = im;
  return ckpt_tree_new_array(a);
}

static bool number_of(const msgpack_object *o, double *v) {
  switch (o->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
      *v = o->via.f64;
      return true;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
      *v = (double)o->via.u64;
      return true;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
      *v = (double)o->via.i64;
      return true;
    default:
      return false;
  }
}

static ckpt_status convert(agg_ctx *c, const msgpack_object *o, int depth, ckpt_tree **out,
                           ckpt_error *err);

/* Appends key to c->path for the duration of a child's conversion; returns the old length. */
static size_t path_push(agg_ctx *c, const char *key) {
  size_t old = strlen(c->path);
  snprintf(c->path + old, sizeof c->path - old, "%s%s", old ? "." : "", key);
  return old;
}

static ckpt_status convert_ext(agg_ctx *c, const msgpack_object *o, int depth, ckpt_tree **out,
                               ckpt_error *err) {
  const void *data = o->via.ext.ptr;
  size_t len = o->via.ext.size;
  switch (o->via.ext.type) {
    case EXT_NDARRAY:
    case EXT_NPSCALAR: {
      ckpt_array *a;
      ckpt_status st = decode_ndarray(c, data, len, &a, err);
      if (st != CKPT_OK)
        return st;
      /* A NumPy scalar is a 0-d array; ckpt's scalar leaves hold the real dtypes. */
      if (o->via.ext.type == EXT_NPSCALAR && a->ndim == 0 &&
          ckpt_dtype_class_of(a->dtype) != CKPT_DTYPE_CLASS_COMPLEX) {
        ckpt_scalar s = ckpt_scalar_load(a->dtype, ckpt_array_data(a));
        ckpt_array_free(a);
        *out = ckpt_tree_new_scalar(s);
      } else {
        *out = ckpt_tree_new_array(a);
      }
      return *out ? CKPT_OK : ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    }
    case EXT_COMPLEX: {
      msgpack_unpacked u;
      msgpack_unpacked_init(&u);
      ckpt_status st = unpack_one(c, data, len, &u, "a complex number", err);
      double re = 0, im = 0;
      if (st == CKPT_OK && (u.data.type != MSGPACK_OBJECT_ARRAY || u.data.via.array.size != 2 ||
                            !number_of(&u.data.via.array.ptr[0], &re) ||
                            !number_of(&u.data.via.array.ptr[1], &im)))
        st = corrupt(c, err, "a complex number is not [real, imag]");
      msgpack_unpacked_destroy(&u);
      if (st != CKPT_OK)
        return st;
      *out = complex_leaf(re, im);
      return *out ? CKPT_OK : ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    }
    case EXT_TUPLE: {
      msgpack_unpacked u;
      msgpack_unpacked_init(&u);
      ckpt_status st = unpack_one(c, data, len, &u, "a tuple", err);
      if (st == CKPT_OK && u.data.type != MSGPACK_OBJECT_ARRAY)
        st = corrupt(c, err, "a tuple does not hold a msgpack array");
      ckpt_tree *t = NULL;
      if (st == CKPT_OK) {
        msgpack_object as_list = u.data;
        st = convert(c, &as_list, depth, &t, err); /* a list of the elements ... */
      }
      msgpack_unpacked_destroy(&u);
      if (st != CKPT_OK)
        return st;
      ckpt_tree *tuple = ckpt_tree_new_tuple(); /* ... moved into a tuple */
      for (size_t i = 0; tuple != NULL && i < ckpt_tree_count(t) && st == CKPT_OK; i++)
        st = ckpt_tree_append(tuple, ckpt_tree_clone(ckpt_tree_child(t, i)), err);
      ckpt_tree_free(t);
      if (tuple == NULL)
        return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
      if (st != CKPT_OK) {
        ckpt_tree_free(tuple);
        return st;
      }
      *out = tuple;
      return CKPT_OK;
    }
    default: {
      char msg[96];
      snprintf(msg, sizeof msg, "msgpack extension type %d is not one of Flax's", o->via.ext.type);
      return corrupt(c, err, msg);
    }
  }
}

/* The value of key in a msgpack map; NULL when absent. */
static const msgpack_object *map_get(const msgpack_object *m, const char *key) {
  size_t n = strlen(key);
  for (uint32_t i = 0; i < m->via.map.size; i++) {
    const msgpack_object *k = &m->via.map.ptr[i].key;
    if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && memcmp(k->via.str.ptr, key, n) == 0)
      return &m->via.map.ptr[i].val;
  }
  return NULL;
}

/* Flax's {"0": v0, "1": v1, ...} tuple encoding: element i of m, or NULL. */
static const msgpack_object *index_get(const msgpack_object *m, uint32_t i) {
  char key[16];
  snprintf(key, sizeof key, "%" PRIu32, i);
  return m->type == MSGPACK_OBJECT_MAP ? map_get(m, key) : NULL;
}

/* An array Flax split into 1-d chunks (_chunk in flax/serialization.py), joined again. */
static ckpt_status unchunk(agg_ctx *c, const msgpack_object *m, ckpt_tree **out, ckpt_error *err) {
  const msgpack_object *shp = map_get(m, "shape"), *chunks = map_get(m, "chunks");
  if (shp == NULL || chunks == NULL || shp->type != MSGPACK_OBJECT_MAP ||
      chunks->type != MSGPACK_OBJECT_MAP || shp->via.map.size > CKPT_MAX_RANK ||
      m->via.map.size != 3)
    return corrupt(c, err, "a chunked array is not {" CHUNKED_KEY ", shape, chunks}");
  int nd = (int)shp->via.map.size;
  int64_t shape[CKPT_MAX_RANK] = {0};
  uint64_t elems = 1;
  for (int d = 0; d < nd; d++) {
    const msgpack_object *e = index_get(shp, (uint32_t)d);
    if (e == NULL || e->type != MSGPACK_OBJECT_POSITIVE_INTEGER || e->via.u64 > INT64_MAX ||
        (e->via.u64 != 0 && elems > UINT64_MAX / e->via.u64))
      return corrupt(c, err, "a chunked array's shape is not {\"0\": size, ...}");
    shape[d] = (int64_t)e->via.u64;
    elems *= e->via.u64;
  }
  /* The chunks first (each bounded by the input), so that the whole array is allocated only
   * once they are known to fill the shape exactly. */
  uint32_t k = chunks->via.map.size;
  ckpt_array **parts = calloc(k ? k : 1, sizeof *parts);
  if (parts == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_status st = CKPT_OK;
  uint64_t total = 0;
  for (uint32_t i = 0; i < k && st == CKPT_OK; i++) {
    const msgpack_object *e = index_get(chunks, i);
    if (e == NULL || e->type != MSGPACK_OBJECT_EXT || e->via.ext.type != EXT_NDARRAY) {
      st = corrupt(c, err, "a chunked array's chunks are not {\"0\": ndarray, ...}");
      break;
    }
    st = decode_ndarray(c, e->via.ext.ptr, e->via.ext.size, &parts[i], err);
    if (st == CKPT_OK && (parts[i]->ndim != 1 || parts[i]->dtype != parts[0]->dtype))
      st = corrupt(c, err, "a chunked array's chunks are not 1-d arrays of one dtype");
    if (st == CKPT_OK)
      total += (uint64_t)parts[i]->shape[0];
  }
  if (st == CKPT_OK && (k == 0 || total != elems))
    st = corrupt(c, err, "a chunked array's chunks do not add up to its shape");
  ckpt_array *whole = NULL;
  if (st == CKPT_OK)
    st = ckpt_array_new(parts[0]->dtype, nd, shape, &whole, err);
  size_t isz = st == CKPT_OK ? ckpt_dtype_size(whole->dtype) : 0;
  char *dst = st == CKPT_OK ? ckpt_array_data(whole) : NULL;
  for (uint32_t i = 0; i < k && st == CKPT_OK; i++) {
    size_t n = (size_t)parts[i]->shape[0] * isz;
    if (n > 0) {
      memcpy(dst, ckpt_array_data(parts[i]), n);
      dst += n;
    }
  }
  for (uint32_t i = 0; i < k; i++)
    ckpt_array_free(parts[i]);
  free(parts);
  if (st != CKPT_OK) {
    ckpt_array_free(whole);
    return st;
  }
  *out = ckpt_tree_new_array(whole);
  return *out ? CKPT_OK : ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
}

static ckpt_status convert_map(agg_ctx *c, const msgpack_object *o, int depth, ckpt_tree **out,
                               ckpt_error *err) {
  if (map_get(o, CHUNKED_KEY) != NULL)
    return unchunk(c, o, out, err);
  ckpt_tree *d = ckpt_tree_new_dict();
  if (d == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_status st = CKPT_OK;
  for (uint32_t i = 0; i < o->via.map.size && st == CKPT_OK; i++) {
    const msgpack_object *k = &o->via.map.ptr[i].key;
    char *key = NULL;
    bool bad = false;
    if (is_text(k)) {
      key = text_of(k, &bad);
    } else if (k->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
      key = malloc(24);
      if (key != NULL)
        snprintf(key, 24, "%" PRIu64, k->via.u64);
    } else {
      st = corrupt(c, err, "a map key is neither a string nor an index");
      break;
    }
    if (key == NULL) {
      st = bad ? corrupt(c, err, "a map key contains a NUL byte")
               : ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
      break;
    }
    size_t old = path_push(c, key);
    if (ckpt_tree_dict_get(d, key) != NULL) {
      st = corrupt(c, err, "the key appears twice in its map");
    } else {
      ckpt_tree *child = NULL;
      st = convert(c, &o->via.map.ptr[i].val, depth + 1, &child, err);
      if (st == CKPT_OK)
        st = ckpt_tree_dict_set(d, key, child, err);
    }
    c->path[old] = '\0';
    free(key);
  }
  if (st != CKPT_OK) {
    ckpt_tree_free(d);
    return st;
  }
  *out = d;
  return CKPT_OK;
}

static ckpt_status convert(agg_ctx *c, const msgpack_object *o, int depth, ckpt_tree **out,
                           ckpt_error *err) {
  *out = NULL;
  if (depth > CKPT_AGGREGATE_MAX_DEPTH)
    return corrupt(c, err, "the tree nests deeper than ckpt reads");
  switch (o->type) {
    case MSGPACK_OBJECT_NIL:
      *out = ckpt_tree_new_none();
      break;
    case MSGPACK_OBJECT_BOOLEAN:
      *out = ckpt_tree_new_scalar((ckpt_scalar){.dtype = CKPT_DTYPE_BOOL, .v.b = o->via.boolean});
      break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
      if (o->via.u64 <= INT64_MAX)
        *out = ckpt_tree_new_int(CKPT_DTYPE_INT64, (int64_t)o->via.u64);
      else
        *out = ckpt_tree_new_scalar((ckpt_scalar){.dtype = CKPT_DTYPE_UINT64, .v.u = o->via.u64});
      break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
      *out = ckpt_tree_new_int(CKPT_DTYPE_INT64, o->via.i64);
      break;
    case MSGPACK_OBJECT_FLOAT32:
      *out = ckpt_tree_new_float(CKPT_DTYPE_FLOAT32, o->via.f64);
      break;
    case MSGPACK_OBJECT_FLOAT64:
      *out = ckpt_tree_new_float(CKPT_DTYPE_FLOAT64, o->via.f64);
      break;
    case MSGPACK_OBJECT_STR: {
      size_t np = strlen(CKPT_AGGREGATE_PLACEHOLDER_PREFIX);
      if (o->via.str.size >= np && memcmp(o->via.str.ptr, CKPT_AGGREGATE_PLACEHOLDER_PREFIX, np) == 0) {
        *out = ckpt_tree_new_placeholder(); /* the value is in the zarr array of this leaf */
        break;
      }
      bool bad;
      char *s = text_of(o, &bad);
      if (s == NULL)
        return bad ? corrupt(c, err, "a string contains a NUL byte")
                   : ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
      *out = ckpt_tree_new_string(s);
      free(s);
      break;
    }
    case MSGPACK_OBJECT_BIN:
      *out = ckpt_tree_new_bytes(o->via.bin.ptr, o->via.bin.size);
      break;
    case MSGPACK_OBJECT_ARRAY: {
      ckpt_tree *l = ckpt_tree_new_list();
      if (l == NULL)
        break;
      ckpt_status st = CKPT_OK;
      for (uint32_t i = 0; i < o->via.array.size && st == CKPT_OK; i++) {
        char idx[16];
        snprintf(idx, sizeof idx, "%" PRIu32, i);
        size_t old = path_push(c, idx);
        ckpt_tree *child = NULL;
        st = convert(c, &o->via.array.ptr[i], depth + 1, &child, err);
        if (st == CKPT_OK)
          st = ckpt_tree_append(l, child, err);
        c->path[old] = '\0';
      }
      if (st != CKPT_OK) {
        ckpt_tree_free(l);
        return st;
      }
      *out = l;
      break;
    }
    case MSGPACK_OBJECT_MAP:
      return convert_map(c, o, depth, out, err);
    case MSGPACK_OBJECT_EXT:
      return convert_ext(c, o, depth, out, err);
    default:
      return corrupt(c, err, "a msgpack value of a type Flax never writes");
  }
  return *out ? CKPT_OK : ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
}

ckpt_status ckpt_aggregate_parse(const void *data, size_t len, const char *where, ckpt_tree **out,
                                 ckpt_error *err) {
  *out = NULL;
  agg_ctx c = {.where = where != NULL ? where : CKPT_AGGREGATE_FILE};
  if (len == 0)
    return corrupt(&c, err, "the file is empty");
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  ckpt_status st = unpack_one(&c, data, len, &u, "the file", err);
  if (st == CKPT_OK)
    st = convert(&c, &u.data, 0, out, err);
  msgpack_unpacked_destroy(&u);
  return st;
}

const ckpt_tree *ckpt_aggregate_value(const ckpt_tree *t, const char *const *keys, size_t depth) {
  for (size_t i = 0; t != NULL && i < depth; i++) {
    ckpt_node_kind k = ckpt_tree_kind(t);
    if (k == CKPT_NODE_DICT) {
      t = ckpt_tree_dict_get(t, keys[i]);
    } else if (k == CKPT_NODE_LIST || k == CKPT_NODE_TUPLE) {
      char *end;
      unsigned long long idx = strtoull(keys[i], &end, 10);
      bool ok = keys[i][0] >= '0' && keys[i][0] <= '9' && *end == '\0' && idx < ckpt_tree_count(t);
      t = ok ? ckpt_tree_child(t, (size_t)idx) : NULL;
    } else {
      t = NULL;
    }
  }
  return t != NULL && ckpt_tree_kind(t) != CKPT_NODE_PLACEHOLDER ? t : NULL;
}

ckpt_status ckpt_aggregate_read(ckpt_io *io, const char *dir, ckpt_tree **out, ckpt_error *err) {
  *out = NULL;
  char *path = ckpt_path_join(dir, CKPT_AGGREGATE_FILE);
  if (path == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_io_kind kind = CKPT_IO_KIND_MISSING;
  uint64_t size = 0;
  ckpt_status st = ckpt_io_stat(io, path, &kind, &size, err);
  /* A directory of that name is no aggregate file: ArrayCheckpointHandler stores its one
   * array as the parameter `checkpoint` (a zarr directory). */
  if (st == CKPT_OK && (kind == CKPT_IO_KIND_MISSING || kind == CKPT_IO_KIND_DIR))
    st = ckpt_error_set(err, CKPT_ENOENT, "'%s' does not exist%s", path,
                        kind == CKPT_IO_KIND_DIR ? " as a file (it is a directory)" : "");
  else if (st == CKPT_OK && kind != CKPT_IO_KIND_FILE)
    st = ckpt_error_set(err, CKPT_EUNSAFE, "'%s' is not a regular file (a link is never followed)",
                        path);
  void *data = NULL;
  size_t n = 0;
  if (st == CKPT_OK)
    st = ckpt_io_read_file(io, path, CKPT_AGGREGATE_MAX_BYTES, &data, &n, err);
  if (st == CKPT_OK)
    st = ckpt_aggregate_parse(data, n, path, out, err);
  free(data);
  free(path);
  return st;
}
