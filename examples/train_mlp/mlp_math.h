/* mlp_math.h — the numerical half of train_mlp: a synthetic dataset, a 3-layer ReLU MLP with a
 * softmax cross-entropy loss, its gradients, and Adam. Plain float32 C with one fixed order of
 * every sum and no threads, so two runs from the same state produce the same bits. Nothing here
 * knows about checkpoints: the parameters are borrowed pointers into the training state. */
#ifndef TRAIN_MLP_MATH_H
#define TRAIN_MLP_MATH_H

#include <stddef.h>
#include <stdint.h>

#include <ckpt/ckpt.h>

/* Layer sizes: in → h1 → h2 → out. */
typedef struct mlp_shape {
  int in, h1, h2, out;
} mlp_shape;

#define MLP_TENSORS 6

/* The six tensors of a model (or of its gradients or Adam moments), in the order w1, b1, w2, b2,
 * w3, b3; w1 is [in, h1] row-major, b1 [h1], and so on. Borrowed or owned as stated where the
 * struct is filled. */
typedef struct mlp_tensors {
  float *t[MLP_TENSORS];
} mlp_tensors;

/* Elements in tensor i of a model of this shape. */
size_t mlp_tensor_size(const mlp_shape *s, int i);

/* A labelled set of examples: n rows of dim features (row-major) and a class per row. Owned:
 * release with mlp_data_free. */
typedef struct mlp_data {
  int n, dim;
  float *x;
  int32_t *y;
} mlp_data;

void mlp_data_free(mlp_data *d);

/* The synthetic task: `classes` Gaussian clusters in `dim` dimensions whose centres, labels and
 * noise are all drawn from numpy's MT19937 seeded with seed, so the same seed always gives the
 * same data. The first n_train
 * examples become *train, the next n_val *val; both owned by the caller. */
ckpt_status mlp_data_make(uint32_t seed, int dim, int classes, int n_train, int n_val,
                          mlp_data *train, mlp_data *val, ckpt_error *err);

/* Scratch memory for one batch: activations and gradients. Owned: mlp_work_free. */
typedef struct mlp_work {
  mlp_shape shape;
  int batch;
  float *x, *a1, *h1, *a2, *h2, *z, *dz, *dh2, *dh1;
  int32_t *y, *idx;
  mlp_tensors grad; /* owned buffers, filled by mlp_forward_backward */
} mlp_work;

ckpt_status mlp_work_new(const mlp_shape *shape, int batch, mlp_work *w, ckpt_error *err);
void mlp_work_free(mlp_work *w);

/* Mean cross-entropy of the batch of examples data[idx[0..batch)], and its gradient with respect
 * to every parameter in w->grad. */
float mlp_forward_backward(const mlp_tensors *params, const mlp_data *data, const int32_t *idx,
                           mlp_work *w);

/* Adam hyper-parameters. */
typedef struct mlp_adam {
  float lr, beta1, beta2, eps;
} mlp_adam;

/* One Adam update with step number t (1 for the first update): moments m and v are updated in
 * place, then the parameters. */
void mlp_adam_update(const mlp_shape *s, const mlp_adam *opt, int64_t t, mlp_tensors *params,
                     mlp_tensors *m, mlp_tensors *v, const mlp_tensors *grad);

/* Mean cross-entropy over every example of data (processed in batches of w->batch, the last
 * one possibly shorter), and the fraction classified correctly in *accuracy (may be NULL). */
float mlp_evaluate(const mlp_tensors *params, const mlp_data *data, mlp_work *w, float *accuracy);

#endif
