/* test_zarr3.c — zarr v3 building blocks (storage/zarr3.h): zarr.json variants (short codec
 * names, fill values as numbers, names and hex bits, v2 and default keys, attributes,
 * extensions that need not be understood), malformed and unsupported documents (each error
 * names the file and the key), encode → decode, chunk keys, and the codecs on hand-built bytes:
 * big-endian bytes, transpose, crc32c, a shard with a missing inner chunk and its index at
 * either end, and damaged shards (index CRC, offsets out of range, truncation) reported with
 * the array and the chunk, never a crash. The same codecs against an independent peer:
 * tests/interop/test_interop_zarr3.c. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "storage/zarr.h"
#include "util/crc32c.h"

static const char *ARRAY_HEAD =
    "{\"zarr_format\":3,\"node_type\":\"array\",\"shape\":[4,6],\"data_type\":\"%s\","
    "\"chunk_grid\":{\"name\":\"regular\",\"configuration\":{\"chunk_shape\":[4,3]}},"
    "\"chunk_key_encoding\":{\"name\":\"default\"},\"fill_value\":%s,\"codecs\":%s%s}";

static char *doc(const char *dtype, const char *fill, const char *codecs, const char *extra) {
  char *s = NULL;
  cr_assert(asprintf(&s, ARRAY_HEAD, dtype, fill, codecs, extra) > 0);
  return s;
}

static ckpt_status parse(const char *text, ckpt_zarr_meta *m, ckpt_error *err) {
  *err = (ckpt_error)CKPT_ERROR_INIT;
  return ckpt_zarr3_meta_decode(text, strlen(text), "arr/zarr.json", m, err);
}

#define LE "{\"name\":\"bytes\",\"configuration\":{\"endian\":\"little\"}}"

Test(zarr3, parse_minimal_and_keys) {
  ckpt_zarr_meta m;
  ckpt_error err;
  char *d = doc("float32", "\"NaN\"", "[" LE "]",
                ",\"attributes\":{\"k\":[1]},"
                "\"dimension_names\":[\"a\",null],\"ext\":{\"must_understand\":false}");
  cr_assert_eq(parse(d, &m, &err), CKPT_OK, "%s", err.message);
  cr_assert(m.zarr3);
  cr_assert_eq(m.dtype, CKPT_DTYPE_FLOAT32);
  cr_assert_eq(m.ndim, 2);
  cr_assert_eq(m.chunks[1], 3);
  float f;
  memcpy(&f, m.fill, 4);
  cr_assert(isnan(f));
  cr_assert_str_eq(ckpt_zarr_meta_file(&m), "zarr.json");
  int64_t idx[2] = {1, 12};
  char key[CKPT_ZARR_KEY_MAX];
  ckpt_zarr_chunk_key(&m, idx, key);
  cr_assert_str_eq(key, "c/1/12");
  m.v3.key_default = false;
  m.separator = '.';
  ckpt_zarr_chunk_key(&m, idx, key);
  cr_assert_str_eq(key, "1.12");
  m.v3.key_default = true;
  m.ndim = 0;
  ckpt_zarr_chunk_key(&m, idx, key);
  cr_assert_str_eq(key, "c");
  free(d);
}

Test(zarr3, fill_values) {
  struct {
    const char *dtype, *fill;
    unsigned char want[16];
    size_t n;
  } cases[] = {
      {"int32", "-3", {0xfd, 0xff, 0xff, 0xff}, 4},
      {"uint64", "18446744073709551615", {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 8},
      {"bool", "true", {1}, 1},
      {"float32", "\"Infinity\"", {0, 0, 0x80, 0x7f}, 4},
      {"float32", "\"-Infinity\"", {0, 0, 0x80, 0xff}, 4},
      {"float32", "\"0x7fc00001\"", {0x01, 0, 0xc0, 0x7f}, 4},
      {"float64", "-0.5", {0, 0, 0, 0, 0, 0, 0xe0, 0xbf}, 8},
      {"bfloat16", "\"0x3f80\"", {0x80, 0x3f}, 2},
      {"float16", "1.0", {0x00, 0x3c}, 2},
      {"complex64", "[1.0,\"0x80000000\"]", {0, 0, 0x80, 0x3f, 0, 0, 0, 0x80}, 8},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    const char *bytes = strcmp(cases[i].dtype, "bool") == 0 ? "[\"bytes\"]" : "[" LE "]";
    char *d = doc(cases[i].dtype, cases[i].fill, bytes, "");
    ckpt_zarr_meta m;
    ckpt_error err;
    cr_assert_eq(parse(d, &m, &err), CKPT_OK, "%s: %s", cases[i].fill, err.message);
    cr_assert_eq(memcmp(m.fill, cases[i].want, cases[i].n), 0, "%s %s", cases[i].dtype,
                 cases[i].fill);
    /* and the encoder writes a fill value that parses back to the same bits */
    char *txt = NULL;
    size_t len = 0;
    cr_assert_eq(ckpt_zarr3_meta_encode(&m, &txt, &len, &err), CKPT_OK, "%s", err.message);
    ckpt_zarr_meta back;
    cr_assert_eq(parse(txt, &back, &err), CKPT_OK, "%s: %s", txt, err.message);
    cr_assert_eq(memcmp(back.fill, m.fill, cases[i].n), 0, "%s", txt);
    free(txt);
    free(d);
  }
}

Test(zarr3, encode_decode_round_trip_orbax_chain) {
  /* Orbax's state `a` (int32[8]) of its zarr3 checkpoint: the encoder writes zarr.json byte for
   * byte as Orbax (TensorStore) wrote it there */
  ckpt_zarr_meta m;
  memset(&m, 0, sizeof m);
  m.dtype = CKPT_DTYPE_INT32;
  m.ndim = 1;
  m.shape[0] = 8;
  m.chunks[0] = 8;
  ckpt_zarr3_set_orbax(&m, 3, '/');
  char *txt = NULL;
  size_t len = 0;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_zarr3_meta_encode(&m, &txt, &len, &err), CKPT_OK);
  cr_assert_str_eq(
      txt,
      "{\"chunk_grid\":{\"configuration\":{\"chunk_shape\":[8]},\"name\":\"regular\"},"
      "\"chunk_key_encoding\":{\"name\":\"default\"},\"codecs\":[{\"configuration\":{"
      "\"chunk_shape\":[8],\"codecs\":[{\"configuration\":{\"endian\":\"little\"},\"name\":"
      "\"bytes\"},{\"configuration\":{\"checksum\":false,\"level\":3},\"name\":\"zstd\"}],"
      "\"index_codecs\":[{\"configuration\":{\"endian\":\"little\"},\"name\":\"bytes\"},"
      "{\"name\":\"crc32c\"}]},\"name\":\"sharding_indexed\"}],\"data_type\":\"int32\","
      "\"fill_value\":0,\"node_type\":\"array\",\"shape\":[8],\"zarr_format\":3}");
  free(txt);
  /* a bfloat16 rank-3 array with ckpt's directory keys ("c.0.1"): the separator is written */
  m.dtype = CKPT_DTYPE_BFLOAT16;
  m.ndim = 3;
  int64_t shape[3] = {10, 4, 7}, chunks[3] = {5, 4, 7};
  memcpy(m.shape, shape, sizeof shape);
  memcpy(m.chunks, chunks, sizeof chunks);
  ckpt_zarr3_set_orbax(&m, 3, '.');
  cr_assert_eq(ckpt_zarr3_meta_encode(&m, &txt, &len, &err), CKPT_OK);
  cr_assert(strstr(txt, "\"chunk_key_encoding\":{\"configuration\":{\"separator\":\".\"},"
                        "\"name\":\"default\"}"),
            "%s", txt);
  ckpt_zarr_meta back;
  cr_assert_eq(parse(txt, &back, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(back.dtype, m.dtype);
  cr_assert_eq(memcmp(back.chunks, m.chunks, sizeof chunks), 0);
  cr_assert_eq(back.v3.codecs.n, 1);
  cr_assert_eq(back.v3.inner_codecs.n, 2);
  cr_assert_eq(back.v3.inner_codecs.c[1].level, 3);
  cr_assert_eq(back.v3.index_codecs.c[1].id, CKPT_ZARR3_CRC32C);
  cr_assert(!back.v3.index_at_start);
  free(txt);
}

Test(zarr3, malformed_and_unsupported_documents) {
  struct {
    const char *text;
    ckpt_status code;
    const char *needle;
  } cases[] = {
      {"[]", CKPT_ECORRUPT, "not a JSON object"},
      {"{\"zarr_format\":2}", CKPT_EUNSUPPORTED, "zarr_format"},
      {"{\"zarr_format\":3,\"node_type\":\"group\"}", CKPT_EUNSUPPORTED, "group"},
      {"{\"zarr_format\":3,\"node_type\":\"array\",\"shape\":[1],\"data_type\":\"float8_e4m3\"}",
       CKPT_EUNSUPPORTED, "float8_e4m3"},
      {"{\"zarr_format\":3,\"node_type\":\"array\",\"shape\":[-1],\"data_type\":\"int8\"}",
       CKPT_ECORRUPT, "shape"},
      {"{\"zarr_format\":3,\"node_type\":\"array\",\"shape\":[1],\"data_type\":\"int8\","
       "\"chunk_grid\":{\"name\":\"rectilinear\",\"configuration\":{}}}",
       CKPT_EUNSUPPORTED, "rectilinear"},
      {"{\"zarr_format\":3,\"node_type\":\"array\",\"shape\":[1],\"data_type\":\"int8\","
       "\"chunk_grid\":{\"name\":\"regular\",\"configuration\":{\"chunk_shape\":[0]}}}",
       CKPT_ECORRUPT, "chunk_shape"},
      {"{\"zarr_format\":3,\"node_type\":\"array\",\"shape\":[1],\"data_type\":\"int8\","
       "\"unknown\":1}",
       CKPT_EUNSUPPORTED, "unknown"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    ckpt_zarr_meta m;
    ckpt_error err;
    cr_assert_eq(parse(cases[i].text, &m, &err), cases[i].code, "%s: %s", cases[i].text,
                 err.message);
    cr_assert(strstr(err.message, "arr/zarr.json") && strstr(err.message, cases[i].needle), "%s",
              err.message);
  }
  struct {
    const char *dtype, *fill, *codecs, *extra;
    ckpt_status code;
    const char *needle;
  } chains[] = {
      {"int32", "0", "[{\"name\":\"lz5\"}]", "", CKPT_EUNSUPPORTED, "lz5"},
      {"int32", "0", "[]", "", CKPT_ECORRUPT, "codecs"},
      {"int32", "0", "[{\"name\":\"zstd\"}]", "", CKPT_ECORRUPT, "out of order"},
      {"int32", "0", "[" LE "," LE "]", "", CKPT_ECORRUPT, "out of order"},
      {"int32", "0", "[\"bytes\"]", "", CKPT_ECORRUPT, "endian"},
      {"int32", "0", "[{\"name\":\"transpose\",\"configuration\":{\"order\":[0,0]}}," LE "]", "",
       CKPT_ECORRUPT, "permutation"},
      {"int32", "null", "[" LE "]", "", CKPT_ECORRUPT, "fill_value"},
      {"int32", "true", "[" LE "]", "", CKPT_ECORRUPT, "fill_value"},
      {"float32", "\"0x7fc0\"", "[" LE "]", "", CKPT_ECORRUPT, "hex"},
      {"int32", "0", "[" LE "]", ",\"storage_transformers\":[{\"name\":\"x\"}]", CKPT_EUNSUPPORTED,
       "storage_transformers"},
      {"int32", "0",
       "[{\"name\":\"sharding_indexed\",\"configuration\":{\"chunk_shape\":[2,3],\"codecs\":[" LE
       "],\"index_codecs\":[" LE ",{\"name\":\"zstd\"}]}}]",
       "", CKPT_EUNSUPPORTED, "fixed size"},
      {"int32", "0",
       "[{\"name\":\"sharding_indexed\",\"configuration\":{\"chunk_shape\":[2],\"codecs\":[" LE
       "],\"index_codecs\":[" LE "]}}]",
       "", CKPT_ECORRUPT, "rank"},
      {"int32", "0",
       "[{\"name\":\"sharding_indexed\",\"configuration\":{\"chunk_shape\":[2,3],\"codecs\":["
       "{\"name\":\"sharding_indexed\",\"configuration\":{}}],\"index_codecs\":[" LE "]}}]",
       "", CKPT_EUNSUPPORTED, "nested"},
      {"int32", "0",
       "[{\"name\":\"sharding_indexed\",\"configuration\":{\"chunk_shape\":[2,3],\"codecs\":[" LE
       "],\"index_codecs\":[" LE "],\"index_location\":\"middle\"}}]",
       "", CKPT_ECORRUPT, "index_location"},
  };
  for (size_t i = 0; i < sizeof chains / sizeof *chains; i++) {
    char *d = doc(chains[i].dtype, chains[i].fill, chains[i].codecs, chains[i].extra);
    ckpt_zarr_meta m;
    ckpt_error err;
    cr_assert_eq(parse(d, &m, &err), chains[i].code, "%s: %s", d, err.message);
    cr_assert(strstr(err.message, "arr/zarr.json") && strstr(err.message, chains[i].needle),
              "%s: %s", chains[i].needle, err.message);
    free(d);
  }
}

/* ---------------------------------------------------------------- codecs on hand-built bytes */

static ckpt_zarr_meta meta_of(const char *dtype, const char *codecs) {
  char *d = doc(dtype, "0", codecs, "");
  ckpt_zarr_meta m;
  ckpt_error err;
  cr_assert_eq(parse(d, &m, &err), CKPT_OK, "%s", err.message);
  free(d);
  return m;
}

static void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static void put_crc(unsigned char *p, const unsigned char *data, size_t n) {
  uint32_t c = ckpt_crc32c(0, data, n);
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(c >> (8 * i));
}

Test(zarr3, big_endian_transposed_bytes) {
  /* chunk 4x3 int16, stored transposed (3x4) big-endian: element (r, c) = r*10+c */
  ckpt_zarr_meta m = meta_of("int16",
                             "[{\"name\":\"transpose\",\"configuration\":{\"order\":[1,0]}},"
                             "{\"name\":\"bytes\",\"configuration\":{\"endian\":\"big\"}},"
                             "{\"name\":\"crc32c\"}]");
  unsigned char stored[4 * 3 * 2 + 4];
  for (int c = 0; c < 3; c++)
    for (int r = 0; r < 4; r++) {
      int v = r * 10 + c;
      stored[(c * 4 + r) * 2] = (unsigned char)(v >> 8);
      stored[(c * 4 + r) * 2 + 1] = (unsigned char)v;
    }
  put_crc(stored + 24, stored, 24);
  int16_t out[12];
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(
      ckpt_zarr3_decode_chunk(&m, stored, sizeof stored, out, NULL, NULL, "w", "c/0/0", &err),
      CKPT_OK, "%s", err.message);
  for (int r = 0; r < 4; r++)
    for (int c = 0; c < 3; c++)
      cr_assert_eq(out[r * 3 + c], r * 10 + c);
  void *enc = NULL;
  size_t en = 0;
  cr_assert_eq(ckpt_zarr3_encode_chunk(&m, out, &enc, &en, "w", "c/0/0", &err), CKPT_OK);
  cr_assert_eq(en, sizeof stored);
  cr_assert_eq(memcmp(enc, stored, en), 0, "the encoder writes the same bytes");
  free(enc);
  /* a flipped bit: the crc32c codec names the array and the chunk */
  stored[5] ^= 4;
  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(
      ckpt_zarr3_decode_chunk(&m, stored, sizeof stored, out, NULL, NULL, "w", "c/0/0", &err),
      CKPT_ECORRUPT);
  cr_assert(
      strstr(err.message, "'w'") && strstr(err.message, "'c/0/0'") && strstr(err.message, "crc32c"),
      "%s", err.message);
  /* wrong length for the bytes codec */
  put_crc(stored + 20, stored, 20);
  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_zarr3_decode_chunk(&m, stored, 24, out, NULL, NULL, "w", "c/0/0", &err),
               CKPT_ECORRUPT);
  cr_assert(strstr(err.message, "20 bytes, expected 24"), "%s", err.message);
}

/* A 4x3 int32 chunk as a shard of 2x3 inner chunks (raw little-endian), the second inner chunk
 * not stored; index (bytes + crc32c) at the start or the end. */
static size_t build_shard(unsigned char *buf, bool at_start) {
  size_t isz = 2 * 16 + 4, data = 6 * 4;
  unsigned char index[36];
  size_t doff = at_start ? isz : 0;
  put_u64(index, doff);
  put_u64(index + 8, data);
  put_u64(index + 16, UINT64_MAX);
  put_u64(index + 24, UINT64_MAX);
  put_crc(index + 32, index, 32);
  for (int i = 0; i < 6; i++) {
    int32_t v = 100 + i;
    memcpy(buf + doff + (size_t)i * 4, &v, 4);
  }
  memcpy(buf + (at_start ? 0 : data), index, isz);
  return isz + data;
}

static const char *SHARD_CODECS =
    "[{\"name\":\"sharding_indexed\",\"configuration\":{\"chunk_shape\":[2,3],\"codecs\":[" LE
    "],\"index_codecs\":[" LE ",\"crc32c\"],\"index_location\":\"%s\"}}]";

Test(zarr3, shard_missing_inner_chunk_index_start_and_end) {
  for (int start = 0; start < 2; start++) {
    char codecs[512];
    snprintf(codecs, sizeof codecs, SHARD_CODECS, start ? "start" : "end");
    char *d = doc("int32", "-7", codecs, "");
    ckpt_zarr_meta m;
    ckpt_error err;
    cr_assert_eq(parse(d, &m, &err), CKPT_OK, "%s", err.message);
    free(d);
    unsigned char shard[64];
    size_t n = build_shard(shard, start);
    int32_t out[12];
    cr_assert_eq(ckpt_zarr3_decode_chunk(&m, shard, n, out, NULL, NULL, "w", "c/0/0", &err),
                 CKPT_OK, "%s", err.message);
    for (int i = 0; i < 6; i++)
      cr_assert_eq(out[i], 100 + i);
    for (int i = 6; i < 12; i++)
      cr_assert_eq(out[i], -7, "the missing inner chunk reads as the fill value");
    /* only the rows wanted: the first inner chunk is not decoded */
    int32_t part[12];
    for (int i = 0; i < 12; i++)
      part[i] = 555;
    int64_t woff[2] = {2, 0}, wext[2] = {2, 3};
    cr_assert_eq(ckpt_zarr3_decode_chunk(&m, shard, n, part, woff, wext, "w", "c/0/0", &err),
                 CKPT_OK);
    cr_assert_eq(part[0], 555);
    cr_assert_eq(part[6], -7);
    /* C's encoder: every inner chunk stored, index where the metadata says */
    void *enc = NULL;
    size_t en = 0;
    cr_assert_eq(ckpt_zarr3_encode_chunk(&m, out, &enc, &en, "w", "c/0/0", &err), CKPT_OK);
    cr_assert_eq(en, 2 * 24 + 36);
    uint64_t *pairs = NULL, n_inner = 0;
    cr_assert_eq(ckpt_zarr3_shard_index(&m, enc, en, &pairs, &n_inner, "w", "c/0/0", &err), CKPT_OK,
                 "%s", err.message);
    cr_assert_eq(n_inner, 2);
    cr_assert_eq(pairs[0], start ? 36u : 0u);
    cr_assert_eq(pairs[3], 24u);
    free(pairs);
    int32_t again[12];
    cr_assert_eq(ckpt_zarr3_decode_chunk(&m, enc, en, again, NULL, NULL, "w", "c/0/0", &err),
                 CKPT_OK);
    cr_assert_eq(memcmp(again, out, sizeof out), 0);
    free(enc);
  }
}

Test(zarr3, damaged_shards_are_errors_naming_array_and_chunk) {
  char codecs[512];
  snprintf(codecs, sizeof codecs, SHARD_CODECS, "end");
  char *d = doc("int32", "0", codecs, "");
  ckpt_zarr_meta m;
  ckpt_error err;
  cr_assert_eq(parse(d, &m, &err), CKPT_OK, "%s", err.message);
  free(d);
  unsigned char good[64], bad[64];
  size_t n = build_shard(good, false);
  int32_t out[12];
  /* 1: a bit of the index flipped */
  memcpy(bad, good, n);
  bad[n - 36 + 9] ^= 1;
  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_zarr3_decode_chunk(&m, bad, n, out, NULL, NULL, "w", "c/1/0", &err),
               CKPT_ECORRUPT);
  cr_assert(strstr(err.message, "'w'") && strstr(err.message, "'c/1/0'") &&
                strstr(err.message, "shard index is corrupt"),
            "%s", err.message);
  /* 2: truncated */
  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_zarr3_decode_chunk(&m, good, 20, out, NULL, NULL, "w", "c/1/0", &err),
               CKPT_ECORRUPT);
  cr_assert(strstr(err.message, "fewer than its index"), "%s", err.message);
  /* 3: an offset beyond the shard, with a valid CRC */
  uint64_t offs[] = {n, UINT64_MAX - 3, 5};
  uint64_t lens[] = {1, 8, n};
  for (int i = 0; i < 3; i++) {
    memcpy(bad, good, n);
    put_u64(bad + n - 36, offs[i]);
    put_u64(bad + n - 36 + 8, lens[i]);
    put_crc(bad + n - 4, bad + n - 36, 32);
    err = (ckpt_error)CKPT_ERROR_INIT;
    cr_assert_eq(ckpt_zarr3_decode_chunk(&m, bad, n, out, NULL, NULL, "w", "c/1/0", &err),
                 CKPT_ECORRUPT);
    cr_assert(strstr(err.message, "outside the shard"), "%s", err.message);
  }
  /* 4: a stored inner chunk of the wrong size */
  memcpy(bad, good, n);
  put_u64(bad + n - 36 + 8, 20);
  put_crc(bad + n - 4, bad + n - 36, 32);
  err = (ckpt_error)CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_zarr3_decode_chunk(&m, bad, n, out, NULL, NULL, "w", "c/1/0", &err),
               CKPT_ECORRUPT);
  cr_assert(strstr(err.message, "inner chunk 0") && strstr(err.message, "20 bytes"), "%s",
            err.message);
}

Test(zarr3, compressed_garbage_is_an_error) {
  const char *chains[] = {
      "[" LE ",{\"name\":\"zstd\"}]",
      "[" LE ",{\"name\":\"gzip\"}]",
      "[" LE
      ",{\"name\":\"blosc\",\"configuration\":{\"cname\":\"lz4\",\"clevel\":1,"
      "\"shuffle\":\"noshuffle\",\"typesize\":4,\"blocksize\":0}}]",
  };
  for (size_t i = 0; i < 3; i++) {
    ckpt_zarr_meta m = meta_of("int32", chains[i]);
    unsigned char junk[40];
    for (size_t k = 0; k < sizeof junk; k++)
      junk[k] = (unsigned char)(k * 37 + 11);
    int32_t out[12];
    ckpt_error err = CKPT_ERROR_INIT;
    cr_assert_eq(
        ckpt_zarr3_decode_chunk(&m, junk, sizeof junk, out, NULL, NULL, "w", "c/0/0", &err),
        CKPT_ECORRUPT, "%s", chains[i]);
    cr_assert(strstr(err.message, "'w'") && strstr(err.message, "'c/0/0'"), "%s", err.message);
    /* and the real thing round-trips */
    int32_t raw[12];
    for (int k = 0; k < 12; k++)
      raw[k] = k * k;
    void *enc = NULL;
    size_t en = 0;
    err = (ckpt_error)CKPT_ERROR_INIT;
    cr_assert_eq(ckpt_zarr3_encode_chunk(&m, raw, &enc, &en, "w", "c/0/0", &err), CKPT_OK);
    cr_assert_eq(ckpt_zarr3_decode_chunk(&m, enc, en, out, NULL, NULL, "w", "c/0/0", &err), CKPT_OK,
                 "%s", err.message);
    cr_assert_eq(memcmp(out, raw, sizeof raw), 0);
    /* a frame that decodes to more than a chunk */
    int32_t big[24] = {0};
    ckpt_zarr_meta m2 = m;
    m2.chunks[0] = 8;
    void *enc2 = NULL;
    size_t en2 = 0;
    cr_assert_eq(ckpt_zarr3_encode_chunk(&m2, big, &enc2, &en2, "w", "c/0/0", &err), CKPT_OK);
    err = (ckpt_error)CKPT_ERROR_INIT;
    cr_assert_eq(ckpt_zarr3_decode_chunk(&m, enc2, en2, out, NULL, NULL, "w", "c/0/0", &err),
                 CKPT_ECORRUPT, "%s", chains[i]);
    free(enc);
    free(enc2);
  }
}
