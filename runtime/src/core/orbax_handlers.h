/* core/orbax_handlers.h — the one table of Orbax's handler typestrs (private).
 *
 * _CHECKPOINT_METADATA.item_handlers names each item's handler by its Python typestr
 * (module.qualname). Orbax has written several spellings of the same handlers:
 *
 *   v0 API, today      orbax.checkpoint._src.handlers.pytree_checkpoint_handler.PyTreeCheckpointHandler
 *   v0 API, older      orbax.checkpoint.pytree_checkpoint_handler.PyTreeCheckpointHandler (before
 *                      the _src move), orbax.checkpoint.handlers....
 *   v1 API             orbax.checkpoint.experimental.v1._src.handlers.pytree_handler.PyTreeHandler,
 *                      ...json_handler.JsonHandler, ...proto_handler.ProtoHandler,
 *                      ...descriptor_handler.DescriptorHandler
 *
 * Every spelling under the `orbax.checkpoint.` namespace is recognised by its class name, and
 * maps to the built-in handler that reads what that class writes (v1's PyTreeHandler writes
 * the v0 PyTree layout, its JsonHandler the v0 JSON item under the name data.json). The
 * registry (ckpt_get_handler_by_typestr), the Composite's and the manager's restore-all and
 * the `ckpt` tool all decide through this table; nothing else compares typestrs. */
#ifndef CKPT_SRC_CORE_ORBAX_HANDLERS_H
#define CKPT_SRC_CORE_ORBAX_HANDLERS_H

#include <stdbool.h>

#include "ckpt/handler.h"

/* What an Orbax handler's item directory holds. */
typedef enum ckpt_orbax_item {
  CKPT_ORBAX_ITEM_PYTREE,     /* _METADATA + arrays (Standard, PyTree, Array; v1 PyTree) */
  CKPT_ORBAX_ITEM_JSON,       /* one JSON file: `metadata` (v0) or `data.json` (v1) */
  CKPT_ORBAX_ITEM_PROTO,      /* proto.pbtxt */
  CKPT_ORBAX_ITEM_COMPOSITE,  /* nested items (the random-key handlers, Composite) */
  CKPT_ORBAX_ITEM_DESCRIPTOR  /* v1's description of the checkpoint: no user data */
} ckpt_orbax_item;

typedef struct ckpt_orbax_handler {
  const char *class_name; /* "PyTreeCheckpointHandler", "JsonHandler", ... */
  /* The built-in handler that restores it (schemas/ckpt/builtin.ckpt); NULL when ckpt has
   * none (DescriptorHandler). */
  const ckpt_handler_desc *builtin;
  ckpt_orbax_item item;
  int api; /* 0: the v0 args/handlers API; 1: orbax.checkpoint.experimental.v1 */
} ckpt_orbax_handler;

/* The entry for an Orbax typestr (any module path under `orbax.checkpoint.` whose class name
 * is known); NULL for NULL, for other namespaces (a program's own handlers) and for unknown
 * Orbax classes. */
const ckpt_orbax_handler *ckpt_orbax_handler_find(const char *typestr);

/* True when the typestr names Orbax's DescriptorHandler: such an item carries no user data,
 * restores without args leave it out, and its directory may be absent (Orbax's own test
 * checkpoints remove it). */
bool ckpt_orbax_is_descriptor(const char *typestr);

#endif
