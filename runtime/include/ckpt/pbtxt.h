/* ckpt/pbtxt.h — protobuf text format for any protoc-c message, compatible with Python's
 * google.protobuf.text_format (what Orbax's ProtoCheckpointHandler writes and reads).
 *
 * Both directions are driven by the message's ProtobufCMessageDescriptor, so every message
 * protoc-c generates works without generated printing code:
 *  - ckpt_pbtxt_print produces exactly text_format.MessageToString(msg): fields in number order,
 *    two-space indentation, `name: value` for scalars and `name {` ... `}` for messages, strings
 *    and bytes C-escaped (bytes >= 0x7f as octal), floats as Python prints them, enums by name,
 *    map entries sorted by key.
 *  - ckpt_pbtxt_parse accepts what text_format.Parse accepts: `name: value`, `name { ... }`,
 *    `name < ... >`, an optional `:` before messages, `name: [v1, v2]` lists, `,`/`;`
 *    separators, `#` comments, adjacent string literals, integers in decimal, hex and octal,
 *    `inf`/`nan`, enum names or numbers. Errors name "source:line:column".
 * See docs/handlers-json-proto.md for the complete list and the limits. */
#ifndef CKPT_PBTXT_H
#define CKPT_PBTXT_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "ckpt/api.h"
#include "ckpt/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Messages nested deeper than this are rejected by both directions (protobuf's own default
 * recursion limit), so hostile input cannot exhaust the stack. */
#define CKPT_PBTXT_MAX_DEPTH 100

/* Prints msg in text format. On success *out is a malloc'ed NUL-terminated string owned by the
 * caller (free()), *len (if not NULL) its length without the NUL. Fails with CKPT_EINVAL when
 * the message cannot be printed faithfully: a required string or message field unset, a string
 * field that is not valid UTF-8, unknown fields (text format has no spelling for them), nesting
 * deeper than CKPT_PBTXT_MAX_DEPTH; the message names the field path. */
CKPT_API ckpt_status ckpt_pbtxt_print(const ProtobufCMessage *msg, char **out, size_t *len,
                                      ckpt_error *err);

/* Parses text[0..len) (need not be NUL-terminated) into a new message of type desc. source
 * names the text in error messages ("proto.pbtxt"); NULL means "<pbtxt>". On success *out is
 * owned by the caller: release it with protobuf_c_message_free_unpacked(*out, NULL) (every
 * string, bytes, repeated array and submessage is malloc'ed separately, as protobuf-c's
 * unpack does). Malformed text fails with CKPT_ECORRUPT and "source:line:col: ..."; *out is
 * then NULL and nothing leaks. */
CKPT_API ckpt_status ckpt_pbtxt_parse(const ProtobufCMessageDescriptor *desc, const char *text,
                                      size_t len, const char *source, ProtobufCMessage **out,
                                      ckpt_error *err);

#ifdef __cplusplus
}
#endif
#endif
