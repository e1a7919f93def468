/* text/pbtxt_lex.h — the tokenizer of the protobuf text-format parser.
 *
 * Tokens follow Python's text_format tokenizer: identifiers, "numbers" (anything starting with
 * a digit, a sign or ".digit", up to the next separator, so "-inf" and "1.5f" are one token),
 * quoted strings ('...' or "...", one line each), and single punctuation characters.
 * Whitespace and `#` comments are skipped. Positions are 1-based lines and byte columns. */
#ifndef CKPT_PBTXT_LEX_H
#define CKPT_PBTXT_LEX_H

#include <stddef.h>

#include "ckpt/error.h"

typedef enum pbtxt_tok_kind {
  PBTXT_TOK_END,
  PBTXT_TOK_IDENT,
  PBTXT_TOK_NUMBER,
  PBTXT_TOK_STRING, /* start/len include the quotes */
  PBTXT_TOK_PUNCT   /* one of { } < > [ ] : , ; */
} pbtxt_tok_kind;

typedef struct pbtxt_token {
  pbtxt_tok_kind kind;
  const char *start;
  size_t len;
  size_t line, col;
} pbtxt_token;

typedef struct pbtxt_lexer {
  const char *src;
  size_t n, pos;
  size_t line, col;
  const char *source; /* name used in error messages */
  ckpt_error *err;
  pbtxt_token tok; /* the current (look-ahead) token */
} pbtxt_lexer;

/* Positions the lexer on the first token. */
ckpt_status pbtxt_lex_init(pbtxt_lexer *lx, const char *src, size_t n, const char *source,
                           ckpt_error *err);
/* Replaces lx->tok with the next token; CKPT_ECORRUPT with "source:line:col: ..." for a byte
 * that starts no token or an unterminated string. */
ckpt_status pbtxt_lex_next(pbtxt_lexer *lx);
/* True when the current token is the punctuation character c. */
int pbtxt_lex_is(const pbtxt_lexer *lx, char c);

/* Records "source:line:col: message" (CKPT_ECORRUPT) at token t. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
ckpt_status
pbtxt_error_at(const pbtxt_lexer *lx, const pbtxt_token *t, const char *fmt, ...);
/* Writes a short printable description of t ("'foo'", "end of input") into buf. */
const char *pbtxt_tok_describe(const pbtxt_token *t, char *buf, size_t size);

#endif
