/* test_pbtxt_parse.c — the text-format parser: round trips of every field kind through
 * print and parse, and every accepted spelling of Python's text_format (list syntax, angle
 * brackets, optional colons, separators, comments, string concatenation and escapes, integer
 * bases, float spellings, enum numbers, bool spellings). Messages are freed with
 * protobuf_c_message_free_unpacked, so the sanitizer build checks the allocation contract. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include <criterion/criterion.h>

#include "pbtxt_test2.pb-c.h"
#include "pbtxt_test3.pb-c.h"
#include "pbtxt_testutil.h"

#define PARSE(type, desc, text) ((type *)pbt_parse(&(desc), (text)))

Test(pbtxt_parse, roundtrip_every_proto2_field_kind) {
  CkptPbtest2__Scalars s = CKPT_PBTEST2__SCALARS__INIT;
  s.has_i32 = s.has_i64 = s.has_u32 = s.has_u64 = s.has_s32 = s.has_s64 = 1;
  s.has_f32 = s.has_f64 = s.has_sf32 = s.has_sf64 = s.has_fl = s.has_db = 1;
  s.has_bo = s.has_by = s.has_co = 1;
  s.i32 = INT32_MIN;
  s.i64 = INT64_MIN;
  s.u32 = UINT32_MAX;
  s.u64 = UINT64_MAX;
  s.s32 = INT32_MAX;
  s.s64 = INT64_MAX;
  s.f32 = 4000000000u;
  s.f64 = UINT64_MAX - 1;
  s.sf32 = INT32_MIN;
  s.sf64 = INT64_MIN + 1;
  s.fl = 3.14159274f;
  s.db = 2.718281828459045;
  s.bo = 1;
  s.st = "tab\there \"quoted\" back\\slash \xe2\x82\xac \xf0\x9f\x98\x80 \x7f";
  uint8_t bytes[256];
  for (int i = 0; i < 256; i++)
    bytes[i] = (uint8_t)i;
  s.by.data = bytes;
  s.by.len = sizeof bytes;
  s.co = CKPT_PBTEST2__COLOR__BLUE;

  CkptPbtest2__Inner leaf = CKPT_PBTEST2__INNER__INIT, mid = CKPT_PBTEST2__INNER__INIT;
  leaf.has_a = 1;
  leaf.a = -1;
  leaf.label = "";
  CkptPbtest2__Inner *kids[] = {&leaf, &leaf, &leaf};
  mid.n_children = 3;
  mid.children = kids;

  CkptPbtest2__Defaults d = CKPT_PBTEST2__DEFAULTS__INIT;
  d.has_n = 1;
  d.n = 0;
  d.name = "";
  d.has_blob = 1;
  d.blob.len = 0;
  d.blob.data = NULL;
  d.has_flag = 1;
  d.flag = 0;

  CkptPbtest2__Everything e = CKPT_PBTEST2__EVERYTHING__INIT;
  e.scalars = &s;
  int32_t ri32[] = {0, -1, INT32_MAX};
  int64_t ri64[] = {INT64_MIN, 5};
  uint64_t ru64[] = {UINT64_MAX};
  float rfl[] = {0.0f, -1.5f, 1e-38f, INFINITY};
  double rdb[] = {-0.0, 1e-300, -INFINITY, 6.02214076e23};
  protobuf_c_boolean rbo[] = {1, 0, 1};
  char *rst[] = {"", "a", "\n"};
  uint8_t b1[] = {0}, b2[] = {'x', 'y'};
  ProtobufCBinaryData rby[] = {{1, b1}, {0, NULL}, {2, b2}};
  CkptPbtest2__Color rco[] = {CKPT_PBTEST2__COLOR__RED, CKPT_PBTEST2__COLOR__COLOR_UNKNOWN,
                              CKPT_PBTEST2__COLOR__BLUE};
  int32_t rs32[] = {-64, 63};
  CkptPbtest2__Inner *rin[] = {&mid, &leaf};
  e.n_ri32 = 3, e.ri32 = ri32;
  e.n_ri64 = 2, e.ri64 = ri64;
  e.n_ru64 = 1, e.ru64 = ru64;
  e.n_rfl = 4, e.rfl = rfl;
  e.n_rdb = 4, e.rdb = rdb;
  e.n_rbo = 3, e.rbo = rbo;
  e.n_rst = 3, e.rst = rst;
  e.n_rby = 3, e.rby = rby;
  e.n_rco = 3, e.rco = rco;
  e.n_rin = 2, e.rin = rin;
  e.n_rs32 = 2, e.rs32 = rs32;
  e.inner = &mid;
  e.defaults = &d;
  e.choice_case = CKPT_PBTEST2__EVERYTHING__CHOICE_C_MSG;
  e.c_msg = &leaf;
  pbt_roundtrip(&e.base);

  e.choice_case = CKPT_PBTEST2__EVERYTHING__CHOICE_C_INT;
  e.c_int = 0;
  pbt_roundtrip(&e.base);
  e.choice_case = CKPT_PBTEST2__EVERYTHING__CHOICE_C_STR;
  e.c_str = "chosen";
  pbt_roundtrip(&e.base);
}

Test(pbtxt_parse, roundtrip_proto3_maps_oneof_and_implicit_presence) {
  CkptPbtest3__Config c = CKPT_PBTEST3__CONFIG__INIT;
  c.steps = -7;
  c.name = "model";
  uint8_t blob[] = {1, 2, 0, 3};
  c.blob.data = blob;
  c.blob.len = 4;
  c.lr = 1e-3f;
  c.decay = 0.999;
  c.enabled = 1;
  c.mode = CKPT_PBTEST3__MODE__TRAIN;
  CkptPbtest3__Point o = CKPT_PBTEST3__POINT__INIT, p1 = CKPT_PBTEST3__POINT__INIT;
  o.x = -1;
  p1.y = 2.5;
  c.origin = &o;
  CkptPbtest3__Point *path[] = {&o, &p1};
  c.n_path = 2;
  c.path = path;
  CkptPbtest3__Config__CountsEntry ce[2] = {CKPT_PBTEST3__CONFIG__COUNTS_ENTRY__INIT,
                                            CKPT_PBTEST3__CONFIG__COUNTS_ENTRY__INIT};
  ce[0].key = "a"; /* already sorted: the round trip keeps the order */
  ce[0].value = 1;
  ce[1].key = "b";
  ce[1].value = 0;
  CkptPbtest3__Config__CountsEntry *cep[] = {&ce[0], &ce[1]};
  c.n_counts = 2;
  c.counts = cep;
  CkptPbtest3__Config__PointsEntry pe = CKPT_PBTEST3__CONFIG__POINTS_ENTRY__INIT;
  pe.key = INT64_MIN;
  pe.value = &p1;
  CkptPbtest3__Config__PointsEntry *pep[] = {&pe};
  c.n_points = 1;
  c.points = pep;
  c.source_case = CKPT_PBTEST3__CONFIG__SOURCE_ANCHOR;
  c.anchor = &o;
  c.big = UINT64_MAX;
  c.neg = INT64_MIN;
  pbt_roundtrip(&c.base);
  c.source_case = CKPT_PBTEST3__CONFIG__SOURCE_FILE;
  c.file = "";
  pbt_roundtrip(&c.base);
}

Test(pbtxt_parse, all_python_spellings) {
  const char *text =
      "# a comment line\n"
      "scalars <\n"
      "  i32: 0x7fffffff, i64: -0x8000000000000000;\n"
      "  u32: 037777777777 u64: 0xFFFFFFFFFFFFFFFF  # octal and hex\n"
      "  s32: +5\n"
      "  fl: 1.5f db: -inf bo: t st: 'single' \"double\" 'concat'\n"
      "  by: \"\\x41\\x4a\\101\\0\\n\\t\\r\\a\\b\\f\\v\\\\\\'\\\"\\?\\xf\\u20ac\\U0001F600\"\n"
      "  co: -3\n"
      ">\n"
      "ri32: [1, -2, 0x10]\n"
      "ri32: 4\n"
      "ri32: []\n"
      "rfl: [inf, -Infinity, nan, 1e39, .5, 5., 1E2, 2]\n"
      "rbo: [true, True, t, 1, false, False, f, 0]\n"
      "rst: [\"a\" \"b\", 'c']\n"
      "rco: [RED, 2, BLUE]\n"
      "rin: [{a: 1}, <a: 2>]\n"
      "rin { a: 3 } rin: { a: 4 }\n"
      "inner: < label: \"x\" children { } >\n"
      "c_str: \"\"\n";
  CkptPbtest2__Everything *e =
      PARSE(CkptPbtest2__Everything, ckpt_pbtest2__everything__descriptor, text);
  CkptPbtest2__Scalars *s = e->scalars;
  cr_assert_not_null(s);
  cr_expect(s->has_i32 && s->i32 == INT32_MAX);
  cr_expect(s->has_i64 && s->i64 == INT64_MIN);
  cr_expect(s->has_u32 && s->u32 == UINT32_MAX);
  cr_expect(s->has_u64 && s->u64 == UINT64_MAX);
  cr_expect(s->has_s32 && s->s32 == 5);
  cr_expect(s->has_fl && s->fl == 1.5f);
  cr_expect(s->has_db && isinf(s->db) && s->db < 0);
  cr_expect(s->has_bo && s->bo);
  cr_expect_str_eq(s->st, "singledoubleconcat");
  const char want_by[] = "AJA\0\n\t\r\a\b\f\v\\'\"?\x0f\xe2\x82\xac\xf0\x9f\x98\x80";
  cr_assert(s->has_by);
  cr_assert_eq(s->by.len, sizeof want_by - 1);
  cr_expect(memcmp(s->by.data, want_by, s->by.len) == 0);
  cr_expect(s->has_co && s->co == CKPT_PBTEST2__COLOR__BLUE);
  cr_assert_eq(e->n_ri32, 4);
  cr_expect(e->ri32[0] == 1 && e->ri32[1] == -2 && e->ri32[2] == 16 && e->ri32[3] == 4);
  cr_assert_eq(e->n_rfl, 8);
  cr_expect(isinf(e->rfl[0]) && e->rfl[0] > 0);
  cr_expect(isinf(e->rfl[1]) && e->rfl[1] < 0);
  cr_expect(isnan(e->rfl[2]));
  cr_expect(isinf(e->rfl[3]), "1e39 overflows a float to inf, as in Python");
  cr_expect(e->rfl[4] == 0.5f && e->rfl[5] == 5.0f && e->rfl[6] == 100.0f && e->rfl[7] == 2.0f);
  cr_assert_eq(e->n_rbo, 8);
  for (int i = 0; i < 8; i++)
    cr_expect_eq(e->rbo[i] != 0, i < 4);
  cr_assert_eq(e->n_rst, 2);
  cr_expect_str_eq(e->rst[0], "ab");
  cr_expect_str_eq(e->rst[1], "c");
  cr_assert_eq(e->n_rco, 3);
  cr_expect(e->rco[0] == CKPT_PBTEST2__COLOR__RED && e->rco[1] == CKPT_PBTEST2__COLOR__GREEN &&
            e->rco[2] == CKPT_PBTEST2__COLOR__BLUE);
  cr_assert_eq(e->n_rin, 4);
  for (int i = 0; i < 4; i++)
    cr_expect(e->rin[i]->has_a && e->rin[i]->a == i + 1);
  cr_assert_not_null(e->inner);
  cr_expect_str_eq(e->inner->label, "x");
  cr_assert_eq(e->inner->n_children, 1);
  cr_expect_eq(e->choice_case, CKPT_PBTEST2__EVERYTHING__CHOICE_C_STR);
  cr_expect_str_eq(e->c_str, "");
  protobuf_c_message_free_unpacked(&e->base, NULL);
}

Test(pbtxt_parse, absent_proto2_fields_keep_defaults) {
  CkptPbtest2__Defaults *d =
      PARSE(CkptPbtest2__Defaults, ckpt_pbtest2__defaults__descriptor, "ratio: 0.25");
  cr_expect(!d->has_n && d->n == 42);
  cr_expect_str_eq(d->name, "anon");
  cr_expect(!d->has_blob && d->blob.len == 2 && d->blob.data[0] == 1);
  cr_expect(d->has_ratio && d->ratio == 0.25);
  cr_expect(!d->has_color && d->color == CKPT_PBTEST2__COLOR__GREEN);
  cr_expect(!d->has_flag && d->flag);
  protobuf_c_message_free_unpacked(&d->base, NULL); /* must not free the static defaults */

  d = PARSE(CkptPbtest2__Defaults, ckpt_pbtest2__defaults__descriptor,
            "n: 1 name: \"z\" blob: \"\" color: RED flag: false");
  cr_expect(d->has_n && d->n == 1);
  cr_expect_str_eq(d->name, "z");
  cr_expect(d->has_blob && d->blob.len == 0);
  cr_expect(d->has_color && d->color == CKPT_PBTEST2__COLOR__RED);
  cr_expect(d->has_flag && !d->flag);
  protobuf_c_message_free_unpacked(&d->base, NULL);
}

Test(pbtxt_parse, proto3_maps_parse_from_python_layout) {
  const char *text =
      "counts {\n  value: 1\n}\ncounts {\n  key: \"a\"\n}\n"
      "points {\n  key: -5\n  value {\n    x: 1.5\n  }\n}\n"
      "flags { key: true value: \"t\" }\n"
      "modes { key: 7 value: 5 }\n"
      "named_points: [{key: \"p\" value: {y: 1}}]\n"
      "seed: 0\n";
  CkptPbtest3__Config *c = PARSE(CkptPbtest3__Config, ckpt_pbtest3__config__descriptor, text);
  cr_assert_eq(c->n_counts, 2);
  cr_expect_str_eq(c->counts[0]->key, "");
  cr_expect_eq(c->counts[0]->value, 1);
  cr_expect_str_eq(c->counts[1]->key, "a");
  cr_assert_eq(c->n_points, 1);
  cr_expect_eq(c->points[0]->key, -5);
  cr_expect_eq(c->points[0]->value->x, 1.5);
  cr_assert_eq(c->n_flags, 1);
  cr_expect(c->flags[0]->key);
  cr_assert_eq(c->n_modes, 1);
  cr_expect_eq((int)c->modes[0]->value, 5, "open enum keeps unknown numbers");
  cr_assert_eq(c->n_named_points, 1);
  cr_expect_eq(c->named_points[0]->value->y, 1.0);
  cr_expect_eq(c->source_case, CKPT_PBTEST3__CONFIG__SOURCE_SEED);
  cr_expect_eq(c->seed, 0);
  protobuf_c_message_free_unpacked(&c->base, NULL);
}

Test(pbtxt_parse, empty_text_is_an_empty_message) {
  CkptPbtest3__Config *c =
      PARSE(CkptPbtest3__Config, ckpt_pbtest3__config__descriptor, "  # nothing but a comment\n\n");
  cr_expect_eq(c->steps, 0);
  cr_expect_eq(c->n_path, 0);
  protobuf_c_message_free_unpacked(&c->base, NULL);
}

Test(pbtxt_parse, large_repeated_field_grows) {
  size_t n = 5000;
  char *text = malloc(n * 16 + 1);
  cr_assert_not_null(text);
  size_t off = 0;
  for (size_t i = 0; i < n; i++)
    off += (size_t)sprintf(text + off, "ri64: %zu\n", i * 3);
  CkptPbtest2__Everything *e =
      PARSE(CkptPbtest2__Everything, ckpt_pbtest2__everything__descriptor, text);
  cr_assert_eq(e->n_ri64, n);
  for (size_t i = 0; i < n; i++)
    cr_assert_eq(e->ri64[i], (int64_t)(i * 3));
  protobuf_c_message_free_unpacked(&e->base, NULL);
  free(text);
}
