/* core_fixture.c — see core_fixture.h. */
#include "core_fixture.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

/* ---------------------------------------------------------------- descriptors */

static const ckpt_type_desc string_type = {.kind = CKPT_KIND_STRING};
static const ckpt_type_desc bool_type = {.kind = CKPT_KIND_BOOL};

static const ckpt_field_desc blob_save_fields[] = {
    {.name = "text", .type = &string_type, .offset = offsetof(cf_BlobSave, text)},
    {.name = "defer", .type = &bool_type, .offset = offsetof(cf_BlobSave, defer)},
};

#define CF_DESC(NAME, TYPE, FIELDS, NFIELDS)                  \
  const ckpt_args_desc NAME##_desc = {CKPT_RECORD_DESC_MAGIC, \
                                      CKPT_ABI_VERSION,       \
                                      #NAME,                  \
                                      "ckpt_tests." #NAME,    \
                                      "cf_" #NAME,            \
                                      sizeof(TYPE),           \
                                      NFIELDS,                \
                                      FIELDS,                 \
                                      true,                   \
                                      NULL}

CF_DESC(cf_BlobSave, cf_BlobSave, blob_save_fields, 2);
CF_DESC(cf_BlobRestore, cf_BlobRestore, NULL, 0);

static const ckpt_field_desc other_save_fields[] = {
    {.name = "text", .type = &string_type, .offset = offsetof(cf_OtherSave, text)},
};
CF_DESC(cf_OtherSave, cf_OtherSave, other_save_fields, 1);
CF_DESC(cf_OtherRestore, cf_OtherRestore, NULL, 0);

int cf_blob_finalize_calls;

/* ---------------------------------------------------------------- handlers */

static ckpt_status write_text(ckpt_io *io, const char *dir, const char *name, const char *text,
                              ckpt_error *err) {
  char *p = cf_join(dir, name);
  ckpt_status st = ckpt_io_write_file(io, p, text, strlen(text), false, err);
  free(p);
  return st;
}

static ckpt_status read_text(ckpt_io *io, const char *dir, const char *name, ckpt_value *out,
                             ckpt_error *err) {
  char *p = cf_join(dir, name);
  void *data = NULL;
  size_t n = 0;
  ckpt_status st = ckpt_io_read_file(io, p, 1 << 20, &data, &n, err);
  free(p);
  if (st != CKPT_OK)
    return st;
  out->kind = CKPT_VALUE_JSON;
  out->u.json = cJSON_CreateString(data);
  free(data);
  return out->u.json != NULL ? CKPT_OK : ckpt_error_set(err, CKPT_ENOMEM, "oom");
}

typedef struct deferred_write {
  ckpt_io *io;
  char *path;
  char *text;
} deferred_write;

static ckpt_status run_deferred_write(void *arg, ckpt_error *err) {
  deferred_write *d = arg;
  return ckpt_io_write_file(d->io, d->path, d->text, strlen(d->text), false, err);
}

static void release_deferred_write(void *arg) {
  deferred_write *d = arg;
  free(d->path);
  free(d->text);
  free(d);
}

static ckpt_status blob_save(ckpt_handler *self, ckpt_op *op, const char *dir,
                             const ckpt_args *args, ckpt_error *err) {
  (void)self;
  if (args == NULL || args->desc != &cf_BlobSave_desc)
    return ckpt_error_set(err, CKPT_ETYPE, "BlobHandler saves BlobSave");
  const cf_BlobSave *a = (const cf_BlobSave *)args;
  const char *text = a->text != NULL ? a->text : "";
  if (!a->defer)
    return write_text(ckpt_op_io(op), dir, "blob.txt", text, err);
  /* Snapshot now, write later: what an async-capable handler does. */
  deferred_write *d = calloc(1, sizeof *d);
  if (d == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "oom");
  d->io = ckpt_op_io(op);
  d->path = cf_join(dir, "blob.txt");
  d->text = strdup(text);
  return ckpt_op_defer(op, run_deferred_write, d, release_deferred_write, err);
}

static ckpt_status blob_restore(ckpt_handler *self, ckpt_op *op, const char *dir,
                                const ckpt_args *args, ckpt_value *out, ckpt_error *err) {
  (void)self;
  if (args != NULL && args->desc != &cf_BlobRestore_desc && args->desc != &cf_BlobSave_desc)
    return ckpt_error_set(err, CKPT_ETYPE, "BlobHandler restores BlobRestore");
  return read_text(ckpt_op_io(op), dir, "blob.txt", out, err);
}

static ckpt_status blob_metadata(ckpt_handler *self, ckpt_op *op, const char *dir, cJSON **out,
                                 ckpt_error *err) {
  (void)self;
  char *p = cf_join(dir, "blob.txt");
  uint64_t size = 0;
  ckpt_io_kind kind;
  ckpt_status st = ckpt_io_stat(ckpt_op_io(op), p, &kind, &size, err);
  free(p);
  if (st != CKPT_OK)
    return st;
  if (kind != CKPT_IO_KIND_FILE)
    return ckpt_error_set(err, CKPT_ENOENT, "no blob.txt");
  *out = cJSON_CreateObject();
  cJSON_AddNumberToObject(*out, "bytes", (double)size);
  return CKPT_OK;
}

static ckpt_status blob_finalize(ckpt_handler *self, ckpt_op *op, const char *dir,
                                 ckpt_error *err) {
  (void)self;
  (void)op;
  (void)err;
  (void)dir;
  cf_blob_finalize_calls++;
  return CKPT_OK;
}

static const ckpt_handler_vtable blob_vtable = {.save = blob_save,
                                                .restore = blob_restore,
                                                .metadata = blob_metadata,
                                                .finalize = blob_finalize};

const ckpt_handler_desc cf_BlobHandler_desc = {
    "BlobHandler", "ckpt_tests.BlobHandler", "ckpt_tests.BlobHandler", &blob_vtable, NULL, NULL};

static ckpt_status other_save(ckpt_handler *self, ckpt_op *op, const char *dir,
                              const ckpt_args *args, ckpt_error *err) {
  (void)self;
  if (args == NULL || args->desc != &cf_OtherSave_desc)
    return ckpt_error_set(err, CKPT_ETYPE, "OtherHandler saves OtherSave");
  const cf_OtherSave *a = (const cf_OtherSave *)args;
  return write_text(ckpt_op_io(op), dir, "other.txt", a->text != NULL ? a->text : "", err);
}

static ckpt_status other_restore(ckpt_handler *self, ckpt_op *op, const char *dir,
                                 const ckpt_args *args, ckpt_value *out, ckpt_error *err) {
  (void)self;
  (void)args;
  return read_text(ckpt_op_io(op), dir, "other.txt", out, err);
}

static const ckpt_handler_vtable other_vtable = {.save = other_save, .restore = other_restore};

const ckpt_handler_desc cf_OtherHandler_desc = {"OtherHandler",
                                                "ckpt_tests.OtherHandler",
                                                "ckpt_tests.OtherHandler",
                                                &other_vtable,
                                                NULL,
                                                NULL};

void cf_register(void) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(
      ckpt_register_with_handler(&cf_BlobHandler_desc, &cf_BlobSave_desc, true, false, &err),
      CKPT_OK, "%s", err.message);
  cr_assert_eq(
      ckpt_register_with_handler(&cf_BlobHandler_desc, &cf_BlobRestore_desc, false, true, &err),
      CKPT_OK, "%s", err.message);
  cr_assert_eq(
      ckpt_register_with_handler(&cf_OtherHandler_desc, &cf_OtherSave_desc, true, false, &err),
      CKPT_OK, "%s", err.message);
  cr_assert_eq(
      ckpt_register_with_handler(&cf_OtherHandler_desc, &cf_OtherRestore_desc, false, true, &err),
      CKPT_OK, "%s", err.message);
}

ckpt_args *cf_blob_save(const char *text, bool defer) {
  cf_BlobSave *a = (cf_BlobSave *)ckpt_args_new(&cf_BlobSave_desc);
  cr_assert_not_null(a);
  a->text = strdup(text);
  a->defer = defer;
  return &a->base;
}

ckpt_args *cf_blob_restore(void) {
  ckpt_args *a = ckpt_args_new(&cf_BlobRestore_desc);
  cr_assert_not_null(a);
  return a;
}

ckpt_args *cf_other_save(const char *text) {
  cf_OtherSave *a = (cf_OtherSave *)ckpt_args_new(&cf_OtherSave_desc);
  cr_assert_not_null(a);
  a->text = strdup(text);
  return &a->base;
}

ckpt_args *cf_other_restore(void) {
  ckpt_args *a = ckpt_args_new(&cf_OtherRestore_desc);
  cr_assert_not_null(a);
  return a;
}

/* ---------------------------------------------------------------- files */

char *cf_tmpdir(void) {
  char tmpl[] = "/tmp/ckpt-core-XXXXXX";
  char *d = mkdtemp(tmpl);
  cr_assert_not_null(d, "mkdtemp failed");
  return strdup(d);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

void cf_rmtree(const char *path) {
  if (path == NULL)
    return;
  /* Make everything writable first (tests may chmod directories read-only). */
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "chmod -R u+rwx '%s' 2>/dev/null", path);
  if (system(cmd) != 0) { /* best effort */
  }
  nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *cf_join(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  cr_assert_not_null(p);
  snprintf(p, n, "%s/%s", dir, name);
  return p;
}

char *cf_slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  size_t r;
  while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
    n += r;
    if (cap - n - 1 == 0) {
      cap *= 2;
      buf = realloc(buf, cap);
    }
  }
  fclose(f);
  buf[n] = '\0';
  return buf;
}

bool cf_exists(const char *path) {
  struct stat sb;
  return lstat(path, &sb) == 0;
}

bool cf_is_dir(const char *path) {
  struct stat sb;
  return lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

void cf_write(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "cannot write %s", path);
  fputs(text, f);
  fclose(f);
}

int cf_count_entries(const char *dir) {
  char *cmd = malloc(strlen(dir) + 64);
  sprintf(cmd, "ls -A '%s' | wc -l", dir);
  char *out = cf_run(cmd);
  free(cmd);
  int n = atoi(out);
  free(out);
  return n;
}

char *cf_run(const char *cmd) {
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p, "popen %s", cmd);
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  size_t r;
  while ((r = fread(buf + n, 1, cap - n - 1, p)) > 0) {
    n += r;
    if (cap - n - 1 == 0) {
      cap *= 2;
      buf = realloc(buf, cap);
    }
  }
  buf[n] = '\0';
  int rc = pclose(p);
  cr_assert_eq(rc, 0, "command failed (%d): %s\noutput: %s", rc, cmd, buf);
  return buf;
}

int cf_fault_hook(void *arg, ckpt_io_op op, const char *path) {
  cf_fault *f = arg;
  /* Called from the engine's workers too (chunk files, the commit's parallel fsyncs): an
   * atomic count, so that exactly one operation is the nth. */
  unsigned long k = __atomic_add_fetch(&f->seen, 1, __ATOMIC_SEQ_CST);
  if (f->nth != 0 && k == f->nth) {
    f->fired_op = (int)op;
    snprintf(f->fired_path, sizeof f->fired_path, "%s", path);
    return f->err;
  }
  return 0;
}
