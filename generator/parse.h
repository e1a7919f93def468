/* parse.h — the front end's entry point and the state shared by the Flex scanner and the
 * Bison parser (both reentrant: all state lives in one parse_ctx per file). */
#ifndef CKPTGEN_PARSE_H
#define CKPTGEN_PARSE_H

#include <stdbool.h>

#include "ast.h"
#include "diag.h"
#include "util.h"

typedef struct parse_ctx {
  arena *a;
  diag *d;
  ast_file *file;
  /* scanner position of the next byte */
  int line, col;
  /* pending `///` comment, attached to the next token */
  buf doc;
  bool doc_pending;
  int doc_last_line;
  /* the last token, for "unexpected identifier 'foo'" */
  const char *tok_text;
  size_t tok_len;
  /* append points of file->imports / file->decls */
  ast_import **import_tail;
  ast_decl **decl_tail;
  bool seen_item; /* an import or declaration came before (package must be first) */
  int tokens_since_lex_error; /* tokens returned since the scanner reported an error */
  int comment_line, comment_col; /* where the open block comment started */
} parse_ctx;

/* Parses f->src into f (package, imports, decls, docs); every node in arena a. Syntax errors
 * go to d; returns false when there were any. */
bool parse_file(ast_file *f, arena *a, diag *d);

/* Converts a Bison location (first/last line/column) to a diagnostic position. */
#define PARSE_LOC_FROM(yl)                                                                  \
  ((src_loc){(yl).first_line, (yl).first_column,                                            \
             (yl).first_line == (yl).last_line && (yl).last_column >= (yl).first_column     \
                 ? (yl).last_column - (yl).first_column + 1                                 \
                 : 1})

#endif
