/* fuzz/fuzz_pbtxt.c — the protobuf text-format parser (ckpt_pbtxt_parse, text/pbtxt_parse.c),
 * which the proto handler runs on every restored .pbtxt item, and the printer on what it parsed.
 *
 * The parser is driven by a message descriptor; each input is parsed as two messages of the
 * test protos (tests/runtime/pbtxt_test{2,3}.proto, compiled with protoc-c as the tests do)
 * that between them have every field kind: all scalar types, strings and bytes, enums (closed
 * and open), nested and repeated messages, packed fields, oneofs, proto2 defaults and proto3
 * maps with every key kind.
 *
 * Properties: no crash, leak or UB; a failure carries a message and returns no message; an
 * accepted text prints, and parsing the printed text and printing again gives the same text. */
#include <stdlib.h>
#include <string.h>

#include "ckpt/pbtxt.h"
#include "fuzz.h"
#include "pbtxt_test2.pb-c.h"
#include "pbtxt_test3.pb-c.h"

static void parse_as(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t size) {
  ckpt_error err = CKPT_ERROR_INIT;
  ProtobufCMessage *msg = NULL;
  ckpt_status st = ckpt_pbtxt_parse(desc, (const char *)data, size, "fuzz.pbtxt", &msg, &err);
  fuzz_require_error(st, &err, "ckpt_pbtxt_parse");
  fuzz_require((st == CKPT_OK) == (msg != NULL), "ckpt_pbtxt_parse: status and message disagree");
  if (msg == NULL)
    return;
  char *text = NULL;
  size_t len = 0;
  st = ckpt_pbtxt_print(msg, &text, &len, &err);
  fuzz_require_error(st, &err, "ckpt_pbtxt_print");
  fuzz_require(st == CKPT_OK, "a parsed message cannot be printed");
  ProtobufCMessage *again = NULL;
  st = ckpt_pbtxt_parse(desc, text, len, "printed", &again, &err);
  fuzz_require(st == CKPT_OK, "the printed text is not parsed");
  char *text2 = NULL;
  size_t len2 = 0;
  st = ckpt_pbtxt_print(again, &text2, &len2, &err);
  fuzz_require(st == CKPT_OK && len2 == len && memcmp(text, text2, len) == 0,
               "print(parse(print(msg))) differs from print(msg)");
  free(text2);
  protobuf_c_message_free_unpacked(again, NULL);
  free(text);
  protobuf_c_message_free_unpacked(msg, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  parse_as(&ckpt_pbtest2__everything__descriptor, data, size);
  parse_as(&ckpt_pbtest3__config__descriptor, data, size);
  return 0;
}
