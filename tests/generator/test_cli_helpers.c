/* test_cli_helpers.c — process and temporary-file helpers for the ckptgen tests (see
 * test_cli_helpers.h). Failures here are test failures (cr_assert), never silent. */
#include "test_cli_helpers.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

char *cg_tmpdir_new(void) {
  char tmpl[] = "/tmp/ckptgen-test-XXXXXX";
  char *d = mkdtemp(tmpl);
  cr_assert_not_null(d, "mkdtemp: %s", strerror(errno));
  return strdup(d);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

void cg_tmpdir_remove(char *dir) {
  if (dir == NULL) return;
  nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  free(dir);
}

static char *join(const char *dir, const char *rel) {
  size_t n = strlen(dir) + strlen(rel) + 2;
  char *p = malloc(n);
  cr_assert_not_null(p);
  snprintf(p, n, "%s/%s", dir, rel);
  return p;
}

void cg_write_bytes(const char *dir, const char *rel, const void *data, size_t len) {
  char *p = join(dir, rel);
  for (char *s = p + strlen(dir) + 1; *s; s++) {
    if (*s != '/') continue;
    *s = '\0';
    mkdir(p, 0777);
    *s = '/';
  }
  FILE *f = fopen(p, "wb");
  cr_assert_not_null(f, "cannot write %s", p);
  cr_assert_eq(fwrite(data, 1, len, f), len);
  fclose(f);
  free(p);
}

void cg_write_text(const char *dir, const char *rel, const char *text) {
  cg_write_bytes(dir, rel, text, strlen(text));
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  size_t cap = 4096, n = 0;
  char *b = malloc(cap);
  cr_assert_not_null(b);
  size_t k;
  while ((k = fread(b + n, 1, cap - n - 1, f)) > 0) {
    n += k;
    if (cap - n - 1 == 0) {
      cap *= 2;
      b = realloc(b, cap);
      cr_assert_not_null(b);
    }
  }
  fclose(f);
  b[n] = '\0';
  if (len) *len = n;
  return b;
}

char *cg_read_file(const char *dir, const char *rel, size_t *len) {
  char *p = join(dir, rel);
  char *r = slurp(p, len);
  free(p);
  return r;
}

bool cg_exists(const char *dir, const char *rel) {
  char *p = join(dir, rel);
  struct stat st;
  bool ok = stat(p, &st) == 0;
  free(p);
  return ok;
}

cg_result cg_run(const char *cwd, const char *const *args) {
  char *cap = cg_tmpdir_new(); /* stdout/stderr go to files: no pipe deadlocks on big output */
  char *outp = join(cap, "stdout"), *errp = join(cap, "stderr");
  size_t n = 0;
  while (args[n] != NULL) n++;
  char **argv = calloc(n + 2, sizeof *argv);
  cr_assert_not_null(argv);
  argv[0] = (char *)CKPTGEN_PATH;
  for (size_t i = 0; i < n; i++) argv[i + 1] = (char *)args[i];
  pid_t pid = fork();
  cr_assert_neq(pid, -1);
  if (pid == 0) {
    int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (o < 0 || e < 0 || chdir(cwd) != 0) _exit(127);
    dup2(o, 1);
    dup2(e, 2);
    execv(CKPTGEN_PATH, argv);
    _exit(127);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  cg_result r;
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.out = slurp(outp, &r.out_len);
  r.err = slurp(errp, &r.err_len);
  cr_assert_not_null(r.out);
  cr_assert_not_null(r.err);
  free(argv);
  free(outp);
  free(errp);
  cg_tmpdir_remove(cap);
  return r;
}

void cg_run_free(cg_result *r) {
  free(r->out);
  free(r->err);
  r->out = r->err = NULL;
}

int cg_count_errors(const char *s) {
  int n = 0;
  for (const char *p = s; (p = strstr(p, ": error: ")) != NULL; p++) n++;
  return n;
}
