/* checkpointing.h — train_mlp's use of the CheckpointManager: asynchronous saves every N
 * steps with the validation loss as the metric, retention that keeps the K best steps by
 * validation loss AND the latest step (which resuming needs), and restoring the latest step
 * into a TrainState.
 *
 * best_metric with max_to_keep = K alone (Orbax's best_fn=..., max_to_keep=K) keeps the K best
 * steps and nothing else, so the step just saved would be deleted whenever its validation loss
 * is worse than the K best, and a resume would go back to an older step. keep_latest_n = 1
 * (Orbax's LatestN(1) in an AnyPreservationPolicy) keeps it. See docs/example-train-mlp.md. */
#ifndef TRAIN_MLP_CHECKPOINTING_H
#define TRAIN_MLP_CHECKPOINTING_H

#include <stdbool.h>
#include <stdint.h>

#include "train_state.ckpt.h"

typedef struct trainer_ckpt_options {
  const char *dir;       /* the manager's directory (created if missing) */
  int64_t save_every;    /* save_interval_steps */
  int64_t keep;          /* K: the best K steps by val_loss are kept, plus the latest */
  int64_t stall_save_at; /* < 0: off. Otherwise the save of this step stalls forever in its
                          * background I/O (a disk that stops answering), so a test or the
                          * demo can kill the process with that save provably in flight. */
} trainer_ckpt_options;

typedef struct trainer_ckpt {
  ckpt_manager *m; /* owned */
  ckpt_io *io;     /* owned; outlives m */
  int64_t stall_save_at;
} trainer_ckpt;

/* The metric the manager ranks steps by. */
#define TRAINER_METRIC "val_loss"

/* Opens the manager on o->dir: asynchronous saves, best_metric val_loss (min), max_to_keep K,
 * keep_latest_n 1, leftovers of interrupted saves removed. Must be called on the thread that
 * will drive it. On failure *c holds nothing. Release with trainer_ckpt_close. */
ckpt_status trainer_ckpt_open(trainer_ckpt *c, const trainer_ckpt_options *o, ckpt_error *err);

/* The manager's should_save(step): every save_every steps, and the first step of a run with no
 * checkpoint yet (Orbax's InitialSavePolicy). */
bool trainer_ckpt_should_save(const trainer_ckpt *c, int64_t step);

/* Starts an asynchronous save of s as step s->step with metrics {"val_loss", "train_loss"}
 * (the manager first waits for the save in flight; retention runs once this one committed).
 * Returns once the state is snapshotted: s may change right away. Errors of the previous save
 * surface here. */
ckpt_status trainer_ckpt_save(trainer_ckpt *c, const mlp_TrainState *s, float val_loss,
                              float train_loss, ckpt_error *err);

/* Restores the latest step, if any: *found tells; then *state points into *owner (a
 * CKPT_VALUE_RECORD the caller releases with ckpt_value_free) and has passed
 * trainer_state_check, and its step equals the step directory's. */
ckpt_status trainer_ckpt_restore_latest(trainer_ckpt *c, ckpt_value *owner, mlp_TrainState **state,
                                        bool *found, ckpt_error *err);

/* The latest and the best (by val_loss) step; false when there is none. */
bool trainer_ckpt_latest(const trainer_ckpt *c, int64_t *step);
bool trainer_ckpt_best(const trainer_ckpt *c, int64_t *step);

/* Waits for the save in flight and its deletions; returns their error, if any. */
ckpt_status trainer_ckpt_finish(trainer_ckpt *c, ckpt_error *err);

/* Waits, closes the manager and frees the I/O layer; returns a pending error. */
ckpt_status trainer_ckpt_close(trainer_ckpt *c, ckpt_error *err);

#endif
