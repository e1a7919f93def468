/* test_json_handler.c — JsonCheckpointHandler on real files: the `metadata` file and its text,
 * deferred durable writes (snapshot at save), restore, argument checks, missing and corrupt
 * files, and I/O faults at every call site of save and restore. */
#include <errno.h>
#include <math.h>
#include <sys/stat.h>
#include <string.h>

#include <criterion/criterion.h>

#include "ckpt/ckpt.h"
#include "jsonproto_testfs.h"
#include "text/json.h"
#include "handlers/op.h"

static cJSON *sample(void) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "step", 100);
  cJSON_AddNumberToObject(o, "loss", 0.25);
  cJSON_AddStringToObject(o, "note", "r\xc3\xa9sum\xc3\xa9");
  cJSON *a = cJSON_AddArrayToObject(o, "xs");
  cJSON_AddItemToArray(a, cJSON_CreateNumber(1));
  cJSON_AddItemToArray(a, cJSON_CreateNull());
  return o;
}
#define SAMPLE_TEXT \
  "{\"step\": 100, \"loss\": 0.25, \"note\": \"r\\u00e9sum\\u00e9\", \"xs\": [1, null]}"

static ckpt_status save_json(ckpt_op *op, const char *dir, cJSON *item, ckpt_error *err) {
  ckpt_JsonSave a;
  cr_assert_eq(ckpt_JsonSave_init(&a), CKPT_OK);
  a.item = item; /* borrowed: not freed here */
  return ckpt_JsonCheckpointHandler_save(NULL, op, dir, &a.base, err);
}

Test(json_handler, save_defers_a_durable_write_of_metadata_then_restores) {
  char *dir = jp_mkdtemp();
  ckpt_io *io;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
  ckpt_op *op;
  cr_assert_eq(ckpt_op_new(io, false, CKPT_ATOMICITY_RENAME, &op, &err), CKPT_OK);
  cJSON *item = sample();
  cr_assert_eq(save_json(op, dir, item, &err), CKPT_OK, "%s", err.message);
  char *path = jp_path(dir, "metadata");
  cr_assert_eq(ckpt_op_pending(op), 1, "the write is deferred work");
  cr_assert_null(jp_slurp(path, NULL), "nothing is written before the deferred work runs");
  /* the caller may change its data as soon as save returns */
  cJSON_ReplaceItemInObject(item, "step", cJSON_CreateNumber(-1));
  uint64_t fsyncs = ckpt_io_count(io, CKPT_IO_FSYNC);
  cr_assert_eq(ckpt_op_run_deferred(op, &err), CKPT_OK, "%s", err.message);
  cr_assert_gt(ckpt_io_count(io, CKPT_IO_FSYNC), fsyncs, "metadata is fsync'ed");
  char *text = jp_slurp(path, NULL);
  cr_assert_str_eq(text, SAMPLE_TEXT);
  free(text);

  ckpt_value v = {0};
  cr_assert_eq(ckpt_JsonCheckpointHandler_restore(NULL, op, dir, NULL, &v, &err), CKPT_OK, "%s",
               err.message);
  cr_assert_eq(v.kind, CKPT_VALUE_JSON);
  cJSON *want = sample();
  cr_assert(cJSON_Compare(v.u.json, want, true));
  ckpt_value_free(&v);

  ckpt_JsonRestore r; /* with JsonRestore args (item unused, as in Orbax) */
  cr_assert_eq(ckpt_JsonRestore_init(&r), CKPT_OK);
  cr_assert_eq(ckpt_JsonCheckpointHandler_restore(NULL, op, dir, &r.base, &v, &err), CKPT_OK);
  cr_assert(cJSON_Compare(v.u.json, want, true));
  ckpt_value_free(&v);

  cJSON_Delete(want);
  cJSON_Delete(item);
  free(path);
  ckpt_op_free(op);
  ckpt_io_free(io);
  jp_rmtree(dir);
}

Test(json_handler, without_an_op_writes_synchronously) {
  char *dir = jp_mkdtemp();
  ckpt_error err = CKPT_ERROR_INIT;
  cJSON *item = cJSON_CreateArray();
  cr_assert_eq(save_json(NULL, dir, item, &err), CKPT_OK, "%s", err.message);
  char *path = jp_path(dir, "metadata");
  char *text = jp_slurp(path, NULL);
  cr_assert_str_eq(text, "[]");
  free(text);
  free(path);
  cJSON_Delete(item);
  jp_rmtree(dir);
}

Test(json_handler, wrong_or_missing_args) {
  char *dir = jp_mkdtemp();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_JsonRestore r;
  ckpt_JsonRestore_init(&r);
  cr_assert_eq(ckpt_JsonCheckpointHandler_save(NULL, NULL, dir, &r.base, &err), CKPT_ETYPE);
  cr_assert(strstr(err.message, "expects JsonSave args, got ckpt.JsonRestore"), "%s", err.message);
  ckpt_error_clear(&err);
  ckpt_JsonSave s;
  ckpt_JsonSave_init(&s);
  cr_assert_eq(ckpt_JsonCheckpointHandler_save(NULL, NULL, dir, &s.base, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "JsonSave.item is NULL"));
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_JsonCheckpointHandler_save(NULL, NULL, dir, NULL, &err), CKPT_EINVAL);
  ckpt_error_clear(&err);
  ckpt_value v = {0};
  cr_assert_eq(ckpt_JsonCheckpointHandler_restore(NULL, NULL, dir, &s.base, &v, &err), CKPT_ETYPE);
  cr_assert(strstr(err.message, "expects JsonRestore args, got ckpt.JsonSave"));
  cr_assert_eq(v.kind, CKPT_VALUE_NONE);
  ckpt_error_clear(&err);
  /* an unsaveable item fails in save, before anything is queued */
  cJSON *bad = cJSON_CreateString("\xc3");
  cr_assert_eq(save_json(NULL, dir, bad, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "metadata"), "%s", err.message);
  cr_assert(strstr(err.message, "not valid UTF-8"), "%s", err.message);
  cJSON_Delete(bad);
  jp_rmtree(dir);
}

Test(json_handler, missing_and_corrupt_files) {
  char *dir = jp_mkdtemp();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_value v = {0};
  char *path = jp_path(dir, "metadata");
  cr_assert_eq(ckpt_JsonCheckpointHandler_restore(NULL, NULL, dir, NULL, &v, &err), CKPT_ENOENT);
  cr_assert(strstr(err.message, path), "'%s' should name %s", err.message, path);
  ckpt_error_clear(&err);

  const char *corrupt = "{\"a\": 1,\n \"b\": }";
  jp_spit(path, corrupt, strlen(corrupt));
  cr_assert_eq(ckpt_JsonCheckpointHandler_restore(NULL, NULL, dir, NULL, &v, &err), CKPT_ECORRUPT);
  char want[600];
  snprintf(want, sizeof want, "%s:2:7: expected a JSON value, found '}'", path);
  cr_assert(strstr(err.message, want), "'%s' lacks '%s'", err.message, want);
  cr_assert_eq(v.kind, CKPT_VALUE_NONE);
  ckpt_error_clear(&err);

  /* Python's json.dumps output with NaN restores */
  const char *py = "{\"x\": NaN, \"y\": [1.5, -Infinity]}";
  jp_spit(path, py, strlen(py));
  cr_assert_eq(ckpt_JsonCheckpointHandler_restore(NULL, NULL, dir, NULL, &v, &err), CKPT_OK);
  cr_assert(isnan(cJSON_GetObjectItem(v.u.json, "x")->valuedouble));
  ckpt_value_free(&v);

  /* a directory where the file should be is refused, not followed */
  remove(path);
  cr_assert_eq(mkdir(path, 0700), 0);
  cr_assert_neq(ckpt_JsonCheckpointHandler_restore(NULL, NULL, dir, NULL, &v, &err), CKPT_OK);
  rmdir(path);
  free(path);
  jp_rmtree(dir);
}

Test(json_handler, read_file_enforces_its_size_bound) {
  char *dir = jp_mkdtemp();
  char *path = jp_path(dir, "metadata");
  jp_spit(path, "[1, 2, 3]", 9);
  ckpt_error err = CKPT_ERROR_INIT;
  cJSON *v = NULL;
  cr_assert_neq(ckpt_json_read_file(NULL, path, 4, &v, &err), CKPT_OK);
  cr_assert_null(v);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_json_read_file(NULL, path, 9, &v, &err), CKPT_OK, "%s", err.message);
  cJSON_Delete(v);
  free(path);
  jp_rmtree(dir);
}

/* ---- fault injection: fail the first operation of one kind */

typedef struct fault_plan {
  ckpt_io_op op;
  int errnum;
  int fired;
} fault_plan;

static int fail_first(void *arg, ckpt_io_op op, const char *path) {
  fault_plan *p = arg;
  (void)path;
  if (op == p->op && !p->fired) {
    p->fired = 1;
    return p->errnum;
  }
  return 0;
}

Test(json_handler, io_faults_in_save_and_restore_are_reported) {
  const ckpt_io_op ops[] = {CKPT_IO_OPEN, CKPT_IO_WRITE, CKPT_IO_FSYNC, CKPT_IO_CLOSE};
  const int errs[] = {ENOSPC, EIO};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    for (size_t k = 0; k < 2; k++) {
      char *dir = jp_mkdtemp();
      ckpt_io *io;
      ckpt_error err = CKPT_ERROR_INIT;
      cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
      fault_plan plan = {ops[i], errs[k], 0};
      ckpt_io_set_fault(io, fail_first, &plan);
      ckpt_op *op;
      cr_assert_eq(ckpt_op_new(io, false, CKPT_ATOMICITY_RENAME, &op, &err), CKPT_OK);
      cJSON *item = sample();
      cr_assert_eq(save_json(op, dir, item, &err), CKPT_OK);
      ckpt_status st = ckpt_op_run_deferred(op, &err);
      cr_assert(plan.fired, "%s never ran", ckpt_io_op_name(ops[i]));
      cr_assert_eq(st, errs[k] == ENOSPC ? CKPT_ENOSPC : CKPT_EIO, "%s/%d: %d %s",
                   ckpt_io_op_name(ops[i]), errs[k], (int)st, err.message);
      cr_assert(strstr(err.message, "metadata"), "%s", err.message);
      /* the next save succeeds */
      ckpt_error_clear(&err);
      cr_assert_eq(save_json(op, dir, item, &err), CKPT_OK);
      cr_assert_eq(ckpt_op_run_deferred(op, &err), CKPT_OK, "%s", err.message);
      char *path = jp_path(dir, "metadata");
      char *text = jp_slurp(path, NULL);
      cr_assert_str_eq(text, SAMPLE_TEXT);
      free(text);
      free(path);
      cJSON_Delete(item);
      ckpt_op_free(op);
      ckpt_io_free(io);
      jp_rmtree(dir);
    }
  }
}

static int short_writes(void *arg, ckpt_io_op op, const char *path) {
  (void)arg;
  (void)path;
  return op == CKPT_IO_WRITE ? -1 : 0;
}

Test(json_handler, short_writes_are_completed) {
  char *dir = jp_mkdtemp();
  ckpt_io *io;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
  ckpt_io_set_fault(io, short_writes, NULL);
  ckpt_op *op;
  cr_assert_eq(ckpt_op_new(io, false, CKPT_ATOMICITY_RENAME, &op, &err), CKPT_OK);
  cJSON *item = sample();
  cr_assert_eq(save_json(op, dir, item, &err), CKPT_OK);
  cr_assert_eq(ckpt_op_run_deferred(op, &err), CKPT_OK, "%s", err.message);
  char *path = jp_path(dir, "metadata");
  char *text = jp_slurp(path, NULL);
  cr_assert_str_eq(text, SAMPLE_TEXT);
  free(text);
  free(path);
  cJSON_Delete(item);
  ckpt_op_free(op);
  ckpt_io_free(io);
  jp_rmtree(dir);
}

Test(json_handler, read_faults_in_restore_are_reported) {
  char *dir = jp_mkdtemp();
  ckpt_error err = CKPT_ERROR_INIT;
  cJSON *item = sample();
  cr_assert_eq(save_json(NULL, dir, item, &err), CKPT_OK);
  const ckpt_io_op ops[] = {CKPT_IO_STAT, CKPT_IO_OPEN, CKPT_IO_READ};
  for (size_t i = 0; i < 3; i++) {
    ckpt_io *io;
    cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
    fault_plan plan = {ops[i], EIO, 0};
    ckpt_io_set_fault(io, fail_first, &plan);
    ckpt_op *op;
    cr_assert_eq(ckpt_op_new(io, false, CKPT_ATOMICITY_RENAME, &op, &err), CKPT_OK);
    ckpt_value v = {0};
    ckpt_error_clear(&err);
    cr_assert_eq(ckpt_JsonCheckpointHandler_restore(NULL, op, dir, NULL, &v, &err), CKPT_EIO,
                 "%s: %s", ckpt_io_op_name(ops[i]), err.message);
    cr_assert_eq(v.kind, CKPT_VALUE_NONE);
    ckpt_op_free(op);
    ckpt_io_free(io);
  }
  cJSON_Delete(item);
  jp_rmtree(dir);
}
