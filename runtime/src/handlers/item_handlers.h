/* handlers/item_handlers.h — what a checkpointer asks of the handler it owns about items,
 * whatever that handler's type (private to libckpt): the item_handlers record Orbax keeps in
 * _CHECKPOINT_METADATA, and binding an item to a handler instance. Only a
 * CompositeCheckpointHandler has items; the functions answer for every handler, so the
 * checkpointer never looks at which one it holds. */
#ifndef CKPT_SRC_HANDLERS_ITEM_HANDLERS_H
#define CKPT_SRC_HANDLERS_ITEM_HANDLERS_H

#include <cjson/cJSON.h>

#include "ckpt/handler.h"
#include "ckpt/io.h"

/* _CHECKPOINT_METADATA.item_handlers after handler's last save: {item: typestr} for a
 * Composite, else the handler's own typestr (its full name when it has none); *out owned by the
 * caller (cJSON_Delete). */
ckpt_status ckpt_handler_saved_item_handlers(ckpt_handler *handler, cJSON **out, ckpt_error *err);

/* Binds item to a handler instance made by the caller before first use, as Orbax's
 * CompositeCheckpointHandler(item_handlers={item: handler}) or a handler registry's
 * add(item, args, handler): later saves and restores of item use this instance whenever the
 * registry dispatches their args to its descriptor (other args are refused, as for any bound
 * item). Takes ownership of handler in every case (destroyed on failure). An invalid item
 * name is CKPT_EINVAL, an item already bound CKPT_EEXIST. */
ckpt_status ckpt_composite_bind_item(ckpt_handler *composite, const char *item,
                                     ckpt_handler *handler, ckpt_error *err);

/* The built-in handler whose files the item <dir>/<item> holds, for a checkpoint that records
 * none (no _CHECKPOINT_METADATA, or one without item_handlers, as older Orbax wrote them): a
 * PyTree's _METADATA, legacy aggregate file or array_metadatas/ give PyTreeCheckpointHandler,
 * a JSON item's `metadata` or `data.json` JsonCheckpointHandler; NULL otherwise. */
const ckpt_handler_desc *ckpt_item_handler_from_files(ckpt_io *io, const char *dir,
                                                      const char *item);

#endif
