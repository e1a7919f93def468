/* test_json_named.c — JsonCheckpointHandler instances with their own file name
 * (ckpt_json_handler_new, Orbax's JsonCheckpointHandler(filename=...)) and Composite items
 * bound to a handler instance (ckpt_checkpointer_bind_item, public; ckpt_composite_bind_item
 * underneath): the file written, the typestr recorded, restore with and without args,
 * refusals, and that the registry is not touched. */
#include <string.h>

#include <criterion/criterion.h>

#include "checkpointer/checkpointer_internal.h"
#include "ckpt/ckpt.h"
#include "handlers/item_handlers.h"
#include "handlers/json_internal.h"
#include "jsonproto_testfs.h"
#include "handlers/op.h"

#define JSON_TYPESTR "orbax.checkpoint._src.handlers.json_checkpoint_handler.JsonCheckpointHandler"

static ckpt_args *json_save(const char *text) {
  ckpt_JsonSave *a = (ckpt_JsonSave *)(void *)ckpt_args_new(&ckpt_JsonSave_desc);
  cr_assert_not_null(a);
  a->item = cJSON_Parse(text);
  cr_assert_not_null(a->item);
  return &a->base;
}

Test(json_named, instance_writes_and_reads_its_own_file) {
  char *dir = jp_mkdtemp();
  ckpt_io *io;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
  ckpt_op *op;
  cr_assert_eq(ckpt_op_new(io, false, CKPT_ATOMICITY_RENAME, &op, &err), CKPT_OK);
  ckpt_handler *h;
  cr_assert_eq(ckpt_json_handler_new("metrics", &h, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(h->desc, &ckpt_JsonCheckpointHandler_desc, "the same class as Orbax's");
  ckpt_args *a = json_save("{\"loss\": 0.5}");
  cr_assert_eq(h->desc->vtable->save(h, op, dir, a, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_op_run_deferred(op, &err), CKPT_OK, "%s", err.message);
  char *named = jp_path(dir, "metrics");
  char *dflt = jp_path(dir, "metadata");
  char *text = jp_slurp(named, NULL);
  cr_assert_str_eq(text, "{\"loss\": 0.5}");
  free(text);
  cr_assert_null(jp_slurp(dflt, NULL), "a named instance does not write `metadata`");

  ckpt_value v = {0};
  cr_assert_eq(h->desc->vtable->restore(h, op, dir, NULL, &v, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(cJSON_GetObjectItemCaseSensitive(v.u.json, "loss")->valuedouble, 0.5);
  ckpt_value_free(&v);
  /* A default instance looks for `metadata`, which is not there. */
  ckpt_handler *d;
  cr_assert_eq(ckpt_handler_create(&ckpt_JsonCheckpointHandler_desc, &d, &err), CKPT_OK);
  cr_assert_neq(d->desc->vtable->restore(d, op, dir, NULL, &v, &err), CKPT_OK);
  cr_assert(strstr(err.message, "metadata") != NULL, "%s", err.message);
  ckpt_handler_destroy(d);

  ckpt_args_delete(a);
  ckpt_handler_destroy(h);
  free(named);
  free(dflt);
  ckpt_op_free(op);
  ckpt_io_free(io);
  jp_rmtree(dir);
}

Test(json_named, bad_file_names_are_refused) {
  static const char tmp_marked[] = "x" CKPT_TMP_SUFFIX;
  const char *bad[] = {"", "a/b", ".", "..", tmp_marked};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    ckpt_handler *h = (ckpt_handler *)(uintptr_t)1;
    ckpt_error err = CKPT_ERROR_INIT;
    cr_assert_eq(ckpt_json_handler_new(bad[i], &h, &err), CKPT_EINVAL, "\"%s\"", bad[i]);
    cr_assert_null(h);
    cr_assert(strstr(err.message, "file name") != NULL, "%s", err.message);
  }
  ckpt_handler *h;
  cr_assert_eq(ckpt_json_handler_new(NULL, &h, NULL), CKPT_EINVAL);
}

/* A checkpointer whose Composite has item "m" bound to JsonCheckpointHandler(filename='m'). */
static ckpt_checkpointer *bound_checkpointer(void) {
  ckpt_checkpointer *c;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_new(NULL, NULL, &c, &err), CKPT_OK, "%s", err.message);
  ckpt_handler *h;
  cr_assert_eq(ckpt_json_handler_new("m", &h, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_checkpointer_bind_item(c, "m", h, &err), CKPT_OK, "%s", err.message);
  return c;
}

Test(json_named, composite_item_bound_to_a_named_instance) {
  char *dir = jp_mkdtemp();
  char *path = jp_path(dir, "ck");
  ckpt_checkpointer *c = bound_checkpointer();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_Composite *comp = ckpt_composite_new();
  cr_assert_eq(ckpt_composite_add(comp, "m", json_save("{\"a\": 1}"), &err), CKPT_OK);
  cr_assert_eq(ckpt_composite_add(comp, "plain", json_save("{\"b\": 2}"), &err), CKPT_OK);
  cr_assert_eq(ckpt_checkpointer_save(c, path, &comp->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  ckpt_args_delete(&comp->base);

  /* The layout of JsonCheckpointHandler(filename='m') and of a default one, one typestr. */
  char *m_file = jp_path(path, "m/m");
  char *plain_file = jp_path(path, "plain/metadata");
  char *text = jp_slurp(m_file, NULL);
  cr_assert_str_eq(text, "{\"a\": 1}");
  free(text);
  text = jp_slurp(plain_file, NULL);
  cr_assert_str_eq(text, "{\"b\": 2}");
  free(text);
  char *meta_file = jp_path(path, CKPT_CHECKPOINT_METADATA_FILE);
  text = jp_slurp(meta_file, NULL);
  cJSON *meta = cJSON_Parse(text);
  free(text);
  const cJSON *ih = cJSON_GetObjectItemCaseSensitive(meta, "item_handlers");
  cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ih, "m")), JSON_TYPESTR);
  cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ih, "plain")),
                   JSON_TYPESTR);
  cJSON_Delete(meta);

  /* Restore without args: the bound instance reads m/m. */
  ckpt_value v;
  cr_assert_eq(ckpt_checkpointer_restore(c, path, NULL, &v, &err), CKPT_OK, "%s", err.message);
  ckpt_value *m = ckpt_value_item_get(&v, "m");
  cr_assert_not_null(m);
  cr_assert_eq(cJSON_GetObjectItemCaseSensitive(m->u.json, "a")->valuedouble, 1);
  ckpt_value_free(&v);
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK);

  /* Another checkpointer without the binding looks for m/metadata. */
  cr_assert_eq(ckpt_checkpointer_new(NULL, NULL, &c, &err), CKPT_OK);
  cr_assert_neq(ckpt_checkpointer_restore(c, path, NULL, &v, &err), CKPT_OK);
  ckpt_checkpointer_close(c, NULL);

  /* The registry still maps JsonSave and the typestr to the built-in descriptor. */
  const ckpt_handler_desc *hd = NULL;
  cr_assert_eq(ckpt_get_handler_by_typestr(JSON_TYPESTR, &hd, NULL), CKPT_OK);
  cr_assert_eq(hd, &ckpt_JsonCheckpointHandler_desc);
  cr_assert_eq(ckpt_get_registered_handler(&ckpt_JsonSave_desc, &hd, NULL), CKPT_OK);
  cr_assert_eq(hd, &ckpt_JsonCheckpointHandler_desc);
  free(meta_file);
  free(m_file);
  free(plain_file);
  free(path);
  jp_rmtree(dir);
}

Test(json_named, binding_refusals_free_the_handler) {
  ckpt_checkpointer *c = bound_checkpointer();
  ckpt_handler *comp = ckpt_checkpointer_handler(c);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_handler *h;
  cr_assert_eq(ckpt_json_handler_new("x", &h, NULL), CKPT_OK);
  cr_assert_eq(ckpt_composite_bind_item(comp, "m", h, &err), CKPT_EEXIST);
  cr_assert(strstr(err.message, "already bound") != NULL, "%s", err.message);
  cr_assert_eq(ckpt_json_handler_new("x", &h, NULL), CKPT_OK);
  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_composite_bind_item(comp, "a/b", h, &err), CKPT_EUNSAFE);
  cr_assert_eq(ckpt_json_handler_new("x", &h, NULL), CKPT_OK);
  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_composite_bind_item(h, "m", h, &err), CKPT_EINVAL, "not a composite");
  cr_assert_eq(ckpt_composite_bind_item(comp, "n", NULL, NULL), CKPT_EINVAL);

  /* Args of another handler for the bound item are refused, as for any bound item. */
  char *dir = jp_mkdtemp();
  char *path = jp_path(dir, "ck");
  ckpt_Composite *cargs = ckpt_composite_new();
  ckpt_ProtoSave *p = (ckpt_ProtoSave *)(void *)ckpt_args_new(&ckpt_ProtoSave_desc);
  cr_assert_eq(ckpt_composite_add(cargs, "m", &p->base, &err), CKPT_OK);
  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_save(c, path, &cargs->base, false, NULL, &err), CKPT_ETYPE);
  cr_assert(strstr(err.message, "Item \"m\"") != NULL, "%s", err.message);
  ckpt_args_delete(&cargs->base);
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
  free(path);
  jp_rmtree(dir);
}

/* The public binding refuses what the Composite one cannot check: a checkpointer whose handler
 * is not Composite, and a save in flight (the background part reads the bindings). Either way
 * the handler is freed (ASan would report it otherwise). */
Test(json_named, checkpointer_binding_refuses_other_handlers_and_saves_in_flight) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_checkpointer *std = NULL;
  cr_assert_eq(ckpt_checkpointer_new(&ckpt_StandardCheckpointHandler_desc, NULL, &std, &err),
               CKPT_OK, "%s", err.message);
  ckpt_handler *h;
  cr_assert_eq(ckpt_json_handler_new("x", &h, NULL), CKPT_OK);
  cr_assert_eq(ckpt_checkpointer_bind_item(std, "m", h, &err), CKPT_ETYPE);
  cr_assert(strstr(err.message, "not CompositeCheckpointHandler") != NULL, "%s", err.message);
  cr_assert_eq(ckpt_checkpointer_close(std, NULL), CKPT_OK);
  cr_assert_eq(ckpt_json_handler_new("x", &h, NULL), CKPT_OK);
  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_bind_item(NULL, "m", h, &err), CKPT_EINVAL);
  err = (ckpt_error)CKPT_ERROR_INIT;

  ckpt_checkpointer_options o = CKPT_CHECKPOINTER_OPTIONS_INIT;
  o.async = true;
  ckpt_checkpointer *c = NULL;
  cr_assert_eq(ckpt_checkpointer_new(NULL, &o, &c, &err), CKPT_OK, "%s", err.message);
  char *dir = jp_mkdtemp();
  char *path = jp_path(dir, "ck");
  ckpt_Composite *comp = ckpt_composite_new();
  cr_assert_eq(ckpt_composite_add(comp, "plain", json_save("{\"b\": 2}"), &err), CKPT_OK);
  cr_assert_eq(ckpt_checkpointer_save(c, path, &comp->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  ckpt_args_delete(&comp->base);
  cr_assert_eq(ckpt_json_handler_new("m", &h, NULL), CKPT_OK);
  err = (ckpt_error)CKPT_ERROR_INIT;
  ckpt_status st = ckpt_checkpointer_bind_item(c, "m", h, &err);
  cr_assert_eq(st, CKPT_ESTATE, "%s", err.message);
  cr_assert(strstr(err.message, "in flight") != NULL, "%s", err.message);
  /* After the wait it binds. */
  cr_assert_eq(ckpt_checkpointer_wait_until_finished(c, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_json_handler_new("m", &h, NULL), CKPT_OK);
  cr_assert_eq(ckpt_checkpointer_bind_item(c, "m", h, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
  free(path);
  jp_rmtree(dir);
}
