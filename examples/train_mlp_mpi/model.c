/* model.c — see model.h. Plain float32 C, one fixed order for every sum, no threads. */
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int model_rows(const model_dims *d, int t) {
  return t == 0 ? d->in : t == 1 ? d->h : t == 2 ? d->h : d->out;
}

int model_row_len(const model_dims *d, int t) {
  return t == 0 ? d->h : t == 2 ? d->out : 1;
}

void model_block(int rows, int parts, int part, int *first, int *count) {
  int base = rows / parts, extra = rows % parts;
  *first = part * base + (part < extra ? part : extra);
  *count = base + (part < extra ? 1 : 0);
}

ckpt_status model_data_make(uint32_t seed, int n, int dim, int classes, float **x, int32_t **y,
                            ckpt_error *err) {
  *x = malloc((size_t)n * (size_t)dim * sizeof **x);
  *y = malloc((size_t)n * sizeof **y);
  float *centre = malloc((size_t)classes * (size_t)dim * sizeof *centre);
  ckpt_numpy_rng *rng = malloc(sizeof *rng);
  if (*x == NULL || *y == NULL || centre == NULL || rng == NULL) {
    free(*x);
    free(*y);
    free(centre);
    free(rng);
    *x = NULL;
    *y = NULL;
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory making %d examples", n);
  }
  ckpt_numpy_rng_seed(rng, seed);
  for (int i = 0; i < classes * dim; i++)
    centre[i] = (float)(0.5 * ckpt_numpy_rng_next_gaussian(rng));
  for (int e = 0; e < n; e++) {
    int c = (int)(ckpt_numpy_rng_next_u32(rng) % (uint32_t)classes);
    (*y)[e] = c;
    for (int i = 0; i < dim; i++)
      (*x)[(size_t)e * (size_t)dim + (size_t)i] =
          centre[c * dim + i] + (float)ckpt_numpy_rng_next_gaussian(rng);
  }
  free(centre);
  free(rng);
  return CKPT_OK;
}

/* Adam on `n` elements of one row block. */
static void adam(float *p, float *m, float *v, const float *g, int n, const model_adam *o,
                 float corr1, float corr2) {
  for (int i = 0; i < n; i++) {
    m[i] = o->beta1 * m[i] + (1.0f - o->beta1) * g[i];
    v[i] = o->beta2 * v[i] + (1.0f - o->beta2) * g[i] * g[i];
    float mhat = m[i] / corr1, vhat = v[i] / corr2;
    p[i] -= o->lr * mhat / (sqrtf(vhat) + o->eps);
  }
}

float model_train_step(const model_dims *d, const model_full *full, const float *x,
                       const int32_t *y, const int32_t *idx, int batch, const model_adam *opt,
                       int64_t t, model_local *local) {
  const int in = d->in, h = d->h, out = d->out;
  const float *w1 = full->t[0], *b1 = full->t[1], *w2 = full->t[2], *b2 = full->t[3];
  float *a1 = malloc((size_t)batch * (size_t)h * sizeof *a1);   /* pre-activation */
  float *hid = malloc((size_t)batch * (size_t)h * sizeof *hid); /* relu(a1) */
  float *dz = malloc((size_t)batch * (size_t)out * sizeof *dz); /* d loss / d logits */
  float *da = malloc((size_t)batch * (size_t)h * sizeof *da);   /* d loss / d a1 */
  /* one tensor's gradient rows: at most max(in, h) rows of at most max(h, out) */
  float *g = malloc((size_t)(in > h ? in : h) * (size_t)(h > out ? h : out) * sizeof *g);
  float *z = malloc((size_t)out * sizeof *z);
  float loss = NAN;
  if (a1 == NULL || hid == NULL || dz == NULL || da == NULL || g == NULL || z == NULL)
    goto out;

  /* Forward and the activation gradients, whole, on every rank. */
  double total = 0.0;
  for (int b = 0; b < batch; b++) {
    const float *xb = x + (size_t)idx[b] * (size_t)in;
    for (int j = 0; j < h; j++) {
      float s = b1[j];
      for (int i = 0; i < in; i++)
        s += xb[i] * w1[i * h + j];
      a1[b * h + j] = s;
      hid[b * h + j] = s > 0.0f ? s : 0.0f;
    }
    float zmax = -INFINITY;
    for (int k = 0; k < out; k++) {
      float s = b2[k];
      for (int j = 0; j < h; j++)
        s += hid[b * h + j] * w2[j * out + k];
      z[k] = s;
      zmax = s > zmax ? s : zmax;
    }
    float sum = 0.0f;
    for (int k = 0; k < out; k++)
      sum += expf(z[k] - zmax);
    for (int k = 0; k < out; k++) {
      float p = expf(z[k] - zmax) / sum;
      dz[b * out + k] = (p - (k == y[idx[b]] ? 1.0f : 0.0f)) / (float)batch;
    }
    total += (double)(logf(sum) + zmax - z[y[idx[b]]]);
  }
  for (int b = 0; b < batch; b++)
    for (int j = 0; j < h; j++) {
      float s = 0.0f;
      for (int k = 0; k < out; k++)
        s += dz[b * out + k] * w2[j * out + k];
      da[b * h + j] = a1[b * h + j] > 0.0f ? s : 0.0f;
    }

  /* This rank's rows: their gradients (sums over the batch, in batch order) and Adam. */
  const float corr1 = 1.0f - powf(opt->beta1, (float)t);
  const float corr2 = 1.0f - powf(opt->beta2, (float)t);
  for (int tn = 0; tn < MODEL_TENSORS; tn++) {
    int len = model_row_len(d, tn);
    for (int r = 0; r < local->count[tn]; r++) {
      int row = local->first[tn] + r;
      for (int c = 0; c < len; c++) {
        float s = 0.0f;
        for (int b = 0; b < batch; b++) {
          const float *xb = x + (size_t)idx[b] * (size_t)in;
          if (tn == 0) /* w1[row][c] */
            s += xb[row] * da[b * h + c];
          else if (tn == 1) /* b1[row] */
            s += da[b * h + row];
          else if (tn == 2) /* w2[row][c] */
            s += hid[b * h + row] * dz[b * out + c];
          else /* b2[row] */
            s += dz[b * out + row];
        }
        g[r * len + c] = s;
      }
    }
    adam(local->p[tn], local->m[tn], local->v[tn], g, local->count[tn] * len, opt, corr1, corr2);
  }
  loss = (float)(total / batch);
out:
  free(a1);
  free(hid);
  free(dz);
  free(da);
  free(g);
  free(z);
  return loss;
}
