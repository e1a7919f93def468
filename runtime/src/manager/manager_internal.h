/* manager/manager_internal.h — the parts of the CheckpointManager (private to libckpt; tests
 * may include it).
 *
 *   manager.c     lifecycle, save, queries, delete, reload
 *   restore.c     restore: step mode, default restore args from the recorded typestrs
 *   steps.c       step names, strict parsing, discovery, tmp cleanup, step deletion
 *   retention.c   the AnyPreservationPolicy: which steps to delete after a save
 *   finalize.c    the work after a save committed (deletions), inline or on a thread
 *   metrics.c     the metrics item: Orbax's JsonCheckpointHandler(filename='metrics') */
#ifndef CKPT_SRC_MANAGER_MANAGER_INTERNAL_H
#define CKPT_SRC_MANAGER_MANAGER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ckpt/checkpointer.h"
#include "ckpt/manager.h"

/* Largest metrics file read back. */
#define MGR_METRICS_MAX_BYTES (64u << 20)
/* Longest step_format_fixed_length accepted (an int64 has 19 digits). */
#define MGR_MAX_STEP_DIGITS 64

/* The options after validation and defaults, with copies of everything borrowed. */
typedef struct mgr_config {
  char *dir; /* normalised, no trailing '/' */
  int64_t save_interval_steps;
  int64_t *save_on_steps; /* sorted */
  size_t n_save_on_steps;
  ckpt_manager_should_save_fn should_save_fn;
  void *should_save_arg;
  int64_t max_to_keep; /* 0 = keep all */
  int64_t keep_period; /* 0 = unset */
  char *best_metric;   /* NULL = no best tracking */
  ckpt_best_mode best_mode;
  bool keep_without_metrics;
  int64_t keep_latest_n;    /* 0 = unset */
  int64_t keep_interval_ns; /* keep_time_interval_secs in ns; 0 = unset */
  ckpt_manager_should_keep_fn should_keep_fn;
  void *should_keep_arg;
  char *step_prefix; /* NULL = none */
  int step_len;      /* 0 = unpadded */
  bool create;
  bool cleanup_tmp;
  bool read_only;
  bool async;
  bool zero_copy;
  uint64_t pack_bytes; /* ckpt_manager_options.pack_arrays_up_to_bytes */
  uint64_t snapshot_bytes_hint; /* ckpt_manager_options.snapshot_bytes_hint */
  bool use_ocdbt, use_zarr3; /* ckpt_manager_options' */
  ckpt_atomicity atomicity;
  ckpt_io *io; /* never NULL */
  ckpt_process_group *pg; /* NULL: this process alone (size 1) */
  int primary;
} mgr_config;

/* One known step (Orbax's CheckpointInfo). */
typedef struct mgr_step {
  int64_t step;
  cJSON *metrics; /* owned; NULL when none (or not tracked) */
  /* When the step was saved, ns since the epoch (only tracked with keep_time_interval_secs);
   * MGR_TIME_UNKNOWN when it could not be read. */
  int64_t time_ns;
} mgr_step;

/* mgr_step.time_ns of a step whose time is not known: keep_time_interval keeps it. */
#define MGR_TIME_UNKNOWN INT64_MIN

/* Known steps, ascending by step, no duplicates. */
typedef struct mgr_steps {
  mgr_step *v;
  size_t n, cap;
} mgr_steps;

typedef enum mgr_mode { MGR_MODE_UNKNOWN = 0, MGR_MODE_SINGLE, MGR_MODE_MULTI } mgr_mode;

/* The finishing part of one save: wait for the commit, then delete the doomed steps. */
typedef struct mgr_finalize {
  int64_t step;
  mgr_step *doomed; /* removed from the cache at save time; owned */
  char **doomed_paths;
  bool *deleted; /* doomed[i] no longer exists as a checkpoint */
  size_t n_doomed;
  bool wait_for_checkpointer; /* async: the commit is still running */
  bool thread_started;
  pthread_t thread;
  atomic_bool done;
  ckpt_status save_status; /* of the commit */
  ckpt_error save_err;
  ckpt_status delete_status;
  ckpt_error delete_err;
} mgr_finalize;

struct ckpt_manager {
  mgr_config cfg;
  ckpt_checkpointer *ckptr;
  mgr_steps steps;
  mgr_mode mode;
  mgr_finalize *pending; /* the last save's finishing part, until joined */
};

/* ---- config (manager.c) */
void mgr_config_clear(mgr_config *c);
/* Multi-process (docs/multiprocess.md): this process decides and deletes (alone: always). */
bool mgr_is_primary(const mgr_config *c);

/* ---- the step cache (steps.c) */
void mgr_steps_clear(mgr_steps *s);
/* Index of step, or -1. */
ptrdiff_t mgr_steps_find(const mgr_steps *s, int64_t step);
/* Inserts *info in order, taking ownership of its metrics (also on failure). */
ckpt_status mgr_steps_insert(mgr_steps *s, mgr_step info, ckpt_error *err);
/* Removes step (freeing its metrics); no-op when absent. */
void mgr_steps_remove(mgr_steps *s, int64_t step);

/* ---- naming and the directory (steps.c) */
/* <dir>/<step name> (storage/step_name.h); malloc'ed, NULL on allocation failure. */
char *mgr_step_path(const mgr_config *c, int64_t step);
/* Steps of the finalized step directories under c->dir, ascending. A missing directory has
 * none. *steps malloc'ed (free()). */
ckpt_status mgr_discover(const mgr_config *c, int64_t **steps, size_t *n, ckpt_error *err);
/* Is the step directory at path finalized by the rule discovery applies? I/O errors keep
 * their kind. */
ckpt_status mgr_step_finalized(const mgr_config *c, const char *path, bool *yes,
                               ckpt_error *err);
/* Removes tmp leftovers under c->dir (see ckpt_manager_options.cleanup_tmp_directories). */
ckpt_status mgr_cleanup_tmp(const mgr_config *c, ckpt_error *err);
/* Deletes the step directory at path so it stops being a checkpoint first (renamed out of the
 * step namespace under CKPT_DELETING_SUFFIX, in both modes), then removes the rest.
 * *gone is true once the step no longer counts as a checkpoint, even if a later part failed. */
ckpt_status mgr_delete_step_dir(const mgr_config *c, const char *path, bool *gone, ckpt_error *err);
/* The item directories of a step (valid item names, real directories), sorted; *names as
 * ckpt_io_list_dir's (ckpt_io_free_names). */
ckpt_status mgr_step_items(const mgr_config *c, const char *step_dir, char ***names, size_t *count,
                           ckpt_error *err);
/* The mode of a step directory from its items: only "default" (plus metrics) → single,
 * anything else → multi, no items → unknown. */
ckpt_status mgr_step_mode(const mgr_config *c, const char *step_dir, mgr_mode *mode,
                          ckpt_error *err);

/* ---- retention (retention.c) */
/* The metric value of a metrics object: false when c has no best_metric or metrics lacks a
 * number under it. NaN is returned as NaN (callers rank it worst). */
bool mgr_metric_value(const mgr_config *c, const cJSON *metrics, double *value);
/* When a step found on disk was saved: the commit timestamp of its _CHECKPOINT_METADATA (else
 * its init timestamp), MGR_TIME_UNKNOWN when neither can be read. Never fails. */
int64_t mgr_step_time(const mgr_config *c, const char *step_dir);
/* Steps the policy no longer keeps, ascending; *out malloc'ed (free()), NULL when *n is 0. */
ckpt_status mgr_steps_to_remove(const mgr_config *c, const mgr_steps *s, int64_t **out, size_t *n,
                                ckpt_error *err);
/* The best step by metric among s (see ckpt_manager_best_step); false when none has one. */
bool mgr_best_step(const mgr_config *c, const mgr_steps *s, int64_t *step);

/* ---- finalize (finalize.c) */
/* Runs or starts (async) the finishing part *f of a save; takes ownership of f, which becomes
 * m->pending. Sync: returns the deletion error at once (via mgr_join). */
ckpt_status mgr_finalize_start(ckpt_manager *m, mgr_finalize *f, ckpt_error *err);
/* Joins m->pending, updates the cache by its outcome and reports its error (once). */
ckpt_status mgr_join(ckpt_manager *m, ckpt_error *err);
/* Like mgr_join, only when the pending work already finished. */
ckpt_status mgr_join_if_done(ckpt_manager *m, ckpt_error *err);
void mgr_finalize_free(mgr_finalize *f);

/* ---- metrics (metrics.c) */
/* Binds the metrics item of ckptr's Composite handler to JsonCheckpointHandler(filename=
 * 'metrics'). */
ckpt_status mgr_metrics_bind(ckpt_checkpointer *ckptr, ckpt_error *err);
/* New save args (JsonSave) for the metrics item holding a copy of metrics; *out owned by the caller
 * (ckpt_args_delete). */
ckpt_status mgr_metrics_args(const cJSON *metrics, ckpt_args **out, ckpt_error *err);
/* Reads <step_dir>/metrics/metrics; *out NULL when the step has no metrics. */
ckpt_status mgr_metrics_read(const mgr_config *c, const char *step_dir, cJSON **out,
                             ckpt_error *err);

/* ---- restore (restore.c) */
ckpt_status mgr_restore(ckpt_manager *m, int64_t step, const ckpt_args *args, ckpt_value *out,
                        ckpt_error *err);

#endif
