/* test_pbtxt_errors.c — malformed protobuf text: every rejection is CKPT_ECORRUPT with
 * "proto.pbtxt:line:col:", nothing crashes and nothing leaks (run under ASan): unknown fields,
 * syntax errors, duplicates, oneof conflicts, missing required fields, out-of-range numbers,
 * bad strings, deep nesting, every truncation of a valid file, byte mutations, binary input. */
#include <stdint.h>
#include <stdio.h>

#include <criterion/criterion.h>

#include "pbtxt_test2.pb-c.h"
#include "pbtxt_test3.pb-c.h"
#include "pbtxt_testutil.h"

#define FAILS(desc, text, want) pbt_parse_fails(&(desc), (text), strlen(text), (want))

static const ProtobufCMessageDescriptor *const EV = &ckpt_pbtest2__everything__descriptor;
static const ProtobufCMessageDescriptor *const SC = &ckpt_pbtest2__scalars__descriptor;

Test(pbtxt_errors, unknown_field_names_position) {
  FAILS(ckpt_pbtest2__inner__descriptor, "a: 1\n  bogus: 2\n",
        "proto.pbtxt:2:3: message type ckpt_pbtest2.Inner has no field named 'bogus'");
}

Test(pbtxt_errors, syntax) {
  FAILS(*SC, "i32 5", "proto.pbtxt:1:5: expected ':' after field name 'i32', found '5'");
  FAILS(*SC, "i32:", "1:5: expected an integer for field 'i32', found end of input");
  FAILS(*EV, "inner 5", "1:7: expected '{' or '<' to start message field 'inner'");
  FAILS(*EV, "inner { a: 1",
        "1:13: expected '}' to close message ckpt_pbtest2.Inner opened at 1:7");
  FAILS(*EV, "inner < a: 1 }", "expected a field name of message ckpt_pbtest2.Inner or '>'");
  FAILS(*EV, "}", "1:1: expected a field name of message ckpt_pbtest2.Everything, found '}'");
  FAILS(*EV, "ri32: [1 2]", "1:10: expected ',' or ']' in the list of field 'ri32'");
  FAILS(*EV, "ri32: [1,", "expected an integer for field 'ri32', found end of input");
  FAILS(*EV, "[ext.field]: 1", "extension and Any field names");
  FAILS(*EV, "inner: [{}]", "expected '{' or '<' to start message field 'inner', found '['");
  FAILS(*EV, "ri32: 1 @", "1:9: unexpected character '@'");
  FAILS(*EV, "ri32: 1,, ri32: 2", "1:9: expected a field name");
}

Test(pbtxt_errors, duplicates_and_oneof_conflicts) {
  FAILS(*SC, "i32: 1\ni32: 2", "2:1: message ckpt_pbtest2.Scalars should not have multiple 'i32'");
  FAILS(*EV, "inner {} inner {}", "should not have multiple 'inner' fields");
  FAILS(*EV, "c_int: 1 c_str: \"x\"",
        "field 'c_str' is specified along with field 'c_int', another member of the same oneof");
  FAILS(ckpt_pbtest3__config__descriptor, "seed: 0 file: \"\"", "same oneof");
}

Test(pbtxt_errors, missing_required_field) {
  FAILS(ckpt_pbtest2__required__descriptor, "id: 1",
        "1:6: message ckpt_pbtest2.Required is missing required field 'name'");
  FAILS(ckpt_pbtest2__required__descriptor, "", "missing required field 'id'");
}

Test(pbtxt_errors, numbers_out_of_range_or_malformed) {
  FAILS(*SC, "i32: 2147483648", "integer '2147483648' is out of range for int32 field 'i32'");
  FAILS(*SC, "i32: -2147483649", "out of range for int32");
  FAILS(*SC, "u32: -1", "out of range for uint32 field 'u32'");
  FAILS(*SC, "u32: 4294967296", "out of range for uint32");
  FAILS(*SC, "u64: 18446744073709551616", "out of range for uint64");
  FAILS(*SC, "i64: 9223372036854775808", "out of range for int64");
  FAILS(*SC, "i64: -9223372036854775809", "out of range for int64");
  FAILS(*SC, "i64: 99999999999999999999999999999999999999", "out of range for int64");
  FAILS(*SC, "i32: 12abc", "expected an integer for field 'i32', found '12abc'");
  FAILS(*SC, "i32: 1.5", "expected an integer");
  FAILS(*SC, "i32: 08", "expected an integer"); /* not octal */
  FAILS(*SC, "i32: 0x", "expected an integer");
  FAILS(*SC, "i32: true", "expected an integer");
  FAILS(*SC, "db: 1.2.3", "expected a number for field 'db'");
  FAILS(*SC, "db: 0x10", "expected a number");
  FAILS(*SC, "db: infinite", "expected a number");
  FAILS(*SC, "db: \"1\"", "expected a number");
  FAILS(*SC, "bo: yes", "expected true or false for field 'bo'");
  FAILS(*SC, "bo: 2", "expected true or false");
  FAILS(*SC, "co: PURPLE", "enum type ckpt_pbtest2.Color has no value named 'PURPLE'");
  FAILS(*SC, "co: 2147483648", "out of range for int32");
  /* limits themselves are fine */
  CkptPbtest2__Scalars *s = (CkptPbtest2__Scalars *)pbt_parse(
      SC, "i32: -2147483648 i64: -9223372036854775808 u64: 18446744073709551615 db: 1e400");
  cr_expect_eq(s->i32, INT32_MIN);
  cr_expect_eq(s->i64, INT64_MIN);
  cr_expect_eq(s->u64, UINT64_MAX);
  cr_expect(s->db > 1e308, "1e400 reads as inf, as Python's float()");
  protobuf_c_message_free_unpacked(&s->base, NULL);
}

Test(pbtxt_errors, bad_strings) {
  FAILS(*SC, "st: \"abc", "1:5: unterminated string literal");
  FAILS(*SC, "st: \"ab\ncd\"", "strings cannot span lines");
  FAILS(*SC, "st: \"ab\\", "unterminated string literal");
  FAILS(*SC, "st: \"\\q\"", "unknown escape sequence '\\q'");
  FAILS(*SC, "st: \"\\x\"", "\\x escape without hex digits");
  FAILS(*SC, "st: \"\\400\"", "octal escape \\400 is larger than a byte");
  FAILS(*SC, "st: \"\\u12\"", "\\u escape needs 4 hex digits");
  FAILS(*SC, "st: \"\\ud800\"", "is not a Unicode scalar value");
  FAILS(*SC, "st: \"\\U00110000\"", "is not a Unicode scalar value");
  FAILS(*SC, "st: \"a\\0b\"", "string field 'st' contains a NUL byte");
  FAILS(*SC, "st: \"\\377\"", "string field 'st' is not valid UTF-8");
  FAILS(*SC, "st: \"\xc3\x28\"", "not valid UTF-8");
  FAILS(*SC, "st: 5", "expected a quoted string for field 'st', found '5'");
  /* the same bytes are fine in a bytes field */
  CkptPbtest2__Scalars *s =
      (CkptPbtest2__Scalars *)pbt_parse(SC, "by: \"a\\0b\\377\" st: \"caf\xc3\xa9\"");
  cr_assert_eq(s->by.len, 4);
  cr_expect(memcmp(s->by.data, "a\0b\377", 4) == 0);
  cr_expect_str_eq(s->st, "caf\xc3\xa9");
  protobuf_c_message_free_unpacked(&s->base, NULL);
}

static char *nested(int levels) {
  size_t cap = (size_t)levels * 16 + 16;
  char *t = malloc(cap);
  cr_assert_not_null(t);
  size_t o = 0;
  for (int i = 0; i < levels; i++)
    o += (size_t)sprintf(t + o, "children {");
  for (int i = 0; i < levels; i++)
    t[o++] = '}';
  t[o] = '\0';
  return t;
}

Test(pbtxt_errors, nesting_is_bounded) {
  char *ok = nested(CKPT_PBTXT_MAX_DEPTH);
  ProtobufCMessage *m = pbt_parse(&ckpt_pbtest2__inner__descriptor, ok);
  protobuf_c_message_free_unpacked(m, NULL);
  free(ok);
  char *deep = nested(CKPT_PBTXT_MAX_DEPTH + 1);
  FAILS(ckpt_pbtest2__inner__descriptor, deep, "messages nested deeper than 100 levels");
  free(deep);
  char *very = nested(100000); /* would overflow the stack without the bound */
  FAILS(ckpt_pbtest2__inner__descriptor, very, "nested deeper");
  free(very);
}

static const char *full_text(void) {
  return "scalars {\n  i32: -5\n  st: \"h\\303\\251\\n\"\n  by: \"\\000\\001\"\n  fl: 0.1\n"
         "  db: 1e+100\n  co: RED\n}\nri32: 1\nri32: 2\nrst: \"x\"\n"
         "rin {\n  a: 1\n  children {\n    label: \"deep\"\n  }\n}\n"
         "inner <\n  a: 2\n>\nc_msg {\n  a: 3\n}\ndefaults {\n  n: 7\n}\n";
}

/* Every prefix either parses (it ends between fields) or fails cleanly. */
Test(pbtxt_errors, every_truncation_fails_cleanly) {
  const char *text = full_text();
  size_t n = strlen(text);
  size_t ok = 0, bad = 0;
  for (size_t k = 0; k <= n; k++) {
    ckpt_error err = CKPT_ERROR_INIT;
    ProtobufCMessage *m = NULL;
    ckpt_status st = ckpt_pbtxt_parse(EV, text, k, "proto.pbtxt", &m, &err);
    if (st == CKPT_OK) {
      ok++;
      protobuf_c_message_free_unpacked(m, NULL);
    } else {
      bad++;
      cr_assert_eq(st, CKPT_ECORRUPT, "prefix %zu: %s", k, err.message);
      cr_assert_null(m);
      cr_assert(strncmp(err.message, "proto.pbtxt:", 12) == 0, "%s", err.message);
    }
  }
  cr_expect(ok > 3 && bad > n / 2, "ok=%zu bad=%zu", ok, bad);
}

/* Replacing any byte with any of a set of troublesome bytes never crashes or leaks. */
Test(pbtxt_errors, byte_mutations_fail_cleanly) {
  const char *text = full_text();
  size_t n = strlen(text);
  char *copy = malloc(n);
  cr_assert_not_null(copy);
  const char subs[] = {'\0', '{', '}', '<',  '>', '"', '\\', ':',
                       '[',  ']', '#', '\n', '-', 'x', '9',  '\xff'};
  for (size_t k = 0; k < n; k++) {
    for (size_t j = 0; j < sizeof subs; j++) {
      memcpy(copy, text, n);
      copy[k] = subs[j];
      ckpt_error err = CKPT_ERROR_INIT;
      ProtobufCMessage *m = NULL;
      ckpt_status st = ckpt_pbtxt_parse(EV, copy, n, "proto.pbtxt", &m, &err);
      if (st == CKPT_OK)
        protobuf_c_message_free_unpacked(m, NULL);
      else
        cr_assert_eq(st, CKPT_ECORRUPT, "byte %zu -> 0x%02x: %s", k, (unsigned char)subs[j],
                     err.message);
    }
  }
  free(copy);
}

Test(pbtxt_errors, binary_and_garbage_input) {
  CkptPbtest2__Inner in = CKPT_PBTEST2__INNER__INIT;
  in.has_a = 1;
  in.a = 300;
  in.label = "label";
  size_t len;
  uint8_t *wire = pbt_pack(&in.base, &len);
  pbt_parse_fails(&ckpt_pbtest2__inner__descriptor, (const char *)wire, len,
                  "proto.pbtxt:1:1: unexpected byte 0x08");
  free(wire);
  uint32_t x = 12345;
  char junk[512];
  for (int round = 0; round < 200; round++) {
    for (size_t i = 0; i < sizeof junk; i++) {
      x = x * 1103515245u + 12345u;
      junk[i] = (char)(x >> 16);
    }
    ckpt_error err = CKPT_ERROR_INIT;
    ProtobufCMessage *m = NULL;
    ckpt_status st = ckpt_pbtxt_parse(EV, junk, sizeof junk, "proto.pbtxt", &m, &err);
    if (st == CKPT_OK)
      protobuf_c_message_free_unpacked(m, NULL);
    else
      cr_assert_eq(st, CKPT_ECORRUPT, "%s", err.message);
  }
}

Test(pbtxt_errors, invalid_arguments) {
  ckpt_error err = CKPT_ERROR_INIT;
  ProtobufCMessage *m;
  cr_assert_eq(ckpt_pbtxt_parse(NULL, "", 0, NULL, &m, &err), CKPT_EINVAL);
  ckpt_error_clear(&err);
  cr_assert_eq(ckpt_pbtxt_parse(EV, NULL, 3, NULL, &m, &err), CKPT_EINVAL);
  ckpt_error_clear(&err);
  ProtobufCMessageDescriptor fake = *EV;
  fake.magic = 0;
  cr_assert_eq(ckpt_pbtxt_parse(&fake, "", 0, NULL, &m, &err), CKPT_EINVAL);
  cr_assert(strstr(err.message, "not a protobuf-c message descriptor"));
}
