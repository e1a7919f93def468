/* test_pbtxt_print.c — the text-format printer: exact output (expected strings were produced
 * by Python's text_format.MessageToString for the same messages), presence rules of proto2 and
 * proto3, map ordering, and the refusals (invalid UTF-8, unset required, unknown fields,
 * cycles). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include <criterion/criterion.h>

#include "pbtxt_test2.pb-c.h"
#include "pbtxt_test3.pb-c.h"
#include "pbtxt_testutil.h"

Test(pbtxt_print, every_scalar_kind_matches_python) {
  CkptPbtest2__Scalars s = CKPT_PBTEST2__SCALARS__INIT;
  s.has_i32 = s.has_i64 = s.has_u32 = s.has_u64 = s.has_s32 = s.has_s64 = 1;
  s.has_f32 = s.has_f64 = s.has_sf32 = s.has_sf64 = s.has_fl = s.has_db = 1;
  s.has_bo = s.has_by = s.has_co = 1;
  s.i32 = INT32_MIN;
  s.i64 = INT64_MIN;
  s.u32 = UINT32_MAX;
  s.u64 = UINT64_MAX;
  s.s32 = -1;
  s.s64 = INT64_MAX;
  s.f32 = 0;
  s.f64 = 123;
  s.sf32 = -5;
  s.sf64 = -6;
  s.fl = 0.1f;
  s.db = 1e100;
  s.bo = 1;
  s.st = "a\"b\\c\n\t'\xc3\xa9\x01";
  uint8_t bytes[] = {0, 255, 127, 'A'};
  s.by.data = bytes;
  s.by.len = sizeof bytes;
  s.co = CKPT_PBTEST2__COLOR__BLUE;
  char *text = pbt_print(&s.base);
  cr_assert_str_eq(text,
                   "i32: -2147483648\ni64: -9223372036854775808\nu32: 4294967295\n"
                   "u64: 18446744073709551615\ns32: -1\ns64: 9223372036854775807\nf32: 0\n"
                   "f64: 123\nsf32: -5\nsf64: -6\nfl: 0.1\ndb: 1e+100\nbo: true\n"
                   "st: \"a\\\"b\\\\c\\n\\t\\'\\303\\251\\001\"\nby: \"\\000\\377\\177A\"\n"
                   "co: BLUE\n");
  free(text);
}

Test(pbtxt_print, proto3_presence_maps_oneof_open_enum_match_python) {
  CkptPbtest3__Config c = CKPT_PBTEST3__CONFIG__INIT;
  c.steps = 3;
  c.name = "n";
  c.lr = 0.25f;
  c.decay = -0.0; /* bits set: printed, as C++ and Python do */
  c.mode = CKPT_PBTEST3__MODE__EVAL;
  int32_t dims[] = {1, 2, 3};
  c.n_dims = 3;
  c.dims = dims;
  /* map entries given out of order; printed sorted by key, zero keys/values omitted */
  CkptPbtest3__Config__CountsEntry ce[3] = {CKPT_PBTEST3__CONFIG__COUNTS_ENTRY__INIT,
                                            CKPT_PBTEST3__CONFIG__COUNTS_ENTRY__INIT,
                                            CKPT_PBTEST3__CONFIG__COUNTS_ENTRY__INIT};
  ce[0].key = "b";
  ce[0].value = 2;
  ce[1].key = "a";
  ce[1].value = 0;
  ce[2].key = "";
  ce[2].value = 1;
  CkptPbtest3__Config__CountsEntry *cep[] = {&ce[0], &ce[1], &ce[2]};
  c.n_counts = 3;
  c.counts = cep;
  CkptPbtest3__Point px = CKPT_PBTEST3__POINT__INIT, pempty = CKPT_PBTEST3__POINT__INIT;
  px.x = 1.5;
  CkptPbtest3__Config__PointsEntry pe[2] = {CKPT_PBTEST3__CONFIG__POINTS_ENTRY__INIT,
                                            CKPT_PBTEST3__CONFIG__POINTS_ENTRY__INIT};
  pe[0].key = 10;
  pe[0].value = &pempty;
  pe[1].key = -5;
  pe[1].value = &px;
  CkptPbtest3__Config__PointsEntry *pep[] = {&pe[0], &pe[1]};
  c.n_points = 2;
  c.points = pep;
  CkptPbtest3__Config__FlagsEntry fe[2] = {CKPT_PBTEST3__CONFIG__FLAGS_ENTRY__INIT,
                                           CKPT_PBTEST3__CONFIG__FLAGS_ENTRY__INIT};
  fe[0].key = 1;
  fe[0].value = "t";
  fe[1].key = 0;
  fe[1].value = "f";
  CkptPbtest3__Config__FlagsEntry *fep[] = {&fe[0], &fe[1]};
  c.n_flags = 2;
  c.flags = fep;
  CkptPbtest3__Config__ModesEntry me = CKPT_PBTEST3__CONFIG__MODES_ENTRY__INIT;
  me.key = 7;
  me.value = (CkptPbtest3__Mode)5; /* unknown value of an open enum: printed as a number */
  CkptPbtest3__Config__ModesEntry *mep[] = {&me};
  c.n_modes = 1;
  c.modes = mep;
  c.source_case = CKPT_PBTEST3__CONFIG__SOURCE_SEED;
  c.seed = 0; /* a oneof member is printed even when zero */
  char *tags[] = {"x", ""};
  c.n_tags = 2;
  c.tags = tags;
  char *text = pbt_print(&c.base);
  cr_assert_str_eq(text,
                   "steps: 3\nname: \"n\"\nlr: 0.25\ndecay: -0.0\nmode: EVAL\ndims: 1\ndims: 2\n"
                   "dims: 3\ncounts {\n  value: 1\n}\ncounts {\n  key: \"a\"\n}\ncounts {\n"
                   "  key: \"b\"\n  value: 2\n}\npoints {\n  key: -5\n  value {\n    x: 1.5\n"
                   "  }\n}\npoints {\n  key: 10\n  value {\n  }\n}\nflags {\n  value: \"f\"\n}\n"
                   "flags {\n  key: true\n  value: \"t\"\n}\nmodes {\n  key: 7\n  value: 5\n}\n"
                   "seed: 0\ntags: \"x\"\ntags: \"\"\n");
  free(text);
}

Test(pbtxt_print, proto2_defaults_print_only_when_has_is_set) {
  CkptPbtest2__Defaults d = CKPT_PBTEST2__DEFAULTS__INIT;
  char *text = pbt_print(&d.base);
  cr_assert_str_eq(text, "");
  free(text);
  d.has_n = 1; /* explicitly set to the default value: present */
  d.name = "anon";
  text = pbt_print(&d.base);
  cr_assert_str_eq(text, "n: 42\nname: \"anon\"\n");
  free(text);
}

Test(pbtxt_print, empty_message_is_empty_string) {
  CkptPbtest3__Config c = CKPT_PBTEST3__CONFIG__INIT;
  char *text = pbt_print(&c.base);
  cr_assert_str_eq(text, "");
  free(text);
}

Test(pbtxt_print, floats_and_doubles_like_python) {
  struct {
    double d;
    const char *want;
  } dcases[] = {
      {1e16, "1e+16"},
      {1e15, "1000000000000000.0"},
      {1e-5, "1e-05"},
      {1e-4, "0.0001"},
      {123.456, "123.456"},
      {1.5e300, "1.5e+300"},
      {1.0 / 3, "0.3333333333333333"},
      {5e-324, "5e-324"},
      {-2.5, "-2.5"},
      {INFINITY, "inf"},
      {-INFINITY, "-inf"},
      {NAN, "nan"},
      {0.1 + 0.2, "0.30000000000000004"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
  };
  for (size_t i = 0; i < sizeof dcases / sizeof dcases[0]; i++) {
    CkptPbtest2__Scalars s = CKPT_PBTEST2__SCALARS__INIT;
    s.has_db = 1;
    s.db = dcases[i].d;
    char *text = pbt_print(&s.base);
    char want[128];
    snprintf(want, sizeof want, "db: %s\n", dcases[i].want);
    cr_expect_str_eq(text, want);
    free(text);
  }
  struct {
    float f;
    const char *want;
  } fcases[] = {
      {1e16f, "1e+16"},
      {0.9f, "0.9"},
      {3.4028234663852886e+38f, "3.4028235e+38"},
      {1.0f / 3, "0.33333334"},
      {0x1p-149f, "1.4013e-45"},
      {16777216.0f, "16777216.0"},
      {-0.0f, "-0.0"},
      {INFINITY, "inf"},
      {NAN, "nan"},
  };
  for (size_t i = 0; i < sizeof fcases / sizeof fcases[0]; i++) {
    CkptPbtest2__Scalars s = CKPT_PBTEST2__SCALARS__INIT;
    s.has_fl = 1;
    s.fl = fcases[i].f;
    char *text = pbt_print(&s.base);
    char want[128];
    snprintf(want, sizeof want, "fl: %s\n", fcases[i].want);
    cr_expect_str_eq(text, want);
    free(text);
  }
}

Test(pbtxt_print, nested_and_repeated_messages_indent_by_two) {
  CkptPbtest2__Inner leaf = CKPT_PBTEST2__INNER__INIT, mid = CKPT_PBTEST2__INNER__INIT;
  leaf.has_a = 1;
  leaf.a = 2;
  CkptPbtest2__Inner *kids[] = {&leaf, &leaf};
  mid.label = "m";
  mid.n_children = 2;
  mid.children = kids;
  CkptPbtest2__Everything e = CKPT_PBTEST2__EVERYTHING__INIT;
  e.inner = &mid;
  e.choice_case = CKPT_PBTEST2__EVERYTHING__CHOICE_C_STR;
  e.c_str = "";
  char *text = pbt_print(&e.base);
  cr_assert_str_eq(text,
                   "inner {\n  label: \"m\"\n  children {\n    a: 2\n  }\n  children {\n    a: 2\n"
                   "  }\n}\nc_str: \"\"\n");
  free(text);
}

static void expect_print_error(const ProtobufCMessage *m, ckpt_status code, const char *want) {
  ckpt_error err = CKPT_ERROR_INIT;
  char *text = (char *)1;
  ckpt_status st = ckpt_pbtxt_print(m, &text, NULL, &err);
  cr_assert_eq(st, code, "status %d, message %s", (int)st, err.message);
  cr_assert_null(text);
  cr_assert(strstr(err.message, want), "'%s' lacks '%s'", err.message, want);
}

Test(pbtxt_print, invalid_utf8_in_string_field_is_refused_with_its_path) {
  CkptPbtest2__Inner leaf = CKPT_PBTEST2__INNER__INIT, mid = CKPT_PBTEST2__INNER__INIT;
  leaf.label = "ok\xff";
  CkptPbtest2__Inner *kids[] = {&leaf};
  mid.n_children = 1;
  mid.children = kids;
  expect_print_error(&mid.base, CKPT_EINVAL, "children[0].label");
  /* bytes fields may hold anything */
  CkptPbtest2__Scalars s = CKPT_PBTEST2__SCALARS__INIT;
  uint8_t raw[] = {0xff, 0xfe};
  s.has_by = 1;
  s.by.data = raw;
  s.by.len = 2;
  char *text = pbt_print(&s.base);
  cr_assert_str_eq(text, "by: \"\\377\\376\"\n");
  free(text);
}

Test(pbtxt_print, null_elements_of_repeated_fields_are_refused) {
  CkptPbtest2__Everything e = CKPT_PBTEST2__EVERYTHING__INIT;
  char *strs[] = {"a", NULL};
  e.n_rst = 2;
  e.rst = strs;
  expect_print_error(&e.base, CKPT_EINVAL, "string field 'rst[1]' holds a NULL element");
  CkptPbtest2__Everything e2 = CKPT_PBTEST2__EVERYTHING__INIT;
  CkptPbtest2__Inner *msgs[] = {NULL};
  e2.n_rin = 1;
  e2.rin = msgs;
  expect_print_error(&e2.base, CKPT_EINVAL, "message field 'rin[0]' holds a NULL element");
  CkptPbtest2__Everything e3 = CKPT_PBTEST2__EVERYTHING__INIT;
  e3.n_ri32 = 3; /* a count without an array */
  expect_print_error(&e3.base, CKPT_EINVAL, "repeated field 'ri32' has n=3 but no array");
}

Test(pbtxt_print, unset_required_field_is_refused) {
  CkptPbtest2__Required r = CKPT_PBTEST2__REQUIRED__INIT;
  r.id = 1;
  expect_print_error(&r.base, CKPT_EINVAL, "required field 'name'");
  r.name = "x";
  char *text = pbt_print(&r.base);
  cr_assert_str_eq(text, "id: 1\nname: \"x\"\n");
  free(text);
}

Test(pbtxt_print, unknown_fields_are_refused_not_dropped) {
  /* a newer writer's field 99 (varint 5), unpacked by this older schema */
  uint8_t wire[] = {0x08, 0x07, 0x98, 0x06, 0x05};
  ProtobufCMessage *m =
      protobuf_c_message_unpack(&ckpt_pbtest2__inner__descriptor, NULL, sizeof wire, wire);
  cr_assert_not_null(m);
  cr_assert_eq(m->n_unknown_fields, 1);
  expect_print_error(m, CKPT_EINVAL, "unknown field");
  protobuf_c_message_free_unpacked(m, NULL);
}

Test(pbtxt_print, cycles_stop_at_the_depth_limit) {
  CkptPbtest2__Inner a = CKPT_PBTEST2__INNER__INIT;
  CkptPbtest2__Inner *self[] = {&a};
  a.n_children = 1;
  a.children = self; /* a contains itself */
  expect_print_error(&a.base, CKPT_EINVAL, "deeper than");
}

Test(pbtxt_print, null_arguments) {
  ckpt_error err = CKPT_ERROR_INIT;
  char *text;
  cr_assert_eq(ckpt_pbtxt_print(NULL, &text, NULL, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "NULL"));
}
