/* cli/cmd_convert.c — `ckpt convert SRC DST --to LAYOUT`: a copy of SRC (a checkpoint, or a
 * directory of them) in which every PyTree item is stored in the chosen layout (docs/format.md,
 * "When to choose each layout"): arrays in directories or in OCDBT databases, values in zarr v2
 * or zarr v3. `ckpt unpack SRC DST` is `convert --to zarr2`.
 *
 * When the value format stays, each array's metadata text and its chunks' stored bytes are
 * moved as they are: from chunk files, the packed data file or OCDBT values, to chunk files or
 * OCDBT values. When it changes (v2 ⇄ v3), each chunk is decoded and re-encoded by the storage
 * layer's codecs (storage/zarr_io.h, "one chunk") and the metadata is the target writer's for
 * the same dtype, shape, chunk grid and fill value. zarr v2 directories also get every zstd
 * frame with its content size (zarr-python 2.x with Debian's numcodecs needs it; TensorStore
 * leaves it out). Each chunk is checked on the way against the source's _CHECKSUMS (or the
 * packed index), so a damaged source is reported, never copied. _METADATA is rewritten only to
 * say which layout it is in (use_ocdbt, use_zarr3); _strings.json, every other file of the item
 * (Orbax's _sharding and array_metadatas/ among them), non-PyTree items, _CHECKPOINT_METADATA
 * and custom metadata are copied byte for byte. Each converted item gets a _CHECKSUMS for what
 * it now holds, and each checkpoint with a manifest (_CHECKPOINT_CHECKSUMS) a new one for its
 * new files. The copy is built under DST.orbax-checkpoint-tmp, every file and directory
 * fsync'd, and renamed to DST at the end (a failed run leaves only a temporary directory, which
 * `ckpt gc` removes). */
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char help_convert[] =
    "Usage: ckpt convert [--json] --to LAYOUT SRC DST\n"
    "\n"
    "Copy the checkpoint (or directory of checkpoints) SRC to DST with the arrays of every\n"
    "PyTree item stored in LAYOUT:\n"
    "  zarr2        one zarr v2 directory per array (Orbax use_ocdbt=False; zarr-python reads it)\n"
    "  zarr3        one zarr v3 directory per array (use_ocdbt=False, use_zarr3=True)\n"
    "  ocdbt        the item's OCDBT databases (Orbax's default), values in the source's format\n"
    "  ocdbt+zarr2  OCDBT with zarr v2 values (use_ocdbt=True)\n"
    "  ocdbt+zarr3  OCDBT with zarr v3 values (use_ocdbt=True, use_zarr3=True)\n"
    "SRC may be in any layout ckpt reads (zarr v2 or v3, in directories or OCDBT, the retired\n"
    "packed layout). Every chunk is checked against the source's checksums; chunks are copied\n"
    "as stored unless the value format changes (then decoded and re-encoded, same chunk grid);\n"
    "zarr2 directories get zstd frames that record their size (zarr-python needs it).\n"
    "Everything but the arrays is copied byte for byte, and _METADATA says the new layout.\n"
    "DST must not exist; it is written as DST.orbax-checkpoint-tmp and renamed when complete.\n"
    "\n"
    "Options:\n"
    "  --to LAYOUT  one of the five above (required)\n"
    "  --json       print one JSON document (keys documented in docs/cli.md)\n"
    "  -h, --help   show this help\n"
    "\n"
    "Exit status: 0 done; 1 SRC is damaged (a chunk fails its checksum or does not decode, a\n"
    "file is missing or truncated) or holds a symlink; 2 usage error, SRC missing, DST exists,\n"
    "a codec ckpt does not implement, I/O error.\n";

static const char help_unpack[] =
    "Usage: ckpt unpack [--json] SRC DST\n"
    "\n"
    "The same as 'ckpt convert --to zarr2 SRC DST' (see 'ckpt convert --help'): every PyTree\n"
    "item of the copy is stored as zarr v2 directories, which Orbax (use_ocdbt=False) and\n"
    "zarr-python read.\n";

#define MAX_DEPTH 64
#define COPY_PIECE ((size_t)8 << 20)
/* Largest metadata file read whole (_METADATA, .zarray, _strings.json). */
#define META_MAX ((size_t)1 << 30)

/* The target: arrays in OCDBT databases or in directories, and their value format (2 or 3;
 * 0 with OCDBT: the source item's). */
typedef struct conv_ctx {
  ckpt_io *io;
  bool ocdbt;
  int zarr;
  uint64_t items, arrays, chunks, files, recoded;
} conv_ctx;

/* Copies the regular file src to dst (new), durably, in pieces. */
static ckpt_status copy_file(conv_ctx *c, const char *src, const char *dst, uint64_t size,
                             ckpt_error *err) {
  int in = -1, out = -1;
  ckpt_status st = ckpt_io_open(c->io, src, O_RDONLY | O_NOFOLLOW, 0, &in, err);
  if (st == CKPT_OK)
    st = ckpt_io_open(c->io, dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0666, &out, err);
  size_t cap = size < COPY_PIECE ? (size_t)size : COPY_PIECE;
  unsigned char *buf = st == CKPT_OK ? malloc(cap ? cap : 1) : NULL;
  if (st == CKPT_OK && buf == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory copying '%s'", src);
  for (uint64_t pos = 0; st == CKPT_OK && pos < size;) {
    size_t n = size - pos < cap ? (size_t)(size - pos) : cap, got = 0;
    st = ckpt_io_pread_all(c->io, in, src, buf, n, pos, &got, err);
    if (st == CKPT_OK && got != n)
      st = ckpt_error_set(err, CKPT_ECORRUPT, "'%s' shrank while being copied", src);
    if (st == CKPT_OK)
      st = ckpt_io_pwrite_all(c->io, out, dst, buf, n, pos, err);
    pos += n;
  }
  if (st == CKPT_OK)
    st = ckpt_io_fsync(c->io, out, dst, err);
  free(buf);
  if (out >= 0) {
    ckpt_status cst = ckpt_io_close(c->io, out, dst, st == CKPT_OK ? err : NULL);
    if (st == CKPT_OK)
      st = cst;
  }
  if (in >= 0)
    ckpt_io_close(c->io, in, src, NULL);
  c->files++;
  return st;
}

/* ---------------------------------------------------------------- one PyTree item */

/* Where an item's arrays are read from. */
typedef struct item_src {
  const char *dir;
  ckpt_packed_index packed; /* empty when the item has no _PACKED */
  ckpt_ocdbt *db;           /* use_ocdbt items */
  ckpt_checksums *sums;     /* the item's _CHECKSUMS, or NULL (Orbax writes none) */
  bool every_chunk;         /* store_array_data_equal_to_fill_value: a missing chunk is damage */
} item_src;

/* Where they go. */
typedef struct item_dst {
  const char *dir;
  ckpt_ocdbt_builder *builder; /* OCDBT targets */
  cJSON *sums;                 /* the new _CHECKSUMS */
  bool zarr3;                  /* the arrays' value format in the copy (use_zarr3) */
} item_dst;

/* The .zarray text of param as stored (a file, an OCDBT value, or encoded from the packed
 * index, which keeps it parsed), and its parsed form. *text malloc'ed. */
static ckpt_status read_zarray(conv_ctx *c, item_src *s, const char *param, char **text,
                               size_t *len, ckpt_zarr_meta *m, ckpt_error *err) {
  *text = NULL;
  const ckpt_packed_array *pa = ckpt_packed_find(&s->packed, param);
  if (pa != NULL) {
    *m = pa->meta;
    return ckpt_zarr_meta_encode(m, text, len, err);
  }
  ckpt_status st;
  if (s->db != NULL) {
    st = ckpt_zarr_read_meta_ocdbt(s->db, param, s->sums, m, err);
    char *key = st == CKPT_OK ? cli_asprintf("%s/%s", param, ckpt_zarr_meta_file(m)) : NULL;
    if (st != CKPT_OK)
      return st;
    if (key == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    void *data = NULL;
    if (st == CKPT_OK)
      st = ckpt_ocdbt_read_key(s->db, key, META_MAX, &data, len, err);
    free(key);
    *text = data;
    return st;
  }
  char *adir = ckpt_path_join(s->dir, param);
  if (adir == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  st = ckpt_zarr_read_meta(c->io, adir, param, s->sums, m, err);
  char *zpath = st == CKPT_OK ? ckpt_path_join(adir, ckpt_zarr_meta_file(m)) : NULL;
  if (st == CKPT_OK && zpath == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  void *data = NULL;
  if (st == CKPT_OK)
    st = ckpt_io_read_file(c->io, zpath, META_MAX, &data, len, err);
  *text = data;
  free(zpath);
  free(adir);
  return st;
}

/* The stored bytes of one chunk into *buf (grown as needed); *present false when the layout
 * has no such chunk. */
static ckpt_status read_chunk(conv_ctx *c, item_src *s, const char *param, const char *key,
                              uint64_t linear, unsigned char **buf, size_t *cap, size_t *n,
                              bool *present, ckpt_error *err) {
  *present = false;
  *n = 0;
  const ckpt_packed_array *pa = ckpt_packed_find(&s->packed, param);
  if (pa != NULL) {
    if (ckpt_packed_chunk_find(pa, linear) == NULL)
      return CKPT_OK;
    const char *path;
    const ckpt_packed_chunk *pc;
    int fd;
    ckpt_status st = ckpt_packed_locate(pa, linear, key, &path, &pc, err);
    if (st == CKPT_OK)
      st = ckpt_packed_fd(pa, pc->file, &fd, err);
    if (st == CKPT_OK && pc->nbytes > *cap) {
      unsigned char *g = realloc(*buf, (size_t)pc->nbytes);
      if (g == NULL)
        return ckpt_error_set(err, CKPT_ENOMEM, "array '%s': cannot allocate chunk '%s'", param,
                              key);
      *buf = g;
      *cap = (size_t)pc->nbytes;
    }
    size_t got = 0;
    if (st == CKPT_OK)
      st = ckpt_io_pread_all(c->io, fd, path, *buf, (size_t)pc->nbytes, pc->offset, &got, err);
    if (st == CKPT_OK && got != pc->nbytes)
      st = ckpt_error_set(err, CKPT_ECORRUPT, "array '%s': chunk '%s': '%s' is truncated", param,
                          key, path);
    if (st == CKPT_OK && ckpt_crc32c(0, *buf, got) != pc->crc)
      st = ckpt_error_set(err, CKPT_ECORRUPT,
                          "array '%s': chunk '%s' is corrupt (crc32c %08x, expected %08x) in '%s'",
                          param, key, ckpt_crc32c(0, *buf, got), pc->crc, path);
    *n = got;
    *present = st == CKPT_OK;
    return st;
  }
  if (s->db != NULL) {
    char *k = cli_asprintf("%s/%s", param, key);
    if (k == NULL)
      return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    size_t i;
    bool found = ckpt_ocdbt_find(s->db, k, &i);
    free(k);
    if (!found)
      return CKPT_OK;
    const ckpt_ocdbt_value *v = ckpt_ocdbt_value_at(s->db, i);
    if (v->length > SIZE_MAX)
      return ckpt_error_set(err, CKPT_ECORRUPT, "array '%s': chunk '%s' is too large", param, key);
    if (v->length > *cap) {
      unsigned char *g = realloc(*buf, (size_t)v->length);
      if (g == NULL)
        return ckpt_error_set(err, CKPT_ENOMEM, "array '%s': cannot allocate chunk '%s'", param,
                              key);
      *buf = g;
      *cap = (size_t)v->length;
    }
    ckpt_status st = ckpt_ocdbt_read(s->db, i, *buf, err);
    *n = (size_t)v->length;
    *present = st == CKPT_OK;
    return st;
  }
  char *path = cli_asprintf("%s/%s/%s", s->dir, param, key);
  if (path == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_io_kind kind = CKPT_IO_KIND_MISSING;
  uint64_t size = 0;
  ckpt_status st = ckpt_io_stat(c->io, path, &kind, &size, err);
  if (st == CKPT_OK && kind != CKPT_IO_KIND_MISSING && kind != CKPT_IO_KIND_FILE)
    st = ckpt_error_set(err, CKPT_EUNSAFE, "'%s' is not a regular file", path);
  if (st == CKPT_OK && kind == CKPT_IO_KIND_FILE) {
    void *data = NULL;
    st = ckpt_io_read_file(c->io, path, SIZE_MAX, &data, n, err);
    if (st == CKPT_OK) {
      free(*buf);
      *buf = data;
      *cap = *n;
      *present = true;
    }
  }
  free(path);
  return st;
}

/* The chunk's bytes against its entry of the source's _CHECKSUMS (NULL: none). */
static ckpt_status check_chunk(const item_src *s, const char *param, const char *key,
                               const cJSON *entry, const unsigned char *buf, size_t n,
                               uint32_t *crc, ckpt_error *err) {
  *crc = ckpt_crc32c(0, buf, n);
  if (entry == NULL)
    return CKPT_OK;
  uint64_t want_crc = 0, want_n = 0;
  if (!cJSON_IsArray(entry) || cJSON_GetArraySize(entry) != 2 ||
      !ckpt_json_get_uint64(cJSON_GetArrayItem(entry, 0), &want_crc) ||
      !ckpt_json_get_uint64(cJSON_GetArrayItem(entry, 1), &want_n))
    return ckpt_error_set(err, CKPT_ECORRUPT,
                          "'%s/%s': the entry of array '%s' chunk '%s' is "
                          "malformed",
                          s->dir, CKPT_CHECKSUMS_FILE, param, key);
  if (want_n != n || want_crc != *crc)
    return ckpt_error_set(err, CKPT_ECORRUPT,
                          "array '%s': chunk '%s' is corrupt (crc32c %08x, %zu bytes; expected "
                          "%08llx, %llu bytes) in '%s'",
                          param, key, *crc, n, (unsigned long long)want_crc,
                          (unsigned long long)want_n, s->dir);
  return CKPT_OK;
}

/* Writes one value of the destination: a file under dst (durable) or an OCDBT key. rel is the
 * path relative to the item ("<param>/<key>"). */
static ckpt_status put_value(conv_ctx *c, item_dst *d, const char *rel, const void *data, size_t n,
                             ckpt_error *err) {
  if (d->builder != NULL)
    return ckpt_ocdbt_builder_put(d->builder, rel, data, n, err);
  char *path = ckpt_path_join(d->dir, rel);
  if (path == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  /* A zarr v3 key with the "/" separator ("<param>/c/0/1") is a nested file: its directories
   * are made here and fsync'd after it (the array directory itself by the caller). */
  const char *slash = strchr(rel, '/');
  bool nested = slash != NULL && strchr(slash + 1, '/') != NULL;
  char *parent = nested ? ckpt_path_parent(path) : NULL;
  ckpt_status st = CKPT_OK;
  if (nested && parent == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  if (st == CKPT_OK && nested)
    st = ckpt_io_mkdirs(c->io, parent, err);
  if (st == CKPT_OK)
    st = ckpt_io_write_file(c->io, path, data, n, true, err);
  if (st == CKPT_OK && nested)
    st = ckpt_io_fsync_dir(c->io, parent, err);
  free(parent);
  free(path);
  c->files++;
  return st;
}

/* The first compressing codec of a zarr v3 array's chains (0: none). */
static const ckpt_zarr3_codec *v3_compressor(const ckpt_zarr_meta *m) {
  const ckpt_zarr3_chain *chains[] = {&m->v3.codecs, &m->v3.inner_codecs};
  for (size_t i = 0; i < 2; i++)
    for (int k = 0; k < chains[i]->n; k++)
      if (chains[i]->c[k].id >= CKPT_ZARR3_ZSTD && chains[i]->c[k].id <= CKPT_ZARR3_GZIP)
        return &chains[i]->c[k];
  return NULL;
}

/* The metadata of src's copy in value format v3 (zarr v3) or v2: src itself when the format
 * stays (its metadata text is copied as stored), else the format's writer's metadata for the
 * same dtype, shape, chunk grid and fill value, compressed with zstd when src is compressed
 * (at src's zstd level when it has one) — the chain Orbax writes for v3. *recode: the chunks
 * must be decoded and re-encoded. */
static void target_meta(const conv_ctx *c, const ckpt_zarr_meta *src, bool v3, ckpt_zarr_meta *tm,
                        bool *recode) {
  *tm = *src;
  *recode = v3 != src->zarr3;
  if (!*recode)
    return;
  if (v3) {
    int level = src->compressor == CKPT_COMPRESSION_ZSTD ? (src->level != 0 ? src->level : 3) : -1;
    ckpt_zarr3_set_orbax(tm, level, c->ocdbt ? '/' : '.');
    memcpy(tm->fill, src->fill, sizeof tm->fill); /* a missing chunk reads as before */
    return;
  }
  const ckpt_zarr3_codec *z = v3_compressor(src);
  memset(&tm->v3, 0, sizeof tm->v3);
  tm->zarr3 = false;
  tm->big_endian = false;
  tm->separator = '.';
  tm->fill_is_null = false;
  tm->compressor = z != NULL ? CKPT_COMPRESSION_ZSTD : CKPT_COMPRESSION_NONE;
  tm->level = z != NULL && z->id == CKPT_ZARR3_ZSTD && z->level != 0 ? z->level : (z ? 1 : 0);
}

/* One array: its metadata and every chunk of its grid the source has, each checked against the
 * source's checksums and, when the value format changes (or a zarr v2 directory would get a
 * zstd frame without its content size), decoded and re-encoded by the storage layer's codecs. */
static ckpt_status convert_array(conv_ctx *c, item_src *s, item_dst *d, const char *param,
                                 ckpt_error *err) {
  char *ztext = NULL;
  size_t zlen = 0;
  ckpt_zarr_meta m, tm;
  bool recode = false;
  ckpt_status st = read_zarray(c, s, param, &ztext, &zlen, &m, err);
  if (st == CKPT_OK)
    target_meta(c, &m, d->zarr3, &tm, &recode);
  if (st == CKPT_OK && recode) {
    free(ztext);
    ztext = NULL;
    st = tm.zarr3 ? ckpt_zarr3_meta_encode(&tm, &ztext, &zlen, err)
                  : ckpt_zarr_meta_encode(&tm, &ztext, &zlen, err);
  }
  /* zarr-python 2.x with numcodecs < 0.12 (Debian's) cannot decode a zstd frame that does not
   * record its content size, which TensorStore writes: zarr v2 directories get frames with it. */
  bool sized_frames = !c->ocdbt && !tm.zarr3 && tm.compressor == CKPT_COMPRESSION_ZSTD;
  char *adir = NULL;
  if (st == CKPT_OK && d->builder == NULL) {
    if ((adir = ckpt_path_join(d->dir, param)) == NULL)
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    else
      st = ckpt_zarr_make_array_dir(c->io, adir, err);
  }
  char *rel = st == CKPT_OK ? cli_asprintf("%s/%s", param, ckpt_zarr_meta_file(&tm)) : NULL;
  if (st == CKPT_OK && rel == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  if (st == CKPT_OK)
    st = put_value(c, d, rel, ztext, zlen, err);
  if (st == CKPT_OK && !ckpt_checksums_add_file(d->sums, rel, ckpt_crc32c(0, ztext, zlen), zlen))
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  free(rel);
  free(ztext);
  int64_t grid[CKPT_MAX_RANK];
  uint64_t n_chunks = st == CKPT_OK ? ckpt_zarr_grid(&m, grid) : 0;
  uint64_t raw_bytes = st == CKPT_OK ? ckpt_zarr_chunk_elements(&m) * ckpt_dtype_size(m.dtype) : 0;
  unsigned char *buf = NULL, *raw = NULL;
  size_t cap = 0;
  /* An array with no chunk written still gets its entry (an empty object). */
  cJSON *entry = st == CKPT_OK ? ckpt_checksums_append_array(d->sums, param) : NULL;
  if (st == CKPT_OK && entry == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  const cJSON *src_sums = ckpt_checksums_array(s->sums, param); /* this array's entries */
  for (uint64_t linear = 0; st == CKPT_OK && linear < n_chunks; linear++) {
    int64_t index[CKPT_MAX_RANK];
    char key[CKPT_ZARR_KEY_MAX], tkey[CKPT_ZARR_KEY_MAX];
    ckpt_zarr_chunk_index(&m, grid, linear, index);
    ckpt_zarr_chunk_key(&m, index, key);
    ckpt_zarr_chunk_key(&tm, index, tkey);
    size_t n = 0;
    bool present = false;
    st = read_chunk(c, s, param, key, linear, &buf, &cap, &n, &present, err);
    if (st != CKPT_OK)
      break;
    const cJSON *listed = cJSON_GetObjectItemCaseSensitive(src_sums, key);
    if (!present) {
      if (s->every_chunk || listed != NULL)
        st = ckpt_error_set(err, CKPT_EINCOMPLETE, "array '%s': chunk '%s' is missing in '%s'",
                            param, key, s->dir);
      continue; /* an older Orbax item: the chunk reads as the fill value, and stays absent */
    }
    uint32_t crc = 0;
    st = check_chunk(s, param, key, listed, buf, n, &crc, err);
    const unsigned char *out = buf;
    size_t out_n = n;
    void *encoded = NULL;
    if (st == CKPT_OK && (recode || (sized_frames && !ckpt_zarr_frame_has_size(buf, n)))) {
      if (raw_bytes > SIZE_MAX)
        st = ckpt_error_set(err, CKPT_ENOMEM, "array '%s': chunk '%s' is too large", param, key);
      if (st == CKPT_OK && raw == NULL && (raw = malloc(raw_bytes ? (size_t)raw_bytes : 1)) == NULL)
        st = ckpt_error_set(err, CKPT_ENOMEM, "array '%s': cannot allocate chunk '%s'", param, key);
      if (st == CKPT_OK)
        st = ckpt_zarr_decode_chunk(&m, buf, n, raw, param, key, err);
      if (st == CKPT_OK)
        st = ckpt_zarr_encode_chunk(&tm, raw, &encoded, &out_n, param, tkey, err);
      if (st == CKPT_OK) {
        out = encoded;
        crc = ckpt_crc32c(0, out, out_n);
        c->recoded++;
      }
    }
    char *crel = st == CKPT_OK ? cli_asprintf("%s/%s", param, tkey) : NULL;
    if (st == CKPT_OK && crel == NULL)
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    if (st == CKPT_OK)
      st = put_value(c, d, crel, out, out_n, err);
    free(crel);
    free(encoded);
    if (st == CKPT_OK && !ckpt_checksums_add_chunk(entry, tkey, crc, out_n))
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    c->chunks++;
  }
  free(raw);
  free(buf);
  if (st == CKPT_OK && adir != NULL)
    st = ckpt_io_fsync_dir(c->io, adir, err);
  free(adir);
  c->arrays++;
  return st;
}

/* Reads src/name whole (malloc'ed, NUL after it), or *data NULL when it does not exist. */
static ckpt_status read_optional(conv_ctx *c, const char *dir, const char *name, void **data,
                                 size_t *n, ckpt_error *err) {
  *data = NULL;
  *n = 0;
  char *path = ckpt_path_join(dir, name);
  if (path == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_io_kind kind = CKPT_IO_KIND_MISSING;
  uint64_t size = 0;
  ckpt_status st = ckpt_io_stat(c->io, path, &kind, &size, err);
  if (st == CKPT_OK && kind != CKPT_IO_KIND_MISSING)
    st = ckpt_io_read_file(c->io, path, META_MAX, data, n, err);
  free(path);
  return st;
}

/* Writes dst/name durably and lists it in the new _CHECKSUMS' "files". */
static ckpt_status write_listed(conv_ctx *c, item_dst *d, const char *name, const void *data,
                                size_t n, ckpt_error *err) {
  char *path = ckpt_path_join(d->dir, name);
  if (path == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_status st = ckpt_io_write_file(c->io, path, data, n, true, err);
  free(path);
  c->files++;
  if (st == CKPT_OK && !ckpt_checksums_add_file(d->sums, name, ckpt_crc32c(0, data, n), n))
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  return st;
}

/* _METADATA as Orbax's json.dumps text with use_ocdbt and use_zarr3 set (every other byte as it
 * was: the document is re-dumped in the same member order, and Python's dumps is what wrote it). */
static ckpt_status set_flag(cJSON *doc, const char *name, bool value, bool add, ckpt_error *err) {
  if (cJSON_GetObjectItemCaseSensitive(doc, name) == NULL && !add)
    return CKPT_OK;
  cJSON *flag = cJSON_CreateBool(value);
  if (flag == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  if (cJSON_GetObjectItemCaseSensitive(doc, name) != NULL)
    cJSON_ReplaceItemInObjectCaseSensitive(doc, name, flag);
  else
    cJSON_AddItemToObject(doc, name, flag);
  return CKPT_OK;
}

static ckpt_status convert_metadata(conv_ctx *c, item_src *s, item_dst *d, bool use_ocdbt,
                                    ckpt_error *err) {
  void *text = NULL;
  size_t len = 0;
  char *path = ckpt_path_join(s->dir, CKPT_METADATA_FILE);
  if (path == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_status st = ckpt_io_read_file(c->io, path, META_MAX, &text, &len, err);
  cJSON *doc = NULL;
  if (st == CKPT_OK)
    st = ckpt_json_load(text, len, path, &doc, err);
  free(text);
  text = NULL;
  if (st == CKPT_OK && !cJSON_IsObject(doc))
    st = ckpt_error_set(err, CKPT_ECORRUPT, "'%s' is not a JSON object", path);
  if (st == CKPT_OK)
    st = set_flag(doc, "use_ocdbt", use_ocdbt, true, err);
  /* use_zarr3 is added only when true: an item without it reads as zarr v2, as Orbax's own
   * older _METADATA does. */
  if (st == CKPT_OK)
    st = set_flag(doc, "use_zarr3", d->zarr3, d->zarr3, err);
  char *out = NULL;
  if (st == CKPT_OK)
    st = ckpt_json_dump(doc, &out, &len, err);
  if (st == CKPT_OK)
    st = write_listed(c, d, CKPT_METADATA_FILE, out, len, err);
  free(out);
  cJSON_Delete(doc);
  free(path);
  return st;
}

/* True for an entry of a PyTree item's directory that the conversion writes itself (or drops:
 * the source layout's files). params: the array leaves' names. */
static bool replaced_in_item(const char *name, const ckpt_pytree_meta *meta) {
  if (strcmp(name, CKPT_METADATA_FILE) == 0 || strcmp(name, CKPT_CHECKSUMS_FILE) == 0 ||
      strcmp(name, CKPT_STRINGS_FILE) == 0 || strcmp(name, CKPT_PACKED_INDEX_FILE) == 0 ||
      strncmp(name, CKPT_PACKED_INDEX_FILE ".", sizeof CKPT_PACKED_INDEX_FILE) == 0 ||
      strcmp(name, CKPT_OCDBT_MANIFEST_FILE) == 0 || strcmp(name, CKPT_OCDBT_DATA_DIR) == 0 ||
      strncmp(name, CKPT_OCDBT_PROCESS_DIR_PREFIX, strlen(CKPT_OCDBT_PROCESS_DIR_PREFIX)) == 0)
    return true;
  for (size_t i = 0; i < meta->n; i++)
    if (ckpt_meta_is_array_type(meta->entries[i].value_type) &&
        strcmp(meta->entries[i].param, name) == 0)
      return true;
  return false;
}

/* Writes the PyTree item src as dst (created) in c's layout: arrays, _METADATA,
 * _strings.json and _CHECKSUMS. The caller copies the item's other files. */
static ckpt_status convert_item(conv_ctx *c, const char *src, const char *dst,
                                const ckpt_pytree_meta *meta, ckpt_error *err) {
  item_src s = {.dir = src, .every_chunk = meta->store_array_data_equal_to_fill_value};
  item_dst d = {.dir = dst, .zarr3 = c->zarr == 3 || (c->zarr == 0 && meta->use_zarr3)};
  size_t n_arrays = 0;
  for (size_t i = 0; i < meta->n; i++)
    n_arrays += ckpt_meta_is_array_type(meta->entries[i].value_type);
  ckpt_status st = ckpt_packed_read(c->io, src, &s.packed, err);
  if (st == CKPT_OK)
    st = ckpt_packed_check_meta(&s.packed, meta, src, err);
  if (st == CKPT_OK)
    st = ckpt_checksums_read(c->io, src, &s.sums, err);
  if (st == CKPT_OK && meta->use_ocdbt && n_arrays > 0)
    st = ckpt_ocdbt_open(c->io, src, &s.db, err);
  if (st == CKPT_OK && (d.sums = ckpt_checksums_new()) == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  if (st == CKPT_OK && c->ocdbt && n_arrays > 0)
    st = ckpt_ocdbt_builder_new(c->io, dst, 0, &d.builder, err);
  for (size_t i = 0; st == CKPT_OK && i < meta->n; i++)
    if (ckpt_meta_is_array_type(meta->entries[i].value_type))
      st = convert_array(c, &s, &d, meta->entries[i].param, err);
  if (st == CKPT_OK && d.builder != NULL) {
    st = ckpt_ocdbt_builder_finish(d.builder, err);
    const ckpt_write_file_sum *fs = NULL;
    size_t nf = st == CKPT_OK ? ckpt_ocdbt_builder_files(d.builder, &fs) : 0;
    for (size_t i = 0; st == CKPT_OK && i < nf; i++)
      if (!ckpt_checksums_add_file(d.sums, fs[i].rel, fs[i].crc, fs[i].bytes))
        st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    c->files += nf;
  }
  if (st == CKPT_OK)
    st = convert_metadata(c, &s, &d, c->ocdbt && n_arrays > 0, err);
  void *strings = NULL;
  size_t slen = 0;
  if (st == CKPT_OK)
    st = read_optional(c, src, CKPT_STRINGS_FILE, &strings, &slen, err);
  if (st == CKPT_OK && strings != NULL) {
    ckpt_file_sum sum;
    ckpt_file_sum_of(&sum, strings, slen);
    st = ckpt_checksums_check_file(s.sums, src, CKPT_STRINGS_FILE, &sum, err);
    if (st == CKPT_OK)
      st = write_listed(c, &d, CKPT_STRINGS_FILE, strings, slen, err);
  }
  free(strings);
  char *text = NULL;
  size_t len = 0;
  if (st == CKPT_OK)
    st = ckpt_json_dump_compact(d.sums, &text, &len, err);
  char *spath = st == CKPT_OK ? ckpt_path_join(dst, CKPT_CHECKSUMS_FILE) : NULL;
  if (st == CKPT_OK && spath == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  if (st == CKPT_OK)
    st = ckpt_io_write_file(c->io, spath, text, len, true, err);
  c->files++;
  free(spath);
  free(text);
  ckpt_ocdbt_builder_free(d.builder);
  cJSON_Delete(d.sums);
  ckpt_ocdbt_close(s.db);
  ckpt_checksums_free(s.sums);
  ckpt_packed_free(&s.packed);
  c->items++;
  return st;
}

/* ---------------------------------------------------------------- the copy */

/* A new _CHECKPOINT_CHECKSUMS for the checkpoint dst (converted from src): the files src's
 * manifest lists, with the CRCs and sizes they have in dst (converted items have a new
 * _CHECKSUMS; everything else was copied). */
static ckpt_status rewrite_manifest(conv_ctx *c, const char *src, const char *dst,
                                    ckpt_error *err) {
  ckpt_checksums *m = NULL;
  ckpt_status st = ckpt_checksums_read_named(c->io, src, CKPT_MANIFEST_FILE, &m, err);
  if (st != CKPT_OK || m == NULL)
    return st;
  cJSON *files = cJSON_CreateObject();
  if (files == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  for (size_t i = 0; st == CKPT_OK && i < ckpt_checksums_n_files(m); i++) {
    const char *rel = ckpt_checksums_file_name(m, i);
    char *path = ckpt_path_join(dst, rel);
    void *data = NULL;
    size_t n = 0;
    if (path == NULL)
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    if (st == CKPT_OK)
      st = ckpt_io_read_file(c->io, path, META_MAX, &data, &n, err);
    if (st == CKPT_OK && !ckpt_checksums_add_chunk(files, rel, ckpt_crc32c(0, data, n), n))
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    free(data);
    free(path);
  }
  if (st == CKPT_OK)
    st = ckpt_manifest_write(c->io, dst, files, err);
  if (st == CKPT_OK) { /* written without fsync (the commit makes it durable in a save) */
    char *path = ckpt_path_join(dst, CKPT_MANIFEST_FILE);
    int fd = -1;
    if (path == NULL)
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    if (st == CKPT_OK)
      st = ckpt_io_open(c->io, path, O_RDONLY | O_NOFOLLOW, 0, &fd, err);
    if (st == CKPT_OK)
      st = ckpt_io_fsync(c->io, fd, path, err);
    if (fd >= 0)
      ckpt_io_close(c->io, fd, path, NULL);
    free(path);
  }
  cJSON_Delete(files);
  ckpt_checksums_free(m);
  c->files++;
  return st;
}

/* Copies the directory src to dst (created here), converting PyTree items on the way. */
static ckpt_status copy_dir(conv_ctx *c, const char *src, const char *dst, int depth,
                            ckpt_error *err) {
  if (depth > MAX_DEPTH)
    return ckpt_error_set(err, CKPT_EINVAL, "'%s': directories nested deeper than %d", src,
                          MAX_DEPTH);
  ckpt_status st = ckpt_io_mkdir(c->io, dst, err);
  char **names = NULL;
  size_t n = 0;
  if (st == CKPT_OK)
    st = ckpt_io_list_dir(c->io, src, &names, &n, err);
  bool item = false, manifest = false;
  for (size_t i = 0; st == CKPT_OK && i < n; i++) {
    item |= strcmp(names[i], CKPT_METADATA_FILE) == 0;
    manifest |= strcmp(names[i], CKPT_MANIFEST_FILE) == 0;
  }
  ckpt_pytree_meta meta;
  memset(&meta, 0, sizeof meta);
  if (st == CKPT_OK && item)
    st = ckpt_pytree_meta_read(c->io, src, &meta, err);
  if (st == CKPT_OK && item)
    st = convert_item(c, src, dst, &meta, err);
  for (size_t i = 0; st == CKPT_OK && i < n; i++) {
    if (item && replaced_in_item(names[i], &meta))
      continue;
    if (manifest && strcmp(names[i], CKPT_MANIFEST_FILE) == 0)
      continue; /* rewritten below, once the rest is there */
    char *s = ckpt_path_join(src, names[i]), *d = ckpt_path_join(dst, names[i]);
    ckpt_io_kind kind = CKPT_IO_KIND_MISSING;
    uint64_t size = 0;
    if (s == NULL || d == NULL)
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    if (st == CKPT_OK)
      st = ckpt_io_stat(c->io, s, &kind, &size, err);
    if (st == CKPT_OK) {
      if (kind == CKPT_IO_KIND_DIR)
        st = copy_dir(c, s, d, depth + 1, err);
      else if (kind == CKPT_IO_KIND_FILE)
        st = copy_file(c, s, d, size, err);
      else if (kind != CKPT_IO_KIND_MISSING)
        st = ckpt_error_set(err, CKPT_EUNSAFE,
                            "'%s' is %s; a checkpoint holds only files and "
                            "directories",
                            s, kind == CKPT_IO_KIND_SYMLINK ? "a symlink" : "not a regular file");
    }
    free(s);
    free(d);
  }
  ckpt_pytree_meta_free(&meta);
  ckpt_io_free_names(names, n);
  if (st == CKPT_OK && manifest)
    st = rewrite_manifest(c, src, dst, err);
  if (st == CKPT_OK)
    st = ckpt_io_fsync_dir(c->io, dst, err);
  return st;
}

static int run(const char *cmd, const char *to, bool ocdbt, int zarr, bool json,
               const char *src_arg, const char *dst_arg) {
  conv_ctx c = {.io = ckpt_io_default(), .ocdbt = ocdbt, .zarr = zarr};
  ckpt_error err = CKPT_ERROR_INIT;
  char *src = ckpt_path_normalize(src_arg), *dst = ckpt_path_normalize(dst_arg);
  char *tmp = dst ? cli_asprintf("%s%s", dst, CKPT_TMP_SUFFIX) : NULL;
  if (src == NULL || dst == NULL || tmp == NULL) {
    free(src);
    free(dst);
    free(tmp);
    fprintf(stderr, "ckpt: out of memory\n");
    return CLI_EXIT_ERROR;
  }
  ckpt_io_kind kind = CKPT_IO_KIND_MISSING, dkind = CKPT_IO_KIND_MISSING;
  uint64_t size;
  ckpt_status st = CKPT_OK;
  st = ckpt_io_stat(c.io, src, &kind, &size, &err);
  if (st == CKPT_OK && kind != CKPT_IO_KIND_DIR)
    st = ckpt_error_set(&err, CKPT_ENOENT, "%s: '%s' %s", cmd, src,
                        kind == CKPT_IO_KIND_MISSING ? "does not exist" : "is not a directory");
  if (st == CKPT_OK)
    st = ckpt_io_stat(c.io, dst, &dkind, &size, &err);
  if (st == CKPT_OK && dkind != CKPT_IO_KIND_MISSING)
    st = ckpt_error_set(&err, CKPT_EEXIST, "%s: '%s' already exists", cmd, dst);
  if (st == CKPT_OK)
    st = ckpt_io_stat(c.io, tmp, &dkind, &size, &err);
  if (st == CKPT_OK && dkind != CKPT_IO_KIND_MISSING)
    st = ckpt_error_set(&err, CKPT_EEXIST,
                        "%s: '%s' exists (a leftover of an interrupted run? `ckpt gc` "
                        "removes it)",
                        cmd, tmp);
  if (st == CKPT_OK) {
    st = copy_dir(&c, src, tmp, 0, &err);
    if (st == CKPT_OK)
      st = ckpt_io_rename(c.io, tmp, dst, &err);
    if (st == CKPT_OK) {
      char *parent = cli_asprintf("%s/..", dst);
      if (parent != NULL)
        st = ckpt_io_fsync_dir(c.io, parent, &err);
      free(parent);
    } else {
      ckpt_io_remove_tree(c.io, tmp, NULL);
    }
  }
  int rc = CLI_EXIT_OK;
  if (st != CKPT_OK) {
    rc = cli_report(&err);
  } else if (json) {
    bool oom = false;
    cJSON *doc = cJSON_CreateObject();
    cli_jadd(doc, "src", cJSON_CreateString(src), &oom);
    cli_jadd(doc, "dst", cJSON_CreateString(dst), &oom);
    cli_jadd(doc, "to", cJSON_CreateString(to), &oom);
    cli_jadd(doc, "items", cli_juint(c.items), &oom);
    cli_jadd(doc, "arrays", cli_juint(c.arrays), &oom);
    cli_jadd(doc, "chunks", cli_juint(c.chunks), &oom);
    cli_jadd(doc, "recoded", cli_juint(c.recoded), &oom);
    cli_jadd(doc, "files", cli_juint(c.files), &oom);
    rc = cli_json_emit(doc, oom);
  } else {
    printf(
        "%s -> %s (%s): %llu PyTree item%s, %llu arrays (%llu chunks, %llu re-encoded) "
        "converted, %llu files written\n",
        src, dst, to, (unsigned long long)c.items, c.items == 1 ? "" : "s",
        (unsigned long long)c.arrays, (unsigned long long)c.chunks, (unsigned long long)c.recoded,
        (unsigned long long)c.files);
  }
  free(src);
  free(dst);
  free(tmp);
  return rc;
}

/* `convert` and its alias `unpack` (= --to zarr2, no --to option). */
static int convert_main(int argc, char **argv, bool unpack) {
  static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                       {"to", required_argument, NULL, 't'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *cmd = unpack ? "unpack" : "convert";
  bool json = false;
  const char *to_arg = unpack ? "zarr2" : NULL;
  opterr = 0;
  optind = 1;
  int ch;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
      case 'j':
        json = true;
        break;
      case 't':
        if (unpack)
          return cli_usage_error(cmd, "unknown option '--to' (use 'ckpt convert --to')");
        to_arg = optarg;
        break;
      case 'h':
        fputs(unpack ? help_unpack : help_convert, stdout);
        return CLI_EXIT_OK;
      default:
        return cli_usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
    }
  }
  if (argc - optind != 2)
    return cli_usage_error(cmd, "expected SRC and DST");
  if (to_arg == NULL)
    return cli_usage_error(cmd, "--to zarr2|zarr3|ocdbt|ocdbt+zarr2|ocdbt+zarr3 is required");
  static const struct {
    const char *name;
    bool ocdbt;
    int zarr;
  } layouts[] = {{"zarr2", false, 2},
                 {"zarr3", false, 3},
                 {"ocdbt", true, 0},
                 {"ocdbt+zarr2", true, 2},
                 {"ocdbt+zarr3", true, 3}};
  for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++)
    if (strcmp(to_arg, layouts[i].name) == 0)
      return run(cmd, layouts[i].name, layouts[i].ocdbt, layouts[i].zarr, json, argv[optind],
                 argv[optind + 1]);
  return cli_usage_error(cmd, "--to '%s': expected zarr2, zarr3, ocdbt, ocdbt+zarr2 or ocdbt+zarr3",
                         to_arg);
}

int cli_cmd_convert(int argc, char **argv) {
  return convert_main(argc, argv, false);
}

int cli_cmd_unpack(int argc, char **argv) {
  return convert_main(argc, argv, true);
}
