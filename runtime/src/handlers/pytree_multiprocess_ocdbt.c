/* handlers/pytree_multiprocess_ocdbt.c — the OCDBT merge of a multi-process PyTree save
 * (pytree_multiprocess.h, docs/multiprocess.md "OCDBT", docs/format.md "OCDBT: several
 * processes").
 *
 * Each process wrote its chunks (the primary also every .zarray / zarr.json) into its own
 * database ocdbt.process_<i>/ and kept its key table (plan->ocdbt_db). Once the save agreed
 * that every process's data is durable, each sends the primary that table — every key with its
 * value's place (value file, offset, length) or its inline bytes, its value files' names and
 * the CRCs of its database's node file and manifest — and the primary merges the tables into
 * the root database (storage's ckpt_ocdbt_write_root, over ckpt_ocdbt_merge_encode).
 *
 * Wire format (one gather; host byte order, as every process of a job runs the same build):
 *   header   i64 status (CKPT_OK, or the process's failure to describe its table),
 *            u64 n_files, u64 n_sums, u64 n_keys
 *   files    n_files × (u32 length, bytes)                          "d/<32 hex>"
 *   sums     n_sums × (u32 length, bytes, u32 crc, u64 size)        "ocdbt.process_<i>/..."
 *   keys     n_keys × (u32 key length, key bytes, u8 indirect, u64 file, u64 offset,
 *                      u64 length, inline: length value bytes)
 * Everything received is checked before use: lengths against what is left, file indices against
 * n_files, names against the layout's forms, inline values against OCDBT's inline limit. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/op.h"
#include "handlers/pytree_multiprocess.h"
#include "handlers/pytree_multiprocess_ocdbt.h"

/* The longest key accepted from another process: far beyond "<param>/<chunk key>". */
#define MAX_KEY_BYTES ((uint64_t)1 << 16)

/* ---------------------------------------------------------------- sending */

static void put_u32(ckpt_ocdbt_buf *b, uint32_t v) {
  ckpt_ocdbt_put(b, &v, sizeof v);
}

static void put_u64(ckpt_ocdbt_buf *b, uint64_t v) {
  ckpt_ocdbt_put(b, &v, sizeof v);
}

static void put_str(ckpt_ocdbt_buf *b, const char *s, size_t n) {
  put_u32(b, (uint32_t)n);
  ckpt_ocdbt_put(b, s, n);
}

/* This process's table (an empty one when it stored no key). */
void ckpt_pt_ocdbt_encode_table(const ckpt_write_plan *j, ckpt_ocdbt_buf *b) {
  const ckpt_ocdbt_process_db *db = j->ocdbt_db;
  size_t n_files = db ? db->n_files : 0, n = db ? db->n : 0;
  put_u64(b, (uint64_t)(int64_t)CKPT_OK);
  put_u64(b, n_files);
  put_u64(b, j->n_ocdbt_files);
  put_u64(b, n);
  for (size_t i = 0; i < n_files; i++)
    put_str(b, db->files[i], strlen(db->files[i]));
  for (size_t i = 0; i < j->n_ocdbt_files; i++) {
    put_str(b, j->ocdbt_files[i].rel, strlen(j->ocdbt_files[i].rel));
    put_u32(b, j->ocdbt_files[i].crc);
    put_u64(b, j->ocdbt_files[i].bytes);
  }
  for (size_t i = 0; i < n; i++) {
    const ckpt_ocdbt_kv *kv = &db->kvs[i];
    put_str(b, kv->key, kv->key_len);
    unsigned char ind = kv->indirect ? 1 : 0;
    ckpt_ocdbt_put(b, &ind, 1);
    put_u64(b, kv->indirect ? (uint64_t)kv->file : 0);
    put_u64(b, kv->indirect ? kv->offset : 0);
    put_u64(b, kv->length);
    if (!kv->indirect)
      ckpt_ocdbt_put(b, kv->value, (size_t)kv->length);
  }
}

/* ---------------------------------------------------------------- receiving */

typedef struct reader {
  const unsigned char *p;
  size_t n, at;
} reader;

static bool get(reader *r, void *out, size_t n) {
  if (n > r->n - r->at)
    return false;
  memcpy(out, r->p + r->at, n);
  r->at += n;
  return true;
}

static bool get_u32(reader *r, uint32_t *v) {
  return get(r, v, sizeof *v);
}

static bool get_u64(reader *r, uint64_t *v) {
  return get(r, v, sizeof *v);
}

/* A borrowed span of len bytes (len read first); false when it does not fit. */
static bool get_span(reader *r, const char **s, uint32_t *len) {
  if (!get_u32(r, len) || *len > r->n - r->at)
    return false;
  *s = (const char *)(r->p + r->at);
  r->at += *len;
  return true;
}

static bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* "d/" + 32 lowercase hex digits: the only value file names the writer makes. */
static bool valid_file_name(const char *s, uint32_t n) {
  if (n != CKPT_OCDBT_DATA_NAME_HEX + 2 || s[0] != 'd' || s[1] != '/')
    return false;
  for (uint32_t i = 2; i < n; i++)
    if (!is_hex(s[i]))
      return false;
  return true;
}

/* "ocdbt.process_<r>/" + "manifest.ocdbt" or a node file "d/<32 hex>": a file of process r's
 * own database. */
static bool valid_sum_path(const char *s, uint32_t n, int r) {
  char prefix[64];
  int pl = snprintf(prefix, sizeof prefix, "%s%d/", CKPT_OCDBT_PROCESS_DIR_PREFIX, r);
  if (n <= (uint32_t)pl || memcmp(s, prefix, (size_t)pl) != 0)
    return false;
  const char *rest = s + pl;
  uint32_t rn = n - (uint32_t)pl;
  size_t ml = strlen(CKPT_OCDBT_MANIFEST_FILE);
  return (rn == ml && memcmp(rest, CKPT_OCDBT_MANIFEST_FILE, ml) == 0) ||
         valid_file_name(rest, rn);
}

void ckpt_pt_ocdbt_tables_free(ckpt_pt_ocdbt_tables *m) {
  for (int r = 0; r < m->size; r++) {
    if (m->kvs != NULL)
      free(m->kvs[r]);
    if (m->names != NULL)
      free(m->names[r]);
    if (m->files != NULL)
      free(m->files[r]);
  }
  free(m->kvs);
  free(m->names);
  free(m->files);
  free(m->tables);
  *m = (ckpt_pt_ocdbt_tables){0};
}

static ckpt_status malformed(const ckpt_write_plan *j, int r, const char *what, ckpt_error *err) {
  return ckpt_error_set(err, CKPT_ECORRUPT,
                        "while merging the OCDBT databases of '%s': process %d sent a malformed "
                        "key table (%s)",
                        j->dir, r, what);
}

/* Parses process r's table (bytes p, n) into m's slot r; its database files' sums are appended
 * to the plan's ocdbt_files (the primary's own are there already). */
static ckpt_status parse_table(ckpt_write_plan *j, int r, bool self, const unsigned char *p,
                               size_t n, ckpt_pt_ocdbt_tables *m, ckpt_error *err) {
  reader rd = {p, n, 0};
  uint64_t status, n_files, n_sums, n_keys;
  if (!get_u64(&rd, &status) || !get_u64(&rd, &n_files) || !get_u64(&rd, &n_sums) ||
      !get_u64(&rd, &n_keys))
    return malformed(j, r, "header", err);
  if ((int64_t)status != CKPT_OK)
    return ckpt_error_set(err, CKPT_ENOMEM,
                          "while merging the OCDBT databases of '%s': process %d could not send "
                          "its key table (out of memory)",
                          j->dir, r);
  /* Each entry takes at least 4 bytes: counts beyond what was sent are malformed. */
  size_t left = n - rd.at;
  if (n_files > left / 4 || n_sums > left / 4 || n_keys > left / 4)
    return malformed(j, r, "counts", err);
  m->names[r] = malloc((n_files ? n_files : 1) * sizeof *m->names[r]);
  m->files[r] = malloc((n_files ? n_files : 1) * sizeof *m->files[r]);
  m->kvs[r] = malloc((n_keys ? n_keys : 1) * sizeof *m->kvs[r]);
  if (m->names[r] == NULL || m->files[r] == NULL || m->kvs[r] == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory merging the OCDBT databases");
  for (uint64_t i = 0; i < n_files; i++) {
    const char *s;
    uint32_t len;
    if (!get_span(&rd, &s, &len) || !valid_file_name(s, len))
      return malformed(j, r, "value file name", err);
    memcpy(m->names[r][i], s, len);
    m->names[r][i][len] = '\0';
    m->files[r][i] = m->names[r][i];
  }
  for (uint64_t i = 0; i < n_sums; i++) {
    const char *s;
    uint32_t len, crc;
    uint64_t bytes;
    if (!get_span(&rd, &s, &len) || !get_u32(&rd, &crc) || !get_u64(&rd, &bytes) ||
        !valid_sum_path(s, len, r))
      return malformed(j, r, "database file", err);
    if (self)
      continue; /* already in the plan */
    ckpt_write_file_sum *nf = realloc(j->ocdbt_files, (j->n_ocdbt_files + 1) * sizeof *nf);
    if (nf == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory merging the OCDBT databases");
    j->ocdbt_files = nf;
    char *rel = malloc((size_t)len + 1);
    if (rel == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory merging the OCDBT databases");
    memcpy(rel, s, len);
    rel[len] = '\0';
    nf[j->n_ocdbt_files++] = (ckpt_write_file_sum){rel, crc, bytes};
  }
  for (uint64_t i = 0; i < n_keys; i++) {
    const char *key;
    uint32_t key_len;
    unsigned char ind;
    uint64_t file, offset, length;
    if (!get_span(&rd, &key, &key_len) || key_len == 0 || key_len > MAX_KEY_BYTES ||
        !get(&rd, &ind, 1) || ind > 1 || !get_u64(&rd, &file) || !get_u64(&rd, &offset) ||
        !get_u64(&rd, &length))
      return malformed(j, r, "key", err);
    ckpt_ocdbt_kv *kv = &m->kvs[r][i];
    *kv = (ckpt_ocdbt_kv){.key = key, .key_len = key_len, .length = length, .indirect = ind};
    if (ind) {
      if (file >= n_files || offset > UINT64_MAX - length)
        return malformed(j, r, "value place", err);
      kv->file = (size_t)file;
      kv->offset = offset;
    } else {
      if (length > CKPT_OCDBT_ORBAX_MAX_INLINE_VALUE_BYTES || length > rd.n - rd.at)
        return malformed(j, r, "inline value", err);
      kv->value = rd.p + rd.at;
      rd.at += (size_t)length;
    }
  }
  if (rd.at != rd.n)
    return malformed(j, r, "trailing bytes", err);
  m->tables[r] = (ckpt_ocdbt_process_table){.process = (unsigned)r,
                                            .n_files = (size_t)n_files,
                                            .files = m->files[r],
                                            .n = (size_t)n_keys,
                                            .kvs = m->kvs[r]};
  return CKPT_OK;
}

ckpt_status ckpt_pt_ocdbt_parse_tables(ckpt_write_plan *j, int self, const void *all,
                                       const size_t *sizes, int size, ckpt_pt_ocdbt_tables *m,
                                       ckpt_error *err) {
  *m = (ckpt_pt_ocdbt_tables){.size = size};
  m->tables = calloc((size_t)size, sizeof *m->tables);
  m->kvs = calloc((size_t)size, sizeof *m->kvs);
  m->names = calloc((size_t)size, sizeof *m->names);
  m->files = calloc((size_t)size, sizeof *m->files);
  ckpt_status st = CKPT_OK;
  if (m->tables == NULL || m->kvs == NULL || m->names == NULL || m->files == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory merging the OCDBT databases");
  size_t off = 0;
  for (int r = 0; st == CKPT_OK && r < size; r++) {
    st = parse_table(j, r, r == self, (const unsigned char *)all + off, sizes[r], m, err);
    off += sizes[r];
  }
  if (st != CKPT_OK)
    ckpt_pt_ocdbt_tables_free(m);
  return st;
}

ckpt_status ckpt_pt_ocdbt_merge(ckpt_write_plan *j, bool write, ckpt_error *err) {
  ckpt_op *op = j->note_durable_ctx;
  ckpt_process_group *pg = ckpt_op_group(op);
  ckpt_ocdbt_buf b = {0};
  ckpt_pt_ocdbt_encode_table(j, &b);
  uint64_t failed[4] = {(uint64_t)(int64_t)CKPT_ENOMEM, 0, 0, 0};
  const void *mine = b.failed ? (const void *)failed : (const void *)b.p;
  size_t n = b.failed ? sizeof failed : b.n;
  void *all = NULL;
  size_t *sizes = NULL;
  ckpt_status st = ckpt_process_group_gatherv(pg, ckpt_op_primary(op), mine, n, &all, &sizes, err);
  bool oom = b.failed;
  ckpt_ocdbt_buf_free(&b);
  if (st == CKPT_OK && oom && !j->primary) /* the primary reports it, naming this process */
    st = ckpt_error_set(err, CKPT_ENOMEM, "while merging the OCDBT databases of '%s': out of "
                        "memory", j->dir);
  if (st != CKPT_OK || !j->primary) {
    free(all);
    free(sizes);
    return st;
  }
  ckpt_pt_ocdbt_tables m;
  st = ckpt_pt_ocdbt_parse_tables(j, ckpt_process_group_rank(pg), all, sizes,
                                  ckpt_process_group_size(pg), &m, err);
  if (st == CKPT_OK && write)
    st = ckpt_ocdbt_write_root(j, m.tables, (size_t)m.size, err);
  ckpt_pt_ocdbt_tables_free(&m);
  free(all);
  free(sizes);
  return st;
}
