/* storage/ocdbt/manifest.c — opening an OCDBT database: the manifest (single-file kind, or the
 * configuration in manifest.ocdbt and the version tree in the highest manifest.<16 hex>), then
 * the latest version's B+tree, sorted and checked for duplicate keys. */
#include "storage/ocdbt/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/path.h"
#include "util/sort.h"

typedef struct config {
  uint64_t kind;
} config;

static ckpt_status decode_config(ckpt_ocdbt *db, ckpt_ocdbt_in *in, config *c, ckpt_error *err) {
  const uint8_t *uuid;
  uint64_t inline_max = 0, decoded_max = CKPT_OCDBT_DECODED_MAX, method = 0;
  ckpt_status st = ckpt_ocdbt_get_bytes(in, "uuid", CKPT_OCDBT_UUID_BYTES, &uuid, err);
  if (st == CKPT_OK)
    st = ckpt_ocdbt_get_varint_max(in, "manifest kind", CKPT_OCDBT_MANIFEST_KIND_NUMBERED, &c->kind,
                                   err);
  if (st == CKPT_OK)
    st = ckpt_ocdbt_get_varint(in, "max inline value bytes", &inline_max, err);
  if (st == CKPT_OK)
    st = ckpt_ocdbt_get_varint(in, "max decoded node bytes", &decoded_max, err);
  if (st == CKPT_OK)
    st = ckpt_ocdbt_get_u8(in, "version tree arity log2", &db->arity_log2, err);
  if (st == CKPT_OK && (db->arity_log2 == 0 || db->arity_log2 > 16))
    st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: version tree arity log2 %u (1 to 16 allowed)",
                        in->where, db->arity_log2);
  if (st == CKPT_OK)
    st = ckpt_ocdbt_get_varint_max(in, "compression method", CKPT_OCDBT_CONFIG_COMPRESSION_ZSTD,
                                   &method, err);
  if (st == CKPT_OK && method == CKPT_OCDBT_CONFIG_COMPRESSION_ZSTD) {
    uint32_t level;
    st = ckpt_ocdbt_get_u32le(in, "zstd level", &level, err);
  }
  db->max_decoded = decoded_max < CKPT_OCDBT_DECODED_MAX ? decoded_max : CKPT_OCDBT_DECODED_MAX;
  (void)inline_max;
  return st;
}

/* Decodes a manifest's bytes; with kind numbered in the config, reports it in *numbered and
 * reads nothing more. */
static ckpt_status decode_manifest(ckpt_ocdbt *db, const void *data, size_t n, const char *where,
                                   bool *numbered, version *ver, ckpt_error *err) {
  uint8_t *body;
  size_t bl;
  ckpt_status st = ckpt_ocdbt_open_envelope(data, n, CKPT_OCDBT_MANIFEST_MAGIC,
                                            CKPT_OCDBT_MANIFEST_MAX, where, &body, &bl, err);
  if (st != CKPT_OK)
    return st;
  ckpt_ocdbt_in in = ckpt_ocdbt_in_make(body, bl, where);
  config c;
  ckpt_ocdbt_file_table t = {0};
  *numbered = false;
  st = decode_config(db, &in, &c, err);
  if (st == CKPT_OK && c.kind == CKPT_OCDBT_MANIFEST_KIND_NUMBERED) {
    *numbered = true;
  } else if (st == CKPT_OK) {
    st = ckpt_ocdbt_get_file_table(&in, &t, err);
    if (st == CKPT_OK)
      st = ocdbt_decode_versions(db, &in, &t, "", ver, err);
    if (st == CKPT_OK)
      st = ocdbt_decode_version_refs(db, &in, &t, "", true, 0, ver, err);
  }
  if (st == CKPT_OK && ckpt_ocdbt_in_left(&in) != 0)
    st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: %zu unexpected bytes at the end", where,
                        ckpt_ocdbt_in_left(&in));
  ckpt_ocdbt_file_table_free(&t);
  free(body);
  return st;
}

/* Numbered kind: the manifest.<16 hex> with the highest number. */
static ckpt_status latest_numbered(ckpt_ocdbt *db, char **name, ckpt_error *err) {
  char **names;
  size_t count;
  ckpt_status st = ckpt_io_list_dir(db->io, db->dir, &names, &count, err);
  if (st != CKPT_OK)
    return st;
  const char *best = NULL;
  size_t pl = strlen(CKPT_OCDBT_NUMBERED_PREFIX);
  for (size_t i = 0; i < count; i++) {
    const char *s = names[i];
    if (strncmp(s, CKPT_OCDBT_NUMBERED_PREFIX, pl) != 0 ||
        strlen(s) != pl + CKPT_OCDBT_NUMBERED_DIGITS)
      continue;
    bool hex = true;
    for (size_t k = pl; s[k]; k++)
      hex &= (s[k] >= '0' && s[k] <= '9') || (s[k] >= 'a' && s[k] <= 'f');
    if (hex && (!best || strcmp(s, best) > 0))
      best = s; /* fixed width: text order */
  }
  if (!best)
    st = ckpt_error_set(err, CKPT_EINCOMPLETE,
                        "'%s/%s' says the version tree is in numbered "
                        "manifests, but there is no %s<%d hex digits> file",
                        db->dir, CKPT_OCDBT_MANIFEST_FILE, CKPT_OCDBT_NUMBERED_PREFIX,
                        CKPT_OCDBT_NUMBERED_DIGITS);
  else if (!(*name = strdup(best)))
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_io_free_names(names, count);
  return st;
}

static ckpt_status db_new(ckpt_io *io, const char *dir, ckpt_ocdbt **out, ckpt_error *err) {
  ckpt_ocdbt *db = calloc(1, sizeof *db);
  if (!db)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  db->io = io;
  db->dir = strdup(dir);
  db->max_decoded = CKPT_OCDBT_DECODED_MAX;
  pthread_mutex_init(&db->mu, NULL);
  if (!db->dir) {
    ckpt_ocdbt_close(db);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  }
  *out = db;
  return CKPT_OK;
}

/* After the manifest: the latest version's tree, sorted and checked for duplicates. */
static ckpt_status load_version(ckpt_ocdbt *db, version *ver, ckpt_error *err) {
  ckpt_status st = CKPT_OK;
  if (ver->found) {
    db->generation = ver->generation;
    if (ver->root.length != 0)
      st = ocdbt_read_btree(db, &ver->root, ver->root_height, "", 0, err);
  }
  free(ver->root.transitive);
  ver->root.transitive = NULL;
  if (st != CKPT_OK)
    return st;
  if (db->n > 1)
    ckpt_sort(db->entries, db->n, sizeof *db->entries, ocdbt_cmp_entry); /* leaves in key order */
  for (size_t i = 1; i < db->n; i++)
    if (ocdbt_cmp_entry(&db->entries[i - 1], &db->entries[i]) == 0)
      return ckpt_error_set(err, CKPT_ECORRUPT, "'%s': key '%s' appears twice in the B+tree",
                            db->dir, db->entries[i].key);
  return CKPT_OK;
}

ckpt_status ckpt_ocdbt_open_manifest(ckpt_io *io, const char *dir, const void *manifest, size_t n,
                                     const char *where, ckpt_ocdbt **out, ckpt_error *err) {
  *out = NULL;
  ckpt_ocdbt *db;
  ckpt_status st = db_new(io, dir, &db, err);
  if (st != CKPT_OK)
    return st;
  version ver = {0};
  bool numbered = false;
  st = decode_manifest(db, manifest, n, where, &numbered, &ver, err);
  if (st == CKPT_OK && numbered)
    st = ckpt_error_set(err, CKPT_EINVAL, "%s: a numbered-kind manifest holds no version tree",
                        where);
  if (st == CKPT_OK)
    st = load_version(db, &ver, err);
  free(ver.root.transitive);
  if (st != CKPT_OK) {
    ckpt_ocdbt_close(db);
    return st;
  }
  *out = db;
  return CKPT_OK;
}

static ckpt_status read_manifest_file(ckpt_ocdbt *db, const char *name, void **data, size_t *n,
                                      char **path, ckpt_error *err) {
  *path = ckpt_path_join(db->dir, name);
  if (!*path)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_error local = CKPT_ERROR_INIT;
  ckpt_status st = ckpt_io_read_file(db->io, *path, CKPT_OCDBT_MANIFEST_MAX, data, n, &local);
  if (st == CKPT_ENOENT)
    return ckpt_error_set(err, CKPT_EINCOMPLETE, "OCDBT manifest '%s' is missing", *path);
  if (st != CKPT_OK && err && err->code == CKPT_OK)
    *err = local;
  return st;
}

ckpt_status ckpt_ocdbt_open(ckpt_io *io, const char *dir, ckpt_ocdbt **out, ckpt_error *err) {
  *out = NULL;
  ckpt_ocdbt *db;
  ckpt_status st = db_new(io, dir, &db, err);
  if (st != CKPT_OK)
    return st;
  void *data = NULL;
  size_t n = 0;
  char *path = NULL, *numbered_name = NULL;
  version ver = {0};
  bool numbered = false;
  st = read_manifest_file(db, CKPT_OCDBT_MANIFEST_FILE, &data, &n, &path, err);
  if (st == CKPT_OK) {
    char where[600];
    snprintf(where, sizeof where, "'%s'", path);
    st = decode_manifest(db, data, n, where, &numbered, &ver, err);
  }
  if (st == CKPT_OK && numbered) {
    free(data);
    free(path);
    data = NULL;
    path = NULL;
    st = latest_numbered(db, &numbered_name, err);
    if (st == CKPT_OK)
      st = read_manifest_file(db, numbered_name, &data, &n, &path, err);
    if (st == CKPT_OK) {
      char where[600];
      snprintf(where, sizeof where, "'%s'", path);
      st = decode_manifest(db, data, n, where, &numbered, &ver, err);
      if (st == CKPT_OK && numbered)
        st = ckpt_error_set(err, CKPT_ECORRUPT,
                            "%s: a numbered manifest must hold the version "
                            "tree (manifest kind single)",
                            where);
    }
  }
  if (st == CKPT_OK)
    st = load_version(db, &ver, err);
  free(ver.root.transitive);
  free(numbered_name);
  free(data);
  free(path);
  if (st != CKPT_OK) {
    ckpt_ocdbt_close(db);
    return st;
  }
  *out = db;
  return CKPT_OK;
}
