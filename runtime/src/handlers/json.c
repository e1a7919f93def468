/* handlers/json.c — JsonCheckpointHandler: a JSON value in one file, `metadata` by default.
 *
 * Orbax's JsonCheckpointHandler(filename='metadata') writes json.dumps(item) to
 * <dir>/<filename> (no extension) and restores json.loads of it; JsonRestore's item is unused.
 * We write the same text Python would (ckpt_json_dump: exact numbers, NaN/Infinity, ASCII
 * escapes) so either side reads the other's checkpoints, and read with Python's rules plus
 * line:column errors. An instance from ckpt_json_handler_new carries another file name in its
 * state (json_internal.h); default-constructed instances have none, and restore `metadata`, or
 * Orbax v1's `data.json` when only that one exists. */
#include <stdlib.h>
#include <string.h>

#include "ckpt/builtin.ckpt.h"
#include "ckpt/layout.h"
#include "handlers/json_internal.h"
#include "text/json.h"
#include "handlers/text_item.h"
#include "util/path.h"

/* The state of an instance with its own file name. */
typedef struct json_state {
  char *filename; /* owned */
} json_state;

static const char *filename_of(const ckpt_handler *self) {
  const json_state *s = self != NULL ? self->state : NULL;
  return s != NULL ? s->filename : CKPT_JSON_DEFAULT_FILENAME;
}

/* The file a restore reads: the instance's own name, else `metadata` (v0), else Orbax v1's
 * `data.json` when only that one is there (v1's JsonHandler reads either too). */
static ckpt_status restore_filename(const ckpt_handler *self, ckpt_op *op, const char *dir,
                                    const char **name, ckpt_error *err) {
  const json_state *s = self != NULL ? self->state : NULL;
  *name = filename_of(self);
  if (s != NULL || dir == NULL)
    return CKPT_OK;
  ckpt_io *io = ckpt_op_io(op);
  char *v0 = ckpt_path_join(dir, CKPT_JSON_DEFAULT_FILENAME);
  char *v1 = ckpt_path_join(dir, CKPT_JSON_V1_FILE);
  ckpt_io_kind k0 = CKPT_IO_KIND_MISSING, k1 = CKPT_IO_KIND_MISSING;
  uint64_t size;
  ckpt_status st = v0 != NULL && v1 != NULL ? ckpt_io_stat(io, v0, &k0, &size, err)
                                            : ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  if (st == CKPT_OK && k0 == CKPT_IO_KIND_MISSING)
    st = ckpt_io_stat(io, v1, &k1, &size, err);
  if (st == CKPT_OK && k0 == CKPT_IO_KIND_MISSING && k1 == CKPT_IO_KIND_FILE)
    *name = CKPT_JSON_V1_FILE;
  free(v0);
  free(v1);
  return st;
}

ckpt_status ckpt_json_handler_new(const char *filename, ckpt_handler **out, ckpt_error *err) {
  *out = NULL;
  if (filename == NULL || filename[0] == '\0' || strchr(filename, '/') != NULL ||
      strcmp(filename, ".") == 0 || strcmp(filename, "..") == 0 ||
      strstr(filename, CKPT_TMP_SUFFIX) != NULL)
    return ckpt_error_set(err, CKPT_EINVAL,
                          "JsonCheckpointHandler: file name \"%s\" is not one plain path "
                          "component",
                          filename != NULL ? filename : "(null)");
  /* The item directory also holds the layout's own files (commit_success.txt, a checksum
   * manifest, ...): a JSON file under one of those names would be overwritten by them, or
   * overwrite them. */
  if (ckpt_path_is_reserved(filename))
    return ckpt_error_set(err, CKPT_EINVAL,
                          "JsonCheckpointHandler: file name \"%s\" is reserved by the checkpoint "
                          "layout",
                          filename);
  ckpt_handler *h;
  ckpt_status st = ckpt_handler_create(&ckpt_JsonCheckpointHandler_desc, &h, err);
  if (st != CKPT_OK)
    return st;
  json_state *s = calloc(1, sizeof *s);
  if (s == NULL || (s->filename = strdup(filename)) == NULL) {
    free(s);
    ckpt_handler_destroy(h);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory creating JsonCheckpointHandler(%s)",
                          filename);
  }
  h->state = s;
  *out = h;
  return CKPT_OK;
}

void ckpt_JsonCheckpointHandler_close(ckpt_handler *self) {
  json_state *s = self->state;
  if (s != NULL) {
    free(s->filename);
    free(s);
    self->state = NULL;
  }
}

ckpt_status ckpt_JsonCheckpointHandler_save(ckpt_handler *self, ckpt_op *op, const char *dir,
                                            const ckpt_args *args, ckpt_error *err) {
  if (!args)
    return ckpt_error_set(err, CKPT_EINVAL, "JsonCheckpointHandler.save: args is NULL");
  if (args->desc != &ckpt_JsonSave_desc)
    return ckpt_error_set(err, CKPT_ETYPE,
                          "JsonCheckpointHandler.save expects JsonSave args, got %s",
                          args->desc ? args->desc->full_name : "args without a descriptor");
  const ckpt_JsonSave *a = (const ckpt_JsonSave *)(const void *)args;
  if (!a->item)
    return ckpt_error_set(err, CKPT_EINVAL,
                          "JsonSave.item is NULL: JsonCheckpointHandler needs a JSON value");
  char *text;
  size_t len;
  ckpt_status st = ckpt_json_dump(a->item, &text, &len, err); /* the snapshot */
  if (st != CKPT_OK) {
    ckpt_error_prefix(err, "JsonCheckpointHandler: cannot save to '%s/%s': ", dir ? dir : "",
                      filename_of(self));
    return st;
  }
  return ckpt_tf_save_text(op, dir, filename_of(self), text, len, err);
}

ckpt_status ckpt_JsonCheckpointHandler_restore(ckpt_handler *self, ckpt_op *op, const char *dir,
                                               const ckpt_args *args, ckpt_value *out,
                                               ckpt_error *err) {
  if (!out)
    return ckpt_error_set(err, CKPT_EINVAL, "JsonCheckpointHandler.restore: out is NULL");
  if (args && args->desc != &ckpt_JsonRestore_desc)
    return ckpt_error_set(err, CKPT_ETYPE,
                          "JsonCheckpointHandler.restore expects JsonRestore args, got %s",
                          args->desc ? args->desc->full_name : "args without a descriptor");
  char *text, *path;
  size_t len;
  const char *name;
  ckpt_status st = restore_filename(self, op, dir, &name, err);
  if (st == CKPT_OK)
    st = ckpt_tf_load_text(op, dir, name, &text, &len, &path, err);
  if (st != CKPT_OK) {
    ckpt_error_prefix(err, "JsonCheckpointHandler: ");
    return st;
  }
  cJSON *item = NULL;
  st = ckpt_json_load(text, len, path, &item, err);
  free(text);
  free(path);
  if (st != CKPT_OK) {
    ckpt_error_prefix(err, "JsonCheckpointHandler: ");
    return st;
  }
  out->kind = CKPT_VALUE_JSON;
  out->u.json = item;
  return CKPT_OK;
}
