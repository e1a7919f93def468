/* test_cli_support.c — see test_cli_support.h. */
#include "test_cli_support.h"

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

#include "cli_run.pb-c.h"

/* ---------------------------------------------------------------- files and directories */

char *tc_mkdtemp(void) {
  char tmpl[] = "/tmp/ckpt-cli-test-XXXXXX";
  char *d = mkdtemp(tmpl);
  cr_assert_not_null(d, "mkdtemp: %s", strerror(errno));
  return strdup(d);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

void tc_rmdir(char *dir) {
  if (dir == NULL)
    return;
  nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(dir);
}

char *tc_join(const char *dir, const char *a) {
  size_t n = strlen(dir) + strlen(a) + 2;
  char *p = malloc(n);
  cr_assert_not_null(p);
  snprintf(p, n, "%s/%s", dir, a);
  return p;
}

char *tc_join2(const char *dir, const char *a, const char *b) {
  char *x = tc_join(dir, a);
  char *y = tc_join(x, b);
  free(x);
  return y;
}

char *tc_read(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "cannot open %s: %s", path, strerror(errno));
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap + 1);
  cr_assert_not_null(buf);
  size_t got;
  while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) {
      cap *= 2;
      buf = realloc(buf, cap + 1);
      cr_assert_not_null(buf);
    }
  }
  fclose(f);
  buf[n] = '\0';
  if (len)
    *len = n;
  return buf;
}

void tc_write(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "cannot create %s: %s", path, strerror(errno));
  cr_assert_eq(fwrite(data, 1, len, f), len);
  cr_assert_eq(fclose(f), 0);
}

bool tc_exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

bool tc_has(const char *ck, const char *rel) {
  char *p = tc_join(ck, rel);
  bool r = tc_exists(p);
  free(p);
  return r;
}

void tc_flip_bit(const char *path, uint64_t offset) {
  int fd = open(path, O_RDWR);
  cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
  unsigned char b;
  cr_assert_eq(pread(fd, &b, 1, (off_t)offset), 1);
  b ^= 0x10;
  cr_assert_eq(pwrite(fd, &b, 1, (off_t)offset), 1);
  close(fd);
}

/* ---------------------------------------------------------------- processes */

static void run(tc_run *r, const char *prog, const char *const *pre, const char *const *args) {
  memset(r, 0, sizeof *r);
  char out_tmpl[] = "/tmp/ckpt-cli-out-XXXXXX", err_tmpl[] = "/tmp/ckpt-cli-err-XXXXXX";
  int out = mkstemp(out_tmpl), err = mkstemp(err_tmpl);
  cr_assert(out >= 0 && err >= 0, "mkstemp: %s", strerror(errno));
  const char *argv[64];
  size_t n = 0;
  argv[n++] = prog;
  for (size_t i = 0; pre && pre[i]; i++)
    argv[n++] = pre[i];
  for (size_t i = 0; args[i]; i++) {
    cr_assert_lt(n, 62);
    argv[n++] = args[i];
  }
  argv[n] = NULL;
  fflush(NULL);
  pid_t pid = fork();
  cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(out, 1);
    dup2(err, 2);
    execv(prog, (char *const *)argv);
    _exit(127);
  }
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  close(out);
  close(err);
  r->out = tc_read(out_tmpl, NULL);
  r->err = tc_read(err_tmpl, NULL);
  unlink(out_tmpl);
  unlink(err_tmpl);
}

void tc_tool(tc_run *r, const char *const *args) {
  cr_assert_eq(access(CKPT_TOOL_PATH, X_OK), 0,
               "%s is not built: run 'make all' (or make <BUILD>/bin/ckpt) before this suite",
               CKPT_TOOL_PATH);
  run(r, CKPT_TOOL_PATH, NULL, args);
}

void tc_peer(tc_run *r, const char *const *args) {
  const char *pre[] = {CKPT_SOURCE_DIR "/tests/cli/cli_peer.py", NULL};
  run(r, CKPT_PYTHON, pre, args);
  cr_assert_eq(r->status, 0, "python peer failed: %s", r->err);
}

void tc_run_free(tc_run *r) {
  free(r->out);
  free(r->err);
  memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------------- normalisation and goldens */

static bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

/* Matches "YYYY-MM-DD HH:MM:SS UTC" at s. */
static bool is_time(const char *s) {
  static const char pat[] = "dddd-dd-dd dd:dd:dd UTC";
  for (size_t i = 0; pat[i]; i++) {
    if (s[i] == '\0')
      return false;
    if (pat[i] == 'd' ? !is_digit(s[i]) : s[i] != pat[i])
      return false;
  }
  return true;
}

char *tc_normalize(const char *text, const char *dir) {
  size_t dl = dir ? strlen(dir) : 0, cap = strlen(text) * 2 + 64, n = 0;
  char *o = malloc(cap);
  cr_assert_not_null(o);
  static const char ts_key[] = "_timestamp_nsecs\": ";
  for (const char *s = text; *s;) {
    if (n + 32 >= cap) {
      cap *= 2;
      o = realloc(o, cap);
      cr_assert_not_null(o);
    }
    if (dl && strncmp(s, dir, dl) == 0) {
      n += (size_t)sprintf(o + n, "<DIR>");
      s += dl;
    } else if (is_time(s)) {
      n += (size_t)sprintf(o + n, "<TIME>");
      s += strlen("dddd-dd-dd dd:dd:dd UTC");
    } else if (strncmp(s, ts_key, sizeof ts_key - 1) == 0 && is_digit(s[sizeof ts_key - 1])) {
      n += (size_t)sprintf(o + n, "%s<NS>", ts_key);
      s += sizeof ts_key - 1;
      while (is_digit(*s))
        s++;
    } else {
      o[n++] = *s++;
    }
  }
  o[n] = '\0';
  return o;
}

void tc_golden(const char *name, const char *text) {
  char *path = tc_join(CKPT_SOURCE_DIR "/tests/fixtures/cli", name);
  if (getenv("CKPT_UPDATE_GOLDEN")) {
    tc_write(path, text, strlen(text));
  } else {
    cr_assert(tc_exists(path), "golden file %s is missing (CKPT_UPDATE_GOLDEN=1 writes it)", path);
    char *want = tc_read(path, NULL);
    cr_assert_str_eq(text, want, "output differs from %s:\n--- got ---\n%s--- want ---\n%s", path,
                     text, want);
    free(want);
  }
  free(path);
}

/* ---------------------------------------------------------------- trees */

ckpt_tree *tc_array(ckpt_dtype dtype, int ndim, const int64_t *shape, const double *values) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_array *a = NULL;
  cr_assert_eq(ckpt_array_new(dtype, ndim, shape, &a, &err), CKPT_OK, "%s", err.message);
  unsigned char *d = ckpt_array_data(a);
  size_t es = ckpt_dtype_size(dtype);
  int64_t n = ckpt_array_num_elements(a);
  for (int64_t i = 0; i < n; i++) {
    double v = values ? values[i] : 0.5 * (double)i;
    ckpt_dtype_convert(dtype, d + (size_t)i * es, CKPT_DTYPE_FLOAT64, &v, 1);
  }
  ckpt_tree *t = ckpt_tree_new_array(a);
  cr_assert_not_null(t);
  return t;
}

static void set(ckpt_tree *dict, const char *key, ckpt_tree *child) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_tree_dict_set(dict, key, child, &err), CKPT_OK, "%s", err.message);
}

/* save_args for one parameter: a chunk size and/or zstd. */
static void leaf_args(ckpt_StandardSave *s, const char *param, int64_t chunk_bytes, bool zstd) {
  s->has_save_args = true;
  s->save_args = realloc(s->save_args, (s->n_save_args + 1) * sizeof *s->save_args);
  cr_assert_not_null(s->save_args);
  ckpt_StandardSave_save_args_entry *e = &s->save_args[s->n_save_args++];
  memset(e, 0, sizeof *e);
  e->key = strdup(param);
  if (chunk_bytes > 0) {
    e->value.has_chunk_byte_size = true;
    e->value.chunk_byte_size = chunk_bytes;
  }
  if (zstd)
    e->value.compression = strdup("zstd");
}

bool tc_use_ocdbt;
bool tc_use_zarr3;

void tc_save_args(const ckpt_handler_desc *h, const char *path, ckpt_args *args) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_checkpointer *c = NULL;
  ckpt_checkpointer_options o = CKPT_CHECKPOINTER_OPTIONS_INIT;
  o.use_ocdbt = tc_use_ocdbt;
  o.use_zarr3 = tc_use_zarr3;
  cr_assert_eq(ckpt_checkpointer_new(h, &o, &c, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_checkpointer_save(c, path, args, false, NULL, &err), CKPT_OK, "save %s: %s",
               path, err.message);
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
  ckpt_args_delete(args);
}

void tc_save_standard(const char *path, ckpt_tree *tree, const char *chunk_param,
                      int64_t chunk_bytes, bool compress) {
  ckpt_StandardSave *s = ckpt_StandardSave_new();
  cr_assert_not_null(s);
  s->item = tree;
  if (chunk_param)
    leaf_args(s, chunk_param, chunk_bytes, compress);
  tc_save_args(&ckpt_StandardCheckpointHandler_desc, path, &s->base);
}

static ckpt_args *run_info_args(void) {
  Clitest__RunInfo *m = malloc(sizeof *m);
  cr_assert_not_null(m);
  clitest__run_info__init(m);
  m->name = strdup("baseline");
  m->seed = 1234;
  m->n_hosts = 2;
  m->hosts = calloc(2, sizeof(char *));
  m->hosts[0] = strdup("w0");
  m->hosts[1] = strdup("w1");
  ckpt_ProtoSave *p = ckpt_ProtoSave_new();
  cr_assert_not_null(p);
  p->item = &m->base;
  return &p->base;
}

void tc_save_composite(const char *path, int variant) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *params = ckpt_tree_new_dict(), *l0 = ckpt_tree_new_dict(), *l1 = ckpt_tree_new_dict();
  int64_t s43[] = {4, 3}, s3[] = {3}, s22[] = {2, 2};
  double b[] = {0.25, -1.5, 3.0};
  if (variant == 1)
    b[1] += 0.25;
  double w1[] = {1.0, 2.0, 3.0, 4.0};
  set(l0, "w", tc_array(CKPT_DTYPE_FLOAT32, 2, s43, NULL));
  set(l0, "b", tc_array(CKPT_DTYPE_FLOAT32, 1, s3, b));
  set(l1, "w", tc_array(CKPT_DTYPE_FLOAT64, 2, s22, w1));
  set(params, "layer0", l0);
  set(params, "layer1", l1);
  set(params, "step", ckpt_tree_new_int(CKPT_DTYPE_INT64, 100));
  if (variant != 2)
    set(params, "lr", ckpt_tree_new_float(CKPT_DTYPE_FLOAT32, 0.001));
  if (variant == 2)
    set(params, "extra", ckpt_tree_new_int(CKPT_DTYPE_INT32, 5));
  ckpt_StandardSave *s = ckpt_StandardSave_new();
  cr_assert_not_null(s);
  s->item = params;
  /* two chunks of 2 rows for layer0.w (24 bytes each), zstd for layer1.w (sorted keys) */
  leaf_args(s, "layer0.w", 24, false);
  leaf_args(s, "layer1.w", 0, true);

  ckpt_JsonSave *j = ckpt_JsonSave_new();
  cr_assert_not_null(j);
  j->item = cJSON_Parse(variant == 1 ? "{\"lr\": 0.002, \"layers\": [4, 3], \"name\": \"mlp\"}"
                                     : "{\"lr\": 0.001, \"layers\": [4, 3], \"name\": \"mlp\"}");
  cr_assert_not_null(j->item);

  ckpt_Composite *c = ckpt_composite_new();
  cr_assert_not_null(c);
  ckpt_composite_add(c, "params", &s->base, &err);
  ckpt_composite_add(c, "config", &j->base, &err);
  ckpt_composite_add(c, "run", run_info_args(), &err);
  cr_assert_eq(err.code, CKPT_OK, "%s", err.message);
  tc_save_args(NULL, path, &c->base);
}

void tc_save_step(const char *dir, const char *prefix, int width, int64_t step, double loss) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.sync = true;
  o.step_prefix = prefix;
  o.step_format_fixed_length = width;
  o.best_metric = "loss";
  o.best_mode = CKPT_BEST_MODE_MIN;
  ckpt_manager *m = NULL;
  cr_assert_eq(ckpt_manager_new(dir, &o, &m, &err), CKPT_OK, "%s", err.message);
  ckpt_tree *t = ckpt_tree_new_dict();
  int64_t s2[] = {2};
  double w[] = {(double)step, -(double)step};
  set(t, "w", tc_array(CKPT_DTYPE_FLOAT32, 1, s2, w));
  set(t, "step", ckpt_tree_new_int(CKPT_DTYPE_INT64, step));
  ckpt_StandardSave *s = ckpt_StandardSave_new();
  cr_assert_not_null(s);
  s->item = t;
  cJSON *metrics = cJSON_CreateObject();
  cJSON_AddNumberToObject(metrics, "loss", loss);
  bool saved = false;
  cr_assert_eq(ckpt_manager_save(m, step, &s->base, metrics, true, &saved, &err), CKPT_OK, "%s",
               err.message);
  cr_assert(saved);
  cJSON_Delete(metrics);
  ckpt_args_delete(&s->base);
  cr_assert_eq(ckpt_manager_close(m, &err), CKPT_OK, "%s", err.message);
}
