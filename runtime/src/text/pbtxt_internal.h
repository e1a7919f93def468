/* text/pbtxt_internal.h — what the text-format printer and parser share: raw access to
 * the members of a protoc-c message through its field descriptors, and the map-entry test.
 *
 * protobuf-c lays a message out as the generated struct: for field f, the member sits at
 * f->offset; f->quantifier_offset holds `size_t n_NAME` (repeated), `protobuf_c_boolean
 * has_NAME` (proto2 optional scalars and bytes) or the oneof's case enum (oneof members). */
#ifndef CKPT_PBTXT_INTERNAL_H
#define CKPT_PBTXT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#define CKPT_PB_MEMBER(msg, off) ((void *)((char *)(msg) + (off)))
#define CKPT_PB_CMEMBER(msg, off) ((const void *)((const char *)(msg) + (off)))

/* sizeof one element of a repeated field of this type (and of a singular member). */
size_t ckpt_pb_elem_size(ProtobufCType type);

/* True when f is a map field: protoc turns map<K, V> name = N into `repeated NameEntry name`
 * whose entry message (nested in parent) has exactly `key = 1` and `value = 2`. protobuf-c does
 * not keep the map_entry option, so the shape and protoc's entry naming rule decide. */
bool ckpt_pb_is_map_field(const ProtobufCMessageDescriptor *parent,
                          const ProtobufCFieldDescriptor *f);

/* True when f has a `has_NAME` member (proto2 optional, not string/message, not in a oneof). */
bool ckpt_pb_has_has_flag(const ProtobufCFieldDescriptor *f);

#endif
