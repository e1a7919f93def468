/* emit.h — the C back end: what the header, source and depfile emitters share.
 *
 * Emitters write into a buf; main.c writes the bufs to disk atomically. Output depends only on
 * the schema (declaration order, no pointers, no timestamps), so two runs are byte-identical. */
#ifndef CKPTGEN_EMIT_H
#define CKPTGEN_EMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "ast.h"
#include "diag.h"
#include "util.h"

/* Names derived from where a schema's output goes. */
typedef struct emit_info {
  const char *rel;          /* "ckpt/builtin.ckpt": the output path below OUTDIR, minus .h/.c */
  const char *header_base;  /* "builtin.ckpt.h": how the .c includes its header */
  const char *guard;        /* "CKPTGEN_CKPT_BUILTIN_CKPT_H" */
  const char *hash_macro;   /* "CKPT_BUILTIN_SCHEMA_HASH" */
  uint64_t hash;            /* FNV-1a 64 of the schema text */
} emit_info;

void emit_header(buf *out, const emit_info *info, ast_file *f);
void emit_source(buf *out, const emit_info *info, ast_file *f);
/* A make rule: every target depends on every prerequisite; each prerequisite also gets an
 * empty rule so a deleted import does not break the next make. */
void emit_depfile(buf *out, const char *const *targets, size_t n_targets,
                  const char *const *prereqs, size_t n_prereqs);

/* ---- helpers (emit_util.c) ---- */

/* A C string literal for s[0..n): escapes quotes, backslashes, control and non-ASCII bytes
 * (octal) and "??" (trigraphs). */
void emit_c_string(buf *out, const char *s, size_t n);
/* A doc comment block ("/" "** ... *" "/") at the given indentation, made safe to embed
 * (no comment terminators or trigraphs). Nothing for a NULL doc. */
void emit_doc_comment(buf *out, const char *indent, const char *doc);
/* The C type of a value of type t as a struct member or list element ("ckpt_array *",
 * "int32_t", "demo_R", "const demo_R *"); arena-owned. */
const char *emit_c_type(arena *a, const ast_type *t, const char *map_entry);
/* "decl name" with the type glued correctly: "ckpt_array *x" vs "int32_t x". */
void emit_declarator(buf *out, const char *type, const char *name);
/* The C name of map field fl's entry struct in record d. */
const char *emit_entry_name(arena *a, const ast_decl *d, const ast_field *fl);

/* Writes data to path atomically (a temporary file in the same directory, then rename),
 * creating missing parent directories. Reports failures to d and returns false. */
bool write_file_atomic(const char *path, const char *data, size_t len, diag *d);

#endif
