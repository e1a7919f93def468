/* ast.h — the syntax tree of a .ckpt file, plus the facts the resolver attaches to it.
 *
 * Every node lives in the one arena of the run (util.h), so error recovery can drop partial
 * nodes without bookkeeping and the whole tree is freed at once. Lists are singly linked in
 * source order (declaration order is part of the output contract). */
#ifndef CKPTGEN_AST_H
#define CKPTGEN_AST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt/desc.h"
#include "ckpt/dtype.h"
#include "diag.h"
#include "util.h"

typedef struct ast_decl ast_decl;
typedef struct ast_file ast_file;
typedef struct proto_msg proto_msg;
typedef struct proto_file proto_file;

/* ---- literals and annotation arguments ---- */
typedef enum value_tag {
  V_INT,    /* u (magnitude), neg; suffix for "64 MiB" */
  V_FLOAT,  /* f */
  V_STRING, /* s, slen (may hold NUL bytes) */
  V_BOOL,   /* b */
  V_NAME    /* s: an identifier or dotted name */
} value_tag;

typedef struct ast_value {
  value_tag tag;
  src_loc loc;
  bool neg;
  bool b;
  uint64_t u;
  double f;
  const char *s;
  size_t slen;
  const char *suffix; /* V_INT: the unit after the number (KiB, MiB, GiB), or NULL */
  src_loc suffix_loc;
} ast_value;

typedef struct ast_annot_arg {
  struct ast_annot_arg *next;
  const char *key; /* `key = value`, or NULL for a positional argument */
  src_loc key_loc;
  ast_value value;
} ast_annot_arg;

typedef struct ast_annot {
  struct ast_annot *next;
  const char *name; /* without '@' */
  src_loc loc;      /* of the name */
  src_loc at;       /* of the '@' (doc comments attach here) */
  ast_annot_arg *args;
} ast_annot;

/* ---- types ---- */
typedef enum type_tag {
  T_NAMED, /* a scalar keyword (int32, string, tree, ...) or a record name */
  T_ARRAY,
  T_LIST,
  T_MAP,
  T_PROTO, /* name = message name or NULL for any message */
  T_ARGS
} type_tag;

typedef enum dim_tag { DIM_FIXED, DIM_ANY, DIM_NAMED, DIM_BAD } dim_tag;

typedef struct ast_dim {
  struct ast_dim *next;
  dim_tag tag;
  int64_t size;
  const char *name;
  src_loc loc;
} ast_dim;

typedef struct ast_type {
  type_tag tag;
  src_loc loc;
  const char *name; /* T_NAMED; T_PROTO message; T_ARRAY dtype (NULL: any dtype) */
  src_loc name_loc;
  struct ast_type *elem; /* T_LIST, T_MAP */
  bool has_dims;         /* T_ARRAY: `[...]` given (else any rank) */
  ast_dim *dims;
  uint32_t n_dims;
  src_loc dims_loc;
  /* resolved */
  ckpt_kind kind;
  ckpt_dtype dtype;        /* ARRAY; CKPT_DTYPE_COUNT_ = any dtype */
  ast_decl *record;        /* RECORD, RECORD_REF */
  const proto_msg *proto;  /* PROTO with a message name */
} ast_type;

/* ---- fields, declarations, files ---- */
typedef struct ast_field {
  struct ast_field *next;
  const char *name;
  src_loc loc;      /* of the name */
  src_loc start;    /* first token of the field (doc comments attach here) */
  bool optional;
  ast_type *type;
  ast_value *def;   /* `= value`, or NULL */
  ast_annot *annots;
  const char *doc;
  /* resolved */
  ckpt_leaf_options leaf;
  bool has_presence; /* a `bool has_NAME` member precedes the value */
} ast_field;

typedef enum decl_kind { D_RECORD, D_ARGS, D_HANDLER } decl_kind;

enum { HOOK_INIT = 1, HOOK_CLOSE = 2, HOOK_METADATA = 4, HOOK_FINALIZE = 8 };

/* One @register_with_handler on an args type. */
typedef struct ast_reg {
  struct ast_reg *next;
  ast_decl *handler;
  bool for_save, for_restore;
} ast_reg;

struct ast_decl {
  struct ast_decl *next;
  decl_kind kind;
  const char *name;
  src_loc loc;    /* of the name */
  src_loc start;  /* first token (doc comments attach here) */
  const char *doc;
  ast_annot *annots;
  ast_field *fields; /* D_RECORD, D_ARGS */
  uint32_t n_fields;
  /* D_HANDLER */
  const char *for_name; /* `for Record` */
  src_loc for_loc;
  const char *typestr;
  src_loc typestr_loc;
  /* resolved */
  ast_file *file;
  const char *full_name; /* "demo.TrainState" */
  const char *c_name;    /* "demo_TrainState" */
  ast_reg *regs;         /* D_ARGS: registrations in source order */
  ast_decl *for_record;  /* D_HANDLER with `for` */
  ast_decl *gen_save, *gen_restore; /* D_HANDLER with `for`: the generated args */
  ast_decl *gen_for;     /* generated args: the handler they came from */
  unsigned hooks;        /* HOOK_* */
  const char *typestr_final;
  int visit;             /* scratch for graph walks */
  bool duplicate;        /* a second declaration of a name (already reported) */
};

typedef struct ast_import {
  struct ast_import *next;
  bool is_proto;
  const char *path; /* as written */
  src_loc loc;      /* of the string */
  /* resolved */
  ast_file *file;
  proto_file *proto;
} ast_import;

struct ast_file {
  src_file src;
  const char *path;      /* path used to open it */
  const char *real;      /* canonical path (identity for import cycles) */
  const char *package;   /* "demo" or "a.b", NULL when missing */
  src_loc package_loc;
  const char *c_prefix;  /* "demo" / "a_b" */
  ast_import *imports;
  ast_decl *decls;       /* in source order, then generated args */
  int state;             /* 0 new, 1 loading, 2 done */
  bool ok;               /* parsed and resolved without errors */
  /* doc comments, sorted by position of the token that follows them */
  struct doc_entry *docs;
  size_t n_docs, cap_docs;
};

typedef struct doc_entry {
  int line, col;
  const char *text;
} doc_entry;

/* ---- imported .proto files ---- */
struct proto_msg {
  const char *full_name;  /* "demo.RunInfo", "demo.Outer.Inner" */
  const char *c_type;     /* "Demo__RunInfo" */
  const char *c_desc;     /* "demo__run_info__descriptor" */
};

struct proto_file {
  const char *path;
  const char *real;
  const char *package; /* may be "" */
  strmap msgs;         /* full_name → proto_msg */
  strmap enums;        /* full_name → full_name (to say "an enum, not a message") */
  proto_msg **list;    /* in file order */
  size_t n_msgs;
};

/* ---- constructors used by the parser ---- */
ast_type *ast_type_new(arena *a, type_tag tag, src_loc loc);

/* The doc comment attached to the token at (line, col), or NULL. */
const char *ast_doc_at(const ast_file *f, src_loc at);

#endif
