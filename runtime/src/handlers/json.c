/* handlers/json.c — JsonCheckpointHandler: a JSON value in one file named `metadata`.
 *
 * Orbax's JsonCheckpointHandler writes json.dumps(item) to <dir>/metadata (no extension) and
 * restores json.loads of it; JsonRestore's item is unused. We write the same text Python
 * would (ckpt_json_dump: exact numbers, NaN/Infinity, ASCII escapes) so either side reads the
 * other's checkpoints, and read with Python's rules plus line:column errors. */
#include <stdlib.h>

#include "ckpt/ckpt.h"
#include "json_text/json_text.h"
#include "textfmt/text_file.h"

#define JSON_FILENAME "metadata"

ckpt_status ckpt_JsonCheckpointHandler_save(ckpt_handler *self, ckpt_op *op, const char *dir,
                                            const ckpt_args *args, ckpt_error *err) {
  (void)self;
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
                      JSON_FILENAME);
    return st;
  }
  return ckpt_tf_save_text(op, dir, JSON_FILENAME, text, len, err);
}

ckpt_status ckpt_JsonCheckpointHandler_restore(ckpt_handler *self, ckpt_op *op, const char *dir,
                                               const ckpt_args *args, ckpt_value *out,
                                               ckpt_error *err) {
  (void)self;
  if (!out)
    return ckpt_error_set(err, CKPT_EINVAL, "JsonCheckpointHandler.restore: out is NULL");
  if (args && args->desc != &ckpt_JsonRestore_desc)
    return ckpt_error_set(err, CKPT_ETYPE,
                          "JsonCheckpointHandler.restore expects JsonRestore args, got %s",
                          args->desc ? args->desc->full_name : "args without a descriptor");
  char *text, *path;
  size_t len;
  ckpt_status st = ckpt_tf_load_text(op, dir, JSON_FILENAME, &text, &len, &path, err);
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
