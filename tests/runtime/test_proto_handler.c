/* test_proto_handler.c — ProtoCheckpointHandler on real files: `proto.pbtxt` holds the text
 * format of the message, the write is deferred and durable (snapshot at save), restore builds a
 * message of ProtoRestore.item's type that ckpt_value_free releases, and argument checks,
 * missing/corrupt files and I/O faults give clear errors. */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "ckpt/ckpt.h"
#include "jsonproto_testfs.h"
#include "handlers/op.h"
#include "pbtxt_test2.pb-c.h"
#include "pbtxt_test3.pb-c.h"
#include "pbtxt_testutil.h"

static ckpt_status save_proto(ckpt_op *op, const char *dir, ProtobufCMessage *m, ckpt_error *err) {
  ckpt_ProtoSave a;
  cr_assert_eq(ckpt_ProtoSave_init(&a), CKPT_OK);
  a.item = m; /* borrowed: never passed to ckpt_ProtoSave_free */
  return ckpt_ProtoCheckpointHandler_save(NULL, op, dir, &a.base, err);
}

static ckpt_status restore_proto(ckpt_op *op, const char *dir,
                                 const ProtobufCMessageDescriptor *type, ckpt_value *out,
                                 ckpt_error *err) {
  /* Orbax passes the class; here any message of the type does (content ignored) */
  ProtobufCMessage proto_of_type = {type, 0, NULL};
  ckpt_ProtoRestore r;
  cr_assert_eq(ckpt_ProtoRestore_init(&r), CKPT_OK);
  r.item = &proto_of_type;
  return ckpt_ProtoCheckpointHandler_restore(NULL, op, dir, &r.base, out, err);
}

Test(proto_handler, save_writes_proto_pbtxt_and_restore_rebuilds_the_message) {
  char *dir = jp_mkdtemp();
  ckpt_io *io;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
  ckpt_op *op;
  cr_assert_eq(ckpt_op_new(io, false, CKPT_ATOMICITY_RENAME, &op, &err), CKPT_OK);

  CkptPbtest3__Config c = CKPT_PBTEST3__CONFIG__INIT;
  c.steps = 1000;
  c.name = "resnet";
  c.lr = 0.1f;
  c.mode = CKPT_PBTEST3__MODE__TRAIN;
  CkptPbtest3__Point o = CKPT_PBTEST3__POINT__INIT;
  o.x = 1;
  c.origin = &o;
  CkptPbtest3__Config__CountsEntry ce = CKPT_PBTEST3__CONFIG__COUNTS_ENTRY__INIT;
  ce.key = "epochs";
  ce.value = 3;
  CkptPbtest3__Config__CountsEntry *cep[] = {&ce};
  c.n_counts = 1;
  c.counts = cep;
  cr_assert_eq(save_proto(op, dir, &c.base, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_op_pending(op), 1);
  c.steps = 7; /* after save returns the caller may change the message */
  uint64_t fsyncs = ckpt_io_count(io, CKPT_IO_FSYNC);
  cr_assert_eq(ckpt_op_run_deferred(op, &err), CKPT_OK, "%s", err.message);
  cr_assert_gt(ckpt_io_count(io, CKPT_IO_FSYNC), fsyncs);
  char *path = jp_path(dir, "proto.pbtxt");
  char *text = jp_slurp(path, NULL);
  cr_assert_str_eq(text,
                   "steps: 1000\nname: \"resnet\"\nlr: 0.1\nmode: TRAIN\norigin {\n  x: 1.0\n}\n"
                   "counts {\n  key: \"epochs\"\n  value: 3\n}\n");
  free(text);

  ckpt_value v = {0};
  cr_assert_eq(restore_proto(op, dir, &ckpt_pbtest3__config__descriptor, &v, &err), CKPT_OK, "%s",
               err.message);
  cr_assert_eq(v.kind, CKPT_VALUE_PROTO);
  cr_assert_eq(v.u.proto->descriptor, &ckpt_pbtest3__config__descriptor);
  c.steps = 1000;
  cr_assert(pbt_equal(v.u.proto, &c.base));
  ckpt_value_free(&v); /* protobuf_c_message_free_unpacked inside: the allocation contract */

  free(path);
  ckpt_op_free(op);
  ckpt_io_free(io);
  jp_rmtree(dir);
}

Test(proto_handler, restore_parses_python_written_text) {
  char *dir = jp_mkdtemp();
  char *path = jp_path(dir, "proto.pbtxt");
  /* what text_format.MessageToString writes for a proto2 message */
  const char *py =
      "scalars {\n  i64: -9223372036854775808\n  st: \"h\\303\\251\"\n}\n"
      "ri32: 1\nri32: 2\nrco: BLUE\nc_str: \"x\"\n";
  jp_spit(path, py, strlen(py));
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_value v = {0};
  cr_assert_eq(restore_proto(NULL, dir, &ckpt_pbtest2__everything__descriptor, &v, &err), CKPT_OK,
               "%s", err.message);
  CkptPbtest2__Everything *e = (CkptPbtest2__Everything *)v.u.proto;
  cr_assert_eq(e->scalars->i64, INT64_MIN);
  cr_assert_str_eq(e->scalars->st, "h\xc3\xa9");
  cr_assert_eq(e->n_ri32, 2);
  cr_assert_eq(e->rco[0], CKPT_PBTEST2__COLOR__BLUE);
  cr_assert_str_eq(e->c_str, "x");
  ckpt_value_free(&v);
  free(path);
  jp_rmtree(dir);
}

Test(proto_handler, wrong_missing_or_mismatched_type) {
  char *dir = jp_mkdtemp();
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_value v = {0};
  /* no args: the file alone does not say which type it holds */
  cr_assert_eq(ckpt_ProtoCheckpointHandler_restore(NULL, NULL, dir, NULL, &v, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "needs ProtoRestore args"));
  ckpt_error_clear(&err);
  ckpt_ProtoRestore r;
  ckpt_ProtoRestore_init(&r);
  cr_assert_eq(ckpt_ProtoCheckpointHandler_restore(NULL, NULL, dir, &r.base, &v, &err),
               CKPT_EINVAL);
  cr_assert(strstr(err.message, "ProtoRestore.item is NULL"));
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_ProtoCheckpointHandler_save(NULL, NULL, dir, &r.base, &err), CKPT_ETYPE);
  cr_assert(strstr(err.message, "expects ProtoSave args, got ckpt.ProtoRestore"));
  ckpt_error_clear(&err);
  ckpt_ProtoSave s;
  ckpt_ProtoSave_init(&s);
  cr_assert_eq(ckpt_ProtoCheckpointHandler_save(NULL, NULL, dir, &s.base, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "ProtoSave.item is NULL"));
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_ProtoCheckpointHandler_restore(NULL, NULL, dir, &s.base, &v, &err), CKPT_ETYPE);
  ckpt_error_clear(&err);
  ckpt_JsonSave j;
  ckpt_JsonSave_init(&j);
  cr_assert_eq(ckpt_ProtoCheckpointHandler_save(NULL, NULL, dir, &j.base, &err), CKPT_ETYPE);
  ckpt_error_clear(&err);

  /* missing file */
  char *path = jp_path(dir, "proto.pbtxt");
  cr_assert_eq(restore_proto(NULL, dir, &ckpt_pbtest2__inner__descriptor, &v, &err), CKPT_ENOENT);
  cr_assert(strstr(err.message, path), "%s", err.message);
  ckpt_error_clear(&err);

  /* saved as one type, restored as another that lacks the fields */
  CkptPbtest2__Scalars sc = CKPT_PBTEST2__SCALARS__INIT;
  sc.has_u64 = 1;
  sc.u64 = 5;
  cr_assert_eq(save_proto(NULL, dir, &sc.base, &err), CKPT_OK);
  cr_assert_eq(restore_proto(NULL, dir, &ckpt_pbtest2__inner__descriptor, &v, &err), CKPT_ECORRUPT);
  char want[600];
  snprintf(want, sizeof want, "%s:1:1: message type ckpt_pbtest2.Inner has no field named 'u64'",
           path);
  cr_assert(strstr(err.message, want), "'%s' lacks '%s'", err.message, want);
  cr_assert_eq(v.kind, CKPT_VALUE_NONE);
  ckpt_error_clear(&err);

  /* an unprintable message fails in save, naming the field */
  CkptPbtest2__Required rq = CKPT_PBTEST2__REQUIRED__INIT;
  cr_assert_eq(save_proto(NULL, dir, &rq.base, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "required field 'name'"), "%s", err.message);
  cr_assert(strstr(err.message, "ckpt_pbtest2.Required"), "%s", err.message);
  free(path);
  jp_rmtree(dir);
}

Test(proto_handler, corrupt_file_reports_path_line_and_column) {
  char *dir = jp_mkdtemp();
  char *path = jp_path(dir, "proto.pbtxt");
  const char *bad = "a: 1\nlabel: \"x\"\nchildren {\n  a: oops\n}\n";
  jp_spit(path, bad, strlen(bad));
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_value v = {0};
  cr_assert_eq(restore_proto(NULL, dir, &ckpt_pbtest2__inner__descriptor, &v, &err), CKPT_ECORRUPT);
  char want[600];
  snprintf(want, sizeof want, "%s:4:6: expected an integer for field 'a', found 'oops'", path);
  cr_assert(strstr(err.message, want), "'%s' lacks '%s'", err.message, want);
  free(path);
  jp_rmtree(dir);
}

typedef struct fault_plan {
  ckpt_io_op op;
  int fired;
} fault_plan;

static int fail_first(void *arg, ckpt_io_op op, const char *path) {
  fault_plan *p = arg;
  (void)path;
  if (op == p->op && !p->fired) {
    p->fired = 1;
    return ENOSPC;
  }
  return 0;
}

Test(proto_handler, io_faults_are_reported_and_the_next_save_succeeds) {
  const ckpt_io_op ops[] = {CKPT_IO_OPEN, CKPT_IO_WRITE, CKPT_IO_FSYNC, CKPT_IO_CLOSE};
  CkptPbtest2__Inner in = CKPT_PBTEST2__INNER__INIT;
  in.has_a = 1;
  in.a = 9;
  for (size_t i = 0; i < 4; i++) {
    char *dir = jp_mkdtemp();
    ckpt_io *io;
    ckpt_error err = CKPT_ERROR_INIT;
    cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
    fault_plan plan = {ops[i], 0};
    ckpt_io_set_fault(io, fail_first, &plan);
    ckpt_op *op;
    cr_assert_eq(ckpt_op_new(io, false, CKPT_ATOMICITY_RENAME, &op, &err), CKPT_OK);
    cr_assert_eq(save_proto(op, dir, &in.base, &err), CKPT_OK);
    cr_assert_eq(ckpt_op_run_deferred(op, &err), CKPT_ENOSPC, "%s", ckpt_io_op_name(ops[i]));
    cr_assert(strstr(err.message, "proto.pbtxt"), "%s", err.message);
    ckpt_error_clear(&err);
    cr_assert_eq(save_proto(op, dir, &in.base, &err), CKPT_OK);
    cr_assert_eq(ckpt_op_run_deferred(op, &err), CKPT_OK, "%s", err.message);
    ckpt_value v = {0};
    cr_assert_eq(restore_proto(op, dir, &ckpt_pbtest2__inner__descriptor, &v, &err), CKPT_OK);
    cr_assert(pbt_equal(v.u.proto, &in.base));
    ckpt_value_free(&v);
    ckpt_op_free(op);
    ckpt_io_free(io);
    jp_rmtree(dir);
  }
}
