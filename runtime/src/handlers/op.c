/* op.c — the per-operation context and its queue of deferred work (see op.h). */
#include "handlers/op.h"

#include <stdint.h>

#include "storage/zarr_io.h"
#include "util/crc32c.h"

#include <stdlib.h>
#include <string.h>

ckpt_status ckpt_op_init(ckpt_op *op, ckpt_io *io, bool zero_copy, ckpt_atomicity atomicity,
                         ckpt_error *err) {
  if (op == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_op_init: op is NULL");
  memset(op, 0, sizeof *op);
  op->io = io != NULL ? io : ckpt_io_default();
  op->zero_copy = zero_copy;
  op->atomicity = atomicity;
  int rc = pthread_mutex_init(&op->mu, NULL);
  if (rc != 0)
    return ckpt_error_errno(err, rc, "cannot create the lock of a save/restore");
  return CKPT_OK;
}

static void release_agreed(ckpt_op *op) {
  for (size_t i = 0; i < op->n_agreed; i++)
    if (op->agreed[i].release != NULL)
      op->agreed[i].release(op->agreed[i].arg);
  free(op->agreed);
  op->agreed = NULL;
  op->n_agreed = op->cap_agreed = 0;
}

void ckpt_op_destroy(ckpt_op *op) {
  if (op == NULL)
    return;
  ckpt_op_cancel(op);
  release_agreed(op);
  free(op->jobs);
  op->jobs = NULL;
  op->cap_jobs = 0;
  op->head = 0;
  ckpt_path_set_clear(&op->durable);
  cJSON_Delete(op->files);
  op->files = NULL;
  pthread_mutex_destroy(&op->mu);
}

ckpt_status ckpt_op_new(ckpt_io *io, bool zero_copy, ckpt_atomicity atomicity, ckpt_op **out,
                        ckpt_error *err) {
  if (out == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_op_new: out is NULL");
  *out = NULL;
  ckpt_op *op = malloc(sizeof *op);
  if (op == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory creating an op");
  ckpt_status st = ckpt_op_init(op, io, zero_copy, atomicity, err);
  if (st != CKPT_OK) {
    free(op);
    return st;
  }
  *out = op;
  return CKPT_OK;
}

void ckpt_op_free(ckpt_op *op) {
  if (op == NULL)
    return;
  ckpt_op_destroy(op);
  free(op);
}

ckpt_io *ckpt_op_io(ckpt_op *op) {
  return op != NULL ? op->io : ckpt_io_default();
}

bool ckpt_op_zero_copy(const ckpt_op *op) {
  return op != NULL && op->zero_copy;
}

ckpt_atomicity ckpt_op_atomicity(const ckpt_op *op) {
  return op != NULL ? op->atomicity : CKPT_ATOMICITY_RENAME;
}

void ckpt_op_set_group(ckpt_op *op, ckpt_process_group *pg, int primary) {
  if (op == NULL)
    return;
  op->pg = pg;
  op->primary = primary;
}

ckpt_process_group *ckpt_op_group(const ckpt_op *op) {
  return op != NULL ? op->pg : NULL;
}

bool ckpt_op_multiprocess(const ckpt_op *op) {
  return op != NULL && ckpt_process_group_size(op->pg) > 1;
}

bool ckpt_op_is_primary(const ckpt_op *op) {
  return op == NULL || op->pg == NULL || ckpt_process_group_rank(op->pg) == op->primary;
}

bool ckpt_op_writes_shared(const ckpt_op *op) {
  return !ckpt_op_multiprocess(op) || ckpt_op_is_primary(op);
}

int ckpt_op_primary(const ckpt_op *op) {
  return op != NULL && op->pg != NULL ? op->primary : 0;
}

ckpt_status ckpt_op_defer_agreed(ckpt_op *op, ckpt_deferred_fn run, void *arg,
                                 void (*release)(void *), ckpt_error *err) {
  if (op == NULL || run == NULL) {
    if (release != NULL)
      release(arg);
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_op_defer_agreed: %s is NULL",
                          op == NULL ? "op" : "run");
  }
  pthread_mutex_lock(&op->mu);
  if (op->n_agreed == op->cap_agreed) {
    size_t ncap = op->cap_agreed ? op->cap_agreed * 2 : 8;
    ckpt_deferred_job *nj = realloc(op->agreed, ncap * sizeof *nj);
    if (nj == NULL) {
      pthread_mutex_unlock(&op->mu);
      if (release != NULL)
        release(arg);
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory queueing deferred work");
    }
    op->agreed = nj;
    op->cap_agreed = ncap;
  }
  op->agreed[op->n_agreed++] = (ckpt_deferred_job){run, arg, release};
  pthread_mutex_unlock(&op->mu);
  return CKPT_OK;
}

ckpt_status ckpt_op_run_agreed(ckpt_op *op, ckpt_error *err) {
  if (op == NULL)
    return CKPT_OK;
  ckpt_status first = CKPT_OK;
  /* Jobs queue no more agreed work while these run (they run after every handler's save). */
  for (size_t i = 0; i < op->n_agreed; i++) {
    ckpt_deferred_job *job = &op->agreed[i];
    ckpt_error local = CKPT_ERROR_INIT;
    ckpt_status st = job->run(job->arg, first == CKPT_OK ? err : &local);
    if (st != CKPT_OK && first == CKPT_OK) {
      first = st;
      op->agreed_failed = true;
      if (err != NULL && err->code == CKPT_OK)
        ckpt_error_set(err, st, "deferred save work failed (%s)", ckpt_status_text(st));
    }
  }
  release_agreed(op);
  return first;
}

bool ckpt_op_agreed_failed(const ckpt_op *op) {
  return op != NULL && op->agreed_failed;
}

void ckpt_op_set_engine(ckpt_op *op, ckpt_engine *engine) {
  if (op != NULL)
    op->engine = engine;
}

ckpt_engine *ckpt_op_engine(const ckpt_op *op) {
  return op != NULL ? op->engine : NULL;
}

ckpt_status ckpt_op_defer(ckpt_op *op, ckpt_deferred_fn run, void *arg, void (*release)(void *),
                          ckpt_error *err) {
  if (op == NULL || run == NULL) {
    if (release != NULL)
      release(arg);
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_op_defer: %s is NULL", op == NULL ? "op" : "run");
  }
  pthread_mutex_lock(&op->mu);
  if (op->n_jobs == op->cap_jobs) {
    size_t ncap = op->cap_jobs ? op->cap_jobs * 2 : 8;
    ckpt_deferred_job *nj = realloc(op->jobs, ncap * sizeof *nj);
    if (nj == NULL) {
      pthread_mutex_unlock(&op->mu);
      if (release != NULL)
        release(arg);
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory queueing deferred work");
    }
    op->jobs = nj;
    op->cap_jobs = ncap;
  }
  op->jobs[op->n_jobs++] = (ckpt_deferred_job){run, arg, release};
  pthread_mutex_unlock(&op->mu);
  return CKPT_OK;
}

/* Takes the oldest job off the queue; false when it is empty. */
static bool pop_front(ckpt_op *op, ckpt_deferred_job *job) {
  pthread_mutex_lock(&op->mu);
  bool have = op->head < op->n_jobs;
  if (have) {
    *job = op->jobs[op->head++];
    if (op->head == op->n_jobs)
      op->head = op->n_jobs = 0; /* reuse the array from the start */
  }
  pthread_mutex_unlock(&op->mu);
  return have;
}

ckpt_status ckpt_op_run_deferred(ckpt_op *op, ckpt_error *err) {
  if (op == NULL)
    return CKPT_OK;
  ckpt_status first = CKPT_OK;
  ckpt_deferred_job job;
  while (pop_front(op, &job)) {
    if (first == CKPT_OK) {
      ckpt_status st = job.run(job.arg, err);
      if (st != CKPT_OK) {
        first = st;
        /* A job that failed without saying why still leaves a message for the caller. */
        if (err != NULL && err->code == CKPT_OK)
          ckpt_error_set(err, st, "deferred save work failed (%s)", ckpt_status_text(st));
      }
    }
    if (job.release != NULL)
      job.release(job.arg);
  }
  return first;
}

void ckpt_op_cancel(ckpt_op *op) {
  if (op == NULL)
    return;
  ckpt_deferred_job job;
  while (pop_front(op, &job)) {
    if (job.release != NULL)
      job.release(job.arg);
  }
}

void ckpt_op_note_durable(ckpt_op *op, const char *path) {
  if (op == NULL || path == NULL)
    return;
  pthread_mutex_lock(&op->mu);
  (void)ckpt_path_set_add(&op->durable, path); /* out of memory: the commit fsyncs it */
  pthread_mutex_unlock(&op->mu);
}

void ckpt_op_note_file(ckpt_op *op, const char *path, const void *data, size_t n) {
  if (op == NULL || path == NULL)
    return;
  uint32_t crc = ckpt_crc32c(0, data, n);
  pthread_mutex_lock(&op->mu);
  if (op->files == NULL)
    op->files = cJSON_CreateObject();
  if (op->files != NULL) {
    cJSON_DeleteItemFromObjectCaseSensitive(op->files, path); /* written again: the last */
    if (!ckpt_checksums_add_chunk(op->files, path, crc, n))
      op->files_lost = true;
  } else {
    op->files_lost = true;
  }
  pthread_mutex_unlock(&op->mu);
}

ckpt_status ckpt_op_check_file(const ckpt_op *op, const char *path, const void *data, size_t n,
                               ckpt_error *err) {
  ckpt_file_sum sum = {false, 0, 0};
  if (data != NULL)
    ckpt_file_sum_of(&sum, data, n);
  return ckpt_op_check_sum(op, path, &sum, err);
}

ckpt_status ckpt_op_check_sum(const ckpt_op *op, const char *path, const ckpt_file_sum *sum,
                              ckpt_error *err) {
  if (op == NULL || op->manifest == NULL || op->manifest_dir == NULL)
    return CKPT_OK;
  size_t dl = strlen(op->manifest_dir);
  if (strncmp(path, op->manifest_dir, dl) != 0 || path[dl] != '/')
    return CKPT_OK;
  return ckpt_checksums_check_file(op->manifest, op->manifest_dir, path + dl + 1, sum, err);
}

void ckpt_op_durable_renamed(ckpt_op *op, const char *from, const char *to) {
  if (op == NULL || from == NULL || to == NULL)
    return;
  pthread_mutex_lock(&op->mu);
  (void)ckpt_path_set_rename(&op->durable, from, to); /* may only forget claims */
  pthread_mutex_unlock(&op->mu);
}

const ckpt_path_set *ckpt_op_durable(const ckpt_op *op) {
  return op != NULL ? &op->durable : NULL;
}

size_t ckpt_op_pending(ckpt_op *op) {
  if (op == NULL)
    return 0;
  pthread_mutex_lock(&op->mu);
  size_t n = op->n_jobs - op->head;
  pthread_mutex_unlock(&op->mu);
  return n;
}
