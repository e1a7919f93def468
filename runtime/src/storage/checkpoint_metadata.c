/* storage/checkpoint_metadata.c — reading and writing _CHECKPOINT_METADATA (see the header);
 * the JSON text itself is text/json.h's (exact numbers, NaN, integers beyond 2^53). */
#include "storage/checkpoint_metadata.h"
#include "storage/zarr_io.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ckpt/layout.h"
#include "text/json.h"
#include "util/path.h"

void ckpt_step_metadata_clear(ckpt_step_metadata *m) {
  if (m == NULL)
    return;
  cJSON_Delete(m->item_handlers);
  cJSON_Delete(m->metrics);
  cJSON_Delete(m->performance_metrics);
  cJSON_Delete(m->custom_metadata);
  memset(m, 0, sizeof *m);
}

int64_t ckpt_now_nsecs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static cJSON *dup_or_empty(const cJSON *v) {
  return v != NULL ? cJSON_Duplicate(v, true) : cJSON_CreateObject();
}

static cJSON *timestamp_json(bool has, int64_t v, bool raw) {
  if (!has)
    return cJSON_CreateNull();
  if (!raw)
    return cJSON_CreateNumber((double)v);
  char buf[32];
  snprintf(buf, sizeof buf, "%" PRId64, v);
  return cJSON_CreateRaw(buf);
}

ckpt_status ckpt_step_metadata_to_json(const ckpt_step_metadata *m, bool raw_ints, cJSON **out,
                                       ckpt_error *err) {
  *out = NULL;
  cJSON *o = cJSON_CreateObject();
  /* Key order follows Orbax's serialiser, so files diff cleanly against Python's. */
  if (o == NULL ||
      !cJSON_AddItemToObject(o, "item_handlers",
                             m->item_handlers != NULL ? cJSON_Duplicate(m->item_handlers, true)
                                                      : cJSON_CreateNull()) ||
      !cJSON_AddItemToObject(o, "metrics", dup_or_empty(m->metrics)) ||
      !cJSON_AddItemToObject(o, "performance_metrics", dup_or_empty(m->performance_metrics)) ||
      !cJSON_AddItemToObject(
          o, "init_timestamp_nsecs",
          timestamp_json(m->has_init_timestamp, m->init_timestamp_nsecs, raw_ints)) ||
      !cJSON_AddItemToObject(
          o, "commit_timestamp_nsecs",
          timestamp_json(m->has_commit_timestamp, m->commit_timestamp_nsecs, raw_ints)) ||
      !cJSON_AddItemToObject(o, "custom_metadata", dup_or_empty(m->custom_metadata))) {
    /* cJSON_AddItemToObject fails (returns false) for a NULL item, i.e. an allocation that
     * failed above; the object owns everything added so far. */
    cJSON_Delete(o);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory building %s",
                          CKPT_CHECKPOINT_METADATA_FILE);
  }
  *out = o;
  return CKPT_OK;
}

ckpt_status ckpt_step_metadata_write(ckpt_io *io, const char *dir, const ckpt_step_metadata *m,
                                     ckpt_error *err) {
  return ckpt_step_metadata_write_sum(io, dir, m, NULL, err);
}

ckpt_status ckpt_step_metadata_write_sum(ckpt_io *io, const char *dir, const ckpt_step_metadata *m,
                                         ckpt_file_sum *sum, ckpt_error *err) {
  char *path = ckpt_path_join(dir, CKPT_CHECKPOINT_METADATA_FILE);
  if (path == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory writing metadata in '%s'", dir);
  cJSON *o;
  ckpt_status st = ckpt_step_metadata_to_json(m, true, &o, err);
  char *text = NULL;
  size_t len = 0;
  if (st == CKPT_OK) {
    /* Exact (NaN, every digit of a double, big integers) in the compact layout this file has
     * always had. */
    st = ckpt_json_dumps(o, CKPT_JSON_STYLE_TIGHT, &text, &len, err);
    cJSON_Delete(o);
    if (st != CKPT_OK)
      ckpt_error_prefix(err, "writing '%s': ", path);
  }
  if (st == CKPT_OK && sum != NULL)
    ckpt_file_sum_of(sum, text, len);
  if (st == CKPT_OK)
    st = ckpt_io_write_file(io, path, text, len, false, err);
  free(text);
  free(path);
  return st;
}

static bool is_known_key(const char *k) {
  static const char *const known[] = {"item_handlers",          "metrics",
                                      "performance_metrics",    "init_timestamp_nsecs",
                                      "commit_timestamp_nsecs", "custom_metadata"};
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
    if (strcmp(k, known[i]) == 0)
      return true;
  }
  return false;
}

/* Takes key from o (detached) when it is an object or null/absent; otherwise an error. */
static ckpt_status take_object(cJSON *o, const char *key, cJSON **slot, const char *path,
                               ckpt_error *err) {
  cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (v == NULL || cJSON_IsNull(v))
    return CKPT_OK;
  if (!cJSON_IsObject(v))
    return ckpt_error_set(err, CKPT_ECORRUPT, "'%s': \"%s\" must be an object", path, key);
  *slot = cJSON_DetachItemViaPointer(o, v);
  return CKPT_OK;
}

static ckpt_status parse(cJSON *o, ckpt_step_metadata *m, const char *path, ckpt_error *err) {
  if (!cJSON_IsObject(o))
    return ckpt_error_set(err, CKPT_ECORRUPT, "'%s' does not hold a JSON object", path);
  cJSON *ih = cJSON_GetObjectItemCaseSensitive(o, "item_handlers");
  if (ih != NULL && !cJSON_IsNull(ih)) {
    if (cJSON_IsObject(ih)) {
      const cJSON *e;
      cJSON_ArrayForEach(e, ih) {
        if (!cJSON_IsString(e) && !cJSON_IsNull(e))
          return ckpt_error_set(err, CKPT_ECORRUPT,
                                "'%s': item_handlers[\"%s\"] must be a typestr or null", path,
                                e->string);
      }
    } else if (!cJSON_IsString(ih)) {
      return ckpt_error_set(err, CKPT_ECORRUPT,
                            "'%s': \"item_handlers\" must be a typestr, an object or null", path);
    }
    m->item_handlers = cJSON_DetachItemViaPointer(o, ih);
  }
  ckpt_status st = take_object(o, "metrics", &m->metrics, path, err);
  if (st == CKPT_OK)
    st = take_object(o, "performance_metrics", &m->performance_metrics, path, err);
  if (st == CKPT_OK)
    st = take_object(o, "custom_metadata", &m->custom_metadata, path, err);
  if (st != CKPT_OK)
    return st;
  static const char *const ts_keys[] = {"init_timestamp_nsecs", "commit_timestamp_nsecs"};
  for (int i = 0; i < 2; i++) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, ts_keys[i]);
    if (v == NULL || cJSON_IsNull(v))
      continue;
    int64_t t;
    if (!ckpt_json_get_int64(v, &t))
      return ckpt_error_set(err, CKPT_ECORRUPT, "'%s': \"%s\" must be an integer", path,
                            ts_keys[i]);
    if (i == 0) {
      m->has_init_timestamp = true;
      m->init_timestamp_nsecs = t;
    } else {
      m->has_commit_timestamp = true;
      m->commit_timestamp_nsecs = t;
    }
  }
  /* Unknown keys (older files used "custom") move into custom_metadata under their own name,
   * as Orbax does, unless the file's custom_metadata is non-empty: then it is ambiguous. */
  bool custom_given = m->custom_metadata != NULL && m->custom_metadata->child != NULL;
  cJSON *e = o->child;
  while (e != NULL) {
    cJSON *next = e->next;
    if (e->string != NULL && !is_known_key(e->string)) {
      if (custom_given)
        return ckpt_error_set(err, CKPT_ECORRUPT,
                              "'%s' contains unknown key \"%s\", and custom_metadata is already "
                              "defined",
                              path, e->string);
      if (m->custom_metadata == NULL) {
        m->custom_metadata = cJSON_CreateObject();
        if (m->custom_metadata == NULL)
          return ckpt_error_set(err, CKPT_ENOMEM, "out of memory reading '%s'", path);
      }
      cJSON *moved = cJSON_DetachItemViaPointer(o, e);
      /* AddItemToObject copies the key before freeing the item's own copy. */
      if (!cJSON_AddItemToObject(m->custom_metadata, moved->string, moved)) {
        cJSON_Delete(moved);
        return ckpt_error_set(err, CKPT_ENOMEM, "out of memory reading '%s'", path);
      }
    }
    e = next;
  }
  return CKPT_OK;
}

ckpt_status ckpt_step_metadata_read(ckpt_io *io, const char *dir, ckpt_step_metadata *m,
                                    ckpt_error *err) {
  memset(m, 0, sizeof *m);
  char *path = ckpt_path_join(dir, CKPT_CHECKPOINT_METADATA_FILE);
  if (path == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory reading metadata in '%s'", dir);
  void *data = NULL;
  size_t n = 0;
  ckpt_status st = ckpt_io_read_file(io, path, CKPT_STEP_METADATA_MAX_BYTES, &data, &n, err);
  if (st == CKPT_OK) {
    cJSON *o = NULL;
    st = ckpt_json_load(data, n, path, &o, err); /* errors say "<path>:line:col: ..." */
    if (st == CKPT_OK)
      st = parse(o, m, path, err);
    cJSON_Delete(o);
  }
  free(data);
  free(path);
  if (st != CKPT_OK)
    ckpt_step_metadata_clear(m);
  return st;
}
