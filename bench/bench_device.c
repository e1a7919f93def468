/* bench/bench_device.c — the device's best durable write and cold read, with fio (see
 * bench_device.h for why). Each setting runs fio once to write and once to read back, as a
 * child process whose JSON report this program parses; nothing of fio's runs in a timed
 * section of ckpt. */
#include "bench_device.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_common.h"

extern char **environ;

/* The settings: few and short (each moves the state's bytes twice), chosen to cover what a
 * checkpoint writer can do on Linux: four buffered streams (ckpt's four I/O workers), and
 * O_DIRECT through io_uring with a deep queue from one and from four jobs (no page cache at
 * all). Every write ends with an fsync of each file (end_fsync=1), so each is a durable write.
 * One buffered stream with one fsync at the end (the old limit's shape) is left out: it is
 * the slowest of all here (3.4 s against 0.69-0.90 s for the others, 1.06 GiB, one run) and
 * `limits` still measures it (write_fsync) as context. fallocate=none: the files grow by plain
 * writes, as every writer measured here does. */
typedef struct setting {
  const char *name;
  size_t block;
  int jobs;
  bool direct;
  int iodepth;
} setting;

static const setting SETTINGS[] = {
    {"buffered_4x4m", (size_t)4 << 20, 4, false, 1},
    {"direct_1x4m_qd16", (size_t)4 << 20, 1, true, 16},
    {"direct_4x1m_qd8", (size_t)1 << 20, 4, true, 8},
};
#define N_SETTINGS (sizeof SETTINGS / sizeof SETTINGS[0])

static char *read_all(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  size_t cap = 1 << 16, len = 0;
  char *text = malloc(cap);
  for (size_t got; text != NULL && (got = fread(text + len, 1, cap - len - 1, f)) > 0;) {
    len += got;
    if (len + 1 == cap) {
      char *grown = realloc(text, cap * 2);
      if (grown == NULL) {
        free(text);
        text = NULL;
        break;
      }
      text = grown;
      cap *= 2;
    }
  }
  fclose(f);
  if (text != NULL)
    text[len] = '\0';
  return text;
}

/* fio's JSON report may be preceded by warnings on stdout: parse from the first '{'. Returns
 * the group's runtime in ms and bytes moved for direction dir ("write" or "read"), or false. */
static bool parse_report(const char *path, const char *dir, double *ms, double *moved) {
  char *text = read_all(path);
  if (text == NULL)
    return false;
  char *start = strchr(text, '{');
  cJSON *root = start != NULL ? cJSON_Parse(start) : NULL;
  free(text);
  cJSON *jobs = cJSON_GetObjectItemCaseSensitive(root, "jobs");
  cJSON *job = cJSON_IsArray(jobs) ? cJSON_GetArrayItem(jobs, 0) : NULL;
  cJSON *side = cJSON_GetObjectItemCaseSensitive(job, dir);
  cJSON *runtime = cJSON_GetObjectItemCaseSensitive(side, "runtime");
  cJSON *io = cJSON_GetObjectItemCaseSensitive(side, "io_bytes");
  cJSON *error = cJSON_GetObjectItemCaseSensitive(job, "error");
  bool ok = cJSON_IsNumber(runtime) && cJSON_IsNumber(io) && runtime->valuedouble > 0 &&
            io->valuedouble > 0 && (!cJSON_IsNumber(error) || error->valueint == 0);
  if (ok) {
    *ms = runtime->valuedouble; /* with group_reporting: the slowest job's, end_fsync included */
    *moved = io->valuedouble;
  }
  cJSON_Delete(root);
  return ok;
}

/* Runs fio with argv, stdout to report, stderr to errors; true when it exited 0. */
static bool run_fio(char *const argv[], const char *report, const char *errors) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, report, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, errors, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid;
  int rc = posix_spawnp(&pid, "fio", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    return false;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* One fio run of setting s in direction rw ("write" or "read"); the seconds it took for the
 * bytes it moved, scaled to `bytes`, or a negative value (a note was emitted). */
static double one_run(const setting *s, const char *rw, const char *dir, const char *state,
                      size_t bytes, size_t warm) {
  size_t per_job = (bytes / (size_t)s->jobs + s->block - 1) / s->block * s->block;
  char a_dir[4096 + 16], a_name[96], a_rw[32], a_bs[48], a_size[48], a_jobs[32], a_depth[32];
  snprintf(a_dir, sizeof a_dir, "--directory=%s", dir);
  snprintf(a_name, sizeof a_name, "--name=fio_%s", s->name);
  snprintf(a_rw, sizeof a_rw, "--rw=%s", rw);
  snprintf(a_bs, sizeof a_bs, "--bs=%zu", s->block);
  snprintf(a_size, sizeof a_size, "--size=%zu", per_job);
  snprintf(a_jobs, sizeof a_jobs, "--numjobs=%d", s->jobs);
  snprintf(a_depth, sizeof a_depth, "--iodepth=%d", s->iodepth);
  char *argv[24];
  int n = 0;
  argv[n++] = "fio";
  argv[n++] = "--output-format=json";
  argv[n++] = "--thread";
  argv[n++] = "--group_reporting";
  argv[n++] = a_dir;
  argv[n++] = a_name;
  argv[n++] = a_rw;
  argv[n++] = a_bs;
  argv[n++] = a_size;
  argv[n++] = a_jobs;
  argv[n++] = "--fallocate=none";
  argv[n++] = "--end_fsync=1";
  argv[n++] = "--invalidate=1"; /* reads: the files leave the page cache first (cold) */
  if (s->direct) {
    argv[n++] = "--direct=1";
    argv[n++] = "--ioengine=io_uring";
    argv[n++] = a_depth;
  } else {
    argv[n++] = "--ioengine=psync";
  }
  argv[n] = NULL;
  char report[4096 + 64], errors[4096 + 64];
  snprintf(report, sizeof report, "%s/fio_%s.%s.json", dir, s->name, rw);
  snprintf(errors, sizeof errors, "%s/fio_%s.%s.err", dir, s->name, rw);
  bench_prewarm(warm);
  double ms = 0, moved = 0;
  if (!run_fio(argv, report, errors) || !parse_report(report, rw, &ms, &moved)) {
    char text[4096 + 256];
    snprintf(text, sizeof text, "fio %s %s failed or gave no report (see %s)", s->name, rw,
             errors);
    bench_emit_note("device", state, rw, text);
    return -1;
  }
  return ms / 1000.0 * (double)bytes / moved;
}

int bench_device_limits(const char *dir, const char *state, size_t bytes, size_t warm) {
  double best_write = -1, best_read = -1;
  for (size_t i = 0; i < N_SETTINGS; i++) {
    const setting *s = &SETTINGS[i];
    char op[96];
    double w = one_run(s, "write", dir, state, bytes, warm);
    if (w < 0)
      return 1; /* fio missing or broken: no device figure at all rather than a partial best */
    snprintf(op, sizeof op, "write.%s", s->name);
    bench_emit_time("device", state, op, w, bytes);
    if (best_write < 0 || w < best_write)
      best_write = w;
    double r = one_run(s, "read", dir, state, bytes, warm);
    if (r < 0)
      return 1;
    snprintf(op, sizeof op, "read_cold.%s", s->name);
    bench_emit_time("device", state, op, r, bytes);
    if (best_read < 0 || r < best_read)
      best_read = r;
    for (int j = 0; j < s->jobs; j++) { /* fio names its files <name>.<job>.0 */
      char path[4096 + 128];
      snprintf(path, sizeof path, "%s/fio_%s.%d.0", dir, s->name, j);
      bench_retire_file(path);
    }
  }
  bench_emit_time("device", state, "write", best_write, bytes);
  bench_emit_time("device", state, "read_cold", best_read, bytes);
  return 0;
}
