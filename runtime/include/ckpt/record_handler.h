/* ckpt/record_handler.h — the runtime half of `handler H for Record;`.
 *
 * ckptgen emits, for such a handler, a descriptor whose vtable is ckpt_record_handler_vtable and
 * whose impl is the record's descriptor, plus the args RSave { const R *item } and
 * RRestore { const R *target; bool strict }. The runtime saves the record through the PyTree
 * layout (one zarr array per array field, scalars as 0-d arrays, strings in _strings.json, nested
 * records / lists / maps as dicts and lists), so Python opens it as a dict of arrays, and restores
 * it into a freshly allocated struct (ckpt_value kind CKPT_VALUE_RECORD), validating shapes and
 * tied dimensions. */
#ifndef CKPT_RECORD_HANDLER_H
#define CKPT_RECORD_HANDLER_H

#include "ckpt/api.h"
#include "ckpt/handler.h"
#include "ckpt/tree.h"

#ifdef __cplusplus
extern "C" {
#endif

CKPT_API extern const ckpt_handler_vtable ckpt_record_handler_vtable;

/* Converts a record to a tree (arrays are copied when copy_arrays, else borrowed views that
 * must not outlive the record); *out owned by the caller. */
CKPT_API ckpt_status ckpt_record_to_tree(const ckpt_record_desc *desc, const void *record,
                                         bool copy_arrays, ckpt_tree **out, ckpt_error *err);
/* Fills an initialised record from a tree, validating kinds, shapes and tied dimensions; errors
 * name the field path. Takes what it needs from tree by copy. */
CKPT_API ckpt_status ckpt_record_from_tree(const ckpt_record_desc *desc, const ckpt_tree *tree,
                                           void *record, ckpt_error *err);

#ifdef __cplusplus
}
#endif
#endif
