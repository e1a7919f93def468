/* checkpointing.c — the CheckpointManager as train_mlp drives it (see checkpointing.h): the
 * manager's options (retention "K best by val_loss + the latest"), the save with its metrics,
 * the restore of the latest step, and the I/O stall used to kill the process with a save in
 * flight. */
#include "checkpointing.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "trainer_state.h"

/* ================================================================ the stall */

/* The thread that drives the manager. Its own I/O is never held, only the background save's,
 * so the process keeps training until it needs the stalled save to be finished. */
static _Thread_local bool on_driver_thread;
static atomic_llong stall_step = -1; /* the save being stalled; -1 while none is */
static atomic_bool stall_announced;

/* The fault hook of the manager's I/O layer (ckpt_io_set_fault): it never makes an operation
 * fail; while a stall is armed, it holds the first background operation of the save for good
 * and says so on stderr (the line tests and the demo wait for before sending SIGKILL). */
static int stall_hook(void *arg, ckpt_io_op op, const char *path) {
  (void)arg;
  long long step = atomic_load(&stall_step);
  if (step < 0 || on_driver_thread)
    return 0;
  if (!atomic_exchange(&stall_announced, true)) {
    char line[512];
    int n = snprintf(line, sizeof line,
                     "train_mlp: stalled: the save of step %lld is in flight, holding its %s "
                     "of %s; waiting to be killed\n",
                     step, ckpt_io_op_name(op), path != NULL ? path : "?");
    if (n > 0) {
      size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
      ssize_t w = write(STDERR_FILENO, line, len); /* unbuffered, so it is out before a kill */
      (void)w;
    }
  }
  for (;;) {
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

/* ================================================================ open / close */

ckpt_status trainer_ckpt_open(trainer_ckpt *c, const trainer_ckpt_options *o, ckpt_error *err) {
  memset(c, 0, sizeof *c);
  c->stall_save_at = o->stall_save_at;
  on_driver_thread = true;
  ckpt_status st = ckpt_io_new(&c->io, err);
  if (st != CKPT_OK)
    return st;
  if (o->stall_save_at >= 0)
    ckpt_io_set_fault(c->io, stall_hook, NULL);

  ckpt_manager_options mo = CKPT_MANAGER_OPTIONS_INIT; /* Orbax's defaults, async included */
  mo.save_interval_steps = o->save_every;
  mo.best_metric = TRAINER_METRIC;
  mo.best_mode = CKPT_BEST_MODE_MIN;
  /* AnyPreservationPolicy([BestN(val_loss, min, K), LatestN(1)]): the K best steps and the
   * latest, which resuming needs even when its validation loss is worse than the K best. */
  mo.max_to_keep = o->keep;
  mo.keep_latest_n = 1;
  /* A process killed mid-save leaves <step>.orbax-checkpoint-tmp behind: never a step (the
   * manager lists only finalized ones), but clutter that the restart removes. */
  mo.cleanup_tmp_directories = true;
  mo.io = c->io;
  st = ckpt_manager_new(o->dir, &mo, &c->m, err);
  if (st != CKPT_OK) {
    ckpt_io_free(c->io);
    c->io = NULL;
  }
  return st;
}

ckpt_status trainer_ckpt_close(trainer_ckpt *c, ckpt_error *err) {
  ckpt_status st = ckpt_manager_close(c->m, err);
  c->m = NULL;
  ckpt_io_free(c->io);
  c->io = NULL;
  return st;
}

bool trainer_ckpt_should_save(const trainer_ckpt *c, int64_t step) {
  return ckpt_manager_should_save(c->m, step);
}

bool trainer_ckpt_latest(const trainer_ckpt *c, int64_t *step) {
  return ckpt_manager_latest_step(c->m, step);
}

bool trainer_ckpt_best(const trainer_ckpt *c, int64_t *step) {
  return ckpt_manager_best_step(c->m, step);
}

ckpt_status trainer_ckpt_finish(trainer_ckpt *c, ckpt_error *err) {
  return ckpt_manager_wait_until_finished(c->m, err);
}

/* ================================================================ save */

ckpt_status trainer_ckpt_save(trainer_ckpt *c, const mlp_TrainState *s, float val_loss,
                              float train_loss, ckpt_error *err) {
  ckpt_status st = CKPT_OK;
  if (s->step == c->stall_save_at) {
    /* Wait for the previous save (and its deletions) first, so only this one's I/O is held. */
    st = ckpt_manager_wait_until_finished(c->m, err);
    if (st != CKPT_OK)
      return st;
    atomic_store(&stall_step, (long long)s->step);
  }
  cJSON *metrics = cJSON_CreateObject();
  mlp_TrainStateSave *args = mlp_TrainStateSave_new();
  if (metrics == NULL || args == NULL ||
      cJSON_AddNumberToObject(metrics, TRAINER_METRIC, (double)val_loss) == NULL ||
      cJSON_AddNumberToObject(metrics, "train_loss", (double)train_loss) == NULL) {
    cJSON_Delete(metrics);
    ckpt_args_delete(args != NULL ? &args->base : NULL);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory saving step %" PRId64, s->step);
  }
  args->item = s; /* borrowed: the save snapshots the arrays before it returns */
  bool saved = false;
  /* force: the caller decides when to save (trainer_ckpt_should_save, or the final step). */
  st = ckpt_manager_save(c->m, s->step, &args->base, metrics, true, &saved, err);
  ckpt_args_delete(&args->base);
  cJSON_Delete(metrics);
  return st;
}

/* ================================================================ restore */

ckpt_status trainer_ckpt_restore_latest(trainer_ckpt *c, ckpt_value *owner, mlp_TrainState **state,
                                        bool *found, ckpt_error *err) {
  *state = NULL;
  *found = false;
  int64_t step;
  if (!ckpt_manager_latest_step(c->m, &step))
    return CKPT_OK;
  mlp_TrainStateRestore *args = mlp_TrainStateRestore_new();
  if (args == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory restoring");
  args->strict = true; /* shapes must be exactly the saved ones */
  ckpt_value v = {0};
  ckpt_status st = ckpt_manager_restore(c->m, step, &args->base, &v, err);
  ckpt_args_delete(&args->base);
  if (st != CKPT_OK) {
    ckpt_error_prefix(err, "restoring step %" PRId64 ": ", step);
    return st;
  }
  if (v.kind != CKPT_VALUE_RECORD || v.u.record.desc != &mlp_TrainState_desc) {
    ckpt_value_free(&v);
    return ckpt_error_set(err, CKPT_ETYPE, "restoring step %" PRId64 ": got a %s, not a TrainState",
                          step, ckpt_value_kind_name(v.kind));
  }
  mlp_TrainState *s = v.u.record.data;
  st = trainer_state_check(s, err);
  if (st == CKPT_OK && s->step != step)
    st = ckpt_error_set(err, CKPT_ECORRUPT,
                        "TrainState.step is %" PRId64 " in the directory of step %" PRId64, s->step,
                        step);
  if (st != CKPT_OK) {
    ckpt_error_prefix(err, "step %" PRId64 " of '%s': ", step, ckpt_manager_directory(c->m));
    ckpt_value_free(&v);
    return st;
  }
  *owner = v;
  *state = s;
  *found = true;
  return CKPT_OK;
}
