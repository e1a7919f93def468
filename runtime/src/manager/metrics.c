/* manager/metrics.c — the metrics item: <step>/metrics/metrics.
 *
 * Orbax's CheckpointManager saves metrics with JsonCheckpointHandler(filename='metrics'), a
 * JsonCheckpointHandler instance configured with another file name, registered for the item
 * `metrics` only; the typestr it records in _CHECKPOINT_METADATA.item_handlers is
 * JsonCheckpointHandler's. Here the same: at construction the manager binds the item `metrics`
 * of its checkpointer's Composite handler to such an instance (ckpt_json_handler_new +
 * ckpt_checkpointer_bind_item), and saves the metrics as ordinary JsonSave args. Nothing is
 * registered, so the process-wide registry is never touched and managers can be created on
 * any number of threads at once.
 *
 * The manager reads metrics back itself (mgr_metrics_read): ckpt_manager_metrics, the step
 * list at construction and restore do not need a checkpointer for that. */
#include <stdlib.h>

#include "checkpointer/checkpointer_internal.h"
#include "ckpt/ckpt.h"
#include "text/json.h"
#include "manager/manager_internal.h"
#include "storage/commit.h"
#include "util/path.h"

ckpt_status mgr_metrics_bind(ckpt_checkpointer *ckptr, ckpt_error *err) {
  ckpt_handler *h;
  ckpt_status st = ckpt_json_handler_new(CKPT_MANAGER_METRICS_ITEM, &h, err);
  if (st == CKPT_OK)
    st = ckpt_checkpointer_bind_item(ckptr, CKPT_MANAGER_METRICS_ITEM, h, err);
  if (st != CKPT_OK)
    ckpt_error_prefix(err, "cannot set up the CheckpointManager's metrics item: ");
  return st;
}

ckpt_status mgr_metrics_args(const cJSON *metrics, ckpt_args **out, ckpt_error *err) {
  *out = NULL;
  ckpt_JsonSave *a = (ckpt_JsonSave *)(void *)ckpt_args_new(&ckpt_JsonSave_desc);
  if (a == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory saving metrics");
  a->item = cJSON_Duplicate(metrics, true);
  if (a->item == NULL) {
    ckpt_args_delete(&a->base);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory copying the metrics");
  }
  *out = &a->base;
  return CKPT_OK;
}

ckpt_status mgr_metrics_read(const mgr_config *c, const char *step_dir, cJSON **out,
                             ckpt_error *err) {
  *out = NULL;
  char *item = ckpt_path_join(step_dir, CKPT_MANAGER_METRICS_ITEM);
  char *file = item != NULL ? ckpt_path_join(item, CKPT_MANAGER_METRICS_ITEM) : NULL;
  free(item);
  if (file == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory reading metrics");
  ckpt_io_kind kind;
  ckpt_status st = ckpt_io_stat(c->io, file, &kind, NULL, err);
  /* Orbax's metrics(step): a step without the file has no metrics (FileNotFoundError → None). */
  if (st == CKPT_OK && kind != CKPT_IO_KIND_MISSING)
    st = ckpt_json_read_file(c->io, file, MGR_METRICS_MAX_BYTES, out, err);
  free(file);
  return st;
}
