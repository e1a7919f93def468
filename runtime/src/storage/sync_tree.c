/* storage/sync_tree.c — the commit's fsync of a checkpoint directory tree (see commit.h).
 *
 * Why it looks like this: each fsync on ext4 is a journal commit plus a device cache flush, a
 * few milliseconds each, and the commit used to issue one per file and directory, one after
 * the other, after the handlers had already made most of them durable. Now paths the save's
 * jobs claimed (op.h: ckpt_op_note_durable) are skipped without being opened, and the rest are
 * fsync'd as function jobs of the save's engine, all at once (concurrent fsyncs share journal
 * commits), each directory once when the group ends. One function job per file (open, fsync,
 * close on a worker) keeps at most one descriptor per worker open, however many files there
 * are. */
#include <fcntl.h>
#include <stdlib.h>

#include "io/engine.h"
#include "storage/commit.h"
#include "util/path.h"

typedef struct sync_walk {
  ckpt_io *io;
  ckpt_engine_group *g; /* NULL: fsync one by one on this thread */
  const ckpt_path_set *durable;
  struct file_job **jobs; /* submitted file jobs; freed after the group */
  size_t n_jobs, cap_jobs;
} sync_walk;

static ckpt_status fsync_file(ckpt_io *io, const char *path, ckpt_error *err) {
  int fd;
  ckpt_status st = ckpt_io_open(io, path, O_RDONLY | O_NOFOLLOW, 0, &fd, err);
  if (st != CKPT_OK)
    return st;
  st = ckpt_io_fsync(io, fd, path, err);
  ckpt_status cst = ckpt_io_close(io, fd, path, err);
  return st != CKPT_OK ? st : cst;
}

/* One file's fsync as a function job; the record is the walk's until the group is freed. */
typedef struct file_job {
  ckpt_io *io;
  char *path;
} file_job;

static ckpt_status run_file_job(void *arg, ckpt_error *err) {
  file_job *j = arg;
  return fsync_file(j->io, j->path, err);
}

/* Takes ownership of path. */
static ckpt_status submit_file(sync_walk *w, char *path, ckpt_error *err) {
  if (w->g == NULL) {
    ckpt_status st = fsync_file(w->io, path, err);
    free(path);
    return st;
  }
  file_job *j = NULL;
  if (w->n_jobs == w->cap_jobs) {
    size_t ncap = w->cap_jobs ? w->cap_jobs * 2 : 16;
    file_job **nj = realloc(w->jobs, ncap * sizeof *nj);
    if (nj != NULL) {
      w->jobs = nj;
      w->cap_jobs = ncap;
    }
  }
  if (w->n_jobs < w->cap_jobs)
    j = malloc(sizeof *j);
  if (j == NULL) {
    ckpt_status st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory syncing '%s'", path);
    free(path);
    return st;
  }
  j->io = w->io;
  j->path = path;
  w->jobs[w->n_jobs++] = j;
  return ckpt_engine_call(w->g, run_file_job, j, NULL, NULL, err);
}

static ckpt_status walk(sync_walk *w, const char *dir, int depth, ckpt_error *err) {
  if (depth > 256)
    return ckpt_error_set(err, CKPT_EUNSUPPORTED, "cannot sync '%s': nested too deeply", dir);
  char **names = NULL;
  size_t count = 0;
  ckpt_status st = ckpt_io_list_dir(w->io, dir, &names, &count, err);
  if (st != CKPT_OK)
    return st;
  for (size_t i = 0; i < count && st == CKPT_OK; i++) {
    char *child = ckpt_path_join(dir, names[i]);
    if (child == NULL) {
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory syncing '%s'", dir);
      break;
    }
    if (ckpt_path_set_contains(w->durable, child)) {
      free(child); /* made durable by the job that wrote it (op.h) */
      continue;
    }
    ckpt_io_kind kind;
    st = ckpt_io_stat(w->io, child, &kind, NULL, err);
    if (st == CKPT_OK && kind == CKPT_IO_KIND_DIR)
      st = walk(w, child, depth + 1, err);
    if (st == CKPT_OK && kind == CKPT_IO_KIND_FILE) {
      st = submit_file(w, child, err);
      child = NULL;
    }
    free(child);
  }
  ckpt_io_free_names(names, count);
  if (st != CKPT_OK)
    return st;
  /* The directory's entries: after every file job of the group (the engine), or now, after
   * its children (one by one). */
  if (w->g != NULL)
    return ckpt_engine_group_note_dir(w->g, dir, err);
  return ckpt_io_fsync_dir(w->io, dir, err);
}

ckpt_status ckpt_sync_tree(ckpt_io *io, ckpt_engine *engine, const ckpt_path_set *durable,
                           const char *dir, ckpt_error *err) {
  sync_walk w = {.io = io != NULL ? io : ckpt_io_default(), .durable = durable};
  ckpt_status st = CKPT_OK;
  if (engine != NULL)
    st = ckpt_engine_group_new(engine, dir, &w.g, err);
  if (st == CKPT_OK)
    st = walk(&w, dir, 0, err);
  if (w.g != NULL) {
    if (st != CKPT_OK)
      ckpt_engine_group_cancel(w.g);
    ckpt_status wst = ckpt_engine_group_wait(w.g, st == CKPT_OK ? err : NULL);
    if (st == CKPT_OK)
      st = wst;
    ckpt_engine_group_free(w.g);
  }
  for (size_t i = 0; i < w.n_jobs; i++) {
    free(w.jobs[i]->path);
    free(w.jobs[i]);
  }
  free(w.jobs);
  return st;
}
