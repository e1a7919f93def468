/* test_generated.c — compile-and-run tests of the code ckptgen generates for the example schemas
 * (schemas/examples/): the struct layout desc.h promises, defaults set by _init, deep equality
 * by _equal, and _free releasing everything (LeakSanitizer verifies under `make check`), all
 * through the generated wrappers and the real runtime. */
#include <criterion/criterion.h>

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ckpt/ckpt.h"
#include "examples/alltypes/all_types.ckpt.h"
#include "examples/demo/train_state.ckpt.h"
#include "examples/embedding/embedding.ckpt.h"
#include "gen_support.h"
#include "gen_values.h"

/* ---------------------------------------------------------------- defaults */

Test(generated_defaults, nested_record_defaults_from_the_schema) {
  demo_Hparams h;
  memset(&h, 0xA5, sizeof h); /* init must not depend on the struct being zeroed */
  cr_assert_eq(demo_Hparams_init(&h), CKPT_OK);
  cr_assert_eq(h.learning_rate, 0.001);
  cr_assert_eq(h.batch_size, 32);
  cr_assert_not_null(h.optimizer);
  cr_assert_str_eq(h.optimizer, "adam");
  demo_Hparams_free(&h);
  cr_assert_null(h.optimizer, "free leaves the record as after init with no defaults");
  cr_assert_eq(h.batch_size, 0);
  gs_expect_no_leaks();
}

Test(generated_defaults, train_state_starts_empty_with_nested_defaults) {
  demo_TrainState s;
  memset(&s, 0x5A, sizeof s);
  cr_assert_eq(demo_TrainState_init(&s), CKPT_OK);
  cr_assert_eq(s.step, 0);
  cr_assert_null(s.w1);
  cr_assert_null(s.b1);
  cr_assert_null(s.w2);
  cr_assert_eq(s.n_adam_m, 0);
  cr_assert_null(s.adam_m);
  cr_assert_eq(s.n_buffers, 0);
  cr_assert_null(s.buffers);
  cr_assert_not(s.has_best_loss);
  cr_assert_eq(s.best_loss, 0.0f);
  /* a nested record gets its own defaults */
  cr_assert_eq(s.hparams.batch_size, 32);
  cr_assert_str_eq(s.hparams.optimizer, "adam");
  cr_assert_null(s.notes);
  cr_assert_null(s.run_info);
  cr_assert_null(s.key);
  cr_assert_null(s.np_rng);
  cr_assert_null(s.extra);
  demo_TrainState_free(&s);
  gs_expect_no_leaks();
}

Test(generated_defaults, every_scalar_default_including_extremes) {
  alltypes_Scalars s;
  cr_assert_eq(alltypes_Scalars_init(&s), CKPT_OK);
  cr_assert_eq(s.flag, true);
  cr_assert_eq(s.off, false);
  cr_assert_eq(s.i8, INT8_MIN);
  cr_assert_eq(s.i16, INT16_MIN);
  cr_assert_eq(s.i32, INT32_MIN);
  cr_assert_eq(s.i64, INT64_MIN);
  cr_assert_eq(s.i8_max, INT8_MAX);
  cr_assert_eq(s.i16_max, INT16_MAX);
  cr_assert_eq(s.i32_max, INT32_MAX);
  cr_assert_eq(s.i64_max, INT64_MAX);
  cr_assert_eq(s.u8, UINT8_MAX);
  cr_assert_eq(s.u16, UINT16_MAX);
  cr_assert_eq(s.u32, UINT32_MAX);
  cr_assert_eq(s.u64, UINT64_MAX);
  cr_assert_eq(s.f32, 0.1f, "float32 default is the float nearest 0.1, got %.9g", s.f32);
  cr_assert_eq(s.f64, -2.5e-3);
  cr_assert_eq(s.whole, 3.0);
  cr_assert_eq(s.size, INT64_C(64) * 1024 * 1024);
  cr_assert_str_eq(s.name, "tab\there \"quoted\" back\\slash");
  cr_assert_not_null(s.empty, "an explicit empty-string default is \"\", not absent");
  cr_assert_str_eq(s.empty, "");
  static const uint8_t magic[] = {0x89, 'C', 'K', 'P', 'T', '\r', '\n'};
  cr_assert_eq(s.magic.len, sizeof magic);
  cr_assert_not_null(s.magic.data);
  cr_assert_arr_eq(s.magic.data, magic, sizeof magic);
  alltypes_Scalars_free(&s);
  cr_assert_null(s.name);
  cr_assert_null(s.magic.data);
  cr_assert_eq(s.magic.len, 0);
  gs_expect_no_leaks();
}

Test(generated_defaults, no_default_means_zero_false_null_and_empty) {
  alltypes_Zeros z;
  memset(&z, 0xFF, sizeof z);
  cr_assert_eq(alltypes_Zeros_init(&z), CKPT_OK);
  cr_assert_not(z.b);
  cr_assert_eq(z.i8, 0);
  cr_assert_eq(z.i16, 0);
  cr_assert_eq(z.i32, 0);
  cr_assert_eq(z.i64, 0);
  cr_assert_eq(z.u8, 0);
  cr_assert_eq(z.u16, 0);
  cr_assert_eq(z.u32, 0);
  cr_assert_eq(z.u64, 0);
  cr_assert_eq(z.f32, 0.0f);
  cr_assert_eq(z.f64, 0.0);
  cr_assert_null(z.s);
  cr_assert_null(z.by.data);
  cr_assert_eq(z.by.len, 0);
  alltypes_Zeros_free(&z);
  gs_expect_no_leaks();
}

Test(generated_defaults, optionals_start_absent) {
  alltypes_Optionals o;
  memset(&o, 0x33, sizeof o);
  cr_assert_eq(alltypes_Optionals_init(&o), CKPT_OK);
  cr_assert_not(o.has_b);
  cr_assert_not(o.has_i);
  cr_assert_not(o.has_u);
  cr_assert_not(o.has_f);
  cr_assert_null(o.s);
  cr_assert_not(o.has_by);
  cr_assert_null(o.a);
  cr_assert_not(o.has_item);
  cr_assert_not(o.has_li);
  cr_assert_eq(o.n_li, 0);
  cr_assert_not(o.has_ms);
  cr_assert_eq(o.n_ms, 0);
  cr_assert_null(o.j);
  cr_assert_null(o.p);
  cr_assert_null(o.k);
  cr_assert_null(o.r);
  cr_assert_null(o.t);
  alltypes_Optionals_free(&o);
  gs_expect_no_leaks();
}

Test(generated_defaults, args_new_sets_base_and_defaults) {
  emb_EmbeddingTableSave *save = emb_EmbeddingTableSave_new();
  cr_assert_not_null(save);
  cr_assert_eq(save->base.desc, &emb_EmbeddingTableSave_desc);
  cr_assert_eq(save->num_shards, 8);
  cr_assert_null(save->table);
  emb_EmbeddingTableRestore *restore = emb_EmbeddingTableRestore_new();
  cr_assert_not_null(restore);
  cr_assert_not(restore->has_num_shards);

  /* _cast checks the descriptor: the right type comes back, any other gives NULL */
  cr_assert_eq(emb_EmbeddingTableSave_cast(&save->base), save);
  cr_assert_null(emb_EmbeddingTableSave_cast(&restore->base));
  cr_assert_eq(emb_EmbeddingTableRestore_cast(&restore->base), restore);
  cr_assert_null(emb_EmbeddingTableRestore_cast(NULL));

  alltypes_KitchenSink *ks = alltypes_KitchenSink_new();
  cr_assert_not_null(ks);
  cr_assert_eq(ks->version, 2);
  cr_assert_null(ks->nested);
  cr_assert_eq(ks->n_more, 0);
  cr_assert_null(ks->comment);
  cr_assert_str_eq(ks->everything.scalars.name, "tab\there \"quoted\" back\\slash",
                   "a record inside args gets its defaults too");

  ckpt_args_delete(&save->base);
  ckpt_args_delete(&restore->base);
  ckpt_args_delete(&ks->base);
  gs_expect_no_leaks();
}

Test(generated_defaults, generated_record_handler_args) {
  demo_TrainStateSave *save = demo_TrainStateSave_new();
  demo_TrainStateRestore *restore = demo_TrainStateRestore_new();
  cr_assert_not_null(save);
  cr_assert_not_null(restore);
  cr_assert_eq(save->base.desc, &demo_TrainStateSave_desc);
  cr_assert_null(save->item);
  cr_assert_null(restore->target);
  cr_assert(restore->strict, "strict restore is the default, as in Orbax");
  cr_assert(demo_TrainStateSave_desc.is_args);
  /* the record is borrowed, never freed by the args */
  demo_TrainState state;
  cr_assert_eq(demo_TrainState_init(&state), CKPT_OK);
  save->item = &state;
  ckpt_args_delete(&save->base);
  ckpt_args_delete(&restore->base);
  cr_assert_eq(state.hparams.batch_size, 32, "deleting the args left the record alone");
  demo_TrainState_free(&state);
  gs_expect_no_leaks();
}

/* ---------------------------------------------------------------- layout and descriptors */

Test(generated_desc, record_descriptor_matches_the_struct) {
  const ckpt_record_desc *d = &demo_TrainState_desc;
  cr_assert_eq(d->magic, CKPT_RECORD_DESC_MAGIC);
  cr_assert_eq(d->abi_version, CKPT_ABI_VERSION);
  cr_assert_str_eq(d->name, "TrainState");
  cr_assert_str_eq(d->full_name, "demo.TrainState");
  cr_assert_str_eq(d->c_name, "demo_TrainState");
  cr_assert_eq(d->size, sizeof(demo_TrainState));
  cr_assert_not(d->is_args);
  cr_assert_not_null(d->doc);
  cr_assert(strstr(d->doc, "Everything a training loop needs to resume exactly.") != NULL,
            "doc: %s", d->doc);

  static const char *const names[] = {"step",    "w1",         "b1",    "w2",
                                      "adam_m",  "buffers",    "best_loss", "hparams",
                                      "notes",   "run_info",   "key",   "np_rng", "extra"};
  static const ckpt_kind kinds[] = {
      CKPT_KIND_INT64, CKPT_KIND_ARRAY,   CKPT_KIND_ARRAY, CKPT_KIND_ARRAY,   CKPT_KIND_MAP,
      CKPT_KIND_LIST,  CKPT_KIND_FLOAT32, CKPT_KIND_RECORD, CKPT_KIND_JSON,   CKPT_KIND_PROTO,
      CKPT_KIND_JAX_KEY, CKPT_KIND_NUMPY_RNG, CKPT_KIND_TREE};
  static const size_t offsets[] = {
      offsetof(demo_TrainState, step),    offsetof(demo_TrainState, w1),
      offsetof(demo_TrainState, b1),      offsetof(demo_TrainState, w2),
      offsetof(demo_TrainState, adam_m),  offsetof(demo_TrainState, buffers),
      offsetof(demo_TrainState, best_loss), offsetof(demo_TrainState, hparams),
      offsetof(demo_TrainState, notes),   offsetof(demo_TrainState, run_info),
      offsetof(demo_TrainState, key),     offsetof(demo_TrainState, np_rng),
      offsetof(demo_TrainState, extra)};
  cr_assert_eq(d->n_fields, GV_ARRAY_LEN(names));
  for (uint32_t i = 0; i < d->n_fields; i++) {
    const ckpt_field_desc *f = &d->fields[i];
    cr_assert_str_eq(f->name, names[i], "fields in declaration order");
    cr_assert_eq(f->type->kind, kinds[i], "kind of %s", f->name);
    cr_assert_eq(f->offset, offsets[i], "offset of %s", f->name);
    cr_assert_eq(ckpt_record_field(d, names[i]), f);
  }
  cr_assert_null(ckpt_record_field(d, "no_such_field"));

  const ckpt_field_desc *adam = ckpt_record_field(d, "adam_m");
  cr_assert_eq(adam->count_offset, offsetof(demo_TrainState, n_adam_m));
  cr_assert_eq(adam->type->elem->kind, CKPT_KIND_ARRAY);
  cr_assert_eq(adam->type->elem->dtype, CKPT_DTYPE_FLOAT32);
  cr_assert_eq(adam->type->elem_size, sizeof(demo_TrainState_adam_m_entry));
  cr_assert_eq(adam->type->entry_value_offset, offsetof(demo_TrainState_adam_m_entry, value));

  const ckpt_field_desc *buffers = ckpt_record_field(d, "buffers");
  cr_assert_eq(buffers->count_offset, offsetof(demo_TrainState, n_buffers));
  cr_assert_eq(buffers->type->elem_size, sizeof(ckpt_array *));

  const ckpt_field_desc *best = ckpt_record_field(d, "best_loss");
  cr_assert(best->flags & CKPT_FIELD_OPTIONAL);
  cr_assert(best->flags & CKPT_FIELD_HAS_PRESENCE);
  cr_assert_eq(best->presence_offset, offsetof(demo_TrainState, has_best_loss));

  const ckpt_field_desc *hp = ckpt_record_field(d, "hparams");
  cr_assert_eq(hp->type->record, &demo_Hparams_desc);
  cr_assert_not(hp->flags & CKPT_FIELD_OPTIONAL);

  const ckpt_field_desc *run_info = ckpt_record_field(d, "run_info");
  cr_assert_eq(run_info->type->proto, &demo__run_info__descriptor);

  /* dims: '?' is any size, a name ties sizes across fields */
  const ckpt_field_desc *w1 = ckpt_record_field(d, "w1");
  cr_assert_eq(w1->type->dtype, CKPT_DTYPE_FLOAT32);
  cr_assert_eq(w1->type->n_dims, 2);
  cr_assert_eq(w1->type->dims[0].size, -1);
  cr_assert_null(w1->type->dims[0].name);
  cr_assert_eq(w1->type->dims[1].size, -1);
  cr_assert_str_eq(w1->type->dims[1].name, "H");
  const ckpt_field_desc *w2 = ckpt_record_field(d, "w2");
  cr_assert_eq(w2->type->dtype, CKPT_DTYPE_BFLOAT16);
  cr_assert_str_eq(w2->type->dims[0].name, "H");
  cr_assert_eq(w2->leaf.chunk_bytes, INT64_C(64) << 20, "@chunk_bytes(64 MiB)");
  cr_assert_eq(w1->leaf.chunk_bytes, 0, "no annotation, no option");
  gs_expect_no_leaks();
}

Test(generated_desc, annotations_become_leaf_options) {
  const ckpt_record_desc *d = &alltypes_Arrays_desc;
  const ckpt_field_desc *u8 = ckpt_record_field(d, "u8");
  cr_assert_eq(u8->leaf.compression, CKPT_COMPRESSION_ZSTD);
  cr_assert_eq(u8->leaf.compression_level, 0, "@compress(zstd) leaves the codec's level");
  const ckpt_field_desc *u16 = ckpt_record_field(d, "u16");
  cr_assert_eq(u16->leaf.compression, CKPT_COMPRESSION_ZSTD);
  cr_assert_eq(u16->leaf.compression_level, 3);
  const ckpt_field_desc *u32 = ckpt_record_field(d, "u32");
  cr_assert_eq(u32->leaf.compression, CKPT_COMPRESSION_NONE);
  const ckpt_field_desc *u64 = ckpt_record_field(d, "u64");
  cr_assert_eq(u64->leaf.compression, CKPT_COMPRESSION_DEFAULT);
  cr_assert_not(u64->leaf.has_save_dtype);
  const ckpt_field_desc *f32 = ckpt_record_field(d, "f32");
  cr_assert(f32->leaf.has_save_dtype);
  cr_assert_eq(f32->leaf.save_dtype, CKPT_DTYPE_BFLOAT16);
  cr_assert_eq(f32->leaf.chunk_bytes, 4096);
  cr_assert_str_eq(f32->type->dims[0].name, "N");
  cr_assert_str_eq(f32->type->dims[1].name, "M");
  const ckpt_field_desc *f64 = ckpt_record_field(d, "f64");
  cr_assert_eq(f64->leaf.chunk_bytes, INT64_C(1) << 30);
  gs_expect_no_leaks();
}

Test(generated_desc, every_dtype_and_dimension_kind) {
  const ckpt_record_desc *d = &alltypes_Arrays_desc;
  static const struct {
    const char *field;
    ckpt_dtype dtype;
    uint32_t rank;
  } want[] = {
      {"b", CKPT_DTYPE_BOOL, 1},         {"i8", CKPT_DTYPE_INT8, 1},
      {"i16", CKPT_DTYPE_INT16, 2},      {"i32", CKPT_DTYPE_INT32, 1},
      {"i64", CKPT_DTYPE_INT64, 2},      {"u8", CKPT_DTYPE_UINT8, 1},
      {"u16", CKPT_DTYPE_UINT16, 1},     {"u32", CKPT_DTYPE_UINT32, 1},
      {"u64", CKPT_DTYPE_UINT64, 1},     {"f16", CKPT_DTYPE_FLOAT16, 2},
      {"bf16", CKPT_DTYPE_BFLOAT16, 2},  {"f32", CKPT_DTYPE_FLOAT32, 2},
      {"f64", CKPT_DTYPE_FLOAT64, 1},    {"c64", CKPT_DTYPE_COMPLEX64, 1},
      {"c128", CKPT_DTYPE_COMPLEX128, 0}, /* no brackets: any rank */
  };
  for (size_t i = 0; i < GV_ARRAY_LEN(want); i++) {
    const ckpt_field_desc *f = ckpt_record_field(d, want[i].field);
    cr_assert_not_null(f, "field %s", want[i].field);
    cr_assert_eq(f->type->kind, CKPT_KIND_ARRAY);
    cr_assert_eq(f->type->dtype, want[i].dtype, "dtype of %s", want[i].field);
    cr_assert_eq(f->type->n_dims, want[i].rank, "rank of %s", want[i].field);
  }
  const ckpt_field_desc *i16 = ckpt_record_field(d, "i16");
  cr_assert_eq(i16->type->dims[0].size, 2);
  cr_assert_eq(i16->type->dims[1].size, 3);
  cr_assert_null(i16->type->dims[1].name);
  const ckpt_field_desc *i64 = ckpt_record_field(d, "i64");
  cr_assert_str_eq(i64->type->dims[0].name, "N");
  cr_assert_eq(i64->type->dims[1].size, 2);
  gs_expect_no_leaks();
}

Test(generated_desc, containers_and_handles) {
  const ckpt_record_desc *d = &alltypes_Containers_desc;
  const ckpt_field_desc *items = ckpt_record_field(d, "items");
  cr_assert_eq(items->type->kind, CKPT_KIND_LIST);
  cr_assert_eq(items->type->elem->kind, CKPT_KIND_RECORD);
  cr_assert_eq(items->type->elem->record, &alltypes_Item_desc);
  cr_assert_eq(items->type->elem_size, sizeof(alltypes_Item));
  const ckpt_field_desc *strings = ckpt_record_field(d, "strings");
  cr_assert_eq(strings->type->elem->kind, CKPT_KIND_STRING);
  cr_assert_eq(strings->type->elem_size, sizeof(char *));
  const ckpt_field_desc *blobs = ckpt_record_field(d, "blobs");
  cr_assert_eq(blobs->type->elem->kind, CKPT_KIND_BYTES);
  cr_assert_eq(blobs->type->elem_size, sizeof(ckpt_bytes));
  const ckpt_field_desc *named = ckpt_record_field(d, "named_items");
  cr_assert_eq(named->type->kind, CKPT_KIND_MAP);
  cr_assert_eq(named->type->elem_size, sizeof(alltypes_Containers_named_items_entry));
  cr_assert_eq(named->type->entry_value_offset,
               offsetof(alltypes_Containers_named_items_entry, value));
  const ckpt_field_desc *protos = ckpt_record_field(d, "protos");
  cr_assert_eq(protos->type->elem->kind, CKPT_KIND_PROTO);
  cr_assert_eq(protos->type->elem->proto, &alltypes__pb__blob__descriptor);

  /* recursion through list and map points back at the record itself */
  const ckpt_field_desc *children = ckpt_record_field(&alltypes_Node_desc, "children");
  cr_assert_eq(children->type->elem->record, &alltypes_Node_desc);
  const ckpt_field_desc *links = ckpt_record_field(&alltypes_Node_desc, "links");
  cr_assert_eq(links->type->elem->record, &alltypes_Node_desc);

  const ckpt_record_desc *ks = &alltypes_KitchenSink_desc;
  cr_assert(ks->is_args);
  cr_assert_eq(ks->size, sizeof(alltypes_KitchenSink));
  cr_assert_eq(ckpt_record_field(ks, "nested")->type->kind, CKPT_KIND_ARGS);
  cr_assert_eq(ckpt_record_field(ks, "more")->type->elem->kind, CKPT_KIND_ARGS);
  cr_assert_eq(ckpt_record_field(ks, "everything")->offset,
               offsetof(alltypes_KitchenSink, everything));

  /* defaults recorded in the table, as the runtime's generic init reads them */
  const ckpt_field_desc *ver = ckpt_record_field(ks, "version");
  cr_assert(ver->flags & CKPT_FIELD_HAS_DEFAULT);
  cr_assert_eq(ver->def.i, 2);
  const ckpt_field_desc *magic = ckpt_record_field(&alltypes_Scalars_desc, "magic");
  cr_assert(magic->flags & CKPT_FIELD_HAS_DEFAULT);
  cr_assert_eq(magic->def.len, 7);
  const ckpt_field_desc *u64 = ckpt_record_field(&alltypes_Scalars_desc, "u64");
  cr_assert_eq(u64->def.u, UINT64_MAX);
  gs_expect_no_leaks();
}

Test(generated_desc, handler_descriptors) {
  const ckpt_handler_desc *h = &demo_TrainStateHandler_desc;
  cr_assert_str_eq(h->name, "TrainStateHandler");
  cr_assert_str_eq(h->full_name, "demo.TrainStateHandler");
  cr_assert_not_null(h->typestr);
  cr_assert_eq(h->vtable, &ckpt_record_handler_vtable, "`handler H for R` uses the runtime's");
  cr_assert_eq(h->impl, &demo_TrainState_desc);

  const ckpt_handler_desc *e = &emb_EmbeddingTableHandler_desc;
  cr_assert_str_eq(e->typestr, "ckpt.examples.EmbeddingTableHandler");
  cr_assert_eq(e->vtable->save, emb_EmbeddingTableHandler_save);
  cr_assert_eq(e->vtable->restore, emb_EmbeddingTableHandler_restore);
  cr_assert_eq(e->vtable->init, emb_EmbeddingTableHandler_init);
  cr_assert_eq(e->vtable->close, emb_EmbeddingTableHandler_close);
  cr_assert_eq(e->vtable->metadata, emb_EmbeddingTableHandler_metadata);
  cr_assert_eq(e->vtable->finalize, emb_EmbeddingTableHandler_finalize);
  cr_assert_not_null(e->doc);
  gs_expect_no_leaks();
}

/* ---------------------------------------------------------------- deep equality */

Test(generated_equal, equal_after_init_and_after_identical_fills) {
  demo_TrainState a, b;
  cr_assert_eq(demo_TrainState_init(&a), CKPT_OK);
  cr_assert_eq(demo_TrainState_init(&b), CKPT_OK);
  cr_assert(demo_TrainState_equal(&a, &b));
  cr_assert(demo_TrainState_equal(&a, &a));
  gv_fill_train_state(&a, 7);
  cr_assert_not(demo_TrainState_equal(&a, &b));
  gv_fill_train_state(&b, 7);
  cr_assert(demo_TrainState_equal(&a, &b), "same content in separate allocations is equal");
  demo_TrainState_free(&a);
  demo_TrainState_free(&b);
  gs_expect_no_leaks();
}

/* Each mutation changes one field of one of two identical TrainStates; each must be seen. */
#define TRAIN_STATE_MUTATIONS 16
static const char *mutate_train_state(demo_TrainState *s, int which) {
  switch (which) {
    case 0: s->step++; return "step";
    /* random bytes may spell NaN or 1e30, where adding 1 changes nothing: flip a bit */
    case 1: ((uint8_t *)ckpt_array_data(s->w1))[21] ^= 0x10; return "one element of w1";
    case 2: {
      ckpt_array_free(s->b1);
      s->b1 = gv_f32(5, -1, 999);
      return "shape of b1";
    }
    case 3: ((uint8_t *)ckpt_array_data(s->w2))[0] ^= 1; return "one bit of a bfloat16 array";
    case 4: s->adam_m[1].key[0] = 'x'; return "a map key";
    case 5: ((uint8_t *)ckpt_array_data(s->adam_m[0].value))[2] ^= 0x01; return "a map value";
    case 6: s->n_buffers--; ckpt_array_free(s->buffers[s->n_buffers]); return "list length";
    case 7: s->has_best_loss = false; return "presence of an optional";
    case 8: s->best_loss += 1.0f; return "value of an optional";
    case 9: s->hparams.batch_size = 1; return "nested record scalar";
    case 10: s->hparams.optimizer[0] = 'S'; return "nested record string";
    case 11: cJSON_AddTrueToObject(s->notes, "extra"); return "json";
    case 12: s->run_info->start_time_unix++; return "proto field";
    case 13: ((uint32_t *)ckpt_array_data(s->key->data))[1]++; return "jax key data";
    case 14: s->np_rng->pos++; return "numpy rng position";
    default: {
      ckpt_error err = CKPT_ERROR_INIT;
      cr_assert_eq(ckpt_tree_dict_set(s->extra, "new", ckpt_tree_new_none(), &err), CKPT_OK);
      return "tree";
    }
  }
}

Test(generated_equal, every_field_kind_participates) {
  for (int which = 0; which < TRAIN_STATE_MUTATIONS; which++) {
    demo_TrainState a, b;
    cr_assert_eq(demo_TrainState_init(&a), CKPT_OK);
    cr_assert_eq(demo_TrainState_init(&b), CKPT_OK);
    gv_fill_train_state(&a, 3);
    gv_fill_train_state(&b, 3);
    cr_assert(demo_TrainState_equal(&a, &b));
    const char *what = mutate_train_state(&b, which);
    cr_assert_not(demo_TrainState_equal(&a, &b), "a difference in %s went unnoticed", what);
    cr_assert_not(demo_TrainState_equal(&b, &a), "equality is symmetric (%s)", what);
    demo_TrainState_free(&a);
    demo_TrainState_free(&b);
  }
  gs_expect_no_leaks();
}

Test(generated_equal, maps_compare_as_sets_of_keys) {
  demo_TrainState a, b;
  cr_assert_eq(demo_TrainState_init(&a), CKPT_OK);
  cr_assert_eq(demo_TrainState_init(&b), CKPT_OK);
  gv_fill_train_state(&a, 1);
  gv_fill_train_state(&b, 1);
  demo_TrainState_adam_m_entry tmp = b.adam_m[0];
  b.adam_m[0] = b.adam_m[1];
  b.adam_m[1] = tmp;
  cr_assert(demo_TrainState_equal(&a, &b), "entry order of a map does not matter");
  /* but a list's order does */
  ckpt_array *t = b.buffers[0];
  b.buffers[0] = b.buffers[1];
  b.buffers[1] = t;
  cr_assert_not(demo_TrainState_equal(&a, &b), "element order of a list matters");
  demo_TrainState_free(&a);
  demo_TrainState_free(&b);
  gs_expect_no_leaks();
}

Test(generated_equal, absent_optional_values_are_ignored) {
  alltypes_Optionals a, b;
  cr_assert_eq(alltypes_Optionals_init(&a), CKPT_OK);
  cr_assert_eq(alltypes_Optionals_init(&b), CKPT_OK);
  b.i = 99; /* has_i is false: the value is not part of the record */
  cr_assert(alltypes_Optionals_equal(&a, &b));
  b.has_i = true;
  cr_assert_not(alltypes_Optionals_equal(&a, &b));
  alltypes_Optionals_free(&a);
  alltypes_Optionals_free(&b);
  gs_expect_no_leaks();
}

Test(generated_equal, everything_record_deep_equality) {
  alltypes_Everything a, b;
  cr_assert_eq(alltypes_Everything_init(&a), CKPT_OK);
  cr_assert_eq(alltypes_Everything_init(&b), CKPT_OK);
  cr_assert(alltypes_Everything_equal(&a, &b));
  gv_fill_everything(&a, 11);
  gv_fill_everything(&b, 11);
  cr_assert(alltypes_Everything_equal(&a, &b));

  /* a few deep differences, each undone after it is seen */
  b.root.children[1].links[0].value.name[0] = 'X';
  cr_assert_not(alltypes_Everything_equal(&a, &b), "a recursive record three levels down");
  b.root.children[1].links[0].value.name[0] = a.root.children[1].links[0].value.name[0];
  cr_assert(alltypes_Everything_equal(&a, &b));

  b.containers.blobs[0].data[0] ^= 0x80;
  cr_assert_not(alltypes_Everything_equal(&a, &b), "bytes in a list");
  b.containers.blobs[0].data[0] ^= 0x80;

  b.containers.protos[0].value->crc32c++;
  cr_assert_not(alltypes_Everything_equal(&a, &b), "a proto in a map");
  b.containers.protos[0].value->crc32c--;

  b.containers.items[1].weights[0] += 1.0;
  cr_assert_not(alltypes_Everything_equal(&a, &b), "a list inside a record inside a list");
  b.containers.items[1].weights[0] -= 1.0;

  b.zeros.by.len--;
  cr_assert_not(alltypes_Everything_equal(&a, &b), "bytes length");
  b.zeros.by.len++;

  ((int16_t *)ckpt_array_data(b.arrays.any))[7]++;
  cr_assert_not(alltypes_Everything_equal(&a, &b), "an array of any dtype");
  ((int16_t *)ckpt_array_data(b.arrays.any))[7]--;

  b.optionals.has_item = false;
  cr_assert_not(alltypes_Everything_equal(&a, &b), "an optional record's presence");
  b.optionals.has_item = true;

  cr_assert(alltypes_Everything_equal(&a, &b), "every change above was undone");
  alltypes_Everything_free(&a);
  alltypes_Everything_free(&b);
  gs_expect_no_leaks();
}

/* ---------------------------------------------------------------- free */

/* Freeing a record whose every owned member holds heap data must release all of it; under
 * `make check` LeakSanitizer fails this test's process if anything is left. */
Test(generated_free, releases_every_owned_member) {
  alltypes_Everything e;
  cr_assert_eq(alltypes_Everything_init(&e), CKPT_OK);
  gv_fill_everything(&e, 5);
  alltypes_Everything_free(&e);
  cr_assert_null(e.handles.config);
  cr_assert_null(e.containers.items);
  cr_assert_eq(e.containers.n_items, 0);
  cr_assert_null(e.root.children);
  cr_assert_null(e.arrays.any);
  /* freeing again (or freeing a record that only went through init) is harmless */
  alltypes_Everything_free(&e);

  demo_TrainState s;
  cr_assert_eq(demo_TrainState_init(&s), CKPT_OK);
  gv_fill_train_state(&s, 5);
  demo_TrainState_free(&s);
  cr_assert_null(s.adam_m);
  cr_assert_null(s.run_info);
  cr_assert_null(s.hparams.optimizer);
  gs_expect_no_leaks();
}

Test(generated_free, args_delete_releases_nested_args) {
  alltypes_KitchenSink *ks = alltypes_KitchenSink_new();
  cr_assert_not_null(ks);
  gv_fill_everything(&ks->everything, 9);
  emb_EmbeddingTableSave *inner = emb_EmbeddingTableSave_new();
  cr_assert_not_null(inner);
  inner->table = gv_f32(4, 3, 1);
  ks->nested = &inner->base;
  ks->n_more = 1;
  ks->more = gv_calloc(1, sizeof *ks->more);
  ks->more[0].key = gv_strdup("restore");
  ks->more[0].value = &emb_EmbeddingTableRestore_new()->base;
  ks->comment = gv_strdup("owned");
  alltypes_KitchenSink *same = alltypes_KitchenSink_new();
  cr_assert_not(ckpt_args_equal(&ks->base, &same->base));
  ckpt_args_delete(&same->base);
  ckpt_args_delete(&ks->base); /* everything above, including the nested args, goes with it */
  gs_expect_no_leaks();
}
