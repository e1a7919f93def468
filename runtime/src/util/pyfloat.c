/* util/pyfloat.c — floating-point numbers rendered exactly as Python renders them.
 *
 * Python's repr(float) prints the shortest digit string that reads back to the same double and
 * switches to exponent form outside 1e-4 <= |v| < 1e16; protobuf's text_format prints a 32-bit
 * float field as the repr of the shortest "%.{p}g" (p >= 6) that converts back to the same
 * float. Matching both byte for byte makes our files identical to Orbax's. All conversions run
 * in the "C" locale so a host program's LC_NUMERIC cannot turn "0.5" into "0,5". */
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/text.h"

static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale = (locale_t)0; /* created once, never freed (process lifetime) */

static void make_c_locale(void) {
  c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static locale_t get_c_locale(void) {
  pthread_once(&c_locale_once, make_c_locale);
  return c_locale;
}

double ckpt_tf_strtod(const char *s, char **end) {
  locale_t c = get_c_locale();
  if (c != (locale_t)0)
    return strtod_l(s, end, c);
  return strtod(s, end);
}

/* snprintf in the C locale. */
static void format_c(char *out, size_t n, const char *fmt, int prec, double v) {
  locale_t c = get_c_locale();
  locale_t old = (locale_t)0;
  if (c != (locale_t)0)
    old = uselocale(c);
  snprintf(out, n, fmt, prec, v);
  if (c != (locale_t)0)
    uselocale(old);
}

/* Shortest round-trip digits of finite v > 0: digits without dot or trailing zeros, and the
 * decimal exponent decpt such that v = 0.DIGITS * 10^decpt. */
static void shortest_digits(double v, char *digits, int *decpt) {
  char tmp[48];
  for (int p = 1; p <= 17; p++) {
    format_c(tmp, sizeof tmp, "%.*e", p - 1, v);
    if (p == 17 || ckpt_tf_strtod(tmp, NULL) == v)
      break;
  }
  /* tmp is "d[.ddd]e[+-]XX" */
  size_t nd = 0;
  const char *s = tmp;
  for (; *s && *s != 'e'; s++) {
    if (*s >= '0' && *s <= '9')
      digits[nd++] = *s;
  }
  int e = (*s == 'e') ? atoi(s + 1) : 0;
  while (nd > 1 && digits[nd - 1] == '0')
    nd--;
  digits[nd] = '\0';
  *decpt = e + 1;
}

size_t ckpt_tf_double_repr(double v, char *out) {
  if (isnan(v))
    return (size_t)snprintf(out, CKPT_TF_NUM_MAX, "nan");
  if (isinf(v))
    return (size_t)snprintf(out, CKPT_TF_NUM_MAX, v < 0 ? "-inf" : "inf");
  char *o = out;
  if (signbit(v)) {
    *o++ = '-';
    v = -v;
  }
  if (v == 0) {
    strcpy(o, "0.0");
    return (size_t)(o - out) + 3;
  }
  char d[24];
  int decpt;
  shortest_digits(v, d, &decpt);
  int nd = (int)strlen(d);
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      *o++ = '0';
      *o++ = '.';
      for (int i = 0; i < -decpt; i++)
        *o++ = '0';
      memcpy(o, d, (size_t)nd);
      o += nd;
    } else if (decpt < nd) {
      memcpy(o, d, (size_t)decpt);
      o += decpt;
      *o++ = '.';
      memcpy(o, d + decpt, (size_t)(nd - decpt));
      o += nd - decpt;
    } else {
      memcpy(o, d, (size_t)nd);
      o += nd;
      for (int i = nd; i < decpt; i++)
        *o++ = '0';
      *o++ = '.';
      *o++ = '0';
    }
    *o = '\0';
  } else {
    *o++ = d[0];
    if (nd > 1) {
      *o++ = '.';
      memcpy(o, d + 1, (size_t)(nd - 1));
      o += nd - 1;
    }
    int e = decpt - 1;
    o += snprintf(o, 8, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
  }
  return (size_t)(o - out);
}

size_t ckpt_tf_float_repr(float v, char *out) {
  if (isnan(v) || isinf(v))
    return ckpt_tf_double_repr((double)v, out);
  char tmp[48];
  double r = (double)v;
  for (int p = 6; p <= 17; p++) {
    format_c(tmp, sizeof tmp, "%.*g", p, (double)v);
    double cand = ckpt_tf_strtod(tmp, NULL);
    /* cand is within a few units of v's last digit, so it is in float range */
    if ((float)cand == v) {
      r = cand;
      break;
    }
  }
  return ckpt_tf_double_repr(r, out);
}
