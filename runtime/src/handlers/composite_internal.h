/* handlers/composite_internal.h — what the checkpointer and the CheckpointManager ask a
 * CompositeCheckpointHandler (private to libckpt). */
#ifndef CKPT_SRC_HANDLERS_COMPOSITE_INTERNAL_H
#define CKPT_SRC_HANDLERS_COMPOSITE_INTERNAL_H

#include <cjson/cJSON.h>

#include "ckpt/handler.h"

/* {item: typestr} for the items of the handler's last save, for
 * _CHECKPOINT_METADATA.item_handlers; *out owned by the caller (cJSON_Delete). */
ckpt_status ckpt_composite_saved_item_handlers(ckpt_handler *composite, cJSON **out,
                                               ckpt_error *err);

/* Binds item to a handler instance made by the caller before first use, as Orbax's
 * CompositeCheckpointHandler(item_handlers={item: handler}) or a handler registry's
 * add(item, args, handler): later saves and restores of item use this instance whenever the
 * registry dispatches their args to its descriptor (other args are refused, as for any bound
 * item). Takes ownership of handler in every case (destroyed on failure). An invalid item
 * name is CKPT_EINVAL, an item already bound CKPT_EEXIST. */
ckpt_status ckpt_composite_bind_item(ckpt_handler *composite, const char *item,
                                     ckpt_handler *handler, ckpt_error *err);

#endif
