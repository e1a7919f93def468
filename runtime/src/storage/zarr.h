/* storage/zarr.h — zarr v2 arrays as TensorStore writes them for Orbax (non-OCDBT layout).
 *
 * One array is a directory holding `.zarray` (JSON metadata) and one file per chunk, named by
 * the chunk's grid indices joined by the dimension separator ("0.0", "1.3"; "0" for a 0-d
 * array). Chunks are stored in C order at their full chunk shape — edge chunks are padded —
 * either raw or as one zstd frame. This header has the pure parts: metadata encoding and
 * parsing, chunk-grid arithmetic, chunk-shape choice and box copies. The files: zarr_io.h,
 * zarr_read.c and zarr_write.h. */
#ifndef CKPT_STORAGE_ZARR_H
#define CKPT_STORAGE_ZARR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ckpt/array.h"
#include "ckpt/desc.h"
#include "ckpt/dtype.h"
#include "ckpt/error.h"
#include "storage/zarr3.h"

#define CKPT_ZARR_METADATA_FILE ".zarray"
/* Largest .zarray accepted on read: real ones are a few hundred bytes. */
#define CKPT_ZARR_METADATA_MAX (1u << 20)

typedef struct ckpt_zarr_meta {
  ckpt_dtype dtype;
  bool big_endian; /* read-only support: ">f4" etc. written by other tools */
  int ndim;
  int64_t shape[CKPT_MAX_RANK];
  int64_t chunks[CKPT_MAX_RANK];
  ckpt_compression compressor; /* NONE or ZSTD (DEFAULT is never stored here) */
  int level;                   /* zstd level */
  char separator;              /* '.' or '/' */
  unsigned char fill[16];      /* fill value as one element of dtype (zeros for null) */
  bool fill_is_null;
  /* zarr v3 (zarr3.h): zarr.json, chunk keys by v3.key_default, chunks encoded by v3's codec
   * chain; compressor, level and big_endian are then unused (NONE, 0, false). */
  bool zarr3;
  ckpt_zarr3_spec v3;
} ckpt_zarr_meta;

/* The metadata file of an array: ".zarray" or, for zarr v3, "zarr.json". */
static inline const char *ckpt_zarr_meta_file(const ckpt_zarr_meta *m) {
  return m->zarr3 ? CKPT_ZARR3_METADATA_FILE : CKPT_ZARR_METADATA_FILE;
}

/* The .zarray text TensorStore writes: compact JSON, keys in sorted order, e.g.
 * {"chunks":[4,8],"compressor":null,"dimension_separator":".","dtype":"<f4","fill_value":null,
 *  "filters":null,"order":"C","shape":[4,8],"zarr_format":2}. *json malloc'ed, caller frees. */
ckpt_status ckpt_zarr_meta_encode(const ckpt_zarr_meta *m, char **json, size_t *len,
                                  ckpt_error *err);
/* Parses a .zarray document (text/json.h's reader: errors say "<where>:line:col: ..."); where
 * names the file in messages. Unsupported features (order
 * "F", filters, compressors other than zstd, non-numeric dtypes) are CKPT_EUNSUPPORTED, malformed
 * documents CKPT_ECORRUPT. */
ckpt_status ckpt_zarr_meta_decode(const char *json, size_t len, const char *where,
                                  ckpt_zarr_meta *m, ckpt_error *err);
/* The same for a document already parsed (the "zarray" objects of a _PACKED index). */
ckpt_status ckpt_zarr_meta_from_json(const cJSON *doc, const char *where, ckpt_zarr_meta *m,
                                     ckpt_error *err);

/* Shared with zarr3_meta.c: a list of dimensions (positive: chunk sizes) of at most
 * CKPT_MAX_RANK integers, and a fill value as NumPy/zarr JSON writes it (numbers, true/false,
 * "NaN", "Infinity", "-Infinity", [re, im] for complex; null leaves m->fill zero and sets
 * fill_is_null), into m->fill for m->dtype. */
ckpt_status ckpt_zarr_parse_dims(const cJSON *doc, const char *key, const char *where, int *ndim,
                                 int64_t *out, bool positive, ckpt_error *err);
ckpt_status ckpt_zarr_fill_from_json(const cJSON *fv, ckpt_zarr_meta *m, const char *where,
                                     ckpt_error *err);

/* Number of chunks along each dimension (ceil(shape / chunks)); returns the total (1 for 0-d,
 * 0 when a dimension is empty). */
uint64_t ckpt_zarr_grid(const ckpt_zarr_meta *m, int64_t *grid);
/* Elements in one (full, padded) chunk. */
uint64_t ckpt_zarr_chunk_elements(const ckpt_zarr_meta *m);
/* The chunk's key ("0.1"; zarr v3: "c/0/1" or "0.1") into buf (at least CKPT_ZARR_KEY_MAX
 * bytes). */
#define CKPT_ZARR_KEY_MAX (CKPT_MAX_RANK * 21 + 4)
void ckpt_zarr_chunk_key(const ckpt_zarr_meta *m, const int64_t *index, char *buf);
/* Linear chunk number (C order over the grid) → grid index. */
void ckpt_zarr_chunk_index(const ckpt_zarr_meta *m, const int64_t *grid, uint64_t linear,
                           int64_t *index);
/* The part of the array a chunk covers: offset index*chunks, extent clipped to the shape. */
void ckpt_zarr_chunk_box(const ckpt_zarr_meta *m, const int64_t *index, int64_t *offset,
                         int64_t *extent);

/* Chooses a chunk shape for storing `array` (its replica-0 shards) as dtype elements of
 * elem_size bytes: every chunk lies inside one shard, and shards larger than target_bytes are
 * split (shard_axes first, then the outermost axes, keeping chunks as contiguous as possible)
 * so that the parts can be written and read in parallel. Also checks that the replica-0 shards
 * are disjoint and cover the array (name is used in messages). */
ckpt_status ckpt_zarr_choose_chunks(const ckpt_array *array, size_t elem_size,
                                    uint64_t target_bytes, const int32_t *shard_axes,
                                    size_t n_shard_axes, const char *name, int64_t *chunks,
                                    ckpt_error *err);

/* Copies a box of shape `region` from src to dst, converting dtype on the way. The box
 * starts at soff inside src (a C-order array of shape sshape) and at doff inside dst (of shape
 * dshape). Runs that are contiguous in both are copied with one memcpy/convert. */
void ckpt_box_copy(int ndim, const int64_t *region, void *dst, ckpt_dtype ddt,
                   const int64_t *dshape, const int64_t *doff, const void *src, ckpt_dtype sdt,
                   const int64_t *sshape, const int64_t *soff);
/* Fills a box of dst with one element value (elem_size bytes). */
void ckpt_box_fill(int ndim, const int64_t *region, void *dst, size_t elem_size,
                   const int64_t *dshape, const int64_t *doff, const void *value);
/* True when the box (region at off inside shape) is one contiguous byte range in C order. */
bool ckpt_box_contiguous(int ndim, const int64_t *region, const int64_t *shape);
/* Element offset of off inside a C-order array of shape. */
uint64_t ckpt_box_offset(int ndim, const int64_t *shape, const int64_t *off);
/* Intersection of [ao, ao+ae) and [bo, bo+be) per dimension; false when empty. */
bool ckpt_box_intersect(int ndim, const int64_t *ao, const int64_t *ae, const int64_t *bo,
                        const int64_t *be, int64_t *io, int64_t *ie);

/* Swaps each element of a big-endian buffer to host order (complex: each half). */
void ckpt_zarr_byteswap(ckpt_dtype dt, void *buf, size_t n);

#endif
