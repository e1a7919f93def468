/* model.h — the numerical half of train_mlp_mpi: a synthetic dataset, a 2-layer ReLU MLP
 * (IN → H → OUT, softmax cross-entropy) and Adam, with every tensor's rows split between the
 * ranks. Nothing here knows about MPI or checkpoints.
 *
 * Why the result does not depend on the number of ranks: every rank holds the whole model for
 * the forward and backward passes (the caller all-gathers the rows, an exact copy) and
 * computes the activations and their gradients whole, in one fixed order. The weight gradient
 * of a row, and its Adam update, are then computed by the rank that owns the row, with the
 * same loops over the batch as any other owner would run. No sum ever crosses ranks, so each
 * element of the result is the same float operations in the same order on 1, 2, 3 or 4 ranks. */
#ifndef TRAIN_MLP_MPI_MODEL_H
#define TRAIN_MLP_MPI_MODEL_H

#include <stdint.h>

#include <ckpt/ckpt.h>

/* The four tensors in order w1 [in, h], b1 [h], w2 [h, out], b2 [out] (row-major). */
#define MODEL_TENSORS 4

typedef struct model_dims {
  int in, h, out;
} model_dims;

/* Rows (dim 0) and elements per row of tensor t. */
int model_rows(const model_dims *d, int t);
int model_row_len(const model_dims *d, int t);

/* [first, first + count) of `rows` split into `parts` near-equal blocks: block `part`. */
void model_block(int rows, int parts, int part, int *first, int *count);

/* n examples of dim features and a class each: `classes` Gaussian clusters drawn from numpy's
 * MT19937 seeded with seed (the same seed always gives the same data). Owned by the caller:
 * free(*x), free(*y). */
ckpt_status model_data_make(uint32_t seed, int n, int dim, int classes, float **x, int32_t **y,
                            ckpt_error *err);

/* The whole model (every rank's copy, for the passes) and this rank's rows of everything. */
typedef struct model_full {
  float *t[MODEL_TENSORS];
} model_full;

/* This rank's rows: first row and count per tensor, and the row blocks of the parameters and
 * of Adam's two moments (borrowed: the shards of the checkpointed arrays). */
typedef struct model_local {
  int first[MODEL_TENSORS], count[MODEL_TENSORS];
  float *p[MODEL_TENSORS], *m[MODEL_TENSORS], *v[MODEL_TENSORS];
} model_local;

typedef struct model_adam {
  float lr, beta1, beta2, eps;
} model_adam;

/* One training step on the batch x[idx[0..batch)]: forward and backward with the whole model
 * `full`, then the gradient and Adam update (step number t, 1 for the first) of this rank's
 * rows in `local` only. Returns the batch's mean loss (the same on every rank). Scratch memory
 * is allocated per call; NaN when out of memory. */
float model_train_step(const model_dims *d, const model_full *full, const float *x,
                       const int32_t *y, const int32_t *idx, int batch, const model_adam *opt,
                       int64_t t, model_local *local);

#endif
