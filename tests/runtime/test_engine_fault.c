/* tests/runtime/test_engine_fault.c — ckpt_io_fault_check (ckpt/io.h, defined in posix_io.c),
 * the engine's way into ckpt_io's fault hook for I/O it submits itself (io_uring submissions,
 * the O_DIRECT write loop). It must see the same hook results and bump the same counters as
 * ckpt_io's own calls, whichever ckpt_io it is given. */
#include "ckpt/io.h"
#include "test_engine_util.h"

typedef struct recorder {
  int calls;
  ckpt_io_op last_op;
  char last_path[256];
  int answer;
} recorder;

static int record_hook(void *arg, ckpt_io_op op, const char *path) {
  recorder *r = arg;
  r->calls++;
  r->last_op = op;
  snprintf(r->last_path, sizeof r->last_path, "%s", path);
  return r->answer;
}

Test(engine_fault, consults_the_hook_and_counts_like_ckpt_io) {
  ckpt_io *io;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
  /* No hook: go ahead, counted. */
  cr_assert_eq(ckpt_io_fault_check(io, CKPT_IO_WRITE, "/x"), 0);
  cr_assert_eq(ckpt_io_count(io, CKPT_IO_WRITE), 1);
  recorder r = {.answer = ENOSPC};
  ckpt_io_set_fault(io, record_hook, &r);
  cr_assert_eq(ckpt_io_fault_check(io, CKPT_IO_FSYNC, "/some/file"), ENOSPC);
  cr_assert_eq(r.calls, 1);
  cr_assert_eq(r.last_op, CKPT_IO_FSYNC);
  cr_assert_str_eq(r.last_path, "/some/file");
  cr_assert_eq(ckpt_io_count(io, CKPT_IO_FSYNC), 1);
  r.answer = -1;
  cr_assert_eq(ckpt_io_fault_check(io, CKPT_IO_WRITE, "/w"), -1, "short write passes through");
  cr_assert_eq(ckpt_io_fault_check(io, CKPT_IO_READ, "/r"), EIO, "short means nothing for reads");
  cr_assert_eq(ckpt_io_count(io, CKPT_IO_WRITE), 2);
  cr_assert_eq(ckpt_io_count(io, CKPT_IO_READ), 1);
  /* The same hook, through ckpt_io's own call: same answer, same counter. */
  r.answer = EIO;
  cr_assert_eq(ckpt_io_mkdir(io, "/tmp/never-created-by-this-test", &err), CKPT_EIO);
  cr_assert_eq(r.calls, 4);
  cr_assert_eq(ckpt_io_count(io, CKPT_IO_MKDIR), 1);
  ckpt_io_set_fault(io, NULL, NULL);
  cr_assert_eq(ckpt_io_fault_check(io, CKPT_IO_OPEN, "/o"), 0);
  cr_assert_eq(r.calls, 4, "hook removed");
  ckpt_io_free(io);
}

Test(engine_fault, default_io_is_used_for_null) {
  uint64_t before = ckpt_io_count(ckpt_io_default(), CKPT_IO_STAT);
  cr_assert_eq(ckpt_io_fault_check(NULL, CKPT_IO_STAT, "/"), 0);
  cr_assert_eq(ckpt_io_count(ckpt_io_default(), CKPT_IO_STAT), before + 1);
}

/* An operation outside the enum is neither counted nor shown to the hook: nothing to fail. */
Test(engine_fault, an_unknown_operation_is_ignored) {
  ckpt_io *io;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
  recorder r = {.answer = EIO};
  ckpt_io_set_fault(io, record_hook, &r);
  cr_assert_eq(ckpt_io_fault_check(io, CKPT_IO_OP_COUNT_, "/x"), 0);
  cr_assert_eq(ckpt_io_fault_check(io, (ckpt_io_op)-1, "/x"), 0);
  cr_assert_eq(r.calls, 0);
  for (int op = 0; op < CKPT_IO_OP_COUNT_; op++)
    cr_assert_eq(ckpt_io_count(io, (ckpt_io_op)op), 0, "%s", ckpt_io_op_name((ckpt_io_op)op));
  ckpt_io_free(io);
}

/* Two ckpt_io objects keep separate hooks and counters: the check acts on the one it is given
 * (a hook set on one must never fire for I/O of another checkpointer). */
Test(engine_fault, each_io_has_its_own_hook_and_counters) {
  ckpt_io *a, *b;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_io_new(&a, &err), CKPT_OK);
  cr_assert_eq(ckpt_io_new(&b, &err), CKPT_OK);
  recorder ra = {.answer = ENOSPC}, rb = {.answer = 0};
  ckpt_io_set_fault(a, record_hook, &ra);
  ckpt_io_set_fault(b, record_hook, &rb);
  cr_assert_eq(ckpt_io_fault_check(a, CKPT_IO_WRITE, "/a"), ENOSPC);
  cr_assert_eq(ckpt_io_fault_check(b, CKPT_IO_WRITE, "/b"), 0);
  cr_assert_eq(ckpt_io_fault_check(b, CKPT_IO_WRITE, "/b"), 0);
  cr_assert_eq(ra.calls, 1);
  cr_assert_eq(rb.calls, 2);
  cr_assert_str_eq(ra.last_path, "/a");
  cr_assert_eq(ckpt_io_count(a, CKPT_IO_WRITE), 1);
  cr_assert_eq(ckpt_io_count(b, CKPT_IO_WRITE), 2);
  /* A NULL path reaches the hook as "" (hooks match on paths and must not crash). */
  cr_assert_eq(ckpt_io_fault_check(b, CKPT_IO_FSYNC, NULL), 0);
  cr_assert_str_eq(rb.last_path, "");
  ckpt_io_free(a);
  ckpt_io_free(b);
}
