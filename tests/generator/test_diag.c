/* test_diag.c — one test per ckptgen diagnostic: the exact `file:line:col: error: message`,
 * the source line that follows it and the caret under the column, from the real binary run
 * on a schema written to a temporary directory. Each schema holds exactly one mistake, so
 * each run must print exactly one diagnostic, exit with status 1 and write nothing. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_cli_helpers.h"

typedef struct extra_file {
  const char *name;
  const char *text;
} extra_file;

/* Line n (1-based) of text, as ckptgen shows it: control bytes become '?'. */
static char *source_line(const char *text, size_t len, int n) {
  const char *p = text, *end = text + len;
  for (int i = 1; i < n && p < end; i++) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    p = nl ? nl + 1 : end;
  }
  const char *e = memchr(p, '\n', (size_t)(end - p));
  if (e == NULL) e = end;
  char *r = malloc((size_t)(e - p) + 1);
  cr_assert_not_null(r);
  size_t k = 0;
  for (const char *q = p; q < e; q++) {
    unsigned char c = (unsigned char)*q;
    r[k++] = (c < 0x20 && c != '\t') || c == 0x7f ? '?' : (char)c;
  }
  r[k] = '\0';
  return r;
}

/* Splits s into at most max lines (pointers into a copy the caller frees). */
static size_t split_lines(char *s, char **lines, size_t max) {
  size_t n = 0;
  while (*s && n < max) {
    lines[n++] = s;
    char *nl = strchr(s, '\n');
    if (nl == NULL) break;
    *nl = '\0';
    s = nl + 1;
  }
  return n;
}

static void expect_diag_bytes(const char *schema, size_t schema_len, const extra_file *extra,
                              const char *expected) {
  char *dir = cg_tmpdir_new();
  cg_write_bytes(dir, "t.ckpt", schema, schema_len);
  for (const extra_file *e = extra; e != NULL && e->name != NULL; e++) cg_write_text(dir, e->name, e->text);
  const char *args[] = {"-o", "out", "t.ckpt", NULL};
  cg_result r = cg_run(dir, args);
  cr_expect_eq(r.status, 1, "exit status %d, stderr:\n%s", r.status, r.err);
  cr_expect(!cg_exists(dir, "out"), "outputs were written despite an error");

  char *copy = strdup(r.err);
  char *lines[8];
  size_t n = split_lines(copy, lines, 8);
  cr_assert_eq(n, 3, "expected exactly one diagnostic (3 lines), got:\n%s", r.err);
  cr_expect_str_eq(lines[0], expected, "stderr was:\n%s", r.err);

  /* the source line and the caret follow */
  int line = 0, col = 0;
  const char *pos = expected + strlen("t.ckpt:");
  cr_assert_eq(sscanf(pos, "%d:%d:", &line, &col), 2, "bad expectation '%s'", expected);
  char *src = source_line(schema, schema_len, line);
  if (strlen(src) <= 160) {
    cr_expect_str_eq(lines[1], src, "source line of %s", expected);
  } else { /* long lines are shown as a window around the column */
    size_t n = strlen(lines[1]);
    cr_expect(n < 200 && strcmp(lines[1] + n - 3, "...") == 0, "long line shown as '%s'", lines[1]);
  }
  const char *caret = lines[2];
  for (int i = 0; i < col - 1; i++)
    cr_assert(caret[i] == ' ' || caret[i] == '\t', "caret line '%s' for column %d", caret, col);
  cr_expect_eq(caret[col - 1], '^', "caret line '%s' for column %d", caret, col);
  free(src);
  free(copy);
  cg_run_free(&r);
  cg_tmpdir_remove(dir);
}

static void expect_diag(const char *schema, const char *expected) {
  expect_diag_bytes(schema, strlen(schema), NULL, expected);
}

static void expect_diag_with(const char *schema, const extra_file *extra, const char *expected) {
  expect_diag_bytes(schema, strlen(schema), extra, expected);
}

/* ------------------------------------------------------------------ lexical */

Test(diag, unexpected_character) {
  expect_diag("package p;\nrecord R { int32 x; $ }\n",
              "t.ckpt:2:21: error: unexpected character '$'");
}

Test(diag, nul_byte) {
  static const char schema[] = "package p;\nrecord R {\0}\n";
  expect_diag_bytes(schema, sizeof schema - 1, NULL, "t.ckpt:2:11: error: unexpected byte 0x00");
}

Test(diag, unterminated_string) {
  expect_diag("package p;\nrecord R { string s = \"abc; }\n",
              "t.ckpt:2:23: error: unterminated string literal");
}

Test(diag, unknown_escape) {
  expect_diag("package p;\nrecord R { string s = \"a\\qb\"; }\n",
              "t.ckpt:2:25: error: unknown escape sequence '\\q' in string literal");
}

Test(diag, bad_hex_escape) {
  expect_diag("package p;\nrecord R { bytes s = \"\\x4\"; }\n",
              "t.ckpt:2:23: error: \\x must be followed by two hexadecimal digits");
}

Test(diag, integer_too_large) {
  expect_diag("package p;\nrecord R { uint64 x = 18446744073709551616; }\n",
              "t.ckpt:2:23: error: integer literal '18446744073709551616' is too large (the limit is 2^64 - 1)");
}

Test(diag, unterminated_comment) {
  expect_diag("package p;\nrecord R { int32 x; }\n/* no end\n",
              "t.ckpt:3:1: error: unterminated comment");
}

Test(diag, identifier_too_long) {
  size_t n = 2000;
  char *schema = malloc(n + 64);
  cr_assert_not_null(schema);
  strcpy(schema, "package p;\nrecord R { int32 ");
  size_t k = strlen(schema);
  memset(schema + k, 'x', n);
  strcpy(schema + k + n, "; }\n");
  expect_diag(schema, "t.ckpt:2:18: error: identifier is too long (2000 characters; the limit is 1024)");
  free(schema);
}

/* ------------------------------------------------------------------ syntax */

Test(diag, missing_semicolon) {
  expect_diag("package p;\nrecord R {\n  int32 x\n  int32 y;\n}\n",
              "t.ckpt:4:3: error: syntax error: unexpected identifier 'int32', expected ';', '@' or '='");
}

Test(diag, unexpected_end_of_file) {
  expect_diag("package p;\nrecord R {\n  int32 x;\n",
              "t.ckpt:4:1: error: syntax error: unexpected end of file");
}

Test(diag, keyword_as_field_name) {
  expect_diag("package p;\nrecord R { int32 map; }\n",
              "t.ckpt:2:18: error: syntax error: unexpected 'map', expected identifier or '.'");
}

Test(diag, duplicate_package) {
  expect_diag("package p;\npackage q;\n",
              "t.ckpt:2:1: error: duplicate package declaration (the package is already 'p')");
}

Test(diag, package_not_first) {
  expect_diag("record R { int32 x; }\npackage p;\n",
              "t.ckpt:2:1: error: the package declaration must come before imports and declarations");
}

Test(diag, missing_package) {
  expect_diag("record R { int32 x; }\n",
              "t.ckpt:1:1: error: missing package declaration: a schema starts with `package NAME;`");
}

/* ------------------------------------------------------------------ names */

Test(diag, unknown_type) {
  expect_diag("package p;\nrecord R { Foo x; }\n", "t.ckpt:2:12: error: unknown type 'Foo'");
}

Test(diag, duplicate_declaration) {
  expect_diag("package p;\nrecord R { int32 x; }\nhandler R;\n",
              "t.ckpt:3:9: error: duplicate name 'R': record 'R' is already declared at line 2");
}

Test(diag, duplicate_field) {
  expect_diag("package p;\nrecord R {\n  int32 x;\n  string x;\n}\n",
              "t.ckpt:4:10: error: duplicate field 'x' in record 'R' (first declared at line 3)");
}

Test(diag, presence_flag_collision) {
  expect_diag("package p;\nrecord R {\n  optional int32 x;\n  bool has_x;\n}\n",
              "t.ckpt:4:8: error: field 'has_x' collides with the presence flag 'has_x' generated for field 'x'");
}

Test(diag, count_collision) {
  expect_diag("package p;\nrecord R {\n  int64 n_xs;\n  list<int32> xs;\n}\n",
              "t.ckpt:4:15: error: the count 'n_xs' generated for field 'xs' collides with field 'n_xs'");
}

Test(diag, args_base_collision) {
  expect_diag("package p;\nargs A { int32 base; }\n",
              "t.ckpt:2:16: error: field 'base' collides with the 'ckpt_args base' member every args struct starts with");
}

Test(diag, c_keyword_field) {
  expect_diag("package p;\nrecord R { int32 int; }\n",
              "t.ckpt:2:18: error: field name 'int' is a C or C++ keyword; rename it");
}

Test(diag, cxx_keyword_record) {
  expect_diag("package p;\nrecord class { int32 x; }\n",
              "t.ckpt:2:8: error: record name 'class' is a C or C++ keyword; rename it");
}

Test(diag, reserved_suffix) {
  expect_diag("package p;\nrecord Thing_desc { int32 x; }\n",
              "t.ckpt:2:8: error: record name 'Thing_desc' ends in '_desc', which ckptgen reserves for generated functions and types");
}

Test(diag, reserved_suffix_args) {
  expect_diag("package p;\nhandler H;\n@register_with_handler(H, for_save = true)\nargs Load_restore { }\n"
              "@register_with_handler(H, for_restore = true)\nargs L { }\n",
              "t.ckpt:4:6: error: args name 'Load_restore' ends in '_restore', which ckptgen reserves for generated functions and types");
}

Test(diag, double_underscore) {
  expect_diag("package p;\nrecord R { int32 a__b; }\n",
              "t.ckpt:2:18: error: field name 'a__b' must not start or end with '_' or contain '__' (such C names are reserved)");
}

Test(diag, builtin_type_name) {
  expect_diag("package p;\nrecord int32 { bool x; }\n",
              "t.ckpt:2:8: error: record name 'int32' is a built-in type name");
}

Test(diag, args_as_field_type) {
  expect_diag("package p;\n@register_with_handler(H, for_save = true, for_restore = true)\nargs A { }\nhandler H;\nrecord R { A a; }\n",
              "t.ckpt:5:12: error: args type 'A' cannot be a field type; use 'args' (any CheckpointArgs) instead");
}

Test(diag, handler_as_field_type) {
  expect_diag("package p;\n@register_with_handler(H, for_save = true, for_restore = true)\nargs A { }\nhandler H;\nrecord R { H h; }\n",
              "t.ckpt:5:12: error: 'H' is a handler, not a type");
}

Test(diag, dtype_as_scalar) {
  expect_diag("package p;\nrecord R { float16 h; }\n",
              "t.ckpt:2:12: error: 'float16' is only available as an array dtype (array<float16>[...])");
}

Test(diag, not_imported) {
  extra_file extra[] = {{"a.ckpt", "package a;\nrecord A { int32 x; }\n"},
                        {"b.ckpt", "package b;\nimport \"a.ckpt\";\nrecord B { A a; }\n"},
                        {NULL, NULL}};
  expect_diag_with("package p;\nimport \"b.ckpt\";\nrecord R { a.A x; }\n", extra,
                   "t.ckpt:3:12: error: type 'a.A' is declared in a.ckpt, which this file does not import");
}

Test(diag, ambiguous_name) {
  extra_file extra[] = {{"a.ckpt", "package a;\nrecord X { int32 x; }\n"},
                        {"b.ckpt", "package b;\nrecord X { int32 y; }\n"},
                        {NULL, NULL}};
  expect_diag_with("package p;\nimport \"a.ckpt\";\nimport \"b.ckpt\";\nrecord R { X x; }\n", extra,
                   "t.ckpt:4:12: error: type 'X' is ambiguous: both 'a.X' and 'b.X' are imported; qualify it");
}

Test(diag, map_entry_name_collision) {
  expect_diag("package p;\nrecord A { map<int32> b_c; }\nrecord A_b { map<int32> c; }\n",
              "t.ckpt:3:25: error: map field 'A_b.c' needs the C type 'p_A_b_c_entry', which another map field already uses; rename one");
}

/* ------------------------------------------------------------------ types */

Test(diag, unknown_dtype) {
  expect_diag("package p;\nrecord R { array<float8>[4] a; }\n",
              "t.ckpt:2:18: error: unknown dtype 'float8' (expected one of bool, int8, int16, int32, int64, uint8, uint16, uint32, uint64, float16, bfloat16, float32, float64, complex64, complex128)");
}

Test(diag, empty_dims) {
  expect_diag("package p;\nrecord R { array<float32>[] a; }\n",
              "t.ckpt:2:26: error: bad dimensions: '[]' declares no dimension; give at least one (a size, '?' or a name) or leave the brackets out for any rank");
}

Test(diag, negative_dim) {
  expect_diag("package p;\nrecord R { array<float32>[3, -2] a; }\n",
              "t.ckpt:2:30: error: bad dimension (negative): expected a size, '?' or a name");
}

Test(diag, fractional_dim) {
  expect_diag("package p;\nrecord R { array<float32>[1.5] a; }\n",
              "t.ckpt:2:27: error: bad dimension (not an integer): expected a size, '?' or a name");
}

Test(diag, too_many_dims) {
  char schema[512];
  strcpy(schema, "package p;\nrecord R { array<int8>[");
  for (int i = 0; i < 33; i++) strcat(schema, i ? ",1" : "1");
  strcat(schema, "] a; }\n");
  expect_diag(schema, "t.ckpt:2:24: error: bad dimensions: 33 dimensions, the limit is 32");
}

Test(diag, nested_list) {
  expect_diag("package p;\nrecord R { list<list<int32>> l; }\n",
              "t.ckpt:2:17: error: list<list<...>> is not allowed: lists and maps do not nest directly; wrap the inner list in a record");
}

Test(diag, map_of_list) {
  expect_diag("package p;\nrecord R { map<list<int32>> m; }\n",
              "t.ckpt:2:16: error: map<list<...>> is not allowed: lists and maps do not nest directly; wrap the inner list in a record");
}

Test(diag, recursive_record) {
  expect_diag("package p;\nrecord R { R self; }\n",
              "t.ckpt:2:14: error: record 'R' contains itself by value (R.self -> R); use list<R> or map<R> to refer to it (optional records are embedded too)");
}

Test(diag, recursive_through_records) {
  expect_diag("package p;\nrecord A { B b; }\nrecord B { int32 x; optional A a; }\n",
              "t.ckpt:3:32: error: record 'A' contains itself by value (A.b -> B.a -> A); use list<A> or map<A> to refer to it (optional records are embedded too)");
}

/* ------------------------------------------------------------------ defaults */

Test(diag, default_wrong_type) {
  expect_diag("package p;\nrecord R { int32 x = \"seven\"; }\n",
              "t.ckpt:2:22: error: wrong default for field 'x' of type int32: expected an integer, got a string");
}

Test(diag, default_out_of_range) {
  expect_diag("package p;\nrecord R { int8 x = 128; }\n",
              "t.ckpt:2:21: error: default 128 is out of range for field 'x' of type int8 (-128..127)");
}

Test(diag, default_negative_unsigned) {
  expect_diag("package p;\nrecord R { uint16 x = -1; }\n",
              "t.ckpt:2:23: error: default -1 is out of range for field 'x' of type uint16 (0..65535)");
}

Test(diag, default_below_int64) {
  expect_diag("package p;\nrecord R { int64 x = -9223372036854775809; }\n",
              "t.ckpt:2:22: error: default -9223372036854775809 is out of range for field 'x' of type int64 (-9223372036854775808..9223372036854775807)");
}

Test(diag, default_float32_range) {
  expect_diag("package p;\nrecord R { float32 x = 1e39; }\n",
              "t.ckpt:2:24: error: default 1e+39 is out of range for field 'x' of type float32");
}

Test(diag, default_bool) {
  expect_diag("package p;\nrecord R { bool b = 1; }\n",
              "t.ckpt:2:21: error: wrong default for field 'b' of type bool: expected true or false, got an integer");
}

Test(diag, default_on_list) {
  expect_diag("package p;\nrecord R { list<int32> l = 3; }\n",
              "t.ckpt:2:28: error: field 'l' of type list<int32> cannot have a default");
}

Test(diag, default_on_optional) {
  expect_diag("package p;\nrecord R { optional int32 x = 3; }\n",
              "t.ckpt:2:31: error: optional field 'x' cannot have a default (an absent optional field has no value)");
}

Test(diag, default_string_with_nul) {
  expect_diag("package p;\nrecord R { string s = \"a\\0b\"; }\n",
              "t.ckpt:2:23: error: default of string field 's' contains a NUL byte (use bytes for binary data)");
}

Test(diag, default_unknown_unit) {
  expect_diag("package p;\nrecord R { int64 x = 3 MB; }\n",
              "t.ckpt:2:24: error: unknown size unit 'MB' (expected KiB, MiB or GiB)");
}

Test(diag, default_unit_on_float) {
  expect_diag("package p;\nrecord R { float64 x = 3 KiB; }\n",
              "t.ckpt:2:26: error: a size unit ('KiB') applies only to integer defaults; field 'x' is float64");
}

Test(diag, default_unit_overflow) {
  expect_diag("package p;\nrecord R { int16 x = 1 MiB; }\n",
              "t.ckpt:2:22: error: default 1048576 is out of range for field 'x' of type int16 (-32768..32767)");
}

/* ------------------------------------------------------------------ field annotations */

Test(diag, unknown_field_annotation) {
  expect_diag("package p;\nrecord R { array<float32>[4] a @shard(2); }\n",
              "t.ckpt:2:33: error: unknown annotation '@shard' (fields accept @chunk_bytes, @compress and @save_dtype)");
}

Test(diag, decl_annotation_on_field) {
  expect_diag("package p;\nrecord R { array<float32>[4] a @hooks(init); }\n",
              "t.ckpt:2:33: error: @hooks cannot be applied to a field");
}

Test(diag, chunk_bytes_on_scalar) {
  expect_diag("package p;\nrecord R { int32 x @chunk_bytes(1 MiB); }\n",
              "t.ckpt:2:21: error: @chunk_bytes applies to arrays, lists and maps of arrays, and trees; field 'x' is int32");
}

Test(diag, chunk_bytes_unit) {
  expect_diag("package p;\nrecord R { array<float32>[4] a @chunk_bytes(64 MB); }\n",
              "t.ckpt:2:48: error: unknown size unit 'MB' (expected KiB, MiB or GiB)");
}

Test(diag, chunk_bytes_zero) {
  expect_diag("package p;\nrecord R { array<float32>[4] a @chunk_bytes(0); }\n",
              "t.ckpt:2:45: error: @chunk_bytes must be positive");
}

Test(diag, chunk_bytes_not_a_size) {
  expect_diag("package p;\nrecord R { array<float32>[4] a @chunk_bytes(big); }\n",
              "t.ckpt:2:33: error: @chunk_bytes expects one size in bytes, e.g. @chunk_bytes(64 MiB)");
}

Test(diag, chunk_bytes_overflow) {
  expect_diag("package p;\nrecord R { array<float32>[4] a @chunk_bytes(9000000000 GiB); }\n",
              "t.ckpt:2:45: error: @chunk_bytes is too large (the limit is 2^63 - 1 bytes)");
}

Test(diag, compress_codec) {
  expect_diag("package p;\nrecord R { array<float32>[4] a @compress(gzip); }\n",
              "t.ckpt:2:33: error: @compress expects zstd, zstd and a level, or none: @compress(zstd, 3)");
}

Test(diag, compress_level_range) {
  expect_diag("package p;\nrecord R { array<float32>[4] a @compress(zstd, 23); }\n",
              "t.ckpt:2:48: error: zstd level 23 is out of range (1 to 22)");
}

Test(diag, compress_none_level) {
  expect_diag("package p;\nrecord R { array<float32>[4] a @compress(none, 3); }\n",
              "t.ckpt:2:48: error: @compress(none) takes no level");
}

Test(diag, save_dtype_unknown) {
  expect_diag("package p;\nrecord R { array<float32>[4] a @save_dtype(half); }\n",
              "t.ckpt:2:44: error: unknown dtype 'half' in @save_dtype");
}

Test(diag, duplicate_field_annotation) {
  expect_diag("package p;\nrecord R { array<float32>[4] a @compress(none) @compress(zstd); }\n",
              "t.ckpt:2:49: error: duplicate annotation '@compress' on field 'a'");
}

/* ------------------------------------------------------------------ registration and handlers */

static const char handler_ok[] =
    "handler H;\n"
    "@register_with_handler(H, for_save = true)\nargs S { }\n"
    "@register_with_handler(H, for_restore = true)\nargs L { }\n";

static void expect_with_handler(const char *rest, const char *expected) {
  char schema[2048];
  snprintf(schema, sizeof schema, "package p;\n%s%s", handler_ok, rest);
  expect_diag(schema, expected);
}

Test(diag, both_flags_false) {
  expect_with_handler("@register_with_handler(H, for_save = false, for_restore = false)\nargs X { }\n",
                      "t.ckpt:7:2: error: for_save and for_restore cannot both be false: the registration of 'X' would have no effect");
}

Test(diag, both_flags_absent) {
  expect_with_handler("@register_with_handler(H)\nargs X { }\n",
                      "t.ckpt:7:2: error: for_save and for_restore cannot both be false: the registration of 'X' would have no effect");
}

Test(diag, register_unknown_handler) {
  expect_with_handler("@register_with_handler(Nope, for_save = true)\nargs X { }\n",
                      "t.ckpt:7:24: error: unknown handler 'Nope'");
}

Test(diag, register_with_record) {
  expect_with_handler("record Rec { int32 x; }\n@register_with_handler(Rec, for_save = true)\nargs X { }\n",
                      "t.ckpt:8:24: error: 'Rec' is a record, not a handler");
}

Test(diag, register_unknown_parameter) {
  expect_with_handler("@register_with_handler(H, for_load = true)\nargs X { }\n",
                      "t.ckpt:7:27: error: unknown parameter 'for_load' of @register_with_handler (expected for_save or for_restore)");
}

Test(diag, register_non_bool) {
  expect_with_handler("@register_with_handler(H, for_save = 1)\nargs X { }\n",
                      "t.ckpt:7:38: error: for_save must be true or false");
}

Test(diag, register_duplicate_parameter) {
  expect_with_handler("@register_with_handler(H, for_save = true, for_save = false)\nargs X { }\n",
                      "t.ckpt:7:44: error: duplicate parameter 'for_save'");
}

Test(diag, register_without_handler) {
  expect_with_handler("@register_with_handler(for_save = true)\nargs X { }\n",
                      "t.ckpt:7:2: error: @register_with_handler expects a handler first: @register_with_handler(H, for_save = true)");
}

Test(diag, register_on_record) {
  expect_with_handler("@register_with_handler(H, for_save = true)\nrecord X { }\n",
                      "t.ckpt:7:2: error: @register_with_handler applies only to args declarations, not to record 'X'");
}

Test(diag, unknown_decl_annotation) {
  expect_with_handler("@deprecated\nrecord X { }\n", "t.ckpt:7:2: error: unknown annotation '@deprecated'");
}

Test(diag, field_annotation_on_decl) {
  expect_with_handler("@compress(zstd)\nrecord X { }\n",
                      "t.ckpt:7:2: error: @compress applies to fields, not to record declarations");
}

Test(diag, hooks_on_args) {
  expect_with_handler("@hooks(init)\n@register_with_handler(H, for_save = true)\nargs X { }\n",
                      "t.ckpt:7:2: error: @hooks applies only to handlers, not to args 'X'");
}

Test(diag, unknown_hook) {
  expect_diag("package p;\n@hooks(init, reset)\nhandler H;\n@register_with_handler(H, for_save = true, for_restore = true)\nargs A { }\n",
              "t.ckpt:2:14: error: unknown hook 'reset' (expected init, close, metadata or finalize)");
}

Test(diag, duplicate_hook) {
  expect_diag("package p;\n@hooks(close, close)\nhandler H;\n@register_with_handler(H, for_save = true, for_restore = true)\nargs A { }\n",
              "t.ckpt:2:15: error: duplicate hook 'close'");
}

Test(diag, hooks_on_record_handler) {
  expect_diag("package p;\nrecord R { int32 x; }\n@hooks(init)\nhandler H for R;\n",
              "t.ckpt:3:2: error: @hooks cannot be applied to a record handler ('handler H for R' uses the runtime's vtable)");
}

Test(diag, handler_without_restore_args) {
  expect_diag("package p;\nhandler H;\n@register_with_handler(H, for_save = true)\nargs S { }\n",
              "t.ckpt:2:9: error: handler 'H' has save args ('S') but no restore args: register an args type with @register_with_handler(H, for_restore = true) (Orbax's get_registered_args_cls needs both)");
}

Test(diag, handler_without_save_args) {
  expect_diag("package p;\nhandler H;\n@register_with_handler(H, for_restore = true)\nargs L { }\n",
              "t.ckpt:2:9: error: handler 'H' has restore args ('L') but no save args: register an args type with @register_with_handler(H, for_save = true) (Orbax's get_registered_args_cls needs both)");
}

Test(diag, handler_without_args) {
  expect_diag("package p;\nhandler H;\n",
              "t.ckpt:2:9: error: handler 'H' has no args registered with it: declare save and restore args with @register_with_handler(H, for_save = true) and (H, for_restore = true)");
}

Test(diag, record_handler_unknown_record) {
  expect_diag("package p;\nhandler H for Missing;\n", "t.ckpt:2:15: error: unknown record 'Missing'");
}

Test(diag, record_handler_for_args) {
  expect_with_handler("handler G for S;\n",
                      "t.ckpt:7:15: error: 'handler G for S': 'S' is an args; a record handler needs a record");
}

Test(diag, generated_args_collision) {
  expect_diag("package p;\nrecord R { int32 x; }\nrecord RSave { int32 y; }\nhandler H for R;\n",
              "t.ckpt:4:15: error: 'handler H for R' generates args 'RSave', which collides with the record 'RSave' declared at line 3");
}

Test(diag, duplicate_typestr) {
  expect_diag("package p;\nrecord R { int32 x; }\nrecord Q { int32 x; }\n"
              "handler H for R typestr \"x.Handler\";\nhandler G for Q typestr \"x.Handler\";\n",
              "t.ckpt:5:25: error: handler 'G' has typestr \"x.Handler\", which handler 'p.H' already uses");
}

Test(diag, empty_typestr) {
  expect_diag("package p;\nrecord R { int32 x; }\nhandler H for R typestr \"\";\n",
              "t.ckpt:3:25: error: the typestr of handler 'H' is empty");
}

Test(diag, hooks_without_names) {
  expect_diag("package p;\n@hooks()\nhandler H;\n@register_with_handler(H, for_save = true, for_restore = true)\nargs A { }\n",
              "t.ckpt:2:2: error: @hooks expects hook names: init, close, metadata, finalize");
}

Test(diag, duplicate_hooks_annotation) {
  expect_diag("package p;\n@hooks(init) @hooks(close)\nhandler H;\n@register_with_handler(H, for_save = true, for_restore = true)\nargs A { }\n",
              "t.ckpt:2:15: error: duplicate annotation '@hooks' on handler 'H'");
}

Test(diag, register_extra_argument) {
  expect_with_handler("@register_with_handler(H, L, for_save = true)\nargs X { }\n",
                      "t.ckpt:7:27: error: unexpected argument: @register_with_handler takes a handler, then for_save = and for_restore =");
}

Test(diag, save_dtype_arity) {
  expect_diag("package p;\nrecord R { array<float32>[4] a @save_dtype(float16, bfloat16); }\n",
              "t.ckpt:2:33: error: @save_dtype expects one dtype, e.g. @save_dtype(bfloat16)");
}

Test(diag, dimension_name_keyword) {
  expect_diag("package p;\nrecord R { array<float32>[?, auto] a; }\n",
              "t.ckpt:2:30: error: dimension name 'auto' is a C or C++ keyword; rename it");
}

/* ------------------------------------------------------------------ imports and protos */

Test(diag, proto_import_suffix) {
  extra_file extra[] = {{"m.txt", "syntax = \"proto3\";\n"}, {NULL, NULL}};
  expect_diag_with("package p;\nimport proto \"m.txt\";\n", extra,
                   "t.ckpt:2:14: error: a proto import must name a .proto file, not 'm.txt'");
}

Test(diag, import_not_found) {
  char *dir = cg_tmpdir_new();
  cg_write_text(dir, "t.ckpt", "package p;\nimport \"nowhere/x.ckpt\";\n");
  const char *args[] = {"-I", "inc", "-o", "out", "t.ckpt", NULL};
  cg_result r = cg_run(dir, args);
  cr_expect_eq(r.status, 1);
  /* the importing file's directory, the -I dirs, then the installed schemas (any path) */
  const char *want = "t.ckpt:2:8: error: cannot find import 'nowhere/x.ckpt' (searched: ., inc, ";
  cr_expect(strncmp(r.err, want, strlen(want)) == 0, "stderr:\n%s", r.err);
  cr_expect(strstr(r.err, ")\nimport \"nowhere/x.ckpt\";\n       ^~~~~~~~~~~~~~~~\n") != NULL, "stderr:\n%s", r.err);
  cr_expect_eq(cg_count_errors(r.err), 1);
  cg_run_free(&r);
  cg_tmpdir_remove(dir);
}

Test(diag, import_self) {
  expect_diag("package p;\nimport \"t.ckpt\";\n", "t.ckpt:2:8: error: import cycle: t.ckpt imports itself");
}

Test(diag, import_wrong_suffix) {
  extra_file extra[] = {{"x.txt", "package x;\n"}, {NULL, NULL}};
  expect_diag_with("package p;\nimport \"x.txt\";\n", extra,
                   "t.ckpt:2:8: error: an import must name a .ckpt file, not 'x.txt' (use `import proto` for .proto files)");
}

Test(diag, import_twice) {
  extra_file extra[] = {{"a.ckpt", "package a;\n"}, {NULL, NULL}};
  expect_diag_with("package p;\nimport \"a.ckpt\";\nimport \"a.ckpt\";\n", extra,
                   "t.ckpt:3:8: error: 'a.ckpt' is imported twice");
}

Test(diag, package_in_two_files) {
  extra_file extra[] = {{"a.ckpt", "package p;\n"}, {NULL, NULL}};
  expect_diag_with("package p;\nimport \"a.ckpt\";\n", extra,
                   "a.ckpt:1:9: error: package 'p' is already declared by t.ckpt: a package is one schema file (it gets one p_register function)");
}

Test(diag, unknown_proto_message) {
  extra_file extra[] = {{"m.proto", "syntax = \"proto3\";\npackage demo;\nmessage RunInfo { string name = 1; }\n"},
                        {NULL, NULL}};
  expect_diag_with("package p;\nimport proto \"m.proto\";\nrecord R { proto demo.Run r; }\n", extra,
                   "t.ckpt:3:18: error: unknown proto message 'demo.Run' (the imported .proto files declare: demo.RunInfo)");
}

Test(diag, proto_enum_not_message) {
  extra_file extra[] = {{"m.proto", "syntax = \"proto3\";\npackage demo;\n// message Fake { }\n"
                                    "message RunInfo { enum Kind { A = 0; } Kind k = 1; }\nenum Color { RED = 0; }\n"},
                        {NULL, NULL}};
  expect_diag_with("package p;\nimport proto \"m.proto\";\nrecord R { proto demo.RunInfo.Kind k; }\n", extra,
                   "t.ckpt:3:18: error: 'demo.RunInfo.Kind' is a proto enum, not a message; a proto field needs a message type");
}

Test(diag, proto_without_import) {
  expect_diag("package p;\nrecord R { proto demo.RunInfo r; }\n",
              "t.ckpt:2:18: error: unknown proto message 'demo.RunInfo': this file imports no .proto file (add `import proto \"file.proto\";`)");
}

Test(diag, proto_unbalanced) {
  extra_file extra[] = {{"m.proto", "syntax = \"proto3\";\nmessage A { }\n}\n"}, {NULL, NULL}};
  /* the diagnostic points into the .proto file */
  char *dir = cg_tmpdir_new();
  cg_write_text(dir, "t.ckpt", "package p;\nimport proto \"m.proto\";\n");
  cg_write_text(dir, extra[0].name, extra[0].text);
  const char *args[] = {"-o", "out", "t.ckpt", NULL};
  cg_result r = cg_run(dir, args);
  cr_expect_eq(r.status, 1);
  cr_expect_str_eq(r.err, "m.proto:3:1: error: unbalanced '}' in proto file\n}\n^\n");
  cg_run_free(&r);
  cg_tmpdir_remove(dir);
}
