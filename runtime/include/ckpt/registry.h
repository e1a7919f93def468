/* ckpt/registry.h — Orbax's args ↔ handler registry (register_with_handler & co).
 *
 * Semantics follow orbax.checkpoint.args exactly:
 *  - ckpt_register_with_handler: both flags false is an error; re-registering overwrites;
 *    the handler's typestr is registered too (same typestr, different handler → error).
 *  - ckpt_get_registered_handler: the save mapping first, then the restore mapping.
 *  - ckpt_get_registered_args: the first (in registration order) save and restore args whose
 *    handler is exactly this one; either side missing is an error.
 * The registry is process-wide, like Orbax's module-level dicts. The built-in args
 * (schemas/ckpt/builtin.ckpt) are registered automatically on first use. Registration is
 * serialised by a lock; look-ups are safe from many threads. */
#ifndef CKPT_REGISTRY_H
#define CKPT_REGISTRY_H

#include <stdbool.h>

#include "ckpt/api.h"
#include "ckpt/desc.h"
#include "ckpt/error.h"
#include "ckpt/handler.h"

#ifdef __cplusplus
extern "C" {
#endif

CKPT_API ckpt_status ckpt_register_with_handler(const ckpt_handler_desc *handler,
                                                const ckpt_args_desc *args, bool for_save,
                                                bool for_restore, ckpt_error *err);
CKPT_API ckpt_status ckpt_get_registered_handler(const ckpt_args_desc *args,
                                                 const ckpt_handler_desc **out, ckpt_error *err);
CKPT_API ckpt_status ckpt_get_registered_args(const ckpt_handler_desc *handler,
                                              const ckpt_args_desc **save_args,
                                              const ckpt_args_desc **restore_args, ckpt_error *err);
CKPT_API bool ckpt_has_registered_args(const ckpt_handler_desc *handler);

/* The typestr registry (what lets a composite restore items from _CHECKPOINT_METADATA). A
 * typestr nobody registered that spells one of Orbax's handlers another way (an older module
 * path, or the v1 API's PyTreeHandler / JsonHandler / ProtoHandler) resolves to the built-in
 * handler that reads what it writes (docs/format.md, "Orbax's variants"). */
CKPT_API ckpt_status ckpt_register_handler_type(const ckpt_handler_desc *handler, ckpt_error *err);
CKPT_API ckpt_status ckpt_get_handler_by_typestr(const char *typestr, const ckpt_handler_desc **out,
                                                 ckpt_error *err);

#ifdef __cplusplus
}
#endif
#endif
