/* parser.y — the grammar of .ckpt schema files (a pure, reentrant Bison parser).
 *
 * The parser only builds the syntax tree (ast.h); names, types and every semantic rule are
 * checked later by resolve.c, so this file stays a plain description of the syntax. Error
 * recovery resynchronises at ';' and '}' so one run reports several mistakes. */

%define api.pure full
%define parse.error custom
%define parse.lac full
%locations
%parse-param {void *scanner} {parse_ctx *ctx}
%lex-param {void *scanner}
%expect 0

%code requires {
#include "ast.h"
#include "parse.h"
typedef struct field_list { ast_field *head, *tail; } field_list;
}

%code {
#include <string.h>

int yylex(YYSTYPE *lvalp, YYLTYPE *llocp, void *scanner);
static void yyerror(YYLTYPE *loc, void *scanner, parse_ctx *ctx, const char *msg);

#define L(yl) PARSE_LOC_FROM(yl)

static ast_value *new_value(parse_ctx *ctx, value_tag tag, YYLTYPE loc) {
  ast_value *v = arena_alloc(ctx->a, sizeof *v);
  v->tag = tag;
  v->loc = L(loc);
  return v;
}

static void add_decl(parse_ctx *ctx, ast_decl *d) {
  d->file = ctx->file;
  d->doc = ast_doc_at(ctx->file, d->start);
  *ctx->decl_tail = d;
  ctx->decl_tail = &d->next;
  ctx->seen_item = true;
}

static ast_decl *new_decl(parse_ctx *ctx, decl_kind kind, ast_annot *annots, YYLTYPE kw,
                          const char *name, YYLTYPE name_loc) {
  ast_decl *d = arena_alloc(ctx->a, sizeof *d);
  d->kind = kind;
  d->annots = annots;
  d->name = name;
  d->loc = L(name_loc);
  d->start = annots != NULL ? annots->at : L(kw);
  return d;
}

static ast_field *new_field(parse_ctx *ctx, ast_annot *pre, bool optional, YYLTYPE opt_loc,
                            ast_type *type, const char *name, YYLTYPE name_loc,
                            ast_annot *post, ast_value *def) {
  ast_field *f = arena_alloc(ctx->a, sizeof *f);
  f->optional = optional;
  f->type = type;
  f->name = name;
  f->loc = L(name_loc);
  f->start = pre != NULL ? pre->at : optional ? L(opt_loc) : type->loc;
  f->doc = ast_doc_at(ctx->file, f->start);
  /* leading and trailing annotations form one list, leading first */
  ast_annot **tail = &pre;
  while (*tail != NULL) tail = &(*tail)->next;
  *tail = post;
  f->annots = pre;
  f->def = def;
  return f;
}

static ast_type *named_proto(parse_ctx *ctx, YYLTYPE kw, const char *msg, YYLTYPE msg_loc) {
  ast_type *t = ast_type_new(ctx->a, T_PROTO, L(kw));
  t->name = msg;
  if (msg != NULL) t->name_loc = L(msg_loc);
  return t;
}

static ast_type *array_type(parse_ctx *ctx, YYLTYPE kw, const char *dtype, YYLTYPE dt_loc,
                            bool has_dims, ast_dim *dims, YYLTYPE dims_loc) {
  ast_type *t = ast_type_new(ctx->a, T_ARRAY, L(kw));
  t->name = dtype;
  if (dtype != NULL) t->name_loc = L(dt_loc);
  t->has_dims = has_dims;
  t->dims = dims;
  t->dims_loc = L(dims_loc);
  for (ast_dim *d = dims; d != NULL; d = d->next) t->n_dims++;
  return t;
}

static ast_dim *new_dim(parse_ctx *ctx, dim_tag tag, YYLTYPE loc) {
  ast_dim *d = arena_alloc(ctx->a, sizeof *d);
  d->tag = tag;
  d->loc = L(loc);
  return d;
}
}

%union {
  struct { const char *s; size_t len; } str;
  uint64_t u;
  double f;
  ast_type *type;
  ast_field *field;
  struct field_list fields;
  ast_annot *annot;
  struct { ast_annot *head, *tail; } annots;
  ast_annot_arg *arg;
  struct { ast_annot_arg *head, *tail; } args;
  ast_value *value;
  ast_dim *dim;
  struct { ast_dim *head, *tail; } dims;
  bool flag;
  struct { const char *for_name; src_loc for_loc; const char *typestr; src_loc ts_loc; } htail;
}

%token <str> IDENT "identifier"
%token <str> STRING "string literal"
%token <u> INT "integer"
%token <f> FLOAT "number"
%token PACKAGE "'package'" IMPORT "'import'" PROTO "'proto'" RECORD "'record'"
%token ARGS "'args'" HANDLER "'handler'" FOR "'for'" TYPESTR "'typestr'"
%token OPTIONAL "'optional'" LIST "'list'" MAP "'map'" ARRAY "'array'"
%token TRUE "'true'" FALSE "'false'"

%type <str> qname
%type <type> ftype gtype
%type <field> field
%type <fields> fields body
%type <annot> annot
%type <annots> annots
%type <arg> annot_arg
%type <args> annot_args
%type <value> value opt_default
%type <dim> dim
%type <dims> dims
%type <flag> opt_optional
%type <htail> handler_tail

%%

file
  : items
  ;

items
  : %empty
  | items item
  ;

item
  : PACKAGE qname ';' {
      if (ctx->file->package != NULL) {
        diag_error(ctx->d, &ctx->file->src, L(@1), "duplicate package declaration (the package is already '%s')", ctx->file->package);
      } else {
        if (ctx->seen_item)
          diag_error(ctx->d, &ctx->file->src, L(@1), "the package declaration must come before imports and declarations");
        ctx->file->package = $2.s;
        ctx->file->package_loc = L(@2);
      }
    }
  | IMPORT STRING ';' {
      ast_import *im = arena_alloc(ctx->a, sizeof *im);
      im->path = $2.s;
      im->loc = L(@2);
      if (strlen($2.s) != $2.len) {
        diag_error(ctx->d, &ctx->file->src, L(@2), "import path contains a NUL byte");
      } else {
        *ctx->import_tail = im;
        ctx->import_tail = &im->next;
      }
      ctx->seen_item = true;
    }
  | IMPORT PROTO STRING ';' {
      ast_import *im = arena_alloc(ctx->a, sizeof *im);
      im->is_proto = true;
      im->path = $3.s;
      im->loc = L(@3);
      if (strlen($3.s) != $3.len) {
        diag_error(ctx->d, &ctx->file->src, L(@3), "import path contains a NUL byte");
      } else {
        *ctx->import_tail = im;
        ctx->import_tail = &im->next;
      }
      ctx->seen_item = true;
    }
  | annots RECORD IDENT body opt_semi {
      ast_decl *d = new_decl(ctx, D_RECORD, $1.head, @2, $3.s, @3);
      d->fields = $4.head;
      add_decl(ctx, d);
    }
  | annots ARGS IDENT body opt_semi {
      ast_decl *d = new_decl(ctx, D_ARGS, $1.head, @2, $3.s, @3);
      d->fields = $4.head;
      add_decl(ctx, d);
    }
  | annots HANDLER IDENT handler_tail ';' {
      ast_decl *d = new_decl(ctx, D_HANDLER, $1.head, @2, $3.s, @3);
      d->for_name = $4.for_name;
      d->for_loc = $4.for_loc;
      d->typestr = $4.typestr;
      d->typestr_loc = $4.ts_loc;
      add_decl(ctx, d);
    }
  | error ';' { yyerrok; }
  | error '}' { yyerrok; }
  ;

/* `fields error '}'` lets a broken last field (a missing ';') end at the record's brace
 * instead of swallowing the declarations that follow. */
body
  : '{' fields '}' { $$ = $2; }
  | '{' fields error '}' { $$ = $2; yyerrok; }
  ;

opt_semi
  : %empty
  | ';'
  ;

handler_tail
  : %empty { $$.for_name = NULL; $$.typestr = NULL; }
  | FOR qname { $$.for_name = $2.s; $$.for_loc = L(@2); $$.typestr = NULL; }
  | TYPESTR STRING { $$.for_name = NULL; $$.typestr = $2.s; $$.ts_loc = L(@2); }
  | FOR qname TYPESTR STRING {
      $$.for_name = $2.s; $$.for_loc = L(@2); $$.typestr = $4.s; $$.ts_loc = L(@4);
    }
  | TYPESTR STRING FOR qname {
      $$.for_name = $4.s; $$.for_loc = L(@4); $$.typestr = $2.s; $$.ts_loc = L(@2);
    }
  ;

qname
  : IDENT { $$ = $1; }
  | qname '.' IDENT {
      char *s = arena_alloc(ctx->a, $1.len + 1 + $3.len + 1);
      memcpy(s, $1.s, $1.len);
      s[$1.len] = '.';
      memcpy(s + $1.len + 1, $3.s, $3.len);
      $$.s = s;
      $$.len = $1.len + 1 + $3.len;
    }
  ;

annots
  : %empty { $$.head = $$.tail = NULL; }
  | annots annot {
      $$ = $1;
      if ($$.tail != NULL) $$.tail->next = $2; else $$.head = $2;
      $$.tail = $2;
    }
  ;

annot
  : '@' IDENT {
      $$ = arena_alloc(ctx->a, sizeof *$$);
      $$->name = $2.s; $$->loc = L(@2); $$->at = L(@1);
    }
  | '@' IDENT '(' ')' {
      $$ = arena_alloc(ctx->a, sizeof *$$);
      $$->name = $2.s; $$->loc = L(@2); $$->at = L(@1);
    }
  | '@' IDENT '(' annot_args ')' {
      $$ = arena_alloc(ctx->a, sizeof *$$);
      $$->name = $2.s; $$->loc = L(@2); $$->at = L(@1);
      $$->args = $4.head;
    }
  ;

annot_args
  : annot_arg { $$.head = $$.tail = $1; }
  | annot_args ',' annot_arg { $$ = $1; $$.tail->next = $3; $$.tail = $3; }
  ;

annot_arg
  : value {
      $$ = arena_alloc(ctx->a, sizeof *$$);
      $$->value = *$1;
    }
  | IDENT '=' value {
      $$ = arena_alloc(ctx->a, sizeof *$$);
      $$->key = $1.s;
      $$->key_loc = L(@1);
      $$->value = *$3;
    }
  ;

value
  : INT { $$ = new_value(ctx, V_INT, @1); $$->u = $1; }
  | INT IDENT {
      $$ = new_value(ctx, V_INT, @1); $$->u = $1;
      $$->suffix = $2.s; $$->suffix_loc = L(@2);
    }
  | '-' INT { $$ = new_value(ctx, V_INT, @2); $$->u = $2; $$->neg = true; $$->loc = L(@$); }
  | FLOAT { $$ = new_value(ctx, V_FLOAT, @1); $$->f = $1; }
  | '-' FLOAT { $$ = new_value(ctx, V_FLOAT, @2); $$->f = -$2; $$->loc = L(@$); }
  | STRING { $$ = new_value(ctx, V_STRING, @1); $$->s = $1.s; $$->slen = $1.len; }
  | TRUE { $$ = new_value(ctx, V_BOOL, @1); $$->b = true; }
  | FALSE { $$ = new_value(ctx, V_BOOL, @1); $$->b = false; }
  | qname { $$ = new_value(ctx, V_NAME, @1); $$->s = $1.s; $$->slen = $1.len; }
  ;

fields
  : %empty { $$.head = $$.tail = NULL; }
  | fields field {
      $$ = $1;
      if ($2 != NULL) {
        if ($$.tail != NULL) $$.tail->next = $2; else $$.head = $2;
        $$.tail = $2;
      }
    }
  ;

field
  : annots opt_optional ftype IDENT annots opt_default ';' {
      $$ = new_field(ctx, $1.head, $2, @2, $3, $4.s, @4, $5.head, $6);
    }
  | annots opt_optional PROTO IDENT annots opt_default ';' {
      $$ = new_field(ctx, $1.head, $2, @2, named_proto(ctx, @3, NULL, @3), $4.s, @4, $5.head, $6);
    }
  | annots opt_optional PROTO qname IDENT annots opt_default ';' {
      $$ = new_field(ctx, $1.head, $2, @2, named_proto(ctx, @3, $4.s, @4), $5.s, @5, $6.head, $7);
    }
  | error ';' { $$ = NULL; yyerrok; }
  ;

opt_optional
  : %empty { $$ = false; }
  | OPTIONAL { $$ = true; }
  ;

opt_default
  : %empty { $$ = NULL; }
  | '=' value { $$ = $2; }
  ;

ftype
  : qname {
      $$ = ast_type_new(ctx->a, T_NAMED, L(@1));
      $$->name = $1.s;
      $$->name_loc = L(@1);
    }
  | ARGS { $$ = ast_type_new(ctx->a, T_ARGS, L(@1)); }
  | ARRAY { $$ = array_type(ctx, @1, NULL, @1, false, NULL, @1); }
  | ARRAY '[' dims ']' { $$ = array_type(ctx, @1, NULL, @1, true, $3.head, @3); }
  | ARRAY '[' ']' { $$ = array_type(ctx, @1, NULL, @1, true, NULL, @2); }
  | ARRAY '<' IDENT '>' { $$ = array_type(ctx, @1, $3.s, @3, false, NULL, @1); }
  | ARRAY '<' IDENT '>' '[' dims ']' { $$ = array_type(ctx, @1, $3.s, @3, true, $6.head, @6); }
  | ARRAY '<' IDENT '>' '[' ']' { $$ = array_type(ctx, @1, $3.s, @3, true, NULL, @5); }
  | LIST '<' gtype '>' {
      $$ = ast_type_new(ctx->a, T_LIST, L(@1));
      $$->elem = $3;
    }
  | MAP '<' gtype '>' {
      $$ = ast_type_new(ctx->a, T_MAP, L(@1));
      $$->elem = $3;
    }
  ;

gtype
  : ftype { $$ = $1; }
  | PROTO { $$ = named_proto(ctx, @1, NULL, @1); }
  | PROTO qname { $$ = named_proto(ctx, @1, $2.s, @2); }
  ;

dims
  : dim { $$.head = $$.tail = $1; }
  | dims ',' dim { $$ = $1; $$.tail->next = $3; $$.tail = $3; }
  ;

dim
  : INT {
      $$ = new_dim(ctx, DIM_FIXED, @1);
      if ($1 > (uint64_t)INT64_MAX) { $$->tag = DIM_BAD; $$->name = "too large"; }
      else $$->size = (int64_t)$1;
    }
  | '?' { $$ = new_dim(ctx, DIM_ANY, @1); }
  | IDENT { $$ = new_dim(ctx, DIM_NAMED, @1); $$->name = $1.s; }
  | '-' INT { $$ = new_dim(ctx, DIM_BAD, @$); $$->name = "negative"; }
  | FLOAT { $$ = new_dim(ctx, DIM_BAD, @1); $$->name = "not an integer"; }
  | STRING { $$ = new_dim(ctx, DIM_BAD, @1); $$->name = "a string"; }
  ;

%%

static void yyerror(YYLTYPE *loc, void *scanner, parse_ctx *ctx, const char *msg) {
  (void)scanner;
  diag_error(ctx->d, &ctx->file->src, L(*loc), "%s", msg);
}

/* Bison quotes aliases ("\"'record'\""); show them as the user would write them. */
static void put_symbol(buf *b, yysymbol_kind_t sym) {
  const char *name = yysymbol_name(sym);
  size_t n = strlen(name);
  if (n >= 2 && name[0] == '"' && name[n - 1] == '"') {
    buf_putn(b, name + 1, n - 2);
  } else {
    buf_puts(b, name);
  }
}

static int yyreport_syntax_error(const yypcontext_t *yyctx, void *scanner, parse_ctx *ctx) {
  (void)scanner;
  /* A token the scanner already complained about (an unterminated string swallowing the
   * rest of the line) would otherwise cause a second, confusing report. */
  if (ctx->tokens_since_lex_error <= 1) return 0;
  buf b;
  buf_init(&b);
  yysymbol_kind_t la = yypcontext_token(yyctx);
  buf_puts(&b, "syntax error");
  if (la != YYSYMBOL_YYEMPTY) {
    buf_puts(&b, ": unexpected ");
    put_symbol(&b, la);
    if ((la == YYSYMBOL_IDENT || la == YYSYMBOL_INT || la == YYSYMBOL_FLOAT) &&
        ctx->tok_text != NULL) {
      char q[96];
      buf_printf(&b, " '%s'", diag_quote(q, sizeof q, ctx->tok_text, ctx->tok_len > 60 ? 60 : ctx->tok_len));
    }
  }
  enum { MAX_EXPECTED = 5 };
  yysymbol_kind_t expected[MAX_EXPECTED];
  int n = yypcontext_expected_tokens(yyctx, expected, MAX_EXPECTED);
  if (n > 0 && n < MAX_EXPECTED) {
    buf_puts(&b, la != YYSYMBOL_YYEMPTY ? ", expected " : ": expected ");
    for (int i = 0; i < n; i++) {
      if (i > 0) buf_puts(&b, i == n - 1 ? " or " : ", ");
      put_symbol(&b, expected[i]);
    }
  }
  diag_error(ctx->d, &ctx->file->src, L(*yypcontext_location(yyctx)), "%s", b.data);
  buf_free(&b);
  return 0;
}
