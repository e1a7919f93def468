/* test_checkpointer.c — the Checkpointer (checkpointer.c, storage/commit.c,
 * storage/checkpoint_metadata.c): layout, _CHECKPOINT_METADATA keys and lifecycle, the commit
 * file, existing destinations and force, stale tmp directories, restore of missing and
 * unfinalized paths, both atomicity modes, deferred work and the async flavour. Single-handler
 * checkpointers use the test handlers of core_fixture.c; Composite ones are in
 * test_composite.c; the I/O fault sweeps are in test_commit.c. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ckpt/ckpt.h"
#include "core_fixture.h"

static char *root;

static void setup(void) {
  root = cf_tmpdir();
  cf_register();
}

static void teardown(void) {
  cf_rmtree(root);
  free(root);
}

TestSuite(checkpointer, .init = setup, .fini = teardown);

static ckpt_checkpointer *new_ckptr(const ckpt_handler_desc *h, ckpt_atomicity at, bool async) {
  ckpt_checkpointer_options o = CKPT_CHECKPOINTER_OPTIONS_INIT;
  o.atomicity = at;
  o.async = async;
  ckpt_checkpointer *c = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_new(h, &o, &c, &err), CKPT_OK, "%s", err.message);
  return c;
}

static void close_ok(ckpt_checkpointer *c) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
}

static void save_blob(ckpt_checkpointer *c, const char *path, const char *text, bool force) {
  ckpt_args *a = cf_blob_save(text, false);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_save(c, path, a, force, NULL, &err), CKPT_OK, "%s", err.message);
  ckpt_args_delete(a);
}

/* Restores path with the blob handler and returns the text (malloc'ed). */
static char *restore_blob(ckpt_checkpointer *c, const char *path) {
  ckpt_value v;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_restore(c, path, NULL, &v, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(v.kind, CKPT_VALUE_JSON);
  char *s = strdup(cJSON_GetStringValue(v.u.json));
  ckpt_value_free(&v);
  return s;
}

static cJSON *read_json(const char *path) {
  char *text = cf_slurp(path);
  cr_assert_not_null(text, "cannot read %s", path);
  cJSON *j = cJSON_Parse(text);
  cr_assert_not_null(j, "not JSON: %s: %s", path, text);
  free(text);
  return j;
}

static char *tmp_of(const char *path) {
  char *t = malloc(strlen(path) + sizeof CKPT_TMP_SUFFIX);
  sprintf(t, "%s%s", path, CKPT_TMP_SUFFIX);
  return t;
}

/* ---------------------------------------------------------------- layout and metadata */

Test(checkpointer, save_writes_the_orbax_layout_and_commits) {
  ckpt_checkpointer *c = new_ckptr(&cf_BlobHandler_desc, CKPT_ATOMICITY_RENAME, false);
  char *path = cf_join(root, "step_1");
  save_blob(c, path, "hello", false);
  char *blob = cf_join(path, "blob.txt");
  char *got = cf_slurp(blob);
  cr_assert_str_eq(got, "hello");
  free(got);
  char *commit = cf_join(path, "commit_success.txt");
  got = cf_slurp(commit);
  char want[4200];
  snprintf(want, sizeof want, "Checkpoint commit was successful to %s", path);
  cr_assert_str_eq(got, want);
  free(got);
  cr_assert_eq(cf_count_entries(path), 4,
               "blob.txt, _CHECKPOINT_METADATA, _CHECKPOINT_CHECKSUMS, commit_success.txt");
  cr_assert_eq(cf_count_entries(root), 1, "no tmp directory left behind");
  cr_assert(ckpt_is_finalized(NULL, path, CKPT_ATOMICITY_RENAME));
  cr_assert(ckpt_is_finalized(NULL, path, CKPT_ATOMICITY_COMMIT_FILE));
  got = restore_blob(c, path);
  cr_assert_str_eq(got, "hello");
  free(got);
  cr_assert_eq(cf_blob_finalize_calls, 1, "the handler's finalize ran once");
  close_ok(c);
  free(blob);
  free(commit);
  free(path);
}

Test(checkpointer, checkpoint_metadata_has_exactly_orbax_keys_and_python_ints) {
  ckpt_checkpointer *c = new_ckptr(&cf_BlobHandler_desc, CKPT_ATOMICITY_RENAME, false);
  char *path = cf_join(root, "7");
  cJSON *custom = cJSON_Parse("{\"run\": \"abc\", \"n\": [1, 2]}");
  ckpt_args *a = cf_blob_save("x", false);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_save(c, path, a, false, custom, &err), CKPT_OK, "%s", err.message);
  ckpt_args_delete(a);
  char *mp = cf_join(path, "_CHECKPOINT_METADATA");
  cJSON *m = read_json(mp);
  const char *keys[] = {"item_handlers",          "metrics",
                        "performance_metrics",    "init_timestamp_nsecs",
                        "commit_timestamp_nsecs", "custom_metadata"};
  cr_assert_eq(cJSON_GetArraySize(m), 6);
  for (int i = 0; i < 6; i++)
    cr_assert_not_null(cJSON_GetObjectItemCaseSensitive(m, keys[i]), "missing %s", keys[i]);
  cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(m, "item_handlers")),
                   "ckpt_tests.BlobHandler", "a single handler records one typestr");
  cr_assert(cJSON_IsObject(cJSON_GetObjectItem(m, "metrics")));
  cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(m, "metrics")), 0);
  cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(m, "performance_metrics")), 0);
  cr_assert(cJSON_Compare(cJSON_GetObjectItem(m, "custom_metadata"), custom, true));
  double init = cJSON_GetNumberValue(cJSON_GetObjectItem(m, "init_timestamp_nsecs"));
  double commit = cJSON_GetNumberValue(cJSON_GetObjectItem(m, "commit_timestamp_nsecs"));
  cr_assert_gt(init, 1.6e18, "nanoseconds since the epoch");
  cr_assert_leq(init, commit);
  cJSON_Delete(m);
  /* Python reads the timestamps as ints (not floats in exponent form). */
  char cmd[5000];
  snprintf(cmd, sizeof cmd,
           CKPT_PYTHON
           " -c \"import json,sys; d=json.load(open(sys.argv[1])); "
           "assert type(d['init_timestamp_nsecs']) is int; "
           "assert type(d['commit_timestamp_nsecs']) is int; "
           "assert d['init_timestamp_nsecs'] <= d['commit_timestamp_nsecs']; "
           "print('ok')\" '%s'",
           mp);
  char *out = cf_run(cmd);
  cr_assert_str_eq(out, "ok\n");
  free(out);
  cJSON_Delete(custom);
  free(mp);
  free(path);
  close_ok(c);
}

/* custom_metadata goes through the exact JSON writer (text/json.h): a float keeps all its
 * digits, NaN stays NaN (not null) and an integer beyond 2^53 keeps its digits, whether the
 * file is read back by ckpt or by Python's json. */
Test(checkpointer, custom_metadata_keeps_nan_big_ints_and_float_digits) {
  ckpt_checkpointer *c = new_ckptr(&cf_BlobHandler_desc, CKPT_ATOMICITY_RENAME, false);
  char *path = cf_join(root, "exact");
  cJSON *custom = cJSON_CreateObject();
  volatile double tenth = 0.1, fifth = 0.2; /* 0.30000000000000004, not folded to 0.3 */
  cJSON_AddNumberToObject(custom, "x", tenth + fifth);
  cJSON_AddNumberToObject(custom, "loss", NAN);
  cJSON_AddItemToObject(custom, "id", cJSON_CreateRaw("9007199254740993")); /* 2^53 + 1 */
  cJSON_AddNumberToObject(custom, "big", 9007199254740992.0);               /* 2^53 as a double */
  ckpt_args *a = cf_blob_save("x", false);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_save(c, path, a, false, custom, &err), CKPT_OK, "%s", err.message);
  ckpt_args_delete(a);

  /* (a) ckpt's own reader */
  cJSON *m = NULL;
  cr_assert_eq(ckpt_checkpointer_metadata(c, path, &m, &err), CKPT_OK, "%s", err.message);
  const cJSON *cm = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "step_metadata"), "custom_metadata");
  const cJSON *x = cJSON_GetObjectItem(cm, "x"), *loss = cJSON_GetObjectItem(cm, "loss");
  const cJSON *id = cJSON_GetObjectItem(cm, "id");
  cr_assert(cJSON_IsNumber(x) && x->valuedouble == tenth + fifth, "x read back as %.17g",
            cJSON_GetNumberValue(x));
  cr_assert(cJSON_IsNumber(loss) && isnan(loss->valuedouble), "loss is not NaN");
  cr_assert(cJSON_IsRaw(id), "id is not kept as its digits");
  cr_assert_str_eq(id->valuestring, "9007199254740993");
  cr_assert_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(cm, "big")), 9007199254740992.0);
  cJSON_Delete(m);

  /* (b) Python's json */
  char *mp = cf_join(path, "_CHECKPOINT_METADATA");
  char cmd[5000];
  snprintf(cmd, sizeof cmd,
           CKPT_PYTHON
           " -c \"import json,math,sys; d=json.load(open(sys.argv[1]))['custom_metadata']; "
           "assert d['x'] == 0.30000000000000004, d; "
           "assert math.isnan(d['loss']), d; "
           "assert d['id'] == 2**53+1 and type(d['id']) is int, d; "
           "assert d['big'] == 2**53, d; "
           "print('ok')\" '%s' 2>&1",
           mp);
  char *out = cf_run(cmd);
  cr_assert_str_eq(out, "ok\n");
  free(out);
  free(mp);
  cJSON_Delete(custom);
  free(path);
  close_ok(c);
}

Test(checkpointer, custom_metadata_defaults_to_an_empty_object_and_must_be_one) {
  ckpt_checkpointer *c = new_ckptr(&cf_BlobHandler_desc, CKPT_ATOMICITY_RENAME, false);
  char *path = cf_join(root, "1");
  save_blob(c, path, "x", false);
  char *mp = cf_join(path, "_CHECKPOINT_METADATA");
  cJSON *m = read_json(mp);
  cJSON *cm = cJSON_GetObjectItem(m, "custom_metadata");
  cr_assert(cJSON_IsObject(cm));
  cr_assert_eq(cJSON_GetArraySize(cm), 0);
  cJSON_Delete(m);
  char *p2 = cf_join(root, "2");
  cJSON *arr = cJSON_Parse("[1]");
  ckpt_args *a = cf_blob_save("x", false);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_save(c, p2, a, false, arr, &err), CKPT_EINVAL);
  cr_assert(!cf_exists(p2));
  cJSON_Delete(arr);
  ckpt_args_delete(a);
  free(p2);
  free(mp);
  free(path);
  close_ok(c);
}

/* A handler that records _CHECKPOINT_METADATA as it stands during save and during finalize,
 * and the directory it was given. */
static char *seen_at_save, *seen_at_finalize, *save_dir;

static char *snapshot(ckpt_op *op, const char *dir) {
  char *p = cf_join(dir, "_CHECKPOINT_METADATA");
  void *data = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_io_read_file(ckpt_op_io(op), p, 1 << 20, &data, NULL, &err);
  free(p);
  return data;
}

static ckpt_status spy_save(ckpt_handler *h, ckpt_op *op, const char *dir, const ckpt_args *a,
                            ckpt_error *err) {
  (void)h, (void)a, (void)err;
  free(seen_at_save);
  seen_at_save = snapshot(op, dir);
  free(save_dir);
  save_dir = strdup(dir);
  return CKPT_OK;
}
static ckpt_status spy_restore(ckpt_handler *h, ckpt_op *op, const char *dir, const ckpt_args *a,
                               ckpt_value *out, ckpt_error *err) {
  (void)h, (void)op, (void)dir, (void)a, (void)out, (void)err;
  return CKPT_OK;
}
static ckpt_status spy_finalize(ckpt_handler *h, ckpt_op *op, const char *dir, ckpt_error *err) {
  (void)h, (void)err;
  free(seen_at_finalize);
  seen_at_finalize = snapshot(op, dir);
  return CKPT_OK;
}
static const ckpt_handler_vtable spy_vt = {
    .save = spy_save, .restore = spy_restore, .finalize = spy_finalize};
static const ckpt_handler_desc SpyHandler = {
    "SpyHandler", "ckpt_tests.SpyHandler", "ckpt_tests.SpyHandler", &spy_vt, NULL, NULL};
typedef struct SpyArgs {
  ckpt_args base;
} SpyArgs;
static const ckpt_args_desc SpyArgs_desc = {CKPT_RECORD_DESC_MAGIC,
                                            CKPT_ABI_VERSION,
                                            "SpyArgs",
                                            "ckpt_tests.SpyArgs",
                                            "SpyArgs",
                                            sizeof(SpyArgs),
                                            0,
                                            NULL,
                                            true,
                                            NULL};

Test(checkpointer, checkpoint_metadata_lifecycle) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_register_with_handler(&SpyHandler, &SpyArgs_desc, true, true, &err), CKPT_OK);
  ckpt_checkpointer *c = new_ckptr(&SpyHandler, CKPT_ATOMICITY_RENAME, false);
  char *path = cf_join(root, "s");
  ckpt_args *a = ckpt_args_new(&SpyArgs_desc);
  cJSON *custom = cJSON_Parse("{\"k\": 1}");
  cr_assert_eq(ckpt_checkpointer_save(c, path, a, false, custom, &err), CKPT_OK, "%s", err.message);
  /* The handler wrote into the tmp directory. */
  char *tmp = tmp_of(path);
  cr_assert_str_eq(save_dir, tmp);
  /* 1. At tmp creation: only the init timestamp is set. */
  cJSON *m = cJSON_Parse(seen_at_save);
  cr_assert_not_null(m, "metadata exists before the handler saves");
  cr_assert(cJSON_IsNull(cJSON_GetObjectItem(m, "item_handlers")));
  cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(m, "init_timestamp_nsecs")));
  cr_assert(cJSON_IsNull(cJSON_GetObjectItem(m, "commit_timestamp_nsecs")));
  cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(m, "custom_metadata")), 0);
  double init = cJSON_GetNumberValue(cJSON_GetObjectItem(m, "init_timestamp_nsecs"));
  cJSON_Delete(m);
  /* 2. After the save, before finalize: item_handlers and custom_metadata, no commit time. */
  m = cJSON_Parse(seen_at_finalize);
  cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(m, "item_handlers")),
                   "ckpt_tests.SpyHandler");
  cr_assert(cJSON_Compare(cJSON_GetObjectItem(m, "custom_metadata"), custom, true));
  cr_assert(cJSON_IsNull(cJSON_GetObjectItem(m, "commit_timestamp_nsecs")));
  cr_assert_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(m, "init_timestamp_nsecs")), init);
  cJSON_Delete(m);
  /* 3. Committed: the commit timestamp. */
  char *mp = cf_join(path, "_CHECKPOINT_METADATA");
  m = read_json(mp);
  cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(m, "commit_timestamp_nsecs")));
  cr_assert_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(m, "init_timestamp_nsecs")), init);
  cJSON_Delete(m);
  cJSON_Delete(custom);
  ckpt_args_delete(a);
  free(mp);
  free(tmp);
  free(path);
  free(seen_at_save);
  free(seen_at_finalize);
  free(save_dir);
  seen_at_save = seen_at_finalize = save_dir = NULL;
  close_ok(c);
}

Test(checkpointer, commit_file_mode_writes_in_place) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_register_with_handler(&SpyHandler, &SpyArgs_desc, true, true, &err), CKPT_OK);
  ckpt_checkpointer *c = new_ckptr(&SpyHandler, CKPT_ATOMICITY_COMMIT_FILE, false);
  char *path = cf_join(root, "cf");
  ckpt_args *a = ckpt_args_new(&SpyArgs_desc);
  cr_assert_eq(ckpt_checkpointer_save(c, path, a, false, NULL, &err), CKPT_OK, "%s", err.message);
  cr_assert_str_eq(save_dir, path, "commit-file mode writes at the final path");
  char *commit = cf_join(path, "commit_success.txt");
  cr_assert(cf_exists(commit));
  cr_assert(ckpt_is_finalized(NULL, path, CKPT_ATOMICITY_COMMIT_FILE));
  /* Without its commit file the directory is unfinalized in this mode only. */
  unlink(commit);
  cr_assert(!ckpt_is_finalized(NULL, path, CKPT_ATOMICITY_COMMIT_FILE));
  cr_assert(ckpt_is_finalized(NULL, path, CKPT_ATOMICITY_RENAME));
  ckpt_value v;
  cr_assert_eq(ckpt_checkpointer_restore(c, path, NULL, &v, &err), CKPT_EINCOMPLETE);
  cr_assert(strstr(err.message, "Found incomplete checkpoint at") != NULL, "%s", err.message);
  cr_assert(strstr(err.message, path) != NULL, "%s", err.message);
  /* ... and it counts as a stale save: the next save replaces it without force. */
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_save(c, path, a, false, NULL, &err), CKPT_OK, "%s", err.message);
  cr_assert(cf_exists(commit));
  /* A committed one needs force. */
  cr_assert_eq(ckpt_checkpointer_save(c, path, a, false, NULL, &err), CKPT_EEXIST);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_save(c, path, a, true, NULL, &err), CKPT_OK, "%s", err.message);
  ckpt_args_delete(a);
  free(commit);
  free(path);
  free(seen_at_save);
  free(seen_at_finalize);
  free(save_dir);
  seen_at_save = seen_at_finalize = save_dir = NULL;
  close_ok(c);
}

/* ---------------------------------------------------------------- destinations */

Test(checkpointer, existing_destination_needs_force) {
  ckpt_checkpointer *c = new_ckptr(&cf_BlobHandler_desc, CKPT_ATOMICITY_RENAME, false);
  char *path = cf_join(root, "e");
  save_blob(c, path, "first", false);
  ckpt_args *a = cf_blob_save("second", false);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_save(c, path, a, false, NULL, &err), CKPT_EEXIST);
  cr_assert(strstr(err.message, path) != NULL, "%s", err.message);
  cr_assert(strstr(err.message, "already exists") != NULL, "%s", err.message);
  char *got = restore_blob(c, path);
  cr_assert_str_eq(got, "first");
  free(got);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_save(c, path, a, true, NULL, &err), CKPT_OK, "%s", err.message);
  got = restore_blob(c, path);
  cr_assert_str_eq(got, "second");
  free(got);
  cr_assert_eq(cf_count_entries(root), 1, "the replaced checkpoint is gone, no tmp left");
  /* A plain file in the way is an existing destination too. */
  char *file = cf_join(root, "file");
  cf_write(file, "x");
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_save(c, file, a, false, NULL, &err), CKPT_EEXIST);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_save(c, file, a, true, NULL, &err), CKPT_OK, "%s", err.message);
  cr_assert(cf_is_dir(file));
  ckpt_args_delete(a);
  free(file);
  free(path);
  close_ok(c);
}

static int exchange_unsupported(void *arg, ckpt_io_op op, const char *path) {
  int *fired = arg;
  size_t n = strlen(path), s = strlen(CKPT_TMP_SUFFIX);
  if (op == CKPT_IO_RENAME && !*fired && n > s && strcmp(path + n - s, CKPT_TMP_SUFFIX) == 0) {
    *fired = 1;
    return EINVAL; /* what renameat2(RENAME_EXCHANGE) says where it is not supported */
  }
  return 0;
}

Test(checkpointer, force_works_without_rename_exchange) {
  ckpt_io *io;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
  ckpt_checkpointer_options o = CKPT_CHECKPOINTER_OPTIONS_INIT;
  o.io = io;
  ckpt_checkpointer *c;
  cr_assert_eq(ckpt_checkpointer_new(&cf_BlobHandler_desc, &o, &c, &err), CKPT_OK);
  char *path = cf_join(root, "x");
  save_blob(c, path, "old", false);
  int fired = 0;
  ckpt_io_set_fault(io, exchange_unsupported, &fired);
  save_blob(c, path, "new", true);
  ckpt_io_set_fault(io, NULL, NULL);
  cr_assert_eq(fired, 1);
  char *got = restore_blob(c, path);
  cr_assert_str_eq(got, "new");
  free(got);
  cr_assert_eq(cf_count_entries(root), 1, "nothing moved aside is left");
  close_ok(c);
  ckpt_io_free(io);
  free(path);
}

Test(checkpointer, stale_tmp_directories_are_replaced) {
  ckpt_checkpointer *c = new_ckptr(&cf_BlobHandler_desc, CKPT_ATOMICITY_RENAME, false);
  char *path = cf_join(root, "9");
  char *tmp = tmp_of(path);
  char *cmd = malloc(9000);
  snprintf(cmd, 9000, "mkdir -p '%s/junkdir' && echo junk > '%s/junk.txt'", tmp, tmp);
  free(cf_run(cmd));
  free(cmd);
  ckpt_value v;
  ckpt_error err = CKPT_ERROR_INIT;
  /* The leftover is not a checkpoint. */
  cr_assert_eq(ckpt_checkpointer_restore(c, tmp, NULL, &v, &err), CKPT_EINCOMPLETE);
  cr_assert(strstr(err.message, "Found incomplete checkpoint at") != NULL, "%s", err.message);
  cr_assert(!ckpt_is_finalized(NULL, tmp, CKPT_ATOMICITY_RENAME));
  save_blob(c, path, "fresh", false);
  cr_assert(!cf_exists(tmp));
  char *junk = cf_join(path, "junk.txt");
  cr_assert(!cf_exists(junk), "nothing of the stale directory survives");
  char *got = restore_blob(c, path);
  cr_assert_str_eq(got, "fresh");
  free(got);
  free(junk);
  free(tmp);
  free(path);
  close_ok(c);
}

Test(checkpointer, restore_of_missing_or_unfinalized_paths) {
  ckpt_checkpointer *c = new_ckptr(&cf_BlobHandler_desc, CKPT_ATOMICITY_RENAME, false);
  ckpt_value v;
  ckpt_error err = CKPT_ERROR_INIT;
  char *missing = cf_join(root, "missing");
  cr_assert_eq(ckpt_checkpointer_restore(c, missing, NULL, &v, &err), CKPT_ENOENT);
  cr_assert(strstr(err.message, missing) != NULL, "%s", err.message);
  cr_assert_eq(v.kind, CKPT_VALUE_NONE);
  /* A symlink to a real checkpoint is not finalized (Orbax's rule). */
  char *real = cf_join(root, "real");
  save_blob(c, real, "r", false);
  char *link = cf_join(root, "link");
  cr_assert_eq(symlink(real, link), 0);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_restore(c, link, NULL, &v, &err), CKPT_EINCOMPLETE);
  cr_assert(strstr(err.message, "symlink") != NULL, "%s", err.message);
  cr_assert(!ckpt_is_finalized(NULL, link, CKPT_ATOMICITY_RENAME));
  /* A regular file is not a checkpoint either. */
  char *file = cf_join(root, "file");
  cf_write(file, "x");
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_restore(c, file, NULL, &v, &err), CKPT_EINCOMPLETE);
  cr_assert(!ckpt_is_finalized(NULL, missing, CKPT_ATOMICITY_RENAME));
  cr_assert(!ckpt_is_finalized(NULL, "", CKPT_ATOMICITY_RENAME));
  /* Trailing slashes name the same checkpoint. */
  char *slashed = malloc(strlen(real) + 3);
  sprintf(slashed, "%s//", real);
  cr_assert(ckpt_is_finalized(NULL, slashed, CKPT_ATOMICITY_RENAME));
  char *got = restore_blob(c, slashed);
  cr_assert_str_eq(got, "r");
  free(got);
  free(slashed);
  free(file);
  free(link);
  free(real);
  free(missing);
  close_ok(c);
}

Test(checkpointer, args_of_another_handler_are_refused) {
  ckpt_checkpointer *c = new_ckptr(&cf_BlobHandler_desc, CKPT_ATOMICITY_RENAME, false);
  char *path = cf_join(root, "a");
  ckpt_args *a = cf_other_save("x");
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_save(c, path, a, false, NULL, &err), CKPT_ETYPE);
  cr_assert(strstr(err.message, "ckpt_tests.cf_OtherSave") != NULL, "%s", err.message);
  cr_assert(strstr(err.message, "ckpt_tests.OtherHandler") != NULL, "%s", err.message);
  cr_assert(!cf_exists(path));
  ckpt_args_delete(a);
  save_blob(c, path, "x", false);
  ckpt_value v;
  a = cf_other_restore();
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_restore(c, path, a, &v, &err), CKPT_ETYPE);
  ckpt_args_delete(a);
  /* The handler's own restore args are fine. */
  a = cf_blob_restore();
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_restore(c, path, a, &v, &err), CKPT_OK, "%s", err.message);
  ckpt_value_free(&v);
  ckpt_args_delete(a);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_save(c, path, NULL, true, NULL, &err), CKPT_EINVAL);
  a = cf_blob_save("x", false);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_save(c, "", a, true, NULL, &err), CKPT_EINVAL);
  ckpt_args_delete(a);
  free(path);
  close_ok(c);
}

Test(checkpointer, reserved_suffixes_are_not_checkpoint_paths) {
  ckpt_checkpointer *c = new_ckptr(&cf_BlobHandler_desc, CKPT_ATOMICITY_RENAME, false);
  char *bad = cf_join(root, "x" CKPT_TMP_SUFFIX);
  ckpt_args *a = cf_blob_save("x", false);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_save(c, bad, a, false, NULL, &err), CKPT_EINVAL);
  cr_assert(!cf_exists(bad));
  ckpt_args_delete(a);
  free(bad);
  close_ok(c);
}

Test(checkpointer, missing_parent_directories_are_created) {
  ckpt_checkpointer *c = new_ckptr(&cf_BlobHandler_desc, CKPT_ATOMICITY_RENAME, false);
  char *path = cf_join(root, "runs/exp1/42");
  save_blob(c, path, "deep", false);
  char *got = restore_blob(c, path);
  cr_assert_str_eq(got, "deep");
  free(got);
  free(path);
  close_ok(c);
}

/* ---------------------------------------------------------------- deferred work and async */

Test(checkpointer, deferred_work_runs_before_the_commit) {
  ckpt_checkpointer *c = new_ckptr(&cf_BlobHandler_desc, CKPT_ATOMICITY_RENAME, false);
  char *path = cf_join(root, "d");
  ckpt_args *a = cf_blob_save("later", true);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_save(c, path, a, false, NULL, &err), CKPT_OK, "%s", err.message);
  /* Mutating the args after save returned does not change what was saved (snapshot). */
  ((cf_BlobSave *)a)->text[0] = 'X';
  ckpt_args_delete(a);
  char *got = restore_blob(c, path);
  cr_assert_str_eq(got, "later");
  free(got);
  free(path);
  close_ok(c);
}

static ckpt_status failing_job(void *arg, ckpt_error *err) {
  (void)arg;
  return ckpt_error_set(err, CKPT_ENOSPC, "deferred write of 'chunk 0.0' ran out of space");
}
static int released;
static void count_release(void *arg) {
  (void)arg;
  released++;
}
static ckpt_status bad_save(ckpt_handler *h, ckpt_op *op, const char *dir, const ckpt_args *a,
                            ckpt_error *err) {
  (void)h, (void)dir, (void)a;
  ckpt_status st = ckpt_op_defer(op, failing_job, NULL, count_release, err);
  if (st == CKPT_OK)
    st = ckpt_op_defer(op, failing_job, NULL, count_release, err);
  return st;
}
static const ckpt_handler_vtable bad_vt = {.save = bad_save, .restore = spy_restore};
static const ckpt_handler_desc BadHandler = {
    "BadHandler", "ckpt_tests.BadHandler", "ckpt_tests.BadHandler", &bad_vt, NULL, NULL};
static const ckpt_args_desc BadArgs_desc = {CKPT_RECORD_DESC_MAGIC,
                                            CKPT_ABI_VERSION,
                                            "BadArgs",
                                            "ckpt_tests.BadArgs",
                                            "BadArgs",
                                            sizeof(SpyArgs),
                                            0,
                                            NULL,
                                            true,
                                            NULL};

Test(checkpointer, a_failing_deferred_job_fails_the_save_and_commits_nothing) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_register_with_handler(&BadHandler, &BadArgs_desc, true, true, &err), CKPT_OK);
  ckpt_checkpointer *c = new_ckptr(&BadHandler, CKPT_ATOMICITY_RENAME, false);
  char *path = cf_join(root, "bad");
  ckpt_args *a = ckpt_args_new(&BadArgs_desc);
  released = 0;
  cr_assert_eq(ckpt_checkpointer_save(c, path, a, false, NULL, &err), CKPT_ENOSPC);
  cr_assert(strstr(err.message, "chunk 0.0") != NULL, "%s", err.message);
  cr_assert(strstr(err.message, path) != NULL, "%s", err.message);
  cr_assert_eq(released, 2, "every job released exactly once, run or not");
  cr_assert_eq(cf_count_entries(root), 0, "nothing left behind");
  ckpt_args_delete(a);
  free(path);
  close_ok(c);
}

Test(checkpointer, async_save_commits_in_the_background) {
  ckpt_checkpointer *c = new_ckptr(&cf_BlobHandler_desc, CKPT_ATOMICITY_RENAME, true);
  char *path = cf_join(root, "async");
  ckpt_args *a = cf_blob_save("bg", true);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_save(c, path, a, false, NULL, &err), CKPT_OK, "%s", err.message);
  /* The args may go away once save returned: the handler snapshotted them. */
  ckpt_args_delete(a);
  cr_assert_eq(ckpt_checkpointer_wait_until_finished(c, &err), CKPT_OK, "%s", err.message);
  cr_assert(ckpt_is_finalized(NULL, path, CKPT_ATOMICITY_RENAME));
  /* restore waits for a pending save by itself. */
  char *p2 = cf_join(root, "async2");
  save_blob(c, p2, "second", false);
  char *got = restore_blob(c, p2);
  cr_assert_str_eq(got, "second");
  free(got);
  /* Two saves in a row: the second waits for the first. */
  char *p3 = cf_join(root, "async3");
  save_blob(c, p3, "third", false);
  char *p4 = cf_join(root, "async4");
  save_blob(c, p4, "fourth", false);
  close_ok(c); /* waits */
  cr_assert(ckpt_is_finalized(NULL, p3, CKPT_ATOMICITY_RENAME));
  cr_assert(ckpt_is_finalized(NULL, p4, CKPT_ATOMICITY_RENAME));
  free(p2);
  free(p3);
  free(p4);
  free(path);
}

Test(checkpointer, async_background_errors_are_kept_and_returned_once) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_register_with_handler(&BadHandler, &BadArgs_desc, true, true, &err), CKPT_OK);
  ckpt_checkpointer *c = new_ckptr(&BadHandler, CKPT_ATOMICITY_RENAME, true);
  char *path = cf_join(root, "bg");
  ckpt_args *a = ckpt_args_new(&BadArgs_desc);
  /* save returns OK: the failure happens behind it ... */
  cr_assert_eq(ckpt_checkpointer_save(c, path, a, false, NULL, &err), CKPT_OK, "%s", err.message);
  /* ... and is reported by the next call, exactly once. */
  cr_assert_eq(ckpt_checkpointer_wait_until_finished(c, &err), CKPT_ENOSPC);
  cr_assert(strstr(err.message, "chunk 0.0") != NULL, "%s", err.message);
  cr_assert(strstr(err.message, path) != NULL, "%s", err.message);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_wait_until_finished(c, &err), CKPT_OK);
  cr_assert(!cf_exists(path));
  /* The next save reports a pending failure instead of starting. */
  cr_assert_eq(ckpt_checkpointer_save(c, path, a, false, NULL, &err), CKPT_OK);
  char *other = cf_join(root, "other");
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_save(c, other, a, false, NULL, &err), CKPT_ENOSPC);
  cr_assert(!cf_exists(other), "the save that reported the old error did not start");
  /* restore reports it too. */
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_save(c, path, a, false, NULL, &err), CKPT_OK);
  ckpt_value v;
  cr_assert_eq(ckpt_checkpointer_restore(c, path, NULL, &v, &err), CKPT_ENOSPC);
  /* check_for_errors returns it without blocking (eventually), and close too. */
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_save(c, path, a, false, NULL, &err), CKPT_OK);
  ckpt_status st = CKPT_OK;
  for (int i = 0; i < 2000 && st == CKPT_OK; i++) {
    st = ckpt_checkpointer_check_for_errors(c, &err);
    if (st == CKPT_OK)
      usleep(1000);
  }
  cr_assert_eq(st, CKPT_ENOSPC);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_save(c, path, a, false, NULL, &err), CKPT_OK);
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_ENOSPC);
  cr_assert(!cf_exists(path));
  ckpt_args_delete(a);
  free(other);
  free(path);
}

/* ---------------------------------------------------------------- metadata() */

Test(checkpointer, metadata_merges_step_and_item_metadata) {
  ckpt_checkpointer *c = new_ckptr(&cf_BlobHandler_desc, CKPT_ATOMICITY_RENAME, false);
  char *path = cf_join(root, "m");
  save_blob(c, path, "12345", false);
  cJSON *m = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_metadata(c, path, &m, &err), CKPT_OK, "%s", err.message);
  cJSON *step = cJSON_GetObjectItem(m, "step_metadata");
  cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(step, "item_handlers")),
                   "ckpt_tests.BlobHandler");
  cJSON *item = cJSON_GetObjectItem(m, "item_metadata");
  cr_assert_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(item, "bytes")), 5);
  cJSON_Delete(m);
  /* A corrupt _CHECKPOINT_METADATA reads as null step metadata, as in Orbax. */
  char *mp = cf_join(path, "_CHECKPOINT_METADATA");
  cf_write(mp, "{not json");
  cr_assert_eq(ckpt_checkpointer_metadata(c, path, &m, &err), CKPT_OK, "%s", err.message);
  cr_assert(cJSON_IsNull(cJSON_GetObjectItem(m, "step_metadata")));
  cJSON_Delete(m);
  char *missing = cf_join(root, "nope");
  cr_assert_eq(ckpt_checkpointer_metadata(c, missing, &m, &err), CKPT_ENOENT);
  free(missing);
  free(mp);
  free(path);
  close_ok(c);
}

Test(checkpointer, unknown_metadata_keys_move_into_custom_metadata) {
  ckpt_checkpointer *c = new_ckptr(&cf_BlobHandler_desc, CKPT_ATOMICITY_RENAME, false);
  char *path = cf_join(root, "u");
  save_blob(c, path, "x", false);
  char *mp = cf_join(path, "_CHECKPOINT_METADATA");
  cf_write(mp,
           "{\"item_handlers\": null, \"init_timestamp_nsecs\": 1700000000000000000, "
           "\"custom\": {\"legacy\": true}, \"extra\": 5}");
  cJSON *m = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_metadata(c, path, &m, &err), CKPT_OK, "%s", err.message);
  cJSON *cm = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "step_metadata"), "custom_metadata");
  cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(cm, "custom"), "legacy")));
  cr_assert_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(cm, "extra")), 5);
  cJSON_Delete(m);
  /* With custom_metadata already set, an unknown key makes the file unreadable (null). */
  cf_write(mp, "{\"custom_metadata\": {\"a\": 1}, \"extra\": 5}");
  cr_assert_eq(ckpt_checkpointer_metadata(c, path, &m, &err), CKPT_OK, "%s", err.message);
  cr_assert(cJSON_IsNull(cJSON_GetObjectItem(m, "step_metadata")));
  cJSON_Delete(m);
  free(mp);
  free(path);
  close_ok(c);
}
