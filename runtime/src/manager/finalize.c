/* manager/finalize.c — what happens after a save's blocking part: wait for the commit, then
 * delete the steps retention no longer keeps (Orbax's _finalize / save_finalize thread).
 *
 * The order is the promise: a step is deleted only after the new one committed. An async save
 * runs this on its own thread, which first waits for the checkpointer's background commit; if
 * that failed, nothing is deleted. The thread touches only the checkpointer (which the
 * manager's thread leaves alone until it joins), the I/O layer and strings of its own; the
 * step list is updated on the manager's thread when it joins (mgr_join), so queries never race
 * with the thread. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "manager/manager_internal.h"

void mgr_finalize_free(mgr_finalize *f) {
  if (f == NULL)
    return;
  for (size_t i = 0; i < f->n_doomed; i++) {
    cJSON_Delete(f->doomed[i].metrics);
    free(f->doomed_paths != NULL ? f->doomed_paths[i] : NULL);
  }
  free(f->doomed);
  free(f->doomed_paths);
  free(f->deleted);
  free(f);
}

/* The manager's configuration is read-only after construction, so the thread may read it. */
typedef struct finalize_run {
  ckpt_manager *m;
  mgr_finalize *f;
} finalize_run;

static void run(ckpt_manager *m, mgr_finalize *f) {
  ckpt_error_clear(&f->save_err);
  ckpt_error_clear(&f->delete_err);
  f->save_status = CKPT_OK;
  f->delete_status = CKPT_OK;
  if (f->wait_for_checkpointer)
    f->save_status = ckpt_checkpointer_wait_until_finished(m->ckptr, &f->save_err);
  if (f->save_status != CKPT_OK)
    return; /* a failed save never costs a good step (an outcome every process shares) */
  /* Multi-process: only the primary deletes; the others learn what went (below). */
  for (size_t i = 0; mgr_is_primary(&m->cfg) && i < f->n_doomed; i++) {
    ckpt_error e = CKPT_ERROR_INIT;
    ckpt_status st = mgr_delete_step_dir(&m->cfg, f->doomed_paths[i], &f->deleted[i], &e);
    /* Keep going: one stuck directory should not keep the others. The first error wins. */
    if (st != CKPT_OK && f->delete_status == CKPT_OK) {
      f->delete_status = st;
      f->delete_err = e;
    }
  }
  if (m->cfg.pg != NULL) {
    /* The primary's deletions, for every process's step list (mgr_join): which went, and the
     * first error. n_doomed is the same everywhere (the primary's choice, broadcast). */
    ckpt_status bs = CKPT_OK;
    if (f->n_doomed > 0)
      bs = ckpt_process_group_broadcast(m->cfg.pg, m->cfg.primary, f->deleted,
                                        f->n_doomed * sizeof *f->deleted, &f->delete_err);
    f->delete_status = ckpt_process_group_share_outcome(
        m->cfg.pg, m->cfg.primary, bs != CKPT_OK ? bs : f->delete_status, &f->delete_err);
  }
}

static void *thread_main(void *arg) {
  finalize_run *r = arg;
  run(r->m, r->f);
  atomic_store(&r->f->done, true);
  free(r);
  return NULL;
}

ckpt_status mgr_finalize_start(ckpt_manager *m, mgr_finalize *f, ckpt_error *err) {
  atomic_init(&f->done, false);
  m->pending = f;
  if (f->wait_for_checkpointer) {
    finalize_run *r = malloc(sizeof *r);
    if (r != NULL) {
      *r = (finalize_run){m, f};
      if (pthread_create(&f->thread, NULL, thread_main, r) == 0) {
        f->thread_started = true;
        return CKPT_OK;
      }
      free(r);
    }
    /* No thread to be had: finish on this one rather than leave the save unfinished. */
  }
  run(m, f);
  atomic_store(&f->done, true);
  return mgr_join(m, err);
}

/* Copies a stored error into the caller's. Returns false (and copies nothing) when the caller's
 * error already holds one: the first error wins, and context must not be added to it. */
static bool forward(ckpt_error *err, ckpt_status st, const ckpt_error *from) {
  if (err == NULL || err->code != CKPT_OK)
    return false;
  ckpt_error_set(err, st, "%s", from->message);
  err->sys_errno = from->sys_errno;
  return true;
}

ckpt_status mgr_join(ckpt_manager *m, ckpt_error *err) {
  mgr_finalize *f = m->pending;
  if (f == NULL)
    return CKPT_OK;
  if (f->thread_started)
    pthread_join(f->thread, NULL);
  m->pending = NULL;
  ckpt_status result = CKPT_OK;
  ckpt_status st = CKPT_OK;
  if (f->save_status != CKPT_OK) {
    /* As Orbax: the step never came to be; the steps set aside for deletion are still there. */
    mgr_steps_remove(&m->steps, f->step);
    for (size_t i = 0; i < f->n_doomed && st == CKPT_OK; i++) {
      if (f->doomed[i].step == f->step)
        continue;
      st = mgr_steps_insert(&m->steps, f->doomed[i], err);
      f->doomed[i].metrics = NULL; /* moved */
    }
    if (forward(err, f->save_status, &f->save_err))
      ckpt_error_prefix(err, "CheckpointManager save of step %" PRId64 ": ", f->step);
    result = f->save_status;
  } else {
    for (size_t i = 0; i < f->n_doomed && st == CKPT_OK; i++) {
      /* A deletion that failed before the step stopped being a checkpoint leaves it listed. */
      bool fin = false;
      ckpt_error scratch = CKPT_ERROR_INIT;
      if (!f->deleted[i])
        mgr_step_finalized(&m->cfg, f->doomed_paths[i], &fin, &scratch);
      if (!fin)
        continue;
      st = mgr_steps_insert(&m->steps, f->doomed[i], err);
      f->doomed[i].metrics = NULL;
    }
    if (f->delete_status != CKPT_OK) {
      if (forward(err, f->delete_status, &f->delete_err))
        ckpt_error_prefix(err,
                          "step %" PRId64 " was saved, but deleting an old step failed: ", f->step);
      result = f->delete_status;
    }
  }
  mgr_finalize_free(f);
  return result != CKPT_OK ? result : st;
}

ckpt_status mgr_join_if_done(ckpt_manager *m, ckpt_error *err) {
  if (m->pending == NULL || !atomic_load(&m->pending->done))
    return CKPT_OK;
  return mgr_join(m, err);
}
