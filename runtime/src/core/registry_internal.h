/* registry_internal.h — registry queries used inside libckpt only. */
#ifndef CKPT_SRC_REGISTRY_INTERNAL_H
#define CKPT_SRC_REGISTRY_INTERNAL_H

#include <stdbool.h>

#include "ckpt/registry.h"

/* True when the registry would dispatch args of this type to exactly this handler (the map of
 * the given direction first, as Orbax's look-up does). The checkpointer checks this before
 * passing args to its handler, since a handler reinterprets args through their C layout. */
bool ckpt_registry_handler_accepts(const ckpt_handler_desc *handler, const ckpt_args_desc *args,
                                   bool for_save);

#endif
