/* cli/steps.c — the step directories of a CheckpointManager directory, seen from the outside.
 *
 * The tool does not know the manager's step_prefix or step_format_fixed_length, so it accepts
 * every name Orbax's naming can produce (storage/step_name.h): "<digits>" or
 * "<prefix>_<digits>", zero-padded or not, optionally followed by the tmp marker of a save in
 * flight or interrupted. Which directories are steps and which are finalized is decided by the
 * library's own discovery (storage/step_dirs.h, the rule the CheckpointManager applies), so the
 * tool lists exactly what a manager lists. cli_run_on_checkpoint turns PATH [--step] into the one checkpoint that
 * `ls` and `cat` act on, so both resolve and report steps alike. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "inspect/inspect.h"

bool cli_parse_step_name(const char *name, int64_t *step, bool *tmp) {
  ckpt_step_name s;
  if (!ckpt_step_name_parse(name, &s))
    return false;
  *step = s.step;
  *tmp = s.tmp;
  return true;
}

void cli_mgr_free(cli_mgr *m) {
  for (size_t i = 0; i < m->n; i++) {
    cli_step *s = &m->steps[i];
    free(s->name);
    free(s->path);
    cJSON_Delete(s->metrics);
    ckpt_io_free_names(s->items, s->n_items);
  }
  free(m->steps);
  free(m->path);
  memset(m, 0, sizeof *m);
}

/* Commit time, metrics and items of one step; problems reading them leave the fields unset
 * (ls shows what it can; verify looks closer). */
static ckpt_status describe_step(ckpt_io *io, cli_step *s, ckpt_error *err) {
  ckpt_step_metadata meta;
  ckpt_error ignored = CKPT_ERROR_INIT;
  bool meta_ok = ckpt_step_metadata_read(io, s->path, &meta, &ignored) == CKPT_OK;
  if (meta_ok && meta.has_commit_timestamp) {
    char init[32];
    s->has_commit_time = true;
    s->commit_nsecs = meta.commit_timestamp_nsecs;
    cli_read_timestamps(io, s->path, init, s->commit_text);
  }
  char *mpath = ckpt_path_join(s->path, "metrics/metrics");
  if (mpath == NULL) {
    if (meta_ok)
      ckpt_step_metadata_clear(&meta);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  }
  ckpt_io_kind kind = CKPT_IO_KIND_MISSING;
  uint64_t size;
  if (ckpt_io_stat(io, mpath, &kind, &size, NULL) == CKPT_OK && kind == CKPT_IO_KIND_FILE) {
    cJSON *m = NULL;
    ckpt_error e2 = CKPT_ERROR_INIT;
    if (ckpt_json_read_file(io, mpath, 64u << 20, &m, &e2) == CKPT_OK)
      s->metrics = m;
  }
  free(mpath);
  if (s->metrics == NULL && meta_ok && meta.metrics && meta.metrics->child) {
    s->metrics = meta.metrics;
    meta.metrics = NULL;
  }
  if (meta_ok)
    ckpt_step_metadata_clear(&meta);
  char **names = NULL;
  size_t n = 0;
  if (ckpt_io_list_dir(io, s->path, &names, &n, NULL) != CKPT_OK)
    return CKPT_OK;
  s->items = calloc(n ? n : 1, sizeof *s->items);
  if (s->items == NULL) {
    ckpt_io_free_names(names, n);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < n; i++) {
    if (!ckpt_path_is_tmp(names[i]) && cli_kind_of(io, s->path, names[i]) == CKPT_IO_KIND_DIR) {
      s->items[s->n_items++] = names[i];
      names[i] = NULL;
    }
  }
  ckpt_io_free_names(names, n);
  return CKPT_OK;
}

ckpt_status cli_mgr_scan(ckpt_io *io, const char *path, cli_mgr *m, ckpt_error *err) {
  memset(m, 0, sizeof *m);
  m->path = ckpt_path_normalize(path);
  if (m->path == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  /* Every name Orbax's step naming produces, tmp ones included; the manager's rule. */
  ckpt_step_filter f = {.any_name = true, .rule = CKPT_FINALIZED_ANY};
  ckpt_step_dir *dirs = NULL;
  size_t n = 0;
  ckpt_status st = ckpt_step_dirs_list(io, m->path, &f, &dirs, &n, err);
  if (st != CKPT_OK)
    return st;
  m->steps = calloc(n ? n : 1, sizeof *m->steps);
  if (m->steps == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  /* In the library's order: by step, finalized first, then by name. */
  for (size_t i = 0; st == CKPT_OK && i < n; i++) {
    cli_step *s = &m->steps[m->n++];
    s->step = dirs[i].step;
    s->tmp = dirs[i].tmp;
    s->finalized = dirs[i].info.state == CKPT_DIR_FINALIZED;
    s->commit_pending = dirs[i].info.pending;
    s->name = dirs[i].name;
    s->path = dirs[i].path;
    dirs[i].name = dirs[i].path = NULL;
    st = describe_step(io, s, err);
  }
  ckpt_step_dirs_free(dirs, n);
  return st;
}

const cli_step *cli_mgr_pick(const cli_mgr *m, int64_t step) {
  const cli_step *best = NULL;
  for (size_t i = 0; i < m->n; i++) {
    const cli_step *s = &m->steps[i];
    if (!s->finalized)
      continue;
    if (step < 0 ? (best == NULL || s->step > best->step) : s->step == step)
      best = s;
    if (step >= 0 && best)
      break;
  }
  return best;
}

int cli_run_on_checkpoint(ckpt_io *io, const char *cmd, const char *path, cli_path_kind kind,
                          bool has_step, int64_t step, cli_ckpt_fn fn, void *ctx) {
  if (kind != CLI_PATH_MANAGER) {
    if (has_step)
      return cli_usage_error(cmd, "--step applies to a directory of steps; '%s' is a checkpoint",
                             path);
    return fn(ctx, path);
  }
  cli_mgr m;
  ckpt_error err = CKPT_ERROR_INIT;
  if (cli_mgr_scan(io, path, &m, &err) != CKPT_OK) {
    cli_mgr_free(&m);
    return cli_report(&err);
  }
  const cli_step *s = cli_mgr_pick(&m, has_step ? step : -1);
  int rc;
  if (s == NULL) {
    if (has_step)
      fprintf(stderr, "ckpt: %s: '%s' has no finalized step %lld\n", cmd, path, (long long)step);
    else
      fprintf(stderr, "ckpt: %s: '%s' has no finalized step\n", cmd, path);
    rc = CLI_EXIT_ERROR;
  } else {
    rc = fn(ctx, s->path);
  }
  cli_mgr_free(&m);
  return rc;
}
