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

/* ckpt_json_handler_new (ckpt/handler.h) makes the instances with a file name. */

#endif
