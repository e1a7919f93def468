/* test_hardening.c — new directories are durable in their parents (ckpt_io_mkdirs, the
 * manager's directory), names the layout reserves or that cannot fit once ckpt's suffixes are
 * added are refused up front, and an I/O error while checking a checkpoint keeps its kind
 * (docs/reliability.md, "Commit protocol and crash windows"). */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/ckpt.h"
#include "storage/commit.h"
#include "test_manager_util.h"

/* ---------------------------------------------------------------- fsync log */

typedef struct fsync_log {
  pthread_mutex_t mu;
  char paths[256][512];
  size_t n;
} fsync_log;

static int log_fsync(void *arg, ckpt_io_op op, const char *path) {
  fsync_log *l = arg;
  if (op != CKPT_IO_FSYNC)
    return 0;
  pthread_mutex_lock(&l->mu);
  if (l->n < 256)
    snprintf(l->paths[l->n++], sizeof l->paths[0], "%s", path);
  pthread_mutex_unlock(&l->mu);
  return 0;
}

static bool fsynced(fsync_log *l, const char *path) {
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->paths[i], path) == 0)
      return true;
  return false;
}

static ckpt_io *logged_io(fsync_log *l) {
  memset(l, 0, sizeof *l);
  pthread_mutex_init(&l->mu, NULL);
  ckpt_io *io;
  cr_assert_eq(ckpt_io_new(&io, NULL), CKPT_OK);
  ckpt_io_set_fault(io, log_fsync, l);
  return io;
}

Test(hardening, a_save_makes_the_parents_it_creates_durable) {
  char *root = mt_tmpdir();
  fsync_log l;
  ckpt_io *io = logged_io(&l);
  ckpt_checkpointer_options o = CKPT_CHECKPOINTER_OPTIONS_INIT;
  o.io = io;
  o.async = false;
  ckpt_checkpointer *c;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_new(NULL, &o, &c, &err), CKPT_OK, "%s", err.message);
  char *path = mt_path("%s/new1/new2/ckpt", root);
  ckpt_Composite *args = ckpt_composite_new();
  cr_assert_eq(ckpt_composite_add(args, "cfg", mt_json_save(1, "x"), &err), CKPT_OK);
  cr_assert_eq(ckpt_checkpointer_save(c, path, &args->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  ckpt_args_delete(&args->base);
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK);
  /* Each new directory's entry lives in its parent: root holds new1, new1 holds new2, new2
   * holds the checkpoint (the commit fsyncs that one). */
  char *new1 = mt_path("%s/new1", root), *new2 = mt_path("%s/new1/new2", root);
  cr_assert(fsynced(&l, root), "'%s' (holding the new 'new1') was not fsync'd", root);
  cr_assert(fsynced(&l, new1), "'%s' (holding the new 'new2') was not fsync'd", new1);
  cr_assert(fsynced(&l, new2), "'%s' (holding the checkpoint) was not fsync'd", new2);
  free(new1);
  free(new2);
  free(path);
  ckpt_io_free(io);
  mt_rmtree(root);
  free(root);
}

Test(hardening, a_manager_makes_its_new_directory_durable) {
  char *root = mt_tmpdir();
  fsync_log l;
  ckpt_io *io = logged_io(&l);
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.io = io;
  char *dir = mt_path("%s/a/b", root), *a = mt_path("%s/a", root);
  ckpt_manager *m = mt_open(dir, &o);
  cr_assert(mt_is_dir(dir));
  cr_assert(fsynced(&l, root), "'%s' (holding the new 'a') was not fsync'd", root);
  cr_assert(fsynced(&l, a), "'%s' (holding the new 'b') was not fsync'd", a);
  /* Nothing pre-existing above the first new component is fsync'd for it. */
  char *above = mt_path("%s", root);
  *strrchr(above, '/') = '\0';
  cr_assert_not(fsynced(&l, above), "'%s' existed already", above);
  mt_close(m);
  free(above);
  free(dir);
  free(a);
  ckpt_io_free(io);
  mt_rmtree(root);
  free(root);
}

/* ---------------------------------------------------------------- names */

Test(hardening, json_file_names_the_layout_reserves_are_refused) {
  const char *reserved[] = {CKPT_COMMIT_FILE,
                            CKPT_CHECKPOINT_METADATA_FILE,
                            CKPT_CHECKPOINT_CHECKSUMS_FILE,
                            "_METADATA",
                            "_CHECKSUMS",
                            "_strings.json",
                            "_PACKED",
                            "_PACKED.0"};
  for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++) {
    ckpt_handler *h = NULL;
    ckpt_error err = CKPT_ERROR_INIT;
    cr_assert_eq(ckpt_json_handler_new(reserved[i], &h, &err), CKPT_EINVAL, "\"%s\" accepted",
                 reserved[i]);
    cr_assert_null(h);
    cr_assert(strstr(err.message, reserved[i]) && strstr(err.message, "reserved"), "%s",
              err.message);
  }
}

Test(hardening, composite_item_names_of_checkpoint_files_are_refused) {
  const char *names[] = {CKPT_COMMIT_FILE, CKPT_CHECKPOINT_METADATA_FILE,
                         CKPT_CHECKPOINT_CHECKSUMS_FILE};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    ckpt_Composite *c = ckpt_composite_new();
    ckpt_JsonSave *j = ckpt_JsonSave_new();
    j->item = cJSON_CreateObject();
    ckpt_error err = CKPT_ERROR_INIT;
    cr_assert_eq(ckpt_composite_add(c, names[i], &j->base, &err), CKPT_EINVAL, "\"%s\" accepted",
                 names[i]);
    cr_assert(strstr(err.message, names[i]) != NULL, "%s", err.message);
    ckpt_args_delete(&c->base);
  }
}

static ckpt_status save_item(const char *root, const char *item, ckpt_atomicity at,
                             ckpt_error *err) {
  ckpt_checkpointer_options o = CKPT_CHECKPOINTER_OPTIONS_INIT;
  o.async = false;
  o.atomicity = at;
  ckpt_checkpointer *c;
  cr_assert_eq(ckpt_checkpointer_new(NULL, &o, &c, NULL), CKPT_OK);
  char *path = mt_path("%s/ck%d", root, (int)at);
  ckpt_Composite *args = ckpt_composite_new();
  ckpt_status st = ckpt_composite_add(args, item, mt_json_save(1, "x"), err);
  if (st == CKPT_OK)
    st = ckpt_checkpointer_save(c, path, &args->base, false, NULL, err);
  ckpt_args_delete(&args->base);
  ckpt_checkpointer_close(c, NULL);
  free(path);
  return st;
}

Test(hardening, item_names_are_checked_against_the_real_limit) {
  char *root = mt_tmpdir();
  char name[300];
  size_t max = 255 - strlen(CKPT_TMP_SUFFIX);
  cr_assert_eq(CKPT_COMPOSITE_ITEM_NAME_MAX, (int)max);
  memset(name, 'i', max);
  name[max] = '\0';
  ckpt_error err = CKPT_ERROR_INIT;
  /* The longest accepted name saves in both modes (its tmp name still fits)... */
  cr_assert_eq(save_item(root, name, CKPT_ATOMICITY_RENAME, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(save_item(root, name, CKPT_ATOMICITY_COMMIT_FILE, &err), CKPT_OK, "%s", err.message);
  /* ... one byte more is refused up front, saying why, not half-way with ENAMETOOLONG. */
  name[max] = 'i';
  name[max + 1] = '\0';
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_composite_check_item_name(name, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "235 bytes") && strstr(err.message, CKPT_TMP_SUFFIX), "%s",
            err.message);
  mt_rmtree(root);
  free(root);
}

Test(hardening, checkpoint_names_leave_room_for_the_suffixes) {
  char *root = mt_tmpdir();
  char name[300];
  memset(name, 'c', CKPT_CHECKPOINT_NAME_MAX + 1);
  name[CKPT_CHECKPOINT_NAME_MAX + 1] = '\0';
  char *path = mt_path("%s/%s", root, name);
  ckpt_checkpointer_options o = CKPT_CHECKPOINTER_OPTIONS_INIT;
  o.async = false;
  ckpt_checkpointer *c;
  cr_assert_eq(ckpt_checkpointer_new(NULL, &o, &c, NULL), CKPT_OK);
  ckpt_Composite *args = ckpt_composite_new();
  cr_assert_eq(ckpt_composite_add(args, "cfg", mt_json_save(1, "x"), NULL), CKPT_OK);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_save(c, path, &args->base, false, NULL, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "-deleting"), "%s", err.message);
  /* The longest accepted name saves, and can be replaced (its "-replaced" name fits). */
  path[strlen(path) - 1] = '\0';
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_checkpointer_save(c, path, &args->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  cr_assert_eq(ckpt_checkpointer_save(c, path, &args->base, true, NULL, &err), CKPT_OK, "%s",
               err.message);
  ckpt_args_delete(&args->base);
  ckpt_checkpointer_close(c, NULL);
  free(path);
  mt_rmtree(root);
  free(root);
}

/* ---------------------------------------------------------------- error kinds */

static const char *eio_path;
static int eio_on_stat(void *arg, ckpt_io_op op, const char *path) {
  (void)arg;
  return op == CKPT_IO_STAT && strcmp(path, eio_path) == 0 ? EIO : 0;
}

Test(hardening, an_eio_checking_a_checkpoint_is_reported_as_eio) {
  char *root = mt_tmpdir();
  ckpt_io *io;
  cr_assert_eq(ckpt_io_new(&io, NULL), CKPT_OK);
  ckpt_manager_options mo = CKPT_MANAGER_OPTIONS_INIT;
  mo.io = io;
  mo.sync = true;
  ckpt_manager *m = mt_open(root, &mo);
  cr_assert(mt_save_json(m, 1));
  /* The stat the finalized check makes (the commit file's), not the first stat of the path. */
  char *step = mt_path("%s/1", root), *cf = mt_path("%s/1/%s", root, CKPT_COMMIT_FILE);
  eio_path = cf;
  ckpt_io_set_fault(io, eio_on_stat, NULL);

  /* The checkpointer's restore of the path. */
  ckpt_checkpointer_options o = CKPT_CHECKPOINTER_OPTIONS_INIT;
  o.io = io;
  ckpt_checkpointer *c;
  ckpt_value v;
  ckpt_error err = CKPT_ERROR_INIT;
  for (int mode = 0; mode < 2; mode++) {
    o.atomicity = mode ? CKPT_ATOMICITY_COMMIT_FILE : CKPT_ATOMICITY_RENAME;
    cr_assert_eq(ckpt_checkpointer_new(NULL, &o, &c, NULL), CKPT_OK);
    ckpt_error_clear(&err);
    cr_assert_eq(ckpt_checkpointer_restore(c, step, NULL, &v, &err), CKPT_EIO, "mode %d: %s: %s",
                 mode, ckpt_status_name(err.code), err.message);
    cr_assert(strstr(err.message, cf) != NULL, "%s", err.message);
    ckpt_checkpointer_close(c, NULL);
  }

  /* The manager's restore and its re-reading of the steps: not "incomplete", not "no step". */
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_manager_restore(m, 1, NULL, &v, &err), CKPT_EIO, "%s", err.message);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_manager_reload(m, &err), CKPT_EIO, "%s", err.message);
  cr_assert(strstr(err.message, cf) != NULL, "%s", err.message);

  ckpt_io_set_fault(io, NULL, NULL);
  mt_close(m);
  free(step);
  free(cf);
  ckpt_io_free(io);
  mt_rmtree(root);
  free(root);
}
