/* text/pbtxt_values.h — conversion of one text-format token into a field value, with
 * Python text_format's accepted spellings and range checks. Every function reports a bad
 * token as CKPT_ECORRUPT "source:line:col: ..." through the lexer. */
#ifndef CKPT_PBTXT_VALUES_H
#define CKPT_PBTXT_VALUES_H

#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "text/pbtxt_lex.h"
#include "util/text.h"

/* A scalar field value, written to the message with memcpy of ckpt_pb_elem_size bytes. */
typedef union pbtxt_scalar {
  int32_t i32;
  int64_t i64;
  uint32_t u32;
  uint64_t u64;
  float f;
  double d;
  protobuf_c_boolean b;
  int e;
} pbtxt_scalar;

/* Converts the current token (not consumed) for a numeric, bool or enum field f. */
ckpt_status pbtxt_parse_scalar(const pbtxt_lexer *lx, const ProtobufCFieldDescriptor *f,
                               pbtxt_scalar *out);
/* Appends the unescaped bytes of the string literal token t to b. */
ckpt_status pbtxt_unescape(const pbtxt_lexer *lx, const pbtxt_token *t, ckpt_tf_buf *b);

#endif
