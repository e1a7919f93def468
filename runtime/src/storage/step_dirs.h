/* storage/step_dirs.h — when a directory is a finalized checkpoint, which children of a
 * directory are steps, and how a checkpoint is removed without ever looking finalized half-way:
 * the one definition the checkpointer, the CheckpointManager and the `ckpt` tool share.
 *
 * The commit leaves these states on disk (docs/format.md, "The checkpoint around the items"):
 *
 *   rename mode       <path>.orbax-checkpoint-tmp (save in flight or interrupted),
 *                     <path>.orbax-checkpoint-tmp-replaced (force without RENAME_EXCHANGE),
 *                     <path> with commit_success.txt (committed: written before the rename);
 *   commit-file mode  <path> empty (created, pending marker not yet written),
 *                     <path> with CKPT_COMMIT_PENDING_FILE (written first, before anything
 *                     that could look like a commit, such as the commit timestamp),
 *                     <path> with commit_success.txt (the pending marker renamed: the commit);
 *   removal           <path>.orbax-checkpoint-tmp-deleting (renamed first, then removed).
 *
 * So the rule, the same whichever mode wrote the directory:
 *
 *   finalized  ⇔  a real directory (not a symlink)  ∧  no tmp marker in its name  ∧
 *                 ( commit_success.txt is a file
 *                   ∨ ( no pending marker  ∧  _CHECKPOINT_METADATA has a commit timestamp ) )
 *
 * The second branch admits rename-mode checkpoints written without a commit file (Orbax before
 * 0.12.3); ckpt never leaves a directory in that state. A caller that knows the directory was
 * written in commit-file mode may require the commit file (CKPT_FINALIZED_COMMIT_FILE); one
 * restoring an explicit path in rename mode may apply Orbax's local rule — no tmp marker is
 * enough — still refusing a directory with the pending marker (CKPT_FINALIZED_RENAME). For
 * every state a ckpt save or deletion can leave, all three answers agree. */
#ifndef CKPT_STORAGE_STEP_DIRS_H
#define CKPT_STORAGE_STEP_DIRS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt/io.h"
#include "ckpt/layout.h"

/* The commit file under a tmp-marked name: a commit-file-mode save writes it into the
 * checkpoint directory before anything else and renames it to commit_success.txt to commit.
 * Its presence without commit_success.txt marks an interrupted (or running) save. */
#define CKPT_COMMIT_PENDING_FILE CKPT_COMMIT_FILE CKPT_TMP_SUFFIX
/* Where a checkpoint goes before it is removed (the manager's retention, a forced replace in
 * commit-file mode, an aborted commit-file save): the tmp marker hides it from every reader
 * before the first file disappears. */
#define CKPT_DELETING_SUFFIX CKPT_TMP_SUFFIX "-deleting"

typedef enum ckpt_finalized_rule {
  CKPT_FINALIZED_ANY = 0,     /* the rule above: step discovery, the tool */
  CKPT_FINALIZED_COMMIT_FILE, /* written in commit-file mode: only commit_success.txt commits */
  CKPT_FINALIZED_RENAME       /* an explicit path in rename mode: no tmp marker suffices */
} ckpt_finalized_rule;

typedef enum ckpt_dir_state {
  CKPT_DIR_NONE = 0,    /* missing, a file, a symlink or something else: not a checkpoint */
  CKPT_DIR_TEMPORARY,   /* a real directory with the tmp marker in its name */
  CKPT_DIR_UNFINALIZED, /* a real directory the rule does not accept */
  CKPT_DIR_FINALIZED
} ckpt_dir_state;

typedef struct ckpt_dir_info {
  ckpt_dir_state state;
  ckpt_io_kind kind; /* lstat of the path */
  bool commit_file;  /* commit_success.txt is a regular file */
  bool pending;      /* CKPT_COMMIT_PENDING_FILE exists (and no commit file) */
} ckpt_dir_info;

/* Classifies path under rule. Every I/O error is returned with its kind, naming the path (a
 * stat failing with EIO is CKPT_EIO, never "unfinalized"); a missing, unreadable or malformed
 * _CHECKPOINT_METADATA only means "no commit timestamp". */
ckpt_status ckpt_dir_classify(ckpt_io *io, const char *path, ckpt_finalized_rule rule,
                              ckpt_dir_info *out, ckpt_error *err);

/* One child of a directory of steps. */
typedef struct ckpt_step_dir {
  int64_t step;
  char *name; /* malloc'ed */
  char *path; /* malloc'ed */
  bool tmp;   /* the name carries the tmp marker */
  ckpt_dir_info info;
} ckpt_step_dir;

typedef struct ckpt_step_filter {
  /* Names: exactly what a manager with this prefix (NULL: none) and fixed length writes
   * (ckpt_step_name_match), or, with any_name, every name Orbax's naming can produce, tmp
   * marker included (ckpt_step_name_parse). */
  bool any_name;
  const char *prefix;
  int fixed_len;
  ckpt_finalized_rule rule;
  bool finalized_only; /* leave out what is not CKPT_DIR_FINALIZED */
  bool missing_ok;     /* a missing directory is an empty list rather than CKPT_ENOENT */
} ckpt_step_filter;

/* The real directories among dir's children whose names f accepts, classified, sorted by step
 * (then finalized first, then by name). Files and symlinks are never listed. *out (NULL when
 * *n is 0) is released with ckpt_step_dirs_free, also after a failure. */
ckpt_status ckpt_step_dirs_list(ckpt_io *io, const char *dir, const ckpt_step_filter *f,
                                ckpt_step_dir **out, size_t *n, ckpt_error *err);
void ckpt_step_dirs_free(ckpt_step_dir *v, size_t n);

/* Removes the checkpoint directory path so that no reader ever sees it finalized while it
 * goes: renames it to path + CKPT_DELETING_SUFFIX (removing a leftover of that name first),
 * fsyncs the parent, then removes the renamed tree. *hidden (optional) is set once the rename
 * happened. A missing path is OK. */
ckpt_status ckpt_dir_remove_hidden(ckpt_io *io, const char *path, bool *hidden, ckpt_error *err);

#endif
