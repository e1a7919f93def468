/* handlers/proto.c — ProtoCheckpointHandler: a protobuf message in `proto.pbtxt`.
 *
 * Orbax writes text_format.MessageToString(item) to <dir>/proto.pbtxt and restores with
 * text_format.Parse into an instance of the class given as ProtoRestore.item. Here the message
 * type comes from ProtoRestore.item->descriptor, and both directions go through the
 * descriptor-driven text format of ckpt/pbtxt.h, so any protoc-c message works and the file is
 * byte-identical to Python's. */
#include <stdlib.h>

#include "ckpt/builtin.ckpt.h"
#include "ckpt/layout.h"
#include "ckpt/pbtxt.h"
#include "handlers/text_item.h"

#define PROTO_FILENAME "proto.pbtxt"

ckpt_status ckpt_ProtoCheckpointHandler_save(ckpt_handler *self, ckpt_op *op, const char *dir,
                                             const ckpt_args *args, ckpt_error *err) {
  (void)self;
  if (!args)
    return ckpt_error_set(err, CKPT_EINVAL, "ProtoCheckpointHandler.save: args is NULL");
  if (args->desc != &ckpt_ProtoSave_desc)
    return ckpt_error_set(err, CKPT_ETYPE,
                          "ProtoCheckpointHandler.save expects ProtoSave args, got %s",
                          args->desc ? args->desc->full_name : "args without a descriptor");
  const ckpt_ProtoSave *a = (const ckpt_ProtoSave *)(const void *)args;
  if (!a->item)
    return ckpt_error_set(err, CKPT_EINVAL,
                          "ProtoSave.item is NULL: ProtoCheckpointHandler needs a message");
  char *text;
  size_t len;
  ckpt_status st = ckpt_pbtxt_print(a->item, &text, &len, err); /* the snapshot */
  if (st != CKPT_OK) {
    ckpt_error_prefix(err, "ProtoCheckpointHandler: cannot save %s to '%s/%s': ",
                      a->item->descriptor ? a->item->descriptor->name : "message", dir ? dir : "",
                      PROTO_FILENAME);
    return st;
  }
  return ckpt_tf_save_text(op, dir, PROTO_FILENAME, text, len, err);
}

ckpt_status ckpt_ProtoCheckpointHandler_restore(ckpt_handler *self, ckpt_op *op, const char *dir,
                                                const ckpt_args *args, ckpt_value *out,
                                                ckpt_error *err) {
  (void)self;
  if (!out)
    return ckpt_error_set(err, CKPT_EINVAL, "ProtoCheckpointHandler.restore: out is NULL");
  /* Orbax raises without args too: the file alone does not say which message type it holds */
  if (!args)
    return ckpt_error_set(err, CKPT_EINVAL,
                          "ProtoCheckpointHandler.restore needs ProtoRestore args whose item "
                          "gives the message type (the file does not record it)");
  if (args->desc != &ckpt_ProtoRestore_desc)
    return ckpt_error_set(err, CKPT_ETYPE,
                          "ProtoCheckpointHandler.restore expects ProtoRestore args, got %s",
                          args->desc ? args->desc->full_name : "args without a descriptor");
  const ckpt_ProtoRestore *a = (const ckpt_ProtoRestore *)(const void *)args;
  if (!a->item || !a->item->descriptor)
    return ckpt_error_set(err, CKPT_EINVAL,
                          "ProtoRestore.item is %s: set it to a message of the type to restore "
                          "(e.g. one initialised with its __INIT macro)",
                          a->item ? "a message without a descriptor" : "NULL");
  char *text, *path;
  size_t len;
  ckpt_status st = ckpt_tf_load_text(op, dir, PROTO_FILENAME, &text, &len, &path, err);
  if (st != CKPT_OK) {
    ckpt_error_prefix(err, "ProtoCheckpointHandler: ");
    return st;
  }
  ProtobufCMessage *msg = NULL;
  st = ckpt_pbtxt_parse(a->item->descriptor, text, len, path, &msg, err);
  free(text);
  free(path);
  if (st != CKPT_OK) {
    ckpt_error_prefix(err,
                      "ProtoCheckpointHandler: cannot restore %s: ", a->item->descriptor->name);
    return st;
  }
  out->kind = CKPT_VALUE_PROTO;
  out->u.proto = msg;
  return CKPT_OK;
}
