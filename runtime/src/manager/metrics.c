/* manager/metrics.c — the metrics item: <step>/metrics/metrics.
 *
 * Orbax's CheckpointManager saves metrics with JsonCheckpointHandler(filename='metrics'), a
 * JsonCheckpointHandler *instance* configured with another file name; the typestr it records
 * in _CHECKPOINT_METADATA.item_handlers is JsonCheckpointHandler's. ckpt's JSON handler has no
 * per-instance file name (handlers are default-constructed from a descriptor), so the manager
 * brings its own handler that writes the same JSON text (json_text's ckpt_json_dump, what
 * json.dumps writes) under the name `metrics`, with private save args.
 *
 * Two handler descriptors cannot claim one typestr in the registry. This one presents itself
 * as the same qualified class (name and full name of JsonCheckpointHandler, as Orbax's metrics
 * handler is that class), which the registry accepts as a re-registration of the class and
 * answers by pointing the typestr at this descriptor; registering the built-in descriptor's
 * typestr again right afterwards restores the typestr look-up to the built-in handler. The
 * result: args of type ManagerMetricsSave dispatch here, the typestr recorded for the metrics
 * item is Orbax's, and restoring by typestr still finds the ordinary JSON handler. (For the
 * instant between the two registrations — once per process, on the first ckpt_manager_new —
 * a typestr look-up on another thread would get this handler, which has no restore args, so
 * such a restore fails with an error instead of misreading anything.)
 *
 * The manager reads metrics back itself (mgr_metrics_read) rather than through a handler, so
 * no restore args are registered. */
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>

#include "ckpt/ckpt.h"
#include "json_text/json_text.h"
#include "manager/manager_internal.h"
#include "storage/commit.h"
#include "textfmt/text_file.h"

/* ---------------------------------------------------------------- the args */

typedef struct mgr_MetricsSave {
  ckpt_args base;
  cJSON *item;
} mgr_MetricsSave;

static const ckpt_type_desc metrics_item_type = {.kind = CKPT_KIND_JSON};
static const ckpt_field_desc metrics_save_fields[1] = {{
    .name = "item",
    .type = &metrics_item_type,
    .flags = 0,
    .offset = offsetof(mgr_MetricsSave, item),
    .doc = "The metrics (a JSON object).",
}};
static const ckpt_args_desc mgr_MetricsSave_desc = {
    .magic = CKPT_RECORD_DESC_MAGIC,
    .abi_version = CKPT_ABI_VERSION,
    .name = "ManagerMetricsSave",
    .full_name = "ckpt.ManagerMetricsSave",
    .c_name = "mgr_MetricsSave",
    .size = sizeof(mgr_MetricsSave),
    .n_fields = 1,
    .fields = metrics_save_fields,
    .is_args = true,
    .doc = "The CheckpointManager's metrics item (private).",
};

/* ---------------------------------------------------------------- the handler */

static ckpt_status metrics_save(ckpt_handler *self, ckpt_op *op, const char *dir,
                                const ckpt_args *args, ckpt_error *err) {
  (void)self;
  if (args == NULL || args->desc != &mgr_MetricsSave_desc)
    return ckpt_error_set(err, CKPT_ETYPE,
                          "the CheckpointManager's metrics handler saves only its own args, not "
                          "'%s'",
                          args != NULL && args->desc != NULL ? args->desc->full_name : "(none)");
  const mgr_MetricsSave *a = (const mgr_MetricsSave *)(const void *)args;
  if (a->item == NULL)
    return ckpt_error_set(err, CKPT_EINVAL, "metrics item of '%s' is NULL", dir);
  char *text;
  size_t len;
  ckpt_status st = ckpt_json_dump(a->item, &text, &len, err); /* the snapshot */
  if (st != CKPT_OK) {
    ckpt_error_prefix(err, "cannot save the metrics to '%s/%s': ", dir, CKPT_MANAGER_METRICS_ITEM);
    return st;
  }
  return ckpt_tf_save_text(op, dir, CKPT_MANAGER_METRICS_ITEM, text, len, err);
}

static ckpt_status metrics_restore(ckpt_handler *self, ckpt_op *op, const char *dir,
                                   const ckpt_args *args, ckpt_value *out, ckpt_error *err) {
  (void)self;
  (void)args; /* like JsonRestore's item, nothing in the args changes what is read */
  char *text, *path;
  size_t len;
  ckpt_status st = ckpt_tf_load_text(op, dir, CKPT_MANAGER_METRICS_ITEM, &text, &len, &path, err);
  if (st != CKPT_OK)
    return st;
  cJSON *item = NULL;
  st = ckpt_json_load(text, len, path, &item, err);
  free(text);
  free(path);
  if (st != CKPT_OK)
    return st;
  out->kind = CKPT_VALUE_JSON;
  out->u.json = item;
  return CKPT_OK;
}

static const ckpt_handler_vtable metrics_vtable = {
    .save = metrics_save,
    .restore = metrics_restore,
};

/* Named as the class it is in Orbax (see the top of the file). */
static const ckpt_handler_desc mgr_metrics_handler_desc = {
    .name = "JsonCheckpointHandler",
    .full_name = "ckpt.JsonCheckpointHandler",
    .typestr = "orbax.checkpoint._src.handlers.json_checkpoint_handler.JsonCheckpointHandler",
    .vtable = &metrics_vtable,
    .impl = NULL,
    .doc = "JsonCheckpointHandler(filename='metrics'): the CheckpointManager's metrics item.",
};

/* ---------------------------------------------------------------- registration */

static pthread_mutex_t register_mu = PTHREAD_MUTEX_INITIALIZER;
static bool registered;

ckpt_status mgr_metrics_register(ckpt_error *err) {
  pthread_mutex_lock(&register_mu);
  ckpt_status st = CKPT_OK;
  if (!registered) {
    st = ckpt_register_with_handler(&mgr_metrics_handler_desc, &mgr_MetricsSave_desc, true, false,
                                    err);
    /* Always, also after a failure: the typestr must lead to the built-in handler. */
    ckpt_status st2 = ckpt_register_handler_type(&ckpt_JsonCheckpointHandler_desc, err);
    if (st == CKPT_OK)
      st = st2;
    if (st != CKPT_OK)
      ckpt_error_prefix(err, "cannot register the CheckpointManager's metrics handler: ");
    registered = st == CKPT_OK;
  }
  pthread_mutex_unlock(&register_mu);
  return st;
}

ckpt_status mgr_metrics_args(const cJSON *metrics, ckpt_args **out, ckpt_error *err) {
  *out = NULL;
  mgr_MetricsSave *a = (mgr_MetricsSave *)(void *)ckpt_args_new(&mgr_MetricsSave_desc);
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
