/* tests/runtime/test_engine_fault.c — ckpt_io_fault_check, the engine's way into ckpt_io's
 * fault hook for I/O it submits itself (io_uring). It must see the same hook results and bump
 * the same counters as ckpt_io's own calls; this also guards the struct mirror in
 * engine_fault.c against a change of layout in posix_io.c. */
#include "io/engine_internal.h"
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
