/* test_record_handler.c — `handler H for R;`: records saved through the PyTree layout and
 * restored into fresh structs, through the real checkpointer; Python (zarr) opens what C wrote
 * as a dict of arrays and C restores what Python wrote; restore targets, strictness, and the
 * validation errors a bad checkpoint produces. */
#include <criterion/criterion.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "handlers/pytree.h"
#include "handlers/op.h"
#include "record_fixture.h"

static char tmpdir[256];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

static void setup(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/ckpt_test_record_XXXXXX");
  cr_assert_not_null(mkdtemp(tmpdir));
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(rec_register(&err), CKPT_OK, "%s", err.message);
}

static void teardown(void) {
  nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(record_handler, .init = setup, .fini = teardown);

static const char *at(const char *rel) {
  static char buf[8][768];
  static int next;
  char *p = buf[next++ % 8];
  snprintf(p, 768, "%s/%s", tmpdir, rel);
  return p;
}

static bool exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

static ckpt_checkpointer *checkpointer(const ckpt_handler_desc *h) {
  ckpt_checkpointer *c = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_new(h, NULL, &c, &err), CKPT_OK, "%s", err.message);
  return c;
}

static void close_checkpointer(ckpt_checkpointer *c) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
}

static void save_state(const char *path, const rec_TrainState *s) {
  ckpt_checkpointer *c = checkpointer(&rec_TrainStateHandler_desc);
  rec_TrainStateSave *args = rec_TrainStateSave_new();
  args->item = s;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_save(c, path, &args->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  close_checkpointer(c);
  ckpt_args_delete(&args->base);
}

/* Restores path with optional RRestore args; returns the status, *out the record or NULL. */
static ckpt_status restore_state(const char *path, const rec_TrainState *target, bool strict,
                                 rec_TrainState **out, ckpt_error *err) {
  ckpt_checkpointer *c = checkpointer(&rec_TrainStateHandler_desc);
  rec_TrainStateRestore *args = rec_TrainStateRestore_new();
  args->target = target;
  args->strict = strict;
  ckpt_value v;
  memset(&v, 0, sizeof v);
  *out = NULL;
  ckpt_status st = ckpt_checkpointer_restore(c, path, &args->base, &v, err);
  if (st == CKPT_OK) {
    cr_assert_eq(v.kind, CKPT_VALUE_RECORD);
    cr_assert_eq(v.u.record.desc, &rec_TrainState_desc);
    *out = v.u.record.data;
  }
  close_checkpointer(c);
  ckpt_args_delete(&args->base);
  return st;
}

static void free_state(rec_TrainState *s) {
  if (s == NULL)
    return;
  rec_TrainState_free(s);
  free(s);
}

Test(record_handler, round_trip_through_checkpointer) {
  rec_TrainState s;
  fx_train_state(&s);
  save_state(at("ckpt"), &s);
  rec_TrainState *back = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(restore_state(at("ckpt"), NULL, true, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert(rec_TrainState_equal(&s, back), "restored TrainState differs");
  free_state(back);

  /* Restoring with NULL args (as saved) works too. */
  ckpt_checkpointer *c = checkpointer(&rec_TrainStateHandler_desc);
  ckpt_value v;
  memset(&v, 0, sizeof v);
  cr_assert_eq(ckpt_checkpointer_restore(c, at("ckpt"), NULL, &v, &err), CKPT_OK, "%s",
               err.message);
  cr_assert(rec_TrainState_equal(&s, v.u.record.data));
  ckpt_value_free(&v);
  close_checkpointer(c);
  rec_TrainState_free(&s);
}

Test(record_handler, layout_is_a_pytree) {
  rec_TrainState s;
  fx_train_state(&s);
  save_state(at("ckpt"), &s);
  static const char *const files[] = {"_METADATA",
                                      "_strings.json",
                                      "w1/.zarray",
                                      "b1/.zarray",
                                      "w2/.zarray",
                                      "adam_m.w1/.zarray",
                                      "buffers.0/.zarray",
                                      "buffers.1/.zarray",
                                      "layers.1.w/.zarray",
                                      "per_task.seg.learning_rate/.zarray",
                                      "maybe.batch_size/.zarray",
                                      "ids.2/.zarray",
                                      "run_info/.zarray",
                                      "key.key_data/.zarray",
                                      "np_rng.state.key/.zarray",
                                      "extra.x/.zarray",
                                      "blob/.zarray",
                                      "step/.zarray",
                                      "half/.zarray"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    char rel[256];
    snprintf(rel, sizeof rel, "ckpt/%s", files[i]);
    cr_assert(exists(at(rel)), "missing %s", rel);
  }
  FILE *f = fopen(at("ckpt/_strings.json"), "r");
  char text[4096] = {0};
  cr_assert_gt(fread(text, 1, sizeof text - 1, f), 0);
  fclose(f);
  cJSON *strings = cJSON_Parse(text);
  cr_assert_str_eq(cJSON_GetObjectItem(strings, "hparams.optimizer")->valuestring, "sgd");
  cr_assert_str_eq(cJSON_GetObjectItem(strings, "comment")->valuestring, "hello \"world\"");
  cr_assert_str_eq(cJSON_GetObjectItem(strings, "np_rng.bit_generator")->valuestring, "MT19937");
  cr_assert_not_null(cJSON_GetObjectItem(strings, "notes"));
  cJSON_Delete(strings);
  /* The annotated field carries its storage options. */
  f = fopen(at("ckpt/w2/.zarray"), "r");
  memset(text, 0, sizeof text);
  cr_assert_gt(fread(text, 1, sizeof text - 1, f), 0);
  fclose(f);
  cJSON *z = cJSON_Parse(text);
  const cJSON *comp = cJSON_GetObjectItem(z, "compressor");
  cr_assert_str_eq(cJSON_GetObjectItem(comp, "id")->valuestring, "zstd");
  cr_assert_eq(cJSON_GetObjectItem(comp, "level")->valueint, 3);
  cJSON_Delete(z);
  rec_TrainState_free(&s);
}

/* Async and zero-copy saves: the args may go before the background write. Without zero-copy
 * only the snapshot is written in the background; with it, the record's memory and the tree the
 * handler made of it (held by the op until the write is over). */
Test(record_handler, async_and_zero_copy_saves) {
  rec_TrainState s;
  fx_train_state(&s);
  for (int mode = 0; mode < 3; mode++) {
    ckpt_checkpointer_options opts = CKPT_CHECKPOINTER_OPTIONS_INIT;
    opts.async = mode != 1;
    opts.zero_copy = mode != 0;
    ckpt_checkpointer *c = NULL;
    ckpt_error err = CKPT_ERROR_INIT;
    cr_assert_eq(ckpt_checkpointer_new(&rec_TrainStateHandler_desc, &opts, &c, &err), CKPT_OK, "%s",
                 err.message);
    rec_TrainStateSave *args = rec_TrainStateSave_new();
    args->item = &s;
    char rel[32];
    snprintf(rel, sizeof rel, "mode%d", mode);
    cr_assert_eq(ckpt_checkpointer_save(c, at(rel), &args->base, false, NULL, &err), CKPT_OK, "%s",
                 err.message);
    ckpt_args_delete(&args->base); /* the args may go away before the background write */
    cr_assert_eq(ckpt_checkpointer_wait_until_finished(c, &err), CKPT_OK, "%s", err.message);
    close_checkpointer(c);
    rec_TrainState *back = NULL;
    cr_assert_eq(restore_state(at(rel), NULL, true, &back, &err), CKPT_OK, "%s", err.message);
    cr_assert(rec_TrainState_equal(&s, back), "mode %d", mode);
    free_state(back);
  }
  rec_TrainState_free(&s);
}

/* ------------------------------------------------------------------ ownership across the
 * background write (regression: the handler's temporary tree vs the engine's deferred job) */

/* Holds the background part of a save at its first I/O operation (on a thread other than the
 * test's, on a path containing `filter`, or any path when filter is NULL) until the test opens
 * it, so the test can act between save returning and the background touching any data. The
 * wait has a generous safety limit so a save that waits for its own background work fails the
 * test instead of hanging it. */
typedef struct gate {
  pthread_t test_thread;
  const char *filter;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool open;
  bool held;      /* some background operation waited at the gate */
  bool timed_out; /* the safety limit was hit */
} gate;

static int gate_hook(void *arg, ckpt_io_op op, const char *path) {
  (void)op;
  gate *g = arg;
  if (pthread_equal(pthread_self(), g->test_thread))
    return 0;
  if (g->filter != NULL && strstr(path, g->filter) == NULL)
    return 0;
  pthread_mutex_lock(&g->mu);
  g->held = true;
  struct timespec limit;
  clock_gettime(CLOCK_REALTIME, &limit);
  limit.tv_sec += 120;
  while (!g->open && !g->timed_out)
    if (pthread_cond_timedwait(&g->cv, &g->mu, &limit) != 0)
      g->timed_out = true;
  pthread_mutex_unlock(&g->mu);
  return 0;
}

static void gate_init(gate *g, const char *filter) {
  memset(g, 0, sizeof *g);
  g->test_thread = pthread_self();
  g->filter = filter;
  pthread_mutex_init(&g->mu, NULL);
  pthread_cond_init(&g->cv, NULL);
}

static void gate_open(gate *g) {
  pthread_mutex_lock(&g->mu);
  g->open = true;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
}

static void gate_destroy(gate *g) {
  pthread_mutex_destroy(&g->mu);
  pthread_cond_destroy(&g->cv);
}

/* Allocates and scribbles over many small blocks, so memory freed too early is reused and
 * overwritten (and ASan reports the access). Release with unchurn. */
enum { CHURN_BLOCKS = 4096 };
static void **churn(void) {
  void **blocks = calloc(CHURN_BLOCKS, sizeof *blocks);
  cr_assert_not_null(blocks);
  for (size_t i = 0; i < CHURN_BLOCKS; i++) {
    size_t n = 8 + (i % 64) * 8;
    blocks[i] = malloc(n);
    cr_assert_not_null(blocks[i]);
    memset(blocks[i], 0xa5, n);
  }
  return blocks;
}

static void unchurn(void **blocks) {
  for (size_t i = 0; i < CHURN_BLOCKS; i++)
    free(blocks[i]);
  free(blocks);
}

static ckpt_checkpointer *gated_checkpointer(ckpt_io *io, bool zero_copy) {
  ckpt_checkpointer_options opts = CKPT_CHECKPOINTER_OPTIONS_INIT;
  opts.async = true;
  opts.zero_copy = zero_copy;
  opts.io = io;
  ckpt_checkpointer *c = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_new(&rec_TrainStateHandler_desc, &opts, &c, &err), CKPT_OK, "%s",
               err.message);
  return c;
}

/* Zero-copy: the engine reads the leaves in place after save returned. The tree the record
 * became owns some of them (the packed proto); it must outlive the background write even though
 * save has returned and the args are gone. */
Test(record_handler, zero_copy_tree_outlives_the_background_write) {
  rec_TrainState s;
  fx_train_state(&s);
  ckpt_io *io = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
  gate g;
  gate_init(&g, "/run_info");
  ckpt_io_set_fault(io, gate_hook, &g);
  ckpt_checkpointer *c = gated_checkpointer(io, true);
  rec_TrainStateSave *args = rec_TrainStateSave_new();
  args->item = &s;
  cr_assert_eq(ckpt_checkpointer_save(c, at("zc"), &args->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  ckpt_args_delete(&args->base);
  void **blocks = churn();
  gate_open(&g);
  cr_assert_eq(ckpt_checkpointer_wait_until_finished(c, &err), CKPT_OK, "%s", err.message);
  close_checkpointer(c);
  unchurn(blocks);
  cr_assert(g.held, "the background write never created run_info/ (the gate was not reached)");
  cr_assert_not(g.timed_out, "save waited for its own background write");
  rec_TrainState *back = NULL;
  cr_assert_eq(restore_state(at("zc"), NULL, true, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert(rec_TrainState_equal(&s, back), "the zero-copy save wrote something else");
  free_state(back);
  ckpt_io_free(io);
  gate_destroy(&g);
  rec_TrainState_free(&s);
}

/* Not zero-copy: once save returned, the record is the caller's again: it may be overwritten
 * and freed before the background write starts, which must write the values of the save. */
Test(record_handler, async_save_writes_the_snapshot_after_the_record_is_gone) {
  rec_TrainState *s = calloc(1, sizeof *s);
  fx_train_state(s);
  ckpt_io *io = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_io_new(&io, &err), CKPT_OK);
  gate g;
  gate_init(&g, NULL);
  ckpt_io_set_fault(io, gate_hook, &g);
  ckpt_checkpointer *c = gated_checkpointer(io, false);
  rec_TrainStateSave *args = rec_TrainStateSave_new();
  args->item = s;
  cr_assert_eq(ckpt_checkpointer_save(c, at("snap"), &args->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  ckpt_args_delete(&args->base);
  /* Scribble over the arrays, then free the whole record. */
  memset(ckpt_array_data(s->w1), 0xff, (size_t)ckpt_array_nbytes(s->w1));
  memset(ckpt_array_data(s->adam_m[1].value), 0xff, (size_t)ckpt_array_nbytes(s->adam_m[1].value));
  s->run_info->started = 1;
  free_state(s);
  void **blocks = churn();
  gate_open(&g);
  cr_assert_eq(ckpt_checkpointer_wait_until_finished(c, &err), CKPT_OK, "%s", err.message);
  close_checkpointer(c);
  unchurn(blocks);
  cr_assert(g.held, "no background I/O was held at the gate");
  cr_assert_not(g.timed_out, "save waited for its own background write");
  rec_TrainState want;
  fx_train_state(&want);
  rec_TrainState *back = NULL;
  cr_assert_eq(restore_state(at("snap"), NULL, true, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert(rec_TrainState_equal(&want, back), "the save wrote values changed after it returned");
  free_state(back);
  rec_TrainState_free(&want);
  ckpt_io_free(io);
  gate_destroy(&g);
}

/* A zero-copy save is planned on the caller's thread like any other: a map key that cannot be a
 * parameter name fails the save call itself, not the background write, and nothing is left. */
Test(record_handler, zero_copy_save_reports_an_unsafe_key_at_once) {
  rec_TrainState s;
  fx_train_state(&s);
  free(s.adam_m[0].key);
  s.adam_m[0].key = strdup("a/b");
  ckpt_checkpointer_options opts = CKPT_CHECKPOINTER_OPTIONS_INIT;
  opts.async = true;
  opts.zero_copy = true;
  ckpt_checkpointer *c = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_new(&rec_TrainStateHandler_desc, &opts, &c, &err), CKPT_OK);
  rec_TrainStateSave *args = rec_TrainStateSave_new();
  args->item = &s;
  cr_assert_eq(ckpt_checkpointer_save(c, at("unsafe"), &args->base, false, NULL, &err),
               CKPT_EUNSAFE, "%s", err.message);
  cr_assert(strstr(err.message, "adam_m.a/b") != NULL, "%s", err.message);
  ckpt_args_delete(&args->base);
  ckpt_error later = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_wait_until_finished(c, &later), CKPT_OK, "%s", later.message);
  close_checkpointer(c);
  cr_assert_not(exists(at("unsafe")));
  rec_TrainState_free(&s);
}

/* ------------------------------------------------------------------ Python */

static int run_python(const char *program, const char *arg, char *out, size_t cap) {
  char path[] = "/tmp/ckpt_test_record_XXXXXX.py";
  int fd = mkstemps(path, 3);
  cr_assert(fd >= 0);
  FILE *f = fdopen(fd, "w");
  fputs(program, f);
  fclose(f);
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s %s %s 2>&1", CKPT_PYTHON, path, arg);
  FILE *p = popen(cmd, "r");
  size_t n = fread(out, 1, cap - 1, p);
  out[n] = '\0';
  int rc = pclose(p);
  remove(path);
  return rc;
}

static void fill_simple(rec_Simple *s, int64_t rows, int64_t h) {
  cr_assert_eq(rec_Simple_init(s), CKPT_OK);
  s->step = 42;
  s->w = fx_f32(rows, h, 0.5);
  s->b = fx_f32(h, -1, -1.0);
  s->name = strdup("mlp");
  s->lr = 0.125;
}

/* Python opens a record C saved as a dict of arrays, with zarr and json only. */
Test(record_handler, python_opens_record_as_dict_of_arrays) {
  rec_Simple s;
  fill_simple(&s, 3, 4);
  ckpt_checkpointer *c = checkpointer(&rec_SimpleHandler_desc);
  rec_SimpleSave *args = rec_SimpleSave_new();
  args->item = &s;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_save(c, at("simple"), &args->base, false, NULL, &err), CKPT_OK,
               "%s", err.message);
  close_checkpointer(c);
  ckpt_args_delete(&args->base);

  static const char program[] =
      "import json, os, sys\n"
      "import numpy as np, zarr\n"
      "d = sys.argv[1]\n"
      "meta = json.load(open(os.path.join(d, '_METADATA')))\n"
      "strings = json.load(open(os.path.join(d, '_strings.json')))\n"
      "tree = {}\n"
      "for entry in meta['tree_metadata'].values():\n"
      "    keys = [k['key'] for k in entry['key_metadata']]\n"
      "    param = '.'.join(keys)\n"
      "    if param in strings:\n"
      "        tree[param] = strings[param]\n"
      "    else:\n"
      "        a = zarr.open(os.path.join(d, param), mode='r')[...]\n"
      "        tree[param] = a.item() if a.ndim == 0 else a\n"
      "assert sorted(tree) == ['b', 'lr', 'name', 'step', 'w'], sorted(tree)\n"
      "assert tree['w'].dtype == np.float32 and tree['w'].shape == (3, 4)\n"
      "assert (tree['w'] == np.arange(12, dtype=np.float32).reshape(3, 4) + 0.5).all()\n"
      "assert (tree['b'] == np.arange(4, dtype=np.float32) - 1).all()\n"
      "assert tree['step'] == 42 and tree['lr'] == 0.125 and tree['name'] == 'mlp'\n"
      "assert meta['use_ocdbt'] is False and meta['use_zarr3'] is False\n"
      "ck = json.load(open(os.path.join(d, '_CHECKPOINT_METADATA')))\n"
      "assert ck['item_handlers'] == 'rec.SimpleHandler', ck['item_handlers']\n"
      "print('ok')\n";
  char out[8192];
  int rc = run_python(program, at("simple"), out, sizeof out);
  cr_assert_eq(rc, 0, "python: %s", out);
  cr_assert_str_eq(out, "ok\n");
  rec_Simple_free(&s);
}

/* A record written by Python (zarr-python + json, Orbax's layout) restores in C. */
Test(record_handler, python_written_record_restores) {
  static const char program[] =
      "import json, os, sys\n"
      "import numpy as np, zarr\n"
      "d = sys.argv[1]\n"
      "os.makedirs(d)\n"
      "tree = {}\n"
      "def put(key, value, vt):\n"
      "    if vt != 'string':\n"
      "        v = np.asarray(value)\n"
      "        z = zarr.open(os.path.join(d, key), mode='w', shape=v.shape, chunks=v.shape or "
      "None,\n"
      "                      dtype=v.dtype, compressor=None, fill_value=None,\n"
      "                      dimension_separator='.')\n"
      "        z[...] = v\n"
      "    tree[\"('%s',)\" % key] = {'key_metadata': [{'key': key, 'key_type': 2}],\n"
      "                              'value_metadata': {'value_type': vt,\n"
      "                                                 'skip_deserialize': False}}\n"
      "put('step', 7, 'scalar')\n"
      "put('lr', 0.5, 'scalar')\n"
      "put('w', np.arange(10, dtype=np.float32).reshape(2, 5), 'np.ndarray')\n"
      "put('b', np.ones(5, dtype=np.float32), 'np.ndarray')\n"
      "put('name', None, 'string')\n"
      "json.dump({'name': 'from-python'}, open(os.path.join(d, '_strings.json'), 'w'))\n"
      "json.dump({'tree_metadata': tree, 'use_ocdbt': False, 'use_zarr3': False,\n"
      "           'store_array_data_equal_to_fill_value': True, 'custom_metadata': None},\n"
      "          open(os.path.join(d, '_METADATA'), 'w'))\n"
      "json.dump({'item_handlers': 'rec.SimpleHandler', 'metrics': {}, 'performance_metrics': {},\n"
      "           'init_timestamp_nsecs': 1, 'commit_timestamp_nsecs': 2,\n"
      "           'custom_metadata': {}}, open(os.path.join(d, '_CHECKPOINT_METADATA'), 'w'))\n"
      "open(os.path.join(d, 'commit_success.txt'), 'w').write('ok')\n"
      "print('ok')\n";
  char out[8192];
  int rc = run_python(program, at("py"), out, sizeof out);
  cr_assert_eq(rc, 0, "python: %s", out);

  ckpt_checkpointer *c = checkpointer(&rec_SimpleHandler_desc);
  ckpt_value v;
  memset(&v, 0, sizeof v);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_restore(c, at("py"), NULL, &v, &err), CKPT_OK, "%s", err.message);
  close_checkpointer(c);
  cr_assert_eq(v.kind, CKPT_VALUE_RECORD);
  const rec_Simple *s = v.u.record.data;
  cr_assert_eq(s->step, 7, "Python's int64 fits the int64 field");
  cr_assert_eq(s->lr, 0.5);
  cr_assert_str_eq(s->name, "from-python");
  cr_assert_eq(s->w->shape[0], 2);
  cr_assert_eq(s->w->shape[1], 5);
  cr_assert_eq(((float *)ckpt_array_data(s->w))[9], 9.0f);
  cr_assert_eq(((float *)ckpt_array_data(s->b))[4], 1.0f);
  ckpt_value_free(&v);
}

/* ------------------------------------------------------------------ targets */

/* With a target, its arrays' dtype, shape and shard boxes are what the restore produces; the
 * target itself is not written to. */
Test(record_handler, target_gives_shards) {
  rec_TrainState s;
  fx_train_state(&s);
  save_state(at("ckpt"), &s);

  rec_TrainState target;
  fx_train_state(&target);
  ckpt_array_free(target.w1);
  int64_t shape[2] = {5, 4}, off0[2] = {0, 0}, off1[2] = {3, 0}, box0[2] = {3, 4}, box1[2] = {2, 4};
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_array_new_sharded(CKPT_DTYPE_FLOAT32, 2, shape, &target.w1, &err), CKPT_OK);
  cr_assert_eq(ckpt_array_add_shard(target.w1, off0, box0, NULL, 0, &err), CKPT_OK);
  cr_assert_eq(ckpt_array_add_shard(target.w1, off1, box1, NULL, 0, &err), CKPT_OK);

  rec_TrainState *back = NULL;
  cr_assert_eq(restore_state(at("ckpt"), &target, true, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(back->w1->n_shards, 2);
  cr_assert_eq(back->w1->shards[1].offset[0], 3);
  cr_assert_eq(back->w1->shards[1].shape[0], 2);
  const float *rows34 = back->w1->shards[1].data;
  cr_assert_eq(rows34[0], 13.0f, "element (3, 0) of w1 is 1 + 12");
  cr_assert_neq(back->w1->shards[0].data, target.w1->shards[0].data);
  cr_assert_eq(((float *)target.w1->shards[0].data)[0], 0.0f, "the target was not written");
  cr_assert(ckpt_array_equal(back->b1, s.b1));
  cr_assert_str_eq(back->hparams.optimizer, "sgd");
  free_state(back);
  rec_TrainState_free(&target);
  rec_TrainState_free(&s);
}

/* strict = false pads (or truncates) arrays whose target shape differs; strict refuses. */
Test(record_handler, non_strict_pads_to_target) {
  rec_TrainState s;
  fx_train_state(&s);
  save_state(at("ckpt"), &s);
  rec_TrainState target;
  fx_train_state(&target);
  ckpt_array_free(target.w1);
  target.w1 = fx_f32(7, 4, 0);
  rec_TrainState *back = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_neq(restore_state(at("ckpt"), &target, true, &back, &err), CKPT_OK);
  cr_assert(strstr(err.message, "w1") != NULL, "%s", err.message);
  cr_assert_null(back);
  ckpt_error err2 = CKPT_ERROR_INIT;
  cr_assert_eq(restore_state(at("ckpt"), &target, false, &back, &err2), CKPT_OK, "%s",
               err2.message);
  cr_assert_eq(back->w1->shape[0], 7);
  const float *w1 = ckpt_array_data(back->w1);
  cr_assert_eq(w1[19], 20.0f);
  cr_assert_eq(w1[20], 0.0f, "padded rows are zero");
  free_state(back);
  rec_TrainState_free(&target);
  rec_TrainState_free(&s);
}

/* ------------------------------------------------------------------ bad checkpoints */

/* Writes a Simple-shaped tree straight through the PyTree engine (as a foreign or older writer
 * could), then restores it with SimpleHandler called directly. */
static ckpt_status restore_foreign(ckpt_tree *tree, ckpt_error *err) {
  ckpt_error werr = CKPT_ERROR_INIT;
  cr_assert_eq(mkdir(at("foreign"), 0777), 0);
  ckpt_pytree_save_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.tree = tree;
  cr_assert_eq(ckpt_pytree_save_sync(ckpt_io_default(), false, at("foreign"), &spec, &werr),
               CKPT_OK, "%s", werr.message);
  ckpt_tree_free(tree);
  ckpt_op *op = NULL;
  cr_assert_eq(ckpt_op_new(NULL, false, CKPT_ATOMICITY_RENAME, &op, &werr), CKPT_OK);
  ckpt_handler *h = NULL;
  cr_assert_eq(ckpt_handler_create(&rec_SimpleHandler_desc, &h, &werr), CKPT_OK);
  ckpt_value v;
  memset(&v, 0, sizeof v);
  ckpt_status st = h->desc->vtable->restore(h, op, at("foreign"), NULL, &v, err);
  if (st == CKPT_OK)
    ckpt_value_free(&v);
  ckpt_handler_destroy(h);
  ckpt_op_free(op);
  return st;
}

static ckpt_tree *simple_tree(int64_t rows, int64_t h, int64_t hb) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = ckpt_tree_new_dict();
  cr_assert_eq(ckpt_tree_dict_set(t, "step", ckpt_tree_new_int(CKPT_DTYPE_INT64, 1), &err),
               CKPT_OK);
  cr_assert_eq(ckpt_tree_dict_set(t, "w", ckpt_tree_new_array(fx_f32(rows, h, 0)), &err), CKPT_OK);
  cr_assert_eq(ckpt_tree_dict_set(t, "b", ckpt_tree_new_array(fx_f32(hb, -1, 0)), &err), CKPT_OK);
  cr_assert_eq(ckpt_tree_dict_set(t, "name", ckpt_tree_new_string("x"), &err), CKPT_OK);
  cr_assert_eq(ckpt_tree_dict_set(t, "lr", ckpt_tree_new_float(CKPT_DTYPE_FLOAT64, 1), &err),
               CKPT_OK);
  return t;
}

static void expect_suffix(const char *message, const char *suffix) {
  size_t m = strlen(message), s = strlen(suffix);
  cr_assert(m >= s && strcmp(message + m - s, suffix) == 0, "message \"%s\" does not end in \"%s\"",
            message, suffix);
  cr_assert(strstr(message, tmpdir) != NULL, "message names no directory: %s", message);
}

Test(record_handler, restore_tied_dim_mismatch) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(restore_foreign(simple_tree(2, 64, 32), &err), CKPT_EMISMATCH);
  expect_suffix(err.message, "Simple.b: dim 0 (H) is 32 but Simple.w has H = 64");
}

Test(record_handler, restore_wrong_dtype) {
  ckpt_tree *t = simple_tree(2, 4, 4);
  int64_t shape[1] = {4};
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_tree_dict_set(
                   t, "b", ckpt_tree_new_array(fx_array(CKPT_DTYPE_INT32, 1, shape, 0)), &err),
               CKPT_OK);
  cr_assert_eq(restore_foreign(t, &err), CKPT_ETYPE);
  expect_suffix(err.message, "Simple.b: dtype is int32 but the schema says float32");
}

Test(record_handler, restore_missing_field) {
  ckpt_tree *t = simple_tree(2, 4, 4);
  cr_assert(ckpt_tree_dict_remove(t, "name"));
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(restore_foreign(t, &err), CKPT_EMISMATCH);
  expect_suffix(err.message, "Simple.name: missing (a required field of rec.Simple)");
}

Test(record_handler, restore_corrupt_metadata) {
  rec_Simple s;
  fill_simple(&s, 2, 2);
  ckpt_checkpointer *c = checkpointer(&rec_SimpleHandler_desc);
  rec_SimpleSave *args = rec_SimpleSave_new();
  args->item = &s;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_save(c, at("s"), &args->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  close_checkpointer(c);
  ckpt_args_delete(&args->base);
  rec_Simple_free(&s);
  FILE *f = fopen(at("s/_METADATA"), "w");
  fputs("{\"tree_metadata\": {\"('w',)\": ", f);
  fclose(f);
  c = checkpointer(&rec_SimpleHandler_desc);
  ckpt_value v;
  memset(&v, 0, sizeof v);
  ckpt_error err2 = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_restore(c, at("s"), NULL, &v, &err2), CKPT_ECORRUPT);
  cr_assert(strstr(err2.message, "_METADATA") != NULL, "%s", err2.message);
  cr_assert_eq(v.kind, CKPT_VALUE_NONE);
  close_checkpointer(c);
}

/* Map keys become parameter (file) names: a hostile key never writes outside the checkpoint;
 * the engine either refuses it or escapes it so that it reads back unchanged. */
Test(record_handler, hostile_map_key) {
  rec_TrainState s;
  fx_train_state(&s);
  free(s.adam_m[0].key);
  s.adam_m[0].key = strdup("../../escaped");
  ckpt_checkpointer *c = checkpointer(&rec_TrainStateHandler_desc);
  rec_TrainStateSave *args = rec_TrainStateSave_new();
  args->item = &s;
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_status st = ckpt_checkpointer_save(c, at("sub/ckpt"), &args->base, false, NULL, &err);
  close_checkpointer(c);
  ckpt_args_delete(&args->base);
  cr_assert_not(exists(at("escaped")), "a file escaped the checkpoint directory");
  cr_assert_not(exists(at("sub/escaped")), "a file escaped the checkpoint directory");
  if (st != CKPT_OK) {
    cr_assert_eq(st, CKPT_EUNSAFE, "%s: %s", ckpt_status_name(st), err.message);
    cr_assert_not(exists(at("sub/ckpt")));
  } else {
    rec_TrainState *back = NULL;
    cr_assert_eq(restore_state(at("sub/ckpt"), NULL, true, &back, &err), CKPT_OK, "%s",
                 err.message);
    cr_assert(rec_TrainState_equal(&s, back), "the escaped key did not read back unchanged");
    free_state(back);
  }
  rec_TrainState_free(&s);
}

/* ------------------------------------------------------------------ misuse */

Test(record_handler, wrong_args_and_null_item) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_op *op = NULL;
  cr_assert_eq(ckpt_op_new(NULL, false, CKPT_ATOMICITY_RENAME, &op, &err), CKPT_OK);
  ckpt_handler *h = NULL;
  cr_assert_eq(ckpt_handler_create(&rec_TrainStateHandler_desc, &h, &err), CKPT_OK);
  rec_SimpleSave *other = rec_SimpleSave_new();
  ckpt_error e1 = CKPT_ERROR_INIT;
  cr_assert_eq(h->desc->vtable->save(h, op, tmpdir, &other->base, &e1), CKPT_ETYPE);
  cr_assert_str_eq(e1.message,
                   "TrainStateHandler: args SimpleSave are not TrainStateSave args "
                   "of record rec.TrainState");
  rec_TrainStateSave *mine = rec_TrainStateSave_new();
  ckpt_error e2 = CKPT_ERROR_INIT;
  cr_assert_eq(h->desc->vtable->save(h, op, tmpdir, &mine->base, &e2), CKPT_EINVAL);
  cr_assert(strstr(e2.message, "item is NULL") != NULL, "%s", e2.message);
  ckpt_args_delete(&mine->base);
  ckpt_args_delete(&other->base);
  ckpt_handler_destroy(h);
  ckpt_op_free(op);
}

/* A record item inside a Composite, restored with no args through the typestr the checkpoint
 * recorded (the generated handler's default typestr "rec.TrainStateHandler"). */
Test(record_handler, composite_item_restores_by_typestr) {
  rec_TrainState s;
  fx_train_state(&s);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_Composite *c = ckpt_composite_new();
  rec_TrainStateSave *args = rec_TrainStateSave_new();
  args->item = &s;
  cr_assert_eq(ckpt_composite_add(c, "state", &args->base, &err), CKPT_OK, "%s", err.message);
  ckpt_checkpointer *cp = checkpointer(NULL);
  cr_assert_eq(ckpt_checkpointer_save(cp, at("step"), &c->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  close_checkpointer(cp);
  ckpt_args_delete(&c->base);
  cp = checkpointer(NULL);
  ckpt_value v;
  memset(&v, 0, sizeof v);
  cr_assert_eq(ckpt_checkpointer_restore(cp, at("step"), NULL, &v, &err), CKPT_OK, "%s",
               err.message);
  close_checkpointer(cp);
  const ckpt_value *item = ckpt_value_item_get(&v, "state");
  cr_assert(item && item->kind == CKPT_VALUE_RECORD);
  cr_assert(rec_TrainState_equal(&s, item->u.record.data));
  ckpt_value_free(&v);
  rec_TrainState_free(&s);
}
