/* pbtxt_testutil.h — helpers shared by the protobuf text-format tests (test_pbtxt_*.c,
 * test_proto_handler.c): message equality through protobuf-c's packed encoding, print/parse
 * round trips with Criterion assertions. */
#ifndef CKPT_TEST_PBTXT_TESTUTIL_H
#define CKPT_TEST_PBTXT_TESTUTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <protobuf-c/protobuf-c.h>

#include "ckpt/pbtxt.h"

/* Packed bytes of m; caller frees. */
static inline uint8_t *pbt_pack(const ProtobufCMessage *m, size_t *len) {
  *len = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(*len ? *len : 1);
  cr_assert_not_null(buf);
  cr_assert_eq(protobuf_c_message_pack(m, buf), *len);
  return buf;
}

/* Equal when both pack to the same bytes (same type, same fields, same order). */
static inline int pbt_equal(const ProtobufCMessage *a, const ProtobufCMessage *b) {
  if (a->descriptor != b->descriptor)
    return 0;
  size_t la, lb;
  uint8_t *pa = pbt_pack(a, &la), *pb = pbt_pack(b, &lb);
  int eq = la == lb && memcmp(pa, pb, la) == 0;
  free(pa);
  free(pb);
  return eq;
}

/* Prints m, asserting success; caller frees the text. */
static inline char *pbt_print(const ProtobufCMessage *m) {
  ckpt_error err = CKPT_ERROR_INIT;
  char *text = NULL;
  size_t len = 0;
  ckpt_status st = ckpt_pbtxt_print(m, &text, &len, &err);
  cr_assert_eq(st, CKPT_OK, "print failed: %s", err.message);
  cr_assert_eq(strlen(text), len);
  return text;
}

/* Parses text as desc, asserting success; free with protobuf_c_message_free_unpacked. */
static inline ProtobufCMessage *pbt_parse(const ProtobufCMessageDescriptor *desc,
                                          const char *text) {
  ckpt_error err = CKPT_ERROR_INIT;
  ProtobufCMessage *m = NULL;
  ckpt_status st = ckpt_pbtxt_parse(desc, text, strlen(text), "test.pbtxt", &m, &err);
  cr_assert_eq(st, CKPT_OK, "parse failed: %s\n--- text:\n%s", err.message, text);
  cr_assert_not_null(m);
  return m;
}

/* Parsing text must fail with CKPT_ECORRUPT and a message containing want. */
static inline void pbt_parse_fails(const ProtobufCMessageDescriptor *desc, const char *text,
                                   size_t len, const char *want) {
  ckpt_error err = CKPT_ERROR_INIT;
  ProtobufCMessage *m = (ProtobufCMessage *)(uintptr_t)1;
  ckpt_status st = ckpt_pbtxt_parse(desc, text, len, "proto.pbtxt", &m, &err);
  cr_assert_eq(st, CKPT_ECORRUPT, "expected CKPT_ECORRUPT for %.*s, got %d (%s)", (int)len, text,
               (int)st, err.message);
  cr_assert_null(m);
  cr_assert_eq(err.code, CKPT_ECORRUPT);
  cr_assert(strstr(err.message, want) != NULL, "error '%s' does not contain '%s'", err.message,
            want);
}

/* print -> parse -> equal (by packed bytes) -> print again gives the same text. */
static inline void pbt_roundtrip(const ProtobufCMessage *m) {
  char *text = pbt_print(m);
  ProtobufCMessage *back = pbt_parse(m->descriptor, text);
  cr_assert(pbt_equal(m, back), "round trip changed the message; text:\n%s", text);
  char *again = pbt_print(back);
  cr_assert_str_eq(again, text);
  free(again);
  free(text);
  protobuf_c_message_free_unpacked(back, NULL);
}

#endif
