/* text/pbtxt_lex.c — tokenizer for protobuf text format (see pbtxt_lex.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "text/pbtxt_lex.h"

static int is_ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static int is_digit(char c) {
  return c >= '0' && c <= '9';
}
/* Characters that continue an identifier or a number token (Python's tokenizer classes). */
static int is_ident_char(char c) {
  return is_ident_start(c) || is_digit(c);
}
static int is_number_char(char c) {
  return is_ident_char(c) || c == '.' || c == '+' || c == '-';
}

ckpt_status pbtxt_error_at(const pbtxt_lexer *lx, const pbtxt_token *t, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return ckpt_error_set(lx->err, CKPT_ECORRUPT, "%s:%zu:%zu: %s", lx->source, t->line, t->col, msg);
}

const char *pbtxt_tok_describe(const pbtxt_token *t, char *buf, size_t size) {
  if (t->kind == PBTXT_TOK_END) {
    snprintf(buf, size, "end of input");
    return buf;
  }
  /* quote the token, escaping non-printable bytes, at most ~40 characters */
  size_t o = 0;
  if (size < 8) {
    buf[0] = '\0';
    return buf;
  }
  buf[o++] = '\'';
  for (size_t i = 0; i < t->len && o + 6 < size; i++) {
    unsigned char c = (unsigned char)t->start[i];
    if (i >= 40) {
      o += (size_t)snprintf(buf + o, size - o, "...");
      break;
    }
    if (c >= 32 && c < 127)
      buf[o++] = (char)c;
    else
      o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
  }
  if (o + 2 <= size)
    buf[o++] = '\'';
  buf[o < size ? o : size - 1] = '\0';
  return buf;
}

static void advance(pbtxt_lexer *lx, size_t k) {
  for (size_t i = 0; i < k && lx->pos < lx->n; i++) {
    if (lx->src[lx->pos] == '\n') {
      lx->line++;
      lx->col = 1;
    } else {
      lx->col++;
    }
    lx->pos++;
  }
}

static void skip_space_and_comments(pbtxt_lexer *lx) {
  while (lx->pos < lx->n) {
    char c = lx->src[lx->pos];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
      advance(lx, 1);
    } else if (c == '#') {
      while (lx->pos < lx->n && lx->src[lx->pos] != '\n')
        advance(lx, 1);
    } else {
      break;
    }
  }
}

ckpt_status pbtxt_lex_next(pbtxt_lexer *lx) {
  skip_space_and_comments(lx);
  pbtxt_token *t = &lx->tok;
  t->start = lx->src + lx->pos;
  t->line = lx->line;
  t->col = lx->col;
  t->len = 0;
  if (lx->pos >= lx->n) {
    t->kind = PBTXT_TOK_END;
    return CKPT_OK;
  }
  const char *s = lx->src + lx->pos;
  size_t left = lx->n - lx->pos;
  char c = s[0];
  size_t k = 1;
  if (is_ident_start(c)) {
    while (k < left && is_ident_char(s[k]))
      k++;
    t->kind = PBTXT_TOK_IDENT;
  } else if (is_digit(c) || c == '-' || c == '+' || (c == '.' && left > 1 && is_digit(s[1]))) {
    while (k < left && is_number_char(s[k]))
      k++;
    t->kind = PBTXT_TOK_NUMBER;
  } else if (c == '"' || c == '\'') {
    for (;;) {
      if (k >= left) {
        t->len = k;
        return pbtxt_error_at(lx, t, "unterminated string literal");
      }
      char d = s[k];
      if (d == '\n') {
        t->len = k;
        return pbtxt_error_at(lx, t, "unterminated string literal (strings cannot span lines)");
      }
      if (d == '\\') {
        if (k + 1 >= left || s[k + 1] == '\n') {
          t->len = k;
          return pbtxt_error_at(lx, t, "unterminated string literal (backslash at end)");
        }
        k += 2;
        continue;
      }
      k++;
      if (d == c)
        break;
    }
    t->kind = PBTXT_TOK_STRING;
  } else if (strchr("{}<>[]:,;", c) && c != '\0') {
    t->kind = PBTXT_TOK_PUNCT;
  } else {
    t->len = 1;
    if ((unsigned char)c >= 32 && (unsigned char)c < 127)
      return pbtxt_error_at(lx, t, "unexpected character '%c'", c);
    return pbtxt_error_at(lx, t, "unexpected byte 0x%02x (not protobuf text format)",
                          (unsigned char)c);
  }
  t->len = k;
  advance(lx, k);
  return CKPT_OK;
}

int pbtxt_lex_is(const pbtxt_lexer *lx, char c) {
  return lx->tok.kind == PBTXT_TOK_PUNCT && lx->tok.start[0] == c;
}

ckpt_status pbtxt_lex_init(pbtxt_lexer *lx, const char *src, size_t n, const char *source,
                           ckpt_error *err) {
  lx->src = src;
  lx->n = n;
  lx->pos = 0;
  lx->line = 1;
  lx->col = 1;
  lx->source = source;
  lx->err = err;
  return pbtxt_lex_next(lx);
}
