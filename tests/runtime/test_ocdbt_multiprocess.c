/* test_ocdbt_multiprocess.c — the key tables a multi-process OCDBT save gathers onto the primary
 * (handlers/pytree_multiprocess_ocdbt.h, docs/format.md "OCDBT: several processes"): a table
 * encoded by one process parses back to the same keys, values, value files and database files
 * and merges into a root database; every damaged table (each truncation, trailing bytes, counts
 * past what was sent, a value file index out of range, an inline value over the limit, a file
 * name of another form or of another process's database, a process's failure) is refused
 * naming the process, without reading past what was sent. The whole save across processes is
 * tested under mpirun (tests/mpi). */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "handlers/pytree_multiprocess_ocdbt.h"

#define HEX32 "0123456789abcdef0123456789abcdef"

static char *dup(const char *s) {
  char *d = strdup(s);
  cr_assert_not_null(d);
  return d;
}

/* A plan of process 1 whose database holds an inline .zarray, a chunk in a value file, and
 * the database's node file and manifest. */
static ckpt_write_plan *process_plan(void) {
  ckpt_write_plan *j = calloc(1, sizeof *j);
  cr_assert_not_null(j);
  j->dir = dup("/ckpt/item");
  j->multiprocess = true;
  j->process = 1;
  ckpt_ocdbt_process_db *db = calloc(1, sizeof *db);
  cr_assert_not_null(db);
  db->n = 2;
  db->kvs = calloc(2, sizeof *db->kvs);
  db->keys = calloc(2, sizeof *db->keys);
  db->n_files = 1;
  db->files = calloc(1, sizeof *db->files);
  cr_assert(db->kvs && db->keys && db->files);
  memcpy(db->files[0], "d/" HEX32, sizeof db->files[0]);
  static const char zarray[] = "{\"zarr_format\":2}";
  db->keys[0] = dup("w/.zarray");
  db->keys[1] = dup("w/0.0");
  db->kvs[0] = (ckpt_ocdbt_kv){.key = db->keys[0], .key_len = 9, .length = sizeof zarray - 1,
                               .value = zarray};
  db->kvs[1] = (ckpt_ocdbt_kv){
      .key = db->keys[1], .key_len = 5, .length = 4096, .indirect = true, .file = 0, .offset = 0};
  j->ocdbt_db = db;
  j->ocdbt_files = calloc(2, sizeof *j->ocdbt_files);
  cr_assert_not_null(j->ocdbt_files);
  j->ocdbt_files[0] = (ckpt_write_file_sum){dup("ocdbt.process_1/d/" HEX32), 7, 300};
  j->ocdbt_files[1] = (ckpt_write_file_sum){dup("ocdbt.process_1/manifest.ocdbt"), 9, 120};
  j->n_ocdbt_files = 2;
  return j;
}

/* The primary (process 0, an empty table of its own). */
static ckpt_write_plan *primary_plan(void) {
  ckpt_write_plan *j = calloc(1, sizeof *j);
  cr_assert_not_null(j);
  j->dir = dup("/ckpt/item");
  j->multiprocess = true;
  j->primary = true;
  return j;
}

/* The gather of process 0's (empty) table and `mine` (n bytes) as process 1's, parsed by a
 * fresh primary plan; its status, err and (on success) tables. */
static ckpt_status parse_two(const unsigned char *mine, size_t n, ckpt_pt_ocdbt_tables *t,
                             ckpt_write_plan **primary, ckpt_error *err) {
  *primary = primary_plan();
  ckpt_ocdbt_buf b0 = {0};
  ckpt_pt_ocdbt_encode_table(*primary, &b0);
  cr_assert(!b0.failed);
  unsigned char *all = malloc(b0.n + n + 1);
  cr_assert_not_null(all);
  memcpy(all, b0.p, b0.n);
  if (n > 0)
    memcpy(all + b0.n, mine, n);
  size_t sizes[2] = {b0.n, n};
  ckpt_status st = ckpt_pt_ocdbt_parse_tables(*primary, 0, all, sizes, 2, t, err);
  ckpt_ocdbt_buf_free(&b0);
  /* the tables borrow from all: kept by the caller's checks only through copies below */
  if (st == CKPT_OK) {
    cr_assert_eq(t->tables[1].n, 2);
    cr_assert_eq(memcmp(t->tables[1].kvs[0].key, "w/.zarray", 9), 0);
    cr_assert_eq(memcmp(t->tables[1].kvs[0].value, "{\"zarr_format\":2}", 17), 0);
    cr_assert(t->tables[1].kvs[1].indirect);
    cr_assert_eq(t->tables[1].kvs[1].length, 4096);
    cr_assert_str_eq(t->tables[1].files[0], "d/" HEX32);
    cr_assert_eq(t->tables[0].n, 0);
    /* a root over both (what the primary writes) encodes */
    ckpt_ocdbt_config c;
    cr_assert_eq(ckpt_ocdbt_config_init(&c, err), CKPT_OK);
    ckpt_ocdbt_buf nodes = {0}, man = {0};
    cr_assert_eq(ckpt_ocdbt_merge_encode(t->tables, 2, &c, "d/" HEX32, 0, 1, &nodes, &man, err),
                 CKPT_OK, "%s", err->message);
    cr_assert(nodes.n > 0 && man.n > 0);
    ckpt_ocdbt_buf_free(&nodes);
    ckpt_ocdbt_buf_free(&man);
    ckpt_pt_ocdbt_tables_free(t);
  }
  free(all);
  return st;
}

static void encode(const ckpt_write_plan *j, ckpt_ocdbt_buf *b) {
  *b = (ckpt_ocdbt_buf){0};
  ckpt_pt_ocdbt_encode_table(j, b);
  cr_assert(!b->failed);
}

/* Expects process 1's table (n bytes) refused, naming process 1 (and `what`, if given). */
static void refused(const unsigned char *p, size_t n, const char *what) {
  ckpt_pt_ocdbt_tables t;
  ckpt_write_plan *primary;
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_status st = parse_two(p, n, &t, &primary, &err);
  cr_assert_neq(st, CKPT_OK, "a damaged table (%zu bytes) was accepted", n);
  cr_assert(strstr(err.message, "process 1") != NULL, "%s", err.message);
  if (what != NULL)
    cr_assert(strstr(err.message, what) != NULL, "%s", err.message);
  cr_assert_null(t.tables);
  ckpt_write_plan_free(primary);
}

Test(ocdbt_multiprocess, a_table_parses_back_and_merges) {
  ckpt_write_plan *j = process_plan();
  ckpt_ocdbt_buf b;
  encode(j, &b);
  ckpt_pt_ocdbt_tables t;
  ckpt_write_plan *primary;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(parse_two(b.p, b.n, &t, &primary, &err), CKPT_OK, "%s", err.message);
  /* process 1's database files are listed for the primary's _CHECKSUMS, with their sums */
  cr_assert_eq(primary->n_ocdbt_files, 2);
  cr_assert_str_eq(primary->ocdbt_files[0].rel, "ocdbt.process_1/d/" HEX32);
  cr_assert_eq(primary->ocdbt_files[0].crc, 7);
  cr_assert_eq(primary->ocdbt_files[1].bytes, 120);
  ckpt_write_plan_free(primary);
  ckpt_ocdbt_buf_free(&b);
  ckpt_write_plan_free(j);
}

Test(ocdbt_multiprocess, every_truncation_and_trailing_bytes_are_refused) {
  ckpt_write_plan *j = process_plan();
  ckpt_ocdbt_buf b;
  encode(j, &b);
  for (size_t n = 0; n < b.n; n++) {
    unsigned char *copy = malloc(n + 1); /* exactly n bytes readable: ASan sees any overread */
    memcpy(copy, b.p, n);
    refused(copy, n, NULL);
    free(copy);
  }
  unsigned char *longer = malloc(b.n + 1);
  memcpy(longer, b.p, b.n);
  longer[b.n] = 0;
  refused(longer, b.n + 1, "trailing");
  free(longer);
  /* counts far past what was sent (no allocation of that size is attempted) */
  unsigned char *huge = malloc(b.n);
  memcpy(huge, b.p, b.n);
  uint64_t big = (uint64_t)1 << 60;
  memcpy(huge + 24, &big, sizeof big); /* n_keys */
  refused(huge, b.n, "counts");
  free(huge);
  ckpt_ocdbt_buf_free(&b);
  ckpt_write_plan_free(j);
}

Test(ocdbt_multiprocess, bad_places_names_and_failures_are_refused) {
  ckpt_write_plan *j = process_plan();
  ckpt_ocdbt_buf b;
  /* an indirect value in a file the table does not have */
  j->ocdbt_db->kvs[1].file = 3;
  encode(j, &b);
  refused(b.p, b.n, "value place");
  ckpt_ocdbt_buf_free(&b);
  j->ocdbt_db->kvs[1].file = 0;
  /* an inline value over OCDBT's inline limit */
  static unsigned char large[2000];
  j->ocdbt_db->kvs[1] = (ckpt_ocdbt_kv){.key = j->ocdbt_db->keys[1], .key_len = 5,
                                        .length = sizeof large, .value = large};
  encode(j, &b);
  refused(b.p, b.n, "inline value");
  ckpt_ocdbt_buf_free(&b);
  j->ocdbt_db->kvs[1] = (ckpt_ocdbt_kv){
      .key = j->ocdbt_db->keys[1], .key_len = 5, .length = 4096, .indirect = true};
  /* a value file name of another form (a path out of the database) */
  memcpy(j->ocdbt_db->files[0], "../../../../etc/passwd0123456789ab", sizeof j->ocdbt_db->files[0]);
  encode(j, &b);
  refused(b.p, b.n, "value file name");
  ckpt_ocdbt_buf_free(&b);
  memcpy(j->ocdbt_db->files[0], "d/" HEX32, sizeof j->ocdbt_db->files[0]);
  /* a database file of another process's database, then one outside any */
  const char *bad[] = {"ocdbt.process_0/manifest.ocdbt", "ocdbt.process_1/../_METADATA",
                       "ocdbt.process_1/d/short"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char *keep = j->ocdbt_files[1].rel;
    j->ocdbt_files[1].rel = (char *)bad[i];
    encode(j, &b);
    j->ocdbt_files[1].rel = keep;
    refused(b.p, b.n, "database file");
    ckpt_ocdbt_buf_free(&b);
  }
  /* the process's own failure to describe its table */
  encode(j, &b);
  int64_t status = CKPT_ENOMEM;
  memcpy(b.p, &status, sizeof status);
  refused(b.p, b.n, "could not send");
  ckpt_ocdbt_buf_free(&b);
  ckpt_write_plan_free(j);
}
