/* storage/zarr_read.c — reading zarr chunks into destination boxes (restore with
 * resharding). zarr v3 chunks take the same path: their stored bytes are loaded like a
 * compressed v2 chunk's and decoded by one hook (decode_v3, storage/zarr3.h).
 *
 * A read request names the destination boxes; planning lists each stored chunk that
 * intersects any of them exactly once, and each chunk is then read by one task, which copies
 * it into every box it touches. When a chunk lands contiguously in a single destination and
 * needs no decoding, it is pread straight into the destination buffer; otherwise it is read
 * whole into per-worker scratch memory, verified, decompressed and scattered. Every size and
 * checksum is checked: a missing, short or corrupt chunk is an error naming the array and the
 * chunk, never silent zeros (unless the checkpoint predates store_array_data_equal_to_fill_value,
 * where a missing chunk means "fill value", as in TensorStore). */
#include "storage/zarr_io.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "util/crc32c.h"
#include "storage/ocdbt/ocdbt.h"
#include "storage/packed.h"
#include "util/path.h"
#include "io/read_copy.h"
#include "text/json.h"

/* The piece a direct read puts in place before checksumming it: small enough to still be in
 * the core's L2 cache (1 MiB on the project's machine, 512 KiB on many others) when the CRC
 * reads it back, large enough that the extra read calls cost nothing (4,000 for 1 GiB).
 * Measured on the llm state: 256 KiB pieces made a hot restore with checksums as fast as one
 * without; checksumming whole chunks after reading them cost 25-40% more. */
#define CRC_PIECE ((size_t)256 << 10)

/* Upper bound on a compressed chunk's size: anything larger is not a zstd frame of the
 * expected content. */
static uint64_t compressed_limit(uint64_t raw) {
  return ZSTD_compressBound(raw) + 4096;
}

/* ---------------------------------------------------------------- planning */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

ckpt_status ckpt_zarr_plan_read(ckpt_zarr_read_req *req, ckpt_zarr_chunk_task **tasks,
                                size_t *n_tasks, size_t *cap_tasks, ckpt_error *err) {
  const ckpt_zarr_meta *m = req->meta;
  int nd = m->ndim;
  size_t esize = ckpt_dtype_size(req->dtype);
  int64_t zero[CKPT_MAX_RANK] = {0};
  uint64_t *list = NULL;
  size_t n = 0, cap = 0;
  ckpt_status st = CKPT_OK;
  for (size_t i = 0; i < req->n_dest; i++) {
    ckpt_zarr_dest *d = &req->dest[i];
    int64_t io[CKPT_MAX_RANK], ie[CKPT_MAX_RANK];
    bool inside = true, any = ckpt_box_intersect(nd, d->offset, d->shape, zero, m->shape, io, ie);
    for (int k = 0; k < nd; k++)
      if (d->offset[k] + d->shape[k] > m->shape[k])
        inside = false;
    if (!inside && !d->zeroed) {
      /* Pad: whatever the stored array does not cover reads as zeros. */
      static const unsigned char z[16];
      ckpt_box_fill(nd, d->shape, d->data, esize, d->shape, zero, z);
      d->zeroed = true;
    }
    if (!any && nd > 0)
      continue;
    int64_t lo[CKPT_MAX_RANK], cnt[CKPT_MAX_RANK], grid[CKPT_MAX_RANK];
    ckpt_zarr_grid(m, grid);
    uint64_t count = 1;
    for (int k = 0; k < nd; k++) {
      lo[k] = io[k] / m->chunks[k];
      int64_t hi = (io[k] + ie[k] - 1) / m->chunks[k];
      cnt[k] = hi - lo[k] + 1;
      count *= (uint64_t)cnt[k];
    }
    if (count > (SIZE_MAX / sizeof *list) - n) {
      st = ckpt_error_set(err, CKPT_ENOMEM, "array '%s': too many chunks to read", req->name);
      goto fail;
    }
    if (n + count > cap) {
      size_t nc = cap ? cap : 16;
      while (nc < n + count)
        nc *= 2;
      uint64_t *g = realloc(list, nc * sizeof *g);
      if (g == NULL) {
        st = ckpt_error_set(err, CKPT_ENOMEM, "array '%s': out of memory planning the read",
                            req->name);
        goto fail;
      }
      list = g;
      cap = nc;
    }
    int64_t idx[CKPT_MAX_RANK] = {0};
    for (uint64_t c = 0; c < count; c++) {
      uint64_t lin = 0;
      for (int k = 0; k < nd; k++)
        lin = lin * (uint64_t)grid[k] + (uint64_t)(lo[k] + idx[k]);
      list[n++] = lin;
      for (int k = nd - 1; k >= 0; k--) {
        if (++idx[k] < cnt[k])
          break;
        idx[k] = 0;
      }
    }
  }
  if (n > 1)
    qsort(list, n, sizeof *list, cmp_u64);
  size_t u = 0;
  for (size_t i = 0; i < n; i++)
    if (u == 0 || list[u - 1] != list[i])
      list[u++] = list[i];
  if (*n_tasks + u > *cap_tasks) {
    size_t nc = *cap_tasks ? *cap_tasks : 16;
    while (nc < *n_tasks + u)
      nc *= 2;
    ckpt_zarr_chunk_task *t = realloc(*tasks, nc * sizeof *t);
    if (t == NULL) {
      st = ckpt_error_set(err, CKPT_ENOMEM, "array '%s': out of memory planning the read",
                          req->name);
      goto fail;
    }
    *tasks = t;
    *cap_tasks = nc;
  }
  for (size_t i = 0; i < u; i++) {
    (*tasks)[*n_tasks].req = req;
    (*tasks)[*n_tasks].linear = list[i];
    (*n_tasks)++;
  }
fail:
  free(list);
  return st;
}

/* ---------------------------------------------------------------- one chunk */

typedef struct chunk_ctx {
  ckpt_io *io;
  const char *dir;
  const char *name;
  const ckpt_zarr_meta *m;
  const ckpt_packed_array *packed; /* or NULL: a zarr directory */
  ckpt_ocdbt *ocdbt;               /* or NULL: not an OCDBT value */
  const uint8_t *mem;              /* OCDBT inline value: the stored bytes (no file) */
  uint64_t base;                   /* offset of the chunk's bytes in its file (packed, OCDBT) */
  uint64_t linear;                 /* the chunk's number in the grid */
  int fd;                          /* packed, OCDBT: the data file's shared descriptor (else -1) */
  int64_t index[CKPT_MAX_RANK];
  int64_t off[CKPT_MAX_RANK], ext[CKPT_MAX_RANK];
  char key[CKPT_ZARR_KEY_MAX];
  char *path;
  uint64_t raw_bytes;  /* decoded size of a full chunk */
  uint64_t file_bytes; /* size on disk */
  bool missing;
  bool has_crc;
  uint32_t crc;
} chunk_ctx;

/* Chunk keys with the '/' separator are nested directories: each must be a real directory,
 * so a symlink inside the array cannot redirect the read. */
static ckpt_status check_nested(chunk_ctx *c, ckpt_error *err) {
  if (c->m->separator != '/' || strchr(c->key, '/') == NULL)
    return CKPT_OK;
  size_t dl = strlen(c->dir);
  for (size_t i = 0; c->key[i]; i++) {
    if (c->key[i] != '/')
      continue;
    char save = c->path[dl + 1 + i];
    c->path[dl + 1 + i] = '\0';
    ckpt_io_kind kind;
    uint64_t size;
    ckpt_status st = ckpt_io_stat(c->io, c->path, &kind, &size, err);
    bool ok = st == CKPT_OK && (kind == CKPT_IO_KIND_DIR || kind == CKPT_IO_KIND_MISSING);
    c->path[dl + 1 + i] = save;
    if (st != CKPT_OK)
      return st;
    if (!ok)
      return ckpt_error_set(err, CKPT_EUNSAFE,
                            "array '%s': chunk '%s': a path component is not a directory", c->name,
                            c->key);
  }
  return CKPT_OK;
}

/* Checks a stored chunk's size against the metadata (raw: exact; zstd: bounded). */
static ckpt_status check_size(chunk_ctx *c, ckpt_error *err) {
  const ckpt_zarr_meta *m = c->m;
  if (m->zarr3) {
    uint64_t limit = ckpt_zarr3_stored_limit(m);
    if (c->file_bytes > limit)
      return ckpt_error_set(err, CKPT_ECORRUPT,
                            "array '%s': chunk '%s' has %llu bytes, more than its codecs can make "
                            "of %llu bytes",
                            c->name, c->key, (unsigned long long)c->file_bytes,
                            (unsigned long long)c->raw_bytes);
    return CKPT_OK;
  }
  if (m->compressor == CKPT_COMPRESSION_NONE && c->file_bytes != c->raw_bytes)
    return ckpt_error_set(
        err, CKPT_ECORRUPT, "array '%s': chunk '%s' has %llu bytes, expected %llu (%s)", c->name,
        c->key, (unsigned long long)c->file_bytes, (unsigned long long)c->raw_bytes,
        c->file_bytes < c->raw_bytes ? "truncated" : "too long");
  if (m->compressor != CKPT_COMPRESSION_NONE && c->file_bytes > compressed_limit(c->raw_bytes))
    return ckpt_error_set(err, CKPT_ECORRUPT,
                          "array '%s': chunk '%s' has %llu bytes, too many for a zstd frame of "
                          "%llu bytes",
                          c->name, c->key, (unsigned long long)c->file_bytes,
                          (unsigned long long)c->raw_bytes);
  return CKPT_OK;
}

/* The descriptor to read the chunk from: the packed data file's, opened once per index and
 * shared by every chunk (pread is positioned, so threads do not interfere; thousands of small
 * chunks would otherwise cost an open and a close each), or the chunk file's own. */
static ckpt_status chunk_fd(chunk_ctx *c, int *fd, ckpt_error *err) {
  if (c->fd >= 0) {
    *fd = c->fd;
    return CKPT_OK;
  }
  return ckpt_io_open(c->io, c->path, O_RDONLY | O_NOFOLLOW, 0, fd, err);
}

static void chunk_fd_done(chunk_ctx *c, int fd) {
  if (fd != c->fd)
    ckpt_io_close(c->io, fd, c->path, NULL);
}

/* A packed chunk: a byte range of the item's data file, always with a CRC (the index's). */
static ckpt_status packed_open(chunk_ctx *c, ckpt_error *err) {
  const char *path;
  const ckpt_packed_chunk *pc;
  ckpt_status st = ckpt_packed_locate(c->packed, c->linear, c->key, &path, &pc, err);
  if (st != CKPT_OK)
    return st;
  c->path = strdup(path);
  if (c->path == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  st = ckpt_packed_fd(c->packed, pc->file, &c->fd, err);
  if (st != CKPT_OK)
    return st;
  c->base = pc->offset;
  c->file_bytes = pc->nbytes;
  c->has_crc = true;
  c->crc = pc->crc;
  return check_size(c, err);
}

/* The chunk's _CHECKSUMS entry, if any: its size must match, its CRC is checked on read. */
static ckpt_status apply_checksum(chunk_ctx *c, const cJSON *checksums, bool require_checksums,
                                  ckpt_error *err) {
  const cJSON *ent = checksums ? cJSON_GetObjectItemCaseSensitive(checksums, c->key) : NULL;
  if (ent != NULL) {
    const cJSON *cv = cJSON_GetArrayItem(ent, 0), *bv = cJSON_GetArrayItem(ent, 1);
    /* Both read as exact integers: NaN passed a range check written as "< 0 || > max", and
     * converting it to uint32_t is undefined behaviour. */
    uint64_t crc = 0, bytes = 0;
    if (!cJSON_IsArray(ent) || !ckpt_json_get_uint64(cv, &crc) || crc > UINT32_MAX ||
        !ckpt_json_get_uint64(bv, &bytes))
      return ckpt_error_set(err, CKPT_ECORRUPT,
                            "array '%s': chunk '%s': malformed _CHECKSUMS entry", c->name, c->key);
    c->has_crc = true;
    c->crc = (uint32_t)crc;
    if (c->file_bytes != bytes)
      return ckpt_error_set(err, CKPT_ECORRUPT,
                            "array '%s': chunk '%s' has %llu bytes but %llu were written "
                            "(truncated or replaced)",
                            c->name, c->key, (unsigned long long)c->file_bytes,
                            (unsigned long long)bytes);
  } else if (require_checksums) {
    return ckpt_error_set(err, CKPT_ECORRUPT,
                          "array '%s': chunk '%s' has no checksum in _CHECKSUMS", c->name, c->key);
  }
  return CKPT_OK;
}

/* An OCDBT chunk: the value of key "<name>/<chunk key>", inline in the database or a byte
 * range of one of its data files (whose presence and size are checked here). */
static ckpt_status ocdbt_open(chunk_ctx *c, const cJSON *checksums, bool require_checksums,
                              bool missing_is_error, ckpt_error *err) {
  size_t nl = strlen(c->name), kl = strlen(c->key);
  char *okey = malloc(nl + 1 + kl + 1);
  if (okey == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  memcpy(okey, c->name, nl);
  okey[nl] = '/';
  memcpy(okey + nl + 1, c->key, kl + 1);
  size_t i;
  ckpt_status st = CKPT_OK;
  if (!ckpt_ocdbt_find(c->ocdbt, okey, &i)) {
    const char *dir = ckpt_ocdbt_dir(c->ocdbt);
    if (missing_is_error)
      st = ckpt_error_set(err, CKPT_EINCOMPLETE,
                          "array '%s': chunk '%s' is missing (no key '%s' in the OCDBT database "
                          "'%s')",
                          c->name, c->key, okey, dir);
    else if (checksums != NULL && cJSON_GetObjectItemCaseSensitive(checksums, c->key) != NULL)
      st = ckpt_error_set(err, CKPT_EINCOMPLETE,
                          "array '%s': chunk '%s' is missing (no key '%s' in the OCDBT database "
                          "'%s'), but _CHECKSUMS records it as written",
                          c->name, c->key, okey, dir);
    else
      c->missing = true;
    free(okey);
    return st;
  }
  const ckpt_ocdbt_value *v = ckpt_ocdbt_value_at(c->ocdbt, i);
  c->file_bytes = v->length;
  if (v->is_inline) {
    c->mem = v->bytes;
    c->path = okey; /* names the value in messages; there is no file */
    okey = NULL;
  } else {
    const char *path;
    st = ckpt_ocdbt_value_fd(c->ocdbt, v, okey, &c->fd, &path, err);
    if (st == CKPT_OK && (c->path = strdup(path)) == NULL)
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    c->base = v->offset;
  }
  free(okey);
  if (st == CKPT_OK)
    st = apply_checksum(c, checksums, require_checksums, err);
  return st == CKPT_OK ? check_size(c, err) : st;
}

/* Locates a chunk file and checks its size against the metadata and _CHECKSUMS. */
static ckpt_status chunk_open(chunk_ctx *c, const cJSON *checksums, bool require_checksums,
                              bool missing_is_error, ckpt_error *err) {
  const ckpt_zarr_meta *m = c->m;
  ckpt_zarr_chunk_key(m, c->index, c->key);
  ckpt_zarr_chunk_box(m, c->index, c->off, c->ext);
  c->raw_bytes = ckpt_zarr_chunk_elements(m) * ckpt_dtype_size(m->dtype);
  if (c->packed != NULL)
    return packed_open(c, err);
  if (c->ocdbt != NULL)
    return ocdbt_open(c, checksums, require_checksums, missing_is_error, err);
  c->path = ckpt_path_join(c->dir, c->key);
  if (c->path == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  ckpt_status st = check_nested(c, err);
  if (st != CKPT_OK)
    return st;
  ckpt_io_kind kind;
  st = ckpt_io_stat(c->io, c->path, &kind, &c->file_bytes, err);
  if (st != CKPT_OK)
    return st;
  if (kind == CKPT_IO_KIND_MISSING) {
    if (missing_is_error)
      return ckpt_error_set(err, CKPT_EINCOMPLETE, "array '%s': chunk '%s' is missing ('%s')",
                            c->name, c->key, c->path);
    /* A chunk _CHECKSUMS lists was written: whatever _METADATA says about fill values, its
     * absence is damage, never zeros. */
    if (checksums != NULL && cJSON_GetObjectItemCaseSensitive(checksums, c->key) != NULL)
      return ckpt_error_set(err, CKPT_EINCOMPLETE,
                            "array '%s': chunk '%s' is missing ('%s'), but _CHECKSUMS records it "
                            "as written",
                            c->name, c->key, c->path);
    c->missing = true;
    return CKPT_OK;
  }
  if (kind == CKPT_IO_KIND_SYMLINK)
    return ckpt_error_set(err, CKPT_EUNSAFE,
                          "array '%s': chunk '%s' is a symlink (not followed inside a checkpoint)",
                          c->name, c->key);
  if (kind != CKPT_IO_KIND_FILE)
    return ckpt_error_set(err, CKPT_ECORRUPT, "array '%s': chunk '%s' is not a regular file",
                          c->name, c->key);
  ckpt_status cst = apply_checksum(c, checksums, require_checksums, err);
  if (cst != CKPT_OK)
    return cst;
  return check_size(c, err);
}

static ckpt_status crc_mismatch(chunk_ctx *c, uint32_t got, ckpt_error *err) {
  return ckpt_error_set(err, CKPT_ECORRUPT,
                        "array '%s': chunk '%s' is corrupt (crc32c %08x, expected %08x)", c->name,
                        c->key, got, c->crc);
}

/* The decode hook for zarr v3: the stored bytes (file, already read and checked against
 * _CHECKSUMS) run through the array's codec chain into raw (storage/zarr3.h). want_off/ext: the
 * part of the chunk the caller copies out (NULL: all), so a shard decodes only those inner
 * chunks. */
static ckpt_status decode_v3(chunk_ctx *c, const unsigned char *file, unsigned char *raw,
                             const int64_t *want_off, const int64_t *want_ext, ckpt_error *err) {
  return ckpt_zarr3_decode_chunk(c->m, file, (size_t)c->file_bytes, raw, want_off, want_ext,
                                 c->name, c->key, err);
}

/* Reads the whole chunk into scratch and decodes it; *out points into scratch. */
static ckpt_status chunk_load(chunk_ctx *c, ckpt_scratch *scratch, const void **out,
                              const int64_t *want_off, const int64_t *want_ext, ckpt_error *err) {
  const ckpt_zarr_meta *m = c->m;
  bool comp = m->compressor != CKPT_COMPRESSION_NONE || m->zarr3;
  uint64_t need = comp ? c->raw_bytes + c->file_bytes : c->raw_bytes;
  if (need > SIZE_MAX)
    return ckpt_error_set(err, CKPT_ENOMEM, "array '%s': chunk '%s' too large", c->name, c->key);
  unsigned char *buf = ckpt_scratch_get(scratch, (size_t)need);
  if (buf == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "array '%s': cannot allocate %llu bytes for chunk '%s'",
                          c->name, (unsigned long long)need, c->key);
  unsigned char *file = comp ? buf + c->raw_bytes : buf;
  size_t got = 0;
  if (c->mem != NULL) {
    memcpy(file, c->mem, (size_t)c->file_bytes);
    got = (size_t)c->file_bytes;
  } else {
    int fd;
    ckpt_status st = chunk_fd(c, &fd, err);
    if (st != CKPT_OK)
      return st;
    st = ckpt_io_pread_all(c->io, fd, c->path, file, (size_t)c->file_bytes, c->base, &got, err);
    chunk_fd_done(c, fd);
    if (st != CKPT_OK)
      return st;
  }
  if (got != c->file_bytes)
    return ckpt_error_set(err, CKPT_ECORRUPT, "array '%s': chunk '%s' shrank while being read",
                          c->name, c->key);
  if (c->has_crc) {
    uint32_t crc = ckpt_crc32c(0, file, (size_t)c->file_bytes);
    if (crc != c->crc)
      return crc_mismatch(c, crc, err);
  }
  if (m->zarr3) {
    ckpt_status st = decode_v3(c, file, buf, want_off, want_ext, err);
    if (st != CKPT_OK)
      return st;
  } else if (comp) {
    ckpt_status st = ckpt_zarr_decompress_v2(file, (size_t)c->file_bytes, buf, c->raw_bytes,
                                             c->name, c->key, err);
    if (st != CKPT_OK)
      return st;
  }
  if (m->big_endian)
    ckpt_zarr_byteswap(m->dtype, buf, (size_t)(c->raw_bytes / ckpt_dtype_size(m->dtype)));
  *out = buf;
  return CKPT_OK;
}

/* Reads file bytes [foff + *done, foff + len) into dst + *done through a cache-resident
 * bounce buffer aligned like the file offset, checksumming each piece there, and copies it out
 * with non-temporal stores (io/read_copy.h says why: a destination misaligned with the
 * file offset makes the kernel's own copy 2-3x slower). *done and *crc advance as it goes. */
static ckpt_status read_through_bounce(chunk_ctx *c, int fd, unsigned char *dst, uint64_t foff,
                                       uint64_t len, uint64_t *done, uint32_t *crc,
                                       ckpt_scratch *scratch, ckpt_error *err) {
  unsigned char *raw = ckpt_scratch_get(scratch, CRC_PIECE + CKPT_READ_BOUNCE_SLACK);
  if (raw == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM,
                          "array '%s': chunk '%s': out of memory for a read buffer", c->name,
                          c->key);
  ckpt_status st = CKPT_OK;
  while (st == CKPT_OK && *done < len) {
    size_t n = len - *done < CRC_PIECE ? (size_t)(len - *done) : CRC_PIECE;
    unsigned char *bounce = ckpt_read_bounce(raw, foff + *done);
    size_t got = 0;
    st = ckpt_io_pread_all(c->io, fd, c->path, bounce, n, foff + *done, &got, err);
    if (st == CKPT_OK && got != n)
      st = ckpt_error_set(err, CKPT_ECORRUPT, "array '%s': chunk '%s' shrank while being read",
                          c->name, c->key);
    if (st != CKPT_OK)
      break;
    if (c->has_crc)
      *crc = ckpt_crc32c(*crc, bounce, n);
    ckpt_stream_copy(dst + *done, bounce, n);
    *done += n;
  }
  return st;
}

/* The direct path: the chunk's part for a single destination is one contiguous run in both
 * the file and the destination and needs no decoding, so pread puts it in place. With a
 * checksum the whole valid chunk must be wanted (the tail padding is read into scratch to
 * finish the CRC). */
static ckpt_status chunk_direct(chunk_ctx *c, ckpt_zarr_dest *d, const int64_t *io,
                                const int64_t *ie, ckpt_scratch *scratch, ckpt_error *err) {
  const ckpt_zarr_meta *m = c->m;
  int nd = m->ndim;
  size_t es = ckpt_dtype_size(m->dtype);
  int64_t rel_c[CKPT_MAX_RANK], rel_d[CKPT_MAX_RANK];
  uint64_t len = es;
  for (int k = 0; k < nd; k++) {
    rel_c[k] = io[k] - c->off[k];
    rel_d[k] = io[k] - d->offset[k];
    len *= (uint64_t)ie[k];
  }
  uint64_t foff = c->base + ckpt_box_offset(nd, m->chunks, rel_c) * es;
  uint64_t doff = ckpt_box_offset(nd, d->shape, rel_d) * es;
  unsigned char *dst = (unsigned char *)d->data + doff;
  int fd;
  ckpt_status st = chunk_fd(c, &fd, err);
  if (st != CKPT_OK)
    return st;
  size_t got = 0;
  uint32_t crc = 0;
  const size_t piece = 1u << 20;
  uint64_t done = 0;
  if (d->zeroed) {
    /* The destination is fresh zero memory: read through scratch block by block and copy only
     * blocks that are not zero, so holes and zero regions never fault destination pages in
     * (touching fresh memory dominates restore time here). Two dense blocks in a row switch to
     * reading the rest straight into place. */
    int dense = 0;
    while (st == CKPT_OK && done < len && dense < 2) {
      size_t n = len - done < piece ? (size_t)(len - done) : piece;
      unsigned char *tmp = ckpt_scratch_get(scratch, n);
      if (tmp == NULL) {
        st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
        break;
      }
      st = ckpt_io_pread_all(c->io, fd, c->path, tmp, n, foff + done, &got, err);
      if (st == CKPT_OK && got != n)
        st = ckpt_error_set(err, CKPT_ECORRUPT, "array '%s': chunk '%s' shrank while being read",
                            c->name, c->key);
      if (st != CKPT_OK)
        break;
      if (ckpt_zarr_all_zero(tmp, n)) {
        if (c->has_crc)
          crc = ckpt_crc32c_zeros(crc, n);
        dense = 0;
      } else {
        if (c->has_crc)
          crc = ckpt_crc32c(crc, tmp, n);
        memcpy(dst + done, tmp, n);
        dense++;
      }
      done += n;
    }
  }
  /* Straight into place. With a checksum, in pieces that fit in a core's L2 cache, each
   * checksummed right after it lands: checksumming a whole 64 MiB chunk after reading it would
   * fetch every byte from memory a second time. */
  const size_t step = c->has_crc ? CRC_PIECE : SIZE_MAX;
  if (st == CKPT_OK && done < len && ckpt_read_misaligned(dst + done, foff + done))
    st = read_through_bounce(c, fd, dst, foff, len, &done, &crc, scratch, err);
  while (st == CKPT_OK && done < len) {
    size_t n = len - done < step ? (size_t)(len - done) : step;
    st = ckpt_io_pread_all(c->io, fd, c->path, dst + done, n, foff + done, &got, err);
    if (st == CKPT_OK && got != n)
      st = ckpt_error_set(err, CKPT_ECORRUPT, "array '%s': chunk '%s' shrank while being read",
                          c->name, c->key);
    if (st == CKPT_OK && c->has_crc)
      crc = ckpt_crc32c(crc, dst + done, n);
    done += n;
  }
  if (st == CKPT_OK && c->has_crc) {
    uint64_t pos = foff + len, end = c->base + c->file_bytes;
    while (st == CKPT_OK && pos < end) {
      uint64_t left = end - pos;
      size_t n = left < piece ? (size_t)left : piece;
      void *tmp = ckpt_scratch_get(scratch, n);
      if (tmp == NULL) {
        st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
        break;
      }
      st = ckpt_io_pread_all(c->io, fd, c->path, tmp, n, pos, &got, err);
      if (st == CKPT_OK && got != n)
        st = ckpt_error_set(err, CKPT_ECORRUPT, "array '%s': chunk '%s' shrank while being read",
                            c->name, c->key);
      if (st == CKPT_OK)
        crc = ckpt_zarr_all_zero(tmp, n) ? ckpt_crc32c_zeros(crc, n) : ckpt_crc32c(crc, tmp, n);
      pos += n;
    }
  }
  chunk_fd_done(c, fd);
  if (st == CKPT_OK && c->has_crc && crc != c->crc)
    st = crc_mismatch(c, crc, err);
  return st;
}

ckpt_status ckpt_zarr_run_read(const ckpt_zarr_chunk_task *task, ckpt_scratch *scratch,
                               ckpt_error *err) {
  ckpt_zarr_read_req *req = task->req;
  const ckpt_zarr_meta *m = req->meta;
  int nd = m->ndim;
  chunk_ctx c;
  memset(&c, 0, sizeof c);
  c.io = req->io;
  c.dir = req->array_dir;
  c.packed = req->packed;
  c.ocdbt = req->ocdbt;
  c.fd = -1;
  c.name = req->name;
  c.m = m;
  int64_t grid[CKPT_MAX_RANK];
  ckpt_zarr_grid(m, grid);
  ckpt_zarr_chunk_index(m, grid, task->linear, c.index);
  c.linear = task->linear;
  ckpt_status st =
      chunk_open(&c, req->checksums, req->require_checksums, req->missing_is_error, err);
  if (st != CKPT_OK)
    goto done;

  /* Which destinations does this chunk touch? */
  size_t hits = 0, first = 0;
  int64_t fio[CKPT_MAX_RANK], fie[CKPT_MAX_RANK];
  for (size_t i = 0; i < req->n_dest; i++) {
    int64_t io[CKPT_MAX_RANK], ie[CKPT_MAX_RANK];
    if (nd == 0 ||
        ckpt_box_intersect(nd, c.off, c.ext, req->dest[i].offset, req->dest[i].shape, io, ie)) {
      if (hits++ == 0) {
        first = i;
        memcpy(fio, io, sizeof(int64_t) * (size_t)nd);
        memcpy(fie, ie, sizeof(int64_t) * (size_t)nd);
      }
    }
  }
  if (hits == 0)
    goto done;

  if (c.missing) {
    unsigned char fill[16];
    ckpt_dtype_convert(req->dtype, fill, m->dtype, m->fill, 1);
    for (size_t i = 0; i < req->n_dest; i++) {
      ckpt_zarr_dest *d = &req->dest[i];
      int64_t io[CKPT_MAX_RANK], ie[CKPT_MAX_RANK], rel[CKPT_MAX_RANK];
      if (nd > 0 && !ckpt_box_intersect(nd, c.off, c.ext, d->offset, d->shape, io, ie))
        continue;
      for (int k = 0; k < nd; k++)
        rel[k] = io[k] - d->offset[k];
      ckpt_box_fill(nd, ie, d->data, ckpt_dtype_size(req->dtype), d->shape, rel, fill);
    }
    goto done;
  }

  bool whole = true;
  for (int k = 0; k < nd; k++)
    whole &= fio[k] == c.off[k] && fie[k] == c.ext[k];
  if (hits == 1 && c.mem == NULL && m->compressor == CKPT_COMPRESSION_NONE && !m->big_endian &&
      !m->zarr3 && req->dtype == m->dtype && ckpt_box_contiguous(nd, fie, m->chunks) &&
      ckpt_box_contiguous(nd, fie, req->dest[first].shape) && (whole || !c.has_crc)) {
    st = chunk_direct(&c, &req->dest[first], fio, fie, scratch, err);
  } else {
    /* the part of the chunk any destination wants (relative to the chunk), for zarr v3 */
    int64_t wlo[CKPT_MAX_RANK], whi[CKPT_MAX_RANK], wext[CKPT_MAX_RANK];
    for (int k = 0; k < nd; k++) {
      wlo[k] = INT64_MAX;
      whi[k] = 0;
    }
    for (size_t i = 0; i < req->n_dest; i++) {
      int64_t io[CKPT_MAX_RANK], ie[CKPT_MAX_RANK];
      if (nd > 0 &&
          !ckpt_box_intersect(nd, c.off, c.ext, req->dest[i].offset, req->dest[i].shape, io, ie))
        continue;
      for (int k = 0; k < nd; k++) {
        wlo[k] = io[k] - c.off[k] < wlo[k] ? io[k] - c.off[k] : wlo[k];
        whi[k] = io[k] - c.off[k] + ie[k] > whi[k] ? io[k] - c.off[k] + ie[k] : whi[k];
      }
    }
    for (int k = 0; k < nd; k++)
      wext[k] = whi[k] - wlo[k];
    const void *buf;
    st = chunk_load(&c, scratch, &buf, wlo, wext, err);
    for (size_t i = 0; st == CKPT_OK && i < req->n_dest; i++) {
      ckpt_zarr_dest *d = &req->dest[i];
      int64_t io[CKPT_MAX_RANK], ie[CKPT_MAX_RANK], rd[CKPT_MAX_RANK], rc[CKPT_MAX_RANK];
      if (nd > 0 && !ckpt_box_intersect(nd, c.off, c.ext, d->offset, d->shape, io, ie))
        continue;
      for (int k = 0; k < nd; k++) {
        rd[k] = io[k] - d->offset[k];
        rc[k] = io[k] - c.off[k];
      }
      ckpt_box_copy(nd, ie, d->data, req->dtype, d->shape, rd, buf, m->dtype, m->chunks, rc);
    }
  }
  if (st == CKPT_OK) {
    __atomic_fetch_add(&req->chunks_read, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&req->bytes_read, c.file_bytes, __ATOMIC_RELAXED);
  }
done:
  free(c.path);
  return st;
}

ckpt_status ckpt_zarr_verify_chunk(ckpt_io *io, const char *array_dir,
                                   const ckpt_packed_array *packed, ckpt_ocdbt *ocdbt,
                                   const char *name, const ckpt_zarr_meta *m, uint64_t linear,
                                   const cJSON *checksums, bool require_checksums,
                                   bool missing_is_error, ckpt_scratch *scratch, ckpt_error *err) {
  chunk_ctx c;
  memset(&c, 0, sizeof c);
  c.io = io;
  c.dir = array_dir;
  c.packed = packed;
  c.ocdbt = ocdbt;
  c.fd = -1;
  c.name = name;
  c.m = m;
  int64_t grid[CKPT_MAX_RANK];
  ckpt_zarr_grid(m, grid);
  ckpt_zarr_chunk_index(m, grid, linear, c.index);
  c.linear = linear;
  ckpt_status st = chunk_open(&c, checksums, require_checksums, missing_is_error, err);
  const void *buf;
  if (st == CKPT_OK && !c.missing)
    st = chunk_load(&c, scratch, &buf, NULL, NULL, err);
  free(c.path);
  return st;
}
