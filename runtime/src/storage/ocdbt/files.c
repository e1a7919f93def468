/* storage/ocdbt/files.c — the data files of an OCDBT database (opened once, sized, shared by every
 * reader; directories on the way must be real directories) and references to encoded nodes in
 * them: resolving data-file table entries through transitive paths, reading and unpacking a node.
 */
#include "storage/ocdbt/internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/path.h"

/* ---------------------------------------------------------------- data files */

/* The index of the data file at rel (transitive + base + relative), added when new. */
ckpt_status ocdbt_file_index(ckpt_ocdbt *db, const char *rel, uint32_t *index, ckpt_error *err) {
  for (size_t i = 0; i < db->n_files; i++)
    if (strcmp(db->files[i].rel, rel) == 0) {
      *index = (uint32_t)i;
      return CKPT_OK;
    }
  if (db->n_files >= UINT32_MAX)
    return ckpt_error_set(err, CKPT_ECORRUPT, "'%s': too many data files", db->dir);
  if (db->n_files == db->cap_files) {
    size_t cap = db->cap_files ? 2 * db->cap_files : 8;
    data_file *f = realloc(db->files, cap * sizeof *f);
    if (!f)
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    db->files = f;
    db->cap_files = cap;
  }
  data_file *f = &db->files[db->n_files];
  memset(f, 0, sizeof *f);
  f->fd = -1;
  f->rel = strdup(rel);
  f->path = ckpt_path_join(db->dir, rel);
  if (!f->rel || !f->path) {
    free(f->rel);
    free(f->path);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  }
  *index = (uint32_t)db->n_files++;
  return CKPT_OK;
}

/* Every directory between the database and the file must be a real directory: O_NOFOLLOW
 * guards the last component only. */
static ckpt_status check_parents(ckpt_ocdbt *db, data_file *f, const char *what, ckpt_error *err) {
  size_t dl = strlen(db->dir);
  for (char *s = strchr(f->path + dl + 1, '/'); s; s = strchr(s + 1, '/')) {
    *s = '\0';
    ckpt_io_kind kind;
    uint64_t size;
    ckpt_status st = ckpt_io_stat(db->io, f->path, &kind, &size, err);
    if (st == CKPT_OK && kind == CKPT_IO_KIND_MISSING)
      st = ckpt_error_set(err, CKPT_EINCOMPLETE,
                          "'%s' is missing (the directory of data file "
                          "'%s', which holds %s)",
                          f->path, f->rel, what);
    else if (st == CKPT_OK && kind != CKPT_IO_KIND_DIR)
      st = ckpt_error_set(err, CKPT_EUNSAFE,
                          "'%s' is not a directory (symlinks are not "
                          "followed inside a checkpoint)",
                          f->path);
    *s = '/';
    if (st != CKPT_OK)
      return st;
  }
  return CKPT_OK;
}

/* Opens (once) and sizes data file i; *what names the referrer in a missing-file error. */
ckpt_status ocdbt_file_fd(ckpt_ocdbt *db, uint32_t i, const char *what, int *fd, uint64_t *size,
                          ckpt_error *err) {
  data_file *f = &db->files[i];
  ckpt_status st = CKPT_OK;
  pthread_mutex_lock(&db->mu);
  if (!f->checked) {
    ckpt_io_kind kind = CKPT_IO_KIND_MISSING;
    st = check_parents(db, f, what, err);
    if (st == CKPT_OK)
      st = ckpt_io_stat(db->io, f->path, &kind, &f->size, err);
    if (st == CKPT_OK && kind == CKPT_IO_KIND_MISSING)
      st = ckpt_error_set(err, CKPT_EINCOMPLETE, "data file '%s' is missing (it holds %s)", f->path,
                          what);
    else if (st == CKPT_OK && kind != CKPT_IO_KIND_FILE)
      st = ckpt_error_set(err, kind == CKPT_IO_KIND_SYMLINK ? CKPT_EUNSAFE : CKPT_ECORRUPT,
                          "data file '%s' is not a regular file", f->path);
    if (st == CKPT_OK)
      st = ckpt_io_open(db->io, f->path, O_RDONLY | O_NOFOLLOW, 0, &f->fd, err);
    if (st == CKPT_OK)
      f->checked = true;
  }
  *fd = f->fd;
  *size = f->size;
  pthread_mutex_unlock(&db->mu);
  return st;
}

ckpt_status ocdbt_check_range(const data_file *f, uint64_t offset, uint64_t length, uint64_t size,
                              const char *what, ckpt_error *err) {
  if (offset > size || length > size - offset)
    return ckpt_error_set(err, CKPT_ECORRUPT,
                          "'%s': %s at offset %llu, %llu bytes, lies past "
                          "the end of the file (%llu bytes; truncated?)",
                          f->path, what, (unsigned long long)offset, (unsigned long long)length,
                          (unsigned long long)size);
  return CKPT_OK;
}

/* Reads [offset, offset + length) of data file i into a new buffer. */
ckpt_status ocdbt_read_range(ckpt_ocdbt *db, uint32_t i, uint64_t offset, uint64_t length,
                             const char *what, uint8_t **out, ckpt_error *err) {
  int fd;
  uint64_t size;
  ckpt_status st = ocdbt_file_fd(db, i, what, &fd, &size, err);
  if (st != CKPT_OK)
    return st;
  if ((st = ocdbt_check_range(&db->files[i], offset, length, size, what, err)) != CKPT_OK)
    return st;
  uint8_t *buf = malloc(length ? (size_t)length : 1);
  if (!buf)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory reading '%s'", db->files[i].path);
  size_t got = 0;
  st = ckpt_io_pread_all(db->io, fd, db->files[i].path, buf, (size_t)length, offset, &got, err);
  if (st == CKPT_OK && got != length)
    st = ckpt_error_set(err, CKPT_ECORRUPT,
                        "'%s': %s at offset %llu: file shrank while being "
                        "read",
                        db->files[i].path, what, (unsigned long long)offset);
  if (st != CKPT_OK) {
    free(buf);
    return st;
  }
  *out = buf;
  return CKPT_OK;
}

/* ---------------------------------------------------------------- references between nodes */

/* Resolves entry `id` of table t (decoded in a node whose transitive path is trans): the db
 * file index and, for a node, the transitive path its children use. */
ckpt_status ocdbt_resolve(ckpt_ocdbt *db, const ckpt_ocdbt_in *in, const ckpt_ocdbt_file_table *t,
                          const char *trans, uint64_t id, uint32_t *file, char **child_trans,
                          ckpt_error *err) {
  if (id >= t->n)
    return ckpt_error_set(err, CKPT_ECORRUPT,
                          "%s: data file id %llu out of range (%zu files "
                          "in the table)",
                          in->where, (unsigned long long)id, t->n);
  size_t tl = strlen(trans), pl = t->path_len[id];
  if (tl + pl > CKPT_OCDBT_MAX_PATH)
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s: data file path longer than %u bytes", in->where,
                          CKPT_OCDBT_MAX_PATH);
  char *full = malloc(tl + pl + 1);
  if (!full)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  memcpy(full, trans, tl);
  memcpy(full + tl, t->path[id], pl + 1);
  ckpt_status st = ocdbt_file_index(db, full, file, err);
  if (st == CKPT_OK && child_trans) {
    full[tl + t->base_len[id]] = '\0';
    *child_trans = full;
    return CKPT_OK;
  }
  free(full);
  return st;
}

/* "'<path>': <kind> at offset <n>" for messages about a node. */
void ocdbt_node_where(char *buf, size_t n, const ckpt_ocdbt *db, const node_ref *r,
                      const char *kind) {
  snprintf(buf, n, "'%s': %s at offset %llu", db->files[r->file].path, kind,
           (unsigned long long)r->offset);
}

/* Reads and unpacks the node r points to. */
ckpt_status ocdbt_load_node(ckpt_ocdbt *db, const node_ref *r, uint32_t magic, const char *kind,
                            uint8_t **body, size_t *body_len, ckpt_error *err) {
  char what[96];
  snprintf(what, sizeof what, "the %s at offset %llu", kind, (unsigned long long)r->offset);
  if (r->length > CKPT_OCDBT_DECODED_MAX) {
    char where[600];
    ocdbt_node_where(where, sizeof where, db, r, kind);
    return ckpt_error_set(err, CKPT_ECORRUPT, "%s: encoded length %llu exceeds the limit of %u",
                          where, (unsigned long long)r->length, CKPT_OCDBT_DECODED_MAX);
  }
  uint8_t *raw = NULL;
  ckpt_status st = ocdbt_read_range(db, r->file, r->offset, r->length, what, &raw, err);
  if (st != CKPT_OK)
    return st;
  char where[600];
  ocdbt_node_where(where, sizeof where, db, r, kind);
  st = ckpt_ocdbt_open_envelope(raw, (size_t)r->length, magic, db->max_decoded, where, body,
                                body_len, err);
  free(raw);
  return st;
}
