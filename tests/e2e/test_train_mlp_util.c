/* test_train_mlp_util.c — process, file and directory helpers of the train_mlp end-to-end tests
 * (see test_train_mlp_util.h). */
#include "test_train_mlp_util.h"

#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* What tm_cleanup undoes. A test process runs one test, so fixed-size tables suffice. */
#define TM_MAX 32
static pid_t live[TM_MAX];
static size_t n_live;
static char *tmpdirs[TM_MAX];
static size_t n_tmpdirs;

char *tm_fmt(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  cr_assert(n >= 0 && s != NULL, "out of memory");
  return s;
}

char *tm_mkdtemp(void) {
  char *path = strdup("/tmp/ckpt-e2e-train-mlp.XXXXXX");
  cr_assert(path != NULL && mkdtemp(path) != NULL, "mkdtemp: %s", strerror(errno));
  cr_assert(n_tmpdirs < TM_MAX);
  tmpdirs[n_tmpdirs++] = strdup(path);
  return path;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

static void rm_rf(const char *path) {
  nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void forget_child(pid_t pid) {
  for (size_t i = 0; i < n_live; i++) {
    if (live[i] == pid) {
      live[i] = live[--n_live];
      return;
    }
  }
}

void tm_cleanup(void) {
  for (size_t i = 0; i < n_live; i++) {
    kill(live[i], SIGKILL);
    waitpid(live[i], NULL, 0);
  }
  n_live = 0;
  for (size_t i = 0; i < n_tmpdirs; i++) {
    rm_rf(tmpdirs[i]);
    free(tmpdirs[i]);
  }
  n_tmpdirs = 0;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ================================================================ children */

tm_child tm_start(const tm_args *a, const char *tag) {
  char *argv[32];
  size_t n = 0;
  char *owned[32];
  size_t n_owned = 0;
#define ARG(s) (argv[n++] = (char *)(s))
#define NUM(opt, v) (ARG(opt), argv[n++] = owned[n_owned++] = tm_fmt("%d", (v)))
  ARG(TM_PROGRAM);
  ARG("--dir");
  ARG(a->dir);
  if (a->log != NULL) {
    ARG("--log");
    ARG(a->log);
  }
  NUM("--steps", a->steps);
  NUM("--save-every", a->save_every);
  NUM("--keep", a->keep);
  if (a->sleep_ms > 0)
    NUM("--sleep-ms", a->sleep_ms);
  if (a->stall_save_at >= 0)
    NUM("--stall-save-at", a->stall_save_at);
  if (a->resume)
    ARG("--resume");
  argv[n] = NULL;
#undef ARG
#undef NUM

  tm_child c = {0, tm_fmt("%s.%s.out", a->dir, tag), tm_fmt("%s.%s.err", a->dir, tag)};
  cr_assert(access(TM_PROGRAM, X_OK) == 0,
            "%s is missing: build it first (make BUILD=... all builds the examples)", TM_PROGRAM);
  fflush(NULL);
  pid_t pid = fork();
  cr_assert(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    /* Only async-signal-safe calls between fork and exec. The child must not outlive the
     * test: a stalled run would otherwise wait forever. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int out = open(c.out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(c.err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0 || err < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
      _exit(126);
    execv(TM_PROGRAM, argv);
    _exit(127);
  }
  for (size_t i = 0; i < n_owned; i++)
    free(owned[i]);
  cr_assert(n_live < TM_MAX);
  live[n_live++] = pid;
  c.pid = pid;
  return c;
}

static int decode_status(int status) {
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return -1;
}

int tm_wait(tm_child *c) {
  double deadline = now_s() + TM_TIMEOUT_S;
  for (;;) {
    int status;
    pid_t r = waitpid(c->pid, &status, WNOHANG);
    cr_assert(r >= 0, "waitpid: %s", strerror(errno));
    if (r == c->pid) {
      forget_child(c->pid);
      return decode_status(status);
    }
    if (now_s() > deadline) {
      tm_kill(c);
      char *err = tm_slurp(c->err);
      cr_assert_fail("train_mlp did not finish within %d s; its stderr:\n%s", TM_TIMEOUT_S,
                     err != NULL ? err : "");
    }
    sleep_ms(10);
  }
}

void tm_kill(tm_child *c) {
  kill(c->pid, SIGKILL);
  int status;
  waitpid(c->pid, &status, 0);
  forget_child(c->pid);
}

void tm_child_free(tm_child *c) {
  free(c->out);
  free(c->err);
  c->out = c->err = NULL;
}

void tm_run_ok(const tm_args *a, const char *tag) {
  tm_child c = tm_start(a, tag);
  int rc = tm_wait(&c);
  char *err = tm_slurp(c.err);
  cr_assert_eq(rc, 0, "train_mlp (%s) exited with %d; its stderr:\n%s", tag, rc,
               err != NULL ? err : "");
  free(err);
  tm_child_free(&c);
}

static bool alive(tm_child *c) {
  int status;
  pid_t r = waitpid(c->pid, &status, WNOHANG);
  if (r == c->pid) {
    forget_child(c->pid);
    return false;
  }
  return true;
}

bool tm_wait_for_text(tm_child *c, const char *path, const char *needle) {
  double deadline = now_s() + TM_TIMEOUT_S;
  for (;;) {
    char *text = tm_slurp(path);
    bool found = text != NULL && strstr(text, needle) != NULL;
    free(text);
    if (found)
      return true;
    if (!alive(c))
      return false;
    if (now_s() > deadline) {
      tm_kill(c);
      cr_assert_fail("waited %d s for \"%s\" in %s", TM_TIMEOUT_S, needle, path);
    }
    sleep_ms(10);
  }
}

bool tm_wait_for_step(tm_child *c, const char *dir, int64_t min_step) {
  double deadline = now_s() + TM_TIMEOUT_S;
  for (;;) {
    size_t n;
    int64_t *steps = tm_steps(dir, &n);
    bool found = n > 0 && steps[n - 1] >= min_step;
    free(steps);
    if (found)
      return true;
    if (!alive(c))
      return false;
    if (now_s() > deadline) {
      tm_kill(c);
      cr_assert_fail("waited %d s for a step >= %" PRId64 " in %s", TM_TIMEOUT_S, min_step, dir);
    }
    sleep_ms(10);
  }
}

/* ================================================================ files */

char *tm_slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  cr_assert(buf != NULL);
  size_t got;
  while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += got;
    if (cap - len < 2) {
      cap *= 2;
      buf = realloc(buf, cap);
      cr_assert(buf != NULL);
    }
  }
  fclose(f);
  buf[len] = '\0';
  return buf;
}

char **tm_log_lines(const char *path, size_t *n) {
  *n = 0;
  char *text = tm_slurp(path);
  cr_assert(text != NULL, "cannot read %s", path);
  size_t cap = 64;
  char **lines = malloc(cap * sizeof *lines);
  cr_assert(lines != NULL);
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
    if (line[0] == '#')
      continue;
    if (*n == cap) {
      cap *= 2;
      lines = realloc(lines, cap * sizeof *lines);
      cr_assert(lines != NULL);
    }
    lines[(*n)++] = strdup(line);
  }
  free(text);
  return lines;
}

void tm_lines_free(char **lines, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(lines[i]);
  free(lines);
}

int64_t tm_line_step(const char *line) {
  long long step;
  if (sscanf(line, "step %lld ", &step) == 1)
    return step;
  return -1;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

int64_t *tm_steps(const char *dir, size_t *n) {
  *n = 0;
  int64_t *v = malloc(TM_MAX * 8 * sizeof *v);
  cr_assert(v != NULL);
  DIR *d = opendir(dir);
  if (d == NULL)
    return v;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    const char *s = e->d_name;
    if (s[0] == '\0' || strspn(s, "0123456789") != strlen(s))
      continue;
    if (*n < TM_MAX * 8)
      v[(*n)++] = strtoll(s, NULL, 10);
  }
  closedir(d);
  qsort(v, *n, sizeof *v, cmp_i64);
  return v;
}

bool tm_has_tmp_entries(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL)
    return false;
  bool found = false;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    found |= strstr(e->d_name, ".orbax-checkpoint-tmp") != NULL;
  closedir(d);
  return found;
}
