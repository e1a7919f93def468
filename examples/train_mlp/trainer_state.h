/* trainer_state.h — the generated mlp_TrainState as train_mlp uses it: creating step 0,
 * checking a restored state before trusting it, the data loader, and a fingerprint of the
 * whole state for bit-exact comparisons. */
#ifndef TRAIN_MLP_TRAINER_STATE_H
#define TRAIN_MLP_TRAINER_STATE_H

#include <stdint.h>

#include "mlp_math.h"
#include "train_state.ckpt.h"

/* Checks hyper-parameters a run can train with (positive sizes, the training set a multiple of
 * the batch, rates in range); errors name the field. */
ckpt_status trainer_hparams_check(const mlp_Hparams *hp, ckpt_error *err);

/* Fills an initialised (mlp_TrainState_init) state with step 0 for hp: rng seeded with
 * hp->init_seed, Glorot-uniform weights drawn from it, zero biases and moments, and the
 * loader at epoch 0 with a permutation drawn from rng. The state owns everything it gets
 * (release with mlp_TrainState_free). */
ckpt_status trainer_state_fresh(mlp_TrainState *s, const mlp_Hparams *hp, ckpt_error *err);

/* Checks a restored state against its own hparams: every array present with the shape the
 * hparams imply, a random state, a loader position inside the epoch and a permutation that
 * is one (so it can index the dataset safely). Errors name the field. */
ckpt_status trainer_state_check(const mlp_TrainState *s, ckpt_error *err);

/* Borrowed views of the parameters and the two Adam moments (valid while s holds its arrays). */
void trainer_state_views(mlp_TrainState *s, mlp_tensors *params, mlp_tensors *m, mlp_tensors *v);

mlp_shape trainer_shape(const mlp_Hparams *hp);
mlp_adam trainer_adam(const mlp_Hparams *hp);

/* The indices of the next batch (hparams.batch_size of them) into idx. At the end of an epoch
 * the loader moves to the next one and draws a new permutation from the state's rng first. */
void trainer_next_batch(mlp_TrainState *s, int32_t *idx);

/* FNV-1a 64 over everything the state holds (step, every array's bytes, the random state,
 * the loader, the hparams): equal fingerprints mean bit-identical states in practice. */
uint64_t trainer_state_fingerprint(const mlp_TrainState *s);

#endif
