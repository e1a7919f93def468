/* test_json.c — JSON text for cJSON trees (text/json.h): output identical to Python's
 * json.dumps, exact numbers in both directions, Python's NaN/Infinity, duplicate keys,
 * integers beyond 2^53, and clean "source:line:col" errors for malformed text (truncations,
 * mutations, deep nesting) without crashes or leaks. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "text/json.h"
#include "util/arena.h"

static char *dump_ok(const cJSON *item) {
  ckpt_error err = CKPT_ERROR_INIT;
  char *text = NULL;
  size_t len = 0;
  cr_assert_eq(ckpt_json_dump(item, &text, &len, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(strlen(text), len);
  return text;
}

static cJSON *load_ok(const char *text) {
  ckpt_error err = CKPT_ERROR_INIT;
  cJSON *v = NULL;
  cr_assert_eq(ckpt_json_load(text, strlen(text), "metadata", &v, &err), CKPT_OK, "%s: %s", text,
               err.message);
  cr_assert_not_null(v);
  return v;
}

static void load_fails(const char *text, size_t len, const char *want) {
  ckpt_error err = CKPT_ERROR_INIT;
  cJSON *v = (cJSON *)(uintptr_t)1;
  ckpt_status st = ckpt_json_load(text, len, "metadata", &v, &err);
  cr_assert_eq(st, CKPT_ECORRUPT, "'%.*s' gave %d: %s", (int)len, text, (int)st, err.message);
  cr_assert_null(v);
  cr_assert(strstr(err.message, want), "'%s' lacks '%s'", err.message, want);
}
#define LOAD_FAILS(text, want) load_fails((text), strlen(text), (want))

Test(json_text, dump_matches_python_json_dumps) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "a", 1);
  cJSON *b = cJSON_AddArrayToObject(o, "b");
  cJSON_AddItemToArray(b, cJSON_CreateTrue());
  cJSON_AddItemToArray(b, cJSON_CreateFalse());
  cJSON_AddItemToArray(b, cJSON_CreateNull());
  cJSON_AddStringToObject(o, "c", "x\"\\\n\t\xc3\xa9\xf0\x9f\x98\x80\x01\x7f/");
  cJSON_AddNumberToObject(o, "d", 0.1);
  cJSON_AddNumberToObject(o, "e", -0.0);
  cJSON_AddNumberToObject(o, "f", NAN);
  cJSON_AddNumberToObject(o, "g", INFINITY);
  cJSON_AddNumberToObject(o, "h", -INFINITY);
  cJSON_AddNumberToObject(o, "i", 1e100);
  cJSON_AddNumberToObject(o, "j", 12345678901234568.0);
  cJSON_AddObjectToObject(o, "k");
  cJSON_AddArrayToObject(o, "l");
  cJSON_AddNumberToObject(o, "m", 1e-07);
  cJSON_AddNumberToObject(o, "n", 2.5);
  char *text = dump_ok(o);
  /* json.dumps of the same dict (int 1 and 12345678901234568 print as ints there too) */
  cr_assert_str_eq(text,
                   "{\"a\": 1, \"b\": [true, false, null], "
                   "\"c\": \"x\\\"\\\\\\n\\t\\u00e9\\ud83d\\ude00\\u0001\\u007f/\", "
                   "\"d\": 0.1, \"e\": -0.0, \"f\": NaN, \"g\": Infinity, \"h\": -Infinity, "
                   "\"i\": 1e+100, \"j\": 12345678901234568, \"k\": {}, \"l\": [], "
                   "\"m\": 1e-07, \"n\": 2.5}");
  free(text);
  cJSON_Delete(o);
}

Test(json_text, every_double_round_trips_bit_exactly) {
  uint64_t x = 0x9E3779B97F4A7C15u;
  cJSON *arr = cJSON_CreateArray();
  double vals[4000];
  size_t n = 0;
  double fixed[] = {0.1,
                    1.0 / 3,
                    5e-324,
                    2.2250738585072014e-308,
                    1.7976931348623157e308,
                    9007199254740993.0,
                    1e16,
                    1e17,
                    123456789012345678.0,
                    -1e-300,
                    0.5};
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
    vals[n++] = fixed[i];
  while (n < 4000) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    double d;
    memcpy(&d, &x, sizeof d);
    if (isnan(d) || isinf(d))
      continue;
    vals[n++] = d;
  }
  for (size_t i = 0; i < n; i++)
    cJSON_AddItemToArray(arr, cJSON_CreateNumber(vals[i]));
  char *text = dump_ok(arr);
  cJSON *back = load_ok(text);
  cr_assert_eq((size_t)cJSON_GetArraySize(back), n);
  size_t i = 0;
  for (cJSON *c = back->child; c; c = c->next, i++) {
    cr_assert(cJSON_IsNumber(c), "element %zu is not a number", i);
    cr_assert(memcmp(&c->valuedouble, &vals[i], sizeof(double)) == 0,
              "element %zu: %.17g came back as %.17g", i, vals[i], c->valuedouble);
  }
  free(text);
  cJSON_Delete(arr);
  cJSON_Delete(back);
}

Test(json_text, load_python_extensions_and_escapes) {
  cJSON *v = load_ok(
      " {\"nan\": NaN, \"inf\": Infinity, \"ninf\": -Infinity,\n"
      "  \"s\": \"\\u00e9\\ud83d\\ude00\\/\\b\\f\\n\\r\\t\\\"\\\\\", "
      "\"raw\": \"caf\xc3\xa9\", \"e\": 1E+2, \"z\": -0, \"f\": -0.0} ");
  cr_assert(isnan(cJSON_GetObjectItem(v, "nan")->valuedouble));
  cr_assert(isinf(cJSON_GetObjectItem(v, "inf")->valuedouble));
  cr_assert(cJSON_GetObjectItem(v, "ninf")->valuedouble < 0);
  cr_assert_str_eq(cJSON_GetObjectItem(v, "s")->valuestring,
                   "\xc3\xa9\xf0\x9f\x98\x80/\b\f\n\r\t\"\\");
  cr_assert_str_eq(cJSON_GetObjectItem(v, "raw")->valuestring, "caf\xc3\xa9");
  cr_assert_eq(cJSON_GetObjectItem(v, "e")->valuedouble, 100.0);
  cr_assert(signbit(cJSON_GetObjectItem(v, "f")->valuedouble));
  cr_assert(!signbit(cJSON_GetObjectItem(v, "z")->valuedouble), "-0 is the integer 0");
  cJSON_Delete(v);
  v = load_ok("\"top-level string\"");
  cr_assert(cJSON_IsString(v));
  cJSON_Delete(v);
  v = load_ok("42");
  cr_assert_eq(v->valuedouble, 42.0);
  cJSON_Delete(v);
}

Test(json_text, duplicate_keys_keep_last_value_at_first_position) {
  cJSON *v = load_ok("{\"a\": 1, \"b\": 2, \"a\": 3, \"c\": 4, \"a\": 5}");
  cr_assert_eq(cJSON_GetArraySize(v), 3);
  cr_assert_str_eq(v->child->string, "a");
  cr_assert_eq(v->child->valuedouble, 5.0);
  cr_assert_str_eq(v->child->next->string, "b");
  cr_assert_str_eq(v->child->next->next->string, "c");
  char *text = dump_ok(v);
  cr_assert_str_eq(text, "{\"a\": 5, \"b\": 2, \"c\": 4}");
  free(text);
  cJSON_Delete(v);
}

/* The loader skips its duplicate search while keys arrive strictly increasing (Orbax's sorted
 * documents): a repeat right after its first, or after a sorted run, must still be found. */
Test(json_text, duplicates_after_sorted_keys_are_still_merged) {
  cJSON *v = load_ok("{\"a\": 1, \"b\": 2, \"b\": 3}");
  cr_assert_eq(cJSON_GetArraySize(v), 2);
  cr_assert_eq(cJSON_GetObjectItemCaseSensitive(v, "b")->valuedouble, 3.0);
  cJSON_Delete(v);
  v = load_ok("{\"a\": 1, \"b\": 2, \"c\": 3, \"a\": 4}");
  cr_assert_eq(cJSON_GetArraySize(v), 3);
  cr_assert_str_eq(v->child->string, "a");
  cr_assert_eq(v->child->valuedouble, 4.0);
  cJSON_Delete(v);
  /* names and values with escapes (copied through the escape decoder) and without */
  v = load_ok("{\"k\\u00e9\": \"v\\n\", \"k\\u00e9\": \"w\", \"z\": \"\"}");
  cr_assert_eq(cJSON_GetArraySize(v), 2);
  cr_assert_str_eq(v->child->string, "k\xc3\xa9");
  cr_assert_str_eq(v->child->valuestring, "w");
  cr_assert_str_eq(v->child->next->valuestring, "");
  cJSON_Delete(v);
  v = load_ok("{\"a\": 1, \"b\": {\"x\": 1, \"x\": 2}, \"c\": 3}");
  cr_assert_eq(cJSON_GetArraySize(v), 3);
  cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(v, "b")), 1);
  cJSON_Delete(v);
  ckpt_error err = CKPT_ERROR_INIT;
  v = NULL;
  const char *text = "{\"a\": 1, \"b\": 2, \"b\": 3}";
  cr_assert_eq(ckpt_json_load_opts(text, strlen(text), "metadata", CKPT_JSON_UNIQUE_KEYS, &v, &err),
               CKPT_ECORRUPT);
  cr_assert(strstr(err.message, "more than once"), "%s", err.message);
  cr_assert_null(v);
}

Test(json_text, integers_beyond_2_53_are_kept_exactly) {
  cJSON *v = load_ok(
      "[9007199254740993, -9223372036854775809, 18446744073709551615, "
      "9007199254740992, 1180591620717411303424]");
  cJSON *e0 = cJSON_GetArrayItem(v, 0), *e1 = cJSON_GetArrayItem(v, 1);
  cJSON *e3 = cJSON_GetArrayItem(v, 3);
  cr_assert(cJSON_IsRaw(e0), "2^53+1 has no double: kept as raw digits");
  cr_assert_str_eq(e0->valuestring, "9007199254740993");
  cr_assert(cJSON_IsRaw(e1));
  cr_assert(cJSON_IsNumber(e3), "2^53 is exact");
  cr_assert(cJSON_IsNumber(cJSON_GetArrayItem(v, 4)), "2^70 is a double exactly");
  char *text = dump_ok(v);
  cr_assert_str_eq(text,
                   "[9007199254740993, -9223372036854775809, 18446744073709551615, "
                   "9007199254740992, 1.1805916207174113e+21]");
  free(text);
  cJSON_Delete(v);
}

Test(json_text, malformed_text_names_line_and_column) {
  LOAD_FAILS("", "metadata:1:1: expected a JSON value, found end of input");
  LOAD_FAILS("{\"a\": 1,\n  \"b\" 2}", "metadata:2:7: expected ':' after object key \"b\"");
  LOAD_FAILS("{\"a\": 1,}", "1:9: expected a string key");
  LOAD_FAILS("[1, 2,]", "1:7: expected a JSON value, found ']'");
  LOAD_FAILS("[1 2]", "1:4: expected ',' or ']' after array element");
  LOAD_FAILS("{\"a\": 1 \"b\": 2}", "expected ',' or '}' after object member");
  LOAD_FAILS("{} {}", "1:4: extra data after the JSON value");
  LOAD_FAILS("01", "extra data");
  LOAD_FAILS("-", "invalid number");
  LOAD_FAILS("1.", "digits expected after '.'");
  LOAD_FAILS("1e", "digits expected in exponent");
  LOAD_FAILS(".5", "expected a JSON value, found '.'");
  LOAD_FAILS("+1", "expected a JSON value, found '+'");
  LOAD_FAILS("nan", "expected a JSON value");
  LOAD_FAILS("tru", "expected a JSON value");
  LOAD_FAILS("\"abc", "1:1: unterminated string");
  LOAD_FAILS("\"a\nb\"", "invalid control character 0x0a");
  LOAD_FAILS("\"\\x41\"", "invalid escape '\\x'");
  LOAD_FAILS("\"\\u12\"", "invalid \\u escape");
  LOAD_FAILS("\"\\ud800\"", "unpaired UTF-16 surrogate \\ud800");
  LOAD_FAILS("\"\\udc00\\ud800\"", "unpaired UTF-16 surrogate \\udc00");
  LOAD_FAILS("\"\\u0000\"", "cJSON strings cannot hold NUL");
  LOAD_FAILS("\"\xff\"", "1:2: invalid UTF-8 in string");
  LOAD_FAILS("\xef\xbb\xbf{}", "byte order mark");
  LOAD_FAILS("{\"a\"", "expected ':'");
  load_fails("[1]\0", 4, "extra data");
  load_fails("\0", 1, "found byte 0x00");
}

Test(json_text, nesting_is_bounded) {
  size_t n = 100000;
  char *deep = malloc(2 * n + 1);
  cr_assert_not_null(deep);
  memset(deep, '[', n);
  memset(deep + n, ']', n);
  deep[2 * n] = '\0';
  LOAD_FAILS(deep, "JSON nested deeper than 1000 levels");
  /* at the limit it parses */
  size_t ok = CKPT_JSON_MAX_DEPTH + 1;
  memset(deep, '[', ok);
  memset(deep + ok, ']', ok);
  deep[2 * ok] = '\0';
  cJSON *v = load_ok(deep);
  cJSON_Delete(v);
  free(deep);
}

Test(json_text, every_truncation_and_mutation_fails_cleanly) {
  const char *text =
      "{\"step\": 10, \"lr\": 0.001, \"tags\": [\"a\", \"b\\n\"], "
      "\"nested\": {\"x\": [1, 2, {\"y\": null}], \"t\": true, \"f\": false}, "
      "\"u\": \"\\u00e9\", \"n\": -1.5e-3}";
  size_t n = strlen(text);
  for (size_t k = 0; k < n; k++) {
    ckpt_error err = CKPT_ERROR_INIT;
    cJSON *v = NULL;
    ckpt_status st = ckpt_json_load(text, k, "metadata", &v, &err);
    cr_assert_eq(st, CKPT_ECORRUPT, "prefix %zu parsed", k);
    cr_assert(strncmp(err.message, "metadata:1:", 11) == 0, "%s", err.message);
  }
  char *copy = malloc(n);
  cr_assert_not_null(copy);
  const char subs[] = {'\0', '{', '}', '[', ']', '"', '\\', ':', ',', '-', 'e', '.', '\xc3'};
  for (size_t k = 0; k < n; k++) {
    for (size_t j = 0; j < sizeof subs; j++) {
      memcpy(copy, text, n);
      copy[k] = subs[j];
      ckpt_error err = CKPT_ERROR_INIT;
      cJSON *v = NULL;
      ckpt_status st = ckpt_json_load(copy, n, "metadata", &v, &err);
      if (st == CKPT_OK)
        cJSON_Delete(v);
      else
        cr_assert_eq(st, CKPT_ECORRUPT, "%s", err.message);
    }
  }
  free(copy);
}

static void dump_fails(const cJSON *item, const char *want) {
  ckpt_error err = CKPT_ERROR_INIT;
  char *text = (char *)1;
  cr_assert_eq(ckpt_json_dump(item, &text, NULL, &err), CKPT_EINVAL, "%s", err.message);
  cr_assert_null(text);
  cr_assert(strstr(err.message, want), "'%s' lacks '%s'", err.message, want);
}

Test(json_text, dump_refuses_what_python_could_not_read_back) {
  cJSON *o = cJSON_CreateObject();
  cJSON *inner = cJSON_AddObjectToObject(o, "cfg");
  cJSON_AddStringToObject(inner, "name", "bad\xff");
  dump_fails(o, "JSON string at $.cfg.name is not valid UTF-8");
  cJSON_Delete(o);

  o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "k", 1);
  cJSON_AddNumberToObject(o, "k", 2); /* cJSON allows it; Python would keep one */
  dump_fails(o, "duplicate key 'k'");
  cJSON_Delete(o);

  o = cJSON_CreateObject(); /* many keys: the sorted check */
  char key[16];
  for (int i = 0; i < 50; i++) {
    snprintf(key, sizeof key, "k%d", i % 49);
    cJSON_AddNumberToObject(o, key, i);
  }
  dump_fails(o, "duplicate key 'k0'");
  cJSON_Delete(o);

  cJSON *raw = cJSON_CreateRaw("{not json");
  dump_fails(raw, "raw item at $ is not valid JSON");
  cJSON_Delete(raw);

  cJSON *arr = cJSON_CreateArray();
  cJSON_AddItemToArray(arr, cJSON_CreateNull());
  cJSON_AddItemReferenceToArray(arr, arr); /* the reference's children include itself */
  dump_fails(arr, "nested deeper than 1000");
  cJSON_Delete(arr);

  cJSON *inv = cJSON_CreateNull();
  inv->type = cJSON_Invalid;
  dump_fails(inv, "invalid cJSON type");
  cJSON_Delete(inv);
}

/* ckpt_json_load_arena (the restore's loader for _METADATA and _CHECKSUMS) builds the same
 * tree as ckpt_json_load, and fails the same way with the same message, for well-formed text,
 * repeated keys, escapes, raw integers and every truncation and mutation of a document; the
 * arena is freed whole afterwards (ASan finds a leak or a stray free). */
/* Item for item: types, names, strings, numbers bit for bit (cJSON_Compare finds NaN and
 * infinities unequal to themselves), in order. */
static bool same_tree(const cJSON *a, const cJSON *b) {
  for (; a != NULL && b != NULL; a = a->next, b = b->next) {
    if ((a->type & 0xff) != (b->type & 0xff) || (a->string == NULL) != (b->string == NULL) ||
        (a->string && strcmp(a->string, b->string) != 0) ||
        (a->valuestring == NULL) != (b->valuestring == NULL) ||
        (a->valuestring && strcmp(a->valuestring, b->valuestring) != 0) ||
        memcmp(&a->valuedouble, &b->valuedouble, sizeof a->valuedouble) != 0 ||
        a->valueint != b->valueint || !same_tree(a->child, b->child))
      return false;
  }
  return a == NULL && b == NULL;
}

static void same_as_heap_loader(const char *text, size_t len, unsigned flags) {
  ckpt_error e1 = CKPT_ERROR_INIT, e2 = CKPT_ERROR_INIT;
  cJSON *heap = NULL, *in_arena = NULL;
  ckpt_arena arena = CKPT_ARENA_INIT;
  ckpt_status s1 = ckpt_json_load_opts(text, len, "doc", flags, &heap, &e1);
  ckpt_status s2 = ckpt_json_load_arena(text, len, "doc", flags, &arena, &in_arena, &e2);
  cr_assert_eq(s1, s2, "'%.*s': %d vs %d", (int)len, text, (int)s1, (int)s2);
  if (s1 != CKPT_OK) {
    cr_assert_str_eq(e1.message, e2.message);
    cr_assert_null(in_arena);
  } else {
    cr_assert(same_tree(heap, in_arena), "'%.*s' differs", (int)len, text);
    char *a = dump_ok(heap), *b = dump_ok(in_arena);
    cr_assert_str_eq(a, b);
    free(a);
    free(b);
  }
  cJSON_Delete(heap);
  ckpt_arena_free(&arena);
}

Test(json_text, arena_loader_matches_the_heap_loader) {
  const char *docs[] = {
      "{\"a\": 1, \"b\": 2, \"a\": 3, \"c\": 4, \"a\": 5}",
      "{\"a\": 1, \"b\": {\"x\": 1, \"x\": [2, {\"y\": null}]}, \"c\": 3, \"a\": \"s\"}",
      "{\"k\\u00e9\": \"v\\n\", \"k\\u00e9\": \"w\", \"z\": \"\", \"caf\xc3\xa9\": true}",
      ("[9007199254740993, -9223372036854775809, 999999999999999, -999999999999999, "
       "1000000000000000, -0, 0, 12, 1.5e3, NaN, -Infinity, false]"),
      "\"top\"",
      "{}",
      "[]",
  };
  for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
    same_as_heap_loader(docs[i], strlen(docs[i]), 0);
    same_as_heap_loader(docs[i], strlen(docs[i]), CKPT_JSON_UNIQUE_KEYS);
  }
  const char *text = "{\"arrays\": {\"a\": {\"0\": [3735928559, 4096]}, \"b\\t\": {}}, "
                     "\"files\": {\"x/.zarray\": [1, 2]}, \"v\": [1, -2.5e-3, \"\\u00e9\"]}";
  size_t n = strlen(text);
  char *copy = malloc(n);
  cr_assert_not_null(copy);
  const char subs[] = {'\0', '{', '}', '[', ']', '"', '\\', ':', ',', '-', 'e', '.', '\xc3', '7'};
  for (size_t k = 0; k <= n; k++)
    same_as_heap_loader(text, k, CKPT_JSON_UNIQUE_KEYS);
  for (size_t k = 0; k < n; k++) {
    for (size_t j = 0; j < sizeof subs; j++) {
      memcpy(copy, text, n);
      copy[k] = subs[j];
      same_as_heap_loader(copy, n, 0);
    }
  }
  free(copy);
}

/* Integers of at most 15 digits are read without strtod: the same doubles. */
Test(json_text, short_integers_are_exact) {
  cJSON *v = load_ok("[999999999999999, -999999999999999, 123456789012345, 4294967295, -7, -0]");
  cr_assert_eq(cJSON_GetArrayItem(v, 0)->valuedouble, 999999999999999.0);
  cr_assert_eq(cJSON_GetArrayItem(v, 1)->valuedouble, -999999999999999.0);
  cr_assert_eq(cJSON_GetArrayItem(v, 2)->valuedouble, 123456789012345.0);
  cr_assert_eq(cJSON_GetArrayItem(v, 3)->valuedouble, 4294967295.0);
  cr_assert_eq(cJSON_GetArrayItem(v, 4)->valueint, -7);
  cr_assert(!signbit(cJSON_GetArrayItem(v, 5)->valuedouble));
  cJSON_Delete(v);
}
