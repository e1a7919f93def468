/* manager/steps.c — step directories: naming, strict parsing, discovery, tmp cleanup, deletion,
 * and the in-memory step list (names: storage/step_name.h).
 *
 * Discovery lists only what a reader may trust: a child of the manager's directory whose name
 * is exactly a step name this manager would write (so "007" is foreign to an unpadded manager
 * and "7" to a padded one) and that is a finalized checkpoint (ckpt_is_finalized: a real
 * directory without the tmp marker, in commit-file mode with its commit file). Everything
 * else — files, symlinks, tmp directories, other people's directories — is ignored. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/composite.h"
#include "manager/manager_internal.h"
#include "storage/commit.h"
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

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Lists c->dir; a missing directory is an empty list. */
static ckpt_status list_root(const mgr_config *c, char ***names, size_t *n, ckpt_error *err) {
  *names = NULL;
  *n = 0;
  ckpt_io_kind kind;
  ckpt_status st = ckpt_io_stat(c->io, c->dir, &kind, NULL, err);
  if (st != CKPT_OK)
    return st;
  if (kind == CKPT_IO_KIND_MISSING)
    return CKPT_OK;
  st = ckpt_io_list_dir(c->io, c->dir, names, n, err);
  if (st != CKPT_OK)
    ckpt_error_prefix(err, "listing the steps of '%s': ", c->dir);
  return st;
}

ckpt_status mgr_discover(const mgr_config *c, int64_t **steps, size_t *n, ckpt_error *err) {
  *steps = NULL;
  *n = 0;
  char **names;
  size_t count;
  ckpt_status st = list_root(c, &names, &count, err);
  if (st != CKPT_OK || count == 0)
    return st;
  int64_t *v = malloc(count * sizeof *v);
  if (v == NULL) {
    ckpt_io_free_names(names, count);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory listing '%s'", c->dir);
  }
  size_t k = 0;
  for (size_t i = 0; i < count && st == CKPT_OK; i++) {
    int64_t step;
    if (!ckpt_step_name_match(names[i], c->step_prefix, c->step_len, &step))
      continue;
    char *path = ckpt_path_join(c->dir, names[i]);
    if (path == NULL) {
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory listing '%s'", c->dir);
      break;
    }
    if (ckpt_is_finalized(c->io, path, c->atomicity))
      v[k++] = step;
    free(path);
  }
  ckpt_io_free_names(names, count);
  if (st != CKPT_OK) {
    free(v);
    return st;
  }
  /* Two names cannot parse to one step (the parse is the inverse of the formatting). */
  qsort(v, k, sizeof *v, cmp_i64);
  if (k == 0) {
    free(v);
    v = NULL;
  }
  *steps = v;
  *n = k;
  return CKPT_OK;
}

ckpt_status mgr_cleanup_tmp(const mgr_config *c, ckpt_error *err) {
  char **names;
  size_t count;
  ckpt_status st = list_root(c, &names, &count, err);
  if (st != CKPT_OK)
    return st;
  for (size_t i = 0; i < count && st == CKPT_OK; i++) {
    int64_t step;
    bool doomed = strstr(names[i], CKPT_TMP_SUFFIX) != NULL;
    bool step_dir = !doomed && c->atomicity == CKPT_ATOMICITY_COMMIT_FILE &&
                    ckpt_step_name_match(names[i], c->step_prefix, c->step_len, &step);
    if (!doomed && !step_dir)
      continue;
    char *path = ckpt_path_join(c->dir, names[i]);
    if (path == NULL) {
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory cleaning '%s'", c->dir);
      break;
    }
    if (step_dir) {
      /* Commit-file mode: an interrupted save is a step directory without its commit file. */
      ckpt_io_kind kind;
      st = ckpt_io_stat(c->io, path, &kind, NULL, err);
      doomed = st == CKPT_OK && kind == CKPT_IO_KIND_DIR &&
               !ckpt_is_finalized(c->io, path, c->atomicity);
    }
    if (st == CKPT_OK && doomed) {
      st = ckpt_io_remove_tree(c->io, path, err);
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
  *gone = false;
  ckpt_status st;
  if (c->atomicity == CKPT_ATOMICITY_COMMIT_FILE) {
    /* Without its commit file the directory is an interrupted save to every reader. */
    char *cf = ckpt_path_join(path, CKPT_COMMIT_FILE);
    if (cf == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory deleting '%s'", path);
    st = ckpt_io_remove_tree(c->io, cf, err);
    free(cf);
    if (st != CKPT_OK) {
      ckpt_error_prefix(err, "deleting step '%s': ", path);
      return st;
    }
    *gone = true;
    st = ckpt_io_remove_tree(c->io, path, err);
    if (st != CKPT_OK)
      ckpt_error_prefix(err, "deleting step '%s': ", path);
    return st;
  }
  char *doomed = ckpt_path_with_suffix(path, MGR_DELETING_SUFFIX);
  if (doomed == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory deleting '%s'", path);
  /* A leftover of an earlier failed deletion would make the rename fail. */
  st = ckpt_io_remove_tree(c->io, doomed, err);
  if (st == CKPT_OK)
    st = ckpt_io_rename(c->io, path, doomed, err);
  if (st == CKPT_OK) {
    *gone = true;
    st = ckpt_io_remove_tree(c->io, doomed, err);
  }
  if (st != CKPT_OK)
    ckpt_error_prefix(err, "deleting step '%s': ", path);
  free(doomed);
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
