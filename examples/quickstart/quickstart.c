/* quickstart — save a Composite of a JSON item and a proto item atomically, then restore every
 * it. The JSON item needs no restore args; the proto item needs a message of the type to parse
 * into (Orbax's ProtoRestore takes the message class the same way).
 *
 * Usage: quickstart DIR   (writes DIR/step_1; DIR is created if missing) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ckpt/ckpt.h>

#include "run_info.pb-c.h"

static int fail(const ckpt_error *err) {
  fprintf(stderr, "quickstart: %s: %s\n", ckpt_status_name(err->code), err->message);
  return 1;
}

/* A heap message, as ProtoSave owns its item and frees it with protobuf_c_message_free_unpacked. */
static Quickstart__RunInfo *make_run_info(void) {
  Quickstart__RunInfo *info = malloc(sizeof *info);
  if (!info) return NULL;
  quickstart__run_info__init(info);
  info->name = strdup("mlp-baseline");
  info->seed = 1234;
  info->learning_rate = 1e-3;
  info->n_hosts = 2;
  info->hosts = calloc(2, sizeof(char *));
  if (info->hosts) {
    info->hosts[0] = strdup("worker-0");
    info->hosts[1] = strdup("worker-1");
  }
  return info;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/step_1", argv[1]);

  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_io *io = ckpt_io_default();
  if (ckpt_io_mkdirs(io, argv[1], &err) != CKPT_OK) return fail(&err);
  if (ckpt_io_remove_tree(io, path, &err) != CKPT_OK) return fail(&err);

  ckpt_checkpointer *ckptr = NULL;
  if (ckpt_checkpointer_new(NULL, NULL, &ckptr, &err) != CKPT_OK) return fail(&err);

  /* --- save: the dozen lines of the README --- */
  ckpt_Composite *items = ckpt_composite_new();
  ckpt_JsonSave *config = ckpt_JsonSave_new();
  ckpt_ProtoSave *info = ckpt_ProtoSave_new();
  if (!items || !config || !info) {
    fprintf(stderr, "quickstart: out of memory\n");
    return 1;
  }
  config->item = cJSON_Parse("{\"lr\": 0.001, \"batch_size\": 32, \"layers\": [784, 128, 10]}");
  info->item = &make_run_info()->base;
  ckpt_composite_add(items, "config", &config->base, &err);
  ckpt_composite_add(items, "run_info", &info->base, &err);
  if (err.code == CKPT_OK) ckpt_checkpointer_save(ckptr, path, &items->base, false, NULL, &err);
  ckpt_args_delete(&items->base);
  if (err.code != CKPT_OK) return fail(&err);
  printf("saved %s\n", path);

  /* --- restore: JSON as saved, the proto into a RunInfo --- */
  ckpt_Composite *wanted = ckpt_composite_new();
  ckpt_ProtoRestore *info_type = ckpt_ProtoRestore_new();
  Quickstart__RunInfo *empty = malloc(sizeof *empty);
  if (!wanted || !info_type || !empty) {
    fprintf(stderr, "quickstart: out of memory\n");
    return 1;
  }
  quickstart__run_info__init(empty);
  info_type->item = &empty->base;
  ckpt_composite_add(wanted, "config", &ckpt_JsonRestore_new()->base, &err);
  ckpt_composite_add(wanted, "run_info", &info_type->base, &err);
  ckpt_value restored = {0};
  if (err.code == CKPT_OK) ckpt_checkpointer_restore(ckptr, path, &wanted->base, &restored, &err);
  ckpt_args_delete(&wanted->base);
  if (err.code != CKPT_OK) return fail(&err);
  ckpt_value *cfg = ckpt_value_item_get(&restored, "config");
  ckpt_value *run = ckpt_value_item_get(&restored, "run_info");
  if (!cfg || cfg->kind != CKPT_VALUE_JSON || !run || run->kind != CKPT_VALUE_PROTO) {
    fprintf(stderr, "quickstart: restored items are not what was saved\n");
    return 1;
  }
  char *json = cJSON_PrintUnformatted(cfg->u.json);
  const Quickstart__RunInfo *ri = (const Quickstart__RunInfo *)run->u.proto;
  printf("restored config:   %s\n", json ? json : "?");
  printf("restored run_info: name=%s seed=%lld hosts=%zu lr=%g (%s)\n", ri->name,
         (long long)ri->seed, ri->n_hosts, ri->learning_rate, run->u.proto->descriptor->name);
  free(json);
  ckpt_value_free(&restored);

  if (ckpt_checkpointer_close(ckptr, &err) != CKPT_OK) return fail(&err);
  return 0;
}
