/* storage/zarr_write.h — the zarr writer: runs a save's write plan on the I/O engine.
 *
 * The counterpart of zarr_read.c. A handler turns its arguments and tree into a write plan —
 * the item directory, one leaf per stored array (its .zarray metadata, chunk grid and the
 * snapshot pieces its chunks are cut from), the chunk list, whether the arrays go to OCDBT
 * (storage/ocdbt/ocdbt_write.h), the _METADATA entries and the string leaves — and hands it
 * here; the writer owns every file name and every byte that goes to disk from then on (array
 * directories, .zarray, chunk files or the OCDBT databases, _strings.json, _CHECKSUMS,
 * _METADATA). Keeping that here is what lets the handler stay a mapping from arguments to a
 * plan, and the on-disk layout stay in storage/ with its reader.
 *
 * A plan is built by the handler (calloc'ed, its arrays malloc'ed), written once by
 * ckpt_zarr_write on a background thread, and freed with ckpt_write_plan_free. The fields
 * under "the writer's" are zero in a fresh plan and belong to the writer. */
#ifndef CKPT_STORAGE_ZARR_WRITE_H
#define CKPT_STORAGE_ZARR_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ckpt/dtype.h"
#include "ckpt/error.h"
#include "ckpt/io.h"
#include "io/engine.h"
#include "storage/pytree_meta.h"
#include "storage/zarr.h"

typedef struct ckpt_write_plan ckpt_write_plan;

/* A snapshot piece: one replica-0 shard of an array, the bytes its chunks are cut from. */
typedef struct ckpt_write_piece {
  /* The shard's offset and shape, ndim values each, carved from the plan's metadata arena
   * (ckpt_pytree_meta.arena, freed with the plan): 32 bytes a piece instead of 528 with
   * CKPT_MAX_RANK-wide arrays, whose first touch (page faults of 5 MB for 10,000 leaves) was a
   * good part of a small state's plan. */
  int64_t *off;
  int64_t *shape;
  void *data;
  bool owned;  /* a snapshot buffer of the plan's (else the caller's memory, zero-copy) */
  bool pooled; /* from the staging pool (else malloc) */
} ckpt_write_piece;

/* One stored array (an array, scalar or bytes leaf). */
typedef struct ckpt_write_leaf {
  ckpt_write_plan *job;
  size_t entry; /* index into meta.entries (its param names the array) */
  /* As stored: one of the plan's metas (below), shared by the leaves whose metadata is the
   * same. Held by pointer because a ckpt_zarr_meta is 1.8 KB (the zarr v3 codec spec inside
   * it), and 10,000 leaves each with its own touched 19.5 MB of fresh memory. */
  const ckpt_zarr_meta *zm;
  ckpt_dtype src_dtype;  /* dtype of the snapshot pieces */
  uint64_t stored_bytes; /* the whole array at the stored dtype (UINT64_MAX: overflow) */
  size_t n_shards;
  ckpt_write_piece *shards; /* in the plan's pieces, or malloc'ed when shards_own */
  bool shards_own;
  char *dir; /* <item>/<param>; NULL in an OCDBT plan (no array directories) */
  /* The writer's: */
  ckpt_engine_file *zfile; /* .zarray, opened by task_leaf; closed by task_close_batch */
  uint32_t zcrc;           /* .zarray's CRC-32C and size, for _CHECKSUMS' "files" */
  uint64_t zbytes;
  char *ztext;          /* OCDBT: the .zarray text (its value) */
  uint32_t zfile_index; /* OCDBT, a .zarray over the inline limit: its data file and offset */
  uint64_t zoffset;
} ckpt_write_leaf;

/* One chunk of a leaf that intersects one of its pieces. A leaf's chunks are consecutive in
 * the plan (_CHECKSUMS and the batches rely on it). */
typedef struct ckpt_write_chunk {
  ckpt_write_plan *job;
  size_t leaf;
  size_t shard;    /* the piece it is cut from */
  uint64_t linear; /* chunk number in the leaf's grid (C order) */
  /* The writer's: */
  void *own; /* a prepared copy of the chunk (edge, cast, compressed); freed after its close */
  uint64_t reserved;      /* memory-budget bytes the chunk holds and has not handed to a write */
  ckpt_engine_file *file; /* opened by task_chunk; closed (fsync'd) by task_close_batch */
  uint32_t crc;
  uint64_t bytes;
  const unsigned char *data; /* the stored bytes, once prepared (own or the snapshot's) */
  bool prepared;
  bool indirect;      /* OCDBT: in a data file (else inline in the B+tree) */
  uint32_t data_file; /* OCDBT, indirect: which data file, and where in it */
  uint64_t offset;
} ckpt_write_chunk;

/* Multi-process saves (docs/multiprocess.md): the CRC-32C and size of one chunk file written by
 * some process, as the primary merges them into _CHECKSUMS. */
typedef struct ckpt_write_sum {
  uint64_t leaf;   /* index into the plan's leaves (every process plans the same leaves) */
  uint64_t linear; /* chunk number in the leaf's grid */
  uint32_t crc;
  uint64_t bytes;
} ckpt_write_sum;

/* A file listed in _CHECKSUMS ("files"), path relative to the item directory: another
 * process's file the primary lists, or an OCDBT node or manifest file the writer wrote. */
typedef struct ckpt_write_file_sum {
  char *rel;
  uint32_t crc;
  uint64_t bytes;
} ckpt_write_file_sum;

struct ckpt_write_plan {
  ckpt_io *io;
  ckpt_engine *engine; /* the op's, or NULL: ckpt_zarr_write makes a short-lived one */
  /* Called with each path the write made durable (ckpt_op_note_durable's claims, for the
   * commit), once the whole write succeeded; may be NULL. */
  void (*note_durable)(void *ctx, const char *path);
  void *note_durable_ctx;
  /* Called (same ctx) with _CHECKSUMS' path and bytes as they are written, for the
   * checkpoint's manifest; may be NULL. */
  void (*note_file)(void *ctx, const char *path, const void *data, size_t n);
  char *dir;             /* the item directory (exists) */
  ckpt_pytree_meta meta; /* _METADATA's entries; their params are unique */
  size_t n_leaves, cap_leaves;
  ckpt_write_leaf *leaves;
  size_t n_chunks, cap_chunks;
  ckpt_write_chunk *chunks;
  /* The distinct stored metadata of the leaves (each malloc'ed, owned): a leaf whose
   * metadata equals the last one's shares it (ckpt_write_plan_meta). */
  ckpt_zarr_meta **metas;
  size_t n_metas, cap_metas;
  /* The leaves' snapshot pieces, one block sized from the tree (malloc'ed, owned; a leaf that
   * finds it full gets its own): one allocation instead of one per leaf. */
  ckpt_write_piece *pieces;
  size_t n_pieces, cap_pieces;
  cJSON *strings; /* param → value, or NULL */
  /* The arrays as OCDBT databases (storage/ocdbt/ocdbt_write.h) instead of zarr directories;
   * meta.use_ocdbt says the same to readers. */
  bool ocdbt;
  uint64_t ocdbt_data_file_bytes; /* a new data file once one would pass this (0: 2 GiB) */
  size_t ocdbt_node_bytes;        /* B+tree node target size (0: the encoder's default) */
  /* Multi-process saves (docs/multiprocess.md). multiprocess false (a fresh plan): this
   * process alone, and ckpt_zarr_write writes everything. Otherwise this is process `process`
   * of several: each
   * writes its array directories, its chunk files (the chunks listed: those of its own
   * replica-0 shards) and array_metadatas/process_<process>; the primary (`primary` true) also
   * each .zarray. ckpt_zarr_write stops there, and once every process's chunk sums are merged
   * into `merged` and `extra`, the primary runs ckpt_zarr_write_item_files. With OCDBT each
   * process writes its own database ocdbt.process_<process>/ (the primary's holds the .zarray
   * keys) and keeps its key table in ocdbt_db; the primary writes the root database over all of
   * them (ckpt_ocdbt_write_root) before the item files. */
  bool multiprocess;
  int process;
  bool primary;
  ckpt_write_sum *merged; /* every process's chunk sums, in process order (owned); or NULL */
  size_t n_merged;
  ckpt_write_file_sum *extra; /* the other processes' array_metadatas files (owned) */
  size_t n_extra;
  ckpt_file_sum process_file; /* the writer's: array_metadatas/process_<process> as written */
  struct ckpt_ocdbt_process_db *ocdbt_db; /* the writer's, multi-process OCDBT (or NULL) */
  /* The writer's: */
  ckpt_engine *engine_used; /* the one ckpt_zarr_write runs on */
  ckpt_engine_group *group; /* the chunk group, while ckpt_zarr_write runs */
  size_t n_ocdbt_files;     /* OCDBT: the node and manifest files written, with their sums */
  ckpt_write_file_sum *ocdbt_files;
  struct ckpt_sums_text *ocdbt_sums; /* OCDBT: _CHECKSUMS between its two jobs (zarr_write.c;
                                      * storage/checksums_text.h), or NULL */
  /* _METADATA's text, encoded during phase 1 off the critical path (owned; NULL until then). */
  char *meta_text;
  size_t meta_len;
  uint32_t meta_crc; /* of meta_text */
};

/* Writes every file of the plan, durably (each file fsync'd, each directory once), and only
 * then reports each path to plan->note_durable. Errors are prefixed "while writing '<dir>': ".
 * Runs on the calling thread, which waits for the engine's jobs (never an engine worker). */
ckpt_status ckpt_zarr_write(ckpt_write_plan *plan, ckpt_error *err);

/* Multi-process saves, on the primary, after ckpt_zarr_write and the merge: _strings.json,
 * _CHECKSUMS (every process's chunks and array_metadatas files) and _METADATA, durable. */
ckpt_status ckpt_zarr_write_item_files(ckpt_write_plan *plan, ckpt_error *err);

/* Multi-process saves: the relative path of process `process`'s array_metadatas file
 * ("array_metadatas/process_<i>"); *out malloc'ed (caller frees); NULL when out of memory. */
char *ckpt_array_metadatas_rel(int process);
/* Multi-process saves: this process's array_metadatas file as JSON (storage/array_metadatas.c);
 * *text malloc'ed (caller frees). */
ckpt_status ckpt_array_metadatas_encode(const ckpt_write_plan *plan, char **text, size_t *len,
                                        ckpt_error *err);

/* The plan's copy of m for a leaf: the last one added when its bytes are the same (m and the
 * plan's metas zeroed before they are filled, so padding compares equal), else a new one.
 * NULL when out of memory. */
const ckpt_zarr_meta *ckpt_write_plan_meta(ckpt_write_plan *plan, const ckpt_zarr_meta *m);

/* Frees the plan, its snapshot buffers and everything the writer left (NULL is a no-op). */
void ckpt_write_plan_free(ckpt_write_plan *plan);

#endif
