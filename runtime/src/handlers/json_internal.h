/* handlers/json_internal.h — JsonCheckpointHandler instances with their own file name (private
 * to libckpt).
 *
 * Orbax's JsonCheckpointHandler(filename=...) is one class whose instances may write another
 * file than `metadata`; the CheckpointManager's metrics item is JsonCheckpointHandler(
 * filename='metrics'). Here an instance created by ckpt_handler_create (how Composite and the
 * checkpointer make handlers) has no state and writes `metadata`; ckpt_json_handler_new makes
 * an instance of the same descriptor that keeps its file name in its state. Being the same
 * descriptor, it records the same typestr and the registry dispatches JsonSave / JsonRestore to
 * it, so a Composite item bound to it (ckpt_composite_bind_item) saves and restores through
 * it with the ordinary args. */
#ifndef CKPT_SRC_HANDLERS_JSON_INTERNAL_H
#define CKPT_SRC_HANDLERS_JSON_INTERNAL_H

#include "ckpt/handler.h"

/* The file name a default-constructed JsonCheckpointHandler writes (Orbax's default). */
#define CKPT_JSON_DEFAULT_FILENAME "metadata"

/* A JsonCheckpointHandler instance writing and reading <dir>/<filename>. filename must be one
 * path component (not empty, no '/', not "." or "..", without the tmp marker); it is copied.
 * *out owned by the caller (ckpt_handler_destroy). */
ckpt_status ckpt_json_handler_new(const char *filename, ckpt_handler **out, ckpt_error *err);

#endif
