/* test_model_state.c — issue 4's end-to-end proof: the model_state example saves a
 * transformer-like state (a Composite of StandardSave, PyTreeSave, JaxRandomKeySave and
 * NumpyRandomKeySave) in one process; fresh processes (posix_spawn of the built binary, no
 * shared memory with the saver) restore it resharded into 1, 3 and 7 row-blocks per array and
 * must print the saver's fingerprints and RNG draws; then Debian's python3 reads the same
 * directory with zarr + numpy + json (examples/model_state/check_zarr.py). A corrupted chunk
 * must make both readers fail. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MS_PROGRAM CKPT_BUILD_DIR "/bin/examples/model_state"
#define MS_CHECKER CKPT_SOURCE_DIR "/examples/model_state/check_zarr.py"

static char ms_tmp[64];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

static void setup(void) {
  strcpy(ms_tmp, "/tmp/ckpt-e2e-model-state.XXXXXX");
  cr_assert(mkdtemp(ms_tmp) != NULL, "mkdtemp: %s", strerror(errno));
}

static void teardown(void) {
  nftw(ms_tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Whole file as a malloc'ed string ("" when missing). */
static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return strdup("");
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = calloc((size_t)(n > 0 ? n : 0) + 1, 1);
  cr_assert(s != NULL);
  if (n > 0 && fread(s, 1, (size_t)n, f) != (size_t)n) s[0] = '\0';
  fclose(f);
  return s;
}

/* Runs argv (a new process image: posix_spawn) with stdout and stderr to files; returns the
 * exit status (128 + signal when killed). */
static int run(char *const argv[], const char *out, const char *err) {
  cr_assert(access(argv[0], X_OK) == 0,
            "%s is missing or not executable: build it first (make BUILD=... all)", argv[0]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid;
  fflush(NULL);
  int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  cr_assert_eq(rc, 0, "posix_spawn %s: %s", argv[0], strerror(rc));
  int status;
  cr_assert(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The lines both processes must agree on: everything but the closing "saved"/"verified". */
static char *comparable(const char *text) {
  char *copy = strdup(text), *out = calloc(strlen(text) + 1, 1);
  cr_assert(copy != NULL && out != NULL);
  char *save = NULL;
  for (char *l = strtok_r(copy, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
    if (strncmp(l, "saved ", 6) == 0 || strncmp(l, "verified ", 9) == 0) continue;
    strcat(out, l);
    strcat(out, "\n");
  }
  free(copy);
  return out;
}

static void save(const char *ckpt, const char *out) {
  char err[128];
  snprintf(err, sizeof err, "%s/save.err", ms_tmp);
  char *argv[] = {MS_PROGRAM, "save", (char *)ckpt, "--seed", "1234", NULL};
  int rc = run(argv, out, err);
  char *e = slurp(err);
  cr_assert_eq(rc, 0, "model_state save exited with %d:\n%s", rc, e);
  free(e);
}

Test(model_state, restores_resharded_in_fresh_processes, .init = setup, .fini = teardown,
     .timeout = 240) {
  char ckpt[128], save_out[128];
  snprintf(ckpt, sizeof ckpt, "%s/ckpt", ms_tmp);
  snprintf(save_out, sizeof save_out, "%s/save.out", ms_tmp);
  save(ckpt, save_out);
  char *saved = slurp(save_out);
  char *want = comparable(saved);
  /* 129 arrays + 2 scalars of the state, the meta leaves, and the RNG lines. */
  cr_assert(strstr(want, "leaf state/opt_state.mu.embed.embedding bfloat16 512x64 fp=") != NULL,
            "unexpected save output:\n%s", saved);
  cr_assert(strstr(want, "np_rng next_normal ") != NULL && strstr(want, "rng jax_next ") != NULL);

  static const char *const shards[] = {"1", "3", "7"};
  for (size_t i = 0; i < 3; i++) {
    char out[128], err[128], verified[64];
    snprintf(out, sizeof out, "%s/restore%s.out", ms_tmp, shards[i]);
    snprintf(err, sizeof err, "%s/restore%s.err", ms_tmp, shards[i]);
    char *argv[] = {MS_PROGRAM, "restore", ckpt, "--shards", (char *)shards[i], NULL};
    int rc = run(argv, out, err);
    char *got = slurp(out), *e = slurp(err);
    cr_assert_eq(rc, 0, "restore --shards %s exited with %d:\n%s", shards[i], rc, e);
    char *cmp = comparable(got);
    cr_assert_str_eq(cmp, want, "restore --shards %s printed other values than the saver",
                     shards[i]);
    /* Every one of the 129 arrays came back as min(N, rows) row-blocks. */
    snprintf(verified, sizeof verified, "(%s per array)", shards[i]);
    cr_assert(strstr(got, "verified 129 arrays, 691584 elements in ") != NULL &&
                  strstr(got, verified) != NULL,
              "restore --shards %s: %s", shards[i], got);
    free(cmp);
    free(got);
    free(e);
  }

  char py_out[128], py_err[128];
  snprintf(py_out, sizeof py_out, "%s/python.out", ms_tmp);
  snprintf(py_err, sizeof py_err, "%s/python.err", ms_tmp);
  char *py[] = {CKPT_PYTHON, MS_CHECKER, ckpt, save_out, NULL};
  int rc = run(py, py_out, py_err);
  char *o = slurp(py_out), *e = slurp(py_err);
  cr_assert_eq(rc, 0, "check_zarr.py exited with %d:\n%s%s", rc, o, e);
  static const char ok[] = "OK 129 arrays (43 bfloat16), 691584 elements, 2 scalars";
  cr_assert(strncmp(o, ok, sizeof ok - 1) == 0, "check_zarr.py: %s", o);
  free(o);
  free(e);
  free(want);
  free(saved);
}

/* Overwrites a few bytes in the middle of a bfloat16 chunk file. */
static void corrupt(const char *path) {
  int fd = open(path, O_WRONLY);
  cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
  static const unsigned char junk[4] = {0x5a, 0x7f, 0xa5, 0x3c};
  cr_assert_eq(pwrite(fd, junk, sizeof junk, 1000), (ssize_t)sizeof junk);
  close(fd);
}

Test(model_state, a_corrupted_chunk_fails_both_readers, .init = setup, .fini = teardown,
     .timeout = 240) {
  char ckpt[128], save_out[128], chunk[256], out[128], err[128];
  snprintf(ckpt, sizeof ckpt, "%s/ckpt", ms_tmp);
  snprintf(save_out, sizeof save_out, "%s/save.out", ms_tmp);
  snprintf(out, sizeof out, "%s/reader.out", ms_tmp);
  snprintf(err, sizeof err, "%s/reader.err", ms_tmp);
  save(ckpt, save_out);
  snprintf(chunk, sizeof chunk, "%s/state/opt_state.mu.embed.embedding/3.0", ckpt);
  corrupt(chunk);

  char *argv[] = {MS_PROGRAM, "restore", ckpt, "--shards", "3", NULL};
  int rc = run(argv, out, err);
  char *e = slurp(err);
  cr_assert_eq(rc, 1, "restore of a corrupted checkpoint exited with %d", rc);
  cr_assert(strstr(e, "opt_state.mu.embed.embedding") != NULL,
            "the error does not name the array: %s", e);
  free(e);

  char *py[] = {CKPT_PYTHON, MS_CHECKER, ckpt, save_out, NULL};
  rc = run(py, out, err);
  char *o = slurp(out);
  cr_assert_eq(rc, 1, "check_zarr.py accepted a corrupted chunk: %s", o);
  cr_assert(strstr(o, "FAIL state/opt_state.mu.embed.embedding") != NULL, "%s", o);
  free(o);
}
