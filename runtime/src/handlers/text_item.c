/* handlers/text_item.c — single-file save (deferred, durable) and bounded load for the JSON and
 * proto handlers (see text_item.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/io.h"
#include "handlers/op.h"
#include "handlers/text_item.h"
#include "util/path.h"

typedef struct text_job {
  ckpt_io *io;
  ckpt_op *op; /* claims the file durable (op.h) once written; NULL: written now */
  char *path;
  char *text;
  size_t len;
} text_job;

static ckpt_status run_job(void *arg, ckpt_error *err) {
  text_job *j = arg;
  ckpt_status st = ckpt_io_write_file(j->io, j->path, j->text, j->len, true, err);
  /* fsync'd: the commit need not fsync it again (its directory entry it still does). */
  if (st == CKPT_OK && j->op != NULL) {
    ckpt_op_note_durable(j->op, j->path);
    ckpt_op_note_file(j->op, j->path, j->text, j->len);
  }
  return st;
}

static void release_job(void *arg) {
  text_job *j = arg;
  free(j->path);
  free(j->text);
  free(j);
}

ckpt_status ckpt_tf_save_text(ckpt_op *op, const char *dir, const char *name, char *text,
                              size_t len, ckpt_error *err) {
  if (!dir) {
    free(text);
    return ckpt_error_set(err, CKPT_EINVAL, "cannot save '%s': directory is NULL", name);
  }
  text_job *j = malloc(sizeof *j);
  char *path = ckpt_path_join(dir, name);
  if (!j || !path) {
    free(j);
    free(path);
    free(text);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory saving '%s/%s'", dir, name);
  }
  j->io = ckpt_op_io(op);
  j->op = op;
  j->path = path;
  j->text = text;
  j->len = len;
  if (!ckpt_op_writes_shared(op)) { /* multi-process: the primary writes the item */
    release_job(j);
    return CKPT_OK;
  }
  if (!op) { /* no checkpointer: write now */
    ckpt_status st = run_job(j, err);
    release_job(j);
    return st;
  }
  return ckpt_op_defer(op, run_job, j, release_job, err); /* releases j even on failure */
}

ckpt_status ckpt_tf_load_text(ckpt_op *op, const char *dir, const char *name, char **text,
                              size_t *len, char **path, ckpt_error *err) {
  *text = NULL;
  *path = NULL;
  if (!dir)
    return ckpt_error_set(err, CKPT_EINVAL, "cannot read '%s': directory is NULL", name);
  char *p = ckpt_path_join(dir, name);
  if (!p)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory reading '%s/%s'", dir, name);
  ckpt_io *io = ckpt_op_io(op);
  ckpt_io_kind kind;
  uint64_t size;
  /* an explicit check so a missing file reads "not found: <path>" whatever the I/O layer says */
  ckpt_status st = ckpt_io_stat(io, p, &kind, &size, err);
  if (st == CKPT_OK && kind == CKPT_IO_KIND_MISSING)
    st = ckpt_error_set(err, CKPT_ENOENT, "'%s' does not exist (nothing was saved here?)", p);
  void *data = NULL;
  size_t n = 0;
  if (st == CKPT_OK)
    st = ckpt_io_read_file(io, p, CKPT_TEXT_FILE_MAX_BYTES, &data, &n, err);
  if (st == CKPT_OK)
    st = ckpt_op_check_file(op, p, data, n, err);
  if (st != CKPT_OK) {
    free(data);
    free(p);
    return st;
  }
  *text = data;
  *len = n;
  *path = p;
  return CKPT_OK;
}
