/* ckpt/composite.h — building Composite args (Orbax's ocp.args.Composite) and what the
 * CompositeCheckpointHandler accepts as item names.
 *
 * A ckpt_Composite (generated from schemas/ckpt/builtin.ckpt) is a map from item name to the
 * args of that item. Each item is saved by the handler registered for its args type, in its
 * own subdirectory <dir>/<item>/, in sorted item order; the first save or restore of an item
 * locks its handler type for the lifetime of the composite handler instance.
 *
 *   ckpt_Composite *c = ckpt_composite_new();
 *   ckpt_composite_add(c, "state", &state_save->base, &err);   // takes ownership
 *   ckpt_composite_add(c, "meta", &json_save->base, &err);
 *   ckpt_checkpointer_save(ckptr, path, &c->base, false, NULL, &err);
 *   ckpt_args_delete(&c->base);                                  // frees the items too
 */
#ifndef CKPT_COMPOSITE_H
#define CKPT_COMPOSITE_H

#include "ckpt/api.h"
#include "ckpt/builtin.ckpt.h"
#include "ckpt/desc.h"
#include "ckpt/error.h"
#include "ckpt/layout.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest item name accepted: an item is one directory, written as <item>.orbax-checkpoint-tmp
 * first, and that name must fit in a file name (255 bytes on Linux). */
#define CKPT_COMPOSITE_ITEM_NAME_MAX (255 - (int)(sizeof CKPT_TMP_SUFFIX - 1))
/* Orbax reserves this item name (CompositeCheckpointHandler's RESERVED_ITEM_NAMES). */
#define CKPT_COMPOSITE_RESERVED_ITEM "descriptor"

/* An empty Composite on the heap; the caller owns it (ckpt_args_delete(&c->base)). NULL when
 * memory runs out. */
CKPT_API ckpt_Composite *ckpt_composite_new(void);

/* Adds item → args, keeping the items sorted by name. Takes ownership of args in every case:
 * on failure (invalid or duplicate name → CKPT_EINVAL / CKPT_EEXIST, no memory → CKPT_ENOMEM,
 * args NULL → CKPT_EINVAL) args has been freed, so calls can be chained without cleanup code. */
CKPT_API ckpt_status ckpt_composite_add(ckpt_Composite *c, const char *item, ckpt_args *args,
                                        ckpt_error *err);

/* The args of item (borrowed), or NULL when absent. */
CKPT_API ckpt_args *ckpt_composite_get(const ckpt_Composite *c, const char *item);

/* Removes item and frees its args; CKPT_ENOENT when absent. */
CKPT_API ckpt_status ckpt_composite_remove(ckpt_Composite *c, const char *item, ckpt_error *err);

/* Checks that item can name a Composite item and its directory: not empty, at most
 * CKPT_COMPOSITE_ITEM_NAME_MAX bytes, no '/', not "." or "..", no leading "__" (Orbax), not
 * the reserved "descriptor", not a name the checkpoint itself uses (_CHECKPOINT_METADATA,
 * commit_success.txt) and without the ".orbax-checkpoint-tmp" marker. CKPT_EINVAL (or
 * CKPT_EUNSAFE for names that would leave the directory) with a message naming the item. */
CKPT_API ckpt_status ckpt_composite_check_item_name(const char *item, ckpt_error *err);

#ifdef __cplusplus
}
#endif
#endif
