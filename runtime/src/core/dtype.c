/* dtype.c — element types: names, sizes, parsing, and casts between every pair of dtypes.
 *
 * Casts round to nearest-even wherever the target is a narrower float (bfloat16 and float16
 * included), because that is what NumPy, ml_dtypes and TensorStore do and a checkpoint that
 * changes values on a round trip through a cast would be wrong in a way nobody would notice.
 * Everything here assumes a little-endian host, which is also the on-disk byte order. */
#include "ckpt/dtype.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ckpt assumes a little-endian host (the zarr dtypes it writes are little-endian)"
#endif

typedef struct dtype_info {
  const char *name;
  const char *zarr;
  size_t size;
} dtype_info;

static const dtype_info k_dtypes[] = {
#define CKPT_DTYPE_INFO_(id, name, zarr, size) {name, zarr, size},
    CKPT_DTYPE_LIST(CKPT_DTYPE_INFO_)
#undef CKPT_DTYPE_INFO_
};

bool ckpt_dtype_valid(ckpt_dtype dt) {
  return (unsigned)dt < (unsigned)CKPT_DTYPE_COUNT_;
}

size_t ckpt_dtype_size(ckpt_dtype dt) {
  return ckpt_dtype_valid(dt) ? k_dtypes[dt].size : 0;
}

const char *ckpt_dtype_name(ckpt_dtype dt) {
  return ckpt_dtype_valid(dt) ? k_dtypes[dt].name : NULL;
}

const char *ckpt_dtype_zarr(ckpt_dtype dt) {
  return ckpt_dtype_valid(dt) ? k_dtypes[dt].zarr : NULL;
}

bool ckpt_dtype_parse(const char *text, ckpt_dtype *out) {
  if (text == NULL)
    return false;
  for (int i = 0; i < CKPT_DTYPE_COUNT_; i++) {
    if (strcmp(text, k_dtypes[i].name) == 0 || strcmp(text, k_dtypes[i].zarr) == 0) {
      if (out)
        *out = (ckpt_dtype)i;
      return true;
    }
  }
  /* Other spellings of the same one-byte types ("|u1" is canonical, "<u1" appears in
   * hand-written metadata). "<V2" is not taken as bfloat16: it is any two opaque bytes. */
  static const struct {
    const char *text;
    ckpt_dtype dt;
  } aliases[] = {{"<b1", CKPT_DTYPE_BOOL},
                 {"<i1", CKPT_DTYPE_INT8},
                 {"<u1", CKPT_DTYPE_UINT8},
                 {"|i1", CKPT_DTYPE_INT8}};
  for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
    if (strcmp(text, aliases[i].text) == 0) {
      if (out)
        *out = aliases[i].dt;
      return true;
    }
  }
  return false;
}

ckpt_dtype_class ckpt_dtype_class_of(ckpt_dtype dt) {
  switch (dt) {
    case CKPT_DTYPE_BOOL:
      return CKPT_DTYPE_CLASS_BOOL;
    case CKPT_DTYPE_INT8:
    case CKPT_DTYPE_INT16:
    case CKPT_DTYPE_INT32:
    case CKPT_DTYPE_INT64:
      return CKPT_DTYPE_CLASS_SIGNED;
    case CKPT_DTYPE_UINT8:
    case CKPT_DTYPE_UINT16:
    case CKPT_DTYPE_UINT32:
    case CKPT_DTYPE_UINT64:
      return CKPT_DTYPE_CLASS_UNSIGNED;
    case CKPT_DTYPE_COMPLEX64:
    case CKPT_DTYPE_COMPLEX128:
      return CKPT_DTYPE_CLASS_COMPLEX;
    default:
      return CKPT_DTYPE_CLASS_FLOAT;
  }
}

/* ---- 16-bit float formats ---- */

static uint64_t double_bits(double d) {
  uint64_t b;
  memcpy(&b, &d, sizeof b);
  return b;
}

static double bits_double(uint64_t b) {
  double d;
  memcpy(&d, &b, sizeof d);
  return d;
}

/* Rounds a finite or non-finite double to a binary float with exp_bits exponent bits and
 * man_bits fraction bits (sign bit on top), correctly rounded to nearest, ties to even.
 * Used for float16 (5, 10) and bfloat16 (8, 7). */
static uint16_t round_double_small(double value, int exp_bits, int man_bits) {
  uint64_t b = double_bits(value);
  uint16_t sign = (uint16_t)((b >> 63) << (exp_bits + man_bits));
  int e = (int)((b >> 52) & 0x7ff);
  uint64_t m = b & ((UINT64_C(1) << 52) - 1);
  uint16_t exp_all = (uint16_t)(((1u << exp_bits) - 1u) << man_bits);
  if (e == 0x7ff) {
    if (m == 0)
      return (uint16_t)(sign | exp_all);
    /* NaN: keep it quiet and keep the top payload bits. */
    uint16_t payload = (uint16_t)(m >> (52 - man_bits));
    return (uint16_t)(sign | exp_all | (1u << (man_bits - 1)) | payload);
  }
  if (e == 0)
    return sign; /* zero or a double subnormal: far below any 16-bit subnormal */
  int bias = (1 << (exp_bits - 1)) - 1;
  int E = e - 1023;
  int emin = 1 - bias;
  uint64_t sig = m | (UINT64_C(1) << 52);
  int shift;
  if (E >= emin) {
    shift = 52 - man_bits;
  } else {
    shift = 52 - man_bits + (emin - E);
    if (shift > 60)
      return sign; /* < half the smallest subnormal */
  }
  uint64_t q = sig >> shift;
  uint64_t rem = sig & ((UINT64_C(1) << shift) - 1);
  uint64_t half = UINT64_C(1) << (shift - 1);
  if (rem > half || (rem == half && (q & 1)))
    q++;
  if (E >= emin) {
    if (q == (UINT64_C(1) << (man_bits + 1))) { /* rounding carried into the next binade */
      q >>= 1;
      E++;
    }
    if (E > bias)
      return (uint16_t)(sign | exp_all); /* overflow: infinity */
    return (uint16_t)(sign | ((uint16_t)(E + bias) << man_bits) |
                      (uint16_t)(q & ((UINT64_C(1) << man_bits) - 1)));
  }
  /* Subnormal; a carry into bit man_bits correctly yields the smallest normal. */
  return (uint16_t)(sign | (uint16_t)q);
}

static double small_to_double(uint16_t h, int exp_bits, int man_bits) {
  uint64_t sign = (uint64_t)(h >> (exp_bits + man_bits)) << 63;
  int e = (h >> man_bits) & ((1 << exp_bits) - 1);
  uint64_t m = h & ((1u << man_bits) - 1);
  int bias = (1 << (exp_bits - 1)) - 1;
  if (e == (1 << exp_bits) - 1) {
    return bits_double(sign | (UINT64_C(0x7ff) << 52) | (m << (52 - man_bits)));
  }
  if (e == 0) {
    if (m == 0)
      return bits_double(sign);
    double v = ldexp((double)m, 1 - bias - man_bits);
    return sign ? -v : v;
  }
  return bits_double(sign | ((uint64_t)(e - bias + 1023) << 52) | (m << (52 - man_bits)));
}

uint16_t ckpt_double_to_float16(double value) {
  return round_double_small(value, 5, 10);
}
double ckpt_float16_to_double(uint16_t bits) {
  return small_to_double(bits, 5, 10);
}
uint16_t ckpt_double_to_bfloat16(double value) {
  return round_double_small(value, 8, 7);
}

uint16_t ckpt_float_to_bfloat16(float value) {
  uint32_t b;
  memcpy(&b, &value, sizeof b);
  if ((b & 0x7fffffffu) > 0x7f800000u)
    return (uint16_t)((b >> 16) | 0x40u); /* quiet NaN */
  b += 0x7fffu + ((b >> 16) & 1u);
  return (uint16_t)(b >> 16);
}

float ckpt_bfloat16_to_float(uint16_t bits) {
  uint32_t b = (uint32_t)bits << 16;
  float f;
  memcpy(&f, &b, sizeof f);
  return f;
}

/* A 64-bit integer as a double that rounds to any narrower format exactly as the integer
 * itself would: bits below the 53 a double holds are folded into a sticky bit, so rounding
 * to float16/bfloat16 afterwards is not a double rounding. */
static double u64_sticky_double(uint64_t u) {
  if (u < (UINT64_C(1) << 53))
    return (double)u;
  int k = 0;
  while ((u >> k) >= (UINT64_C(1) << 53))
    k++;
  uint64_t lost = u & ((UINT64_C(1) << k) - 1);
  uint64_t kept = (u >> k) | (lost != 0 ? 1u : 0u);
  return ldexp((double)kept, k);
}

static double i64_sticky_double(int64_t i) {
  if (i >= 0)
    return u64_sticky_double((uint64_t)i);
  return -u64_sticky_double(0 - (uint64_t)i);
}

/* ---- the generic element cast ---- */

typedef enum num_kind { NUM_SIGNED, NUM_UNSIGNED, NUM_FLOAT } num_kind;

typedef struct num {
  num_kind kind;
  int64_t i;
  uint64_t u;
  double re, im;
} num;

static num load(ckpt_dtype dt, const unsigned char *p) {
  num n = {NUM_SIGNED, 0, 0, 0.0, 0.0};
  switch (dt) {
    case CKPT_DTYPE_BOOL:
      n.i = p[0] != 0;
      break;
    case CKPT_DTYPE_INT8: {
      int8_t v;
      memcpy(&v, p, 1);
      n.i = v;
      break;
    }
    case CKPT_DTYPE_INT16: {
      int16_t v;
      memcpy(&v, p, 2);
      n.i = v;
      break;
    }
    case CKPT_DTYPE_INT32: {
      int32_t v;
      memcpy(&v, p, 4);
      n.i = v;
      break;
    }
    case CKPT_DTYPE_INT64: {
      int64_t v;
      memcpy(&v, p, 8);
      n.i = v;
      break;
    }
    case CKPT_DTYPE_UINT8:
      n.kind = NUM_UNSIGNED;
      n.u = p[0];
      break;
    case CKPT_DTYPE_UINT16: {
      uint16_t v;
      memcpy(&v, p, 2);
      n.kind = NUM_UNSIGNED;
      n.u = v;
      break;
    }
    case CKPT_DTYPE_UINT32: {
      uint32_t v;
      memcpy(&v, p, 4);
      n.kind = NUM_UNSIGNED;
      n.u = v;
      break;
    }
    case CKPT_DTYPE_UINT64: {
      uint64_t v;
      memcpy(&v, p, 8);
      n.kind = NUM_UNSIGNED;
      n.u = v;
      break;
    }
    case CKPT_DTYPE_FLOAT16: {
      uint16_t v;
      memcpy(&v, p, 2);
      n.kind = NUM_FLOAT;
      n.re = ckpt_float16_to_double(v);
      break;
    }
    case CKPT_DTYPE_BFLOAT16: {
      uint16_t v;
      memcpy(&v, p, 2);
      n.kind = NUM_FLOAT;
      n.re = ckpt_bfloat16_to_float(v);
      break;
    }
    case CKPT_DTYPE_FLOAT32: {
      float v;
      memcpy(&v, p, 4);
      n.kind = NUM_FLOAT;
      n.re = v;
      break;
    }
    case CKPT_DTYPE_FLOAT64: {
      memcpy(&n.re, p, 8);
      n.kind = NUM_FLOAT;
      break;
    }
    case CKPT_DTYPE_COMPLEX64: {
      float v[2];
      memcpy(v, p, 8);
      n.kind = NUM_FLOAT;
      n.re = v[0];
      n.im = v[1];
      break;
    }
    case CKPT_DTYPE_COMPLEX128: {
      double v[2];
      memcpy(v, p, 16);
      n.kind = NUM_FLOAT;
      n.re = v[0];
      n.im = v[1];
      break;
    }
    default:
      break;
  }
  return n;
}

/* A float truncated toward zero and saturated to [lo, hi]; NaN is 0. */
static int64_t float_to_i64(double d, int64_t lo, int64_t hi) {
  if (isnan(d))
    return 0;
  if (d <= (double)lo)
    return lo;
  if (d >= (double)hi)
    return hi; /* (double)hi may round up; >= catches it */
  return (int64_t)d;
}

static uint64_t float_to_u64(double d, uint64_t hi) {
  if (isnan(d) || d <= 0.0)
    return 0;
  if (d >= (double)hi)
    return hi;
  return (uint64_t)d;
}

/* The value as the low bits of a two's-complement integer (wrapping, as NumPy does). */
static uint64_t num_bits(const num *n, int64_t lo, int64_t hi, uint64_t uhi, bool is_signed) {
  switch (n->kind) {
    case NUM_SIGNED:
      return (uint64_t)n->i;
    case NUM_UNSIGNED:
      return n->u;
    default:
      return is_signed ? (uint64_t)float_to_i64(n->re, lo, hi) : float_to_u64(n->re, uhi);
  }
}

static double num_double(const num *n) {
  switch (n->kind) {
    case NUM_SIGNED:
      return (double)n->i;
    case NUM_UNSIGNED:
      return (double)n->u;
    default:
      return n->re;
  }
}

static float num_float(const num *n) {
  switch (n->kind) {
    case NUM_SIGNED:
      return (float)n->i; /* C converts integers to float correctly rounded */
    case NUM_UNSIGNED:
      return (float)n->u;
    default:
      return (float)n->re;
  }
}

static double num_sticky(const num *n) {
  switch (n->kind) {
    case NUM_SIGNED:
      return i64_sticky_double(n->i);
    case NUM_UNSIGNED:
      return u64_sticky_double(n->u);
    default:
      return n->re;
  }
}

static void store(ckpt_dtype dt, unsigned char *p, const num *n) {
  switch (dt) {
    case CKPT_DTYPE_BOOL: {
      bool nz = n->kind == NUM_SIGNED     ? n->i != 0
                : n->kind == NUM_UNSIGNED ? n->u != 0
                                          : (n->re != 0.0 || n->im != 0.0 || isnan(n->re));
      p[0] = nz ? 1 : 0;
      break;
    }
    case CKPT_DTYPE_INT8: {
      uint8_t v = (uint8_t)num_bits(n, INT8_MIN, INT8_MAX, 0, true);
      memcpy(p, &v, 1);
      break;
    }
    case CKPT_DTYPE_INT16: {
      uint16_t v = (uint16_t)num_bits(n, INT16_MIN, INT16_MAX, 0, true);
      memcpy(p, &v, 2);
      break;
    }
    case CKPT_DTYPE_INT32: {
      uint32_t v = (uint32_t)num_bits(n, INT32_MIN, INT32_MAX, 0, true);
      memcpy(p, &v, 4);
      break;
    }
    case CKPT_DTYPE_INT64: {
      uint64_t v = num_bits(n, INT64_MIN, INT64_MAX, 0, true);
      memcpy(p, &v, 8);
      break;
    }
    case CKPT_DTYPE_UINT8: {
      uint8_t v = (uint8_t)num_bits(n, 0, 0, UINT8_MAX, false);
      memcpy(p, &v, 1);
      break;
    }
    case CKPT_DTYPE_UINT16: {
      uint16_t v = (uint16_t)num_bits(n, 0, 0, UINT16_MAX, false);
      memcpy(p, &v, 2);
      break;
    }
    case CKPT_DTYPE_UINT32: {
      uint32_t v = (uint32_t)num_bits(n, 0, 0, UINT32_MAX, false);
      memcpy(p, &v, 4);
      break;
    }
    case CKPT_DTYPE_UINT64: {
      uint64_t v = num_bits(n, 0, 0, UINT64_MAX, false);
      memcpy(p, &v, 8);
      break;
    }
    case CKPT_DTYPE_FLOAT16: {
      uint16_t v = ckpt_double_to_float16(num_sticky(n));
      memcpy(p, &v, 2);
      break;
    }
    case CKPT_DTYPE_BFLOAT16: {
      uint16_t v = ckpt_double_to_bfloat16(num_sticky(n));
      memcpy(p, &v, 2);
      break;
    }
    case CKPT_DTYPE_FLOAT32: {
      float v = num_float(n);
      memcpy(p, &v, 4);
      break;
    }
    case CKPT_DTYPE_FLOAT64: {
      double v = num_double(n);
      memcpy(p, &v, 8);
      break;
    }
    case CKPT_DTYPE_COMPLEX64: {
      float v[2] = {num_float(n), (float)n->im};
      memcpy(p, v, 8);
      break;
    }
    case CKPT_DTYPE_COMPLEX128: {
      double v[2] = {num_double(n), n->im};
      memcpy(p, v, 16);
      break;
    }
    default:
      break;
  }
}

void ckpt_dtype_convert(ckpt_dtype to, void *dst, ckpt_dtype from, const void *src, size_t n) {
  if (!ckpt_dtype_valid(to) || !ckpt_dtype_valid(from) || n == 0)
    return;
  if (to == from) {
    if (dst != src)
      memmove(dst, src, n * ckpt_dtype_size(to));
    return;
  }
  const unsigned char *s = src;
  unsigned char *d = dst;
  /* Hot paths for the casts training code uses; the generic loop handles the rest. */
  if (from == CKPT_DTYPE_FLOAT32 && to == CKPT_DTYPE_BFLOAT16) {
    for (size_t i = 0; i < n; i++) {
      float f;
      memcpy(&f, s + 4 * i, 4);
      uint16_t h = ckpt_float_to_bfloat16(f);
      memcpy(d + 2 * i, &h, 2);
    }
    return;
  }
  if (from == CKPT_DTYPE_BFLOAT16 && to == CKPT_DTYPE_FLOAT32) {
    for (size_t i = 0; i < n; i++) {
      uint16_t h;
      memcpy(&h, s + 2 * i, 2);
      float f = ckpt_bfloat16_to_float(h);
      memcpy(d + 4 * i, &f, 4);
    }
    return;
  }
  if (from == CKPT_DTYPE_FLOAT32 && to == CKPT_DTYPE_FLOAT64) {
    for (size_t i = 0; i < n; i++) {
      float f;
      memcpy(&f, s + 4 * i, 4);
      double v = f;
      memcpy(d + 8 * i, &v, 8);
    }
    return;
  }
  if (from == CKPT_DTYPE_FLOAT64 && to == CKPT_DTYPE_FLOAT32) {
    for (size_t i = 0; i < n; i++) {
      double v;
      memcpy(&v, s + 8 * i, 8);
      float f = (float)v;
      memcpy(d + 4 * i, &f, 4);
    }
    return;
  }
  size_t ss = ckpt_dtype_size(from), ds = ckpt_dtype_size(to);
  if (ds > ss && (const void *)d == src) {
    /* In place and widening: walk backwards so no element is overwritten before it is read.
     * (The header asks for non-overlapping buffers; this keeps an easy mistake harmless.) */
    for (size_t i = n; i-- > 0;) {
      num v = load(from, s + i * ss);
      store(to, d + i * ds, &v);
    }
    return;
  }
  for (size_t i = 0; i < n; i++) {
    num v = load(from, s + i * ss);
    store(to, d + i * ds, &v);
  }
}
