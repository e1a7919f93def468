/* storage/step_dirs.c — finalized checkpoints, step discovery, hidden removal (see
 * step_dirs.h for the rule and the states it covers). */
#include "storage/step_dirs.h"

#include <stdlib.h>
#include <string.h>

#include "storage/checkpoint_metadata.h"
#include "storage/step_name.h"
#include "util/path.h"

/* lstat of dir/name; *kind MISSING when absent. */
static ckpt_status stat_child(ckpt_io *io, const char *dir, const char *name, ckpt_io_kind *kind,
                              ckpt_error *err) {
  *kind = CKPT_IO_KIND_MISSING;
  char *p = ckpt_path_join(dir, name);
  if (p == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory checking '%s'", dir);
  ckpt_status st = ckpt_io_stat(io, p, kind, NULL, err);
  free(p);
  return st;
}


/* Does dir/_CHECKPOINT_METADATA carry a commit timestamp? Only I/O errors are errors: a
 * missing or malformed file is just "no". */
static ckpt_status has_commit_timestamp(ckpt_io *io, const char *dir, bool *yes, ckpt_error *err) {
  *yes = false;
  ckpt_step_metadata meta = {0};
  ckpt_error e = CKPT_ERROR_INIT;
  ckpt_status st = ckpt_step_metadata_read(io, dir, &meta, &e);
  if (st == CKPT_OK)
    *yes = meta.has_commit_timestamp;
  ckpt_step_metadata_clear(&meta);
  if (st == CKPT_OK || st == CKPT_ENOENT || st == CKPT_ECORRUPT || st == CKPT_EUNSAFE)
    return CKPT_OK;
  return ckpt_error_set(err, st, "%s", e.message);
}

ckpt_status ckpt_dir_classify(ckpt_io *io, const char *path, ckpt_finalized_rule rule,
                              ckpt_dir_info *out, ckpt_error *err) {
  memset(out, 0, sizeof *out);
  if (path == NULL || path[0] == '\0')
    return CKPT_OK;
  char *norm = ckpt_path_normalize(path);
  if (norm == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory checking '%s'", path);
  ckpt_status st = ckpt_io_stat(io, norm, &out->kind, NULL, err);
  if (st != CKPT_OK || out->kind != CKPT_IO_KIND_DIR)
    goto done;
  if (ckpt_path_is_tmp(norm)) {
    out->state = CKPT_DIR_TEMPORARY;
    goto done;
  }
  ckpt_io_kind k;
  st = stat_child(io, norm, CKPT_COMMIT_FILE, &k, err);
  if (st != CKPT_OK)
    goto done;
  out->commit_file = k == CKPT_IO_KIND_FILE;
  if (out->commit_file) {
    out->state = CKPT_DIR_FINALIZED;
    goto done;
  }
  st = stat_child(io, norm, CKPT_COMMIT_PENDING_FILE, &k, err);
  if (st != CKPT_OK)
    goto done;
  out->pending = k != CKPT_IO_KIND_MISSING;
  bool ok = false;
  if (!out->pending && rule == CKPT_FINALIZED_RENAME)
    ok = true;
  else if (!out->pending && rule == CKPT_FINALIZED_ANY)
    st = has_commit_timestamp(io, norm, &ok, err);
  out->state = ok ? CKPT_DIR_FINALIZED : CKPT_DIR_UNFINALIZED;
done:
  free(norm);
  return st;
}

/* ================================================================ discovery */

void ckpt_step_dirs_free(ckpt_step_dir *v, size_t n) {
  for (size_t i = 0; v != NULL && i < n; i++) {
    free(v[i].name);
    free(v[i].path);
  }
  free(v);
}

static int cmp_step_dirs(const void *a, const void *b) {
  const ckpt_step_dir *x = a, *y = b;
  if (x->step != y->step)
    return x->step < y->step ? -1 : 1;
  bool fx = x->info.state == CKPT_DIR_FINALIZED, fy = y->info.state == CKPT_DIR_FINALIZED;
  if (fx != fy)
    return fx ? -1 : 1;
  return strcmp(x->name, y->name);
}

static bool name_accepted(const ckpt_step_filter *f, const char *name, int64_t *step, bool *tmp) {
  if (f->any_name) {
    ckpt_step_name s;
    if (!ckpt_step_name_parse(name, &s))
      return false;
    *step = s.step;
    *tmp = s.tmp;
    return true;
  }
  *tmp = false;
  return ckpt_step_name_match(name, f->prefix, f->fixed_len, step);
}

ckpt_status ckpt_step_dirs_list(ckpt_io *io, const char *dir, const ckpt_step_filter *f,
                                ckpt_step_dir **out, size_t *n, ckpt_error *err) {
  *out = NULL;
  *n = 0;
  if (f->missing_ok) {
    ckpt_io_kind kind;
    ckpt_status st = ckpt_io_stat(io, dir, &kind, NULL, err);
    if (st != CKPT_OK || kind == CKPT_IO_KIND_MISSING)
      return st;
  }
  char **names = NULL;
  size_t count = 0;
  ckpt_status st = ckpt_io_list_dir(io, dir, &names, &count, err);
  if (st != CKPT_OK) {
    ckpt_error_prefix(err, "listing the steps of '%s': ", dir);
    return st;
  }
  ckpt_step_dir *v = count != 0 ? calloc(count, sizeof *v) : NULL;
  if (count != 0 && v == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory listing '%s'", dir);
  size_t k = 0;
  for (size_t i = 0; i < count && st == CKPT_OK; i++) {
    int64_t step;
    bool tmp;
    if (!name_accepted(f, names[i], &step, &tmp))
      continue;
    ckpt_step_dir *s = &v[k];
    s->path = ckpt_path_join(dir, names[i]);
    if (s->path == NULL) {
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory listing '%s'", dir);
      break;
    }
    st = ckpt_dir_classify(io, s->path, f->rule, &s->info, err);
    bool keep = st == CKPT_OK && s->info.kind == CKPT_IO_KIND_DIR &&
                (!f->finalized_only || s->info.state == CKPT_DIR_FINALIZED);
    if (!keep) {
      free(s->path);
      s->path = NULL;
      continue;
    }
    s->step = step;
    s->tmp = tmp;
    s->name = names[i];
    names[i] = NULL;
    k++;
  }
  ckpt_io_free_names(names, count);
  if (st != CKPT_OK) {
    ckpt_step_dirs_free(v, k);
    return st;
  }
  if (k > 1)
    qsort(v, k, sizeof *v, cmp_step_dirs);
  if (k == 0) {
    free(v);
    v = NULL;
  }
  *out = v;
  *n = k;
  return CKPT_OK;
}

/* ================================================================ removal */

ckpt_status ckpt_dir_remove_hidden(ckpt_io *io, const char *path, bool *hidden, ckpt_error *err) {
  if (hidden != NULL)
    *hidden = false;
  ckpt_io_kind kind;
  ckpt_status st = ckpt_io_stat(io, path, &kind, NULL, err);
  if (st != CKPT_OK || kind == CKPT_IO_KIND_MISSING)
    return st;
  if (kind != CKPT_IO_KIND_DIR) /* a file or symlink has no half-removed state */
    return ckpt_io_remove_tree(io, path, err);
  char *doomed = ckpt_path_with_suffix(path, CKPT_DELETING_SUFFIX);
  char *parent = ckpt_path_parent(path);
  if (doomed == NULL || parent == NULL) {
    free(doomed);
    free(parent);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory removing '%s'", path);
  }
  /* A leftover of an earlier interrupted removal would make the rename fail. */
  st = ckpt_io_remove_tree(io, doomed, err);
  if (st == CKPT_OK)
    st = ckpt_io_rename(io, path, doomed, err);
  if (st == CKPT_OK && hidden != NULL)
    *hidden = true;
  /* The rename reaches the disk before the first file of the tree goes: after a power loss
   * the directory is either whole under its name or hidden. */
  if (st == CKPT_OK)
    st = ckpt_io_fsync_dir(io, parent, err);
  if (st == CKPT_OK)
    st = ckpt_io_remove_tree(io, doomed, err);
  free(doomed);
  free(parent);
  return st;
}
