/* manager/manager.c — CheckpointManager: options, lifecycle, save, queries, delete, reload
 * (docs/manager.md). Restore is in restore.c, the finishing part of a save in
 * finalize.c, step directories in steps.c, the retention policy in retention.c. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt.h"
#include "ckpt/manager.h"
#include "manager/manager_internal.h"
#include "storage/checkpoint_metadata.h"
#include "storage/commit.h"
#include "util/path.h"

/* ================================================================ options */

void ckpt_manager_options_init(ckpt_manager_options *opts) {
  if (opts != NULL)
    memset(opts, 0, sizeof *opts);
}

void mgr_config_clear(mgr_config *c) {
  free(c->dir);
  free(c->save_on_steps);
  free(c->best_metric);
  free(c->step_prefix);
  memset(c, 0, sizeof *c);
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static ckpt_status check_prefix(const char *prefix, ckpt_error *err) {
  if (strchr(prefix, '/') != NULL || prefix[0] == '.' || strstr(prefix, CKPT_TMP_SUFFIX) != NULL)
    return ckpt_error_set(err, CKPT_EINVAL,
                          "step_prefix \"%s\" cannot name step directories: it may not contain "
                          "'/' or \"%s\", nor start with '.'",
                          prefix, CKPT_TMP_SUFFIX);
  if (strlen(prefix) > 200)
    return ckpt_error_set(err, CKPT_EINVAL, "step_prefix \"%.40s...\" is longer than 200 bytes",
                          prefix);
  return CKPT_OK;
}

/* Validates o and fills c (defaults applied, borrowed data copied). */
static ckpt_status make_config(const char *directory, const ckpt_manager_options *o, mgr_config *c,
                               ckpt_error *err) {
  memset(c, 0, sizeof *c);
  if (directory == NULL || directory[0] == '\0')
    return ckpt_error_set(err, CKPT_EINVAL, "CheckpointManager: directory is empty");
  if (o->save_interval_steps < 0)
    return ckpt_error_set(err, CKPT_EINVAL,
                          "save_interval_steps must be >= 1 (0 means the default, 1); got %" PRId64,
                          o->save_interval_steps);
  if (o->max_to_keep < 0)
    return ckpt_error_set(err, CKPT_EINVAL,
                          "Setting of max_to_keep must be non-negative (0 keeps every "
                          "checkpoint); got %" PRId64,
                          o->max_to_keep);
  if (o->keep_period < 0)
    return ckpt_error_set(err, CKPT_EINVAL, "keep_period must be >= 0 (0 = unset); got %" PRId64,
                          o->keep_period);
  if (o->keep_latest_n < 0)
    return ckpt_error_set(err, CKPT_EINVAL, "keep_latest_n must be >= 0 (0 = unset); got %" PRId64,
                          o->keep_latest_n);
  if (o->keep_time_interval_secs < 0)
    return ckpt_error_set(err, CKPT_EINVAL,
                          "keep_time_interval_secs must be >= 0 (0 = unset); got %" PRId64,
                          o->keep_time_interval_secs);
  if (o->keep_time_interval_secs > INT64_MAX / 1000000000)
    return ckpt_error_set(err, CKPT_EINVAL,
                          "keep_time_interval_secs %" PRId64 " is too large (at most %" PRId64 ")",
                          o->keep_time_interval_secs, INT64_MAX / 1000000000);
  if (o->best_mode != CKPT_BEST_MODE_MAX && o->best_mode != CKPT_BEST_MODE_MIN)
    return ckpt_error_set(err, CKPT_EINVAL, "best_mode must be CKPT_BEST_MODE_MAX or _MIN; got %d",
                          (int)o->best_mode);
  if (o->best_metric != NULL && o->best_metric[0] == '\0')
    return ckpt_error_set(err, CKPT_EINVAL, "best_metric is empty; use NULL for no best metric");
  if (o->step_format_fixed_length < 0 || o->step_format_fixed_length > MGR_MAX_STEP_DIGITS)
    return ckpt_error_set(err, CKPT_EINVAL, "step_format_fixed_length must be 0..%d; got %d",
                          MGR_MAX_STEP_DIGITS, o->step_format_fixed_length);
  if (o->atomicity != CKPT_ATOMICITY_RENAME && o->atomicity != CKPT_ATOMICITY_COMMIT_FILE)
    return ckpt_error_set(err, CKPT_EINVAL, "unknown atomicity mode %d", (int)o->atomicity);
  if (o->n_save_on_steps > 0 && o->save_on_steps == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "save_on_steps is NULL but n_save_on_steps is %zu",
                          o->n_save_on_steps);
  for (size_t i = 0; i < o->n_save_on_steps; i++) {
    if (o->save_on_steps[i] < 0)
      return ckpt_error_set(err, CKPT_EINVAL, "save_on_steps[%zu] is negative (%" PRId64 ")", i,
                            o->save_on_steps[i]);
  }
  bool has_prefix = o->step_prefix != NULL && o->step_prefix[0] != '\0';
  if (has_prefix) {
    ckpt_status st = check_prefix(o->step_prefix, err);
    if (st != CKPT_OK)
      return st;
  }

  c->dir = ckpt_path_normalize(directory);
  if (c->dir == NULL)
    goto oom;
  if (o->n_save_on_steps > 0) {
    c->save_on_steps = malloc(o->n_save_on_steps * sizeof *c->save_on_steps);
    if (c->save_on_steps == NULL)
      goto oom;
    memcpy(c->save_on_steps, o->save_on_steps, o->n_save_on_steps * sizeof *c->save_on_steps);
    qsort(c->save_on_steps, o->n_save_on_steps, sizeof *c->save_on_steps, cmp_i64);
    c->n_save_on_steps = o->n_save_on_steps;
  }
  if (o->best_metric != NULL && (c->best_metric = strdup(o->best_metric)) == NULL)
    goto oom;
  if (has_prefix && (c->step_prefix = strdup(o->step_prefix)) == NULL)
    goto oom;
  c->save_interval_steps = o->save_interval_steps != 0 ? o->save_interval_steps : 1;
  c->should_save_fn = o->should_save_fn;
  c->should_save_arg = o->should_save_arg;
  c->max_to_keep = o->max_to_keep;
  c->keep_period = o->keep_period;
  c->best_mode = o->best_mode;
  c->keep_without_metrics = !o->drop_checkpoints_without_metrics;
  c->keep_latest_n = o->keep_latest_n;
  c->keep_interval_ns = o->keep_time_interval_secs * 1000000000;
  c->should_keep_fn = o->should_keep_fn;
  c->should_keep_arg = o->should_keep_arg;
  c->step_len = o->step_format_fixed_length;
  c->read_only = o->read_only;
  /* Orbax: read_only forces create=False and cleanup_tmp_directories=False. */
  c->create = !o->no_create && !o->read_only;
  c->cleanup_tmp = o->cleanup_tmp_directories && !o->read_only;
  c->async = !o->sync;
  c->zero_copy = o->zero_copy;
  c->pack_bytes = o->pack_arrays_up_to_bytes;
  c->snapshot_bytes_hint = o->snapshot_bytes_hint;
  c->use_ocdbt = o->use_ocdbt;
  c->use_zarr3 = o->use_zarr3;
  c->atomicity = o->atomicity;
  c->io = o->io != NULL ? o->io : ckpt_io_default();
  int size = ckpt_process_group_size(o->process_group);
  if (o->primary < 0 || o->primary >= size) {
    mgr_config_clear(c);
    return ckpt_error_set(err, CKPT_EINVAL,
                          "primary process %d is not a rank of the process group (size %d)",
                          o->primary, size);
  }
  c->pg = size > 1 ? o->process_group : NULL;
  c->primary = o->primary;
  return CKPT_OK;
oom:
  mgr_config_clear(c);
  return ckpt_error_set(err, CKPT_ENOMEM, "out of memory creating a CheckpointManager");
}

bool mgr_is_primary(const mgr_config *c) {
  return c->pg == NULL || ckpt_process_group_rank(c->pg) == c->primary;
}

/* Multi-process: the status agreed by every process (alone: st). */
static ckpt_status agree(const mgr_config *c, ckpt_status st, ckpt_error *err) {
  return c->pg != NULL ? ckpt_process_group_agree(c->pg, st, err) : st;
}

/* ================================================================ the step list */

/* The finalized steps: the primary's discovery, broadcast to the others (alone: discovery). */
static ckpt_status discover(ckpt_manager *m, int64_t **found, size_t *n, ckpt_error *err) {
  *found = NULL;
  *n = 0;
  if (m->cfg.pg == NULL)
    return mgr_discover(&m->cfg, found, n, err);
  ckpt_process_group *pg = m->cfg.pg;
  ckpt_status st = CKPT_OK;
  if (mgr_is_primary(&m->cfg))
    st = mgr_discover(&m->cfg, found, n, err);
  st = ckpt_process_group_share_outcome(pg, m->cfg.primary, st, err);
  uint64_t count = *n;
  if (st == CKPT_OK)
    st = ckpt_process_group_broadcast(pg, m->cfg.primary, &count, sizeof count, err);
  if (st == CKPT_OK && !mgr_is_primary(&m->cfg)) {
    *found = malloc(count ? count * sizeof **found : 1);
    if (*found == NULL) /* nothing to receive into (practically unreachable) */
      st = ckpt_error_set(err, CKPT_ENOMEM,
                          "out of memory listing steps (the other processes may wait)");
    *n = (size_t)count;
  }
  if (st == CKPT_OK && count > 0)
    st = ckpt_process_group_broadcast(pg, m->cfg.primary, *found, count * sizeof **found, err);
  if (st != CKPT_OK) {
    free(*found);
    *found = NULL;
    *n = 0;
  }
  return st;
}

/* Re-reads the finalized steps (and, when a metric is tracked, their metrics) and the mode of
 * the latest one. The list is replaced only when everything was read. */
static ckpt_status load_steps(ckpt_manager *m, ckpt_error *err) {
  int64_t *found;
  size_t n;
  ckpt_status st = discover(m, &found, &n, err);
  if (st != CKPT_OK)
    return st;
  mgr_steps fresh = {0};
  for (size_t i = 0; i < n && st == CKPT_OK; i++) {
    mgr_step info = {found[i], NULL, MGR_TIME_UNKNOWN};
    if (m->cfg.best_metric != NULL || m->cfg.keep_interval_ns != 0) {
      char *path = mgr_step_path(&m->cfg, found[i]);
      if (path == NULL)
        st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory listing steps");
      else if (m->cfg.best_metric != NULL)
        st = mgr_metrics_read(&m->cfg, path, &info.metrics, err);
      if (st == CKPT_OK && m->cfg.keep_interval_ns != 0)
        info.time_ns = mgr_step_time(&m->cfg, path);
      free(path);
      if (st != CKPT_OK)
        break;
    }
    st = mgr_steps_insert(&fresh, info, err);
  }
  mgr_mode mode = MGR_MODE_UNKNOWN;
  if (st == CKPT_OK && n > 0) {
    char *path = mgr_step_path(&m->cfg, found[n - 1]);
    if (path == NULL)
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory listing steps");
    else
      st = mgr_step_mode(&m->cfg, path, &mode, err);
    free(path);
  }
  free(found);
  if (st != CKPT_OK) {
    mgr_steps_clear(&fresh);
    ckpt_error_prefix(err, "reading the steps of '%s': ", m->cfg.dir);
    return st;
  }
  mgr_steps_clear(&m->steps);
  m->steps = fresh;
  /* A manager adopts the mode of what is on disk; an empty directory leaves it open. */
  if (mode != MGR_MODE_UNKNOWN)
    m->mode = mode;
  else if (n == 0)
    m->mode = MGR_MODE_UNKNOWN;
  return CKPT_OK;
}

/* ================================================================ lifecycle */

static ckpt_status prepare_directory(const mgr_config *c, ckpt_error *err) {
  ckpt_io_kind kind;
  ckpt_status st = ckpt_io_stat(c->io, c->dir, &kind, NULL, err);
  if (st != CKPT_OK)
    return st;
  if (kind == CKPT_IO_KIND_MISSING) {
    if (!c->create)
      return CKPT_OK; /* no steps yet; a save will say the directory is missing */
    st = ckpt_io_mkdirs(c->io, c->dir, err);
    if (st != CKPT_OK)
      ckpt_error_prefix(err, "CheckpointManager cannot create its directory: ");
    return st;
  }
  /* A symlink is the user's own way of pointing the manager somewhere; follow it. */
  if (kind != CKPT_IO_KIND_DIR && kind != CKPT_IO_KIND_SYMLINK)
    return ckpt_error_set(err, CKPT_EINVAL,
                          "CheckpointManager directory '%s' exists but is not a directory", c->dir);
  return CKPT_OK;
}

ckpt_status ckpt_manager_new(const char *directory, const ckpt_manager_options *opts,
                             ckpt_manager **out, ckpt_error *err) {
  if (out == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_manager_new: out is NULL");
  *out = NULL;
  ckpt_manager_options defaults = CKPT_MANAGER_OPTIONS_INIT;
  ckpt_manager *m = calloc(1, sizeof *m);
  if (m == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory creating a manager");
  const ckpt_manager_options *o = opts != NULL ? opts : &defaults;
  ckpt_status st = make_config(directory, o, &m->cfg, err);
  /* Multi-process: every process agrees on the configuration's checks, then the primary
   * prepares the directory (the others wait for the agreement). A process group that is
   * itself invalid leaves no group to agree through. */
  bool multi = ckpt_process_group_size(o->process_group) > 1 && m->cfg.pg != NULL;
  if (multi)
    st = agree(&m->cfg, st, err);
  if (st == CKPT_OK && mgr_is_primary(&m->cfg))
    st = prepare_directory(&m->cfg, err);
  if (st == CKPT_OK && m->cfg.cleanup_tmp && mgr_is_primary(&m->cfg))
    st = mgr_cleanup_tmp(&m->cfg, err);
  if (multi && m->cfg.pg != NULL)
    st = agree(&m->cfg, st, err);
  if (st == CKPT_OK) {
    ckpt_checkpointer_options co = CKPT_CHECKPOINTER_OPTIONS_INIT;
    co.atomicity = m->cfg.atomicity;
    co.io = m->cfg.io;
    co.async = m->cfg.async;
    co.zero_copy = m->cfg.zero_copy;
    co.pack_arrays_up_to_bytes = m->cfg.pack_bytes;
    co.snapshot_bytes_hint = m->cfg.snapshot_bytes_hint;
    co.process_group = m->cfg.pg;
    co.primary = m->cfg.primary;
    co.use_ocdbt = m->cfg.use_ocdbt;
    co.use_zarr3 = m->cfg.use_zarr3;
    ckpt_error scratch = CKPT_ERROR_INIT;
    st = ckpt_checkpointer_new(NULL, &co, &m->ckptr, &scratch);
    if (st == CKPT_EUNSUPPORTED && co.async) {
      /* Documented fallback: a checkpointer that cannot be async saves synchronously. */
      co.async = false;
      m->cfg.async = false;
      st = ckpt_checkpointer_new(NULL, &co, &m->ckptr, err);
    } else if (st != CKPT_OK) {
      ckpt_error_set(err, st, "%s", scratch.message);
    }
  }
  if (st == CKPT_OK)
    st = mgr_metrics_bind(m->ckptr, err);
  if (multi && m->cfg.pg != NULL)
    st = agree(&m->cfg, st, err);
  if (st == CKPT_OK)
    st = load_steps(m, err); /* a collective (discovery), reached by every process or none */
  if (st != CKPT_OK) {
    ckpt_checkpointer_close(m->ckptr, NULL);
    mgr_steps_clear(&m->steps);
    mgr_config_clear(&m->cfg);
    free(m);
    return st;
  }
  *out = m;
  return CKPT_OK;
}

ckpt_status ckpt_manager_close(ckpt_manager *m, ckpt_error *err) {
  if (m == NULL)
    return CKPT_OK;
  ckpt_status st = mgr_join(m, err);
  ckpt_status st2 = ckpt_checkpointer_close(m->ckptr, err);
  mgr_steps_clear(&m->steps);
  mgr_config_clear(&m->cfg);
  free(m);
  return st != CKPT_OK ? st : st2;
}

ckpt_status ckpt_manager_wait_until_finished(ckpt_manager *m, ckpt_error *err) {
  if (m == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "manager is NULL");
  return mgr_join(m, err);
}

ckpt_status ckpt_manager_check_for_errors(ckpt_manager *m, ckpt_error *err) {
  if (m == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "manager is NULL");
  return mgr_join_if_done(m, err);
}

ckpt_status ckpt_manager_reload(ckpt_manager *m, ckpt_error *err) {
  if (m == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "manager is NULL");
  ckpt_status st = mgr_join(m, err);
  ckpt_status st2 = load_steps(m, err); /* multi-process: the primary's discovery, broadcast */
  return st != CKPT_OK ? st : st2;
}

/* ================================================================ queries */

const char *ckpt_manager_directory(const ckpt_manager *m) {
  return m != NULL ? m->cfg.dir : NULL;
}

bool ckpt_manager_is_async(const ckpt_manager *m) {
  return m != NULL && m->cfg.async;
}

bool ckpt_manager_latest_step(const ckpt_manager *m, int64_t *step) {
  if (m == NULL || m->steps.n == 0)
    return false;
  if (step != NULL)
    *step = m->steps.v[m->steps.n - 1].step;
  return true;
}

bool ckpt_manager_best_step(const ckpt_manager *m, int64_t *step) {
  if (m == NULL)
    return false;
  if (m->cfg.best_metric == NULL)
    return ckpt_manager_latest_step(m, step);
  int64_t s;
  if (!mgr_best_step(&m->cfg, &m->steps, &s))
    return false;
  if (step != NULL)
    *step = s;
  return true;
}

ckpt_status ckpt_manager_all_steps(const ckpt_manager *m, int64_t **steps, size_t *count,
                                   ckpt_error *err) {
  if (m == NULL || steps == NULL || count == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_manager_all_steps: NULL argument");
  *steps = NULL;
  *count = 0;
  if (m->steps.n == 0)
    return CKPT_OK;
  int64_t *v = malloc(m->steps.n * sizeof *v);
  if (v == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory listing steps");
  for (size_t i = 0; i < m->steps.n; i++)
    v[i] = m->steps.v[i].step;
  *steps = v;
  *count = m->steps.n;
  return CKPT_OK;
}

ckpt_status ckpt_manager_step_path(const ckpt_manager *m, int64_t step, char **out,
                                   ckpt_error *err) {
  if (m == NULL || out == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_manager_step_path: NULL argument");
  *out = NULL;
  if (step < 0)
    return ckpt_error_set(err, CKPT_EINVAL, "step %" PRId64 " is negative", step);
  *out = mgr_step_path(&m->cfg, step);
  if (*out == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  return CKPT_OK;
}

/* The directory of an existing, finalized step, once the pending save (which may be that very
 * step) has finished; *path malloc'ed, owned by the caller. */
static ckpt_status existing_step_dir(ckpt_manager *m, int64_t step, char **path, ckpt_error *err) {
  *path = NULL;
  ckpt_status st = mgr_join(m, err);
  if (st != CKPT_OK)
    return st;
  if (step < 0)
    return ckpt_error_set(err, CKPT_EINVAL, "step %" PRId64 " is negative", step);
  char *p = mgr_step_path(&m->cfg, step);
  if (p == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_io_kind kind;
  st = ckpt_io_stat(m->cfg.io, p, &kind, NULL, err);
  if (st == CKPT_OK && kind == CKPT_IO_KIND_MISSING)
    st = ckpt_error_set(err, CKPT_ENOENT, "No checkpoint for step %" PRId64 " in '%s' ('%s')", step,
                        m->cfg.dir, p);
  else if (st == CKPT_OK) {
    bool fin;
    st = mgr_step_finalized(&m->cfg, p, &fin, err);
    if (st == CKPT_OK && !fin)
      st = ckpt_error_set(err, CKPT_EINCOMPLETE, "Found incomplete checkpoint at '%s'", p);
  }
  if (st != CKPT_OK) {
    free(p);
    return st;
  }
  *path = p;
  return CKPT_OK;
}

ckpt_status ckpt_manager_metrics(ckpt_manager *m, int64_t step, cJSON **out, ckpt_error *err) {
  if (m == NULL || out == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_manager_metrics: NULL argument");
  *out = NULL;
  char *path;
  ckpt_status st = existing_step_dir(m, step, &path, err);
  if (st != CKPT_OK)
    return st;
  st = mgr_metrics_read(&m->cfg, path, out, err);
  free(path);
  return st;
}

ckpt_status ckpt_manager_metadata(ckpt_manager *m, int64_t step, cJSON **out, ckpt_error *err) {
  if (m == NULL || out == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "ckpt_manager_metadata: NULL argument");
  *out = NULL;
  char *path;
  ckpt_status st = existing_step_dir(m, step, &path, err);
  if (st != CKPT_OK)
    return st;
  st = ckpt_checkpointer_metadata(m->ckptr, path, out, err);
  free(path);
  return st;
}

/* ================================================================ should_save */

static bool in_save_on_steps(const mgr_config *c, int64_t step) {
  return c->n_save_on_steps > 0 &&
         bsearch(&step, c->save_on_steps, c->n_save_on_steps, sizeof step, cmp_i64) != NULL;
}

bool ckpt_manager_should_save(const ckpt_manager *m, int64_t step) {
  if (m == NULL || m->cfg.read_only || step < 0)
    return false;
  int64_t latest = 0;
  bool has_latest = ckpt_manager_latest_step(m, &latest);
  if (has_latest && latest >= step)
    return false;
  if (m->cfg.should_save_fn != NULL)
    return m->cfg.should_save_fn(m->cfg.should_save_arg, step, has_latest, latest);
  /* AnySavePolicy: InitialSavePolicy, FixedIntervalPolicy, SpecificStepsPolicy. */
  return !has_latest || step % m->cfg.save_interval_steps == 0 || in_save_on_steps(&m->cfg, step);
}

/* ================================================================ save */

static char default_key[] = CKPT_MANAGER_DEFAULT_ITEM;
static char metrics_key[] = CKPT_MANAGER_METRICS_ITEM;

/* Checks args against the manager's mode and the reserved item names. */
static ckpt_status check_save_args(ckpt_manager *m, int64_t step, const ckpt_args *args,
                                   bool *composite, ckpt_error *err) {
  if (args == NULL || args->desc == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "save of step %" PRId64 ": args are NULL", step);
  *composite = args->desc == &ckpt_Composite_desc;
  if (*composite && m->mode == MGR_MODE_SINGLE)
    return ckpt_error_set(err, CKPT_EINVAL,
                          "save of step %" PRId64
                          ": the manager of '%s' holds single-item "
                          "checkpoints (item \"default\"); Composite args cannot be mixed in",
                          step, m->cfg.dir);
  if (!*composite && m->mode == MGR_MODE_MULTI)
    return ckpt_error_set(err, CKPT_EINVAL,
                          "save of step %" PRId64
                          ": the manager of '%s' holds multi-item "
                          "checkpoints; pass Composite args, not '%s'",
                          step, m->cfg.dir, args->desc->full_name);
  if (!*composite)
    return CKPT_OK;
  const ckpt_Composite *c = (const ckpt_Composite *)(const void *)args;
  if (c->n_items == 0)
    return ckpt_error_set(err, CKPT_EINVAL,
                          "save of step %" PRId64 ": Composite args without items", step);
  for (size_t i = 0; i < c->n_items; i++) {
    const char *key = c->items[i].key;
    if (key != NULL && (strcmp(key, CKPT_MANAGER_METRICS_ITEM) == 0 ||
                        strcmp(key, CKPT_MANAGER_DEFAULT_ITEM) == 0))
      return ckpt_error_set(
          err, CKPT_EINVAL,
          "save of step %" PRId64
          ": item name \"%s\" is reserved by the "
          "CheckpointManager (%s)",
          step, key,
          key[0] == 'm' ? "it stores the metrics there" : "it marks single-item checkpoints");
  }
  return CKPT_OK;
}

static ckpt_status check_metrics(const ckpt_manager *m, int64_t step, const cJSON *metrics,
                                 ckpt_error *err) {
  if (metrics == NULL || m->cfg.best_metric == NULL)
    return CKPT_OK;
  double v;
  if (!cJSON_IsObject(metrics) || !mgr_metric_value(&m->cfg, metrics, &v))
    return ckpt_error_set(err, CKPT_EINVAL,
                          "save of step %" PRId64
                          ": metrics must be a JSON object with a number "
                          "\"%s\" (the best_metric)",
                          step, m->cfg.best_metric);
  return CKPT_OK;
}

/* The Composite the checkpointer saves: the user's items (borrowed) or "default", plus the
 * metrics item. *entries is the malloc'ed entry array to free afterwards (never the args). */
static ckpt_status build_save_args(const ckpt_args *args, bool composite, ckpt_args *metrics,
                                   ckpt_Composite *out, ckpt_Composite_items_entry **entries,
                                   ckpt_error *err) {
  const ckpt_Composite *user = composite ? (const ckpt_Composite *)(const void *)args : NULL;
  size_t n = (user != NULL ? user->n_items : 1) + (metrics != NULL ? 1 : 0);
  ckpt_Composite_items_entry *e = malloc(n * sizeof *e);
  if (e == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory saving");
  size_t k = 0;
  if (user != NULL) {
    for (size_t i = 0; i < user->n_items; i++)
      e[k++] = user->items[i];
  } else {
    /* The composite only reads its args; the cast does not lead to a write. */
    e[k++] = (ckpt_Composite_items_entry){default_key, (ckpt_args *)(void *)(uintptr_t)args};
  }
  if (metrics != NULL)
    e[k++] = (ckpt_Composite_items_entry){metrics_key, metrics};
  memset(out, 0, sizeof *out);
  out->base.desc = &ckpt_Composite_desc;
  out->n_items = k;
  out->items = e;
  *entries = e;
  return CKPT_OK;
}

/* Adds the saved step to the list (Orbax's _add_checkpoint_info), with its metrics when a
 * metric is tracked, and the time now (Orbax's datetime.now() there). */
static ckpt_status record_step(ckpt_manager *m, int64_t step, const cJSON *metrics,
                               ckpt_error *err) {
  mgr_step info = {step, NULL, ckpt_now_nsecs()};
  if (metrics != NULL && m->cfg.best_metric != NULL) {
    info.metrics = cJSON_Duplicate(metrics, true);
    if (info.metrics == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory recording step %" PRId64, step);
  }
  return mgr_steps_insert(&m->steps, info, err);
}

/* Moves the steps retention no longer keeps from the list into f (Orbax drops them from its
 * list at save time too); they are deleted once the new step committed, or put back if the
 * save fails. */
static ckpt_status aside(ckpt_manager *m, mgr_finalize *f, int64_t *doomed, size_t n,
                         ckpt_error *err);

static ckpt_status set_aside(ckpt_manager *m, mgr_finalize *f, ckpt_error *err) {
  int64_t *doomed = NULL;
  size_t n = 0;
  ckpt_status st = mgr_steps_to_remove(&m->cfg, &m->steps, &doomed, &n, err);
  if (st != CKPT_OK || n == 0)
    return st;
  return aside(m, f, doomed, n, err);
}

/* Sets the listed steps aside into f (takes doomed over). */
static ckpt_status aside(ckpt_manager *m, mgr_finalize *f, int64_t *doomed, size_t n,
                         ckpt_error *err) {
  ckpt_status st = CKPT_OK;
  f->doomed = calloc(n, sizeof *f->doomed);
  f->doomed_paths = calloc(n, sizeof *f->doomed_paths);
  f->deleted = calloc(n, sizeof *f->deleted);
  if (f->doomed == NULL || f->doomed_paths == NULL || f->deleted == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory applying retention");
  for (size_t i = 0; i < n && st == CKPT_OK; i++) {
    f->doomed_paths[i] = mgr_step_path(&m->cfg, doomed[i]);
    if (f->doomed_paths[i] == NULL) {
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory applying retention");
      break;
    }
    ptrdiff_t at = mgr_steps_find(&m->steps, doomed[i]);
    if (at < 0) { /* the primary lists a step this process does not: nothing to set aside */
      free(f->doomed_paths[i]);
      f->doomed_paths[i] = NULL;
      st = ckpt_error_set(err, CKPT_EMISMATCH,
                          "retention: step %" PRId64 " is not listed by this process", doomed[i]);
      break;
    }
    f->doomed[i] = m->steps.v[at];
    m->steps.v[at].metrics = NULL; /* moved into f */
    mgr_steps_remove(&m->steps, doomed[i]);
    f->n_doomed = i + 1;
  }
  free(doomed);
  return st;
}

/* Undoes set_aside: every step set aside is listed again and nothing will be deleted. */
static void put_back(ckpt_manager *m, mgr_finalize *f) {
  for (size_t i = 0; i < f->n_doomed; i++) {
    mgr_steps_insert(&m->steps, f->doomed[i], NULL); /* no memory: it is relisted by reload */
    f->doomed[i].metrics = NULL;
    free(f->doomed_paths[i]);
    f->doomed_paths[i] = NULL;
  }
  f->n_doomed = 0;
  free(f->doomed);
  free(f->doomed_paths);
  free(f->deleted);
  f->doomed = NULL;
  f->doomed_paths = NULL;
  f->deleted = NULL;
}

/* Multi-process retention: the primary's choice, broadcast; every other process sets aside
 * exactly those steps (its own choice put back first). */
static ckpt_status sync_doomed(ckpt_manager *m, mgr_finalize *f, ckpt_error *err) {
  ckpt_process_group *pg = m->cfg.pg;
  uint64_t n = f->n_doomed;
  ckpt_status st = ckpt_process_group_broadcast(pg, m->cfg.primary, &n, sizeof n, err);
  int64_t *steps = st == CKPT_OK ? malloc(n ? n * sizeof *steps : 1) : NULL;
  if (st == CKPT_OK && steps == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM,
                          "out of memory applying retention (the other processes may wait)");
  if (st == CKPT_OK && mgr_is_primary(&m->cfg))
    for (size_t i = 0; i < n; i++)
      steps[i] = f->doomed[i].step;
  if (st == CKPT_OK && n > 0)
    st = ckpt_process_group_broadcast(pg, m->cfg.primary, steps, n * sizeof *steps, err);
  if (st != CKPT_OK || mgr_is_primary(&m->cfg)) {
    free(steps);
    return st;
  }
  put_back(m, f);
  if (n == 0) {
    free(steps);
    return CKPT_OK;
  }
  return aside(m, f, steps, (size_t)n, err);
}

ckpt_status ckpt_manager_save(ckpt_manager *m, int64_t step, const ckpt_args *args,
                              const cJSON *metrics, bool force, bool *saved, ckpt_error *err) {
  if (saved != NULL)
    *saved = false;
  if (m == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "manager is NULL");
  if (m->cfg.read_only)
    return ckpt_error_set(err, CKPT_ESTATE,
                          "save of step %" PRId64 " refused: the manager of '%s' is read-only",
                          step, m->cfg.dir);
  if (step < 0)
    return ckpt_error_set(err, CKPT_EINVAL, "save: step %" PRId64 " is negative", step);
  bool composite = false;
  ckpt_status st = check_save_args(m, step, args, &composite, err);
  if (st == CKPT_OK)
    st = check_metrics(m, step, metrics, err);
  bool multi = m->cfg.pg != NULL;
  if (multi) {
    /* Every process: the checks agreed, the previous save joined (its outcome was agreed, and
     * its finishing thread holds no collective any more), then the primary's should_save. */
    st = agree(&m->cfg, st, err);
    if (st == CKPT_OK)
      st = mgr_join(m, err);
    unsigned char go = force || ckpt_manager_should_save(m, step);
    if (st == CKPT_OK)
      st = ckpt_process_group_broadcast(m->cfg.pg, m->cfg.primary, &go, 1, err);
    if (st != CKPT_OK || !go)
      return st;
  }
  if (st != CKPT_OK)
    return st;
  if (!multi && !force && !ckpt_manager_should_save(m, step))
    return CKPT_OK;
  /* The previous save must have committed (and its deletions run) first. */
  st = mgr_join(m, err);
  if (st != CKPT_OK)
    return st;
  if (mgr_steps_find(&m->steps, step) >= 0)
    return ckpt_error_set(err, CKPT_EEXIST, "step %" PRId64 " already exists in '%s'", step,
                          m->cfg.dir);

  ckpt_args *margs = NULL;
  if (metrics != NULL && m->cfg.best_metric != NULL) {
    st = mgr_metrics_args(metrics, &margs, err);
    if (st != CKPT_OK)
      return st;
  }
  /* Multi-process: retention is decided before the save, by the primary, so that no
   * collective of the manager runs beside the checkpointer's background commit. */
  mgr_finalize *mf = NULL;
  if (multi) {
    mf = calloc(1, sizeof *mf);
    if (mf == NULL) {
      ckpt_args_delete(margs);
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory saving (the other processes may "
                            "wait)");
    }
    st = record_step(m, step, metrics, err);
    if (st == CKPT_OK)
      st = set_aside(m, mf, err);
    /* Joined by every process whatever happened here; the agreement settles it. */
    ckpt_status ss = sync_doomed(m, mf, err);
    st = agree(&m->cfg, st != CKPT_OK ? st : ss, err);
    if (st != CKPT_OK) {
      if (mf != NULL)
        put_back(m, mf);
      mgr_steps_remove(&m->steps, step);
      mgr_finalize_free(mf);
      ckpt_args_delete(margs);
      return st;
    }
  }
  ckpt_Composite comp;
  ckpt_Composite_items_entry *entries = NULL;
  char *path = mgr_step_path(&m->cfg, step);
  if (path == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory saving");
  if (st == CKPT_OK)
    st = build_save_args(args, composite, margs, &comp, &entries, err);
  /* Never force: an existing directory (another writer's, or a foreign file) is not ours to
   * replace. */
  if (st == CKPT_OK)
    st = ckpt_checkpointer_save(m->ckptr, path, &comp.base, false, NULL, err);
  free(entries);
  ckpt_args_delete(margs);
  if (st != CKPT_OK) {
    ckpt_error_prefix(err, "CheckpointManager save of step %" PRId64 ": ", step);
    free(path);
    if (mf != NULL) {
      put_back(m, mf);
      mgr_steps_remove(&m->steps, step);
      mgr_finalize_free(mf);
    }
    return st;
  }
  free(path);
  if (saved != NULL)
    *saved = true;
  m->mode = composite ? MGR_MODE_MULTI : MGR_MODE_SINGLE;
  if (mf != NULL) {
    mf->step = step;
    mf->wait_for_checkpointer = m->cfg.async;
    return mgr_finalize_start(m, mf, err);
  }

  /* The finishing part (finalize.c): wait for the commit, then delete what retention drops. */
  mgr_finalize *f = calloc(1, sizeof *f);
  if (f == NULL) {
    /* Without memory to track it, finish here: wait for the commit, delete nothing. */
    st = ckpt_checkpointer_wait_until_finished(m->ckptr, err);
    if (st == CKPT_OK)
      st = ckpt_error_set(err, CKPT_ENOMEM,
                          "step %" PRId64 " was saved, but recording it ran out of memory", step);
    return st;
  }
  f->step = step;
  f->wait_for_checkpointer = m->cfg.async;
  st = record_step(m, step, metrics, err);
  if (st == CKPT_OK)
    st = set_aside(m, f, err);
  if (st != CKPT_OK) {
    /* The save stands; nothing is deleted this time (the next save's retention catches up). */
    put_back(m, f);
    ckpt_error_prefix(err, "step %" PRId64 " was saved, but applying retention failed: ", step);
    ckpt_error scratch = CKPT_ERROR_INIT;
    mgr_finalize_start(m, f, &scratch);
    return st;
  }
  return mgr_finalize_start(m, f, err);
}

/* ================================================================ delete */

ckpt_status ckpt_manager_delete(ckpt_manager *m, int64_t step, ckpt_error *err) {
  if (m == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "manager is NULL");
  if (m->cfg.read_only)
    return ckpt_error_set(err, CKPT_ESTATE,
                          "delete of step %" PRId64 " refused: the manager of '%s' is read-only",
                          step, m->cfg.dir);
  ckpt_status st = mgr_join(m, err);
  if (st != CKPT_OK)
    return st;
  if (mgr_steps_find(&m->steps, step) < 0)
    return ckpt_error_set(err, CKPT_ENOENT,
                          "Requested deleting a non-existent step: %" PRId64 " (in '%s')", step,
                          m->cfg.dir);
  char *path = mgr_step_path(&m->cfg, step);
  if (path == NULL && m->cfg.pg == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  bool gone = false;
  /* Multi-process: only the primary deletes; its outcome is everyone's. */
  if (mgr_is_primary(&m->cfg))
    st = path != NULL ? mgr_delete_step_dir(&m->cfg, path, &gone, err)
                      : ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  free(path);
  if (m->cfg.pg != NULL) {
    unsigned char g = gone;
    ckpt_status bs = ckpt_process_group_broadcast(m->cfg.pg, m->cfg.primary, &g, 1, err);
    gone = g != 0;
    st = ckpt_process_group_share_outcome(m->cfg.pg, m->cfg.primary, bs != CKPT_OK ? bs : st,
                                          err);
  }
  if (gone)
    mgr_steps_remove(&m->steps, step);
  return st;
}

/* ================================================================ preemption */

ckpt_status ckpt_manager_reached_preemption(ckpt_manager *m, int64_t step, bool *reached,
                                            ckpt_error *err) {
  if (reached != NULL)
    *reached = false;
  if (m == NULL || reached == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "reached_preemption: NULL argument");
  if (m->cfg.pg == NULL) {
    *reached = ckpt_preemption_received();
    return CKPT_OK;
  }
  /* No collective of the finishing thread may run beside this one. */
  ckpt_status st = mgr_join(m, err);
  st = agree(&m->cfg, st, err);
  if (st != CKPT_OK)
    return st;
  int size = ckpt_process_group_size(m->cfg.pg);
  int64_t mine[2] = {step, ckpt_preemption_received() ? 1 : 0};
  int64_t *all = malloc((size_t)size * sizeof mine);
  if (all == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM,
                          "out of memory in reached_preemption (the other processes may wait)");
  st = ckpt_process_group_allgather(m->cfg.pg, mine, sizeof mine, all, err);
  for (int r = 0; st == CKPT_OK && r < size; r++) {
    if (all[2 * r] != step)
      st = ckpt_error_set(err, CKPT_EMISMATCH,
                          "reached_preemption: process %d is at step %" PRId64 ", this one at %" PRId64
                          " (every process must ask at the same step)",
                          r, all[2 * r], step);
    else if (all[2 * r + 1] != 0)
      *reached = true;
  }
  free(all);
  if (st != CKPT_OK)
    *reached = false;
  return st;
}
