/* storage/packed.h — ckpt's packed layout: many small arrays of one item in one data file.
 *
 * One zarr directory per array costs a mkdir, two files and their fsyncs per leaf, which for
 * thousands of small leaves dominates a save (docs/performance.md). With packing on
 * (ckpt_checkpointer_options.pack_arrays_up_to_bytes), arrays whose stored bytes are at most
 * the threshold are written instead as byte ranges of one data file, described by one index:
 *
 *   <item>/_PACKED     index: compact JSON, sorted keys
 *     {"arrays":{"<param>":{"chunks":{"<chunk key>":[file,offset,nbytes,crc32c],...},
 *                           "zarray":{...the .zarray the array would have had...}},...},
 *      "files":["_PACKED.0"],"format":"ckpt-packed","version":1}
 *   <item>/_PACKED.0   the chunks, each exactly as a zarr chunk file would hold it (raw C order
 *                      padded to the chunk shape, or one zstd frame), at 64-byte aligned offsets
 *
 * A packed array is therefore a zarr array whose chunk files are byte ranges: reading reuses
 * the zarr reader (storage/zarr_io.h, with ckpt_zarr_read_req.packed) for resharding, casts
 * and checks. docs/format.md ("Packed arrays") is the reference. Orbax and zarr-python cannot
 * read packed arrays; `ckpt convert` rewrites them as zarr directories or OCDBT. ckpt no longer
 * writes this layout (pack_arrays_up_to_bytes now selects OCDBT); this is its reader.
 *
 * Everything in the index is untrusted on read: types, ranges, file names, duplicates and
 * offsets past the end of the data file are rejected with errors naming the item, the array
 * and the file. */
#ifndef CKPT_STORAGE_PACKED_H
#define CKPT_STORAGE_PACKED_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ckpt/error.h"
#include "ckpt/io.h"
#include "storage/pytree_meta.h"
#include "storage/zarr.h"

#define CKPT_PACKED_INDEX_FILE "_PACKED"
#define CKPT_PACKED_DATA_FILE "_PACKED.0" /* the one data file the writer creates */
#define CKPT_PACKED_FORMAT "ckpt-packed"
#define CKPT_PACKED_VERSION 1
/* Chunk offsets are multiples of this: every element is naturally aligned in the file (the
 * largest element, complex128, has 16 bytes) at the cost of at most 63 bytes per chunk. Page
 * alignment would waste up to 4 KiB per scalar and buys nothing for buffered reads. */
#define CKPT_PACKED_ALIGN 64
/* Largest index accepted on read (about 150 bytes per array: millions of arrays). */
#define CKPT_PACKED_INDEX_MAX (512u << 20)
/* Most data files an index may name. */
#define CKPT_PACKED_MAX_FILES 4096

typedef struct ckpt_packed_file {
  char *name;        /* "_PACKED.<n>" */
  char *path;        /* <item>/<name> */
  ckpt_io_kind kind; /* as found when the index was read */
  uint64_t size;
  int fd; /* opened by the first ckpt_packed_fd, closed by ckpt_packed_free; -1 */
} ckpt_packed_file;

typedef struct ckpt_packed_chunk {
  uint64_t linear; /* chunk number in the array's grid (C order) */
  uint32_t file;   /* index into files */
  uint32_t crc;    /* CRC-32C of the nbytes stored bytes */
  uint64_t offset;
  uint64_t nbytes;
} ckpt_packed_chunk;

typedef struct ckpt_packed_array {
  char *param;
  ckpt_zarr_meta meta;
  size_t n_chunks;
  ckpt_packed_chunk *chunks;       /* sorted by linear, no duplicates */
  struct ckpt_packed_index *index; /* the index it belongs to (for its files) */
} ckpt_packed_array;

typedef struct ckpt_packed_index {
  ckpt_io *io;        /* the data files' descriptors are opened and closed through it */
  pthread_mutex_t mu; /* guards the lazy opens of ckpt_packed_fd */
  bool mu_init;
  bool present; /* the item has a _PACKED file */
  uint32_t file_crc; /* of _PACKED as read (for _CHECKSUMS) */
  uint64_t file_bytes;
  size_t n_files;
  ckpt_packed_file *files;
  size_t n_arrays;
  ckpt_packed_array *arrays; /* sorted by param, no duplicates */
} ckpt_packed_index;

/* Reads and validates dir/_PACKED and stats the data files it names. No _PACKED: *idx is empty
 * (present false) and CKPT_OK. *idx is owned by the caller (ckpt_packed_free), also on failure.
 * *idx must not be moved afterwards (arrays point back to it). */
ckpt_status ckpt_packed_read(ckpt_io *io, const char *dir, ckpt_packed_index *idx, ckpt_error *err);
void ckpt_packed_free(ckpt_packed_index *idx);

/* A read-only descriptor of data file `file` of a's index, opened (O_NOFOLLOW) on first use and
 * shared by every reader of the index until ckpt_packed_free closes it. Thread-safe. */
ckpt_status ckpt_packed_fd(const ckpt_packed_array *a, uint32_t file, int *fd, ckpt_error *err);

/* The packed array named param, or NULL (idx may be empty). */
const ckpt_packed_array *ckpt_packed_find(const ckpt_packed_index *idx, const char *param);
/* The stored chunk with this linear number, or NULL. */
const ckpt_packed_chunk *ckpt_packed_chunk_find(const ckpt_packed_array *a, uint64_t linear);
/* Stored bytes of all chunks of a. */
uint64_t ckpt_packed_stored_bytes(const ckpt_packed_array *a);

/* Checks that the index agrees with _METADATA: every packed param is an array or scalar leaf
 * of meta. dir names the item in messages. */
ckpt_status ckpt_packed_check_meta(const ckpt_packed_index *idx, const ckpt_pytree_meta *meta,
                                   const char *dir, ckpt_error *err);

/* Locates a stored chunk for reading: checks that its data file is a regular file and that the
 * range lies inside it. *path is borrowed from a's index. Errors name the array, the chunk key
 * and the file. */
ckpt_status ckpt_packed_locate(const ckpt_packed_array *a, uint64_t linear, const char *key,
                               const char **path, const ckpt_packed_chunk **chunk, ckpt_error *err);

#endif
