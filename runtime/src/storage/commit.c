/* storage/commit.c — tmp directory, commit file, fsyncs and the atomic rename (see commit.h). */
#include "storage/commit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/step_dirs.h"
#include "util/path.h"

void ckpt_commit_clear(ckpt_commit *c) {
  if (c == NULL)
    return;
  free(c->final_path);
  free(c->tmp_path);
  free(c->parent);
  memset(c, 0, sizeof *c);
}

/* Writes <dir>/<name> with the commit file's text. */
static ckpt_status write_commit_text(ckpt_io *io, const char *dir, const char *name,
                                     const char *final_path, bool durable, ckpt_error *err) {
  char *path = ckpt_path_join(dir, name);
  char *text = ckpt_path_with_suffix("Checkpoint commit was successful to ", final_path);
  ckpt_status st;
  if (path == NULL || text == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory committing '%s'", final_path);
  else
    st = ckpt_io_write_file(io, path, text, strlen(text), durable, err);
  free(path);
  free(text);
  return st;
}

ckpt_status ckpt_write_commit_file(ckpt_io *io, const char *dir, const char *final_path,
                                   bool durable, ckpt_error *err) {
  return write_commit_text(io, dir, CKPT_COMMIT_FILE, final_path, durable, err);
}

/* Is there a commit file in dir (commit-file mode's "finalized")? */
static ckpt_status has_commit_file(ckpt_io *io, const char *dir, bool *yes, ckpt_error *err) {
  *yes = false;
  char *p = ckpt_path_join(dir, CKPT_COMMIT_FILE);
  if (p == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory checking '%s'", dir);
  ckpt_io_kind kind;
  ckpt_status st = ckpt_io_stat(io, p, &kind, NULL, err);
  free(p);
  if (st == CKPT_OK)
    *yes = kind == CKPT_IO_KIND_FILE;
  return st;
}

/* A forced replace without RENAME_EXCHANGE moves the old checkpoint to <path>-replaced, then
 * the new one in (replace_by_two_renames). Killed between the two, the checkpoint exists only
 * aside: move it back before anything else looks at <path>, or the leftover cleanup below
 * would delete the only copy. */
static ckpt_status recover_replaced(ckpt_commit *c, ckpt_error *err) {
  char *aside = ckpt_path_with_suffix(c->final_path, CKPT_REPLACED_SUFFIX);
  if (aside == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_io_kind final_kind, aside_kind;
  ckpt_status st = ckpt_io_stat(c->io, c->final_path, &final_kind, NULL, err);
  if (st == CKPT_OK)
    st = ckpt_io_stat(c->io, aside, &aside_kind, NULL, err);
  if (st == CKPT_OK && final_kind == CKPT_IO_KIND_MISSING && aside_kind == CKPT_IO_KIND_DIR) {
    st = ckpt_io_rename(c->io, aside, c->final_path, err);
    if (st == CKPT_OK)
      st = ckpt_io_fsync_dir(c->io, c->parent, err);
  }
  free(aside);
  return st;
}

ckpt_status ckpt_commit_paths(ckpt_commit *c, ckpt_io *io, ckpt_atomicity atomicity,
                              const char *path, ckpt_error *err) {
  memset(c, 0, sizeof *c);
  c->io = io != NULL ? io : ckpt_io_default();
  c->atomicity = atomicity;
  if (path == NULL || path[0] == '\0')
    return ckpt_error_set(err, CKPT_EINVAL, "checkpoint path is empty");
  if (atomicity != CKPT_ATOMICITY_RENAME && atomicity != CKPT_ATOMICITY_COMMIT_FILE)
    return ckpt_error_set(err, CKPT_EINVAL, "unknown atomicity mode %d", (int)atomicity);
  c->final_path = ckpt_path_normalize(path);
  if (c->final_path == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  if (strcmp(c->final_path, "/") == 0)
    return ckpt_error_set(err, CKPT_EINVAL, "cannot save a checkpoint at '/'");
  const char *base = ckpt_path_base(c->final_path);
  if (ckpt_path_is_tmp(base))
    return ckpt_error_set(err, CKPT_EINVAL,
                          "checkpoint path '%s' carries the reserved temporary suffix \"%s\"",
                          c->final_path, CKPT_TMP_SUFFIX);
  /* Every name ckpt derives from the checkpoint's (tmp, replaced, deleting) must fit in one
   * directory entry too, or the save would fail half-way with ENAMETOOLONG. */
  if (strlen(base) > CKPT_CHECKPOINT_NAME_MAX)
    return ckpt_error_set(err, CKPT_EINVAL,
                          "checkpoint name \"%.40s...\" is %zu bytes long; at most %d are allowed "
                          "(%d, the longest file name, minus the %zu of the suffix \"%s\" ckpt "
                          "may append)",
                          base, strlen(base), CKPT_CHECKPOINT_NAME_MAX, CKPT_NAME_MAX,
                          strlen(CKPT_DELETING_SUFFIX), CKPT_DELETING_SUFFIX);
  c->parent = ckpt_path_parent(c->final_path);
  c->tmp_path = atomicity == CKPT_ATOMICITY_RENAME
                    ? ckpt_path_with_suffix(c->final_path, CKPT_TMP_SUFFIX)
                    : strdup(c->final_path);
  if (c->parent == NULL || c->tmp_path == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  return CKPT_OK;
}

ckpt_status ckpt_commit_begin(ckpt_commit *c, ckpt_io *io, ckpt_atomicity atomicity,
                              const char *path, bool force, ckpt_error *err) {
  ckpt_status st = ckpt_commit_paths(c, io, atomicity, path, err);
  if (st != CKPT_OK)
    return st;
  if (atomicity == CKPT_ATOMICITY_RENAME) {
    st = recover_replaced(c, err);
    if (st != CKPT_OK)
      return st;
  }
  ckpt_io_kind kind;
  st = ckpt_io_stat(c->io, c->final_path, &kind, NULL, err);
  if (st != CKPT_OK)
    return st;
  if (kind != CKPT_IO_KIND_MISSING) {
    bool stale = false;
    if (atomicity == CKPT_ATOMICITY_COMMIT_FILE && kind == CKPT_IO_KIND_DIR) {
      /* In commit-file mode a directory without the commit file is an interrupted save: the
       * counterpart of a stale tmp directory, removed the same way. */
      bool committed;
      st = has_commit_file(c->io, c->final_path, &committed, err);
      if (st != CKPT_OK)
        return st;
      stale = !committed;
    }
    if (!stale && !force)
      return ckpt_error_set(err, CKPT_EEXIST,
                            "Destination '%s' already exists; pass force to replace it",
                            c->final_path);
    if (atomicity == CKPT_ATOMICITY_COMMIT_FILE) {
      /* Writing in place leaves no way to keep the old checkpoint until the new one is
       * complete: it goes first, as in Orbax — hidden under a tmp name before its first file
       * is removed, so that no reader ever sees it finalized and half gone. */
      st = ckpt_dir_remove_hidden(c->io, c->final_path, NULL, err);
      if (st != CKPT_OK)
        return st;
    } else {
      c->replace = true;
    }
  }
  if (atomicity == CKPT_ATOMICITY_RENAME) {
    /* Leftovers of an interrupted save (or of a replace interrupted before its cleanup). */
    st = ckpt_io_remove_tree(c->io, c->tmp_path, err);
    if (st != CKPT_OK)
      return st;
    char *aside = ckpt_path_with_suffix(c->final_path, CKPT_REPLACED_SUFFIX);
    if (aside == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    st = ckpt_io_remove_tree(c->io, aside, err);
    free(aside);
    if (st != CKPT_OK)
      return st;
  }
  st = ckpt_io_mkdirs(c->io, c->parent, err);
  if (st != CKPT_OK)
    return st;
  st = ckpt_io_mkdir(c->io, c->tmp_path, err);
  if (st != CKPT_OK)
    return st;
  c->created = true;
  if (atomicity == CKPT_ATOMICITY_COMMIT_FILE) {
    /* The first file: the commit file under its pending name. Until finish renames it, it
     * marks the directory as a save in progress to every reader, whatever else appears in it
     * meanwhile (the commit timestamp included; storage/step_dirs.h). */
    st = write_commit_text(c->io, c->tmp_path, CKPT_COMMIT_PENDING_FILE, c->final_path, false,
                           err);
  }
  return st;
}

ckpt_status ckpt_commit_prepare(ckpt_commit *c, ckpt_error *err) {
  if (c->final_path == NULL || !c->created)
    return ckpt_error_set(err, CKPT_ESTATE, "commit without a started save");
  if (c->atomicity != CKPT_ATOMICITY_COMMIT_FILE)
    return CKPT_OK;
  /* The pending marker's entry reaches the disk before anything that could make the
   * directory look committed after a power loss. */
  return ckpt_io_fsync_dir(c->io, c->tmp_path, err);
}

/* Rename mode with a checkpoint to replace, on a file system without RENAME_EXCHANGE: move the
 * old one aside, move the new one in (moving the old one back if that fails). On success the
 * old checkpoint is at *aside_out for the caller to remove. */
static ckpt_status replace_by_two_renames(ckpt_commit *c, char **aside_out, ckpt_error *err) {
  char *aside = ckpt_path_with_suffix(c->final_path, CKPT_REPLACED_SUFFIX);
  if (aside == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_status st = ckpt_io_rename(c->io, c->final_path, aside, err);
  if (st == CKPT_OK) {
    st = ckpt_io_rename(c->io, c->tmp_path, c->final_path, err);
    if (st != CKPT_OK) {
      ckpt_error scratch = CKPT_ERROR_INIT;
      ckpt_io_rename(c->io, aside, c->final_path, &scratch);
    }
  }
  if (st != CKPT_OK) {
    free(aside);
    return st;
  }
  *aside_out = aside;
  return CKPT_OK;
}

ckpt_status ckpt_commit_finish(ckpt_commit *c, ckpt_error *err) {
  if (c->final_path == NULL || !c->created)
    return ckpt_error_set(err, CKPT_ESTATE, "commit without a started save");
  ckpt_status st;
  if (c->atomicity == CKPT_ATOMICITY_COMMIT_FILE) {
    /* The commit file is the commit: everything else must be durable before it is written,
     * and it must be durable (with its directory entry) before the save reports success. */
    st = ckpt_sync_tree(c->io, c->engine, c->durable, c->tmp_path, err);
    /* The pending marker (fsync'd with the tree) becomes the commit file in one rename: there
     * is no moment at which the directory has neither, or a commit file half written. */
    char *pending = ckpt_path_join(c->tmp_path, CKPT_COMMIT_PENDING_FILE);
    char *commit = ckpt_path_join(c->tmp_path, CKPT_COMMIT_FILE);
    if (st == CKPT_OK && (pending == NULL || commit == NULL))
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory committing '%s'", c->final_path);
    if (st == CKPT_OK)
      st = ckpt_io_rename(c->io, pending, commit, err);
    free(pending);
    free(commit);
    if (st == CKPT_OK)
      st = ckpt_io_fsync_dir(c->io, c->tmp_path, err);
    /* The checkpoint directory's own entry in its parent. */
    if (st == CKPT_OK)
      st = ckpt_io_fsync_dir(c->io, c->parent, err);
    if (st == CKPT_OK)
      c->committed = true;
    return st;
  }

  /* Rename mode: the rename is the commit, so the commit file (Orbax writes it in every mode
   * since 0.12.3) is just another file, made durable with the rest: every file and directory
   * under the tmp directory is durable before anything declares it committed — fsync'd here,
   * or already fsync'd by the job that wrote it and claimed (c->durable). */
  st = ckpt_write_commit_file(c->io, c->tmp_path, c->final_path, false, err);
  if (st == CKPT_OK)
    st = ckpt_sync_tree(c->io, c->engine, c->durable, c->tmp_path, err);
  if (st != CKPT_OK)
    return st;

  /* The rename that publishes it. */
  bool exchanged = false;
  char *aside = NULL;
  if (c->replace) {
    st = ckpt_io_exchange(c->io, c->tmp_path, c->final_path, &exchanged, err);
    if (st == CKPT_OK && !exchanged)
      st = replace_by_two_renames(c, &aside, err);
  } else {
    st = ckpt_io_rename(c->io, c->tmp_path, c->final_path, err);
  }
  if (st != CKPT_OK)
    return st;

  /* The rename is durable only once the parent is synced. If that fails, undo it: a save
   * that reports an error must not leave a checkpoint readers could pick up. */
  st = ckpt_io_fsync_dir(c->io, c->parent, err);
  if (st != CKPT_OK) {
    ckpt_error scratch = CKPT_ERROR_INIT;
    ckpt_status undo;
    if (exchanged) {
      bool again = false;
      undo = ckpt_io_exchange(c->io, c->tmp_path, c->final_path, &again, &scratch);
      if (undo == CKPT_OK && !again)
        undo = CKPT_EIO;
    } else {
      undo = ckpt_io_rename(c->io, c->final_path, c->tmp_path, &scratch);
      if (undo == CKPT_OK && aside != NULL)
        undo = ckpt_io_rename(c->io, aside, c->final_path, &scratch);
    }
    if (undo != CKPT_OK)
      ckpt_error_prefix(err,
                        "the checkpoint at '%s' may be visible but not durable: ", c->final_path);
    free(aside);
    return st;
  }
  c->committed = true;

  /* The replaced checkpoint (now at the tmp path, or aside) goes. The new checkpoint is
   * committed whatever happens here; a failure is still reported, naming what is left. */
  if (c->replace) {
    const char *old = exchanged ? c->tmp_path : aside;
    st = ckpt_io_remove_tree(c->io, old, err);
    if (st != CKPT_OK)
      ckpt_error_prefix(err,
                        "checkpoint committed at '%s', but removing the replaced one "
                        "(left at '%s') failed: ",
                        c->final_path, old);
  }
  free(aside);
  return st;
}

void ckpt_commit_abort(ckpt_commit *c) {
  if (c == NULL || !c->created || c->committed || c->tmp_path == NULL)
    return;
  ckpt_error scratch = CKPT_ERROR_INIT;
  /* Best effort: what stays behind carries the tmp suffix (rename mode; in commit-file mode
   * the directory is hidden under one before its pending marker can go), so no reader takes
   * it for a checkpoint, and the next save of this path (or `ckpt gc`) removes it. */
  if (c->atomicity == CKPT_ATOMICITY_COMMIT_FILE)
    ckpt_dir_remove_hidden(c->io, c->tmp_path, NULL, &scratch);
  else
    ckpt_io_remove_tree(c->io, c->tmp_path, &scratch);
  c->created = false;
}
