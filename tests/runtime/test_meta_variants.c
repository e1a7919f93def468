/* test_meta_variants.c — checkpoints in the shapes other Orbax versions leave them: the v1
 * API's typestrs, data.json and descriptor item, a root `orbax.checkpoint` file,
 * _CHECKPOINT_METADATA missing or partial, _METADATA missing (the tree rebuilt from the
 * arrays), and the legacy msgpack aggregate file (built by tests/runtime/orbax_legacy.py in
 * Flax's exact encoding). Each starts from a ckpt save and edits or adds Orbax's files, then
 * restores through the public API; the real Orbax checkpoints of ../shared/orbax-fixtures are
 * used where their metadata files suffice. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ckpt/ckpt.h"
#include "core/orbax_handlers.h"
#include "core_fixture.h"
#include "storage/aggregate.h"

#define PEER CKPT_PYTHON " " CKPT_SOURCE_DIR "/tests/runtime/orbax_legacy.py"
#define ORBAX_FIXTURES CKPT_SOURCE_DIR "/../shared/orbax-fixtures"

#define V1 "orbax.checkpoint.experimental.v1._src.handlers."
#define V0 "orbax.checkpoint._src.handlers."

static ckpt_checkpointer *ckptr(const ckpt_handler_desc *h) {
  ckpt_checkpointer_options o = CKPT_CHECKPOINTER_OPTIONS_INIT;
  ckpt_checkpointer *c = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_new(h, &o, &c, &err), CKPT_OK, "%s", err.message);
  return c;
}

static void close_ok(ckpt_checkpointer *c) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
}

static ckpt_tree *arr_f32(int64_t n, float base) {
  int64_t shape[1] = {n};
  ckpt_array *a;
  cr_assert_eq(ckpt_array_new(CKPT_DTYPE_FLOAT32, 1, shape, &a, NULL), CKPT_OK);
  float *d = ckpt_array_data(a);
  for (int64_t i = 0; i < n; i++)
    d[i] = base + (float)i;
  return ckpt_tree_new_array(a);
}

/* {"layer0": {"w": float32[4] from 1, "b": float32[2] from 10}, "step": int64 7} */
static ckpt_tree *small_tree(void) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree *t = ckpt_tree_new_dict(), *l0 = ckpt_tree_new_dict();
  cr_assert_eq(ckpt_tree_dict_set(l0, "w", arr_f32(4, 1), &err), CKPT_OK);
  cr_assert_eq(ckpt_tree_dict_set(l0, "b", arr_f32(2, 10), &err), CKPT_OK);
  cr_assert_eq(ckpt_tree_dict_set(t, "layer0", l0, &err), CKPT_OK);
  cr_assert_eq(ckpt_tree_dict_set(t, "step", ckpt_tree_new_int(CKPT_DTYPE_INT64, 7), &err),
               CKPT_OK);
  return t;
}

/* A Composite checkpoint at path: `params` (StandardSave of small_tree) and `cfg` (JSON). */
static void save_composite(const char *path) {
  ckpt_checkpointer *c = ckptr(NULL);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_Composite *args = ckpt_composite_new();
  ckpt_StandardSave *s = ckpt_StandardSave_new();
  s->item = small_tree();
  ckpt_JsonSave *j = ckpt_JsonSave_new();
  j->item = cJSON_Parse("{\"lr\": 0.5}");
  cr_assert_eq(ckpt_composite_add(args, "params", &s->base, &err), CKPT_OK);
  cr_assert_eq(ckpt_composite_add(args, "cfg", &j->base, &err), CKPT_OK);
  cr_assert_eq(ckpt_checkpointer_save(c, path, &args->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  ckpt_args_delete(&args->base);
  close_ok(c);
}

static void sh(const char *fmt, const char *a, const char *b) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, fmt, a, b);
  free(cf_run(cmd));
}

static float f32_at(const ckpt_tree *t, const char *path, size_t i) {
  ckpt_tree *n = ckpt_tree_get(t, path);
  cr_assert_not_null(n, "no leaf %s", path);
  ckpt_array *a = ckpt_tree_array(n);
  cr_assert_not_null(a, "%s is a %s", path, ckpt_node_kind_name(ckpt_tree_kind(n)));
  cr_assert_eq(a->dtype, CKPT_DTYPE_FLOAT32, "%s", path);
  return ((float *)ckpt_array_data(a))[i];
}

/* The composite rewritten as Orbax's v1 API leaves it: v1 typestrs, a descriptor item without
 * its directory, the JSON item in data.json, an `orbax.checkpoint` file at the root, and no
 * ckpt manifest (Orbax writes none; the edits would not match it). */
static void make_v1(const char *path) {
  sh(CKPT_PYTHON " -c \"import json,os,sys; p=sys.argv[1]; f=os.path.join(p,'_CHECKPOINT_METADATA'); "
                 "m=json.load(open(f)); m['item_handlers']={'params': '" V1
                 "pytree_handler.PyTreeHandler', 'cfg': '" V1 "json_handler.JsonHandler', "
                 "'descriptor': '" V1 "descriptor_handler.DescriptorHandler'}; "
                 "json.dump(m, open(f,'w')); os.rename(os.path.join(p,'cfg','metadata'), "
                 "os.path.join(p,'cfg','data.json')); open(os.path.join(p,'orbax.checkpoint'),'w'); "
                 "os.remove(os.path.join(p,'_CHECKPOINT_CHECKSUMS'))\" '%s'%s",
     path, "");
}

static void check_restored_composite(const ckpt_value *v) {
  cr_assert_eq(v->kind, CKPT_VALUE_COMPOSITE);
  cr_assert_eq(v->u.composite.count, 2, "items: %zu", v->u.composite.count);
  const ckpt_value *p = ckpt_value_item_get(v, "params");
  const ckpt_value *cfg = ckpt_value_item_get(v, "cfg");
  cr_assert(p != NULL && p->kind == CKPT_VALUE_TREE);
  cr_assert(cfg != NULL && cfg->kind == CKPT_VALUE_JSON);
  cr_assert_eq(f32_at(p->u.tree, "layer0.w", 3), 4.0f);
  cr_assert_eq(f32_at(p->u.tree, "layer0.b", 1), 11.0f);
  cr_assert_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(cfg->u.json, "lr")), 0.5);
}

Test(meta_variants, registry_resolves_every_orbax_spelling) {
  static const struct {
    const char *typestr;
    const ckpt_handler_desc *want;
  } cases[] = {
      {V0 "pytree_checkpoint_handler.PyTreeCheckpointHandler", &ckpt_PyTreeCheckpointHandler_desc},
      {V0 "standard_checkpoint_handler.StandardCheckpointHandler",
       &ckpt_StandardCheckpointHandler_desc},
      {V0 "json_checkpoint_handler.JsonCheckpointHandler", &ckpt_JsonCheckpointHandler_desc},
      /* before the _src move (orbax-checkpoint < 0.5) */
      {"orbax.checkpoint.pytree_checkpoint_handler.PyTreeCheckpointHandler",
       &ckpt_PyTreeCheckpointHandler_desc},
      {"orbax.checkpoint.json_checkpoint_handler.JsonCheckpointHandler",
       &ckpt_JsonCheckpointHandler_desc},
      {V1 "pytree_handler.PyTreeHandler", &ckpt_PyTreeCheckpointHandler_desc},
      {V1 "json_handler.JsonHandler", &ckpt_JsonCheckpointHandler_desc},
      {V1 "proto_handler.ProtoHandler", &ckpt_ProtoCheckpointHandler_desc},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const ckpt_handler_desc *h = NULL;
    ckpt_error err = CKPT_ERROR_INIT;
    cr_assert_eq(ckpt_get_handler_by_typestr(cases[i].typestr, &h, &err), CKPT_OK, "%s: %s",
                 cases[i].typestr, err.message);
    cr_assert_eq(h, cases[i].want, "%s", cases[i].typestr);
  }
  const ckpt_handler_desc *h = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_get_handler_by_typestr(V1 "descriptor_handler.DescriptorHandler", &h, &err),
               CKPT_EUNREGISTERED);
  cr_assert(strstr(err.message, "DescriptorHandler") && strstr(err.message, "no user data"), "%s",
            err.message);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_get_handler_by_typestr("orbax.checkpoint.x.NoSuchHandler", &h, &err),
               CKPT_EUNREGISTERED);
  ckpt_error_clear(&err);
  /* a namespace that merely starts like Orbax's is a program's own, not an alias */
  cr_assert_eq(ckpt_get_handler_by_typestr("orbax.checkpointx.PyTreeHandler", &h, &err),
               CKPT_EUNREGISTERED);
  ckpt_error_clear(&err);
  cr_assert(ckpt_orbax_is_descriptor(V1 "descriptor_handler.DescriptorHandler"));
  cr_assert(!ckpt_orbax_is_descriptor(V1 "json_handler.JsonHandler"));
  cr_assert_null(ckpt_orbax_handler_find(NULL));
}

Test(meta_variants, v1_composite_restores_without_args) {
  char *dir = cf_tmpdir();
  char *path = cf_join(dir, "ck");
  save_composite(path);
  make_v1(path);
  /* the descriptor's directory, when Orbax left it: not user data, never restored */
  char *desc = cf_join(path, "descriptor");
  cr_assert_eq(mkdir(desc, 0755), 0);
  char *desc_file = cf_join(desc, "descriptor.pbtxt");
  cf_write(desc_file, "x: 1\n");
  free(desc_file);
  free(desc);
  ckpt_checkpointer *c = ckptr(NULL);
  ckpt_value v;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_restore(c, path, NULL, &v, &err), CKPT_OK, "%s", err.message);
  check_restored_composite(&v);
  ckpt_value_free(&v);
  /* with args for the JSON item only: data.json found by the default JsonRestore */
  ckpt_Composite *args = ckpt_composite_new();
  cr_assert_eq(ckpt_composite_add(args, "cfg", &ckpt_JsonRestore_new()->base, &err), CKPT_OK);
  ckpt_checkpointer *c2 = ckptr(NULL);
  cr_assert_eq(ckpt_checkpointer_restore(c2, path, &args->base, &v, &err), CKPT_OK, "%s",
               err.message);
  cr_assert_eq(v.u.composite.count, 1);
  ckpt_value_free(&v);
  ckpt_args_delete(&args->base);
  close_ok(c2);
  /* an item listed with a real handler whose directory is gone still fails the restore-all */
  char *cfg = cf_join(path, "cfg");
  cf_rmtree(cfg);
  cr_assert_eq(ckpt_checkpointer_restore(c, path, NULL, &v, &err), CKPT_EINCOMPLETE);
  cr_assert(strstr(err.message, "\"cfg\""), "%s", err.message);
  cr_assert(!strstr(err.message, "\"descriptor\" is named"), "%s", err.message);
  close_ok(c);
  free(cfg);
  cf_rmtree(dir);
  free(path);
  free(dir);
}

Test(meta_variants, manager_restores_a_v1_step_without_args) {
  char *dir = cf_tmpdir();
  char *step = cf_join(dir, "3");
  save_composite(step);
  make_v1(step);
  ckpt_manager_options o = CKPT_MANAGER_OPTIONS_INIT;
  o.sync = true;
  ckpt_manager *m;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_manager_new(dir, &o, &m, &err), CKPT_OK, "%s", err.message);
  ckpt_value v;
  cr_assert_eq(ckpt_manager_restore(m, 3, NULL, &v, &err), CKPT_OK, "%s", err.message);
  check_restored_composite(&v);
  ckpt_value_free(&v);
  /* without _CHECKPOINT_METADATA (finalized by its commit file): handlers from the files */
  char *meta = cf_join(step, "_CHECKPOINT_METADATA");
  cr_assert_eq(remove(meta), 0);
  cr_assert_eq(ckpt_manager_restore(m, 3, NULL, &v, &err), CKPT_OK, "%s", err.message);
  check_restored_composite(&v);
  ckpt_value_free(&v);
  free(meta);
  cr_assert_eq(ckpt_manager_close(m, &err), CKPT_OK, "%s", err.message);
  cf_rmtree(dir);
  free(step);
  free(dir);
}

Test(meta_variants, checkpoint_metadata_missing_or_partial) {
  char *dir = cf_tmpdir();
  char *path = cf_join(dir, "ck");
  char *meta = cf_join(path, "_CHECKPOINT_METADATA");
  save_composite(path);
  sh(CKPT_PYTHON " -c \"import os,sys; os.remove(sys.argv[1])\" '%s/_CHECKPOINT_CHECKSUMS'%s",
     path, "");
  /* keys missing: only the commit timestamp left (item_handlers, metrics, ... absent) */
  cf_write(meta, "{\"commit_timestamp_nsecs\": 1778718341620521635}");
  ckpt_checkpointer *c = ckptr(NULL);
  ckpt_value v;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_restore(c, path, NULL, &v, &err), CKPT_OK, "%s", err.message);
  check_restored_composite(&v);
  ckpt_value_free(&v);
  cJSON *md = NULL;
  cr_assert_eq(ckpt_checkpointer_metadata(c, path, &md, &err), CKPT_OK, "%s", err.message);
  cJSON_Delete(md);
  /* the file missing altogether (Orbax before step metadata): handlers from the items' files */
  cr_assert_eq(remove(meta), 0);
  cr_assert_eq(ckpt_checkpointer_restore(c, path, NULL, &v, &err), CKPT_OK, "%s", err.message);
  check_restored_composite(&v);
  ckpt_value_free(&v);
  close_ok(c);
  /* item_handlers a string: a single-handler checkpoint (StandardCheckpointer) */
  char *single = cf_join(dir, "single");
  ckpt_checkpointer *s = ckptr(&ckpt_StandardCheckpointHandler_desc);
  ckpt_StandardSave *a = ckpt_StandardSave_new();
  a->item = small_tree();
  cr_assert_eq(ckpt_checkpointer_save(s, single, &a->base, false, NULL, &err), CKPT_OK);
  ckpt_args_delete(&a->base);
  char *smeta = cf_join(single, "_CHECKPOINT_METADATA");
  char *text = cf_slurp(smeta);
  cr_assert(strstr(text, "\"item_handlers\":\"" V0 "standard_checkpoint_handler."), "%s", text);
  free(text);
  cr_assert_eq(remove(smeta), 0);
  char *sums = cf_join(single, "_CHECKPOINT_CHECKSUMS");
  cr_assert_eq(remove(sums), 0);
  cr_assert_eq(ckpt_checkpointer_restore(s, single, NULL, &v, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(f32_at(v.u.tree, "layer0.w", 0), 1.0f);
  ckpt_value_free(&v);
  close_ok(s);
  free(sums);
  free(smeta);
  free(single);
  cf_rmtree(dir);
  free(meta);
  free(path);
  free(dir);
}

/* A StandardSave item whose _METADATA is gone: rebuilt from the arrays, names split at '.'. */
Test(meta_variants, no_metadata_rebuilds_the_tree_from_the_arrays) {
  char *dir = cf_tmpdir();
  char *path = cf_join(dir, "ck");
  ckpt_checkpointer *s = ckptr(&ckpt_PyTreeCheckpointHandler_desc);
  ckpt_PyTreeSave *a = ckpt_PyTreeSave_new();
  a->item = small_tree();
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_tree_dict_set(a->item, "name", ckpt_tree_new_string("run-1"), &err), CKPT_OK);
  cr_assert_eq(ckpt_checkpointer_save(s, path, &a->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  ckpt_args_delete(&a->base);
  sh(PEER " no-metadata '%s'%s", path, "");
  ckpt_value v;
  cr_assert_eq(ckpt_checkpointer_restore(s, path, NULL, &v, &err), CKPT_OK, "%s", err.message);
  const ckpt_tree *t = v.u.tree;
  cr_assert_eq(ckpt_tree_count(t), 3, "%zu", ckpt_tree_count(t));
  cr_assert_eq(ckpt_tree_kind(ckpt_tree_dict_get(t, "layer0")), CKPT_NODE_DICT);
  cr_assert_eq(f32_at(t, "layer0.w", 2), 3.0f);
  cr_assert_eq(f32_at(t, "layer0.b", 0), 10.0f);
  cr_assert_str_eq(ckpt_tree_string(ckpt_tree_dict_get(t, "name")), "run-1");
  /* without _METADATA a scalar is not told from a 0-d array: Orbax restores an ndarray */
  ckpt_array *step = ckpt_tree_array(ckpt_tree_dict_get(t, "step"));
  cr_assert(step != NULL && step->ndim == 0 && *(int64_t *)ckpt_array_data(step) == 7);
  ckpt_value_free(&v);
  /* array_metadatas/process_0 names the parameters (as Orbax writes it for jax.Arrays); one
   * whose array is missing fails the restore, naming it */
  char *amd = cf_join(path, "array_metadatas");
  cr_assert_eq(mkdir(amd, 0755), 0);
  char *proc = cf_join(amd, "process_0");
  cf_write(proc, "{\"array_metadatas\": [{\"array_metadata\": {\"param_name\": \"layer0.w\", "
                 "\"write_shape\": [4], \"chunk_shape\": [4], \"ext_metadata\": null}}, "
                 "{\"array_metadata\": {\"param_name\": \"layer1.w\", \"write_shape\": [2], "
                 "\"chunk_shape\": [2], \"ext_metadata\": null}}]}");
  cr_assert_neq(ckpt_checkpointer_restore(s, path, NULL, &v, &err), CKPT_OK);
  cr_assert(strstr(err.message, "layer1.w"), "%s", err.message);
  ckpt_error_clear(&err);
  cf_write(proc, "{\"array_metadatas\": 3}");
  cr_assert_eq(ckpt_checkpointer_restore(s, path, NULL, &v, &err), CKPT_ECORRUPT);
  cr_assert(strstr(err.message, "process_0"), "%s", err.message);
  close_ok(s);
  free(proc);
  free(amd);
  cf_rmtree(dir);
  free(path);
  free(dir);
}

static void scalar_is(const ckpt_tree *t, const char *path, ckpt_dtype dt, double want) {
  ckpt_scalar s;
  cr_assert(ckpt_tree_scalar(ckpt_tree_get(t, path), &s), "%s is not a scalar", path);
  cr_assert_eq(s.dtype, dt, "%s: dtype %s", path, ckpt_dtype_name(s.dtype));
  ckpt_dtype_class k = ckpt_dtype_class_of(dt);
  double got = k == CKPT_DTYPE_CLASS_BOOL       ? s.v.b
               : k == CKPT_DTYPE_CLASS_SIGNED   ? (double)s.v.i
               : k == CKPT_DTYPE_CLASS_UNSIGNED ? (double)s.v.u
                                                : s.v.f;
  cr_assert_eq(got, want, "%s: %g", path, got);
}

/* Every leaf in the aggregate file, no _METADATA: Orbax before 0.5 (and Flax's own files). */
Test(meta_variants, aggregate_file_holds_every_leaf) {
  char *dir = cf_tmpdir();
  char *path = cf_join(dir, "ck");
  cr_assert_eq(mkdir(path, 0755), 0);
  sh(PEER " all '%s'%s", path, "");
  ckpt_checkpointer *c = ckptr(&ckpt_PyTreeCheckpointHandler_desc);
  ckpt_value v;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_restore(c, path, NULL, &v, &err), CKPT_OK, "%s", err.message);
  const ckpt_tree *t = v.u.tree;
  cr_assert_eq(f32_at(t, "params.w", 5), 1.25f);
  cr_assert_eq(f32_at(t, "params.b", 2), 3.25f);
  ckpt_array *bf = ckpt_tree_array(ckpt_tree_get(t, "params.bf"));
  cr_assert(bf != NULL && bf->dtype == CKPT_DTYPE_FLOAT16 && bf->shape[0] == 2);
  scalar_is(t, "step", CKPT_DTYPE_INT64, 1234);
  scalar_is(t, "lr", CKPT_DTYPE_FLOAT64, 0.125);
  scalar_is(t, "epochs", CKPT_DTYPE_INT64, 7);
  scalar_is(t, "big", CKPT_DTYPE_INT64, -1099511627776.0);
  scalar_is(t, "flag", CKPT_DTYPE_BOOL, 1);
  scalar_is(t, "pair.0", CKPT_DTYPE_UINT8, 5);
  /* a saved tuple comes back as a list, as from _METADATA (docs/format.md) */
  cr_assert_eq(ckpt_tree_kind(ckpt_tree_get(t, "pair")), CKPT_NODE_LIST);
  cr_assert_str_eq(ckpt_tree_string(ckpt_tree_get(t, "pair.1")), "x");
  cr_assert_str_eq(ckpt_tree_string(ckpt_tree_get(t, "name")), "run-7");
  const void *blob;
  size_t blen;
  cr_assert(ckpt_tree_bytes(ckpt_tree_get(t, "blob"), &blob, &blen));
  cr_assert(blen == 5 && memcmp(blob, "\0\1raw", 5) == 0);
  ckpt_array *z = ckpt_tree_array(ckpt_tree_get(t, "z"));
  cr_assert(z != NULL && z->dtype == CKPT_DTYPE_COMPLEX128 && z->ndim == 0);
  cr_assert(((double *)ckpt_array_data(z))[0] == 1.5 && ((double *)ckpt_array_data(z))[1] == -2.0);
  ckpt_array *mu = ckpt_tree_array(ckpt_tree_get(t, "opt.0.mu"));
  cr_assert(mu != NULL && mu->dtype == CKPT_DTYPE_INT32 && mu->shape[0] == 2 && mu->shape[1] == 2);
  cr_assert_eq(((int32_t *)ckpt_array_data(mu))[3], 4);
  cr_assert_eq(ckpt_tree_kind(ckpt_tree_get(t, "opt")), CKPT_NODE_LIST);
  cr_assert_eq(ckpt_tree_kind(ckpt_tree_get(t, "opt.1")), CKPT_NODE_NONE);
  cr_assert_eq(ckpt_tree_kind(ckpt_tree_get(t, "empty")), CKPT_NODE_DICT);
  cr_assert_eq(ckpt_tree_kind(ckpt_tree_get(t, "nothing")), CKPT_NODE_NONE);
  ckpt_value_free(&v);
  /* a target casts: params.w as float64, step as int32 */
  ckpt_PyTreeRestore *r = ckpt_PyTreeRestore_new();
  r->item = ckpt_tree_new_dict();
  ckpt_tree *params = ckpt_tree_new_dict();
  int64_t shape[2] = {2, 3};
  ckpt_array *w64;
  cr_assert_eq(ckpt_array_new(CKPT_DTYPE_FLOAT64, 2, shape, &w64, &err), CKPT_OK);
  cr_assert_eq(ckpt_tree_dict_set(params, "w", ckpt_tree_new_array(w64), &err), CKPT_OK);
  cr_assert_eq(ckpt_tree_dict_set(r->item, "params", params, &err), CKPT_OK);
  cr_assert_eq(ckpt_tree_dict_set(r->item, "step", ckpt_tree_new_int(CKPT_DTYPE_INT32, 0), &err),
               CKPT_OK);
  r->partial_restore = true;
  cr_assert_eq(ckpt_checkpointer_restore(c, path, &r->base, &v, &err), CKPT_OK, "%s",
               err.message);
  ckpt_array *w = ckpt_tree_array(ckpt_tree_get(v.u.tree, "params.w"));
  cr_assert(w != NULL && w->dtype == CKPT_DTYPE_FLOAT64);
  cr_assert_eq(((double *)ckpt_array_data(w))[5], 1.25);
  scalar_is(v.u.tree, "step", CKPT_DTYPE_INT32, 1234);
  ckpt_value_free(&v);
  ckpt_args_delete(&r->base);
  /* the metadata describes the rebuilt tree; aggregated leaves say so */
  cJSON *md = NULL;
  cr_assert_eq(ckpt_checkpointer_metadata(c, path, &md, &err), CKPT_OK, "%s", err.message);
  const cJSON *w_md = cJSON_GetObjectItem(
      cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(md, "item_metadata"), "tree"),
                          "params"),
      "w");
  cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(w_md, "aggregated")), "%s",
            w_md ? cJSON_GetStringValue(cJSON_GetObjectItem(w_md, "param")) : "no params.w");
  cJSON_Delete(md);
  close_ok(c);
  cf_rmtree(dir);
  free(path);
  free(dir);
}

/* Orbax's aggregate_some layout: a and b in zarr (placeholders in the file), c.* in the file. */
Test(meta_variants, aggregate_file_next_to_zarr_arrays) {
  char *dir = cf_tmpdir();
  char *path = cf_join(dir, "ck");
  ckpt_checkpointer *c = ckptr(&ckpt_PyTreeCheckpointHandler_desc);
  ckpt_PyTreeSave *a = ckpt_PyTreeSave_new();
  a->item = ckpt_tree_new_dict();
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_tree_dict_set(a->item, "a", arr_f32(8, 0), &err), CKPT_OK);
  cr_assert_eq(ckpt_tree_dict_set(a->item, "b", arr_f32(16, 100), &err), CKPT_OK);
  cr_assert_eq(ckpt_checkpointer_save(c, path, &a->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  ckpt_args_delete(&a->base);
  sh(PEER " mixed '%s'%s", path, "");
  ckpt_value v;
  cr_assert_eq(ckpt_checkpointer_restore(c, path, NULL, &v, &err), CKPT_OK, "%s", err.message);
  const ckpt_tree *t = v.u.tree;
  cr_assert_eq(f32_at(t, "a", 7), 7.0f);
  cr_assert_eq(f32_at(t, "b", 15), 115.0f);
  ckpt_array *ca = ckpt_tree_array(ckpt_tree_get(t, "c.a"));
  ckpt_array *ce = ckpt_tree_array(ckpt_tree_get(t, "c.e"));
  cr_assert(ca != NULL && ca->dtype == CKPT_DTYPE_INT64 && ca->shape[0] == 2 && ca->shape[1] == 4);
  cr_assert_eq(((int64_t *)ckpt_array_data(ca))[7], 21);
  cr_assert(ce != NULL && ce->shape[0] == 4 && ((int64_t *)ckpt_array_data(ce))[15] == 60);
  ckpt_value_free(&v);
  /* _METADATA says c.a is in the file, which is gone: an error, not a missing leaf */
  char *file = cf_join(path, "checkpoint");
  cr_assert_eq(remove(file), 0);
  cr_assert_eq(ckpt_checkpointer_restore(c, path, NULL, &v, &err), CKPT_ECORRUPT);
  cr_assert(strstr(err.message, "('c', 'a')") && strstr(err.message, "aggregate"), "%s",
            err.message);
  close_ok(c);
  free(file);
  cf_rmtree(dir);
  free(path);
  free(dir);
}

Test(meta_variants, aggregate_chunked_array) {
  char *dir = cf_tmpdir();
  sh(PEER " chunked '%s'%s", dir, "");
  ckpt_tree *t = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_aggregate_read(ckpt_io_default(), dir, &t, &err), CKPT_OK, "%s", err.message);
  ckpt_array *emb = ckpt_tree_array(ckpt_tree_get(t, "emb"));
  cr_assert(emb != NULL && emb->ndim == 2 && emb->shape[0] == 2 && emb->shape[1] == 5);
  for (int i = 0; i < 10; i++)
    cr_assert_eq(((float *)ckpt_array_data(emb))[i], (float)i);
  ckpt_scalar k;
  cr_assert(ckpt_tree_scalar(ckpt_tree_get(t, "k"), &k) && k.dtype == CKPT_DTYPE_INT32 &&
            k.v.i == 3);
  ckpt_tree_free(t);
  cf_rmtree(dir);
  free(dir);
}

static void parse_fails(const char *bytes, size_t n, ckpt_status want, const char *needle) {
  ckpt_tree *t = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_aggregate_parse(bytes, n, "ck/checkpoint", &t, &err), want, "%s",
               err.message);
  cr_assert_null(t);
  cr_assert(strstr(err.message, "ck/checkpoint") && strstr(err.message, needle), "%s",
            err.message);
}

Test(meta_variants, aggregate_untrusted_bytes) {
  parse_fails("", 0, CKPT_ECORRUPT, "empty");
  parse_fails("\x81\xa1", 2, CKPT_ECORRUPT, "truncated");
  /* array32 claiming 2^32-1 elements: refused before msgpack-c allocates slots for them */
  parse_fails("\xdd\xff\xff\xff\xff\x01", 6, CKPT_ECORRUPT, "claim more elements");
  parse_fails("\x81\xa1k\xde\xff\xff\x01", 7, CKPT_ECORRUPT, "claim more elements");
  parse_fails("\xc0\xc0", 2, CKPT_ECORRUPT, "after its msgpack object");
  /* {"w": ext1 [[4], "float32", 3 bytes]}: the bytes do not fill the shape */
  parse_fails("\x81\xa1w\xc7\x10\x01\x93\x91\x04\xa7" "float32\xc4\x03" "abc", 22, CKPT_ECORRUPT,
              "does not account for");
  /* dtype names ckpt does not know, or NumPy typestrs with a byte order */
  parse_fails("\xc7\x0b\x01\x93\x90\xa6object\xc4\x00", 14, CKPT_EUNSUPPORTED, "object");
  parse_fails("\xc7\x08\x01\x93\x90\xa3>i4\xc4\x00", 11, CKPT_EUNSUPPORTED, ">i4");
  parse_fails("\xd4\x09\x00", 3, CKPT_ECORRUPT, "extension type 9");
  parse_fails("\x81\xa2k\x00\x01", 5, CKPT_ECORRUPT, "NUL");
  parse_fails("\x81\xc0\x01", 3, CKPT_ECORRUPT, "neither a string nor an index");
  parse_fails("\x82\xa1k\x01\xa1k\x02", 7, CKPT_ECORRUPT, "twice");
  char nested[200];
  for (int i = 0; i < 150; i++)
    nested[i] = '\x91'; /* [[[[...]]]] */
  nested[150] = '\xc0';
  ckpt_tree *t = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_neq(ckpt_aggregate_parse(nested, 151, "ck/checkpoint", &t, &err), CKPT_OK);
  cr_assert_null(t);
}

/* The tree every fixture holds: a = [0..7], b.c = [1, 2, 3] (int32). */
static void check_fixture_tree(const ckpt_tree *t) {
  ckpt_array *a = ckpt_tree_array(ckpt_tree_get(t, "a"));
  ckpt_array *c = ckpt_tree_array(ckpt_tree_get(t, "b.c"));
  cr_assert(a != NULL && a->dtype == CKPT_DTYPE_INT32 && a->shape[0] == 8);
  cr_assert(c != NULL && c->shape[0] == 3);
  for (int i = 0; i < 8; i++)
    cr_assert_eq(((int32_t *)ckpt_array_data(a))[i], i);
  cr_assert_eq(((int32_t *)ckpt_array_data(c))[2], 3);
}

/* Real Orbax checkpoints of the v0 API restore without args through their typestrs: the
 * single-handler one (item_handlers a string) with a Standard checkpointer, the composite one
 * (PyTreeCheckpointHandler and JsonCheckpointHandler items) with a Composite checkpointer. */
Test(meta_variants, orbax_v0_fixtures_restore_without_args) {
  const char *std = ORBAX_FIXTURES "/v0_standard", *comp = ORBAX_FIXTURES "/v0_composite";
  if (!cf_exists(std))
    cr_skip_test("Orbax fixtures not found at %s: test skipped", ORBAX_FIXTURES);
  ckpt_checkpointer *s = ckptr(&ckpt_StandardCheckpointHandler_desc);
  ckpt_value v;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_checkpointer_restore(s, std, NULL, &v, &err), CKPT_OK, "%s", err.message);
  check_fixture_tree(v.u.tree);
  ckpt_value_free(&v);
  close_ok(s);
  ckpt_checkpointer *c = ckptr(NULL);
  cr_assert_eq(ckpt_checkpointer_restore(c, comp, NULL, &v, &err), CKPT_OK, "%s", err.message);
  const ckpt_value *state = ckpt_value_item_get(&v, "state");
  const ckpt_value *m = ckpt_value_item_get(&v, "metadata");
  cr_assert(state != NULL && state->kind == CKPT_VALUE_TREE);
  check_fixture_tree(state->u.tree);
  cr_assert(m != NULL && m->kind == CKPT_VALUE_JSON);
  cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(m->u.json, "metadata")), "json_data");
  ckpt_value_free(&v);
  close_ok(c);
}

/* The v1 one: its JSON item restores from data.json; a restore without args never fails on the
 * descriptor it lists without a directory (its state item's zarr3 arrays restore once ckpt
 * reads zarr3; until then that item alone is the error). */
Test(meta_variants, orbax_fixtures_metadata) {
  const char *v1 = ORBAX_FIXTURES "/v1_composite_zarr3";
  if (!cf_exists(v1))
    cr_skip_test("Orbax fixtures not found at %s: test skipped", ORBAX_FIXTURES);
  ckpt_checkpointer *c = ckptr(NULL);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_Composite *args = ckpt_composite_new();
  cr_assert_eq(ckpt_composite_add(args, "metadata", &ckpt_JsonRestore_new()->base, &err), CKPT_OK);
  ckpt_value v;
  cr_assert_eq(ckpt_checkpointer_restore(c, v1, &args->base, &v, &err), CKPT_OK, "%s",
               err.message);
  const ckpt_value *m = ckpt_value_item_get(&v, "metadata");
  cr_assert(m != NULL && m->kind == CKPT_VALUE_JSON);
  cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(m->u.json, "metadata")), "json_data");
  ckpt_value_free(&v);
  ckpt_args_delete(&args->base);
  if (ckpt_checkpointer_restore(c, v1, NULL, &v, &err) == CKPT_OK) {
    cr_assert_eq(v.u.composite.count, 2);
    check_fixture_tree(ckpt_value_item_get(&v, "state")->u.tree);
    ckpt_value_free(&v);
  } else {
    cr_assert(strstr(err.message, "item \"state\"") && strstr(err.message, "zarr3"), "%s",
              err.message);
    cr_assert(!strstr(err.message, "descriptor"), "%s", err.message);
  }
  ckpt_error_clear(&err);
  cJSON *md = NULL;
  cr_assert_eq(ckpt_checkpointer_metadata(c, v1, &md, &err), CKPT_OK, "%s", err.message);
  const cJSON *ih = cJSON_GetObjectItem(cJSON_GetObjectItem(md, "step_metadata"), "item_handlers");
  cr_assert(cJSON_IsObject(ih) && cJSON_GetArraySize(ih) == 3);
  cJSON_Delete(md);
  close_ok(c);
}
