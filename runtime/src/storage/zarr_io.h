/* storage/zarr_io.h — the file side of zarr v2 arrays: array directories, compression, the
 * _CHECKSUMS table, and reading chunk regions straight into destination buffers
 * (zarr_read.c). A save's files are written by zarr_write.h's writer on the I/O engine.
 *
 * All file access goes through ckpt/io.h. Paths inside a checkpoint are untrusted on read:
 * array directories must be real directories (not symlinks), chunk files regular files opened
 * with O_NOFOLLOW, and sizes are checked before anything is allocated from them. */
#ifndef CKPT_STORAGE_ZARR_IO_H
#define CKPT_STORAGE_ZARR_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ckpt/error.h"
#include "ckpt/io.h"
#include "ckpt/layout.h"
#include "io/tasks.h"
#include "storage/zarr.h"
#include "util/crc32c.h"

/* ---------------------------------------------------------------- shared helpers */

/* Creates the array directory (a fresh one; an existing real directory is accepted). */
ckpt_status ckpt_zarr_make_array_dir(ckpt_io *io, const char *array_dir, ckpt_error *err);

/* True when the n bytes are all zero (stops at the first non-zero word). */
bool ckpt_zarr_all_zero(const void *data, size_t n);

/* zstd-compresses n bytes into *out (malloc'ed by the call; caller frees). */
ckpt_status ckpt_zarr_compress(const void *data, size_t n, int level, void **out, size_t *out_len,
                               const char *what, ckpt_error *err);

/* -------------------------------------------------- one chunk (zarr_chunk_codec.c) */

/* The stored bytes of one chunk of m (v2: raw or one zstd frame, byte-swapped to host order
 * when big-endian; v3: m's codec chain) → the full raw chunk (C order, host order,
 * ckpt_zarr_chunk_elements(m) elements of m->dtype) in raw. name and key name the array and
 * chunk in messages; damage is CKPT_ECORRUPT. */
ckpt_status ckpt_zarr_decode_chunk(const ckpt_zarr_meta *m, const void *stored, size_t n, void *raw,
                                   const char *name, const char *key, ckpt_error *err);
/* The reverse, with the writer's encoders (v2: a copy, or one zstd frame that records its
 * content size; v3: ckpt_zarr3_encode_chunk); *out malloc'ed (caller frees). Big-endian v2 is
 * CKPT_EUNSUPPORTED (ckpt writes little-endian). */
ckpt_status ckpt_zarr_encode_chunk(const ckpt_zarr_meta *m, const void *raw, void **out,
                                   size_t *out_n, const char *name, const char *key,
                                   ckpt_error *err);
/* A v2 zstd frame of stored into raw (raw_bytes, the frame's content size when it records one);
 * shared with the chunk reader (zarr_read.c). */
ckpt_status ckpt_zarr_decompress_v2(const void *stored, size_t n, void *raw, uint64_t raw_bytes,
                                    const char *name, const char *key, ckpt_error *err);
/* True when the zstd frame's header records its content size (TensorStore's frames do not,
 * and numcodecs before 0.12 cannot decode those). */
bool ckpt_zarr_frame_has_size(const void *stored, size_t n);

/* ---------------------------------------------------------------- checksums */

#define CKPT_CHECKSUMS_FILE "_CHECKSUMS"
/* The checkpoint's manifest, written at commit in the checkpoint directory: the same document
 * with "files" only, relative to the checkpoint — _CHECKPOINT_METADATA, every PyTree item's
 * _CHECKSUMS (which covers the rest of its item) and every JSON/proto item file. */
#define CKPT_MANIFEST_FILE CKPT_CHECKPOINT_CHECKSUMS_FILE
#define CKPT_CHECKSUMS_MAX (256u << 20)

/* Builds the _CHECKSUMS document: {"format": "ckpt-checksums", "version": 1,
 * "algorithm": "crc32c", "arrays": {param: {chunk key: [crc32c, stored bytes], ...}},
 * "files": {path in the item: [crc32c, bytes], ...}}. "files" covers the item's metadata files
 * (_METADATA, _strings.json, _PACKED, every <param>/.zarray); items written before it existed
 * (and Orbax's) have none, and their metadata is then not checked (docs/format.md). A save's
 * writer prints the same text straight from its plan instead (checksums_text.h); this tree is
 * for the other writers (ckpt convert, the op's list of files). */
cJSON *ckpt_checksums_new(void);
/* Adds one metadata file's entry (path relative to the item directory); false when memory
 * runs out. */
bool ckpt_checksums_add_file(cJSON *doc, const char *rel, uint32_t crc, uint64_t bytes);
/* Appends an empty entry for param, which must not be in doc yet (no lookup: O(1)); owned by
 * doc. NULL when memory runs out. */
cJSON *ckpt_checksums_append_array(cJSON *doc, const char *param);
/* Adds one chunk's entry to an array entry of doc; false when memory runs out. */
bool ckpt_checksums_add_chunk(cJSON *array, const char *key, uint32_t crc, uint64_t bytes);
/* _CHECKSUMS as read: the document, and its arrays sorted by parameter name so that finding
 * one is a binary search (a restore or verify looks up every array; a linear cJSON lookup
 * made that quadratic in the number of arrays). */
typedef struct ckpt_checksums ckpt_checksums;
/* Reads dir/_CHECKSUMS: *out NULL when the file does not exist (checkpoints written by Orbax
 * itself have none); malformed files (an array listed twice included) are CKPT_ECORRUPT.
 * Caller owns *out (ckpt_checksums_free). */
ckpt_status ckpt_checksums_read(ckpt_io *io, const char *dir, ckpt_checksums **out,
                                ckpt_error *err);
/* True when s records metadata files ("files"): a ckpt item written with this check. */
bool ckpt_checksums_has_files(const ckpt_checksums *s);
/* The CRC and size of _CHECKSUMS itself as read (for the checkpoint's manifest). */
ckpt_file_sum ckpt_checksums_self(const ckpt_checksums *s);
/* Checks dir/rel (a metadata file of the item s belongs to) against s: OK when s is NULL or
 * records no files; CKPT_ECORRUPT when the file is present but not recorded or its CRC or size
 * differ, CKPT_EINCOMPLETE when it is recorded but missing. Messages name the file. */
ckpt_status ckpt_checksums_check_file(const ckpt_checksums *s, const char *dir, const char *rel,
                                      const ckpt_file_sum *sum, ckpt_error *err);
/* Cross-checks _CHECKSUMS with the item's other metadata (dir is the item directory): every
 * array s lists must be an array leaf of meta that is not packed (else the leaf was deleted
 * from _METADATA or its value_type changed), and _METADATA, _PACKED and _strings.json (sums
 * from their readers; strings NULL when not read) must match "files". OK when s is NULL. */
struct ckpt_pytree_meta;
struct ckpt_packed_index;
ckpt_status ckpt_checksums_check_item(const ckpt_checksums *s, const char *dir,
                                      const struct ckpt_pytree_meta *meta,
                                      const struct ckpt_packed_index *packed,
                                      const ckpt_file_sum *strings, ckpt_error *err);
/* Reads dir/name like ckpt_checksums_read (the checkpoint's manifest: CKPT_MANIFEST_FILE). */
ckpt_status ckpt_checksums_read_named(ckpt_io *io, const char *dir, const char *name,
                                      ckpt_checksums **out, ckpt_error *err);
/* The files s records (sorted), for a caller that checks each is there. */
size_t ckpt_checksums_n_files(const ckpt_checksums *s);
const char *ckpt_checksums_file_name(const ckpt_checksums *s, size_t i);
/* Writes dir/CKPT_MANIFEST_FILE from files ({path relative to dir: [crc32c, bytes]}, not
 * taken). Not durable: the commit makes it so. */
ckpt_status ckpt_manifest_write(ckpt_io *io, const char *dir, const cJSON *files, ckpt_error *err);
/* Writes dir/CKPT_MANIFEST_FILE for a save: _CHECKPOINT_METADATA (meta_sum) and every file of
 * noted ({absolute path: [crc32c, bytes]}) inside dir, by its path relative to dir; an item
 * directory written under its tmp name (<item>.orbax-checkpoint-tmp, a Composite in rename mode)
 * is listed under its final name. */
ckpt_status ckpt_manifest_write_noted(ckpt_io *io, const char *dir, const cJSON *noted,
                                      const ckpt_file_sum *meta_sum, ckpt_error *err);
/* The entry of one array, or NULL (also when s is NULL). Owned by s. */
const cJSON *ckpt_checksums_array(const ckpt_checksums *s, const char *param);
/* The whole document as read (the fuzz target walks it); the index does not see changes made
 * to it. Owned by s; its items live in s's arena (text/json.h, ckpt_json_load_arena), so
 * nothing in it may be deleted or replaced. */
cJSON *ckpt_checksums_doc(ckpt_checksums *s);
void ckpt_checksums_free(ckpt_checksums *s); /* NULL is a no-op */

/* ---------------------------------------------------------------- reading */

/* Reads and parses array_dir/.zarray, or, when there is none, zarr v3's array_dir/zarr.json
 * (array_dir must be a real directory, <item>/<name>).
 * name is the parameter name, for messages. With sums (the item's _CHECKSUMS, may be NULL)
 * the file's bytes are checked against it first (ckpt_checksums_check_file). */
ckpt_status ckpt_zarr_read_meta(ckpt_io *io, const char *array_dir, const char *name,
                                const ckpt_checksums *sums, ckpt_zarr_meta *m, ckpt_error *err);

/* An array's format must be the one _METADATA's use_zarr3 says (Orbax opens the arrays with the
 * driver it names): CKPT_ECORRUPT naming the array and its metadata file otherwise. */
ckpt_status ckpt_zarr_check_format(const ckpt_zarr_meta *m, bool use_zarr3, const char *name,
                                   ckpt_error *err);

struct ckpt_ocdbt;
/* The same for an array stored in an OCDBT database (storage/ocdbt/ocdbt.h): the value of key
 * "<name>/.zarray". A missing key is CKPT_EINCOMPLETE. With sums, checked like the file. */
ckpt_status ckpt_zarr_read_meta_ocdbt(struct ckpt_ocdbt *db, const char *name,
                                      const ckpt_checksums *sums, ckpt_zarr_meta *m,
                                      ckpt_error *err);

/* One box to fill, in the coordinates of the destination array. */
typedef struct ckpt_zarr_dest {
  int64_t offset[CKPT_MAX_RANK];
  int64_t shape[CKPT_MAX_RANK];
  void *data;  /* C-order buffer of shape, dtype below */
  bool zeroed; /* the buffer is known to be all zeros already (fresh calloc) */
} ckpt_zarr_dest;

struct ckpt_packed_array;

/* Where a chunk's stored bytes come from (its "source"): a zarr directory (array_dir/<chunk
 * key>), a byte range of the item's packed data file (packed), or the value of key
 * "<name>/<chunk key>" of an OCDBT database (ocdbt: inline bytes or a byte range of one of its
 * data files). Exactly one of packed and ocdbt may be set; with neither, array_dir is used. The
 * bytes are the same in all three (raw C order or one zstd frame), so everything after
 * locating them is shared. */
typedef struct ckpt_zarr_read_req {
  ckpt_io *io;
  const char *array_dir;                  /* unused for a packed or OCDBT array */
  const struct ckpt_packed_array *packed; /* storage/packed.h: chunks are byte ranges of the
                                           * item's packed data file (NULL: a zarr directory) */
  struct ckpt_ocdbt *ocdbt;               /* storage/ocdbt/ocdbt.h: chunks are OCDBT values */
  const char *name;                       /* parameter name for messages */
  /* As stored; the caller's, alive until the read ends. A pointer, not a copy: the struct is
   * 1.8 KB (zarr v3's codec chains), and a restore of 10,000 arrays kept one per array (20 MB
   * of fresh memory) where most arrays share one. */
  const ckpt_zarr_meta *meta;
  ckpt_dtype dtype;                       /* the destination dtype (a cast when it differs) */
  const cJSON *checksums;                 /* the array's _CHECKSUMS entry, or NULL */
  bool require_checksums;                 /* _CHECKSUMS exists: every chunk must be listed */
  bool missing_is_error;                  /* _METADATA.store_array_data_equal_to_fill_value */
  size_t n_dest;
  ckpt_zarr_dest *dest;
  /* Statistics, filled by the read. */
  uint64_t chunks_read;
  uint64_t bytes_read;
} ckpt_zarr_read_req;

/* A chunk read as a unit of work: several arrays' chunks can be pooled into one parallel run. */
typedef struct ckpt_zarr_chunk_task {
  ckpt_zarr_read_req *req;
  uint64_t linear; /* chunk number in the stored grid */
} ckpt_zarr_chunk_task;

/* Appends the chunks of req that intersect its destination boxes (each once) to *tasks.
 * Regions of destinations outside the stored shape are zero-filled here (pad); regions beyond
 * the destination are simply not read (truncate). */
ckpt_status ckpt_zarr_plan_read(ckpt_zarr_read_req *req, ckpt_zarr_chunk_task **tasks,
                                size_t *n_tasks, size_t *cap_tasks, ckpt_error *err);
/* Reads one planned chunk into every destination it intersects, verifying size and checksum.
 * Thread-safe across different tasks. */
ckpt_status ckpt_zarr_run_read(const ckpt_zarr_chunk_task *task, ckpt_scratch *scratch,
                               ckpt_error *err);

/* Verifies one stored chunk (size, checksum, decompression) without a destination. A missing
 * chunk is an error when missing_is_error (checkpoints that store every chunk). With packed
 * (not NULL) the chunk is read from the packed data file instead of array_dir, checked against
 * the CRC the packed index records, and a missing chunk is always an error. With ocdbt (not
 * NULL) it is the value of key "<name>/<chunk key>" (see ckpt_zarr_read_req). */
ckpt_status ckpt_zarr_verify_chunk(ckpt_io *io, const char *array_dir,
                                   const struct ckpt_packed_array *packed, struct ckpt_ocdbt *ocdbt,
                                   const char *name, const ckpt_zarr_meta *m, uint64_t linear,
                                   const cJSON *checksums, bool require_checksums,
                                   bool missing_is_error, ckpt_scratch *scratch, ckpt_error *err);

#endif
