/* io/engine_fault.c — ckpt_io_fault_check: lets the engine consult ckpt_io's fault hook (and
 * count the operation) for I/O it performs without going through a ckpt_io_* call, i.e. every
 * io_uring submission and the O_DIRECT write loop.
 *
 * posix_io.c keeps its hook and counters in a private struct and has no accessor for them
 * (its `consult` is static). Until it exports ckpt_io_fault_check itself, this file provides a
 * weak definition over a mirror of that struct; a strong definition in posix_io.c replaces it
 * at link time with no other change. The mirror is checked by tests/runtime/test_engine_fault.c
 * (hook results and ckpt_io_count must match what ckpt_io's own calls see), so a change of
 * layout in posix_io.c fails a test instead of misbehaving silently. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <errno.h>

#include "io/engine_internal.h"

/* Must match `struct ckpt_io` in posix_io.c field for field. */
struct ckpt_io_layout_mirror {
  pthread_mutex_t mu;
  ckpt_io_fault_fn fault;
  void *fault_arg;
  _Atomic uint64_t counts[CKPT_IO_OP_COUNT_];
  bool is_default;
};

__attribute__((weak)) int ckpt_io_fault_check(ckpt_io *io, ckpt_io_op op, const char *path) {
  if (io == NULL) io = ckpt_io_default();
  if (op < 0 || op >= CKPT_IO_OP_COUNT_) return 0;
  struct ckpt_io_layout_mirror *m = (struct ckpt_io_layout_mirror *)(void *)io;
  atomic_fetch_add(&m->counts[op], 1);
  pthread_mutex_lock(&m->mu);
  ckpt_io_fault_fn fn = m->fault;
  void *arg = m->fault_arg;
  pthread_mutex_unlock(&m->mu);
  if (fn == NULL) return 0;
  int r = fn(arg, op, path != NULL ? path : "");
  if (r == -1 && op != CKPT_IO_WRITE) return EIO; /* as posix_io.c: "short" is for writes only */
  return r < -1 ? EIO : r;
}
