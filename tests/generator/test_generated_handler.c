/* test_generated_handler.c — handlers declared in schemas, run by the real checkpointer:
 *  - a hand-written handler (examples/embedding: `handler EmbeddingTableHandler` with every hook),
 *    implemented below against the prototypes ckptgen emitted, saved and restored directly and
 *    through Composite, which finds it through the registry entries emb_register made;
 *  - a generated record handler (examples/demo: `handler TrainStateHandler for TrainState`),
 *    whose save/restore the runtime performs from the descriptors alone.
 * The alltypes example's hand-written KitchenSinkHandler is implemented here too (every program
 * linking that schema must), and exercised through the checkpointer. */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt.h"
#include "examples/alltypes/all_types.ckpt.h"
#include "examples/demo/train_state.ckpt.h"
#include "examples/embedding/embedding.ckpt.h"
#include "gen_support.h"
#include "gen_values.h"

TestSuite(generated_handler, .fini = gs_cleanup_tmpdirs);

/* ================================================================ EmbeddingTableHandler */

/* Instance state: counts calls, so the tests can see the hooks ran on the instance the
 * checkpointer created (init) and were given that instance afterwards. */
typedef struct emb_state {
  int saves;
  int finalizes;
} emb_state;

ckpt_status emb_EmbeddingTableHandler_init(ckpt_handler *self, ckpt_error *err) {
  self->state = calloc(1, sizeof(emb_state));
  if (self->state == NULL) return ckpt_error_set(err, CKPT_ENOMEM, "EmbeddingTableHandler state");
  return CKPT_OK;
}

void emb_EmbeddingTableHandler_close(ckpt_handler *self) {
  free(self->state);
  self->state = NULL;
}

/* The table is split by rows into num_shards files shard-<i>.bin (the last ones may be empty),
 * plus a text file `shape` holding "rows cols num_shards". */
ckpt_status emb_EmbeddingTableHandler_save(ckpt_handler *self, ckpt_op *op, const char *dir,
                                           const ckpt_args *args, ckpt_error *err) {
  const emb_EmbeddingTableSave *a = emb_EmbeddingTableSave_cast(args);
  if (a == NULL) {
    return ckpt_error_set(err, CKPT_ETYPE, "EmbeddingTableHandler cannot save %s in %s",
                          args ? args->desc->full_name : "(null)", dir);
  }
  if (a->table == NULL || a->table->ndim != 2 || a->table->dtype != CKPT_DTYPE_FLOAT32 ||
      ckpt_array_data(a->table) == NULL) {
    return ckpt_error_set(err, CKPT_EINVAL, "EmbeddingTableSave.table must be a 2-d float32");
  }
  if (a->num_shards <= 0) {
    return ckpt_error_set(err, CKPT_EINVAL, "EmbeddingTableSave.num_shards = %d",
                          (int)a->num_shards);
  }
  ckpt_io *io = ckpt_op_io(op);
  int64_t rows = a->table->shape[0], cols = a->table->shape[1];
  int64_t per = (rows + a->num_shards - 1) / a->num_shards;
  const float *data = ckpt_array_data(a->table);
  char path[4096], text[128];
  for (int32_t s = 0; s < a->num_shards; s++) {
    int64_t begin = s * per < rows ? s * per : rows;
    int64_t end = begin + per < rows ? begin + per : rows;
    snprintf(path, sizeof path, "%s/shard-%d.bin", dir, (int)s);
    ckpt_status st = ckpt_io_write_file(io, path, data + begin * cols,
                                        (size_t)((end - begin) * cols) * sizeof(float), true, err);
    if (st != CKPT_OK) return st;
  }
  int n = snprintf(text, sizeof text, "%lld %lld %d\n", (long long)rows, (long long)cols,
                   (int)a->num_shards);
  snprintf(path, sizeof path, "%s/shape", dir);
  ckpt_status st = ckpt_io_write_file(io, path, text, (size_t)n, true, err);
  if (st == CKPT_OK) ((emb_state *)self->state)->saves++;
  return st;
}

static ckpt_status emb_read_shape(ckpt_io *io, const char *dir, long long *rows,
                                  long long *cols, int *shards, ckpt_error *err) {
  char path[4096];
  snprintf(path, sizeof path, "%s/shape", dir);
  void *text = NULL;
  size_t n = 0;
  ckpt_status st = ckpt_io_read_file(io, path, 256, &text, &n, err);
  if (st != CKPT_OK) return st;
  int got = sscanf(text, "%lld %lld %d", rows, cols, shards);
  free(text);
  if (got != 3 || *rows < 0 || *cols < 0 || *shards <= 0) {
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s: malformed shape file", path);
  }
  return CKPT_OK;
}

ckpt_status emb_EmbeddingTableHandler_restore(ckpt_handler *self, ckpt_op *op, const char *dir,
                                              const ckpt_args *args, ckpt_value *out,
                                              ckpt_error *err) {
  (void)self;
  const emb_EmbeddingTableRestore *a = NULL;
  if (args != NULL && (a = emb_EmbeddingTableRestore_cast(args)) == NULL) {
    return ckpt_error_set(err, CKPT_ETYPE, "EmbeddingTableHandler cannot restore with %s",
                          args->desc->full_name);
  }
  ckpt_io *io = ckpt_op_io(op);
  long long rows, cols;
  int shards;
  ckpt_status st = emb_read_shape(io, dir, &rows, &cols, &shards, err);
  if (st != CKPT_OK) return st;
  if (a != NULL && a->has_num_shards && a->num_shards != shards) {
    return ckpt_error_set(err, CKPT_EMISMATCH, "%s holds %d shards, the restore asked for %d",
                          dir, shards, (int)a->num_shards);
  }
  int64_t shape[2] = {rows, cols};
  ckpt_array *table = NULL;
  st = ckpt_array_new(CKPT_DTYPE_FLOAT32, 2, shape, &table, err);
  if (st != CKPT_OK) return st;
  uint8_t *dst = ckpt_array_data(table);
  size_t total = (size_t)(rows * cols) * sizeof(float), done = 0;
  for (int s = 0; s < shards && st == CKPT_OK; s++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/shard-%d.bin", dir, s);
    void *data = NULL;
    size_t n = 0;
    st = ckpt_io_read_file(io, path, total - done, &data, &n, err);
    if (st == CKPT_OK) {
      if (n > 0) memcpy(dst + done, data, n);
      done += n;
      free(data);
    }
  }
  if (st == CKPT_OK && done != total) {
    st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: shards hold %zu bytes, expected %zu", dir, done,
                        total);
  }
  if (st != CKPT_OK) {
    ckpt_array_free(table);
    return st;
  }
  out->kind = CKPT_VALUE_ARRAY;
  out->u.array = table;
  return CKPT_OK;
}

ckpt_status emb_EmbeddingTableHandler_metadata(ckpt_handler *self, ckpt_op *op, const char *dir,
                                               cJSON **out, ckpt_error *err) {
  (void)self;
  long long rows, cols;
  int shards;
  ckpt_status st = emb_read_shape(ckpt_op_io(op), dir, &rows, &cols, &shards, err);
  if (st != CKPT_OK) return st;
  cJSON *j = cJSON_CreateObject();
  if (j == NULL || cJSON_AddNumberToObject(j, "rows", (double)rows) == NULL ||
      cJSON_AddNumberToObject(j, "num_shards", shards) == NULL) {
    cJSON_Delete(j);
    return ckpt_error_set(err, CKPT_ENOMEM, "EmbeddingTableHandler metadata");
  }
  *out = j;
  return CKPT_OK;
}

ckpt_status emb_EmbeddingTableHandler_finalize(ckpt_handler *self, ckpt_op *op, const char *dir,
                                               ckpt_error *err) {
  emb_state *state = self->state;
  state->finalizes++;
  char path[4096], text[64];
  snprintf(path, sizeof path, "%s/finalized", dir);
  int n = snprintf(text, sizeof text, "saves=%d finalizes=%d\n", state->saves, state->finalizes);
  return ckpt_io_write_file(ckpt_op_io(op), path, text, (size_t)n, true, err);
}

/* ================================================================ KitchenSinkHandler */

/* Saves the args' version and comment; enough to prove the generated vtable is wired. */
ckpt_status alltypes_KitchenSinkHandler_init(ckpt_handler *self, ckpt_error *err) {
  (void)err;
  self->state = NULL;
  return CKPT_OK;
}

void alltypes_KitchenSinkHandler_close(ckpt_handler *self) { (void)self; }

ckpt_status alltypes_KitchenSinkHandler_save(ckpt_handler *self, ckpt_op *op, const char *dir,
                                             const ckpt_args *args, ckpt_error *err) {
  (void)self;
  const alltypes_KitchenSink *a = alltypes_KitchenSink_cast(args);
  if (a == NULL) return ckpt_error_set(err, CKPT_ETYPE, "KitchenSinkHandler: wrong args");
  char path[4096], text[256];
  snprintf(path, sizeof path, "%s/kitchen_sink.txt", dir);
  int n = snprintf(text, sizeof text, "%d %s", (int)a->version, a->comment ? a->comment : "");
  return ckpt_io_write_file(ckpt_op_io(op), path, text, (size_t)n, true, err);
}

ckpt_status alltypes_KitchenSinkHandler_restore(ckpt_handler *self, ckpt_op *op,
                                                const char *dir, const ckpt_args *args,
                                                ckpt_value *out, ckpt_error *err) {
  (void)self;
  (void)args;
  char path[4096];
  snprintf(path, sizeof path, "%s/kitchen_sink.txt", dir);
  void *text = NULL;
  size_t n = 0;
  ckpt_status st = ckpt_io_read_file(ckpt_op_io(op), path, 4096, &text, &n, err);
  if (st != CKPT_OK) return st;
  cJSON *j = cJSON_CreateString(text);
  free(text);
  if (j == NULL) return ckpt_error_set(err, CKPT_ENOMEM, "KitchenSinkHandler restore");
  out->kind = CKPT_VALUE_JSON;
  out->u.json = j;
  return CKPT_OK;
}

ckpt_status alltypes_KitchenSinkHandler_metadata(ckpt_handler *self, ckpt_op *op,
                                                 const char *dir, cJSON **out, ckpt_error *err) {
  (void)self;
  (void)op;
  (void)dir;
  *out = cJSON_CreateObject();
  return *out ? CKPT_OK : ckpt_error_set(err, CKPT_ENOMEM, "KitchenSinkHandler metadata");
}

ckpt_status alltypes_KitchenSinkHandler_finalize(ckpt_handler *self, ckpt_op *op,
                                                 const char *dir, ckpt_error *err) {
  (void)self;
  (void)op;
  (void)dir;
  (void)err;
  return CKPT_OK;
}

/* ================================================================ helpers */

/* Registers the example packages (as a program does at start-up: a checkpointer accepts only
 * args registered with its handler) and makes a checkpointer for handler (NULL: Composite). */
static ckpt_checkpointer *new_checkpointer(const ckpt_handler_desc *handler, bool async) {
  ckpt_error reg_err = CKPT_ERROR_INIT;
  cr_assert_eq(emb_register(&reg_err), CKPT_OK, "%s", reg_err.message);
  cr_assert_eq(demo_register(&reg_err), CKPT_OK, "%s", reg_err.message);
  cr_assert_eq(alltypes_register(&reg_err), CKPT_OK, "%s", reg_err.message);
  ckpt_checkpointer_options opts = CKPT_CHECKPOINTER_OPTIONS_INIT;
  opts.async = async;
  ckpt_checkpointer *ck = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_new(handler, &opts, &ck, &err), CKPT_OK, "%s", err.message);
  return ck;
}

static void close_checkpointer(ckpt_checkpointer *ck) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_close(ck, &err), CKPT_OK, "%s", err.message);
}

/* The parsed _CHECKPOINT_METADATA of a committed checkpoint (caller deletes). */
static cJSON *read_checkpoint_metadata(const char *path) {
  char *file = gs_fmt("%s/" CKPT_CHECKPOINT_METADATA_FILE, path);
  char *text = gs_read_file(file, NULL);
  cr_assert_not_null(text, "%s is missing", file);
  cJSON *j = cJSON_Parse(text);
  cr_assert_not_null(j, "%s is not JSON: %s", file, text);
  free(text);
  free(file);
  return j;
}

static emb_EmbeddingTableSave *make_table_save(int64_t rows, int64_t cols, int32_t shards) {
  emb_EmbeddingTableSave *save = emb_EmbeddingTableSave_new();
  cr_assert_not_null(save);
  save->table = gv_f32(rows, cols, 17);
  save->num_shards = shards;
  return save;
}

/* ================================================================ tests: hand-written */

Test(generated_handler, hand_written_handler_saves_and_restores_through_checkpointer) {
  char *tmp = gs_mkdtemp("emb");
  char *path = gs_fmt("%s/step_1", tmp);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_checkpointer *ck = new_checkpointer(&emb_EmbeddingTableHandler_desc, false);

  emb_EmbeddingTableSave *save = make_table_save(10, 3, 4);
  cr_assert_eq(ckpt_checkpointer_save(ck, path, &save->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  /* files of our save and of our finalize hook, committed under the final name */
  char *shard3 = gs_fmt("%s/shard-3.bin", path);
  char *finalized = gs_fmt("%s/finalized", path);
  cr_assert(gs_exists(shard3), "%s", shard3);
  char *marker = gs_read_file(finalized, NULL);
  cr_assert_not_null(marker, "the finalize hook ran before the commit");
  cr_assert_str_eq(marker, "saves=1 finalizes=1\n", "init made the state the hooks share");
  cJSON *meta = read_checkpoint_metadata(path);
  cJSON *handlers = cJSON_GetObjectItemCaseSensitive(meta, "item_handlers");
  cr_assert(cJSON_IsString(handlers), "a single-handler checkpoint records one typestr");
  cr_assert_str_eq(handlers->valuestring, "ckpt.examples.EmbeddingTableHandler");
  cJSON_Delete(meta);

  ckpt_value out = {CKPT_VALUE_NONE, {NULL}};
  emb_EmbeddingTableRestore *restore = emb_EmbeddingTableRestore_new();
  cr_assert_eq(ckpt_checkpointer_restore(ck, path, &restore->base, &out, &err), CKPT_OK, "%s",
               err.message);
  cr_assert_eq(out.kind, CKPT_VALUE_ARRAY);
  cr_assert(ckpt_array_equal(out.u.array, save->table), "the table comes back bit for bit");
  ckpt_value_free(&out);

  /* our restore's own error reaches the caller with its code and message */
  restore->has_num_shards = true;
  restore->num_shards = 5;
  cr_assert_eq(ckpt_checkpointer_restore(ck, path, &restore->base, &out, &err), CKPT_EMISMATCH);
  cr_assert(strstr(err.message, "holds 4 shards") != NULL, "%s", err.message);

  ckpt_args_delete(&restore->base);
  ckpt_args_delete(&save->base);
  free(marker);
  free(finalized);
  free(shard3);
  close_checkpointer(ck);
  gs_rmtree(tmp);
  free(path);
  free(tmp);
  gs_expect_no_leaks();
}

/* Composite finds the handler of each item through the registry, as Orbax's
 * CompositeCheckpointHandler does; restoring without args finds it by typestr. */
Test(generated_handler, hand_written_handler_through_composite_and_registry) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(emb_register(&err), CKPT_OK, "%s", err.message);
  char *tmp = gs_mkdtemp("embc");
  char *path = gs_fmt("%s/ckpt", tmp);
  ckpt_checkpointer *ck = new_checkpointer(NULL, true);

  ckpt_Composite *composite = ckpt_Composite_new();
  cr_assert_not_null(composite);
  emb_EmbeddingTableSave *save = make_table_save(7, 5, 2);
  ckpt_array *expected = ckpt_array_clone(save->table);
  composite->n_items = 1;
  composite->items = gv_calloc(1, sizeof *composite->items);
  composite->items[0].key = gv_strdup("embedding");
  composite->items[0].value = &save->base;
  cr_assert_eq(ckpt_checkpointer_save(ck, path, &composite->base, false, NULL, &err), CKPT_OK,
               "%s", err.message);
  ckpt_args_delete(&composite->base); /* async: the save snapshotted what it needs */
  cr_assert_eq(ckpt_checkpointer_wait_until_finished(ck, &err), CKPT_OK, "%s", err.message);

  char *shard = gs_fmt("%s/embedding/shard-1.bin", path);
  cr_assert(gs_exists(shard), "the item is saved in its own directory: %s", shard);
  cJSON *meta = read_checkpoint_metadata(path);
  cJSON *handlers = cJSON_GetObjectItemCaseSensitive(meta, "item_handlers");
  cJSON *typestr = cJSON_GetObjectItemCaseSensitive(handlers, "embedding");
  cr_assert(cJSON_IsString(typestr));
  cr_assert_str_eq(typestr->valuestring, "ckpt.examples.EmbeddingTableHandler");
  cJSON_Delete(meta);

  ckpt_value out = {CKPT_VALUE_NONE, {NULL}};
  cr_assert_eq(ckpt_checkpointer_restore(ck, path, NULL, &out, &err), CKPT_OK, "%s",
               err.message);
  cr_assert_eq(out.kind, CKPT_VALUE_COMPOSITE);
  ckpt_value *item = ckpt_value_item_get(&out, "embedding");
  cr_assert_not_null(item);
  cr_assert_eq(item->kind, CKPT_VALUE_ARRAY);
  cr_assert(ckpt_array_equal(item->u.array, expected));
  ckpt_value_free(&out);

  ckpt_array_free(expected);
  free(shard);
  close_checkpointer(ck);
  gs_rmtree(tmp);
  free(path);
  free(tmp);
  gs_expect_no_leaks();
}

Test(generated_handler, kitchen_sink_handler_through_checkpointer) {
  ckpt_error err = CKPT_ERROR_INIT;
  char *tmp = gs_mkdtemp("ks");
  char *path = gs_fmt("%s/ks", tmp);
  ckpt_checkpointer *ck = new_checkpointer(&alltypes_KitchenSinkHandler_desc, false);
  alltypes_KitchenSink *ks = alltypes_KitchenSink_new();
  cr_assert_not_null(ks);
  ks->comment = gv_strdup("hello");
  cr_assert_eq(ckpt_checkpointer_save(ck, path, &ks->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  ckpt_value out = {CKPT_VALUE_NONE, {NULL}};
  cr_assert_eq(ckpt_checkpointer_restore(ck, path, &ks->base, &out, &err), CKPT_OK, "%s",
               err.message);
  cr_assert_eq(out.kind, CKPT_VALUE_JSON);
  cr_assert_str_eq(out.u.json->valuestring, "2 hello");
  ckpt_value_free(&out);
  ckpt_args_delete(&ks->base);
  close_checkpointer(ck);
  gs_rmtree(tmp);
  free(path);
  free(tmp);
  gs_expect_no_leaks();
}

/* ================================================================ tests: generated */

static void expect_record_value(const ckpt_value *v, const demo_TrainState *expected) {
  cr_assert_eq(v->kind, CKPT_VALUE_RECORD, "kind %s", ckpt_value_kind_name(v->kind));
  cr_assert_eq(v->u.record.desc, &demo_TrainState_desc);
  cr_assert(demo_TrainState_equal(v->u.record.data, expected),
            "the restored TrainState equals the saved one");
}

Test(generated_handler, record_handler_round_trip) {
  ckpt_error err = CKPT_ERROR_INIT;
  char *tmp = gs_mkdtemp("rec");
  char *path = gs_fmt("%s/state", tmp);
  demo_TrainState state;
  cr_assert_eq(demo_TrainState_init(&state), CKPT_OK);
  gv_fill_train_state(&state, 21);

  ckpt_checkpointer *ck = new_checkpointer(&demo_TrainStateHandler_desc, false);
  demo_TrainStateSave *save = demo_TrainStateSave_new();
  save->item = &state;
  cr_assert_eq(ckpt_checkpointer_save(ck, path, &save->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);

  ckpt_value out = {CKPT_VALUE_NONE, {NULL}};
  demo_TrainStateRestore *restore = demo_TrainStateRestore_new();
  cr_assert_eq(ckpt_checkpointer_restore(ck, path, &restore->base, &out, &err), CKPT_OK, "%s",
               err.message);
  expect_record_value(&out, &state);
  ckpt_value_free(&out);

  /* as saved, without args */
  cr_assert_eq(ckpt_checkpointer_restore(ck, path, NULL, &out, &err), CKPT_OK, "%s",
               err.message);
  expect_record_value(&out, &state);
  ckpt_value_free(&out);

  ckpt_args_delete(&save->base);
  ckpt_args_delete(&restore->base);
  close_checkpointer(ck);
  demo_TrainState_free(&state);
  gs_rmtree(tmp);
  free(path);
  free(tmp);
  gs_expect_no_leaks();
}

/* A tied dimension (H) that disagrees between fields is refused at save, naming the fields. */
Test(generated_handler, record_handler_checks_tied_dimensions) {
  ckpt_error err = CKPT_ERROR_INIT;
  char *tmp = gs_mkdtemp("tied");
  char *path = gs_fmt("%s/state", tmp);
  demo_TrainState state;
  cr_assert_eq(demo_TrainState_init(&state), CKPT_OK);
  gv_fill_train_state(&state, 2);
  ckpt_array_free(state.b1);
  state.b1 = gv_f32(5, -1, 1); /* w1 is [3, 4]: H = 4, but b1 says H = 5 */

  ckpt_checkpointer *ck = new_checkpointer(&demo_TrainStateHandler_desc, false);
  demo_TrainStateSave *save = demo_TrainStateSave_new();
  save->item = &state;
  ckpt_status st = ckpt_checkpointer_save(ck, path, &save->base, false, NULL, &err);
  cr_assert_neq(st, CKPT_OK, "a save violating dimension H must fail");
  cr_assert_eq(st, CKPT_EMISMATCH, "%s", err.message);
  cr_assert(strstr(err.message, "b1") != NULL, "the error names the field: %s", err.message);
  cr_assert_not(gs_exists(path), "a failed save commits nothing");
  ckpt_args_delete(&save->base);
  close_checkpointer(ck);
  demo_TrainState_free(&state);
  gs_rmtree(tmp);
  free(path);
  free(tmp);
  gs_expect_no_leaks();
}

/* Composite of a generated record handler and a built-in one, restored by typestr; then the
 * record item is opened by zarr-python as the dict of arrays Orbax would see. */
Test(generated_handler, record_handler_in_composite_readable_by_zarr) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(demo_register(&err), CKPT_OK, "%s", err.message);
  char *tmp = gs_mkdtemp("recc");
  char *path = gs_fmt("%s/10", tmp);
  demo_TrainState state;
  cr_assert_eq(demo_TrainState_init(&state), CKPT_OK);
  gv_fill_train_state(&state, 4);

  ckpt_checkpointer *ck = new_checkpointer(NULL, false);
  ckpt_Composite *composite = ckpt_Composite_new();
  demo_TrainStateSave *save = demo_TrainStateSave_new();
  save->item = &state;
  ckpt_JsonSave *json = ckpt_JsonSave_new();
  json->item = cJSON_Parse("{\"epoch\": 3}");
  composite->n_items = 2;
  composite->items = gv_calloc(2, sizeof *composite->items);
  composite->items[0].key = gv_strdup("meta");
  composite->items[0].value = &json->base;
  composite->items[1].key = gv_strdup("state");
  composite->items[1].value = &save->base;
  cr_assert_eq(ckpt_checkpointer_save(ck, path, &composite->base, false, NULL, &err), CKPT_OK,
               "%s", err.message);
  ckpt_args_delete(&composite->base);

  ckpt_value out = {CKPT_VALUE_NONE, {NULL}};
  cr_assert_eq(ckpt_checkpointer_restore(ck, path, NULL, &out, &err), CKPT_OK, "%s",
               err.message);
  ckpt_value *item = ckpt_value_item_get(&out, "state");
  cr_assert_not_null(item);
  expect_record_value(item, &state);
  ckpt_value *meta = ckpt_value_item_get(&out, "meta");
  cr_assert_not_null(meta);
  cr_assert_eq(meta->kind, CKPT_VALUE_JSON);
  ckpt_value_free(&out);

  /* w1 as the C side holds it, compared byte for byte in Python */
  const uint8_t *w1 = ckpt_array_data(state.w1);
  size_t w1_len = (size_t)ckpt_array_nbytes(state.w1);
  char *hex = gv_calloc(2 * w1_len + 1, 1);
  for (size_t i = 0; i < w1_len; i++) snprintf(hex + 2 * i, 3, "%02x", w1[i]);
  char *script = gs_fmt(
      "import sys, zarr, numpy as np\n"
      "w1 = zarr.open(sys.argv[1] + '/state/w1', mode='r')\n"
      "assert w1.shape == (3, 4), w1.shape\n"
      "assert w1.dtype == np.float32, w1.dtype\n"
      "assert np.ascontiguousarray(w1[...]).tobytes().hex() == '%s', 'w1 bytes differ'\n"
      "step = zarr.open(sys.argv[1] + '/state/step', mode='r')\n"
      "assert int(step[()]) == %lld, step[()]\n"
      "print('zarr ok')\n",
      hex, (long long)state.step);
  free(hex);
  char *argv[] = {(char *)CKPT_PYTHON, (char *)"-c", script, path, NULL};
  gs_result r = gs_run(NULL, argv, NULL);
  gs_expect_success(&r, "zarr-python reading the record handler's arrays");
  cr_assert(strstr(r.output, "zarr ok") != NULL, "%s", r.output);
  gs_result_free(&r);
  free(script);

  close_checkpointer(ck);
  demo_TrainState_free(&state);
  gs_rmtree(tmp);
  free(path);
  free(tmp);
  gs_expect_no_leaks();
}
