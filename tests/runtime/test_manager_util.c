/* test_manager_util.c — helpers of the CheckpointManager tests (see test_manager_util.h). */
#include "test_manager_util.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *mt_tmpdir(void) {
  char tmpl[] = "/tmp/ckpt_manager_test_XXXXXX";
  char *d = mkdtemp(tmpl);
  cr_assert_not_null(d, "mkdtemp failed");
  return strdup(d);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

void mt_rmtree(const char *path) {
  if (path != NULL)
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *mt_path(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  cr_assert(n >= 0 && s != NULL);
  return s;
}

bool mt_exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

bool mt_is_dir(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

void mt_mkdir(const char *path) {
  cr_assert_eq(mkdir(path, 0777), 0, "mkdir %s", path);
}

void mt_write(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f, "cannot write %s", path);
  fputs(text, f);
  fclose(f);
}

char *mt_slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  char *buf = NULL;
  size_t len = 0, cap = 0;
  int c;
  while ((c = fgetc(f)) != EOF) {
    if (len + 1 >= cap) {
      cap = cap ? cap * 2 : 256;
      buf = realloc(buf, cap);
      cr_assert_not_null(buf);
    }
    buf[len++] = (char)c;
  }
  fclose(f);
  if (buf == NULL)
    buf = calloc(1, 1);
  else
    buf[len] = '\0';
  return buf;
}

ckpt_args *mt_json_save(int64_t step, const char *tag) {
  ckpt_JsonSave *a = ckpt_JsonSave_new();
  cr_assert_not_null(a);
  a->item = cJSON_CreateObject();
  cJSON_AddNumberToObject(a->item, "step", (double)step);
  if (tag != NULL)
    cJSON_AddStringToObject(a->item, "tag", tag);
  return &a->base;
}

ckpt_args *mt_json_text_save(const char *json) {
  ckpt_JsonSave *a = ckpt_JsonSave_new();
  cr_assert_not_null(a);
  a->item = cJSON_Parse(json);
  cr_assert_not_null(a->item, "bad test JSON %s", json);
  return &a->base;
}

cJSON *mt_metrics(const char *name, double value) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, name, value);
  return o;
}

ckpt_manager *mt_open(const char *dir, const ckpt_manager_options *o) {
  ckpt_manager *m = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_new(dir, o, &m, &err), CKPT_OK, "%s", err.message);
  cr_assert_not_null(m);
  return m;
}

void mt_close(ckpt_manager *m) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_close(m, &err), CKPT_OK, "%s", err.message);
}

bool mt_save(ckpt_manager *m, int64_t step, const ckpt_args *args, const cJSON *metrics,
             bool force) {
  ckpt_error err = CKPT_ERROR_INIT;
  bool saved = false;
  cr_assert_eq(ckpt_manager_save(m, step, args, metrics, force, &saved, &err), CKPT_OK,
               "save of step %" PRId64 ": %s", step, err.message);
  return saved;
}

bool mt_save_json(ckpt_manager *m, int64_t step) {
  ckpt_args *a = mt_json_save(step, NULL);
  bool saved = mt_save(m, step, a, NULL, false);
  ckpt_args_delete(a);
  return saved;
}

void mt_wait(ckpt_manager *m) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_wait_until_finished(m, &err), CKPT_OK, "%s", err.message);
}

const char *mt_steps(const ckpt_manager *m) {
  static char buf[1024];
  int64_t *v;
  size_t n;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_all_steps(m, &v, &n, &err), CKPT_OK, "%s", err.message);
  buf[0] = '\0';
  size_t used = 0;
  for (size_t i = 0; i < n; i++)
    used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%" PRId64, i ? "," : "", v[i]);
  free(v);
  return buf;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

const char *mt_ls(const char *dir) {
  static char buf[2048];
  DIR *d = opendir(dir);
  cr_assert_not_null(d, "opendir %s", dir);
  char *names[256];
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL && n < 256) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    names[n++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, n, sizeof *names, cmp_str);
  buf[0] = '\0';
  size_t used = 0;
  for (size_t i = 0; i < n; i++) {
    used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%s", i ? "," : "", names[i]);
    free(names[i]);
  }
  return buf;
}

void mt_save_range(ckpt_manager *m, int64_t first, int64_t last, const char *name,
                   const double *values) {
  for (int64_t s = first; s <= last; s++) {
    cJSON *met = NULL;
    if (name != NULL && !isnan(values[s - first]))
      met = mt_metrics(name, values[s - first]);
    ckpt_args *a = mt_json_save(s, NULL);
    cr_assert(mt_save(m, s, a, met, false), "step %" PRId64 " not saved", s);
    ckpt_args_delete(a);
    cJSON_Delete(met);
  }
}
