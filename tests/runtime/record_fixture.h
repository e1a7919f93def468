/* record_fixture.h — builders shared by the record tests (test_record*.c): a fully populated
 * rec_TrainState (tests/runtime/records.ckpt) and small array helpers. Header-only (static
 * functions) so each test file stays self-contained. */
#ifndef CKPT_TESTS_RECORD_FIXTURE_H
#define CKPT_TESTS_RECORD_FIXTURE_H

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ckpt/ckpt.h"
#include "records.ckpt.h"

/* A C-order array of dtype with the given shape, elements set to base + i (as the dtype). */
static inline ckpt_array *fx_array(ckpt_dtype dt, int ndim, const int64_t *shape, double base) {
  ckpt_array *a = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_array_new(dt, ndim, shape, &a, &err), CKPT_OK, "%s", err.message);
  int64_t n = ckpt_array_num_elements(a);
  void *d = ckpt_array_data(a);
  for (int64_t i = 0; i < n; i++) {
    double v = base + (double)i;
    switch (dt) {
      case CKPT_DTYPE_FLOAT32:
        ((float *)d)[i] = (float)v;
        break;
      case CKPT_DTYPE_FLOAT64:
        ((double *)d)[i] = v;
        break;
      case CKPT_DTYPE_INT32:
        ((int32_t *)d)[i] = (int32_t)v;
        break;
      case CKPT_DTYPE_INT64:
        ((int64_t *)d)[i] = (int64_t)v;
        break;
      case CKPT_DTYPE_UINT32:
        ((uint32_t *)d)[i] = (uint32_t)v;
        break;
      case CKPT_DTYPE_UINT8:
        ((uint8_t *)d)[i] = (uint8_t)v;
        break;
      default:
        ckpt_dtype_convert(dt, (char *)d + (size_t)i * ckpt_dtype_size(dt), CKPT_DTYPE_FLOAT64, &v,
                           1);
    }
  }
  return a;
}

static inline ckpt_array *fx_f32(int64_t d0, int64_t d1, double base) {
  int64_t shape[2] = {d0, d1};
  return fx_array(CKPT_DTYPE_FLOAT32, d1 < 0 ? 1 : 2, shape, base);
}

static inline void fx_hparams(rec_Hparams *h, double lr, int32_t bs, const char *opt) {
  cr_assert_eq(rec_Hparams_init(h), CKPT_OK);
  h->learning_rate = lr;
  h->batch_size = bs;
  free(h->optimizer);
  h->optimizer = strdup(opt);
}

/* A TrainState with every field set (H = 4); release with rec_TrainState_free. */
static inline void fx_train_state(rec_TrainState *s) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(rec_TrainState_init(s), CKPT_OK);
  s->step = 1234567890123;
  s->w1 = fx_f32(5, 4, 1.0);
  s->b1 = fx_f32(4, -1, 100.0);
  s->w2 = fx_f32(4, 3, -6.0);

  s->n_adam_m = 2;
  s->adam_m = calloc(2, sizeof *s->adam_m);
  s->adam_m[0].key = strdup("b1");
  s->adam_m[0].value = fx_f32(4, -1, 0.5);
  s->adam_m[1].key = strdup("w1");
  s->adam_m[1].value = fx_f32(5, 4, 0.25);

  s->n_buffers = 2;
  s->buffers = calloc(2, sizeof *s->buffers);
  int64_t three[1] = {3}, zero[1] = {0};
  s->buffers[0] = fx_array(CKPT_DTYPE_INT32, 1, three, -1);
  s->buffers[1] = fx_array(CKPT_DTYPE_INT32, 1, zero, 0);

  s->has_best_loss = true;
  s->best_loss = 0.125f;
  free(s->hparams.optimizer);
  s->hparams.optimizer = strdup("sgd");
  s->hparams.learning_rate = 0.5;
  s->hparams.batch_size = 64;

  /* Each Layer is its own scope for D: 2 in the first, 3 in the second. */
  s->n_layers = 2;
  s->layers = calloc(2, sizeof *s->layers);
  for (int i = 0; i < 2; i++) {
    cr_assert_eq(rec_Layer_init(&s->layers[i]), CKPT_OK);
    s->layers[i].w = fx_f32(2 + i, 2 + i, 10.0 * i);
    s->layers[i].b = fx_f32(2 + i, -1, -10.0 * i);
  }

  s->n_per_task = 2;
  s->per_task = calloc(2, sizeof *s->per_task);
  s->per_task[0].key = strdup("cls");
  fx_hparams(&s->per_task[0].value, 0.1, 8, "adam");
  s->per_task[1].key = strdup("seg");
  fx_hparams(&s->per_task[1].value, 0.2, 16, "lion");

  s->has_maybe = true;
  rec_Hparams_free(&s->maybe); /* init gave it its defaults; start over */
  fx_hparams(&s->maybe, 1e-4, 1, "adafactor");
  s->has_ids = true;
  s->n_ids = 3;
  s->ids = malloc(3 * sizeof *s->ids);
  s->ids[0] = -1;
  s->ids[1] = 0;
  s->ids[2] = INT64_MAX;

  s->notes = cJSON_Parse("{\"a\": [1, 2.5, {\"b\": null}], \"c\": \"d\"}");
  cr_assert(s->notes != NULL);

  Rec__RunInfo *info = malloc(sizeof *info);
  rec__run_info__init(info);
  info->host = strdup("node-7");
  info->started = 1700000000;
  info->n_ranks = 3;
  info->ranks = malloc(3 * sizeof *info->ranks);
  info->ranks[0] = 0;
  info->ranks[1] = 1;
  info->ranks[2] = 5;
  s->run_info = info;

  s->key = calloc(1, sizeof *s->key);
  int64_t two[1] = {2};
  s->key->data = fx_array(CKPT_DTYPE_UINT32, 1, two, 42);
  s->key->typed = true;
  s->key->impl = strdup("threefry2x32");

  s->np_rng = calloc(1, sizeof *s->np_rng);
  ckpt_numpy_rng_seed(s->np_rng, 99);
  for (int i = 0; i < 7; i++)
    ckpt_numpy_rng_next_u32(s->np_rng);
  s->np_rng->has_gauss = 1;
  s->np_rng->cached_gaussian = -0.75;

  ckpt_tree *extra = ckpt_tree_new_dict();
  cr_assert_eq(ckpt_tree_dict_set(extra, "x", ckpt_tree_new_array(fx_f32(2, 2, 3.0)), &err),
               CKPT_OK);
  ckpt_tree *seq = ckpt_tree_new_list();
  cr_assert_eq(ckpt_tree_append(seq, ckpt_tree_new_float(CKPT_DTYPE_FLOAT64, 1.5), &err), CKPT_OK);
  cr_assert_eq(ckpt_tree_append(seq, ckpt_tree_new_string("text"), &err), CKPT_OK);
  cr_assert_eq(ckpt_tree_dict_set(extra, "y", seq, &err), CKPT_OK);
  s->extra = extra;

  s->blob.len = 5;
  s->blob.data = malloc(5);
  memcpy(s->blob.data, "\x00\x01\xfe\xff\x7f", 5);
  s->comment = strdup("hello \"world\"");
  s->done = true;
  s->i8 = -128;
  s->i16 = -300;
  s->u8 = 255;
  s->u16 = 65535;
  s->u32 = 4000000000u;
  s->u64 = UINT64_MAX;
  s->f32 = 3.25f;
  int64_t six[1] = {6};
  s->half = fx_array(CKPT_DTYPE_BFLOAT16, 1, six, 0.5);
}

#endif
