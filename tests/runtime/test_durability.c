/* test_durability.c — which fsync makes what durable (docs/format.md, "Durability"): a save is
 * run with a fault hook that only records every FSYNC and RENAME (path and order), and the
 * record is checked against the crash-safety argument:
 *   - every regular file and every directory of the committed checkpoint was fsync'd before
 *     the rename that publishes it (rename mode) or before commit_success.txt (commit-file
 *     mode), and the parent directory after it;
 *   - every file was fsync'd exactly once: the commit no longer fsyncs again what the handlers
 *     already made durable (it used to, one by one), and nothing is left to chance either.
 * The saved item mixes the three kinds of writers: the PyTree engine (claims its array
 * directories and item files), the JSON handler (claims its file), and a user-written handler
 * that leaves durability to the commit (core_fixture's BlobHandler, not fsync'd by itself). */
#include <pthread.h>
#include <sys/stat.h>

#include "core_fixture.h"
#include "io/path_set.h"
#include "storage/step_dirs.h"
#include "test_pytree_util.h"

typedef struct sync_log {
  pthread_mutex_t mu;
  size_t n, cap;
  int *ops;
  char **paths; /* with every ".orbax-checkpoint-tmp" removed: the committed names */
  char **raw;   /* as the hook saw them */
} sync_log;

/* s without any occurrence of the tmp marker (malloc'ed). */
static char *untmp(const char *s) {
  char *out = strdup(s);
  cr_assert_not_null(out);
  size_t m = strlen(CKPT_TMP_SUFFIX);
  char *p;
  while ((p = strstr(out, CKPT_TMP_SUFFIX)) != NULL)
    memmove(p, p + m, strlen(p + m) + 1);
  return out;
}

static int log_hook(void *arg, ckpt_io_op op, const char *path) {
  sync_log *l = arg;
  if (op != CKPT_IO_FSYNC && op != CKPT_IO_RENAME)
    return 0;
  pthread_mutex_lock(&l->mu);
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 64;
    l->ops = realloc(l->ops, l->cap * sizeof *l->ops);
    l->paths = realloc(l->paths, l->cap * sizeof *l->paths);
    l->raw = realloc(l->raw, l->cap * sizeof *l->raw);
  }
  l->ops[l->n] = (int)op;
  l->paths[l->n] = untmp(path);
  l->raw[l->n] = strdup(path);
  l->n++;
  pthread_mutex_unlock(&l->mu);
  return 0;
}

static void log_free(sync_log *l) {
  for (size_t i = 0; i < l->n; i++) {
    free(l->paths[i]);
    free(l->raw[i]);
  }
  free(l->ops);
  free(l->paths);
  free(l->raw);
  pthread_mutex_destroy(&l->mu);
}

/* Index of the first record of op on exactly path (raw), or -1. */
static long find_raw(const sync_log *l, ckpt_io_op op, const char *path) {
  for (size_t i = 0; i < l->n; i++)
    if (l->ops[i] == (int)op && strcmp(l->raw[i], path) == 0)
      return (long)i;
  return -1;
}

typedef struct walk_ctx {
  const sync_log *log;
  long before; /* every fsync must come before this record index */
  size_t files, dirs;
} walk_ctx;

/* Checks path (a file or directory of the committed checkpoint) against the log. */
static void check_path(walk_ctx *w, const char *path, bool is_dir) {
  size_t count = 0;
  long first = -1;
  for (size_t i = 0; i < w->log->n; i++) {
    if (w->log->ops[i] != CKPT_IO_FSYNC || strcmp(w->log->paths[i], path) != 0)
      continue;
    if (first < 0)
      first = (long)i;
    count++;
  }
  cr_assert(first >= 0, "'%s' was never fsync'd", path);
  cr_assert_lt(first, w->before, "'%s' was first fsync'd after the commit point", path);
  if (!is_dir)
    cr_assert_eq(count, 1, "file '%s' was fsync'd %zu times", path, count);
  if (is_dir)
    w->dirs++;
  else
    w->files++;
}

static void walk_tree(walk_ctx *w, const char *dir) {
  check_path(w, dir, true);
  DIR *d = opendir(dir);
  cr_assert_not_null(d, "%s", dir);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    char *child = pt_fmt("%s/%s", dir, e->d_name);
    struct stat sb;
    cr_assert_eq(lstat(child, &sb), 0, "%s", child);
    if (S_ISDIR(sb.st_mode))
      walk_tree(w, child);
    else
      check_path(w, child, false);
    free(child);
  }
  closedir(d);
}

/* {state: StandardSave(3 arrays and a scalar), config: JsonSave, blob: BlobSave(deferred)}. */
static ckpt_args *mixed_args(void) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = ckpt_tree_new_dict();
  for (int i = 0; i < 3; i++) {
    char name[16];
    snprintf(name, sizeof name, "w%d", i);
    int64_t shape[2] = {64, 33 + i};
    ckpt_tree_dict_set(t, name,
                       ckpt_tree_new_array(pt_array(CKPT_DTYPE_FLOAT32, 2, shape, 11u + (uint32_t)i)),
                       &err);
  }
  ckpt_tree_dict_set(t, "step", ckpt_tree_new_int(CKPT_DTYPE_INT64, 9), &err);
  cr_assert_eq(err.code, CKPT_OK, "%s", err.message);
  ckpt_StandardSave *s = ckpt_StandardSave_new();
  s->item = t;
  ckpt_JsonSave *j = ckpt_JsonSave_new();
  j->item = cJSON_Parse("{\"lr\": 0.5}");
  ckpt_Composite *c = ckpt_composite_new();
  cr_assert_eq(ckpt_composite_add(c, "state", &s->base, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_composite_add(c, "config", &j->base, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_composite_add(c, "blob", cf_blob_save("blob", true), &err), CKPT_OK, "%s",
               err.message);
  return &c->base;
}

/* Saves mixed_args() at <root>/ckpt with the log hook and checks the log. ocdbt: the
 * checkpointer's use_ocdbt (false: every array in its own zarr directory). */
static void run(ckpt_atomicity at, bool async, bool ocdbt) {
  cf_register();
  char *root = pt_tmpdir();
  char *path = pt_fmt("%s/ckpt", root);
  char *tmp = pt_fmt("%s%s", path, CKPT_TMP_SUFFIX);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_io *io;
  cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
  sync_log log = {.n = 0};
  pthread_mutex_init(&log.mu, NULL);
  ckpt_checkpointer_options o = CKPT_CHECKPOINTER_OPTIONS_INIT;
  o.atomicity = at;
  o.async = async;
  o.io = io;
  o.use_ocdbt = ocdbt;
  ckpt_checkpointer *c;
  cr_assert_eq(ckpt_checkpointer_new(NULL, &o, &c, &err), CKPT_OK, "%s", err.message);
  ckpt_args *a = mixed_args();
  ckpt_io_set_fault(io, log_hook, &log);
  ckpt_status st = ckpt_checkpointer_save(c, path, a, false, NULL, &err);
  if (st == CKPT_OK)
    st = ckpt_checkpointer_wait_until_finished(c, &err);
  ckpt_io_set_fault(io, NULL, NULL);
  cr_assert_eq(st, CKPT_OK, "%s", err.message);
  ckpt_args_delete(a);

  /* The commit point: the rename of the tmp directory, or (commit-file mode) the rename of
   * the pending marker to commit_success.txt, whose content was fsync'd under the pending name
   * (the walk maps that name to commit_success.txt) with the rest of the tree. */
  long commit_at;
  if (at == CKPT_ATOMICITY_RENAME) {
    commit_at = find_raw(&log, CKPT_IO_RENAME, tmp);
    cr_assert_geq(commit_at, 0, "no rename of '%s'", tmp);
  } else {
    char *pending = pt_fmt("%s/%s", path, CKPT_COMMIT_PENDING_FILE);
    commit_at = find_raw(&log, CKPT_IO_RENAME, pending);
    cr_assert_geq(commit_at, 0, "no rename of '%s'", pending);
    /* ... and the marker's directory entry was durable before the commit timestamp could be:
     * the directory is fsync'd before anything of the tree is. */
    long dir_first = find_raw(&log, CKPT_IO_FSYNC, path);
    cr_assert(dir_first >= 0 && dir_first < commit_at, "'%s' not fsync'd before the commit", path);
    free(pending);
  }
  walk_ctx w = {.log = &log, .before = commit_at};
  walk_tree(&w, path);
  /* 3 arrays + the scalar (a .zarray and a chunk each), _METADATA, _CHECKSUMS,
   * _CHECKPOINT_METADATA, three commit files, the JSON and the blob file at least; with OCDBT
   * the arrays are two manifests, two node files and a value file in d/, ocdbt.process_0/ and
   * ocdbt.process_0/d/ instead of four directories. */
  cr_assert_geq(w.files, ocdbt ? 13 : 16, "only %zu files", w.files);
  cr_assert_geq(w.dirs, ocdbt ? 7 : 8, "only %zu directories", w.dirs);
  if (ocdbt) { /* the walk above checked their fsyncs; here, that the layout is OCDBT */
    char *man = pt_fmt("%s/state/ocdbt.process_0/manifest.ocdbt", path),
         *w1 = pt_fmt("%s/state/w1", path);
    struct stat sb;
    cr_assert_eq(stat(man, &sb), 0, "no '%s'", man);
    cr_assert_neq(stat(w1, &sb), 0, "'%s': w1 is in OCDBT", w1);
    free(man);
    free(w1);
  }
  if (at == CKPT_ATOMICITY_COMMIT_FILE) {
    /* The commit file's directory entry: the directory is fsync'd again after it. */
    long dir_after = -1;
    for (size_t i = (size_t)commit_at + 1; i < log.n; i++)
      if (log.ops[i] == CKPT_IO_FSYNC && strcmp(log.raw[i], path) == 0)
        dir_after = (long)i;
    cr_assert_geq(dir_after, 0, "'%s' not fsync'd after its commit file", path);
    char *item_cf = pt_fmt("%s/state/%s", path, CKPT_COMMIT_FILE);
    long item_cf_at = find_raw(&log, CKPT_IO_FSYNC, item_cf);
    cr_assert(item_cf_at >= 0 && item_cf_at < commit_at, "'%s' not durable before the commit",
              item_cf);
    free(item_cf);
  }
  /* The parent's fsync makes the checkpoint's own entry durable: after the rename (or the
   * commit file), and last. */
  long parent_at = -1;
  for (size_t i = 0; i < log.n; i++)
    if (log.ops[i] == CKPT_IO_FSYNC && strcmp(log.raw[i], root) == 0)
      parent_at = (long)i;
  cr_assert_gt(parent_at, commit_at, "the parent was not fsync'd after the commit point");

  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
  ckpt_io_free(io);
  log_free(&log);
  free(path);
  free(tmp);
  pt_rmtree(root);
}

Test(durability, rename_mode_sync_save_fsyncs_everything_before_the_rename_files_once) {
  run(CKPT_ATOMICITY_RENAME, false, false);
}

Test(durability, rename_mode_async_save_fsyncs_everything_before_the_rename_files_once) {
  run(CKPT_ATOMICITY_RENAME, true, false);
}

Test(durability, commit_file_mode_fsyncs_everything_before_the_commit_file_files_once) {
  run(CKPT_ATOMICITY_COMMIT_FILE, false, false);
}

/* OCDBT: its data, node and manifest files and its three directories are claimed by the
 * save, so they must be fsync'd once, by the save, before the commit point. */
Test(durability, ocdbt_item_fsyncs_everything_once) {
  run(CKPT_ATOMICITY_RENAME, false, true);
}

Test(durability, ocdbt_async_commit_file_mode_fsyncs_everything_once) {
  run(CKPT_ATOMICITY_COMMIT_FILE, true, true);
}

/* The claims follow renames (the Composite handler's item directories), and only the paths
 * under the renamed one. */
Test(durability, path_set_rename_moves_members_and_only_those) {
  ckpt_path_set s = CKPT_PATH_SET_INIT;
  cr_assert_eq(ckpt_path_set_add(&s, "/c/x.tmp/a"), 0);
  cr_assert_eq(ckpt_path_set_add(&s, "/c/x.tmp"), 0);
  cr_assert_eq(ckpt_path_set_add(&s, "/c/x.tmpfoo/b"), 0);
  cr_assert_eq(ckpt_path_set_add(&s, "/c/x.tmp/a"), 0); /* again: no duplicate */
  cr_assert_eq(s.count, 3);
  for (int i = 0; i < 40; i++) { /* enough to grow the table */
    char p[32];
    snprintf(p, sizeof p, "/c/x.tmp/f%d", i);
    cr_assert_eq(ckpt_path_set_add(&s, p), 0);
  }
  cr_assert_eq(ckpt_path_set_rename(&s, "/c/x.tmp", "/c/x"), 0);
  cr_assert_eq(s.count, 43);
  cr_assert(ckpt_path_set_contains(&s, "/c/x/a"));
  cr_assert(ckpt_path_set_contains(&s, "/c/x"));
  cr_assert(ckpt_path_set_contains(&s, "/c/x/f39"));
  cr_assert(!ckpt_path_set_contains(&s, "/c/x.tmp/a"));
  cr_assert(ckpt_path_set_contains(&s, "/c/x.tmpfoo/b"), "a sibling with the same prefix moved");
  cr_assert(!ckpt_path_set_contains(&s, "/c/x/foo/b"));
  ckpt_path_set_clear(&s);
  cr_assert_eq(s.count, 0);
  cr_assert(!ckpt_path_set_contains(&s, "/c/x"));
}
