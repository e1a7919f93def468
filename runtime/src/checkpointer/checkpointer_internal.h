/* checkpointer_internal.h — what the rest of libckpt may ask a checkpointer (private). */
#ifndef CKPT_SRC_CHECKPOINTER_INTERNAL_H
#define CKPT_SRC_CHECKPOINTER_INTERNAL_H

#include "ckpt/checkpointer.h"

/* The handler instance the checkpointer owns (borrowed; lives until ckpt_checkpointer_close).
 * The CheckpointManager binds its metrics item in it (handlers/item_handlers.h). */
ckpt_handler *ckpt_checkpointer_handler(ckpt_checkpointer *ckptr);

#endif
