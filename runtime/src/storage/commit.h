/* storage/commit.h — the commit protocol of one save (private).
 *
 * Orbax's TemporaryPath in C (docs/architecture.md, "The life of a save"):
 *   begin   checks the destination (exists → CKPT_EEXIST unless force), removes a stale tmp
 *           directory, creates the directory the handler writes into: <path>.orbax-checkpoint-tmp
 *           in rename mode, <path> itself in commit-file mode;
 *   finish  writes commit_success.txt (commit-file mode: renames the pending marker begin wrote
 *           to it) and makes every file and directory under the tmp
 *           directory durable — fsyncs them, in parallel on the save's engine, except what the
 *           save's jobs already made durable and claimed (op.h) — (in commit-file mode the
 *           commit file comes last, after the rest is durable); in rename mode it then renames the
 * directory to <path> (atomically exchanging it with the old checkpoint when force replaces one,
 * which is then removed); finally it fsyncs the parent; abort   removes what begin created (best
 * effort) after a failure. Until finish's rename (or, in commit-file mode, until commit_success.txt
 * is durable), no reader sees a checkpoint at <path>, and a replaced checkpoint stays intact. */
#ifndef CKPT_SRC_STORAGE_COMMIT_H
#define CKPT_SRC_STORAGE_COMMIT_H

#include <stdbool.h>

#include "ckpt/layout.h"
#include "ckpt/io.h"
#include "io/path_set.h"

struct ckpt_engine;

/* Where a checkpoint being replaced is moved when the file system cannot exchange two paths
 * atomically; it carries the tmp marker so nothing lists it as a checkpoint. */
#define CKPT_REPLACED_SUFFIX ".orbax-checkpoint-tmp-replaced"

typedef struct ckpt_commit {
  ckpt_io *io;
  ckpt_atomicity atomicity;
  char *final_path; /* normalised (no trailing '/') */
  char *tmp_path;   /* where the handler writes; == final_path in commit-file mode */
  char *parent;     /* directory containing final_path */
  bool replace;     /* rename mode, force, and a destination existed: swap at finish */
  bool created;     /* begin created tmp_path (abort removes it) */
  bool committed;   /* finish made the checkpoint visible */
  /* Set by the caller before finish, both optional (borrowed): the engine the tree's fsyncs
   * run on in parallel (NULL: one by one), and the paths under tmp_path the save already made
   * durable, which finish does not fsync again (op.h: ckpt_op_note_durable). */
  struct ckpt_engine *engine;
  const ckpt_path_set *durable;
} ckpt_commit;

/* The longest file name (Linux's NAME_MAX), and the longest checkpoint directory name: the
 * suffixes ckpt appends to it (tmp, "-replaced", "-deleting") must still fit. */
#define CKPT_NAME_MAX 255
#define CKPT_CHECKPOINT_NAME_MAX (CKPT_NAME_MAX - (int)(sizeof CKPT_TMP_SUFFIX "-deleting" - 1))

/* Fills *c (which the caller releases with ckpt_commit_clear, also after a failure). In
 * commit-file mode the new directory's first file is the pending commit marker
 * (storage/step_dirs.h: CKPT_COMMIT_PENDING_FILE). */
ckpt_status ckpt_commit_begin(ckpt_commit *c, ckpt_io *io, ckpt_atomicity atomicity,
                              const char *path, bool force, ckpt_error *err);
/* Only the names of begin (final, tmp, parent), checked but touching nothing on disk: the other
 * processes of a multi-process save, whose primary runs begin. abort then does nothing. */
ckpt_status ckpt_commit_paths(ckpt_commit *c, ckpt_io *io, ckpt_atomicity atomicity,
                              const char *path, ckpt_error *err);
/* To be called before anything is written that could make the directory look committed to a
 * reader that does not know the mode (the commit timestamp of _CHECKPOINT_METADATA): in
 * commit-file mode it makes the pending marker durable, so that no power loss can keep the
 * timestamp and lose the marker. Nothing to do in rename mode. */
ckpt_status ckpt_commit_prepare(ckpt_commit *c, ckpt_error *err);
ckpt_status ckpt_commit_finish(ckpt_commit *c, ckpt_error *err);
/* Best-effort removal of the uncommitted directory; never touches a committed checkpoint or
 * the one being replaced. */
void ckpt_commit_abort(ckpt_commit *c);
void ckpt_commit_clear(ckpt_commit *c);

/* Makes every regular file and directory under dir (dir included) durable, never following
 * symlinks: fsyncs each one except the paths in `durable` (NULL: none), which are skipped
 * without being opened — a claimed directory with everything below it. With an engine the
 * fsyncs are its function jobs, all in flight at once, and each directory is fsync'd when the
 * group ends (after every file); without one they run one by one, each directory after its
 * children. Returns after all are done (storage/sync_tree.c). */
ckpt_status ckpt_sync_tree(ckpt_io *io, struct ckpt_engine *engine, const ckpt_path_set *durable,
                           const char *dir, ckpt_error *err);
/* Writes <dir>/commit_success.txt ("Checkpoint commit was successful to <final_path>"),
 * fsync'd when durable. */
ckpt_status ckpt_write_commit_file(ckpt_io *io, const char *dir, const char *final_path,
                                   bool durable, ckpt_error *err);

#endif
