/* ckpt/manager.h — CheckpointManager: a series of step checkpoints under one directory.
 *
 * Orbax's CheckpointManager (docs/manager.md) in C: one (async) Checkpointer over a
 * CompositeCheckpointHandler, plus step directories, the should-save policy, retention
 * (max_to_keep / keep_period / best metric / keep_latest_n / keep_time_interval_secs /
 * should_keep_fn), metrics, and latest/best step queries.
 *
 *   ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;  // = Orbax's defaults
 *   o.max_to_keep = 3;
 *   ckpt_manager *m;
 *   ckpt_manager_new("/ckpt/run1", &o, &m, &err);
 *   for (int64_t step = 0; step < n; step++) {
 *     ...
 *     bool saved;
 *     ckpt_manager_save(m, step, &state_save->base, NULL, false, &saved, &err);
 *   }
 *   ckpt_value v;
 *   ckpt_manager_restore(m, CKPT_LATEST_STEP, NULL, &v, &err);   // as saved
 *   ckpt_manager_close(m, &err);                                  // waits for the last save
 *
 * Layout: <directory>/[<prefix>_]<step>/ (zero-padded to step_format_fixed_length), each a
 * checkpoint of the Composite handler: one item `default` when single args are saved, one
 * directory per item when Composite args are saved, and `metrics/metrics` (JSON) when a
 * best metric is tracked. See docs/manager.md.
 *
 * Errors of a background (async) save are returned by the next save, restore, delete, reload,
 * metadata, wait_until_finished, check_for_errors or close; such a failure never deletes an
 * older step, and the failed step is dropped from the step list.
 *
 * Not thread-safe (as Orbax's): one thread drives a manager. Not multi-job safe: two managers
 * writing one directory race; a reader in another process uses ckpt_manager_reload. */
#ifndef CKPT_MANAGER_H
#define CKPT_MANAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ckpt/api.h"
#include "ckpt/checkpointer.h"
#include "ckpt/desc.h"
#include "ckpt/error.h"
#include "ckpt/io.h"
#include "ckpt/value.h"

#ifdef __cplusplus
extern "C" {
#endif

/* For ckpt_manager_restore: the latest step. */
#define CKPT_LATEST_STEP ((int64_t)-1)

/* The item name single-args saves use, and the item the metrics are stored in (both reserved:
 * a Composite saved through a manager may not use them). */
#define CKPT_MANAGER_DEFAULT_ITEM "default"
#define CKPT_MANAGER_METRICS_ITEM "metrics"

typedef enum ckpt_best_mode {
  CKPT_BEST_MODE_MAX = 0, /* larger metric is better (Orbax's default 'max') */
  CKPT_BEST_MODE_MIN      /* smaller metric is better ('min', e.g. a loss) */
} ckpt_best_mode;

/* Orbax's should_save_fn(step, last_step): replaces save_interval_steps and save_on_steps
 * (read_only and "latest_step >= step" still refuse first). has_latest is false when no
 * checkpoint exists yet. */
typedef bool (*ckpt_manager_should_save_fn)(void *arg, int64_t step, bool has_latest,
                                            int64_t latest_step);

/* Orbax's should_keep_fn(step): true keeps step whatever the other retention rules say. Called
 * by retention (inside ckpt_manager_save, on the thread calling it) only once there are more
 * than max_to_keep steps, and only for steps no other rule keeps. */
typedef bool (*ckpt_manager_should_keep_fn)(void *arg, int64_t step);

/* CheckpointManagerOptions. A zero-initialised struct (or CKPT_MANAGER_OPTIONS_INIT) means
 * exactly Orbax's defaults; options Orbax defaults to true are therefore spelled negatively
 * here (no_create, sync, drop_checkpoints_without_metrics). */
typedef struct ckpt_manager_options {
  /* ---- when to save (ckpt_manager_should_save) */
  /* Orbax save_interval_steps = 1: save when step % n == 0. 0 means the default, 1. Negative is
   * an error. */
  int64_t save_interval_steps;
  /* Orbax save_on_steps = None: also save at these steps. Copied by ckpt_manager_new; negative
   * entries are an error. */
  const int64_t *save_on_steps;
  size_t n_save_on_steps;
  /* Orbax should_save_fn = None; see the type above. */
  ckpt_manager_should_save_fn should_save_fn;
  void *should_save_arg;

  /* ---- retention (an AnyPreservationPolicy; a step is kept if any rule keeps it). Nothing is
   * deleted while there are at most max_to_keep steps (max_to_keep 0: never), as in Orbax. */
  /* Orbax max_to_keep = None: keep at most this many (the latest, or the best ones when
   * best_metric is set). 0 keeps every checkpoint (Orbax's None); negative is an error. */
  int64_t max_to_keep;
  /* Orbax keep_period = None: also keep every step with step % keep_period == 0. 0 = unset;
   * negative is an error. */
  int64_t keep_period;
  /* Orbax best_fn = None, as the NAME of a number in the metrics JSON object given to
   * ckpt_manager_save (e.g. "loss"). When set, metrics are saved in <step>/metrics/metrics,
   * retention keeps the best max_to_keep steps by that metric, and ckpt_manager_best_step
   * answers by it. Copied. NULL = no best tracking. */
  const char *best_metric;
  /* Orbax best_mode = 'max'. */
  ckpt_best_mode best_mode;
  /* Orbax keep_checkpoints_without_metrics = True; set this to true for Orbax's False: then a
   * step without the metric counts as the worst and may be deleted. */
  bool drop_checkpoints_without_metrics;
  /* Orbax LatestN(n) (a preservation_policy; no legacy option): also keep the n latest steps.
   * With best_metric this is what keeps the step just saved when its metric is not among the
   * best (keep_latest_n = 1: resuming after a crash never goes back further than the last
   * save). Without best_metric, max_to_keep already keeps the latest max(n, max_to_keep).
   * 0 = unset; negative is an error. */
  int64_t keep_latest_n;
  /* Orbax keep_time_interval = None (EveryNSeconds), in seconds: among the steps ordered by
   * step, keep the first, then every step saved at least this long after the previous step
   * kept this way. A step's time is when its save started (this process), or the commit
   * timestamp of its _CHECKPOINT_METADATA (steps found on disk). 0 = unset; negative is an
   * error. */
  int64_t keep_time_interval_secs;
  /* Orbax should_keep_fn = None; see the type above. */
  ckpt_manager_should_keep_fn should_keep_fn;
  void *should_keep_arg;

  /* ---- naming */
  /* Orbax step_prefix = None: directories are named "<prefix>_<step>". NULL or "" = none. It
   * may not contain '/', start with '.', or contain the tmp marker. Copied. */
  const char *step_prefix;
  /* Orbax step_format_fixed_length = None: zero-pad steps to this many digits. 0 = unset. */
  int step_format_fixed_length;

  /* ---- directories */
  /* Orbax create = True; set this to true for create=False: the directory is not created at
   * construction (a missing directory lists no steps). The first save still creates it, as
   * the checkpointer makes the parents of a step directory (Orbax's mkdir(parents=True)). */
  bool no_create;
  /* Orbax cleanup_tmp_directories = False: at construction, remove leftovers of interrupted
   * saves (names containing ".orbax-checkpoint-tmp"; step directories holding the pending
   * commit marker without commit_success.txt; in commit-file mode also any other unfinalized
   * step directory). */
  bool cleanup_tmp_directories;
  /* Orbax read_only = False: no save, delete or cleanup (they fail with CKPT_ESTATE saying
   * so), no directory creation; should_save is always false. Restore and queries work. */
  bool read_only;

  /* ---- the checkpointer */
  /* Orbax enable_async_checkpointing = True; set this to true for synchronous saves. Async:
   * ckpt_manager_save returns after the snapshot, and old steps are deleted on a background
   * thread once the new step has committed. If the checkpointer cannot be async
   * (CKPT_EUNSUPPORTED) the manager falls back to synchronous saves (ckpt_manager_is_async
   * tells); any other failure is an error. */
  bool sync;
  /* AtomicityOptions.mode: rename (default) or commit file. */
  ckpt_atomicity atomicity;
  /* The caller promises not to modify saved data until the save finished (see
   * ckpt_checkpointer_options.zero_copy). */
  bool zero_copy;
  /* The I/O layer for every file operation (listing, deleting, saving); NULL =
   * ckpt_io_default(). Must outlive the manager. */
  ckpt_io *io;
  /* Deprecated: nonzero saves as OCDBT (ckpt_checkpointer_options.pack_arrays_up_to_bytes). */
  uint64_t pack_arrays_up_to_bytes;
  /* About how many bytes one snapshot of the state takes: the async checkpointer pre-faults
   * its staging pool in the background from construction on, so the first save blocks no
   * longer than later ones (see ckpt_checkpointer_options.snapshot_bytes_hint). 0 = none. */
  uint64_t snapshot_bytes_hint;
  /* ---- several processes (docs/multiprocess.md) */
  /* The processes that save each step together (borrowed; must outlive the manager); NULL:
   * this process alone. Every process then creates its manager, and calls save, delete,
   * reload, reached_preemption and close, in the same order (they are collectives). The
   * primary (Orbax's primary_host) creates the directory, discovers the steps, decides
   * should_save and retention, and is the only one to delete; the others follow its decisions.
   * use_ocdbt and use_zarr3 as for ckpt_checkpointer_options.process_group. */
  ckpt_process_group *process_group;
  int primary;
  /* Orbax's use_ocdbt and use_zarr3 for the steps' PyTree items (see
   * ckpt_checkpointer_options). */
  bool use_ocdbt;
  bool use_zarr3;
} ckpt_manager_options;

/* All defaults (Orbax's): every member zero, spelled out so C++ and
 * -Wmissing-field-initializers accept it. */
#define CKPT_MANAGER_OPTIONS_INIT                                                             \
  {                                                                                           \
    0, NULL, 0, NULL, NULL, 0, 0, NULL, CKPT_BEST_MODE_MAX, false, 0, 0, NULL, NULL, NULL, 0, \
        false, false, false, false, CKPT_ATOMICITY_RENAME, false, NULL, 0, 0, NULL, 0, false,  \
        false                                                                                 \
  }

/* Fills *opts with the defaults (the same as zero-initialising it). */
CKPT_API void ckpt_manager_options_init(ckpt_manager_options *opts);

typedef struct ckpt_manager ckpt_manager;

/* Opens (and unless no_create or read_only, creates) the directory, removes tmp leftovers when
 * asked, and lists the finalized steps (reading their metrics when best_metric is set). opts
 * may be NULL (defaults). *out owned by the caller; release with ckpt_manager_close. */
CKPT_API ckpt_status ckpt_manager_new(const char *directory, const ckpt_manager_options *opts,
                                      ckpt_manager **out, ckpt_error *err);

/* Orbax's should_save(step): false when read_only, when step < 0, or when latest_step >= step;
 * otherwise should_save_fn if set, else true when no checkpoint exists yet, when
 * step % save_interval_steps == 0, or when step is one of save_on_steps. */
CKPT_API bool ckpt_manager_should_save(const ckpt_manager *m, int64_t step);

/* Saves args as step when force or should_save(step) says so; *saved (may be NULL) tells
 * whether a save was started. args: Composite args save one item per entry (multi-item mode);
 * any other args save the single item "default" (single-item mode). A manager stays in the
 * mode of its first save (or of the latest step found on disk); mixing is CKPT_EINVAL.
 * metrics (may be NULL; copied) is saved as <step>/metrics/metrics when best_metric is set
 * (then it must be a JSON object holding that metric as a number); without best_metric it is
 * ignored, as in Orbax. force never overwrites: a step that exists is CKPT_EEXIST "step N
 * already exists". Read-only managers fail with CKPT_ESTATE.
 * Before saving, waits for the previous save and returns its error, if any (nothing is saved
 * then). After the new step committed (async: in the background), steps the retention policy
 * no longer keeps are deleted. */
CKPT_API ckpt_status ckpt_manager_save(ckpt_manager *m, int64_t step, const ckpt_args *args,
                                       const cJSON *metrics, bool force, bool *saved,
                                       ckpt_error *err);

/* Restores step (CKPT_LATEST_STEP: the latest; none → CKPT_ENOENT). args NULL restores every
 * item as saved (handlers found through the typestrs of _CHECKPOINT_METADATA). The step's
 * mode comes from its directory: a step holding only `default` is single-item and *out is that
 * item's value (args, if given, must then not be Composite); otherwise *out is a COMPOSITE
 * value of the items restored (args, if given, must be Composite; naming "metrics" returns the
 * metrics as a JSON item, which restore-all also includes). A missing step is CKPT_ENOENT
 * listing the steps there are; an unfinalized one CKPT_EINCOMPLETE. *out owned by the caller
 * (ckpt_value_free). */
CKPT_API ckpt_status ckpt_manager_restore(ckpt_manager *m, int64_t step, const ckpt_args *args,
                                          ckpt_value *out, ckpt_error *err);

/* The largest known step; false when there is none. */
CKPT_API bool ckpt_manager_latest_step(const ckpt_manager *m, int64_t *step);
/* The step with the best metric (best_metric, best_mode; a NaN metric counts as the worst);
 * without best_metric the latest step. False when there is none (with best_metric: when no
 * step has the metric, as Orbax's best_step returns None). */
CKPT_API bool ckpt_manager_best_step(const ckpt_manager *m, int64_t *step);
/* The known steps, ascending. *steps malloc'ed (free()); NULL when *count is 0. */
CKPT_API ckpt_status ckpt_manager_all_steps(const ckpt_manager *m, int64_t **steps, size_t *count,
                                            ckpt_error *err);
/* The metrics saved with step, read from <step>/metrics/metrics; *out NULL (and CKPT_OK) when
 * the step has none. A step that does not exist is CKPT_ENOENT. *out owned by the caller
 * (cJSON_Delete). */
CKPT_API ckpt_status ckpt_manager_metrics(ckpt_manager *m, int64_t step, cJSON **out,
                                          ckpt_error *err);
/* _CHECKPOINT_METADATA and item metadata of step, as ckpt_checkpointer_metadata; *out owned
 * by the caller (cJSON_Delete). */
CKPT_API ckpt_status ckpt_manager_metadata(ckpt_manager *m, int64_t step, cJSON **out,
                                           ckpt_error *err);
/* "<directory>/[<prefix>_]<step>" in a malloc'ed string (free()). */
CKPT_API ckpt_status ckpt_manager_step_path(const ckpt_manager *m, int64_t step, char **out,
                                            ckpt_error *err);
/* The manager's directory (normalised, owned by the manager). */
CKPT_API const char *ckpt_manager_directory(const ckpt_manager *m);
/* True when saves run in the background. */
CKPT_API bool ckpt_manager_is_async(const ckpt_manager *m);

/* Deletes a known step (CKPT_ENOENT "Requested deleting a non-existent step" otherwise). The
 * directory is first renamed out of the step namespace (commit-file mode: its commit file is
 * removed first), so a deletion that fails half-way never leaves a half-deleted step listed. */
CKPT_API ckpt_status ckpt_manager_delete(ckpt_manager *m, int64_t step, ckpt_error *err);
/* Re-reads the step list from disk (after another process wrote), after waiting for a pending
 * save (whose error, if any, is returned). */
CKPT_API ckpt_status ckpt_manager_reload(ckpt_manager *m, ckpt_error *err);

/* Preemption (Orbax's reached_preemption; docs/multiprocess.md). ckpt_preemption_watch
 * installs a handler for signum (SIGTERM, the usual notice of a scheduler) that only records
 * the signal; ckpt_preemption_received tells whether it came to this process. */
CKPT_API ckpt_status ckpt_preemption_watch(int signum, ckpt_error *err);
CKPT_API bool ckpt_preemption_received(void);
/* A collective of the manager's processes: *reached is true on every process when any of them
 * received the watched signal, so that every process saves `step` (with force) and stops
 * together. Alone: ckpt_preemption_received(). */
CKPT_API ckpt_status ckpt_manager_reached_preemption(ckpt_manager *m, int64_t step, bool *reached,
                                                     ckpt_error *err);
/* Waits for a pending save and its deletions; returns their error, if any (once). */
CKPT_API ckpt_status ckpt_manager_wait_until_finished(ckpt_manager *m, ckpt_error *err);
/* Returns the error of a pending save that already finished, without waiting (once). */
CKPT_API ckpt_status ckpt_manager_check_for_errors(ckpt_manager *m, ckpt_error *err);
/* Waits, closes the checkpointer and frees the manager (also after an error, which is
 * returned). NULL is a no-op. */
CKPT_API ckpt_status ckpt_manager_close(ckpt_manager *m, ckpt_error *err);

#ifdef __cplusplus
}
#endif
#endif
