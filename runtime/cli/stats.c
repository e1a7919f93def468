/* cli/stats.c — summary statistics of an array, accumulated slab by slab so arrays larger than
 * memory can be summarised: counts of NaN, infinities and zeros, and min / max / mean / std over
 * the finite elements (numpy would return nan for all of them as soon as one NaN is present,
 * which hides what a checkpoint holds). Integer min and max are kept exactly; the mean and
 * standard deviation use Welford's update in double precision. Complex arrays are summarised by
 * their magnitude |z|. */
#include <math.h>
#include <string.h>

#include "cli.h"

void cli_stats_init(cli_stats *s, ckpt_dtype dtype) {
  memset(s, 0, sizeof *s);
  s->dtype = dtype;
  ckpt_dtype_class c = ckpt_dtype_class_of(dtype);
  s->is_int =
      c == CKPT_DTYPE_CLASS_BOOL || c == CKPT_DTYPE_CLASS_SIGNED || c == CKPT_DTYPE_CLASS_UNSIGNED;
  s->min = INFINITY;
  s->max = -INFINITY;
}

static void add_finite(cli_stats *s, double v) {
  if (v == 0)
    s->n_zero++;
  s->n_finite++;
  if (v < s->min)
    s->min = v;
  if (v > s->max)
    s->max = v;
  double d = v - s->mean;
  s->mean += d / (double)s->n_finite;
  s->m2 += d * (v - s->mean);
}

void cli_stats_add(cli_stats *s, const void *data, uint64_t n) {
  const unsigned char *p = data;
  size_t es = ckpt_dtype_size(s->dtype);
  ckpt_dtype_class c = ckpt_dtype_class_of(s->dtype);
  for (uint64_t i = 0; i < n; i++, p += es) {
    s->count++;
    double v;
    if (s->is_int) {
      ckpt_scalar x = ckpt_scalar_load(s->dtype, p);
      bool first = s->n_finite == 0;
      if (c == CKPT_DTYPE_CLASS_UNSIGNED) {
        if (first || x.v.u < s->umin)
          s->umin = x.v.u;
        if (first || x.v.u > s->umax)
          s->umax = x.v.u;
        v = (double)x.v.u;
      } else {
        int64_t iv = c == CKPT_DTYPE_CLASS_BOOL ? (int64_t)x.v.b : x.v.i;
        if (first || iv < s->imin)
          s->imin = iv;
        if (first || iv > s->imax)
          s->imax = iv;
        v = (double)iv;
      }
      add_finite(s, v);
      continue;
    }
    if (c == CKPT_DTYPE_CLASS_COMPLEX) {
      double re, im;
      cli_complex_parts(p, s->dtype, 0, &re, &im);
      if (isnan(re) || isnan(im)) {
        s->n_nan++;
        continue;
      }
      v = hypot(re, im);
    } else {
      ckpt_dtype_convert(CKPT_DTYPE_FLOAT64, &v, s->dtype, p, 1);
    }
    if (isnan(v))
      s->n_nan++;
    else if (isinf(v))
      s->n_inf++;
    else
      add_finite(s, v);
  }
}

double cli_stats_std(const cli_stats *s) {
  if (s->n_finite == 0)
    return NAN;
  return sqrt(s->m2 / (double)s->n_finite);
}
