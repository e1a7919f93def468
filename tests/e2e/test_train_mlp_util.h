/* test_train_mlp_util.h — helpers of the train_mlp end-to-end tests: running the real example
 * binary as a child process (fork/exec, output to files, bounded waits, SIGKILL), temporary
 * directories, reading its logs, and listing a manager directory. Every child and temporary
 * directory is registered so that tm_cleanup (the suite's .fini) kills and removes them even
 * when an assertion ends a test early. */
#ifndef TEST_TRAIN_MLP_UTIL_H
#define TEST_TRAIN_MLP_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TM_PROGRAM CKPT_BUILD_DIR "/bin/examples/train_mlp"

/* Upper bound on any single wait (a run, a poll); generous for sanitizer builds. */
#define TM_TIMEOUT_S 180

/* The options of one train_mlp invocation. stall_save_at < 0 and sleep_ms 0 mean unset. */
typedef struct tm_args {
  const char *dir;
  const char *log;
  int steps, save_every, keep, sleep_ms, stall_save_at;
  bool resume;
} tm_args;

/* A started child: its pid and the files its stdout and stderr go to (owned strings). */
typedef struct tm_child {
  pid_t pid;
  char *out, *err;
} tm_child;

/* A fresh directory under /tmp (malloc'ed path), removed by tm_cleanup. */
char *tm_mkdtemp(void);
/* printf into a malloc'ed string (asserts on allocation failure). */
char *tm_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Starts train_mlp with a; stdout and stderr go to files next to a->dir (<dir>.<tag>.out/.err).
 * The child dies with the test process (PR_SET_PDEATHSIG). */
tm_child tm_start(const tm_args *a, const char *tag);
/* Waits (bounded) for the child to exit; returns its exit status, or 128 + signal. Kills it
 * and fails the test on timeout. */
int tm_wait(tm_child *c);
/* SIGKILL and reap. */
void tm_kill(tm_child *c);
/* Runs to completion; asserts exit status 0 (printing the child's stderr otherwise). */
void tm_run_ok(const tm_args *a, const char *tag);
void tm_child_free(tm_child *c);

/* Polls (every 10 ms, bounded) until the file contains needle; false when the child exited
 * first (then the test should fail with the child's stderr). */
bool tm_wait_for_text(tm_child *c, const char *path, const char *needle);
/* Polls until the manager directory has a finalized step >= min_step. */
bool tm_wait_for_step(tm_child *c, const char *dir, int64_t min_step);

/* Whole file as a string (malloc'ed; NULL when missing). */
char *tm_slurp(const char *path);

/* The lines of a train_mlp log without its '#' comments; *n lines, each malloc'ed. */
char **tm_log_lines(const char *path, size_t *n);
void tm_lines_free(char **lines, size_t n);
/* The step a "step N ..." line is about; -1 for other lines ("final ..."). */
int64_t tm_line_step(const char *line);

/* Numeric (finalized step) entries of a manager directory, ascending; *n of them (malloc'ed). */
int64_t *tm_steps(const char *dir, size_t *n);
/* Whether any entry of dir contains ".orbax-checkpoint-tmp". */
bool tm_has_tmp_entries(const char *dir);

/* Suite .fini: kills registered children still running and removes the temporary dirs. */
void tm_cleanup(void);

#endif
