/* test_record_tree.c — generated records ⇄ ckpt_tree (ckpt_record_to_tree / _from_tree):
 * every field kind, and the validation errors with the exact field paths they name. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record_fixture.h"
#include "handlers/record_tree.h"

static ckpt_tree *to_tree(const rec_TrainState *s, bool copy) {
  ckpt_tree *t = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_record_to_tree(&rec_TrainState_desc, s, copy, &t, &err), CKPT_OK, "%s",
               err.message);
  return t;
}

/* from_tree into a fresh record; returns the status and leaves the message in err. */
static ckpt_status from_tree(const ckpt_tree *t, rec_TrainState *out, ckpt_error *err) {
  cr_assert_eq(rec_TrainState_init(out), CKPT_OK);
  return ckpt_record_from_tree(&rec_TrainState_desc, t, out, err);
}

static void expect_error(const ckpt_tree *t, ckpt_status code, const char *message) {
  rec_TrainState back;
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_status st = from_tree(t, &back, &err);
  cr_assert_eq(st, code, "expected %s, got %s: %s", ckpt_status_name(code), ckpt_status_name(st),
               err.message);
  cr_assert_str_eq(err.message, message);
  rec_TrainState_free(&back);
}

static void replace(ckpt_tree *dict, const char *key, ckpt_tree *child) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_tree_dict_set(dict, key, child, &err), CKPT_OK, "%s", err.message);
}

Test(record_tree, round_trip_every_kind) {
  rec_TrainState s, back;
  fx_train_state(&s);
  ckpt_tree *t = to_tree(&s, true);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(from_tree(t, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert(rec_TrainState_equal(&s, &back), "the restored record differs");
  cr_assert_str_eq(back.hparams.optimizer, "sgd");
  cr_assert_str_eq(back.run_info->host, "node-7");
  cr_assert_eq(back.np_rng->cached_gaussian, -0.75);
  cr_assert(back.key->typed);
  cr_assert_str_eq(back.key->impl, "threefry2x32");
  rec_TrainState_free(&back);
  ckpt_tree_free(t);
  rec_TrainState_free(&s);
}

/* The tree a record becomes is what Python sees: check the leaf kinds field by field. */
Test(record_tree, tree_shape) {
  rec_TrainState s;
  fx_train_state(&s);
  s.has_best_loss = false;
  free(s.comment);
  s.comment = NULL;
  ckpt_tree *t = to_tree(&s, true);
  ckpt_scalar sc;

  cr_assert_eq(ckpt_tree_kind(t), CKPT_NODE_DICT);
  cr_assert_null(ckpt_tree_dict_get(t, "best_loss"), "an absent optional has no key");
  cr_assert_null(ckpt_tree_dict_get(t, "comment"));
  cr_assert(ckpt_tree_scalar(ckpt_tree_dict_get(t, "step"), &sc));
  cr_assert_eq(sc.dtype, CKPT_DTYPE_INT64);
  cr_assert_eq(sc.v.i, 1234567890123);
  cr_assert(ckpt_tree_scalar(ckpt_tree_dict_get(t, "u64"), &sc));
  cr_assert_eq(sc.dtype, CKPT_DTYPE_UINT64);
  cr_assert_eq(sc.v.u, UINT64_MAX);
  cr_assert(ckpt_tree_scalar(ckpt_tree_dict_get(t, "done"), &sc));
  cr_assert_eq(sc.dtype, CKPT_DTYPE_BOOL);
  cr_assert(ckpt_tree_scalar(ckpt_tree_dict_get(t, "f32"), &sc));
  cr_assert_eq(sc.dtype, CKPT_DTYPE_FLOAT32);
  cr_assert_eq(sc.v.f, 3.25);

  const ckpt_array *w1 = ckpt_tree_array(ckpt_tree_dict_get(t, "w1"));
  cr_assert_not_null(w1);
  cr_assert(ckpt_array_equal(w1, s.w1));
  cr_assert_eq(ckpt_tree_kind(ckpt_tree_dict_get(t, "hparams")), CKPT_NODE_DICT);
  cr_assert_str_eq(ckpt_tree_string(ckpt_tree_get(t, "hparams.optimizer")), "sgd");
  cr_assert_eq(ckpt_tree_kind(ckpt_tree_dict_get(t, "buffers")), CKPT_NODE_LIST);
  cr_assert_eq(ckpt_tree_count(ckpt_tree_dict_get(t, "buffers")), 2);
  cr_assert_not_null(ckpt_tree_array(ckpt_tree_get(t, "layers.1.w")));
  cr_assert_not_null(ckpt_tree_array(ckpt_tree_get(t, "adam_m.w1")));
  cr_assert_not_null(ckpt_tree_get(t, "per_task.seg.batch_size"));

  /* json → its text; bytes and proto → 1-d uint8 arrays. */
  cJSON *notes = cJSON_Parse(ckpt_tree_string(ckpt_tree_dict_get(t, "notes")));
  cr_assert(cJSON_Compare(notes, s.notes, true));
  cJSON_Delete(notes);
  const ckpt_array *blob = ckpt_tree_array(ckpt_tree_dict_get(t, "blob"));
  cr_assert_eq(blob->dtype, CKPT_DTYPE_UINT8);
  cr_assert_eq(blob->ndim, 1);
  cr_assert_eq(blob->shape[0], 5);
  cr_assert_eq(memcmp(ckpt_array_data(blob), "\x00\x01\xfe\xff\x7f", 5), 0);
  const ckpt_array *pb = ckpt_tree_array(ckpt_tree_dict_get(t, "run_info"));
  cr_assert_eq(pb->dtype, CKPT_DTYPE_UINT8);
  Rec__RunInfo *info = rec__run_info__unpack(NULL, (size_t)pb->shape[0], ckpt_array_data(pb));
  cr_assert_not_null(info);
  cr_assert_str_eq(info->host, "node-7");
  rec__run_info__free_unpacked(info, NULL);

  /* numpy's own get_state(legacy=False) dict, and the JAX key's data. */
  cr_assert_str_eq(ckpt_tree_string(ckpt_tree_get(t, "np_rng.bit_generator")), "MT19937");
  const ckpt_array *key = ckpt_tree_array(ckpt_tree_get(t, "np_rng.state.key"));
  cr_assert_eq(key->dtype, CKPT_DTYPE_UINT32);
  cr_assert_eq(key->shape[0], 624);
  cr_assert(ckpt_tree_scalar(ckpt_tree_get(t, "np_rng.state.pos"), &sc));
  cr_assert_eq(sc.dtype, CKPT_DTYPE_INT64);
  cr_assert_eq(sc.v.i, 7);
  cr_assert(ckpt_tree_scalar(ckpt_tree_get(t, "np_rng.gauss"), &sc));
  cr_assert_eq(sc.dtype, CKPT_DTYPE_FLOAT64);
  cr_assert(ckpt_tree_scalar(ckpt_tree_get(t, "key.typed"), &sc));
  cr_assert(sc.v.b);
  cr_assert_not_null(ckpt_tree_array(ckpt_tree_get(t, "key.key_data")));
  cr_assert(ckpt_tree_equal(ckpt_tree_dict_get(t, "extra"), s.extra));
  ckpt_tree_free(t);
  rec_TrainState_free(&s);
}

/* Without copying, array leaves are views of the record's memory. */
Test(record_tree, views_share_memory) {
  rec_TrainState s;
  fx_train_state(&s);
  ckpt_tree *t = to_tree(&s, false);
  cr_assert_eq(ckpt_array_data(ckpt_tree_array(ckpt_tree_dict_get(t, "w1"))),
               ckpt_array_data(s.w1));
  cr_assert_eq(ckpt_array_data(ckpt_tree_array(ckpt_tree_get(t, "layers.0.w"))),
               ckpt_array_data(s.layers[0].w));
  cr_assert_eq(ckpt_array_data(ckpt_tree_array(ckpt_tree_get(t, "extra.x"))),
               ckpt_array_data(ckpt_tree_array(ckpt_tree_dict_get(s.extra, "x"))));
  ckpt_tree_free(t);
  /* Freeing the views left the record's arrays intact. */
  cr_assert_eq(((float *)ckpt_array_data(s.w1))[19], 20.0f);
  ckpt_tree *copy = to_tree(&s, true);
  cr_assert_neq(ckpt_array_data(ckpt_tree_array(ckpt_tree_dict_get(copy, "w1"))),
                ckpt_array_data(s.w1));
  ckpt_tree_free(copy);
  rec_TrainState_free(&s);
}

/* Moving arrays out of a tree the caller gives up (what the record handler does on restore). */
Test(record_tree, take_moves_arrays) {
  rec_TrainState s, back;
  fx_train_state(&s);
  ckpt_tree *t = to_tree(&s, true);
  void *w1_data = ckpt_array_data(ckpt_tree_array(ckpt_tree_dict_get(t, "w1")));
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(rec_TrainState_init(&back), CKPT_OK);
  cr_assert_eq(ckpt_record_from_tree_ex(&rec_TrainState_desc, t, true, NULL, &back, &err), CKPT_OK,
               "%s", err.message);
  cr_assert_eq(ckpt_array_data(back.w1), w1_data, "the array was moved, not copied");
  cr_assert(rec_TrainState_equal(&s, &back));
  ckpt_tree_free(t);
  rec_TrainState_free(&back);
  rec_TrainState_free(&s);
}

Test(record_tree, absent_optionals_stay_absent) {
  rec_TrainState s, back;
  fx_train_state(&s);
  s.has_best_loss = false;
  s.has_maybe = false;
  rec_Hparams_free(&s.maybe);
  s.has_ids = false;
  free(s.ids);
  s.ids = NULL;
  s.n_ids = 0;
  free(s.comment);
  s.comment = NULL;
  ckpt_array_free(s.half);
  s.half = NULL;
  ckpt_tree *t = to_tree(&s, true);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(from_tree(t, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert_not(back.has_best_loss);
  cr_assert_not(back.has_maybe);
  cr_assert_not(back.has_ids);
  cr_assert_null(back.comment);
  cr_assert_null(back.half);
  cr_assert(rec_TrainState_equal(&s, &back));
  rec_TrainState_free(&back);
  ckpt_tree_free(t);
  rec_TrainState_free(&s);
}

/* Python writes an unset optional as None; a required field cannot be None. */
Test(record_tree, none_means_absent_for_optionals) {
  rec_TrainState s, back;
  fx_train_state(&s);
  ckpt_tree *t = to_tree(&s, true);
  replace(t, "best_loss", ckpt_tree_new_none());
  replace(t, "maybe", ckpt_tree_new_none());
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(from_tree(t, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert_not(back.has_best_loss);
  cr_assert_not(back.has_maybe);
  rec_TrainState_free(&back);
  replace(t, "step", ckpt_tree_new_none());
  expect_error(t, CKPT_ETYPE, "TrainState.step: expected a scalar, found None");
  ckpt_tree_free(t);
  rec_TrainState_free(&s);
}

/* An optional list that is present but empty is not the same as absent. */
Test(record_tree, empty_present_list) {
  rec_TrainState s, back;
  fx_train_state(&s);
  free(s.ids);
  s.ids = NULL;
  s.n_ids = 0;
  s.has_ids = true;
  ckpt_tree *t = to_tree(&s, true);
  cr_assert_eq(ckpt_tree_count(ckpt_tree_dict_get(t, "ids")), 0);
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(from_tree(t, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert(back.has_ids);
  cr_assert_eq(back.n_ids, 0);
  rec_TrainState_free(&back);
  ckpt_tree_free(t);
  rec_TrainState_free(&s);
}

/* ------------------------------------------------------------------ errors on save */

static void expect_save_error(const rec_TrainState *s, ckpt_status code, const char *message) {
  ckpt_tree *t = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_status st = ckpt_record_to_tree(&rec_TrainState_desc, s, false, &t, &err);
  cr_assert_eq(st, code, "expected %s, got %s: %s", ckpt_status_name(code), ckpt_status_name(st),
               err.message);
  cr_assert_null(t);
  cr_assert_str_eq(err.message, message);
}

Test(record_tree, save_tied_dim_mismatch) {
  rec_TrainState s;
  fx_train_state(&s);
  ckpt_array_free(s.b1);
  s.b1 = fx_f32(3, -1, 0);
  expect_save_error(&s, CKPT_EMISMATCH,
                    "TrainState.b1: dim 0 (H) is 3 but TrainState.w1 has H = 4");
  rec_TrainState_free(&s);
}

Test(record_tree, save_tied_dim_inside_list_element) {
  rec_TrainState s;
  fx_train_state(&s);
  ckpt_array_free(s.layers[1].b);
  s.layers[1].b = fx_f32(2, -1, 0);
  expect_save_error(&s, CKPT_EMISMATCH,
                    "TrainState.layers.1.b: dim 0 (D) is 2 but TrainState.layers.1.w has D = 3");
  rec_TrainState_free(&s);
}

Test(record_tree, save_fixed_dim_and_dtype) {
  rec_TrainState s;
  fx_train_state(&s);
  ckpt_array *w2 = s.w2;
  s.w2 = fx_f32(4, 2, 0);
  expect_save_error(&s, CKPT_EMISMATCH, "TrainState.w2: dim 1 is 2 but the schema says 3");
  ckpt_array_free(s.w2);
  int64_t shape[2] = {4, 3};
  s.w2 = fx_array(CKPT_DTYPE_FLOAT64, 2, shape, 0);
  expect_save_error(&s, CKPT_ETYPE, "TrainState.w2: dtype is float64 but the schema says float32");
  ckpt_array_free(s.w2);
  s.w2 = fx_f32(12, -1, 0);
  expect_save_error(&s, CKPT_EMISMATCH, "TrainState.w2: rank is 1 but the schema says 2");
  ckpt_array_free(s.w2);
  s.w2 = w2;
  rec_TrainState_free(&s);
}

Test(record_tree, save_null_required_fields) {
  rec_TrainState s;
  fx_train_state(&s);
  char *opt = s.hparams.optimizer;
  s.hparams.optimizer = NULL;
  expect_save_error(&s, CKPT_EINVAL, "TrainState.hparams.optimizer: required string is NULL");
  s.hparams.optimizer = opt;
  ckpt_array *b = s.buffers[1];
  s.buffers[1] = NULL;
  expect_save_error(&s, CKPT_EINVAL, "TrainState.buffers.1: required array is NULL");
  s.buffers[1] = b;
  cJSON *notes = s.notes;
  s.notes = NULL;
  expect_save_error(&s, CKPT_EINVAL, "TrainState.notes: required json value is NULL");
  s.notes = notes;
  rec_TrainState_free(&s);
}

Test(record_tree, save_duplicate_map_key) {
  rec_TrainState s;
  fx_train_state(&s);
  free(s.adam_m[1].key);
  s.adam_m[1].key = strdup("b1");
  expect_save_error(&s, CKPT_EINVAL, "TrainState.adam_m: duplicate map key 'b1'");
  rec_TrainState_free(&s);
}

Test(record_tree, save_bad_numpy_state) {
  rec_TrainState s;
  fx_train_state(&s);
  s.np_rng->pos = 625;
  expect_save_error(&s, CKPT_ECORRUPT,
                    "TrainState.np_rng: MT19937 position 625 is outside [0, 624]");
  rec_TrainState_free(&s);
}

/* Field annotations reach the PyTree engine as per-leaf options, by parameter name. */
typedef struct seen {
  int n;
  char param[64];
  ckpt_leaf_options o;
} seen;

static ckpt_status on_leaf(void *ctx, const char *param, const ckpt_leaf_options *o,
                           ckpt_error *err) {
  (void)err;
  seen *s = ctx;
  s->n++;
  snprintf(s->param, sizeof s->param, "%s", param);
  s->o = *o;
  return CKPT_OK;
}

Test(record_tree, leaf_options_from_annotations) {
  rec_TrainState s;
  fx_train_state(&s);
  seen got = {0};
  ckpt_tree *t = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_record_to_tree_ex(&rec_TrainState_desc, &s, CKPT_RECORD_ARRAYS_VIEW, on_leaf,
                                      &got, &t, &err),
               CKPT_OK, "%s", err.message);
  cr_assert_eq(got.n, 1, "only w2 carries annotations");
  cr_assert_str_eq(got.param, "w2");
  cr_assert_eq(got.o.chunk_bytes, 4096);
  cr_assert_eq(got.o.compression, CKPT_COMPRESSION_ZSTD);
  cr_assert_eq(got.o.compression_level, 3);
  ckpt_tree_free(t);
  rec_TrainState_free(&s);
}

/* A restore target gets fresh arrays of the same boxes, never the target's memory. */
Test(record_tree, shape_mode_does_not_alias) {
  rec_TrainState s;
  fx_train_state(&s);
  ckpt_tree *t = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_record_to_tree_ex(&rec_TrainState_desc, &s, CKPT_RECORD_ARRAYS_SHAPE, NULL,
                                      NULL, &t, &err),
               CKPT_OK, "%s", err.message);
  const ckpt_array *w1 = ckpt_tree_array(ckpt_tree_dict_get(t, "w1"));
  cr_assert_neq(ckpt_array_data(w1), ckpt_array_data(s.w1));
  cr_assert_eq(w1->shape[0], 5);
  cr_assert_eq(w1->shape[1], 4);
  cr_assert_eq(((float *)ckpt_array_data(w1))[3], 0.0f);
  cr_assert_neq(ckpt_array_data(ckpt_tree_array(ckpt_tree_get(t, "np_rng.state.key"))),
                (void *)s.np_rng->key);
  ckpt_tree_free(t);
  rec_TrainState_free(&s);
}

/* A target needs only its arrays (and JAX keys and trees, whose shapes matter): unset strings,
 * JSON, protos, bytes and numpy states stand for "whatever is stored". */
Test(record_tree, target_tree_is_lenient) {
  rec_TrainState s;
  fx_train_state(&s);
  free(s.hparams.optimizer);
  s.hparams.optimizer = NULL;
  cJSON_Delete(s.notes);
  s.notes = NULL;
  rec__run_info__free_unpacked(s.run_info, NULL);
  s.run_info = NULL;
  ckpt_numpy_rng_free(s.np_rng);
  s.np_rng = NULL;
  ckpt_tree *t = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_record_to_tree_ex(&rec_TrainState_desc, &s, CKPT_RECORD_ARRAYS_SHAPE, NULL,
                                      NULL, &t, &err),
               CKPT_OK, "%s", err.message);
  cr_assert_str_eq(ckpt_tree_string(ckpt_tree_get(t, "hparams.optimizer")), "");
  cr_assert_eq(ckpt_tree_kind(ckpt_tree_dict_get(t, "run_info")), CKPT_NODE_BYTES);
  cr_assert_eq(ckpt_tree_kind(ckpt_tree_dict_get(t, "blob")), CKPT_NODE_BYTES);
  cr_assert_not_null(ckpt_tree_array(ckpt_tree_get(t, "np_rng.state.key")));
  ckpt_tree_free(t);
  ckpt_array_free(s.b1);
  s.b1 = NULL;
  t = NULL;
  cr_assert_eq(ckpt_record_to_tree_ex(&rec_TrainState_desc, &s, CKPT_RECORD_ARRAYS_SHAPE, NULL,
                                      NULL, &t, &err),
               CKPT_EINVAL);
  cr_assert_str_eq(err.message,
                   "TrainState.b1: the target's array is NULL (a target's arrays "
                   "give the dtype, shape and shards to restore; set every one)");
  cr_assert_null(t);
  rec_TrainState_free(&s);
}

/* A JAX key without an implementation name keeps the "impl" leaf ("" = default), so the
 * structure never depends on the value. */
Test(record_tree, jax_key_without_impl) {
  rec_TrainState s, back;
  fx_train_state(&s);
  free(s.key->impl);
  s.key->impl = NULL;
  ckpt_tree *t = to_tree(&s, true);
  cr_assert_str_eq(ckpt_tree_string(ckpt_tree_get(t, "key.impl")), "");
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(from_tree(t, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert_null(back.key->impl);
  cr_assert(rec_TrainState_equal(&s, &back));
  rec_TrainState_free(&back);
  ckpt_tree_free(t);
  rec_TrainState_free(&s);
}

/* ------------------------------------------------------------------ errors on restore */

Test(record_tree, restore_tied_dim_mismatch) {
  rec_TrainState s;
  fx_train_state(&s);
  ckpt_tree *t = to_tree(&s, true);
  replace(t, "b1", ckpt_tree_new_array(fx_f32(5, -1, 0)));
  expect_error(t, CKPT_EMISMATCH, "TrainState.b1: dim 0 (H) is 5 but TrainState.w1 has H = 4");
  replace(t, "b1", ckpt_tree_new_array(fx_f32(4, -1, 0)));
  replace(t, "w2", ckpt_tree_new_array(fx_f32(64, 3, 0)));
  expect_error(t, CKPT_EMISMATCH, "TrainState.w2: dim 0 (H) is 64 but TrainState.w1 has H = 4");
  ckpt_tree_free(t);
  rec_TrainState_free(&s);
}

Test(record_tree, restore_wrong_dtype_and_rank) {
  rec_TrainState s;
  fx_train_state(&s);
  ckpt_tree *t = to_tree(&s, true);
  int64_t shape[2] = {5, 4};
  replace(t, "w1", ckpt_tree_new_array(fx_array(CKPT_DTYPE_FLOAT64, 2, shape, 0)));
  expect_error(t, CKPT_ETYPE, "TrainState.w1: dtype is float64 but the schema says float32");
  int64_t shape3[3] = {5, 4, 1};
  replace(t, "w1", ckpt_tree_new_array(fx_array(CKPT_DTYPE_FLOAT32, 3, shape3, 0)));
  expect_error(t, CKPT_EMISMATCH, "TrainState.w1: rank is 3 but the schema says 2");
  replace(t, "w1", ckpt_tree_new_string("not an array"));
  expect_error(t, CKPT_ETYPE, "TrainState.w1: expected an array, found string");
  ckpt_tree_free(t);
  rec_TrainState_free(&s);
}

Test(record_tree, restore_missing_and_unexpected_fields) {
  rec_TrainState s;
  fx_train_state(&s);
  ckpt_tree *t = to_tree(&s, true);
  cr_assert(ckpt_tree_dict_remove(t, "step"));
  expect_error(t, CKPT_EMISMATCH, "TrainState.step: missing (a required field of rec.TrainState)");
  replace(t, "step", ckpt_tree_new_int(CKPT_DTYPE_INT64, 1));
  cr_assert(ckpt_tree_dict_remove(ckpt_tree_get(t, "layers.1"), "b"));
  expect_error(t, CKPT_EMISMATCH, "TrainState.layers.1.b: missing (a required field of rec.Layer)");
  ckpt_tree_free(t);
  t = to_tree(&s, true);
  replace(t, "surprise", ckpt_tree_new_int(CKPT_DTYPE_INT64, 1));
  expect_error(t, CKPT_EMISMATCH,
               "TrainState.surprise: unexpected key (not a field of rec.TrainState)");
  ckpt_tree_free(t);
  rec_TrainState_free(&s);
}

/* Scalars: integers convert between integer dtypes when the value fits (Python stores every
 * int as int64), floats between float dtypes; nothing else converts silently. */
Test(record_tree, restore_scalar_rules) {
  rec_TrainState s, back;
  fx_train_state(&s);
  ckpt_tree *t = to_tree(&s, true);
  replace(t, "i8", ckpt_tree_new_int(CKPT_DTYPE_INT64, -5));
  replace(t, "u16", ckpt_tree_new_int(CKPT_DTYPE_INT64, 7));
  replace(t, "f32", ckpt_tree_new_float(CKPT_DTYPE_FLOAT64, 0.5));
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(from_tree(t, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(back.i8, -5);
  cr_assert_eq(back.u16, 7);
  cr_assert_eq(back.f32, 0.5f);
  rec_TrainState_free(&back);

  replace(t, "i8", ckpt_tree_new_int(CKPT_DTYPE_INT64, 300));
  expect_error(t, CKPT_EMISMATCH, "TrainState.i8: value 300 does not fit int8");
  replace(t, "i8", ckpt_tree_new_int(CKPT_DTYPE_INT8, 1));
  replace(t, "u32", ckpt_tree_new_int(CKPT_DTYPE_INT64, -1));
  expect_error(t, CKPT_EMISMATCH, "TrainState.u32: value -1 does not fit uint32");
  replace(t, "u32", ckpt_tree_new_int(CKPT_DTYPE_UINT32, 1));
  ckpt_scalar big;
  memset(&big, 0, sizeof big);
  big.dtype = CKPT_DTYPE_UINT64;
  big.v.u = UINT64_MAX;
  replace(t, "step", ckpt_tree_new_scalar(big));
  expect_error(t, CKPT_EMISMATCH, "TrainState.step: value 18446744073709551615 does not fit int64");
  replace(t, "step", ckpt_tree_new_float(CKPT_DTYPE_FLOAT64, 2.0));
  expect_error(t, CKPT_ETYPE, "TrainState.step: expected an integer (int64) scalar, found float64");
  replace(t, "step", ckpt_tree_new_int(CKPT_DTYPE_INT64, 2));
  replace(t, "done", ckpt_tree_new_int(CKPT_DTYPE_INT64, 1));
  expect_error(t, CKPT_ETYPE, "TrainState.done: expected a bool scalar, found int64");
  replace(t, "done", ckpt_tree_new_int(CKPT_DTYPE_BOOL, 1));
  replace(t, "f32", ckpt_tree_new_int(CKPT_DTYPE_INT32, 1));
  expect_error(t, CKPT_ETYPE, "TrainState.f32: expected a float32 scalar, found int32");
  ckpt_tree_free(t);
  rec_TrainState_free(&s);
}

/* What Python writes for a number can be a 0-d array rather than a scalar leaf. */
Test(record_tree, restore_scalar_from_0d_array) {
  rec_TrainState s, back;
  fx_train_state(&s);
  ckpt_tree *t = to_tree(&s, true);
  ckpt_array *a = fx_array(CKPT_DTYPE_INT64, 0, NULL, 77);
  replace(t, "step", ckpt_tree_new_array(a));
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(from_tree(t, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(back.step, 77);
  rec_TrainState_free(&back);
  ckpt_tree_free(t);
  rec_TrainState_free(&s);
}

/* A json field is stored as compact text (its format since the start) that loses nothing:
 * NaN, every digit of a double, integers beyond 2^53. */
Test(record_tree, json_field_text_is_compact_and_exact) {
  rec_TrainState s, back;
  fx_train_state(&s);
  cJSON_Delete(s.notes);
  s.notes = cJSON_CreateObject();
  volatile double tenth = 0.1, fifth = 0.2;
  cJSON_AddNumberToObject(s.notes, "x", tenth + fifth);
  cJSON_AddNumberToObject(s.notes, "loss", NAN);
  cJSON_AddItemToObject(s.notes, "id", cJSON_CreateRaw("9007199254740993"));
  cJSON_AddStringToObject(s.notes, "who", "caf\xc3\xa9");
  ckpt_tree *t = to_tree(&s, true);
  cr_assert_str_eq(ckpt_tree_string(ckpt_tree_dict_get(t, "notes")),
                   "{\"x\":0.30000000000000004,\"loss\":NaN,\"id\":9007199254740993,"
                   "\"who\":\"caf\xc3\xa9\"}");
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(from_tree(t, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(back.notes, "x")), tenth + fifth);
  cr_assert(isnan(cJSON_GetNumberValue(cJSON_GetObjectItem(back.notes, "loss"))));
  cr_assert_str_eq(cJSON_GetObjectItem(back.notes, "id")->valuestring, "9007199254740993");
  rec_TrainState_free(&back);
  ckpt_tree_free(t);
  rec_TrainState_free(&s);
}

Test(record_tree, restore_corrupt_json_proto_and_rng) {
  rec_TrainState s;
  fx_train_state(&s);
  ckpt_tree *t = to_tree(&s, true);
  replace(t, "notes", ckpt_tree_new_string("{\"a\": [1, 2"));
  expect_error(t, CKPT_ECORRUPT,
               "TrainState.notes:1:12: expected ',' or ']' after array element, found end of "
               "input");
  ckpt_tree_free(t);

  t = to_tree(&s, true);
  int64_t n[1] = {3};
  ckpt_array *junk = fx_array(CKPT_DTYPE_UINT8, 1, n, 0);
  memcpy(ckpt_array_data(junk), "\x0a\x7f\x01", 3); /* a string field claiming 127 bytes */
  replace(t, "run_info", ckpt_tree_new_array(junk));
  expect_error(t, CKPT_ECORRUPT,
               "TrainState.run_info: 3 bytes are not a valid rec.RunInfo message");
  ckpt_tree_free(t);

  t = to_tree(&s, true);
  replace(ckpt_tree_dict_get(t, "np_rng"), "bit_generator", ckpt_tree_new_string("PCG64"));
  expect_error(t, CKPT_EUNSUPPORTED,
               "TrainState.np_rng: bit generator 'PCG64' is not supported (only MT19937)");
  replace(ckpt_tree_dict_get(t, "np_rng"), "bit_generator", ckpt_tree_new_string("MT19937"));
  replace(ckpt_tree_get(t, "np_rng.state"), "pos", ckpt_tree_new_int(CKPT_DTYPE_INT64, -1));
  expect_error(t, CKPT_ECORRUPT, "TrainState.np_rng: MT19937 position -1 is outside [0, 624]");
  replace(ckpt_tree_get(t, "np_rng.state"), "pos", ckpt_tree_new_int(CKPT_DTYPE_INT64, 3));
  replace(ckpt_tree_get(t, "np_rng.state"), "key", ckpt_tree_new_array(fx_f32(624, -1, 0)));
  expect_error(t, CKPT_ETYPE,
               "TrainState.np_rng: the MT19937 key has dtype float32, expected uint32");
  ckpt_tree_free(t);

  t = to_tree(&s, true);
  replace(ckpt_tree_dict_get(t, "key"), "key_data", ckpt_tree_new_array(fx_f32(2, -1, 0)));
  expect_error(
      t, CKPT_ETYPE,
      "TrainState.key.key_data: expected a uint32 array of rank >= 1, found a 1-d float32 array");
  ckpt_tree_free(t);
  rec_TrainState_free(&s);
}

Test(record_tree, restore_wrong_container_kinds) {
  rec_TrainState s;
  fx_train_state(&s);
  ckpt_tree *t = to_tree(&s, true);
  replace(t, "buffers", ckpt_tree_new_dict());
  expect_error(t, CKPT_ETYPE, "TrainState.buffers: expected a list, found dict");
  replace(t, "buffers", ckpt_tree_new_list());
  replace(t, "adam_m", ckpt_tree_new_list());
  expect_error(t, CKPT_ETYPE, "TrainState.adam_m: expected a dict, found list");
  replace(t, "adam_m", ckpt_tree_new_dict());
  replace(t, "hparams", ckpt_tree_new_int(CKPT_DTYPE_INT64, 1));
  expect_error(t, CKPT_ETYPE,
               "TrainState.hparams: expected a dict (record rec.Hparams), found scalar");
  ckpt_tree_free(t);
  rec_TrainState_free(&s);
}

/* A field kind a record cannot hold (args) is refused with a clear message both ways. A
 * hand-written descriptor stands in, since the schema compiler may reject such a record. */
typedef struct with_args {
  int32_t n;
  ckpt_args *a;
} with_args;

static const ckpt_type_desc int32_type = {
    CKPT_KIND_INT32, CKPT_DTYPE_INT32, 0, NULL, NULL, NULL, NULL, 0, 0};
static const ckpt_type_desc args_type = {
    CKPT_KIND_ARGS, CKPT_DTYPE_BOOL, 0, NULL, NULL, NULL, NULL, 0, 0};
static const ckpt_field_desc with_args_fields[] = {
    {"n", &int32_type, 0, offsetof(with_args, n), 0, 0, {0}, {0}, NULL},
    {"a", &args_type, CKPT_FIELD_OPTIONAL, offsetof(with_args, a), 0, 0, {0}, {0}, NULL},
};
static const ckpt_record_desc with_args_desc = {CKPT_RECORD_DESC_MAGIC,
                                                CKPT_ABI_VERSION,
                                                "WithArgs",
                                                "t.WithArgs",
                                                "t_WithArgs",
                                                sizeof(with_args),
                                                2,
                                                with_args_fields,
                                                false,
                                                NULL};

Test(record_tree, args_fields_are_unsupported) {
  with_args w = {3, NULL};
  ckpt_tree *t = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_record_to_tree(&with_args_desc, &w, true, &t, &err), CKPT_OK, "%s",
               err.message);
  replace(t, "a", ckpt_tree_new_dict());
  with_args back = {0, NULL};
  ckpt_error err2 = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_record_from_tree(&with_args_desc, t, &back, &err2), CKPT_EUNSUPPORTED);
  cr_assert_str_eq(err2.message,
                   "WithArgs.a: a field of kind args cannot be restored from a record");
  ckpt_tree_free(t);
  w.a = ckpt_args_new(&ckpt_JsonRestore_desc);
  cr_assert_eq(ckpt_record_to_tree(&with_args_desc, &w, true, &t, &err), CKPT_EUNSUPPORTED);
  cr_assert_str_eq(err.message,
                   "WithArgs.a: a field of kind args cannot be saved as part of a record (args "
                   "belong in a Composite)");
  ckpt_args_delete(w.a);
}

Test(record_tree, rejects_bad_arguments) {
  ckpt_tree *t = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_record_to_tree(&rec_TrainState_desc, NULL, true, &t, &err), CKPT_EINVAL);
  cr_assert_str_eq(err.message, "TrainState: record is NULL");
  rec_TrainState back;
  cr_assert_eq(rec_TrainState_init(&back), CKPT_OK);
  ckpt_error err2 = CKPT_ERROR_INIT;
  ckpt_tree *list = ckpt_tree_new_list();
  cr_assert_eq(ckpt_record_from_tree(&rec_TrainState_desc, list, &back, &err2), CKPT_ETYPE);
  cr_assert_str_eq(err2.message, "TrainState: expected a dict (record rec.TrainState), found list");
  ckpt_tree_free(list);
  rec_TrainState_free(&back);
}
