/* storage/array_metadatas.c — array_metadatas/process_<i>, the file each process of a
 * multi-process save writes for itself (Orbax's ArrayMetadataStore, docs/format.md):
 *   {"array_metadatas": [{"array_metadata": {"param_name": "a", "write_shape": [4],
 *     "chunk_shape": [4], "ext_metadata": null}}, ...]}
 * one entry per stored array of rank 1 or more; write_shape is this process's first replica-0
 * shard of the array (the primary's _METADATA value when it holds none). ckpt does not read it
 * back: it is for Orbax, and _CHECKSUMS lists it so that `ckpt verify` checks it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/zarr_write.h"
#include "text/json.h"


char *ckpt_array_metadatas_rel(int process) {
  char buf[64];
  snprintf(buf, sizeof buf, CKPT_ARRAY_METADATAS_DIR "/process_%d", process);
  size_t n = strlen(buf) + 1;
  char *out = malloc(n);
  if (out != NULL)
    memcpy(out, buf, n);
  return out;
}

static cJSON *shape_json(const int64_t *shape, int ndim) {
  cJSON *a = cJSON_CreateArray();
  for (int d = 0; a != NULL && d < ndim; d++) {
    cJSON *v = cJSON_CreateNumber((double)shape[d]);
    if (v == NULL || !cJSON_AddItemToArray(a, v)) {
      cJSON_Delete(v);
      cJSON_Delete(a);
      return NULL;
    }
  }
  return a;
}

ckpt_status ckpt_array_metadatas_encode(const ckpt_write_plan *j, char **text, size_t *len,
                                        ckpt_error *err) {
  *text = NULL;
  cJSON *root = cJSON_CreateObject();
  cJSON *list = root != NULL ? cJSON_AddArrayToObject(root, "array_metadatas") : NULL;
  bool ok = list != NULL;
  for (size_t i = 0; ok && i < j->n_leaves; i++) {
    const ckpt_write_leaf *l = &j->leaves[i];
    const ckpt_meta_entry *e = &j->meta.entries[l->entry];
    if (l->zm->ndim == 0)
      continue;
    const int64_t *write = l->n_shards > 0 ? l->shards[0].shape : e->write_shape;
    cJSON *item = cJSON_CreateObject();
    cJSON *meta = item != NULL ? cJSON_AddObjectToObject(item, "array_metadata") : NULL;
    cJSON *ws = shape_json(write, l->zm->ndim);
    cJSON *cs = shape_json(l->zm->chunks, l->zm->ndim);
    ok = meta != NULL && ws != NULL && cs != NULL &&
         cJSON_AddStringToObject(meta, "param_name", e->param) != NULL &&
         cJSON_AddItemToObject(meta, "write_shape", ws) &&
         cJSON_AddItemToObject(meta, "chunk_shape", cs) &&
         cJSON_AddNullToObject(meta, "ext_metadata") != NULL &&
         cJSON_AddItemToArray(list, item);
    if (!ok) {
      if (meta == NULL || cJSON_GetObjectItemCaseSensitive(meta, "write_shape") == NULL)
        cJSON_Delete(ws);
      if (meta == NULL || cJSON_GetObjectItemCaseSensitive(meta, "chunk_shape") == NULL)
        cJSON_Delete(cs);
      cJSON_Delete(item);
    }
  }
  ckpt_status st = ok ? ckpt_json_dump_compact(root, text, len, err)
                      : ckpt_error_set(err, CKPT_ENOMEM, "out of memory encoding array_metadatas");
  cJSON_Delete(root);
  return st;
}
