/* test_dtype.c — dtype names, sizes and parsing, and the casts between every pair of dtypes:
 * round-to-nearest-even for bfloat16 and float16 (ties, subnormals, overflow, NaN), integer
 * wrapping, float→integer truncation and saturation, bool and complex rules. NumPy's own
 * results are compared in tests/interop (numpy_casts). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ckpt/ckpt.h"

Test(dtype, names_sizes_and_parse) {
  static const struct {
    ckpt_dtype dt;
    const char *name, *zarr;
    size_t size;
  } t[] = {{CKPT_DTYPE_BOOL, "bool", "|b1", 1},
           {CKPT_DTYPE_INT8, "int8", "|i1", 1},
           {CKPT_DTYPE_INT16, "int16", "<i2", 2},
           {CKPT_DTYPE_INT32, "int32", "<i4", 4},
           {CKPT_DTYPE_INT64, "int64", "<i8", 8},
           {CKPT_DTYPE_UINT8, "uint8", "|u1", 1},
           {CKPT_DTYPE_UINT16, "uint16", "<u2", 2},
           {CKPT_DTYPE_UINT32, "uint32", "<u4", 4},
           {CKPT_DTYPE_UINT64, "uint64", "<u8", 8},
           {CKPT_DTYPE_FLOAT16, "float16", "<f2", 2},
           {CKPT_DTYPE_BFLOAT16, "bfloat16", "bfloat16", 2},
           {CKPT_DTYPE_FLOAT32, "float32", "<f4", 4},
           {CKPT_DTYPE_FLOAT64, "float64", "<f8", 8},
           {CKPT_DTYPE_COMPLEX64, "complex64", "<c8", 8},
           {CKPT_DTYPE_COMPLEX128, "complex128", "<c16", 16}};
  cr_assert_eq(sizeof t / sizeof t[0], (size_t)CKPT_DTYPE_COUNT_);
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    cr_assert_str_eq(ckpt_dtype_name(t[i].dt), t[i].name);
    cr_assert_str_eq(ckpt_dtype_zarr(t[i].dt), t[i].zarr);
    cr_assert_eq(ckpt_dtype_size(t[i].dt), t[i].size);
    ckpt_dtype p;
    cr_assert(ckpt_dtype_parse(t[i].name, &p));
    cr_assert_eq(p, t[i].dt);
    cr_assert(ckpt_dtype_parse(t[i].zarr, &p));
    cr_assert_eq(p, t[i].dt);
  }
  ckpt_dtype p;
  cr_assert(!ckpt_dtype_parse("float", &p));
  cr_assert(!ckpt_dtype_parse("<V2", &p), "opaque bytes are not bfloat16");
  cr_assert(!ckpt_dtype_parse("", &p));
  cr_assert(!ckpt_dtype_parse(NULL, &p));
  cr_assert(!ckpt_dtype_valid((ckpt_dtype)99));
  cr_assert_eq(ckpt_dtype_size((ckpt_dtype)99), 0);
  cr_assert_null(ckpt_dtype_name((ckpt_dtype)-1));
}

static uint32_t fbits(float f) {
  uint32_t b;
  memcpy(&b, &f, 4);
  return b;
}

static float bitsf(uint32_t b) {
  float f;
  memcpy(&f, &b, 4);
  return f;
}

Test(dtype, bfloat16_round_to_nearest_even) {
  /* Exactly half-way cases go to the even mantissa. */
  cr_assert_eq(ckpt_float_to_bfloat16(bitsf(0x3f808000u)), 0x3f80); /* tie, even below */
  cr_assert_eq(ckpt_float_to_bfloat16(bitsf(0x3f818000u)), 0x3f82); /* tie, even above */
  cr_assert_eq(ckpt_float_to_bfloat16(bitsf(0x3f808001u)), 0x3f81); /* just above half */
  cr_assert_eq(ckpt_float_to_bfloat16(bitsf(0x3f807fffu)), 0x3f80); /* just below half */
  cr_assert_eq(ckpt_float_to_bfloat16(1.0f), 0x3f80);
  cr_assert_eq(ckpt_float_to_bfloat16(-2.0f), 0xc000);
  /* Rounding up into the next binade and to infinity. */
  cr_assert_eq(ckpt_float_to_bfloat16(bitsf(0x3fffc000u)), 0x4000);
  cr_assert_eq(ckpt_float_to_bfloat16(bitsf(0x7f7fffffu)), 0x7f80);
  cr_assert_eq(ckpt_float_to_bfloat16(INFINITY), 0x7f80);
  cr_assert_eq(ckpt_float_to_bfloat16(-INFINITY), 0xff80);
  /* NaN stays NaN (quiet), also when the payload sits only in the low bits. */
  uint16_t n = ckpt_float_to_bfloat16(bitsf(0x7f800001u));
  cr_assert_eq(n & 0x7f80, 0x7f80);
  cr_assert_neq(n & 0x7f, 0);
  /* Subnormals round too. */
  cr_assert_eq(ckpt_float_to_bfloat16(bitsf(0x00008000u)), 0x0000);
  cr_assert_eq(ckpt_float_to_bfloat16(bitsf(0x00018000u)), 0x0002);
  cr_assert_eq(ckpt_bfloat16_to_float(0x3f80), 1.0f);
  cr_assert_eq(fbits(ckpt_bfloat16_to_float(0x8000)), 0x80000000u);
}

Test(dtype, bfloat16_float_and_double_paths_agree) {
  /* Two independent implementations (bit trick on float, generic rounding of a double) must
   * agree on every float: sample 2^20 bit patterns spread over the whole range. */
  for (uint64_t i = 0; i < (1u << 20); i++) {
    uint32_t b = (uint32_t)(i * 4099u + (i >> 7)) ^ (uint32_t)(i << 12);
    float f = bitsf(b);
    uint16_t x = ckpt_float_to_bfloat16(f), y = ckpt_double_to_bfloat16((double)f);
    if (isnan(f)) {
      cr_assert_eq(x & 0x7f80, 0x7f80);
      cr_assert_eq(y & 0x7f80, 0x7f80);
      cr_assert_neq(y & 0x7f, 0);
      continue;
    }
    cr_assert_eq(x, y, "float bits %08x: %04x vs %04x", b, x, y);
  }
}

Test(dtype, float16_conversions) {
  cr_assert_eq(ckpt_double_to_float16(1.0), 0x3c00);
  cr_assert_eq(ckpt_double_to_float16(-2.0), 0xc000);
  cr_assert_eq(ckpt_double_to_float16(65504.0), 0x7bff);
  cr_assert_eq(ckpt_double_to_float16(65519.99), 0x7bff);
  cr_assert_eq(ckpt_double_to_float16(65520.0), 0x7c00); /* the tie rounds to even: inf */
  cr_assert_eq(ckpt_double_to_float16(1e10), 0x7c00);
  cr_assert_eq(ckpt_double_to_float16(-INFINITY), 0xfc00);
  cr_assert_eq(ckpt_double_to_float16(0x1p-24), 0x0001);   /* smallest subnormal */
  cr_assert_eq(ckpt_double_to_float16(0x1p-25), 0x0000);   /* tie to even (0) */
  cr_assert_eq(ckpt_double_to_float16(0x1.8p-24), 0x0002); /* tie to even (2) */
  cr_assert_eq(ckpt_double_to_float16(0x1.0p-25 * 1.0000001), 0x0001);
  cr_assert_eq(ckpt_double_to_float16(0x1.ffcp-15), 0x0400);   /* subnormal rounds up to normal */
  cr_assert_eq(ckpt_double_to_float16(1.0 + 0x1p-11), 0x3c00); /* tie: even */
  cr_assert_eq(ckpt_double_to_float16(1.0 + 3 * 0x1p-11), 0x3c02);
  cr_assert_eq(ckpt_double_to_float16(-0.0), 0x8000);
  cr_assert_eq(ckpt_double_to_float16(1e-300), 0x0000);
  uint16_t n = ckpt_double_to_float16(NAN);
  cr_assert_eq(n & 0x7c00, 0x7c00);
  cr_assert_neq(n & 0x3ff, 0);
  /* Every half value converts to a double and back to itself. */
  for (uint32_t h = 0; h < 65536; h++) {
    double d = ckpt_float16_to_double((uint16_t)h);
    if (isnan(d))
      continue;
    cr_assert_eq(ckpt_double_to_float16(d), h, "half %04x", h);
  }
  cr_assert_eq(ckpt_float16_to_double(0x0001), 0x1p-24);
  cr_assert_eq(ckpt_float16_to_double(0x7bff), 65504.0);
  cr_assert(isinf(ckpt_float16_to_double(0x7c00)));
}

/* One element of `from` (given as a double or int64) cast to `to`, read back as double. */
static double cast1(ckpt_dtype to, ckpt_dtype from, double v) {
  unsigned char src[16] = {0}, dst[16] = {0};
  ckpt_dtype_convert(from, src, CKPT_DTYPE_FLOAT64, &v, 1);
  ckpt_dtype_convert(to, dst, from, src, 1);
  double out;
  ckpt_dtype_convert(CKPT_DTYPE_FLOAT64, &out, to, dst, 1);
  return out;
}

Test(dtype, integer_and_bool_casts) {
  int64_t v = 300;
  int8_t i8;
  ckpt_dtype_convert(CKPT_DTYPE_INT8, &i8, CKPT_DTYPE_INT64, &v, 1);
  cr_assert_eq(i8, 44, "integers wrap modulo 2^8 as in NumPy");
  v = -1;
  uint32_t u32;
  ckpt_dtype_convert(CKPT_DTYPE_UINT32, &u32, CKPT_DTYPE_INT64, &v, 1);
  cr_assert_eq(u32, 0xffffffffu);
  uint64_t big = UINT64_MAX;
  int64_t s64;
  ckpt_dtype_convert(CKPT_DTYPE_INT64, &s64, CKPT_DTYPE_UINT64, &big, 1);
  cr_assert_eq(s64, -1);
  /* float → integer: truncation toward zero, NaN → 0, saturation out of range. */
  cr_assert_eq(cast1(CKPT_DTYPE_INT32, CKPT_DTYPE_FLOAT64, -2.9), -2.0);
  cr_assert_eq(cast1(CKPT_DTYPE_INT32, CKPT_DTYPE_FLOAT64, 2.9), 2.0);
  cr_assert_eq(cast1(CKPT_DTYPE_INT8, CKPT_DTYPE_FLOAT64, 1000.0), 127.0);
  cr_assert_eq(cast1(CKPT_DTYPE_INT8, CKPT_DTYPE_FLOAT64, -1000.0), -128.0);
  cr_assert_eq(cast1(CKPT_DTYPE_UINT8, CKPT_DTYPE_FLOAT64, -5.0), 0.0);
  cr_assert_eq(cast1(CKPT_DTYPE_INT64, CKPT_DTYPE_FLOAT64, NAN), 0.0);
  double d = 1e300;
  int64_t sat;
  ckpt_dtype_convert(CKPT_DTYPE_INT64, &sat, CKPT_DTYPE_FLOAT64, &d, 1);
  cr_assert_eq(sat, INT64_MAX);
  uint64_t usat;
  ckpt_dtype_convert(CKPT_DTYPE_UINT64, &usat, CKPT_DTYPE_FLOAT64, &d, 1);
  cr_assert_eq(usat, UINT64_MAX);
  /* bool: non-zero (NaN included) is true, and true is 1. */
  cr_assert_eq(cast1(CKPT_DTYPE_BOOL, CKPT_DTYPE_FLOAT64, 0.25), 1.0);
  cr_assert_eq(cast1(CKPT_DTYPE_BOOL, CKPT_DTYPE_FLOAT64, -0.0), 0.0);
  cr_assert_eq(cast1(CKPT_DTYPE_BOOL, CKPT_DTYPE_FLOAT64, NAN), 1.0);
  cr_assert_eq(cast1(CKPT_DTYPE_FLOAT32, CKPT_DTYPE_BOOL, 1.0), 1.0);
  /* Large integers to narrow floats round once (no double rounding through float64). */
  int64_t odd = (INT64_C(1) << 60) + (INT64_C(1) << 52) + 1; /* just above a bfloat16 tie */
  uint16_t bf;
  ckpt_dtype_convert(CKPT_DTYPE_BFLOAT16, &bf, CKPT_DTYPE_INT64, &odd, 1);
  float back = ckpt_bfloat16_to_float(bf);
  cr_assert_eq(back, 0x1.02p60f, "got %a", (double)back);
}

Test(dtype, complex_casts) {
  float c[2] = {1.5f, -2.0f};
  double r;
  ckpt_dtype_convert(CKPT_DTYPE_FLOAT64, &r, CKPT_DTYPE_COMPLEX64, c, 1);
  cr_assert_eq(r, 1.5, "complex to real keeps the real part");
  double cd[2];
  ckpt_dtype_convert(CKPT_DTYPE_COMPLEX128, cd, CKPT_DTYPE_COMPLEX64, c, 1);
  cr_assert_eq(cd[0], 1.5);
  cr_assert_eq(cd[1], -2.0);
  int16_t i = 7;
  float out[2] = {9, 9};
  ckpt_dtype_convert(CKPT_DTYPE_COMPLEX64, out, CKPT_DTYPE_INT16, &i, 1);
  cr_assert_eq(out[0], 7.0f);
  cr_assert_eq(out[1], 0.0f);
  float zi[2] = {0.0f, 1.0f};
  unsigned char b;
  ckpt_dtype_convert(CKPT_DTYPE_BOOL, &b, CKPT_DTYPE_COMPLEX64, zi, 1);
  cr_assert_eq(b, 1, "a purely imaginary value is non-zero");
}

Test(dtype, every_pair_round_trips_small_integers) {
  /* Small non-negative integers are exact in every dtype: a → b → a is the identity for all
   * pairs, in bulk (exercising the fast paths and the generic loop). */
  enum { N = 100 };
  for (int a = 0; a < CKPT_DTYPE_COUNT_; a++) {
    for (int b = 0; b < CKPT_DTYPE_COUNT_; b++) {
      unsigned char src[N * 16], mid[N * 16], back[N * 16];
      int64_t vals[N];
      for (int k = 0; k < N; k++)
        vals[k] = a == CKPT_DTYPE_BOOL || b == CKPT_DTYPE_BOOL ? k % 2 : k;
      ckpt_dtype_convert((ckpt_dtype)a, src, CKPT_DTYPE_INT64, vals, N);
      ckpt_dtype_convert((ckpt_dtype)b, mid, (ckpt_dtype)a, src, N);
      ckpt_dtype_convert((ckpt_dtype)a, back, (ckpt_dtype)b, mid, N);
      cr_assert_eq(memcmp(src, back, N * ckpt_dtype_size((ckpt_dtype)a)), 0, "%s -> %s",
                   ckpt_dtype_name((ckpt_dtype)a), ckpt_dtype_name((ckpt_dtype)b));
    }
  }
}

Test(dtype, float_casts_round_to_nearest_even) {
  /* float64 → float32 and float32 → bfloat16 in bulk agree with the scalar functions. */
  double d[4] = {1.0 + 0x1p-24, 1.0 + 0x1.8p-24, 0.1, -1e-40};
  float f[4];
  ckpt_dtype_convert(CKPT_DTYPE_FLOAT32, f, CKPT_DTYPE_FLOAT64, d, 4);
  cr_assert_eq(f[0], 1.0f);
  cr_assert_eq(f[1], 1.0f + 0x1p-23f);
  cr_assert_eq(f[2], 0.1f);
  uint16_t h[4];
  ckpt_dtype_convert(CKPT_DTYPE_BFLOAT16, h, CKPT_DTYPE_FLOAT32, f, 4);
  for (int i = 0; i < 4; i++)
    cr_assert_eq(h[i], ckpt_float_to_bfloat16(f[i]));
  uint16_t h16[4];
  ckpt_dtype_convert(CKPT_DTYPE_FLOAT16, h16, CKPT_DTYPE_FLOAT64, d, 4);
  cr_assert_eq(h16[0], 0x3c00);
  cr_assert_eq(h16[2], ckpt_double_to_float16(0.1));
  cr_assert_eq(h16[3], 0x8000);
  /* float16 → bfloat16 goes through the exact value. */
  uint16_t half = 0x3555; /* 0.333251953125 */
  uint16_t bfo;
  ckpt_dtype_convert(CKPT_DTYPE_BFLOAT16, &bfo, CKPT_DTYPE_FLOAT16, &half, 1);
  cr_assert_eq(bfo, ckpt_double_to_bfloat16(ckpt_float16_to_double(half)));
  /* In-place widening walks backwards and loses nothing. */
  unsigned char buf[16];
  int16_t in[2] = {-3, 1234};
  memcpy(buf, in, 4);
  ckpt_dtype_convert(CKPT_DTYPE_INT64, buf, CKPT_DTYPE_INT16, buf, 2);
  int64_t outv[2];
  memcpy(outv, buf, 16);
  cr_assert_eq(outv[0], -3);
  cr_assert_eq(outv[1], 1234);
}
