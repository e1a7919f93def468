/* manager/steps.c — step directories: naming, discovery, tmp cleanup, deletion, and the
 * in-memory step list (names: storage/step_name.h; the scan and the finalized rule:
 * storage/step_dirs.h, shared with the `ckpt` tool).
 *
 * Discovery lists only what a reader may trust: a child of the manager's directory whose name
 * is exactly a step name this manager would write (so "007" is foreign to an unpadded manager
 * and "7" to a padded one) and that is a finalized checkpoint by the shared rule. Everything
 * else — files, symlinks, tmp directories, other people's directories — is ignored. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/composite.h"
#include "manager/manager_internal.h"
#include "storage/step_dirs.h"
#include "storage/step_name.h"
#include "storage/subdirs.h"
#include "util/path.h"

/* ================================================================ the step list */

void mgr_steps_clear(mgr_steps *s) {
  for (size_t i = 0; i < s->n; i++)
    cJSON_Delete(s->v[i].metrics);
  free(s->v);
  memset(s, 0, sizeof *s);
}

/* Index of the first entry with .step >= step. */
static size_t lower_bound(const mgr_steps *s, int64_t step) {
  size_t lo = 0, hi = s->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->v[mid].step < step)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

ptrdiff_t mgr_steps_find(const mgr_steps *s, int64_t step) {
  size_t i = lower_bound(s, step);
  return i < s->n && s->v[i].step == step ? (ptrdiff_t)i : -1;
}

ckpt_status mgr_steps_insert(mgr_steps *s, mgr_step info, ckpt_error *err) {
  size_t at = lower_bound(s, info.step);
  if (at < s->n && s->v[at].step == info.step) {
    /* Already known: the newer information wins. */
    cJSON_Delete(s->v[at].metrics);
    s->v[at].metrics = info.metrics;
    return CKPT_OK;
  }
  if (s->n == s->cap) {
    size_t ncap = s->cap != 0 ? s->cap * 2 : 16;
    mgr_step *nv = realloc(s->v, ncap * sizeof *nv);
    if (nv == NULL) {
      cJSON_Delete(info.metrics);
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory recording step %" PRId64, info.step);
    }
    s->v = nv;
    s->cap = ncap;
  }
  memmove(s->v + at + 1, s->v + at, (s->n - at) * sizeof *s->v);
  s->v[at] = info;
  s->n++;
  return CKPT_OK;
}

void mgr_steps_remove(mgr_steps *s, int64_t step) {
  ptrdiff_t i = mgr_steps_find(s, step);
  if (i < 0)
    return;
  cJSON_Delete(s->v[i].metrics);
  memmove(s->v + i, s->v + i + 1, (s->n - (size_t)i - 1) * sizeof *s->v);
  s->n--;
}

/* ================================================================ names */

char *mgr_step_path(const mgr_config *c, int64_t step) {
  char *name = ckpt_step_name_format(c->step_prefix, c->step_len, step);
  if (name == NULL)
    return NULL;
  char *p = ckpt_path_join(c->dir, name);
  free(name);
  return p;
}

/* ================================================================ discovery */

/* Discovery and the step checks use the rule the `ckpt` tool uses (storage/step_dirs.h,
 * CKPT_FINALIZED_ANY), whichever mode this manager writes in: what one lists, the other lists. */
static ckpt_step_filter step_filter(const mgr_config *c, bool finalized_only) {
  ckpt_step_filter f = {0};
  f.prefix = c->step_prefix;
  f.fixed_len = c->step_len;
  f.rule = CKPT_FINALIZED_ANY;
  f.finalized_only = finalized_only;
  f.missing_ok = true;
  return f;
}

ckpt_status mgr_step_finalized(const mgr_config *c, const char *path, bool *yes,
                               ckpt_error *err) {
  ckpt_dir_info info;
  ckpt_status st = ckpt_dir_classify(c->io, path, CKPT_FINALIZED_ANY, &info, err);
  *yes = st == CKPT_OK && info.state == CKPT_DIR_FINALIZED;
  return st;
}

ckpt_status mgr_discover(const mgr_config *c, int64_t **steps, size_t *n, ckpt_error *err) {
  *steps = NULL;
  *n = 0;
  ckpt_step_filter f = step_filter(c, true);
  ckpt_step_dir *dirs;
  size_t count;
  ckpt_status st = ckpt_step_dirs_list(c->io, c->dir, &f, &dirs, &count, err);
  if (st != CKPT_OK || count == 0)
    return st;
  int64_t *v = malloc(count * sizeof *v);
  if (v == NULL) {
    ckpt_step_dirs_free(dirs, count);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory listing '%s'", c->dir);
  }
  /* Sorted by step; two names cannot parse to one step (the parse inverts the formatting). */
  for (size_t i = 0; i < count; i++)
    v[i] = dirs[i].step;
  ckpt_step_dirs_free(dirs, count);
  *steps = v;
  *n = count;
  return CKPT_OK;
}

ckpt_status mgr_cleanup_tmp(const mgr_config *c, ckpt_error *err) {
  ckpt_io_kind kind;
  ckpt_status st = ckpt_io_stat(c->io, c->dir, &kind, NULL, err);
  if (st != CKPT_OK || kind == CKPT_IO_KIND_MISSING)
    return st;
  char **names;
  size_t count;
  st = ckpt_io_list_dir(c->io, c->dir, &names, &count, err);
  if (st != CKPT_OK) {
    ckpt_error_prefix(err, "listing the steps of '%s': ", c->dir);
    return st;
  }
  for (size_t i = 0; i < count && st == CKPT_OK; i++) {
    int64_t step;
    bool doomed = ckpt_path_is_tmp(names[i]);
    bool step_dir = !doomed && ckpt_step_name_match(names[i], c->step_prefix, c->step_len, &step);
    if (!doomed && !step_dir)
      continue;
    char *path = ckpt_path_join(c->dir, names[i]);
    if (path == NULL) {
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory cleaning '%s'", c->dir);
      break;
    }
    bool hide = false;
    if (step_dir) {
      /* An interrupted commit-file save: its pending marker says so in either mode; in
       * commit-file mode any unfinalized step directory is one (it may have died before
       * writing the marker). Hidden first: it may carry a commit timestamp. */
      ckpt_dir_info info;
      st = ckpt_dir_classify(c->io, path, CKPT_FINALIZED_ANY, &info, err);
      hide = doomed = st == CKPT_OK && info.state == CKPT_DIR_UNFINALIZED &&
                      (info.pending || c->atomicity == CKPT_ATOMICITY_COMMIT_FILE);
    }
    if (st == CKPT_OK && doomed) {
      st = hide ? ckpt_dir_remove_hidden(c->io, path, NULL, err)
                : ckpt_io_remove_tree(c->io, path, err);
      if (st != CKPT_OK)
        ckpt_error_prefix(err, "cleanup_tmp_directories: ");
    }
    free(path);
  }
  ckpt_io_free_names(names, count);
  return st;
}

/* ================================================================ deletion */

ckpt_status mgr_delete_step_dir(const mgr_config *c, const char *path, bool *gone,
                                ckpt_error *err) {
  /* Both modes: out of the step namespace under a tmp name first (no reader lists it from
   * then on, whatever it still holds), then removed. */
  ckpt_status st = ckpt_dir_remove_hidden(c->io, path, gone, err);
  if (st != CKPT_OK)
    ckpt_error_prefix(err, "deleting step '%s': ", path);
  return st;
}

/* ================================================================ items of a step */

ckpt_status mgr_step_items(const mgr_config *c, const char *step_dir, char ***names, size_t *count,
                           ckpt_error *err) {
  return ckpt_list_subdirs(c->io, step_dir, ckpt_composite_check_item_name, names, count, err);
}

ckpt_status mgr_step_mode(const mgr_config *c, const char *step_dir, mgr_mode *mode,
                          ckpt_error *err) {
  *mode = MGR_MODE_UNKNOWN;
  char **names;
  size_t n;
  ckpt_status st = mgr_step_items(c, step_dir, &names, &n, err);
  if (st != CKPT_OK)
    return st;
  size_t items = 0;
  bool has_default = false;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(names[i], CKPT_MANAGER_METRICS_ITEM) == 0)
      continue;
    items++;
    if (strcmp(names[i], CKPT_MANAGER_DEFAULT_ITEM) == 0)
      has_default = true;
  }
  ckpt_io_free_names(names, n);
  if (items == 1 && has_default)
    *mode = MGR_MODE_SINGLE;
  else if (items > 0)
    *mode = MGR_MODE_MULTI;
  return CKPT_OK;
}
