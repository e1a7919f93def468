/* mlp_math.c — dataset, forward/backward pass and Adam for train_mlp (see mlp_math.h).
 *
 * Determinism is the point of this file: every sum runs in one fixed order (loops below never
 * depend on timing, threads or memory addresses), and only float32 arithmetic plus expf/logf/
 * sqrtf from the same libm is used, so a run resumed from a checkpoint retraces the bits of
 * an uninterrupted run. Loops are ordered so that the innermost one updates independent
 * outputs (which a compiler may vectorise without changing any single output's sum order). */
#include "mlp_math.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t mlp_tensor_size(const mlp_shape *s, int i) {
  switch (i) {
    case 0:
      return (size_t)s->in * (size_t)s->h1;
    case 1:
      return (size_t)s->h1;
    case 2:
      return (size_t)s->h1 * (size_t)s->h2;
    case 3:
      return (size_t)s->h2;
    case 4:
      return (size_t)s->h2 * (size_t)s->out;
    case 5:
      return (size_t)s->out;
    default:
      return 0;
  }
}

void mlp_data_free(mlp_data *d) {
  free(d->x);
  free(d->y);
  memset(d, 0, sizeof *d);
}

/* ================================================================ the dataset */

/* Draws n examples: a class uniformly, then the class centre plus Gaussian noise. */
static void draw_examples(ckpt_numpy_rng *rng, const double *centres, int dim, int classes, int n,
                          mlp_data *d) {
  /* Clusters overlap (noise larger than half the typical centre distance per axis), so the
   * validation loss has something to say and does not drop to zero. */
  const double noise = 2.2;
  for (int r = 0; r < n; r++) {
    int32_t y = (int32_t)(ckpt_numpy_rng_next_u32(rng) % (uint32_t)classes);
    d->y[r] = y;
    for (int i = 0; i < dim; i++)
      d->x[(size_t)r * (size_t)dim + (size_t)i] =
          (float)(centres[(size_t)y * (size_t)dim + (size_t)i] +
                  noise * ckpt_numpy_rng_next_gaussian(rng));
  }
}

static ckpt_status data_alloc(int n, int dim, mlp_data *d, ckpt_error *err) {
  d->n = n;
  d->dim = dim;
  d->x = malloc((size_t)n * (size_t)dim * sizeof *d->x);
  d->y = malloc((size_t)n * sizeof *d->y);
  if (d->x == NULL || d->y == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory for %d examples of %d features", n, dim);
  return CKPT_OK;
}

ckpt_status mlp_data_make(uint32_t seed, int dim, int classes, int n_train, int n_val,
                          mlp_data *train, mlp_data *val, ckpt_error *err) {
  memset(train, 0, sizeof *train);
  memset(val, 0, sizeof *val);
  if (dim <= 0 || classes <= 0 || n_train <= 0 || n_val <= 0)
    return ckpt_error_set(err, CKPT_EINVAL,
                          "dataset: dim %d, classes %d, n_train %d and n_val %d must be positive",
                          dim, classes, n_train, n_val);
  ckpt_numpy_rng rng;
  ckpt_numpy_rng_seed(&rng, seed);
  double *centres = malloc((size_t)classes * (size_t)dim * sizeof *centres);
  if (centres == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory for %d class centres", classes);
  for (size_t i = 0; i < (size_t)classes * (size_t)dim; i++)
    centres[i] = ckpt_numpy_rng_next_gaussian(&rng);
  ckpt_status st = data_alloc(n_train, dim, train, err);
  if (st == CKPT_OK)
    st = data_alloc(n_val, dim, val, err);
  if (st == CKPT_OK) {
    draw_examples(&rng, centres, dim, classes, n_train, train);
    draw_examples(&rng, centres, dim, classes, n_val, val);
  } else {
    mlp_data_free(train);
    mlp_data_free(val);
  }
  free(centres);
  return st;
}

/* ================================================================ scratch memory */

void mlp_work_free(mlp_work *w) {
  float **bufs[] = {&w->x, &w->a1, &w->h1, &w->a2, &w->h2, &w->z, &w->dz, &w->dh2, &w->dh1};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
    free(*bufs[i]);
  for (int i = 0; i < MLP_TENSORS; i++)
    free(w->grad.t[i]);
  free(w->y);
  free(w->idx);
  memset(w, 0, sizeof *w);
}

ckpt_status mlp_work_new(const mlp_shape *shape, int batch, mlp_work *w, ckpt_error *err) {
  memset(w, 0, sizeof *w);
  w->shape = *shape;
  w->batch = batch;
  size_t b = (size_t)batch;
  w->x = malloc(b * (size_t)shape->in * sizeof(float));
  w->a1 = malloc(b * (size_t)shape->h1 * sizeof(float));
  w->h1 = malloc(b * (size_t)shape->h1 * sizeof(float));
  w->dh1 = malloc(b * (size_t)shape->h1 * sizeof(float));
  w->a2 = malloc(b * (size_t)shape->h2 * sizeof(float));
  w->h2 = malloc(b * (size_t)shape->h2 * sizeof(float));
  w->dh2 = malloc(b * (size_t)shape->h2 * sizeof(float));
  w->z = malloc(b * (size_t)shape->out * sizeof(float));
  w->dz = malloc(b * (size_t)shape->out * sizeof(float));
  w->y = malloc(b * sizeof(int32_t));
  w->idx = malloc(b * sizeof(int32_t));
  bool ok = w->x && w->a1 && w->h1 && w->dh1 && w->a2 && w->h2 && w->dh2 && w->z && w->dz && w->y &&
            w->idx;
  for (int i = 0; i < MLP_TENSORS && ok; i++) {
    w->grad.t[i] = malloc(mlp_tensor_size(shape, i) * sizeof(float));
    ok = w->grad.t[i] != NULL;
  }
  if (!ok) {
    mlp_work_free(w);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory for a batch of %d", batch);
  }
  return CKPT_OK;
}

/* ================================================================ layers */

/* out[r][j] = bias[j] + sum_i x[r][i] * w[i][j], summed in increasing i. */
static void dense(const float *x, int rows, int nin, const float *w, const float *bias, int nout,
                  float *out) {
  for (int r = 0; r < rows; r++) {
    float *o = out + (size_t)r * (size_t)nout;
    for (int j = 0; j < nout; j++)
      o[j] = bias[j];
    for (int i = 0; i < nin; i++) {
      float xi = x[(size_t)r * (size_t)nin + (size_t)i];
      const float *wi = w + (size_t)i * (size_t)nout;
      for (int j = 0; j < nout; j++)
        o[j] += xi * wi[j];
    }
  }
}

static void relu(const float *a, size_t n, float *h) {
  for (size_t i = 0; i < n; i++)
    h[i] = a[i] > 0.0f ? a[i] : 0.0f;
}

/* Gradients of a dense layer given d = dLoss/dout: dw = x^T d, db = column sums of d (both in
 * increasing r), and, when dx is not NULL, dx = d w^T (in increasing j). */
static void dense_backward(const float *x, int rows, int nin, const float *w, int nout,
                           const float *d, float *dw, float *db, float *dx) {
  memset(dw, 0, (size_t)nin * (size_t)nout * sizeof *dw);
  memset(db, 0, (size_t)nout * sizeof *db);
  for (int r = 0; r < rows; r++) {
    const float *dr = d + (size_t)r * (size_t)nout;
    for (int j = 0; j < nout; j++)
      db[j] += dr[j];
    for (int i = 0; i < nin; i++) {
      float xi = x[(size_t)r * (size_t)nin + (size_t)i];
      float *dwi = dw + (size_t)i * (size_t)nout;
      for (int j = 0; j < nout; j++)
        dwi[j] += xi * dr[j];
    }
  }
  if (dx == NULL)
    return;
  for (int r = 0; r < rows; r++) {
    const float *dr = d + (size_t)r * (size_t)nout;
    for (int i = 0; i < nin; i++) {
      const float *wi = w + (size_t)i * (size_t)nout;
      float acc = 0.0f;
      for (int j = 0; j < nout; j++)
        acc += dr[j] * wi[j];
      dx[(size_t)r * (size_t)nin + (size_t)i] = acc;
    }
  }
}

/* Forward pass of rows examples already copied into w->x; logits in w->z. */
static void forward(const mlp_tensors *p, int rows, mlp_work *w) {
  const mlp_shape *s = &w->shape;
  dense(w->x, rows, s->in, p->t[0], p->t[1], s->h1, w->a1);
  relu(w->a1, (size_t)rows * (size_t)s->h1, w->h1);
  dense(w->h1, rows, s->h1, p->t[2], p->t[3], s->h2, w->a2);
  relu(w->a2, (size_t)rows * (size_t)s->h2, w->h2);
  dense(w->h2, rows, s->h2, p->t[4], p->t[5], s->out, w->z);
}

/* Cross-entropy of one row of logits against label y; with dz non-NULL also softmax - onehot,
 * scaled by scale. *argmax gets the predicted class. */
static float softmax_xent(const float *z, int n, int32_t y, float scale, float *dz, int *argmax) {
  float max = z[0];
  int best = 0;
  for (int k = 1; k < n; k++) {
    if (z[k] > max) {
      max = z[k];
      best = k;
    }
  }
  float sum = 0.0f;
  for (int k = 0; k < n; k++)
    sum += expf(z[k] - max);
  float log_sum = logf(sum);
  if (dz != NULL) {
    for (int k = 0; k < n; k++) {
      float prob = expf(z[k] - max - log_sum);
      dz[k] = (prob - (k == y ? 1.0f : 0.0f)) * scale;
    }
  }
  if (argmax != NULL)
    *argmax = best;
  return log_sum - (z[y] - max);
}

static void gather(const mlp_data *data, const int32_t *idx, int rows, mlp_work *w) {
  for (int r = 0; r < rows; r++) {
    memcpy(w->x + (size_t)r * (size_t)data->dim, data->x + (size_t)idx[r] * (size_t)data->dim,
           (size_t)data->dim * sizeof(float));
    w->y[r] = data->y[idx[r]];
  }
}

float mlp_forward_backward(const mlp_tensors *p, const mlp_data *data, const int32_t *idx,
                           mlp_work *w) {
  const mlp_shape *s = &w->shape;
  int rows = w->batch;
  gather(data, idx, rows, w);
  forward(p, rows, w);
  float loss = 0.0f;
  float scale = 1.0f / (float)rows;
  for (int r = 0; r < rows; r++) {
    size_t o = (size_t)r * (size_t)s->out;
    loss += softmax_xent(w->z + o, s->out, w->y[r], scale, w->dz + o, NULL);
  }
  dense_backward(w->h2, rows, s->h2, p->t[4], s->out, w->dz, w->grad.t[4], w->grad.t[5], w->dh2);
  for (size_t i = 0; i < (size_t)rows * (size_t)s->h2; i++)
    if (w->a2[i] <= 0.0f)
      w->dh2[i] = 0.0f;
  dense_backward(w->h1, rows, s->h1, p->t[2], s->h2, w->dh2, w->grad.t[2], w->grad.t[3], w->dh1);
  for (size_t i = 0; i < (size_t)rows * (size_t)s->h1; i++)
    if (w->a1[i] <= 0.0f)
      w->dh1[i] = 0.0f;
  dense_backward(w->x, rows, s->in, p->t[0], s->h1, w->dh1, w->grad.t[0], w->grad.t[1], NULL);
  return loss * scale;
}

void mlp_adam_update(const mlp_shape *s, const mlp_adam *opt, int64_t t, mlp_tensors *params,
                     mlp_tensors *m, mlp_tensors *v, const mlp_tensors *grad) {
  /* Bias corrections in double, rounded once: the same t always gives the same floats. */
  float c1 = (float)(1.0 - pow((double)opt->beta1, (double)t));
  float c2 = (float)(1.0 - pow((double)opt->beta2, (double)t));
  for (int k = 0; k < MLP_TENSORS; k++) {
    size_t n = mlp_tensor_size(s, k);
    float *pk = params->t[k], *mk = m->t[k], *vk = v->t[k];
    const float *gk = grad->t[k];
    for (size_t i = 0; i < n; i++) {
      float g = gk[i];
      mk[i] = opt->beta1 * mk[i] + (1.0f - opt->beta1) * g;
      vk[i] = opt->beta2 * vk[i] + (1.0f - opt->beta2) * g * g;
      float mhat = mk[i] / c1, vhat = vk[i] / c2;
      pk[i] -= opt->lr * mhat / (sqrtf(vhat) + opt->eps);
    }
  }
}

float mlp_evaluate(const mlp_tensors *p, const mlp_data *data, mlp_work *w, float *accuracy) {
  const mlp_shape *s = &w->shape;
  float total = 0.0f;
  int correct = 0;
  int32_t *idx = w->idx;
  for (int start = 0; start < data->n; start += w->batch) {
    int rows = data->n - start < w->batch ? data->n - start : w->batch;
    for (int r = 0; r < rows; r++)
      idx[r] = start + r;
    gather(data, idx, rows, w);
    forward(p, rows, w);
    for (int r = 0; r < rows; r++) {
      int pred;
      total += softmax_xent(w->z + (size_t)r * (size_t)s->out, s->out, w->y[r], 1.0f, NULL, &pred);
      correct += pred == w->y[r];
    }
  }
  if (accuracy != NULL)
    *accuracy = (float)correct / (float)data->n;
  return total / (float)data->n;
}
