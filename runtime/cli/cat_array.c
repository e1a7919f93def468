/* cli/cat_array.c — how `ckpt cat` shows an array leaf: the values as numpy prints them
 * (numfmt.c) for small arrays, numpy's summarised form with --values, summary statistics
 * computed slab by slab (stats.c) for large ones, and the values as JSON for scripts. Every
 * chunk read goes through array_read.c, so its checksum is checked. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cat.h"

/* ---------------------------------------------------------------- JSON values */

static cJSON *elem_json(const void *data, ckpt_dtype dt, uint64_t i) {
  const unsigned char *p = (const unsigned char *)data + i * ckpt_dtype_size(dt);
  ckpt_dtype_class cls = ckpt_dtype_class_of(dt);
  if (cls == CKPT_DTYPE_CLASS_BOOL)
    return cJSON_CreateBool(*p != 0);
  if (cls == CKPT_DTYPE_CLASS_SIGNED || cls == CKPT_DTYPE_CLASS_UNSIGNED) {
    ckpt_scalar s = ckpt_scalar_load(dt, p);
    return cls == CKPT_DTYPE_CLASS_SIGNED ? cli_jint(s.v.i) : cli_juint(s.v.u);
  }
  if (cls == CKPT_DTYPE_CLASS_COMPLEX) {
    double re, im;
    ckpt_dtype c = dt == CKPT_DTYPE_COMPLEX64 ? CKPT_DTYPE_FLOAT32 : CKPT_DTYPE_FLOAT64;
    cli_complex_parts(p, dt, 0, &re, &im);
    cJSON *a = cJSON_CreateArray();
    bool oom = false;
    char buf[64];
    cli_float_repr(re, c, buf);
    cli_jpush(a, isfinite(re) ? cJSON_CreateRaw(buf) : cli_jdouble(re), &oom);
    cli_float_repr(im, c, buf);
    cli_jpush(a, isfinite(im) ? cJSON_CreateRaw(buf) : cli_jdouble(im), &oom);
    if (oom) {
      cJSON_Delete(a);
      return NULL;
    }
    return a;
  }
  double v;
  ckpt_dtype_convert(CKPT_DTYPE_FLOAT64, &v, dt, p, 1);
  if (!isfinite(v))
    return cli_jdouble(v);
  char buf[64];
  cli_float_repr(v, dt, buf);
  return cJSON_CreateRaw(buf);
}

static cJSON *values_json(const void *data, ckpt_dtype dt, int ndim, const int64_t *shape, int axis,
                          uint64_t *next) {
  if (axis == ndim)
    return elem_json(data, dt, (*next)++);
  cJSON *a = cJSON_CreateArray();
  bool oom = a == NULL;
  for (int64_t i = 0; !oom && i < shape[axis]; i++)
    cli_jpush(a, values_json(data, dt, ndim, shape, axis + 1, next), &oom);
  if (oom) {
    cJSON_Delete(a);
    return NULL;
  }
  return a;
}

cJSON *cli_tree_value_json(const ckpt_tree *t) {
  ckpt_scalar s;
  const ckpt_array *a = ckpt_tree_array(t);
  const void *bytes;
  size_t n;
  if (a != NULL) {
    uint64_t next = 0;
    return values_json(ckpt_array_data(a), a->dtype, a->ndim, a->shape, 0, &next);
  }
  if (ckpt_tree_scalar(t, &s)) {
    unsigned char buf[16];
    ckpt_scalar_store(&s, buf);
    return elem_json(buf, s.dtype, 0);
  }
  if (ckpt_tree_string(t) != NULL)
    return cJSON_CreateString(ckpt_tree_string(t));
  if (ckpt_tree_bytes(t, &bytes, &n)) {
    cJSON *l = cJSON_CreateArray();
    bool oom = l == NULL;
    for (size_t i = 0; !oom && i < n; i++)
      cli_jpush(l, cJSON_CreateNumber(((const unsigned char *)bytes)[i]), &oom);
    return oom ? (cJSON_Delete(l), NULL) : l;
  }
  switch (ckpt_tree_kind(t)) {
    case CKPT_NODE_DICT:
      return cJSON_CreateObject();
    case CKPT_NODE_LIST:
    case CKPT_NODE_TUPLE:
      return cJSON_CreateArray();
    default:
      return cJSON_CreateNull();
  }
}

/* ---------------------------------------------------------------- arrays */

typedef struct stats_ctx {
  cli_array *a;
  cli_stats s;
  void *buf;
} stats_ctx;

static ckpt_status stats_box(void *ctx, const int64_t *off, const int64_t *shape, uint64_t n,
                             ckpt_error *err) {
  stats_ctx *c = ctx;
  ckpt_status st = cli_array_read(c->a, off, shape, c->a->meta.dtype, c->buf, err);
  if (st == CKPT_OK)
    cli_stats_add(&c->s, c->buf, n);
  return st;
}

static void stat_value(const cli_stats *s, bool is_max, char *out) {
  if (s->n_finite == 0) {
    strcpy(out, "-");
    return;
  }
  if (s->is_int) {
    if (ckpt_dtype_class_of(s->dtype) == CKPT_DTYPE_CLASS_UNSIGNED)
      snprintf(out, 48, "%llu", (unsigned long long)(is_max ? s->umax : s->umin));
    else
      snprintf(out, 48, "%lld", (long long)(is_max ? s->imax : s->imin));
    return;
  }
  ckpt_dtype c = s->dtype == CKPT_DTYPE_COMPLEX64    ? CKPT_DTYPE_FLOAT32
                 : s->dtype == CKPT_DTYPE_COMPLEX128 ? CKPT_DTYPE_FLOAT64
                                                     : s->dtype;
  cli_float_repr(is_max ? s->max : s->min, c, out);
}

static cJSON *stat_json(const cli_stats *s, bool is_max) {
  if (s->n_finite == 0)
    return cJSON_CreateNull();
  if (s->is_int) {
    if (ckpt_dtype_class_of(s->dtype) == CKPT_DTYPE_CLASS_UNSIGNED)
      return cli_juint(is_max ? s->umax : s->umin);
    return cli_jint(is_max ? s->imax : s->imin);
  }
  return cli_jdouble(is_max ? s->max : s->min);
}

static int print_stats(cli_array *a, const cli_leaf *l, cJSON *doc, bool *oom) {
  stats_ctx c;
  memset(&c, 0, sizeof c);
  c.a = a;
  cli_stats_init(&c.s, a->meta.dtype);
  uint64_t n = 1;
  for (int k = 0; k < a->meta.ndim; k++)
    n *= (uint64_t)a->meta.shape[k];
  uint64_t slab = n < CLI_SLAB_ELEMS ? (n ? n : 1) : CLI_SLAB_ELEMS;
  /* a box may exceed the slab by less than one innermost row; size the buffer for that */
  uint64_t row = a->meta.ndim ? (uint64_t)a->meta.shape[a->meta.ndim - 1] : 1;
  uint64_t cap = slab > row ? slab : row;
  c.buf = malloc((size_t)cap * ckpt_dtype_size(a->meta.dtype));
  ckpt_error err = CKPT_ERROR_INIT;
  if (c.buf == NULL) {
    ckpt_error_set(&err, CKPT_ENOMEM, "cannot allocate a read buffer for '%s'", l->param);
    return cli_report(&err);
  }
  ckpt_status st = cli_for_each_box(a->meta.ndim, a->meta.shape, slab, stats_box, &c, &err);
  free(c.buf);
  if (st != CKPT_OK)
    return cli_report(&err);
  const cli_stats *s = &c.s;
  double std = cli_stats_std(s);
  bool cplx = ckpt_dtype_class_of(s->dtype) == CKPT_DTYPE_CLASS_COMPLEX;
  if (doc) {
    cJSON *o = cJSON_CreateObject();
    cli_jadd(o, "count", cli_juint(s->count), oom);
    cli_jadd(o, "of", cJSON_CreateString(cplx ? "abs" : "value"), oom);
    cli_jadd(o, "min", stat_json(s, false), oom);
    cli_jadd(o, "max", stat_json(s, true), oom);
    cli_jadd(o, "mean", s->n_finite ? cli_jdouble(s->mean) : cJSON_CreateNull(), oom);
    cli_jadd(o, "std", s->n_finite ? cli_jdouble(std) : cJSON_CreateNull(), oom);
    cli_jadd(o, "finite", cli_juint(s->n_finite), oom);
    cli_jadd(o, "nan", cli_juint(s->n_nan), oom);
    cli_jadd(o, "inf", cli_juint(s->n_inf), oom);
    cli_jadd(o, "zeros", cli_juint(s->n_zero), oom);
    cli_jadd(doc, "stats", o, oom);
    return CLI_EXIT_OK;
  }
  char *shape = cli_format_shape(a->meta.ndim, a->meta.shape);
  char mn[64], mx[64];
  stat_value(s, false, mn);
  stat_value(s, true, mx);
  printf("shape  %s\n", shape ? shape : "?");
  printf("dtype  %s\n", ckpt_dtype_name(s->dtype));
  printf("count  %llu\n", (unsigned long long)s->count);
  printf("min    %s%s\n", mn, cplx ? " (of |z|)" : "");
  printf("max    %s%s\n", mx, cplx ? " (of |z|)" : "");
  if (s->n_finite) {
    printf("mean   %.8g\n", s->mean);
    printf("std    %.8g\n", std);
  } else {
    printf("mean   -\nstd    -\n");
  }
  printf("nan    %llu\n", (unsigned long long)s->n_nan);
  printf("inf    %llu\n", (unsigned long long)s->n_inf);
  printf("zeros  %llu\n", (unsigned long long)s->n_zero);
  free(shape);
  return CLI_EXIT_OK;
}

/* Reads the whole array (n elements), or numpy's summarised form of it (3 leading and 3
 * trailing entries of every axis longer than 6) into a new buffer of rshape. */
static ckpt_status read_for_print(cli_array *a, bool summarize, int64_t *rshape, bool *summ,
                                  void **out, ckpt_error *err) {
  const ckpt_zarr_meta *m = &a->meta;
  int nd = m->ndim;
  size_t es = ckpt_dtype_size(m->dtype);
  uint64_t total = 1;
  int n_summ = 0;
  for (int k = 0; k < nd; k++) {
    summ[k] = summarize && m->shape[k] > 2 * CLI_NP_EDGEITEMS;
    rshape[k] = summ[k] ? 2 * CLI_NP_EDGEITEMS : m->shape[k];
    n_summ += summ[k];
    total *= (uint64_t)rshape[k];
  }
  if (total > ((uint64_t)1 << 24) || n_summ > 16)
    return ckpt_error_set(err, CKPT_EINVAL,
                          "'%s' has too many dimensions to print its values; use --stats", a->name);
  unsigned char *buf = calloc((size_t)(total ? total : 1), es);
  if (buf == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory reading '%s'", a->name);
  if (n_summ == 0) {
    int64_t zero[CKPT_MAX_RANK] = {0};
    ckpt_status st = total ? cli_array_read(a, zero, m->shape, m->dtype, buf, err) : CKPT_OK;
    if (st != CKPT_OK) {
      free(buf);
      return st;
    }
    *out = buf;
    return CKPT_OK;
  }
  /* one box per combination of leading/trailing parts of the summarised axes */
  int64_t box[CKPT_MAX_RANK], off[CKPT_MAX_RANK], doff[CKPT_MAX_RANK], zero[CKPT_MAX_RANK] = {0};
  uint64_t box_elems = 1;
  for (int k = 0; k < nd; k++) {
    box[k] = summ[k] ? CLI_NP_EDGEITEMS : m->shape[k];
    box_elems *= (uint64_t)box[k];
  }
  unsigned char *tmp = malloc((size_t)(box_elems ? box_elems : 1) * es);
  if (tmp == NULL) {
    free(buf);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory reading '%s'", a->name);
  }
  ckpt_status st = CKPT_OK;
  for (uint64_t combo = 0; st == CKPT_OK && combo < ((uint64_t)1 << n_summ); combo++) {
    int bit = 0;
    for (int k = 0; k < nd; k++) {
      off[k] = doff[k] = 0;
      if (!summ[k])
        continue;
      bool trail = (combo >> bit++) & 1;
      off[k] = trail ? m->shape[k] - CLI_NP_EDGEITEMS : 0;
      doff[k] = trail ? CLI_NP_EDGEITEMS : 0;
    }
    st = cli_array_read(a, off, box, m->dtype, tmp, err);
    if (st == CKPT_OK)
      ckpt_box_copy(nd, box, buf, m->dtype, rshape, doff, tmp, m->dtype, box, zero);
  }
  free(tmp);
  if (st != CKPT_OK) {
    free(buf);
    return st;
  }
  *out = buf;
  return CKPT_OK;
}

int cat_array(const cat_opts *o, ckpt_io *io, const cli_pytree *p, const cli_leaf *l, cJSON *doc,
              bool *oom) {
  cli_array a;
  ckpt_error err = CKPT_ERROR_INIT;
  if (cli_array_open(io, p, l, &a, &err) != CKPT_OK)
    return cli_report(&err);
  const ckpt_zarr_meta *m = &a.meta;
  uint64_t n = 1;
  for (int k = 0; k < m->ndim; k++)
    n *= (uint64_t)m->shape[k];
  if (doc) {
    cli_jadd(doc, "dtype", cJSON_CreateString(ckpt_dtype_name(m->dtype)), oom);
    cli_jadd(doc, "shape", cli_jshape(m->ndim, m->shape), oom);
  }
  bool big = n > CLI_NP_THRESHOLD;
  int rc;
  if (o->stats || (big && !o->values)) {
    rc = print_stats(&a, l, doc, oom);
  } else {
    int64_t rshape[CKPT_MAX_RANK];
    bool summ[CKPT_MAX_RANK];
    void *data = NULL;
    /* JSON output carries every value; text output summarises as numpy does */
    if (read_for_print(&a, big && !doc, rshape, summ, &data, &err) != CKPT_OK) {
      rc = cli_report(&err);
    } else if (doc) {
      uint64_t next = 0;
      cli_jadd(doc, "values", values_json(data, m->dtype, m->ndim, rshape, 0, &next), oom);
      rc = CLI_EXIT_OK;
    } else {
      char *text = cli_np_array_str(data, m->dtype, m->ndim, rshape, summ);
      if (text == NULL) {
        fprintf(stderr, "ckpt: out of memory\n");
        rc = CLI_EXIT_ERROR;
      } else {
        printf("%s\n", text);
        rc = CLI_EXIT_OK;
      }
      free(text);
    }
    free(data);
  }
  cli_array_close(&a);
  return rc;
}
