/* storage/zarr3.h — zarr v3 arrays: `zarr.json` and the codec pipeline (Orbax's use_zarr3).
 *
 * A zarr v3 array is a directory (or, under OCDBT, a key prefix) holding `zarr.json` and one
 * stored object per chunk of a regular grid, keyed "c/0/1" (chunk_key_encoding "default",
 * separator "/" or ".") or "0.1" ("v2"). Every chunk is stored at its full chunk shape (edge
 * chunks padded, like v2) and encoded by the array's codec chain: array→array codecs
 * (transpose), exactly one array→bytes codec (bytes, or sharding_indexed: the chunk is a shard,
 * a grid of inner chunks each encoded by its own chain, located by an index of (offset, nbytes)
 * pairs encoded by the index chain at the start or the end), then bytes→bytes codecs (zstd,
 * blosc, gzip, crc32c). Orbax writes one sharding_indexed codec whose inner chunk is the whole
 * shard: inner codecs little-endian bytes + zstd, index codecs bytes + crc32c, index at the end.
 *
 * The decoded chunk is the same C-order buffer a v2 chunk is, so zarr_read.c reads v3 arrays
 * through its v2 path and calls ckpt_zarr3_decode_chunk on the stored bytes it loaded; the
 * writer calls ckpt_zarr3_encode_chunk on the raw chunk (zarr_write.c). The parsed chain lives
 * inside ckpt_zarr_meta (its `v3` member), by value: metadata is copied freely and owns
 * nothing. Everything read from a file is bounds-checked; a malformed document or chunk is
 * CKPT_ECORRUPT, a codec or feature ckpt does not implement CKPT_EUNSUPPORTED naming it. */
#ifndef CKPT_STORAGE_ZARR3_H
#define CKPT_STORAGE_ZARR3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ckpt/array.h"
#include "ckpt/dtype.h"
#include "ckpt/error.h"

#define CKPT_ZARR3_METADATA_FILE "zarr.json"
/* Codecs per chain: real chains have 1-4. */
#define CKPT_ZARR3_MAX_CODECS 6

typedef enum ckpt_zarr3_codec_id {
  CKPT_ZARR3_BYTES = 1, /* array→bytes */
  CKPT_ZARR3_SHARDING,  /* array→bytes: sharding_indexed */
  CKPT_ZARR3_TRANSPOSE, /* array→array */
  CKPT_ZARR3_ZSTD,      /* bytes→bytes from here on */
  CKPT_ZARR3_BLOSC,
  CKPT_ZARR3_GZIP,
  CKPT_ZARR3_CRC32C
} ckpt_zarr3_codec_id;

typedef struct ckpt_zarr3_codec {
  uint8_t id;                       /* ckpt_zarr3_codec_id */
  bool big_endian;                  /* bytes */
  bool checksum;                    /* zstd: a frame checksum */
  uint8_t shuffle;                  /* blosc: 0 none, 1 byte, 2 bit */
  uint8_t typesize;                 /* blosc */
  int16_t level;                    /* zstd, gzip, blosc clevel */
  char cname[8];                    /* blosc compressor ("lz4", "zstd", ...) */
  uint32_t blocksize;               /* blosc (0: automatic) */
  uint8_t order[CKPT_MAX_RANK + 1]; /* transpose: encoded dim i is decoded dim order[i] */
} ckpt_zarr3_codec;

typedef struct ckpt_zarr3_chain {
  int n;
  ckpt_zarr3_codec c[CKPT_ZARR3_MAX_CODECS];
} ckpt_zarr3_chain;

/* The v3 part of ckpt_zarr_meta (zarr.h): set when meta.zarr3 is true. */
typedef struct ckpt_zarr3_spec {
  bool key_default;        /* chunk_key_encoding "default" ("c" prefix), else "v2" */
  ckpt_zarr3_chain codecs; /* the array's chain */
  /* sharding_indexed (at most one, in codecs; not nested): */
  int64_t inner[CKPT_MAX_RANK]; /* inner chunk shape, in the sharding codec's (transposed)
                                 * coordinates */
  ckpt_zarr3_chain inner_codecs;
  ckpt_zarr3_chain index_codecs;
  bool index_at_start;
} ckpt_zarr3_spec;

struct ckpt_zarr_meta;

/* ---------------------------------------------------------------- zarr.json */

/* Parses a zarr.json document into m (m->zarr3 true); where names the file in messages.
 * Groups, storage transformers, data types other than ckpt's (bool, [u]int8..64, float16/32/64,
 * bfloat16, complex64/128), grids other than "regular", unknown codecs and extensions that
 * must be understood are CKPT_EUNSUPPORTED; malformed documents CKPT_ECORRUPT. */
ckpt_status ckpt_zarr3_meta_decode(const char *json, size_t len, const char *where,
                                   struct ckpt_zarr_meta *m, ckpt_error *err);
ckpt_status ckpt_zarr3_meta_from_json(const cJSON *doc, const char *where, struct ckpt_zarr_meta *m,
                                      ckpt_error *err);
/* zarr.json for m (compact JSON; *json malloc'ed, caller frees). */
ckpt_status ckpt_zarr3_meta_encode(const struct ckpt_zarr_meta *m, char **json, size_t *len,
                                   ckpt_error *err);
/* Makes m a zarr v3 array with Orbax's chain (m's dtype, shape and chunks set): fill value 0,
 * "default" chunk keys with separator ('/' as Orbax, or '.': "c.0.1", one file per chunk with
 * no nested directories), one sharding_indexed codec (inner chunk = chunk; little-endian
 * bytes, then zstd at level unless level < 0 (no zstd); index: bytes + crc32c, at the end). */
void ckpt_zarr3_set_orbax(struct ckpt_zarr_meta *m, int level, char separator);

/* ---------------------------------------------------------------- chunks */

/* Upper bound on the stored size of one chunk of m: a larger object is not a chunk ckpt
 * would decode (checked before anything is allocated from its size). */
uint64_t ckpt_zarr3_stored_limit(const struct ckpt_zarr_meta *m);

/* Decodes the stored bytes of one chunk into out (the full chunk, C order, m->dtype,
 * ckpt_zarr_chunk_elements(m) elements). Missing inner chunks of a shard read as the fill
 * value. With want_off/want_ext (chunk coordinates; NULL: all), inner chunks outside that box
 * are not decoded and their part of out is left as it was. name and key name the array and the
 * chunk in messages. */
ckpt_status ckpt_zarr3_decode_chunk(const struct ckpt_zarr_meta *m, const void *stored, size_t n,
                                    void *out, const int64_t *want_off, const int64_t *want_ext,
                                    const char *name, const char *key, ckpt_error *err);
/* Encodes one raw chunk (C order, full chunk shape) into *out (malloc'ed; caller frees). */
ckpt_status ckpt_zarr3_encode_chunk(const struct ckpt_zarr_meta *m, const void *raw, void **out,
                                    size_t *out_n, const char *name, const char *key,
                                    ckpt_error *err);

/* The decoded shard index of a stored chunk of a sharded array: *pairs (malloc'ed, caller frees)
 * holds 2 * *n_inner uint64 (offset, nbytes) in C order over the inner grid, each either
 * (2^64-1, 2^64-1) for a missing inner chunk or checked to lie inside the shard. */
ckpt_status ckpt_zarr3_shard_index(const struct ckpt_zarr_meta *m, const void *shard, size_t n,
                                   uint64_t **pairs, uint64_t *n_inner, const char *name,
                                   const char *key, ckpt_error *err);

/* "zarr3 " + the first compressing codec of m's chains ("zarr3 zstd", "zarr3 blosc", "zarr3 gzip")
 * or "zarr3 none", for listings. */
const char *ckpt_zarr3_compression(const struct ckpt_zarr_meta *m);

/* The codec's name as zarr.json spells it. */
const char *ckpt_zarr3_codec_name(int id);

#endif
