/* text/pbtxt_fields.c — descriptor helpers shared by the text-format printer and parser. */
#include <string.h>

#include "text/pbtxt_internal.h"

size_t ckpt_pb_elem_size(ProtobufCType type) {
  switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
      return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
      return 8;
    case PROTOBUF_C_TYPE_FLOAT:
      return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
      return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
      return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
      return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
      return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
      return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
      return sizeof(ProtobufCMessage *);
  }
  return 0;
}

bool ckpt_pb_has_has_flag(const ProtobufCFieldDescriptor *f) {
  return f->label == PROTOBUF_C_LABEL_OPTIONAL && !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
         f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE;
}

/* protoc's MapEntryName: "my_map" -> "MyMapEntry". */
static bool entry_name_matches(const char *field, const char *short_name) {
  const char *s = short_name;
  bool cap_next = true;
  for (const char *c = field; *c; c++) {
    if (*c == '_') {
      cap_next = true;
      continue;
    }
    char want = *c;
    if (cap_next && want >= 'a' && want <= 'z')
      want = (char)(want - 'a' + 'A');
    cap_next = false;
    if (*s++ != want)
      return false;
  }
  return strcmp(s, "Entry") == 0;
}

bool ckpt_pb_is_map_field(const ProtobufCMessageDescriptor *parent,
                          const ProtobufCFieldDescriptor *f) {
  if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE)
    return false;
  const ProtobufCMessageDescriptor *e = f->descriptor;
  if (!e || e->n_fields != 2)
    return false;
  if (e->fields[0].id != 1 || strcmp(e->fields[0].name, "key") != 0)
    return false;
  if (e->fields[1].id != 2 || strcmp(e->fields[1].name, "value") != 0)
    return false;
  if (!entry_name_matches(f->name, e->short_name))
    return false;
  size_t pl = strlen(parent->name);
  return strncmp(e->name, parent->name, pl) == 0 && e->name[pl] == '.' &&
         strcmp(e->name + pl + 1, e->short_name) == 0;
}
