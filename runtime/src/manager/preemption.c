/* manager/preemption.c — the preemption notice (Orbax's reached_preemption): a signal handler
 * that only records the signal. The agreement across processes is
 * ckpt_manager_reached_preemption (manager.c), a collective of the manager's group. */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "ckpt/manager.h"

/* Written by the handler, read by ckpt_preemption_received: async-signal-safe. */
static volatile sig_atomic_t preempted = 0;

static void on_signal(int signum) {
  (void)signum;
  preempted = 1;
}

ckpt_status ckpt_preemption_watch(int signum, ckpt_error *err) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  if (sigaction(signum, &sa, NULL) != 0)
    return ckpt_error_errno(err, errno, "cannot watch signal %d for preemption", signum);
  return CKPT_OK;
}

bool ckpt_preemption_received(void) {
  return preempted != 0;
}
