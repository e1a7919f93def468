/* handlers/pytree_multiprocess.h — the PyTree engine's part of a multi-process save
 * (docs/multiprocess.md), private to handlers/pytree_save.c and pytree_multiprocess.c.
 *
 * Before planning, every process all-gathers every array leaf's replica-0 shard boxes
 * (ckpt_pt_exchange_layouts), so that every process chooses the same chunks from the global
 * sharding; after every process wrote its chunks (and the checkpointer agreed on it), each
 * sends the primary its chunk checksums, which the primary merges into _CHECKSUMS before it
 * writes the item files (ckpt_pt_finish_item, an agreed job: handlers/op.h). With OCDBT each
 * process also sends its database's key table, and the primary writes the root database over
 * them first (pytree_multiprocess_ocdbt.h). */
#ifndef CKPT_SRC_HANDLERS_PYTREE_MULTIPROCESS_H
#define CKPT_SRC_HANDLERS_PYTREE_MULTIPROCESS_H

#include <stddef.h>
#include <stdint.h>

#include "ckpt/array.h"
#include "ckpt/error.h"
#include "ckpt/process_group.h"
#include "ckpt/tree.h"

/* One array leaf's global layout: rank, shape and every process's replica-0 boxes, in
 * process order (each process's in its own order). */
typedef struct ckpt_pt_layout_leaf {
  int ndim;
  int64_t shape[CKPT_MAX_RANK];
  size_t n;
  ckpt_shard *boxes; /* offset and shape only; data NULL, replica 0 */
} ckpt_pt_layout_leaf;

typedef struct ckpt_pt_layout {
  size_t n_leaves;
  ckpt_pt_layout_leaf *leaves;
} ckpt_pt_layout;

void ckpt_pt_layout_free(ckpt_pt_layout *g);
/* The all-gather of every process's array layouts (every process takes part, even one that
 * could not describe its own: it sends its failure); *g filled in flatten's order of the array
 * leaves (free with ckpt_pt_layout_free; empty on error). CKPT_EMISMATCH when the processes'
 * trees differ in arrays, ranks or shapes. what prefixes messages. */
ckpt_status ckpt_pt_exchange_layouts(ckpt_process_group *pg, const ckpt_tree *tree,
                                     const char *what, ckpt_pt_layout *g, ckpt_error *err);
/* The agreed job of a multi-process PyTree save (arg: its ckpt_write_plan, whose
 * note_durable_ctx is the op): the gather of every process's chunk checksums onto the primary,
 * which merges them and writes the item files. */
ckpt_status ckpt_pt_finish_item(void *arg, ckpt_error *err);

#endif
