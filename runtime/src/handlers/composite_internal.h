/* handlers/composite_internal.h — what the checkpointer asks a CompositeCheckpointHandler
 * (private to libckpt). */
#ifndef CKPT_SRC_HANDLERS_COMPOSITE_INTERNAL_H
#define CKPT_SRC_HANDLERS_COMPOSITE_INTERNAL_H

#include <cjson/cJSON.h>

#include "ckpt/handler.h"

/* {item: typestr} for the items of the handler's last save, for
 * _CHECKPOINT_METADATA.item_handlers; *out owned by the caller (cJSON_Delete). */
ckpt_status ckpt_composite_saved_item_handlers(ckpt_handler *composite, cJSON **out,
                                               ckpt_error *err);

#endif
