/* trainer_state.c — creating, checking and fingerprinting train_mlp's state (see
 * trainer_state.h). The schema's tied dimensions already guarantee that each parameter and its
 * two moments agree with each other on restore; this file adds what the schema cannot say: that
 * the sizes are the ones the checkpoint's own hparams describe, and that the permutation the
 * loader indexes the dataset with is a real permutation. */
#include "trainer_state.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const param_names[MLP_TENSORS] = {"w1", "b1", "w2", "b2", "w3", "b3"};

mlp_shape trainer_shape(const mlp_Hparams *hp) {
  return (mlp_shape){hp->input_dim, hp->hidden1, hp->hidden2, hp->num_classes};
}

mlp_adam trainer_adam(const mlp_Hparams *hp) {
  return (mlp_adam){hp->learning_rate, hp->beta1, hp->beta2, hp->eps};
}

/* The three arrays (parameter, first moment, second moment) of tensor i, as slots. */
static void tensor_slots(mlp_TrainState *s, int i, ckpt_array ***p, ckpt_array ***m,
                         ckpt_array ***v) {
  ckpt_array **ps[MLP_TENSORS] = {&s->w1, &s->b1, &s->w2, &s->b2, &s->w3, &s->b3};
  ckpt_array **ms[MLP_TENSORS] = {&s->m_w1, &s->m_b1, &s->m_w2, &s->m_b2, &s->m_w3, &s->m_b3};
  ckpt_array **vs[MLP_TENSORS] = {&s->v_w1, &s->v_b1, &s->v_w2, &s->v_b2, &s->v_w3, &s->v_b3};
  *p = ps[i];
  *m = ms[i];
  *v = vs[i];
}

/* The same three arrays, read-only. */
static void tensor_arrays(const mlp_TrainState *s, int i, const ckpt_array *out[3]) {
  const ckpt_array *ps[MLP_TENSORS] = {s->w1, s->b1, s->w2, s->b2, s->w3, s->b3};
  const ckpt_array *ms[MLP_TENSORS] = {s->m_w1, s->m_b1, s->m_w2, s->m_b2, s->m_w3, s->m_b3};
  const ckpt_array *vs[MLP_TENSORS] = {s->v_w1, s->v_b1, s->v_w2, s->v_b2, s->v_w3, s->v_b3};
  out[0] = ps[i];
  out[1] = ms[i];
  out[2] = vs[i];
}

/* Shape of tensor i: rank in *ndim, extents in shape[]. */
static void tensor_shape(const mlp_shape *sh, int i, int *ndim, int64_t shape[2]) {
  int64_t dims[4] = {sh->in, sh->h1, sh->h2, sh->out};
  if (i % 2 == 0) {
    *ndim = 2;
    shape[0] = dims[i / 2];
    shape[1] = dims[i / 2 + 1];
  } else {
    *ndim = 1;
    shape[0] = dims[i / 2 + 1];
    shape[1] = 0;
  }
}

ckpt_status trainer_hparams_check(const mlp_Hparams *hp, ckpt_error *err) {
  struct {
    const char *name;
    int32_t value;
    int32_t max;
  } sizes[] = {{"batch_size", hp->batch_size, 1 << 16},   {"input_dim", hp->input_dim, 1 << 14},
               {"hidden1", hp->hidden1, 1 << 14},         {"hidden2", hp->hidden2, 1 << 14},
               {"num_classes", hp->num_classes, 1 << 14}, {"train_size", hp->train_size, 1 << 24},
               {"val_size", hp->val_size, 1 << 24}};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    if (sizes[i].value <= 0 || sizes[i].value > sizes[i].max)
      return ckpt_error_set(err, CKPT_EINVAL, "Hparams.%s is %" PRId32 "; expected 1..%" PRId32,
                            sizes[i].name, sizes[i].value, sizes[i].max);
  }
  if (hp->train_size % hp->batch_size != 0)
    return ckpt_error_set(err, CKPT_EINVAL,
                          "Hparams.train_size (%" PRId32
                          ") is not a multiple of batch_size "
                          "(%" PRId32 ")",
                          hp->train_size, hp->batch_size);
  if (!(hp->learning_rate > 0.0f && hp->learning_rate < 1.0f))
    return ckpt_error_set(err, CKPT_EINVAL, "Hparams.learning_rate %g is outside (0, 1)",
                          (double)hp->learning_rate);
  if (!(hp->beta1 >= 0.0f && hp->beta1 < 1.0f) || !(hp->beta2 >= 0.0f && hp->beta2 < 1.0f))
    return ckpt_error_set(err, CKPT_EINVAL, "Hparams.beta1 %g and beta2 %g must be in [0, 1)",
                          (double)hp->beta1, (double)hp->beta2);
  if (!(hp->eps > 0.0f && isfinite(hp->eps)))
    return ckpt_error_set(err, CKPT_EINVAL, "Hparams.eps %g must be positive", (double)hp->eps);
  return CKPT_OK;
}

/* Fisher-Yates with indices from rng: the same rng state gives the same permutation. */
static void shuffle(ckpt_numpy_rng *rng, int32_t *perm, int32_t n) {
  for (int32_t i = 0; i < n; i++)
    perm[i] = i;
  for (int32_t i = n - 1; i > 0; i--) {
    int32_t j = (int32_t)(ckpt_numpy_rng_next_double(rng) * (double)(i + 1));
    int32_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
}

ckpt_status trainer_state_fresh(mlp_TrainState *s, const mlp_Hparams *hp, ckpt_error *err) {
  ckpt_status st = trainer_hparams_check(hp, err);
  if (st != CKPT_OK)
    return st;
  s->hparams = *hp;
  s->step = 0;
  s->rng = calloc(1, sizeof *s->rng);
  if (s->rng == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory for the rng");
  ckpt_numpy_rng_seed(s->rng, hp->init_seed);

  mlp_shape sh = trainer_shape(hp);
  for (int i = 0; i < MLP_TENSORS && st == CKPT_OK; i++) {
    ckpt_array **p, **m, **v;
    tensor_slots(s, i, &p, &m, &v);
    int ndim;
    int64_t shape[2];
    tensor_shape(&sh, i, &ndim, shape);
    st = ckpt_array_new(CKPT_DTYPE_FLOAT32, ndim, shape, p, err); /* zero-filled */
    if (st == CKPT_OK)
      st = ckpt_array_new(CKPT_DTYPE_FLOAT32, ndim, shape, m, err);
    if (st == CKPT_OK)
      st = ckpt_array_new(CKPT_DTYPE_FLOAT32, ndim, shape, v, err);
    if (st != CKPT_OK || ndim != 2)
      continue;
    /* Glorot-uniform weights; biases stay zero. */
    float *w = ckpt_array_data(*p);
    double limit = sqrt(6.0 / (double)(shape[0] + shape[1]));
    for (int64_t k = 0; k < shape[0] * shape[1]; k++)
      w[k] = (float)((2.0 * ckpt_numpy_rng_next_double(s->rng) - 1.0) * limit);
  }
  if (st != CKPT_OK)
    return st;

  int64_t n = hp->train_size;
  st = ckpt_array_new(CKPT_DTYPE_INT32, 1, &n, &s->loader.perm, err);
  if (st != CKPT_OK)
    return st;
  s->loader.epoch = 0;
  s->loader.index = 0;
  shuffle(s->rng, ckpt_array_data(s->loader.perm), hp->train_size);
  return CKPT_OK;
}

/* An array field must be a single float32 buffer of exactly the given shape. */
static ckpt_status check_array(const ckpt_array *a, const char *field, ckpt_dtype dtype, int ndim,
                               const int64_t *shape, ckpt_error *err) {
  if (a == NULL)
    return ckpt_error_set(err, CKPT_EMISMATCH, "TrainState.%s: missing", field);
  if (a->dtype != dtype || a->ndim != ndim)
    return ckpt_error_set(err, CKPT_EMISMATCH,
                          "TrainState.%s: expected a %d-d %s array, got %d-d %s", field, ndim,
                          ckpt_dtype_name(dtype), a->ndim, ckpt_dtype_name(a->dtype));
  for (int d = 0; d < ndim; d++) {
    if (a->shape[d] != shape[d])
      return ckpt_error_set(err, CKPT_EMISMATCH,
                            "TrainState.%s: dim %d is %" PRId64
                            " but the checkpoint's hparams "
                            "say %" PRId64,
                            field, d, a->shape[d], shape[d]);
  }
  if (ckpt_array_data(a) == NULL)
    return ckpt_error_set(err, CKPT_EUNSUPPORTED,
                          "TrainState.%s: not held as one host buffer (%zu shards)", field,
                          a->n_shards);
  return CKPT_OK;
}

ckpt_status trainer_state_check(const mlp_TrainState *s, ckpt_error *err) {
  ckpt_status st = trainer_hparams_check(&s->hparams, err);
  if (st != CKPT_OK) {
    ckpt_error_prefix(err, "the checkpoint's ");
    return st;
  }
  if (s->step < 0)
    return ckpt_error_set(err, CKPT_ECORRUPT, "TrainState.step is negative (%" PRId64 ")", s->step);
  if (s->rng == NULL)
    return ckpt_error_set(err, CKPT_EMISMATCH, "TrainState.rng: missing");
  mlp_shape sh = trainer_shape(&s->hparams);
  for (int i = 0; i < MLP_TENSORS; i++) {
    int ndim;
    int64_t shape[2];
    tensor_shape(&sh, i, &ndim, shape);
    char name[8];
    const char *prefix[3] = {"", "m_", "v_"};
    const ckpt_array *arrays[3];
    tensor_arrays(s, i, arrays);
    for (int k = 0; k < 3; k++) {
      snprintf(name, sizeof name, "%s%s", prefix[k], param_names[i]);
      st = check_array(arrays[k], name, CKPT_DTYPE_FLOAT32, ndim, shape, err);
      if (st != CKPT_OK)
        return st;
    }
  }
  int64_t n = s->hparams.train_size;
  st = check_array(s->loader.perm, "loader.perm", CKPT_DTYPE_INT32, 1, &n, err);
  if (st != CKPT_OK)
    return st;
  if (s->loader.epoch < 0 || s->loader.index < 0 || s->loader.index > n ||
      s->loader.index % s->hparams.batch_size != 0)
    return ckpt_error_set(err, CKPT_ECORRUPT,
                          "TrainState.loader: epoch %" PRId64 ", index %" PRId64
                          " is not a batch boundary of an epoch of %" PRId64 " examples",
                          s->loader.epoch, s->loader.index, n);
  const int32_t *perm = ckpt_array_data(s->loader.perm);
  unsigned char *seen = calloc((size_t)n, 1);
  if (seen == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory checking loader.perm");
  for (int64_t i = 0; i < n && st == CKPT_OK; i++) {
    if (perm[i] < 0 || perm[i] >= n || seen[perm[i]])
      st = ckpt_error_set(err, CKPT_ECORRUPT,
                          "TrainState.loader.perm[%" PRId64 "] = %" PRId32
                          " (not a permutation of 0..%" PRId64 ")",
                          i, perm[i], n - 1);
    else
      seen[perm[i]] = 1;
  }
  free(seen);
  return st;
}

void trainer_state_views(mlp_TrainState *s, mlp_tensors *params, mlp_tensors *m, mlp_tensors *v) {
  for (int i = 0; i < MLP_TENSORS; i++) {
    ckpt_array **p, **mm, **vv;
    tensor_slots(s, i, &p, &mm, &vv);
    params->t[i] = ckpt_array_data(*p);
    m->t[i] = ckpt_array_data(*mm);
    v->t[i] = ckpt_array_data(*vv);
  }
}

void trainer_next_batch(mlp_TrainState *s, int32_t *idx) {
  int32_t n = s->hparams.train_size, b = s->hparams.batch_size;
  int32_t *perm = ckpt_array_data(s->loader.perm);
  if (s->loader.index + b > n) {
    s->loader.epoch++;
    s->loader.index = 0;
    shuffle(s->rng, perm, n);
  }
  memcpy(idx, perm + s->loader.index, (size_t)b * sizeof *idx);
  s->loader.index += b;
}

/* ================================================================ fingerprint */

static uint64_t fnv(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= UINT64_C(0x100000001b3);
  }
  return h;
}

uint64_t trainer_state_fingerprint(const mlp_TrainState *s) {
  uint64_t h = UINT64_C(0xcbf29ce484222325);
  h = fnv(h, &s->step, sizeof s->step);
  const ckpt_array *arrays[] = {s->w1,   s->b1,   s->w2,   s->b2,   s->w3,         s->b3,   s->m_w1,
                                s->m_b1, s->m_w2, s->m_b2, s->m_w3, s->m_b3,       s->v_w1, s->v_b1,
                                s->v_w2, s->v_b2, s->v_w3, s->v_b3, s->loader.perm};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) {
    const void *d = arrays[i] != NULL ? ckpt_array_data(arrays[i]) : NULL;
    if (d != NULL)
      h = fnv(h, d, (size_t)ckpt_array_nbytes(arrays[i]));
  }
  if (s->rng != NULL) {
    h = fnv(h, s->rng->key, sizeof s->rng->key);
    h = fnv(h, &s->rng->pos, sizeof s->rng->pos);
    h = fnv(h, &s->rng->has_gauss, sizeof s->rng->has_gauss);
    h = fnv(h, &s->rng->cached_gaussian, sizeof s->rng->cached_gaussian);
  }
  h = fnv(h, &s->loader.epoch, sizeof s->loader.epoch);
  h = fnv(h, &s->loader.index, sizeof s->loader.index);
  /* Field by field: struct padding is not part of the state. */
  const mlp_Hparams *hp = &s->hparams;
  const float fl[] = {hp->learning_rate, hp->beta1, hp->beta2, hp->eps};
  const int32_t in[] = {hp->batch_size,  hp->input_dim,  hp->hidden1, hp->hidden2,
                        hp->num_classes, hp->train_size, hp->val_size};
  const uint32_t un[] = {hp->data_seed, hp->init_seed};
  h = fnv(h, fl, sizeof fl);
  h = fnv(h, in, sizeof in);
  h = fnv(h, un, sizeof un);
  return h;
}
