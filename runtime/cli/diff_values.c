/* cli/diff_values.c — how `ckpt diff` compares values and records differences. Arrays are read
 * slab by slab from both checkpoints over the same boxes, so the two may be chunked differently
 * and arrays larger than memory compare in bounded memory. Values are close when |a - b| <=
 * atol + rtol * |b| (numpy.isclose); NaN equals NaN (numpy.array_equal(equal_nan=True)); integers
 * compare exactly, whatever their size, when no tolerance is given. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diff.h"

/* "item/key", "key", or "item" */
static char *where(const char *item, const char *key) {
  if (item && item[0] && key && key[0])
    return cli_asprintf("%s/%s", item, key);
  if (key && key[0])
    return cli_strdup(key);
  return cli_strdup(item && item[0] ? item : "(checkpoint)");
}

/* Records one difference: the text line "<kind>: <where>: <detail>" or a JSON object with
 * kind, item, key, detail and the extra fields in extra (taken over). */
void diff_record(diff_ctx *c, const char *kind, const char *item, const char *key,
                 const char *detail, cJSON *extra) {
  c->n_diffs++;
  if (!c->json) {
    char *w = where(item, key);
    printf("%s: %s%s%s\n", kind, w ? w : "?", detail ? ": " : "", detail ? detail : "");
    free(w);
    cJSON_Delete(extra);
    return;
  }
  cJSON *o = extra ? extra : cJSON_CreateObject();
  cli_jadd(o, "kind", cJSON_CreateString(kind), &c->oom);
  cli_jadd(o, "item", cli_jstr(item && item[0] ? item : NULL), &c->oom);
  cli_jadd(o, "key", cli_jstr(key && key[0] ? key : NULL), &c->oom);
  cli_jadd(o, "detail", cli_jstr(detail), &c->oom);
  cli_jpush(c->diffs, o, &c->oom);
}

void diff_fail(diff_ctx *c, const ckpt_error *err) {
  if (c->error == 0)
    c->error = CLI_EXIT_ERROR;
  fprintf(stderr, "ckpt: diff: %s\n", err->message);
}

/* ---------------------------------------------------------------- values */

typedef struct value_cmp {
  diff_ctx *c;
  cli_array *a, *b;
  void *abuf, *bbuf;
  int ndim;
  const int64_t *shape;
  bool exact_bytes; /* same integer dtype, no tolerance: compare element bytes */
  bool cplx;
  uint64_t n_diff, total;
  bool has_first;
  int64_t first[CKPT_MAX_RANK];
  uint64_t first_linear;
  char first_a[64], first_b[64];
  double max_abs;
  bool has_max;
  int64_t max_at[CKPT_MAX_RANK];
} value_cmp;

static void elem_text(const void *buf, ckpt_dtype dt, uint64_t i, char *out) {
  char *s = cli_np_scalar_str((const unsigned char *)buf + i * ckpt_dtype_size(dt), dt);
  snprintf(out, 64, "%s", s ? s : "?");
  free(s);
}

static bool close_enough(const value_cmp *v, double a, double b) {
  if (isnan(a) || isnan(b))
    return isnan(a) && isnan(b);
  if (a == b)
    return true;
  if (!isfinite(a) || !isfinite(b))
    return false;
  return fabs(a - b) <= v->c->atol + v->c->rtol * fabs(b);
}

/* Integers of different dtypes: exact comparison without going through double. */
static bool ints_equal(ckpt_dtype da, const void *pa, ckpt_dtype db, const void *pb) {
  ckpt_scalar x = ckpt_scalar_load(da, pa), y = ckpt_scalar_load(db, pb);
  bool xu = ckpt_dtype_class_of(da) == CKPT_DTYPE_CLASS_UNSIGNED;
  bool yu = ckpt_dtype_class_of(db) == CKPT_DTYPE_CLASS_UNSIGNED;
  int64_t xi = ckpt_dtype_class_of(da) == CKPT_DTYPE_CLASS_BOOL ? x.v.b : x.v.i;
  int64_t yi = ckpt_dtype_class_of(db) == CKPT_DTYPE_CLASS_BOOL ? y.v.b : y.v.i;
  if (xu && yu)
    return x.v.u == y.v.u;
  if (xu)
    return yi >= 0 && (uint64_t)yi == x.v.u;
  if (yu)
    return xi >= 0 && (uint64_t)xi == y.v.u;
  return xi == yi;
}

static bool is_int_class(ckpt_dtype dt) {
  ckpt_dtype_class k = ckpt_dtype_class_of(dt);
  return k == CKPT_DTYPE_CLASS_BOOL || k == CKPT_DTYPE_CLASS_SIGNED ||
         k == CKPT_DTYPE_CLASS_UNSIGNED;
}

static ckpt_status compare_box(void *ctx, const int64_t *off, const int64_t *shape, uint64_t n,
                               ckpt_error *err) {
  value_cmp *v = ctx;
  ckpt_dtype da = v->a->meta.dtype, db = v->b->meta.dtype;
  ckpt_status st = cli_array_read(v->a, off, shape, da, v->abuf, err);
  if (st == CKPT_OK)
    st = cli_array_read(v->b, off, shape, db, v->bbuf, err);
  if (st != CKPT_OK)
    return st;
  size_t ea = ckpt_dtype_size(da), eb = ckpt_dtype_size(db);
  bool ints = is_int_class(da) && is_int_class(db) && v->c->atol == 0 && v->c->rtol == 0;
  for (uint64_t i = 0; i < n; i++) {
    const unsigned char *pa = (const unsigned char *)v->abuf + i * ea;
    const unsigned char *pb = (const unsigned char *)v->bbuf + i * eb;
    bool eq;
    double ar, ai, br, bi;
    cli_complex_parts(v->abuf, da, i, &ar, &ai);
    cli_complex_parts(v->bbuf, db, i, &br, &bi);
    if (v->exact_bytes)
      eq = memcmp(pa, pb, ea) == 0;
    else if (ints)
      eq = ints_equal(da, pa, db, pb);
    else
      eq = close_enough(v, ar, br) && close_enough(v, ai, bi);
    if (eq)
      continue;
    /* the element's index in the whole array */
    int64_t idx[CKPT_MAX_RANK];
    uint64_t rem = i;
    for (int k = v->ndim - 1; k >= 0; k--) {
      idx[k] = off[k] + (int64_t)(rem % (uint64_t)shape[k]);
      rem /= (uint64_t)shape[k];
    }
    v->n_diff++;
    if (!v->has_first) {
      v->has_first = true;
      memcpy(v->first, idx, sizeof(int64_t) * (size_t)v->ndim);
      elem_text(v->abuf, da, i, v->first_a);
      elem_text(v->bbuf, db, i, v->first_b);
    }
    double d = hypot(ar - br, ai - bi);
    if (isfinite(d) && (!v->has_max || d > v->max_abs)) {
      v->has_max = true;
      v->max_abs = d;
      memcpy(v->max_at, idx, sizeof(int64_t) * (size_t)v->ndim);
    }
  }
  return CKPT_OK;
}

void diff_values(diff_ctx *c, const char *item, const cli_pytree *pa, const cli_leaf *la,
                 const cli_pytree *pb, const cli_leaf *lb) {
  cli_array a, b;
  ckpt_error err = CKPT_ERROR_INIT;
  if (cli_array_open(c->io, pa, la, &a, &err) != CKPT_OK) {
    diff_fail(c, &err);
    return;
  }
  if (cli_array_open(c->io, pb, lb, &b, &err) != CKPT_OK) {
    cli_array_close(&a);
    diff_fail(c, &err);
    return;
  }
  value_cmp v;
  memset(&v, 0, sizeof v);
  v.c = c;
  v.a = &a;
  v.b = &b;
  v.ndim = a.meta.ndim;
  v.shape = a.meta.shape;
  v.exact_bytes =
      a.meta.dtype == b.meta.dtype && is_int_class(a.meta.dtype) && c->atol == 0 && c->rtol == 0;
  uint64_t n = 1;
  for (int k = 0; k < v.ndim; k++)
    n *= (uint64_t)v.shape[k];
  v.total = n;
  uint64_t slab = n < CLI_SLAB_ELEMS ? (n ? n : 1) : CLI_SLAB_ELEMS;
  v.abuf = malloc((size_t)slab * ckpt_dtype_size(a.meta.dtype));
  v.bbuf = malloc((size_t)slab * ckpt_dtype_size(b.meta.dtype));
  ckpt_status st;
  if (v.abuf == NULL || v.bbuf == NULL)
    st = ckpt_error_set(&err, CKPT_ENOMEM, "out of memory comparing '%s'", la->param);
  else
    st = cli_for_each_box(v.ndim, v.shape, slab, compare_box, &v, &err);
  free(v.abuf);
  free(v.bbuf);
  cli_array_close(&a);
  cli_array_close(&b);
  if (st != CKPT_OK) {
    diff_fail(c, &err);
    return;
  }
  if (v.n_diff == 0)
    return;
  char *first = cli_format_shape(v.ndim, v.first);
  char *maxat = v.has_max ? cli_format_shape(v.ndim, v.max_at) : NULL;
  char maxs[64] = "";
  if (v.has_max)
    cli_float_repr(v.max_abs, CKPT_DTYPE_FLOAT64, maxs);
  char *detail =
      cli_asprintf("%llu of %llu elements differ; first at %s: %s != %s%s%s%s%s",
                   (unsigned long long)v.n_diff, (unsigned long long)v.total, first ? first : "?",
                   v.first_a, v.first_b, v.has_max ? "; max |a-b| " : "", maxs,
                   v.has_max ? " at " : "", v.has_max && maxat ? maxat : "");
  cJSON *extra = NULL;
  if (c->json) {
    extra = cJSON_CreateObject();
    cli_jadd(extra, "count", cli_juint(v.n_diff), &c->oom);
    cli_jadd(extra, "total", cli_juint(v.total), &c->oom);
    cli_jadd(extra, "first_index", cli_jshape(v.ndim, v.first), &c->oom);
    cli_jadd(extra, "a", cJSON_CreateString(v.first_a), &c->oom);
    cli_jadd(extra, "b", cJSON_CreateString(v.first_b), &c->oom);
    cli_jadd(extra, "max_abs_diff", v.has_max ? cli_jdouble(v.max_abs) : cJSON_CreateNull(),
             &c->oom);
    cli_jadd(extra, "max_abs_diff_index",
             v.has_max ? cli_jshape(v.ndim, v.max_at) : cJSON_CreateNull(), &c->oom);
  }
  if (detail == NULL)
    c->oom = true;
  diff_record(c, "values", item, la->param, detail, extra);
  free(detail);
  free(first);
  free(maxat);
}
