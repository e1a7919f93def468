/* protoscan.h — reads the names a .proto file declares (package, messages, nested messages)
 * and maps them to the C names protoc-c generates, so `proto pkg.Msg` fields can point at
 * protoc-c's types and descriptors without ckptgen depending on libprotobuf. */
#ifndef CKPTGEN_PROTOSCAN_H
#define CKPTGEN_PROTOSCAN_H

#include <stdbool.h>

#include "ast.h"
#include "diag.h"
#include "util.h"

/* Scans src (a whole .proto file) and fills pf->package and pf->msgs/list (arena-owned).
 * Reports unbalanced braces and unterminated comments or strings to d; returns false then. */
bool protoscan(proto_file *pf, src_file *src, arena *a, diag *d);

/* protoc-c's names for a message with the given full name ("pkg.Outer.Inner"):
 * the struct type ("Pkg__Outer__Inner") and the descriptor ("pkg__outer__inner__descriptor"). */
const char *protoc_c_type_name(arena *a, const char *full_name);
const char *protoc_c_descriptor_name(arena *a, const char *full_name);

#endif
