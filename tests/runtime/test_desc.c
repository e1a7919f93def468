/* test_desc.c — the generic init / free / equal over descriptor tables (desc.c), with a
 * hand-written struct holding a field of every kind in desc.h and its const descriptor, laid out
 * exactly as ckptgen lays out generated code. Leaks show up under `make check` (ASan). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <protobuf-c/protobuf-c.h>

#include "ckpt/ckpt.h"
#include "core_msg.pb-c.h"

/* ---------------------------------------------------------------- the hand-written "schema"
 *
 * record Inner { int32 a = 7; string s = "inner-default"; }
 * args All {
 *   bool b = true; int8 i8 = -5; int16 i16 = -300; int32 i32 = 42; int64 i64 = -1000000000000;
 *   uint8 u8 = 200; uint16 u16 = 60000; uint32 u32 = 4000000000; uint64 u64 = 18446744073709551615;
 *   float32 f32 = 0.5; float64 f64 = -2.25; string str = "hello"; bytes bytes = "a\0b";
 *   array<float32>[?] arr; Inner inner; optional Inner opt_inner; optional int32 opt_i32 = 9;
 *   optional int64 opt_i64; list<int32> ints; list<string> strs; list<Inner> inners;
 *   list<array<float32>[?]> arrs; map<int32> imap; map<args> amap; map<Inner> inmap; json json;
 *   proto coretest.Point proto; jax_random_key key; numpy_random_key rng; tree tree; args args;
 *   string str_nodefault; optional list<int32> opt_ints;
 * }
 * plus a RECORD_REF field `ref` (const Inner *), as in a generated record-handler args. */

typedef struct Inner {
  int32_t a;
  char *s;
} Inner;

typedef struct IntEntry {
  char *key;
  int32_t value;
} IntEntry;

typedef struct ArgsEntry {
  char *key;
  ckpt_args *value;
} ArgsEntry;

typedef struct InnerEntry {
  char *key;
  Inner value;
} InnerEntry;

typedef struct All {
  ckpt_args base;
  bool b;
  int8_t i8;
  int16_t i16;
  int32_t i32;
  int64_t i64;
  uint8_t u8;
  uint16_t u16;
  uint32_t u32;
  uint64_t u64;
  float f32;
  double f64;
  char *str;
  ckpt_bytes bytes;
  ckpt_array *arr;
  Inner inner;
  bool has_opt_inner;
  Inner opt_inner;
  bool has_opt_i32;
  int32_t opt_i32;
  bool has_opt_i64;
  int64_t opt_i64;
  size_t n_ints;
  int32_t *ints;
  size_t n_strs;
  char **strs;
  size_t n_inners;
  Inner *inners;
  size_t n_arrs;
  ckpt_array **arrs;
  size_t n_imap;
  IntEntry *imap;
  size_t n_amap;
  ArgsEntry *amap;
  size_t n_inmap;
  InnerEntry *inmap;
  cJSON *json;
  Coretest__Point *proto;
  ckpt_jax_key *key;
  ckpt_numpy_rng *rng;
  ckpt_tree *tree;
  ckpt_args *args;
  const Inner *ref;
  char *str_nodefault;
  bool has_opt_ints;
  size_t n_opt_ints;
  int32_t *opt_ints;
} All;

#define T(K) static const ckpt_type_desc t_##K = {.kind = CKPT_KIND_##K}
T(BOOL);
T(INT8);
T(INT16);
T(INT32);
T(INT64);
T(UINT8);
T(UINT16);
T(UINT32);
T(UINT64);
T(FLOAT32);
T(FLOAT64);
T(STRING);
T(BYTES);
T(JSON);
T(JAX_KEY);
T(NUMPY_RNG);
T(TREE);
T(ARGS);
#undef T

static const ckpt_dim_desc any_dim = {-1, NULL};
static const ckpt_type_desc t_arr = {
    .kind = CKPT_KIND_ARRAY, .dtype = CKPT_DTYPE_FLOAT32, .n_dims = 1, .dims = &any_dim};
static const ckpt_type_desc t_proto = {.kind = CKPT_KIND_PROTO,
                                       .proto = &coretest__point__descriptor};

static const ckpt_field_desc inner_fields[] = {
    {.name = "a",
     .type = &t_INT32,
     .flags = CKPT_FIELD_HAS_DEFAULT,
     .offset = offsetof(Inner, a),
     .def = {.i = 7}},
    {.name = "s",
     .type = &t_STRING,
     .flags = CKPT_FIELD_HAS_DEFAULT,
     .offset = offsetof(Inner, s),
     .def = {.s = "inner-default"}},
};
static const ckpt_record_desc Inner_desc = {CKPT_RECORD_DESC_MAGIC,
                                            CKPT_ABI_VERSION,
                                            "Inner",
                                            "t.Inner",
                                            "t_Inner",
                                            sizeof(Inner),
                                            2,
                                            inner_fields,
                                            false,
                                            NULL};

static const ckpt_type_desc t_inner = {.kind = CKPT_KIND_RECORD, .record = &Inner_desc};
static const ckpt_type_desc t_ref = {.kind = CKPT_KIND_RECORD_REF, .record = &Inner_desc};
static const ckpt_type_desc t_ints = {
    .kind = CKPT_KIND_LIST, .elem = &t_INT32, .elem_size = sizeof(int32_t)};
static const ckpt_type_desc t_strs = {
    .kind = CKPT_KIND_LIST, .elem = &t_STRING, .elem_size = sizeof(char *)};
static const ckpt_type_desc t_inners = {
    .kind = CKPT_KIND_LIST, .elem = &t_inner, .elem_size = sizeof(Inner)};
static const ckpt_type_desc t_arrs = {
    .kind = CKPT_KIND_LIST, .elem = &t_arr, .elem_size = sizeof(ckpt_array *)};
static const ckpt_type_desc t_imap = {.kind = CKPT_KIND_MAP,
                                      .elem = &t_INT32,
                                      .elem_size = sizeof(IntEntry),
                                      .entry_value_offset = offsetof(IntEntry, value)};
static const ckpt_type_desc t_amap = {.kind = CKPT_KIND_MAP,
                                      .elem = &t_ARGS,
                                      .elem_size = sizeof(ArgsEntry),
                                      .entry_value_offset = offsetof(ArgsEntry, value)};
static const ckpt_type_desc t_inmap = {.kind = CKPT_KIND_MAP,
                                       .elem = &t_inner,
                                       .elem_size = sizeof(InnerEntry),
                                       .entry_value_offset = offsetof(InnerEntry, value)};

/* F(name, type, flags[, more designated initialisers]) */
#define F(NAME, TYPE, ...) \
  { .name = #NAME, .type = &TYPE, .offset = offsetof(All, NAME), .flags = __VA_ARGS__ }
#define DEF CKPT_FIELD_HAS_DEFAULT
#define OPT (CKPT_FIELD_OPTIONAL | CKPT_FIELD_HAS_PRESENCE)

static const ckpt_field_desc all_fields[] = {
    F(b, t_BOOL, DEF, .def = {.b = true}),
    F(i8, t_INT8, DEF, .def = {.i = -5}),
    F(i16, t_INT16, DEF, .def = {.i = -300}),
    F(i32, t_INT32, DEF, .def = {.i = 42}),
    F(i64, t_INT64, DEF, .def = {.i = -1000000000000}),
    F(u8, t_UINT8, DEF, .def = {.u = 200}),
    F(u16, t_UINT16, DEF, .def = {.u = 60000}),
    F(u32, t_UINT32, DEF, .def = {.u = 4000000000u}),
    F(u64, t_UINT64, DEF, .def = {.u = UINT64_MAX}),
    F(f32, t_FLOAT32, DEF, .def = {.f = 0.5}),
    F(f64, t_FLOAT64, DEF, .def = {.f = -2.25}),
    F(str, t_STRING, DEF, .def = {.s = "hello"}),
    F(bytes, t_BYTES, DEF, .def = {.s = "a\0b", .len = 3}),
    F(arr, t_arr, 0),
    F(inner, t_inner, 0),
    F(opt_inner, t_inner, OPT, .presence_offset = offsetof(All, has_opt_inner)),
    F(opt_i32, t_INT32, OPT | DEF, .presence_offset = offsetof(All, has_opt_i32), .def = {.i = 9}),
    F(opt_i64, t_INT64, OPT, .presence_offset = offsetof(All, has_opt_i64)),
    F(ints, t_ints, 0, .count_offset = offsetof(All, n_ints)),
    F(strs, t_strs, 0, .count_offset = offsetof(All, n_strs)),
    F(inners, t_inners, 0, .count_offset = offsetof(All, n_inners)),
    F(arrs, t_arrs, 0, .count_offset = offsetof(All, n_arrs)),
    F(imap, t_imap, 0, .count_offset = offsetof(All, n_imap)),
    F(amap, t_amap, 0, .count_offset = offsetof(All, n_amap)),
    F(inmap, t_inmap, 0, .count_offset = offsetof(All, n_inmap)),
    F(json, t_JSON, 0),
    F(proto, t_proto, 0),
    F(key, t_JAX_KEY, 0),
    F(rng, t_NUMPY_RNG, 0),
    F(tree, t_TREE, 0),
    F(args, t_ARGS, CKPT_FIELD_OPTIONAL),
    F(ref, t_ref, 0),
    F(str_nodefault, t_STRING, 0),
    F(opt_ints, t_ints, OPT, .count_offset = offsetof(All, n_opt_ints),
      .presence_offset = offsetof(All, has_opt_ints)),
};

static const ckpt_args_desc All_desc = {CKPT_RECORD_DESC_MAGIC,
                                        CKPT_ABI_VERSION,
                                        "All",
                                        "t.All",
                                        "t_All",
                                        sizeof(All),
                                        sizeof all_fields / sizeof all_fields[0],
                                        all_fields,
                                        true,
                                        NULL};

/* A second args type, for ARGS fields and args equality across types. */
typedef struct Small {
  ckpt_args base;
  int32_t v;
} Small;
static const ckpt_field_desc small_fields[] = {
    {.name = "v", .type = &t_INT32, .offset = offsetof(Small, v)}};
static const ckpt_args_desc Small_desc = {CKPT_RECORD_DESC_MAGIC,
                                          CKPT_ABI_VERSION,
                                          "Small",
                                          "t.Small",
                                          "t_Small",
                                          sizeof(Small),
                                          1,
                                          small_fields,
                                          true,
                                          NULL};
static const ckpt_args_desc Small2_desc = {CKPT_RECORD_DESC_MAGIC,
                                           CKPT_ABI_VERSION,
                                           "Small2",
                                           "t.Small2",
                                           "t_Small2",
                                           sizeof(Small),
                                           1,
                                           small_fields,
                                           true,
                                           NULL};

/* ---------------------------------------------------------------- builders */

static ckpt_array *f32_array(int64_t n, float base) {
  ckpt_array *a = NULL;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_array_new(CKPT_DTYPE_FLOAT32, 1, &n, &a, &err), CKPT_OK, "%s", err.message);
  float *d = ckpt_array_data(a);
  for (int64_t i = 0; i < n; i++)
    d[i] = base + (float)i;
  return a;
}

static Small *small(int32_t v) {
  Small *s = (Small *)ckpt_args_new(&Small_desc);
  cr_assert_not_null(s);
  s->v = v;
  return s;
}

/* in: an initialised or zeroed Inner. */
static void inner_set(Inner *in, int32_t a, const char *s) {
  ckpt_record_free(&Inner_desc, in);
  cr_assert_eq(ckpt_record_init(&Inner_desc, in), CKPT_OK);
  in->a = a;
  free(in->s);
  in->s = strdup(s);
}

static const Inner shared_ref = {11, "ref"};

/* Fills every field (after init) with deterministic content. */
static void fill(All *x) {
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_record_init(&All_desc, x), CKPT_OK);
  x->arr = f32_array(4, 1.0f);
  inner_set(&x->inner, 1, "one");
  x->has_opt_inner = true;
  inner_set(&x->opt_inner, 2, "two");
  x->has_opt_i64 = true;
  x->opt_i64 = -77;
  x->n_ints = 3;
  x->ints = malloc(3 * sizeof *x->ints);
  for (int i = 0; i < 3; i++)
    x->ints[i] = 10 * i;
  x->n_strs = 2;
  x->strs = malloc(2 * sizeof *x->strs);
  x->strs[0] = strdup("s0");
  x->strs[1] = strdup("s1");
  x->n_inners = 2;
  x->inners = calloc(2, sizeof *x->inners);
  inner_set(&x->inners[0], 100, "i0");
  inner_set(&x->inners[1], 101, "i1");
  x->n_arrs = 2;
  x->arrs = malloc(2 * sizeof *x->arrs);
  x->arrs[0] = f32_array(2, 5.0f);
  x->arrs[1] = f32_array(3, 6.0f);
  x->n_imap = 2;
  x->imap = malloc(2 * sizeof *x->imap);
  x->imap[0] = (IntEntry){strdup("alpha"), 1};
  x->imap[1] = (IntEntry){strdup("beta"), 2};
  x->n_amap = 2;
  x->amap = malloc(2 * sizeof *x->amap);
  x->amap[0] = (ArgsEntry){strdup("p"), &small(1)->base};
  x->amap[1] = (ArgsEntry){strdup("q"), &small(2)->base};
  x->n_inmap = 1;
  x->inmap = calloc(1, sizeof *x->inmap);
  x->inmap[0].key = strdup("only");
  inner_set(&x->inmap[0].value, 5, "five");
  x->json = cJSON_Parse("{\"a\": [1, 2, {\"b\": null}], \"c\": \"d\"}");
  x->proto = malloc(sizeof *x->proto);
  coretest__point__init(x->proto);
  x->proto->x = 3;
  x->proto->label = strdup("pt");
  x->proto->n_vals = 2;
  x->proto->vals = malloc(2 * sizeof(int64_t));
  x->proto->vals[0] = 1;
  x->proto->vals[1] = -1;
  x->key = calloc(1, sizeof *x->key);
  int64_t kshape = 2;
  cr_assert_eq(ckpt_array_new(CKPT_DTYPE_UINT32, 1, &kshape, &x->key->data, &err), CKPT_OK);
  ((uint32_t *)ckpt_array_data(x->key->data))[1] = 42;
  x->key->typed = true;
  x->rng = calloc(1, sizeof *x->rng);
  ckpt_numpy_rng_seed(x->rng, 1234);
  x->tree = ckpt_tree_new_dict();
  cr_assert_eq(ckpt_tree_dict_set(x->tree, "w", ckpt_tree_new_array(f32_array(2, 0.0f)), &err),
               CKPT_OK);
  cr_assert_eq(ckpt_tree_dict_set(x->tree, "step", ckpt_tree_new_int(CKPT_DTYPE_INT64, 3), &err),
               CKPT_OK);
  x->args = &small(9)->base;
  x->ref = &shared_ref;
  x->str_nodefault = strdup("nd");
  x->has_opt_ints = true;
  x->n_opt_ints = 1;
  x->opt_ints = malloc(sizeof(int32_t));
  x->opt_ints[0] = 5;
}

/* ---------------------------------------------------------------- tests */

Test(desc, init_sets_every_default_and_nulls_the_rest) {
  All x;
  memset(&x, 0xAB, sizeof x); /* garbage that init must overwrite */
  cr_assert_eq(ckpt_record_init(&All_desc, &x), CKPT_OK);
  cr_assert_eq(x.base.desc, &All_desc);
  cr_assert(x.b);
  cr_assert_eq(x.i8, -5);
  cr_assert_eq(x.i16, -300);
  cr_assert_eq(x.i32, 42);
  cr_assert_eq(x.i64, -1000000000000);
  cr_assert_eq(x.u8, 200);
  cr_assert_eq(x.u16, 60000);
  cr_assert_eq(x.u32, 4000000000u);
  cr_assert_eq(x.u64, UINT64_MAX);
  cr_assert_eq(x.f32, 0.5f);
  cr_assert_eq(x.f64, -2.25);
  cr_assert_str_eq(x.str, "hello");
  cr_assert_eq(x.bytes.len, 3);
  cr_assert_eq(memcmp(x.bytes.data, "a\0b", 3), 0);
  cr_assert_null(x.arr);
  /* Embedded records get their own defaults, even optional ones (which stay absent). */
  cr_assert_eq(x.inner.a, 7);
  cr_assert_str_eq(x.inner.s, "inner-default");
  cr_assert(!x.has_opt_inner);
  cr_assert_eq(x.opt_inner.a, 7);
  /* An optional with a default is present; one without is absent. */
  cr_assert(x.has_opt_i32);
  cr_assert_eq(x.opt_i32, 9);
  cr_assert(!x.has_opt_i64);
  cr_assert_eq(x.n_ints, 0);
  cr_assert_null(x.ints);
  cr_assert_eq(x.n_amap, 0);
  cr_assert_null(x.amap);
  cr_assert_null(x.json);
  cr_assert_null(x.proto);
  cr_assert_null(x.key);
  cr_assert_null(x.rng);
  cr_assert_null(x.tree);
  cr_assert_null(x.args);
  cr_assert_null(x.ref);
  cr_assert_null(x.str_nodefault);
  cr_assert(!x.has_opt_ints);
  ckpt_record_free(&All_desc, &x);
}

Test(desc, free_releases_everything_and_zeroes_but_keeps_the_args_type) {
  All x;
  fill(&x);
  ckpt_record_free(&All_desc, &x);
  cr_assert_eq(x.base.desc, &All_desc);
  cr_assert_null(x.str);
  cr_assert_null(x.arr);
  cr_assert_null(x.ints);
  cr_assert_eq(x.n_ints, 0);
  cr_assert_null(x.amap);
  cr_assert_null(x.proto);
  cr_assert_null(x.ref);
  cr_assert(!x.has_opt_inner);
  cr_assert(!x.b);
  cr_assert_eq(x.i32, 0);
  /* Freeing twice is harmless (everything is NULL now). */
  ckpt_record_free(&All_desc, &x);
  /* The borrowed record is untouched. */
  cr_assert_str_eq(shared_ref.s, "ref");
}

Test(desc, equal_records_compare_equal) {
  All a, b;
  fill(&a);
  fill(&b);
  cr_assert(ckpt_record_equal(&All_desc, &a, &b));
  cr_assert(ckpt_record_equal(&All_desc, &a, &a));
  cr_assert(ckpt_args_equal(&a.base, &b.base));
  ckpt_record_free(&All_desc, &a);
  ckpt_record_free(&All_desc, &b);
  /* Two freshly initialised records are equal too. */
  cr_assert_eq(ckpt_record_init(&All_desc, &a), CKPT_OK);
  cr_assert_eq(ckpt_record_init(&All_desc, &b), CKPT_OK);
  cr_assert(ckpt_record_equal(&All_desc, &a, &b));
  ckpt_record_free(&All_desc, &a);
  ckpt_record_free(&All_desc, &b);
}

/* One change per field kind; each must make the records differ. */
typedef void (*mutation)(All *x);
static void m_b(All *x) {
  x->b = false;
}
static void m_i8(All *x) {
  x->i8++;
}
static void m_i16(All *x) {
  x->i16++;
}
static void m_i32(All *x) {
  x->i32++;
}
static void m_i64(All *x) {
  x->i64++;
}
static void m_u8(All *x) {
  x->u8++;
}
static void m_u16(All *x) {
  x->u16++;
}
static void m_u32(All *x) {
  x->u32++;
}
static void m_u64(All *x) {
  x->u64--;
}
static void m_f32(All *x) {
  x->f32 += 1;
}
static void m_f64(All *x) {
  x->f64 = -0.0 + 1e-300;
}
static void m_str(All *x) {
  x->str[0] = 'H';
}
static void m_str_null(All *x) {
  free(x->str);
  x->str = NULL;
}
static void m_bytes(All *x) {
  x->bytes.data[1] = 'x';
}
static void m_bytes_len(All *x) {
  x->bytes.len = 2;
}
static void m_arr(All *x) {
  ((float *)ckpt_array_data(x->arr))[3] = 99;
}
static void m_arr_null(All *x) {
  ckpt_array_free(x->arr);
  x->arr = NULL;
}
static void m_inner(All *x) {
  x->inner.a++;
}
static void m_inner_s(All *x) {
  x->inner.s[0] = 'O';
}
static void m_opt_inner_absent(All *x) {
  x->has_opt_inner = false;
}
static void m_opt_inner_value(All *x) {
  x->opt_inner.a = -1;
}
static void m_opt_i64_absent(All *x) {
  x->has_opt_i64 = false;
}
static void m_ints(All *x) {
  x->ints[2]++;
}
static void m_ints_count(All *x) {
  x->n_ints = 2;
}
static void m_strs(All *x) {
  x->strs[1][1] = '9';
}
static void m_inners(All *x) {
  x->inners[1].a = 0;
}
static void m_arrs(All *x) {
  ((float *)ckpt_array_data(x->arrs[1]))[0] = -5;
}
static void m_imap_value(All *x) {
  x->imap[1].value = 3;
}
static void m_imap_key(All *x) {
  x->imap[0].key[0] = 'A';
}
static void m_amap_value(All *x) {
  ((Small *)x->amap[0].value)->v = 100;
}
static void m_inmap(All *x) {
  x->inmap[0].value.s[0] = 'F';
}
static void m_json(All *x) {
  cJSON_AddNumberToObject(x->json, "extra", 1);
}
static void m_proto(All *x) {
  x->proto->vals[1] = 2;
}
static void m_proto_null(All *x) {
  protobuf_c_message_free_unpacked(&x->proto->base, NULL);
  x->proto = NULL;
}
static void m_key(All *x) {
  x->key->typed = false;
}
static void m_rng(All *x) {
  x->rng->pos = 3;
}
static void m_tree(All *x) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_tree_dict_set(x->tree, "step", ckpt_tree_new_int(CKPT_DTYPE_INT64, 4), &err);
}
static void m_args(All *x) {
  ((Small *)x->args)->v = 0;
}
static void m_args_type(All *x) {
  x->args->desc = &Small2_desc;
}
static void m_args_null(All *x) {
  ckpt_args_delete(x->args);
  x->args = NULL;
}
static Inner other_ref = {11, "REF"};
static void m_ref(All *x) {
  x->ref = &other_ref;
}
static void m_ref_null(All *x) {
  x->ref = NULL;
}
static void m_opt_ints(All *x) {
  x->opt_ints[0] = 6;
}
static void m_opt_ints_absent(All *x) {
  x->has_opt_ints = false;
}

Test(desc, every_field_kind_takes_part_in_equality) {
  struct {
    const char *name;
    mutation m;
  } ms[] = {{"b", m_b},
            {"i8", m_i8},
            {"i16", m_i16},
            {"i32", m_i32},
            {"i64", m_i64},
            {"u8", m_u8},
            {"u16", m_u16},
            {"u32", m_u32},
            {"u64", m_u64},
            {"f32", m_f32},
            {"f64", m_f64},
            {"str", m_str},
            {"str NULL", m_str_null},
            {"bytes", m_bytes},
            {"bytes len", m_bytes_len},
            {"arr", m_arr},
            {"arr NULL", m_arr_null},
            {"inner", m_inner},
            {"inner.s", m_inner_s},
            {"opt_inner absent", m_opt_inner_absent},
            {"opt_inner value", m_opt_inner_value},
            {"opt_i64 absent", m_opt_i64_absent},
            {"ints", m_ints},
            {"ints count", m_ints_count},
            {"strs", m_strs},
            {"inners", m_inners},
            {"arrs", m_arrs},
            {"imap value", m_imap_value},
            {"imap key", m_imap_key},
            {"amap value", m_amap_value},
            {"inmap", m_inmap},
            {"json", m_json},
            {"proto", m_proto},
            {"proto NULL", m_proto_null},
            {"key", m_key},
            {"rng", m_rng},
            {"tree", m_tree},
            {"args", m_args},
            {"args type", m_args_type},
            {"args NULL", m_args_null},
            {"ref", m_ref},
            {"ref NULL", m_ref_null},
            {"opt_ints", m_opt_ints},
            {"opt_ints absent", m_opt_ints_absent}};
  for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
    All a, b;
    fill(&a);
    fill(&b);
    ms[i].m(&b);
    cr_assert(!ckpt_record_equal(&All_desc, &a, &b), "changing %s went unnoticed", ms[i].name);
    cr_assert(!ckpt_record_equal(&All_desc, &b, &a), "changing %s went unnoticed (b, a)",
              ms[i].name);
    /* m_ints_count / m_bytes_len shrink counts over owned memory: restore before freeing. */
    if (ms[i].m == m_ints_count)
      b.n_ints = 3;
    if (ms[i].m == m_bytes_len)
      b.bytes.len = 3;
    if (ms[i].m == m_args_type)
      b.args->desc = &Small_desc;
    ckpt_record_free(&All_desc, &a);
    ckpt_record_free(&All_desc, &b);
  }
}

Test(desc, absent_optionals_ignore_their_members) {
  All a, b;
  fill(&a);
  fill(&b);
  a.has_opt_inner = b.has_opt_inner = false;
  b.opt_inner.a = 12345;
  a.has_opt_i64 = b.has_opt_i64 = false;
  b.opt_i64 = 1;
  cr_assert(ckpt_record_equal(&All_desc, &a, &b));
  ckpt_record_free(&All_desc, &a);
  ckpt_record_free(&All_desc, &b);
}

Test(desc, maps_compare_as_key_sets) {
  All a, b;
  fill(&a);
  fill(&b);
  /* Same entries, other order. */
  IntEntry t = b.imap[0];
  b.imap[0] = b.imap[1];
  b.imap[1] = t;
  ArgsEntry u = b.amap[0];
  b.amap[0] = b.amap[1];
  b.amap[1] = u;
  cr_assert(ckpt_record_equal(&All_desc, &a, &b));
  /* Same size, one key different. */
  free(b.imap[0].key);
  b.imap[0].key = strdup("gamma");
  cr_assert(!ckpt_record_equal(&All_desc, &a, &b));
  /* A duplicated key cannot stand in for a missing one. */
  free(b.imap[0].key);
  b.imap[0].key = strdup("alpha");
  free(b.imap[1].key);
  b.imap[1].key = strdup("alpha");
  b.imap[1].value = 1;
  cr_assert(!ckpt_record_equal(&All_desc, &a, &b));
  cr_assert(!ckpt_record_equal(&All_desc, &b, &a));
  ckpt_record_free(&All_desc, &a);
  ckpt_record_free(&All_desc, &b);
}

Test(desc, nan_equals_nan_and_lists_compare_elementwise) {
  All a, b;
  fill(&a);
  fill(&b);
  a.f64 = b.f64 = NAN;
  a.f32 = b.f32 = NAN;
  cr_assert(ckpt_record_equal(&All_desc, &a, &b));
  b.f64 = 0;
  cr_assert(!ckpt_record_equal(&All_desc, &a, &b));
  ckpt_record_free(&All_desc, &a);
  ckpt_record_free(&All_desc, &b);
}

Test(desc, equal_handles_null_records) {
  All a;
  fill(&a);
  cr_assert(!ckpt_record_equal(&All_desc, &a, NULL));
  cr_assert(!ckpt_record_equal(&All_desc, NULL, &a));
  cr_assert(ckpt_record_equal(&All_desc, NULL, NULL));
  ckpt_record_free(&All_desc, &a);
}

Test(desc, args_new_delete_equal) {
  All *x = (All *)ckpt_args_new(&All_desc);
  cr_assert_not_null(x);
  cr_assert_eq(x->base.desc, &All_desc);
  cr_assert_str_eq(x->str, "hello");
  All *y = (All *)ckpt_args_new(&All_desc);
  cr_assert(ckpt_args_equal(&x->base, &y->base));
  y->i32 = 0;
  cr_assert(!ckpt_args_equal(&x->base, &y->base));
  ckpt_args_delete(&y->base);
  /* Different args types never compare equal, even with identical layouts. */
  Small *s1 = (Small *)ckpt_args_new(&Small_desc);
  Small *s2 = (Small *)ckpt_args_new(&Small2_desc);
  cr_assert(!ckpt_args_equal(&s1->base, &s2->base));
  cr_assert(ckpt_args_equal(NULL, NULL));
  cr_assert(!ckpt_args_equal(&s1->base, NULL));
  ckpt_args_delete(&s1->base);
  ckpt_args_delete(&s2->base);
  ckpt_args_delete(&x->base);
  ckpt_args_delete(NULL);
  /* A record descriptor is not an args type. */
  cr_assert_null(ckpt_args_new(&Inner_desc));
}

Test(desc, record_field_looks_fields_up_by_name) {
  const ckpt_field_desc *f = ckpt_record_field(&All_desc, "opt_i32");
  cr_assert_not_null(f);
  cr_assert_eq(f->offset, offsetof(All, opt_i32));
  cr_assert(f->flags & CKPT_FIELD_HAS_PRESENCE);
  cr_assert_not_null(ckpt_record_field(&All_desc, "b"));
  cr_assert_not_null(ckpt_record_field(&All_desc, "opt_ints"));
  cr_assert_null(ckpt_record_field(&All_desc, "nope"));
  cr_assert_null(ckpt_record_field(&All_desc, NULL));
  cr_assert_null(ckpt_record_field(NULL, "b"));
}

Test(desc, descriptors_of_another_abi_are_refused) {
  ckpt_record_desc bad = Inner_desc;
  bad.abi_version = CKPT_ABI_VERSION + 1;
  Inner in;
  cr_assert_eq(ckpt_record_init(&bad, &in), CKPT_EVERSION);
  bad = Inner_desc;
  bad.magic = 0;
  cr_assert_eq(ckpt_record_init(&bad, &in), CKPT_EVERSION);
  cr_assert_eq(ckpt_record_init(NULL, &in), CKPT_EINVAL);
  ckpt_args_desc bad_args = Small_desc;
  bad_args.magic = 1;
  cr_assert_null(ckpt_args_new(&bad_args));
  /* free/equal on such a descriptor do nothing rather than walk garbage. */
  ckpt_record_free(&bad, &in);
  cr_assert(!ckpt_record_equal(&bad, &in, &shared_ref));
}

/* A bytes default larger than any allocation: init reports CKPT_ENOMEM and leaves the record
 * safe to free. (Not under AddressSanitizer, whose allocator aborts on such requests.) */
#if defined(__SANITIZE_ADDRESS__)
#define CORE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORE_ASAN 1
#endif
#endif

#ifndef CORE_ASAN
typedef struct Huge {
  char *s;
  ckpt_bytes big;
  char *after;
} Huge;
static const ckpt_field_desc huge_fields[] = {
    {.name = "s",
     .type = &t_STRING,
     .flags = DEF,
     .offset = offsetof(Huge, s),
     .def = {.s = "first"}},
    {.name = "big",
     .type = &t_BYTES,
     .flags = DEF,
     .offset = offsetof(Huge, big),
     .def = {.s = "x", .len = (size_t)1 << 62}},
    {.name = "after",
     .type = &t_STRING,
     .flags = DEF,
     .offset = offsetof(Huge, after),
     .def = {.s = "after"}},
};
static const ckpt_record_desc Huge_desc = {CKPT_RECORD_DESC_MAGIC,
                                           CKPT_ABI_VERSION,
                                           "Huge",
                                           "t.Huge",
                                           "t_Huge",
                                           sizeof(Huge),
                                           3,
                                           huge_fields,
                                           false,
                                           NULL};

#endif

Test(desc, enomem_in_defaults_leaves_a_freeable_record) {
#ifdef CORE_ASAN
  cr_skip_test("AddressSanitizer aborts on impossible allocations");
#else
  Huge h;
  cr_assert_eq(ckpt_record_init(&Huge_desc, &h), CKPT_ENOMEM);
  cr_assert_null(h.big.data);
  cr_assert_eq(h.big.len, 0);
  cr_assert_str_eq(h.s, "first");
  cr_assert_str_eq(h.after, "after", "init continues past the failure");
  ckpt_record_free(&Huge_desc, &h);
  cr_assert_null(h.s);
#endif
}
