/* cli/numfmt.c — arrays and scalars printed the way numpy prints them (print(a), str(x)), so
 * what `ckpt cat` shows can be compared by eye or by script with what Python shows.
 *
 * This follows numpy's arrayprint with its default options (precision 8, floatmode 'maxprec',
 * linewidth 75, threshold 1000, edgeitems 3, legacy off): FloatingFormat's choice between
 * positional and scientific notation and its paddings, IntegerFormat, BoolFormat,
 * ComplexFloatingFormat, and _formatArray's line wrapping and "..." summaries. Floating-point
 * digits are the shortest that read back as the same value of the element's own dtype (what
 * numpy's Dragon4 "unique" mode produces), cut at 8 fractional digits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "inspect/inspect.h"

#define NP_PRECISION 8

/* ---------------------------------------------------------------- digits */

/* Shortest significant digits of |v| that read back as v in dtype, with the decimal exponent
 * of the first digit: |v| = d0.d1d2... x 10^exp. digits has no trailing zeros ("0" for 0). */
static void shortest(double v, ckpt_dtype dt, char *digits, int *exp10) {
  v = fabs(v);
  if (v == 0.0) {
    strcpy(digits, "0");
    *exp10 = 0;
    return;
  }
  int maxp = dt == CKPT_DTYPE_FLOAT64 ? 17 : dt == CKPT_DTYPE_FLOAT32 ? 9 : 5;
  char buf[64];
  for (int p = 1; p <= maxp; p++) {
    snprintf(buf, sizeof buf, "%.*e", p - 1, v);
    double back = ckpt_tf_strtod(buf, NULL);
    bool same;
    switch (dt) {
      case CKPT_DTYPE_FLOAT32:
        same = (float)back == (float)v && strtof(buf, NULL) == (float)v;
        break;
      case CKPT_DTYPE_FLOAT16:
        same = ckpt_double_to_float16(back) == ckpt_double_to_float16(v);
        break;
      case CKPT_DTYPE_BFLOAT16:
        same = ckpt_double_to_bfloat16(back) == ckpt_double_to_bfloat16(v);
        break;
      default:
        same = back == v;
        break;
    }
    if (same)
      break;
  }
  /* buf is "d.ddde[+-]XX" or "de[+-]XX" */
  size_t n = 0;
  const char *s = buf;
  for (; *s && *s != 'e'; s++)
    if (*s != '.')
      digits[n++] = *s;
  while (n > 1 && digits[n - 1] == '0')
    n--;
  digits[n] = '\0';
  *exp10 = *s == 'e' ? atoi(s + 1) : 0;
}

/* Re-derives digits/exponent from printf output ("%.*e") after a precision cut. */
static void parse_sci(const char *buf, char *digits, int *exp10) {
  size_t n = 0;
  const char *s = buf;
  for (; *s && *s != 'e'; s++)
    if (*s >= '0' && *s <= '9')
      digits[n++] = *s;
  while (n > 1 && digits[n - 1] == '0')
    n--;
  digits[n] = '\0';
  *exp10 = *s == 'e' ? atoi(s + 1) : 0;
}

static const char *sign_of(double v, bool plus) {
  if (signbit(v))
    return "-";
  return plus ? "+" : "";
}

/* numpy's dragon4_positional(v, precision, unique=True, fractional=True, trim='.'): integer
 * part (with sign) and fractional digits, without padding. */
static void positional(double v, ckpt_dtype dt, int precision, bool plus, char *ip, char *fp) {
  char digits[64];
  int e;
  shortest(v, dt, digits, &e);
  int nd = (int)strlen(digits);
  int frac = nd - 1 - e;
  if (frac > precision) {
    char buf[390];
    snprintf(buf, sizeof buf, "%.*f", precision, fabs(v));
    char *dot = strchr(buf, '.');
    size_t fl = dot ? strlen(dot + 1) : 0;
    while (fl > 0 && dot[fl] == '0')
      fl--;
    if (dot)
      *dot = '\0';
    snprintf(ip, 400, "%s%s", sign_of(v, plus), buf);
    if (dot) {
      memcpy(fp, dot + 1, fl);
      fp[fl] = '\0';
    } else {
      fp[0] = '\0';
    }
    return;
  }
  char *o = ip;
  o += sprintf(o, "%s", sign_of(v, plus));
  if (e >= 0) {
    for (int i = 0; i <= e; i++)
      *o++ = i < nd ? digits[i] : '0';
    *o = '\0';
    int k = 0;
    for (int i = e + 1; i < nd; i++)
      fp[k++] = digits[i];
    fp[k] = '\0';
  } else {
    strcpy(o, "0");
    int k = 0;
    for (int i = 0; i < -e - 1; i++)
      fp[k++] = '0';
    for (int i = 0; i < nd; i++)
      fp[k++] = digits[i];
    fp[k] = '\0';
  }
}

/* numpy's dragon4_scientific(v, precision, unique=True, trim='.'): integer digit (with sign),
 * fractional digits and the exponent (sign included, at least two digits). */
static void scientific(double v, ckpt_dtype dt, int precision, bool plus, char *ip, char *fp,
                       char *ep) {
  char digits[64];
  int e;
  shortest(v, dt, digits, &e);
  if ((int)strlen(digits) - 1 > precision) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.*e", precision, fabs(v));
    parse_sci(buf, digits, &e);
  }
  sprintf(ip, "%s%c", sign_of(v, plus), digits[0]);
  strcpy(fp, digits + 1);
  sprintf(ep, "%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
}

/* ---------------------------------------------------------------- FloatingFormat */

typedef struct ffmt {
  ckpt_dtype dt; /* the component dtype deciding the digits */
  bool plus;     /* sign='+' (imaginary parts) */
  bool exp_format;
  int precision, min_digits;
  int pad_left, pad_right, exp_size;
} ffmt;

static int imax(int a, int b) {
  return a > b ? a : b;
}

static void ffmt_fill(ffmt *f, const double *x, size_t n, ckpt_dtype dt, bool plus) {
  memset(f, 0, sizeof *f);
  f->dt = dt;
  f->plus = plus;
  f->precision = NP_PRECISION;
  double max_val = 0, min_val = INFINITY;
  size_t n_finite = 0;
  bool any_nonfinite = false, neg_inf = false;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(x[i])) {
      any_nonfinite = true;
      if (isinf(x[i]) && x[i] < 0)
        neg_inf = true;
      continue;
    }
    n_finite++;
    double a = fabs(x[i]);
    if (a == 0)
      continue;
    if (a > max_val)
      max_val = a;
    if (a < min_val)
      min_val = a;
  }
  if (max_val > 0 && (max_val >= 1e8 || min_val < 0.0001 || max_val / min_val > 1000.0))
    f->exp_format = true;
  char ip[400], fp[400], ep[16];
  if (n_finite == 0) {
    f->pad_left = f->pad_right = 0;
    f->exp_size = -1;
  } else if (f->exp_format) {
    int prec = 0, el = 0, il = 0;
    for (size_t i = 0; i < n; i++) {
      if (!isfinite(x[i]))
        continue;
      scientific(x[i], dt, NP_PRECISION, plus, ip, fp, ep);
      il = imax(il, (int)strlen(ip));
      prec = imax(prec, (int)strlen(fp));
      el = imax(el, (int)strlen(ep));
    }
    f->exp_size = el - 1;
    f->precision = f->min_digits = prec;
    f->pad_left = il;
    f->pad_right = f->exp_size + 2 + f->precision;
  } else {
    int il = 0, fl = 0;
    for (size_t i = 0; i < n; i++) {
      if (!isfinite(x[i]))
        continue;
      positional(x[i], dt, NP_PRECISION, plus, ip, fp);
      il = imax(il, (int)strlen(ip));
      fl = imax(fl, (int)strlen(fp));
    }
    f->pad_left = il;
    f->pad_right = fl;
    f->exp_size = -1;
    f->min_digits = 0;
  }
  if (any_nonfinite) {
    int inflen = 3 + ((plus || neg_inf) ? 1 : 0);
    int offset = f->pad_right + 1;
    f->pad_left = imax(f->pad_left, imax(3 - offset, inflen - offset));
  }
}

/* One element, padded as numpy pads it, appended to b. */
static void ffmt_put(const ffmt *f, double v, ckpt_tf_buf *b) {
  char ip[400], fp[400], ep[16];
  if (!isfinite(v)) {
    const char *s = isnan(v) ? (f->plus ? "+nan" : "nan")
                    : v < 0  ? "-inf"
                             : (f->plus ? "+inf" : "inf");
    int w = f->pad_left + f->pad_right + 1 - (int)strlen(s);
    ckpt_tf_buf_spaces(b, w > 0 ? (size_t)w : 0);
    ckpt_tf_buf_puts(b, s);
    return;
  }
  if (f->exp_format) {
    scientific(v, f->dt, f->precision, f->plus, ip, fp, ep);
    if ((int)strlen(fp) < f->min_digits) {
      /* Dragon4's min_digits: the digits past the unique ones are the exact value's, rounded
       * (float32(0.3) prints as 3.0000001e-01 next to 3.3333334e-01), not zeros. */
      char buf[64], digits[64];
      int e;
      snprintf(buf, sizeof buf, "%.*e", f->min_digits, fabs(v));
      size_t k = 0;
      for (const char *s = buf; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9')
          digits[k++] = *s;
      digits[k] = '\0';
      e = atoi(strchr(buf, 'e') + 1);
      sprintf(ip, "%s%c", sign_of(v, f->plus), digits[0]);
      strcpy(fp, digits + 1);
      sprintf(ep, "%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    }
    int pad = f->pad_left - (int)strlen(ip);
    ckpt_tf_buf_spaces(b, pad > 0 ? (size_t)pad : 0);
    ckpt_tf_buf_puts(b, ip);
    ckpt_tf_buf_putc(b, '.');
    ckpt_tf_buf_puts(b, fp);
    for (int k = (int)strlen(fp); k < f->min_digits; k++)
      ckpt_tf_buf_putc(b, '0');
    ckpt_tf_buf_putc(b, 'e');
    ckpt_tf_buf_putc(b, ep[0]);
    int digits = (int)strlen(ep + 1);
    for (int k = digits; k < f->exp_size; k++)
      ckpt_tf_buf_putc(b, '0');
    ckpt_tf_buf_puts(b, ep + 1);
    return;
  }
  positional(v, f->dt, f->precision, f->plus, ip, fp);
  int pad = f->pad_left - (int)strlen(ip);
  ckpt_tf_buf_spaces(b, pad > 0 ? (size_t)pad : 0);
  ckpt_tf_buf_puts(b, ip);
  ckpt_tf_buf_putc(b, '.');
  ckpt_tf_buf_puts(b, fp);
  int rp = f->pad_right - (int)strlen(fp);
  ckpt_tf_buf_spaces(b, rp > 0 ? (size_t)rp : 0);
}

/* ---------------------------------------------------------------- elements */

static bool is_float(ckpt_dtype dt) {
  return ckpt_dtype_class_of(dt) == CKPT_DTYPE_CLASS_FLOAT;
}

static ckpt_dtype component(ckpt_dtype dt) {
  return dt == CKPT_DTYPE_COMPLEX64 ? CKPT_DTYPE_FLOAT32 : CKPT_DTYPE_FLOAT64;
}

void cli_complex_parts(const void *data, ckpt_dtype dt, uint64_t i, double *re, double *im) {
  const unsigned char *p = (const unsigned char *)data + i * ckpt_dtype_size(dt);
  if (dt == CKPT_DTYPE_COMPLEX64) {
    float r, m;
    memcpy(&r, p, 4);
    memcpy(&m, p + 4, 4);
    *re = r;
    *im = m;
  } else if (dt == CKPT_DTYPE_COMPLEX128) {
    memcpy(re, p, 8);
    memcpy(im, p + 8, 8);
  } else {
    ckpt_dtype_convert(CKPT_DTYPE_FLOAT64, re, dt, p, 1);
    *im = 0;
  }
}

static void int_text(const void *data, ckpt_dtype dt, uint64_t i, char *out) {
  ckpt_scalar s = ckpt_scalar_load(dt, (const unsigned char *)data + i * ckpt_dtype_size(dt));
  if (ckpt_dtype_class_of(dt) == CKPT_DTYPE_CLASS_UNSIGNED)
    snprintf(out, 32, "%llu", (unsigned long long)s.v.u);
  else
    snprintf(out, 32, "%lld", (long long)s.v.i);
}

/* Formats every element of data (n of them) into texts[i]; NULL on OOM. */
static char **format_elements(const void *data, ckpt_dtype dt, uint64_t n) {
  char **texts = calloc(n ? (size_t)n : 1, sizeof *texts);
  if (texts == NULL)
    return NULL;
  ckpt_dtype_class cls = ckpt_dtype_class_of(dt);
  bool ok = true;
  if (cls == CKPT_DTYPE_CLASS_BOOL) {
    for (uint64_t i = 0; ok && i < n; i++) {
      texts[i] = cli_strdup(((const unsigned char *)data)[i] ? " True" : "False");
      ok = texts[i] != NULL;
    }
  } else if (cls == CKPT_DTYPE_CLASS_SIGNED || cls == CKPT_DTYPE_CLASS_UNSIGNED) {
    char buf[32];
    int w = 0;
    for (uint64_t i = 0; i < n; i++) {
      int_text(data, dt, i, buf);
      w = imax(w, (int)strlen(buf));
    }
    for (uint64_t i = 0; ok && i < n; i++) {
      int_text(data, dt, i, buf);
      texts[i] = cli_asprintf("%*s", w, buf);
      ok = texts[i] != NULL;
    }
  } else {
    bool cplx = cls == CKPT_DTYPE_CLASS_COMPLEX;
    double *re = malloc((n ? (size_t)n : 1) * sizeof *re);
    double *im = malloc((n ? (size_t)n : 1) * sizeof *im);
    ok = re && im;
    for (uint64_t i = 0; ok && i < n; i++)
      cli_complex_parts(data, dt, i, &re[i], &im[i]);
    ffmt fr, fi;
    ckpt_dtype cdt = cplx ? component(dt) : dt;
    if (ok) {
      ffmt_fill(&fr, re, (size_t)n, cdt, false);
      if (cplx)
        ffmt_fill(&fi, im, (size_t)n, cdt, true);
    }
    for (uint64_t i = 0; ok && i < n; i++) {
      ckpt_tf_buf b = CKPT_TF_BUF_INIT;
      ffmt_put(&fr, re[i], &b);
      if (cplx) {
        ckpt_tf_buf ib = CKPT_TF_BUF_INIT;
        ffmt_put(&fi, im[i], &ib);
        if (ib.data) {
          /* numpy adds the 'j' before the imaginary part's trailing padding */
          size_t sp = ib.len;
          while (sp > 0 && ib.data[sp - 1] == ' ')
            sp--;
          ckpt_tf_buf_append(&b, ib.data, sp);
          ckpt_tf_buf_putc(&b, 'j');
          ckpt_tf_buf_append(&b, ib.data + sp, ib.len - sp);
        }
        if (ib.oom || ib.data == NULL)
          b.oom = true;
        ckpt_tf_buf_free(&ib);
      }
      size_t len;
      ok = ckpt_tf_buf_take(&b, "element", &texts[i], &len, NULL) == CKPT_OK;
    }
    free(re);
    free(im);
  }
  if (!ok) {
    for (uint64_t i = 0; i < n; i++)
      free(texts[i]);
    free(texts);
    return NULL;
  }
  return texts;
}

/* ---------------------------------------------------------------- _formatArray */

typedef struct np_layout {
  int ndim;
  const int64_t *shape; /* of the (possibly summarised) data */
  const bool *summarized;
  uint64_t stride[CKPT_MAX_RANK];
  char **texts;
} np_layout;

static void put_line(ckpt_tf_buf *s, const ckpt_tf_buf *line) {
  size_t n = line->len;
  while (n > 0 && line->data[n - 1] == ' ')
    n--;
  if (n)
    ckpt_tf_buf_append(s, line->data, n);
  ckpt_tf_buf_putc(s, '\n');
}

/* numpy's _extendLine (legacy off). */
static void extend_line(ckpt_tf_buf *s, ckpt_tf_buf *line, const char *word, size_t width,
                        size_t hang) {
  size_t wl = strlen(word);
  bool wrap = line->len + wl > width && line->len > hang;
  if (wrap) {
    put_line(s, line);
    line->len = 0;
    if (line->data)
      line->data[0] = '\0';
    ckpt_tf_buf_spaces(line, hang);
  }
  ckpt_tf_buf_puts(line, word);
}

static char *take(ckpt_tf_buf *b) {
  char *out = NULL;
  size_t len;
  if (ckpt_tf_buf_take(b, "array text", &out, &len, NULL) != CKPT_OK)
    return NULL;
  return out ? out : cli_strdup("");
}

/* numpy's recurser(index, hanging_indent, curr_width) for the sub-array starting at base. */
static char *recurse(const np_layout *L, int axis, uint64_t base, size_t hang, long width) {
  int64_t len = L->shape[axis];
  bool summary = L->summarized && L->summarized[axis] && len == 2 * CLI_NP_EDGEITEMS;
  int64_t leading = summary ? CLI_NP_EDGEITEMS : 0;
  int64_t trailing = summary ? CLI_NP_EDGEITEMS : len;
  ckpt_tf_buf s = CKPT_TF_BUF_INIT;
  uint64_t st = L->stride[axis];
  if (axis == L->ndim - 1) {
    size_t elem_width = width > 1 ? (size_t)(width - 1) : 0;
    ckpt_tf_buf line = CKPT_TF_BUF_INIT;
    ckpt_tf_buf_spaces(&line, hang);
    for (int64_t i = 0; i < leading; i++) {
      extend_line(&s, &line, L->texts[base + (uint64_t)i * st], elem_width, hang);
      ckpt_tf_buf_putc(&line, ' ');
    }
    if (summary) {
      extend_line(&s, &line, "...", elem_width, hang);
      ckpt_tf_buf_putc(&line, ' ');
    }
    for (int64_t i = trailing; i > 1; i--) {
      extend_line(&s, &line, L->texts[base + (uint64_t)(len - i) * st], elem_width, hang);
      ckpt_tf_buf_putc(&line, ' ');
    }
    extend_line(&s, &line, L->texts[base + (uint64_t)(len - 1) * st], elem_width, hang);
    if (line.oom)
      s.oom = true;
    if (line.data)
      ckpt_tf_buf_append(&s, line.data, line.len);
    ckpt_tf_buf_free(&line);
  } else {
    int axes_left = L->ndim - axis;
    for (int64_t i = 0; i < leading + (summary ? 1 : 0) + (trailing - 1); i++) {
      char *nested;
      if (summary && i == leading) {
        nested = cli_strdup("...");
      } else {
        int64_t idx = i < leading ? i : len - (trailing - (i - leading - (summary ? 1 : 0)));
        nested = recurse(L, axis + 1, base + (uint64_t)idx * st, hang + 1, width - 1);
      }
      if (nested == NULL) {
        s.oom = true;
        break;
      }
      ckpt_tf_buf_spaces(&s, hang);
      ckpt_tf_buf_puts(&s, nested);
      for (int k = 0; k < axes_left - 1; k++)
        ckpt_tf_buf_putc(&s, '\n');
      free(nested);
    }
    char *last = recurse(L, axis + 1, base + (uint64_t)(len - 1) * st, hang + 1, width - 1);
    if (last == NULL)
      s.oom = true;
    ckpt_tf_buf_spaces(&s, hang);
    if (last)
      ckpt_tf_buf_puts(&s, last);
    free(last);
  }
  char *body = take(&s);
  if (body == NULL)
    return NULL;
  size_t bl = strlen(body);
  size_t skip = bl >= hang ? hang : bl;
  char *out = cli_asprintf("[%s]", body + skip);
  free(body);
  return out;
}

char *cli_np_array_str(const void *data, ckpt_dtype dtype, int ndim, const int64_t *shape,
                       const bool *summarized) {
  if (ndim == 0)
    return cli_np_scalar_str(data, dtype);
  uint64_t n = 1;
  for (int k = 0; k < ndim; k++)
    n *= (uint64_t)shape[k];
  if (n == 0)
    return cli_strdup("[]");
  np_layout L;
  memset(&L, 0, sizeof L);
  L.ndim = ndim;
  L.shape = shape;
  L.summarized = summarized;
  uint64_t s = 1;
  for (int k = ndim - 1; k >= 0; k--) {
    L.stride[k] = s;
    s *= (uint64_t)shape[k];
  }
  L.texts = format_elements(data, dtype, n);
  if (L.texts == NULL)
    return NULL;
  char *out = recurse(&L, 0, 0, 1, CLI_NP_LINEWIDTH);
  for (uint64_t i = 0; i < n; i++)
    free(L.texts[i]);
  free(L.texts);
  return out;
}

/* ---------------------------------------------------------------- scalars */

void cli_float_repr(double v, ckpt_dtype dtype, char *out) {
  if (isnan(v)) {
    strcpy(out, "nan");
    return;
  }
  if (isinf(v)) {
    strcpy(out, v < 0 ? "-inf" : "inf");
    return;
  }
  if (!is_float(dtype))
    dtype = CKPT_DTYPE_FLOAT64;
  char digits[64];
  int e;
  shortest(v, dtype, digits, &e);
  int nd = (int)strlen(digits);
  char *o = out;
  if (signbit(v))
    *o++ = '-';
  if (e >= -4 && e < 16) {
    if (e >= 0) {
      for (int i = 0; i <= e; i++)
        *o++ = i < nd ? digits[i] : '0';
      *o++ = '.';
      if (nd > e + 1)
        for (int i = e + 1; i < nd; i++)
          *o++ = digits[i];
      else
        *o++ = '0';
    } else {
      *o++ = '0';
      *o++ = '.';
      for (int i = 0; i < -e - 1; i++)
        *o++ = '0';
      for (int i = 0; i < nd; i++)
        *o++ = digits[i];
    }
    *o = '\0';
  } else {
    *o++ = digits[0];
    if (nd > 1) {
      *o++ = '.';
      for (int i = 1; i < nd; i++)
        *o++ = digits[i];
    }
    sprintf(o, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
  }
}

/* A complex part as Python's complex repr writes it: integral values without ".0". */
static void complex_part(double v, ckpt_dtype dt, char *out) {
  cli_float_repr(v, dt, out);
  size_t n = strlen(out);
  if (n > 2 && strcmp(out + n - 2, ".0") == 0)
    out[n - 2] = '\0';
}

char *cli_np_scalar_str(const void *elem, ckpt_dtype dtype) {
  ckpt_dtype_class cls = ckpt_dtype_class_of(dtype);
  char buf[128];
  if (cls == CKPT_DTYPE_CLASS_BOOL)
    return cli_strdup(*(const unsigned char *)elem ? "True" : "False");
  if (cls == CKPT_DTYPE_CLASS_SIGNED || cls == CKPT_DTYPE_CLASS_UNSIGNED) {
    int_text(elem, dtype, 0, buf);
    return cli_strdup(buf);
  }
  double re, im;
  cli_complex_parts(elem, dtype, 0, &re, &im);
  if (cls == CKPT_DTYPE_CLASS_FLOAT) {
    cli_float_repr(re, dtype, buf);
    return cli_strdup(buf);
  }
  char r[64], i[64];
  ckpt_dtype c = component(dtype);
  complex_part(re, c, r);
  complex_part(im, c, i);
  if (re == 0 && !signbit(re))
    return cli_asprintf("%sj", i);
  bool neg = signbit(im) && !isnan(im);
  return cli_asprintf("(%s%s%sj)", r, neg ? "" : "+", i);
}
