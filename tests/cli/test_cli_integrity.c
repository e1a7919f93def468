/* test_cli_integrity.c — metadata damage that restore and `ckpt verify` must both refuse,
 * naming the file (issue 12, point 3): a .zarray whose dtype, byte order or shape was changed,
 * a leaf deleted from _METADATA or given another value_type, a deleted chunk hidden by
 * store_array_data_equal_to_fill_value false, an item directory deleted, use_zarr3 true, a
 * duplicated key path, an unknown handler typestr, malformed item_handlers, and edits of every
 * small file the checksum manifests cover (_CHECKPOINT_METADATA, _CHECKSUMS, _strings.json,
 * JSON and proto items). Also: a foreign (Orbax-written) checkpoint without manifests still
 * restores and verify says what it could not check; JSON items under a non-default file name
 * are accepted by verify and ls. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_run.pb-c.h"
#include "test_cli_support.h"

static char *dir, *ck;

static void setup(void) {
  dir = tc_mkdtemp();
  ck = tc_join(dir, "ckpt");
  tc_save_composite(ck, 0);
}
static void teardown(void) {
  free(ck);
  tc_rmdir(dir);
  dir = ck = NULL;
}

TestSuite(cli_integrity, .init = setup, .fini = teardown);

/* Replaces the first occurrence of from by to in ck/rel (asserting there is one). */
static void edit(const char *rel, const char *from, const char *to) {
  char *p = tc_join(ck, rel);
  size_t len = 0;
  char *text = tc_read(p, &len);
  char *at = strstr(text, from);
  cr_assert_not_null(at, "'%s' not in %s:\n%s", from, rel, text);
  size_t head = (size_t)(at - text), fl = strlen(from), tl = strlen(to);
  char *out = malloc(len - fl + tl + 1);
  cr_assert_not_null(out);
  memcpy(out, text, head);
  memcpy(out + head, to, tl);
  memcpy(out + head + tl, at + fl, len - head - fl);
  tc_write(p, out, len - fl + tl);
  free(out);
  free(text);
  free(p);
}

static void remove_file(const char *rel) {
  char *p = tc_join(ck, rel);
  cr_assert_eq(unlink(p), 0, "unlink %s", p);
  free(p);
}

/* Restores ck through a checkpointer: every item with its restore args (the proto item needs
 * its message type), or without args (restore-all: the handlers item_handlers records). */
static ckpt_status restore(bool all, ckpt_error *err) {
  ckpt_checkpointer *c = NULL;
  ckpt_checkpointer_options o = CKPT_CHECKPOINTER_OPTIONS_INIT;
  cr_assert_eq(ckpt_checkpointer_new(NULL, &o, &c, err), CKPT_OK, "%s", err->message);
  ckpt_Composite *args = NULL;
  if (!all) {
    ckpt_ProtoRestore *pr = ckpt_ProtoRestore_new();
    cr_assert_not_null(pr);
    pr->item = malloc(sizeof(Clitest__RunInfo));
    cr_assert_not_null(pr->item);
    clitest__run_info__init((Clitest__RunInfo *)pr->item);
    args = ckpt_composite_new();
    cr_assert_not_null(args);
    cr_assert_eq(ckpt_composite_add(args, "run", &pr->base, err), CKPT_OK);
    cr_assert_eq(ckpt_composite_add(args, "config", &ckpt_JsonRestore_new()->base, err), CKPT_OK);
    cr_assert_eq(ckpt_composite_add(args, "params", &ckpt_StandardRestore_new()->base, err),
                 CKPT_OK);
  }
  ckpt_value v = {0};
  ckpt_status st = ckpt_checkpointer_restore(c, ck, args ? &args->base : NULL, &v, err);
  ckpt_value_free(&v);
  ckpt_error ignored = CKPT_ERROR_INIT;
  ckpt_checkpointer_close(c, &ignored);
  if (args)
    ckpt_args_delete(&args->base);
  return st;
}

/* Both restore-all and verify fail, each naming `file` (and restore `needle` when not NULL). */
static void expect_refused_by(bool all, const char *file, const char *needle) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_status st = restore(all, &err);
  cr_assert_neq(st, CKPT_OK, "restore accepted the damage to %s", file);
  cr_assert(strstr(err.message, file), "restore's error does not name %s: %s", file, err.message);
  if (needle)
    cr_assert(strstr(err.message, needle), "'%s' not in restore's error: %s", needle, err.message);
  tc_run r;
  TC_TOOL(&r, "verify", ck);
  cr_assert_eq(r.status, 1, "verify exit %d (want 1: damaged)\n%s%s", r.status, r.out, r.err);
  cr_assert(strstr(r.out, file), "verify does not name %s:\n%s", file, r.out);
  tc_run_free(&r);
}

static void expect_refused(const char *file, const char *needle) {
  expect_refused_by(false, file, needle);
}

Test(cli_integrity, sound_checkpoint_restores_and_verifies) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(restore(false, &err), CKPT_OK, "%s", err.message);
  tc_run r;
  TC_TOOL(&r, "verify", ck);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  tc_run_free(&r);
}

Test(cli_integrity, zarray_dtype_same_size_integer) {
  edit("params/layer0.b/.zarray", "\"<f4\"", "\"<i4\"");
  expect_refused("layer0.b/.zarray", NULL);
}

Test(cli_integrity, zarray_dtype_big_endian) {
  edit("params/layer0.b/.zarray", "\"<f4\"", "\">f4\"");
  expect_refused("layer0.b/.zarray", NULL);
}

Test(cli_integrity, zarray_shape_reduced) {
  edit("params/layer0.b/.zarray", "\"shape\":[3]", "\"shape\":[2]");
  expect_refused("layer0.b/.zarray", NULL);
}

Test(cli_integrity, leaf_deleted_from_metadata) {
  /* the ('layer0', 'b') entry, cut out with the ", " that follows it */
  char *p = tc_join(ck, "params/_METADATA");
  size_t len = 0;
  char *text = tc_read(p, &len);
  char *s = strstr(text, "\"('layer0', 'b')\"");
  char *e = s ? strstr(s, "\"('layer0', 'w')\"") : NULL;
  cr_assert(s && e, "%s", text);
  memmove(s, e, len - (size_t)(e - text) + 1);
  tc_write(p, text, strlen(text));
  free(text);
  free(p);
  expect_refused("_METADATA", "layer0.b");
}

Test(cli_integrity, leaf_value_type_changed) {
  char *p = tc_join(ck, "params/_METADATA");
  size_t len = 0;
  char *text = tc_read(p, &len);
  char *s = strstr(text, "\"('layer0', 'b')\"");
  char *vt = s ? strstr(s, "\"np.ndarray\"") : NULL;
  cr_assert_not_null(vt);
  memcpy(vt, "\"None\"      ", 12); /* same length: a None leaf followed by blanks */
  tc_write(p, text, len);
  free(text);
  free(p);
  expect_refused("_METADATA", "layer0.b");
}

Test(cli_integrity, deleted_chunk_behind_fill_value_false) {
  /* without the metadata files' checksums (an item of an older ckpt), so that the chunk check
   * is what must catch it */
  edit("params/_CHECKSUMS", ",\"files\":{", ",\"unused\":{");
  remove_file("_CHECKPOINT_CHECKSUMS");
  edit("params/_METADATA", "\"store_array_data_equal_to_fill_value\": true",
       "\"store_array_data_equal_to_fill_value\": false");
  remove_file("params/layer0.w/1.0");
  expect_refused("layer0.w", "1.0");
}

Test(cli_integrity, item_directory_deleted) {
  /* restore-all of the other two items works (the proto item cannot be restored without its
   * message type), so a deleted `run` went unnoticed */
  char *item = tc_join(ck, "run");
  char *cmd = NULL;
  cr_assert(asprintf(&cmd, "rm -rf '%s'", item) > 0);
  cr_assert_eq(system(cmd), 0);
  free(cmd);
  free(item);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_neq(restore(true, &err), CKPT_OK, "restore-all returned 2 of 3 items");
  cr_assert(strstr(err.message, "\"run\""), "%s", err.message);
  cr_assert(strstr(err.message, "item_handlers"), "%s", err.message);
  tc_run r;
  TC_TOOL(&r, "verify", ck);
  cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "item 'run'"), "%s", r.out);
  tc_run_free(&r);
}

Test(cli_integrity, use_zarr3_true) {
  /* zarr v3 is read now; _METADATA claiming it for zarr v2 arrays is damage, caught first by
   * _METADATA's checksum (the format check itself, without checksums: test_zarr3_restore.c) */
  edit("params/_METADATA", "\"use_zarr3\": false", "\"use_zarr3\": true ");
  expect_refused("_METADATA", "checksum");
}

Test(cli_integrity, duplicate_key_path) {
  /* the ('step',) entry's key_metadata given to a second tree_metadata key */
  char *p = tc_join(ck, "params/_METADATA");
  size_t len = 0;
  char *text = tc_read(p, &len);
  const char *entry =
      "\"('step',)\": {\"key_metadata\": [{\"key\": \"step\", \"key_type\": 2}], "
      "\"value_metadata\": {\"value_type\": \"scalar\", \"skip_deserialize\": "
      "false}}";
  cr_assert(strstr(text, entry), "%s", text);
  char *dup = NULL;
  cr_assert(asprintf(&dup, "%s, \"('step', 'again')\"%s", entry, strchr(entry, ':')) > 0);
  free(text);
  free(p);
  edit("params/_METADATA", entry, dup);
  free(dup);
  expect_refused("_METADATA", "step");
}

Test(cli_integrity, unknown_handler_typestr) {
  remove_file("_CHECKPOINT_CHECKSUMS"); /* what restore-all and verify parse, not a CRC */
  edit("_CHECKPOINT_METADATA", "JsonCheckpointHandler\"", "JsonCheckpointHandlerX\"");
  /* restore-all, which reads item_handlers (restoring with args never does) */
  expect_refused_by(true, "_CHECKPOINT_METADATA", "JsonCheckpointHandlerX");
}

Test(cli_integrity, malformed_item_handlers) {
  remove_file("_CHECKPOINT_CHECKSUMS"); /* what restore-all and verify parse, not a CRC */
  edit("_CHECKPOINT_METADATA", "\"item_handlers\":{", "\"item_handlers\":{\"bad\":7,");
  expect_refused_by(true, "_CHECKPOINT_METADATA", "item_handlers");
}

Test(cli_integrity, json_item_edited) {
  edit("config/metadata", "0.001", "0.005");
  expect_refused("config/metadata", NULL);
}

Test(cli_integrity, proto_item_edited) {
  edit("run/proto.pbtxt", "1234", "4321");
  expect_refused("run/proto.pbtxt", NULL);
}

Test(cli_integrity, checkpoint_metadata_edited) {
  edit("_CHECKPOINT_METADATA", "\"metrics\":{}", "\"metrics\":{\"x\":1}");
  expect_refused("_CHECKPOINT_METADATA", NULL);
}

Test(cli_integrity, checksums_deleted) {
  remove_file("params/_CHECKSUMS");
  expect_refused("_CHECKSUMS", NULL);
}

Test(cli_integrity, checksums_edited) {
  edit("params/_CHECKSUMS", "\"algorithm\":\"crc32c\"", "\"algorithm\":\"crc32c\",\"x\":1");
  expect_refused("_CHECKSUMS", NULL);
}

Test(cli_integrity, metadata_custom_edited) {
  edit("params/_METADATA", "\"custom_metadata\": null", "\"custom_metadata\": 5   ");
  expect_refused("_METADATA", NULL);
}

Test(cli_integrity, json_item_under_its_own_file_name) {
  /* JsonCheckpointHandler(filename='settings.json') bound to item "cfg" (handlers-json-proto.md) */
  char *path = tc_join(dir, "named");
  ckpt_checkpointer *c = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_new(NULL, NULL, &c, &err), CKPT_OK, "%s", err.message);
  ckpt_handler *h = NULL;
  cr_assert_eq(ckpt_json_handler_new("settings.json", &h, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_checkpointer_bind_item(c, "cfg", h, &err), CKPT_OK, "%s", err.message);
  ckpt_JsonSave *j = ckpt_JsonSave_new();
  cr_assert_not_null(j);
  j->item = cJSON_Parse("{\"lr\": 0.5}");
  ckpt_Composite *comp = ckpt_composite_new();
  cr_assert_eq(ckpt_composite_add(comp, "cfg", &j->base, &err), CKPT_OK);
  cr_assert_eq(ckpt_checkpointer_save(c, path, &comp->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  ckpt_args_delete(&comp->base);
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
  tc_run r;
  TC_TOOL(&r, "verify", path);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  tc_run_free(&r);
  TC_TOOL(&r, "ls", path);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "json"), "%s", r.out);
  tc_run_free(&r);
  /* and it is checked: an edit of settings.json is damage */
  char *file = tc_join2(path, "cfg", "settings.json");
  tc_write(file, "{\"lr\": 0.7}", 11);
  TC_TOOL(&r, "verify", path);
  cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "cfg/settings.json"), "%s", r.out);
  tc_run_free(&r);
  free(file);
  free(path);
}

/* Real Orbax checkpoints (../shared/orbax-fixtures, not part of the repository). */
#define ORBAX_FIXTURES CKPT_SOURCE_DIR "/../shared/orbax-fixtures"

Test(cli_integrity, orbax_checkpoint_without_manifests) {
  const char *ckpt = ORBAX_FIXTURES "/v0_composite";
  if (!tc_exists(ckpt))
    cr_skip_test("Orbax fixtures not found at %s: test skipped", ORBAX_FIXTURES);
  /* its JSON item restores (its OCDBT PyTree item too: tests/cli/test_cli_ocdbt.c) */
  ckpt_checkpointer *c = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_new(NULL, NULL, &c, &err), CKPT_OK, "%s", err.message);
  ckpt_Composite *args = ckpt_composite_new();
  cr_assert_eq(ckpt_composite_add(args, "metadata", &ckpt_JsonRestore_new()->base, &err), CKPT_OK);
  ckpt_value v = {0};
  cr_assert_eq(ckpt_checkpointer_restore(c, ckpt, &args->base, &v, &err), CKPT_OK, "%s",
               err.message);
  const ckpt_value *m = ckpt_value_item_get(&v, "metadata");
  cr_assert(m != NULL && m->kind == CKPT_VALUE_JSON);
  cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m->u.json, "metadata")),
                   "json_data");
  ckpt_value_free(&v);
  ckpt_args_delete(&args->base);
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK);
  /* verify says plainly what it could not check (no manifest, no _CHECKSUMS) and checks the
   * rest: the OCDBT arrays' chunks decompress to their sizes. (Its verdict on the missing
   * commit_success.txt, which Orbax writes only on some file systems, belongs to the
   * finalization rules, not here.) */
  tc_run r;
  TC_TOOL(&r, "verify", ckpt);
  cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
  cr_assert(strstr(r.out, "note: no _CHECKPOINT_CHECKSUMS (written by Orbax"), "%s", r.out);
  cr_assert(strstr(r.out, "2 arrays, 2 chunks"), "%s", r.out);
  cr_assert(!strstr(r.out, "damaged: item 'metadata': '"), "%s", r.out);
  tc_run_free(&r);
}
