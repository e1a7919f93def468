/* storage/ocdbt/encode.h — the OCDBT encoder: B+tree nodes and manifests, as bytes.
 *
 * OCDBT (TensorStore's log-structured B+tree key-value store, the layout Orbax uses by
 * default) stores a database as `manifest.ocdbt` plus data files `d/<32 hex>` holding values
 * too large to inline and the encoded B+tree nodes. This file turns a sorted key table into the
 * bytes of those nodes and of a manifest; it does no I/O (ocdbt_write.c places the bytes in
 * files on the engine). docs/format.md ("OCDBT") says what ckpt writes; the format itself is
 * TensorStore's `kvstore/ocdbt/index.rst`:
 *
 *   node:      magic 0x0cdb20de (u32 big-endian), total length (u64 LE), version varint 0,
 *              compression varint (1: zstd), zstd frame of the body, CRC-32C (u32 LE) of all
 *              bytes before it.
 *   leaf body: height u8 0, data-file table, num_entries, key prefix lengths (n-1), key suffix
 *              lengths, key suffixes, value lengths, value kinds (u8: 0 inline, 1 indirect),
 *              file ids and offsets of the indirect values, the inline values concatenated.
 *   interior:  height u8 > 0, data-file table, num_entries, key prefix lengths (n-1), key suffix
 *              lengths, subtree common prefix lengths, key suffixes, child file ids, offsets,
 *              lengths, then the statistics columns num_keys, num_tree_bytes,
 *              num_indirect_value_bytes.
 *   manifest:  magic 0x0cdb3a2a, length, version, compression as for a node; body: config
 *              (uuid[16], manifest_kind, max_inline_value_bytes, max_decoded_node_bytes,
 *              version_tree_arity_log2 u8, compression method 1 + zstd level i32 LE), data-file
 *              table, inline versions (one: generation 1), version nodes (none); CRC-32C.
 *
 * Every column is a column: all values of one field, then the next field (the fixtures Orbax
 * wrote show the same). Node keys are stored relative to the node's implicit prefix: the root
 * has none; any other node has the longest common prefix of its subtree's keys, which its
 * parent entry announces through subtree_common_prefix_length. */
#ifndef CKPT_STORAGE_OCDBT_ENCODE_H
#define CKPT_STORAGE_OCDBT_ENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt/error.h"
#include "storage/ocdbt/format.h"

/* Orbax's configuration (format.h has the numbers): values up to 1 KiB inline in the leaves,
 * decoded nodes at most 100 MB, one manifest file, zstd for nodes and manifests, and new data
 * files once one reaches 2 GiB. */
#define CKPT_OCDBT_TARGET_DATA_FILE_SIZE ((uint64_t)2 << 30)
/* What ckpt aims at per node (decoded): far below the limit, so a reader fetching one key
 * reads and decompresses little; a few thousand chunk entries per leaf. */
#define CKPT_OCDBT_TARGET_NODE_BYTES ((size_t)256 << 10)
/* TensorStore's bound on entries per node. */
#define CKPT_OCDBT_MAX_NODE_ARITY ((size_t)1 << 20)

/* A growable byte buffer; a failed allocation sets `failed` and later appends do nothing. */
typedef struct ckpt_ocdbt_buf {
  unsigned char *p;
  size_t n, cap;
  bool failed;
} ckpt_ocdbt_buf;

void ckpt_ocdbt_buf_free(ckpt_ocdbt_buf *b);
void ckpt_ocdbt_put(ckpt_ocdbt_buf *b, const void *data, size_t n);
void ckpt_ocdbt_put_varint(ckpt_ocdbt_buf *b, uint64_t v);

/* A data file as a data-file table names it: base_path + relative_path, relative to the
 * transitive path of the node that names it ("" and "" for a manifest). */
typedef struct ckpt_ocdbt_file_id {
  const char *base_path;
  const char *relative_path;
} ckpt_ocdbt_file_id;

/* Encodes a data-file table of n entries, which must be sorted by (base_path, relative_path)
 * and distinct (ckpt_ocdbt_file_id_cmp). */
void ckpt_ocdbt_put_file_table(ckpt_ocdbt_buf *b, const ckpt_ocdbt_file_id *files, size_t n);
int ckpt_ocdbt_file_id_cmp(const ckpt_ocdbt_file_id *a, const ckpt_ocdbt_file_id *b);

/* One key of a database. Keys are byte strings, compared with memcmp (shorter first on a tie). */
typedef struct ckpt_ocdbt_kv {
  const char *key;
  size_t key_len;
  uint64_t length;   /* the value's bytes */
  const void *value; /* inline: the bytes (borrowed) */
  bool indirect;     /* else inline */
  size_t file;       /* indirect: index into the tree's value files */
  uint64_t offset;   /* indirect: where the value starts in that file */
} ckpt_ocdbt_kv;

int ckpt_ocdbt_key_cmp(const char *a, size_t an, const char *b, size_t bn);

/* How to build one B+tree. */
typedef struct ckpt_ocdbt_tree_opts {
  const ckpt_ocdbt_file_id *files; /* the value files indirect entries refer to */
  size_t n_files;
  /* The file the nodes go into, as this database's manifest names it (base "" + this). The
   * nodes are the file's whole content, in the order built, the root last. */
  const char *node_file;
  size_t target_node_bytes; /* decoded bytes a node is split at (0: CKPT_OCDBT_TARGET_NODE_BYTES) */
  int zstd_level;           /* 0: zstd's default */
} ckpt_ocdbt_tree_opts;

/* Where a tree's root is, and its statistics (the manifest's version entry). */
typedef struct ckpt_ocdbt_root {
  uint8_t height;
  uint64_t offset, length; /* in the node file */
  uint64_t num_keys, num_tree_bytes, num_indirect_value_bytes;
  size_t n_nodes;
} ckpt_ocdbt_root;

/* Builds the B+tree of kvs[0 .. n) (sorted, distinct keys; n > 0) bottom-up: leaves filled up
 * to the target size, then interior levels until one root. The encoded nodes are appended to
 * *nodes (which starts empty). Errors: CKPT_EINVAL for unsorted keys or a key or value past
 * the format's limits, CKPT_ENOMEM, CKPT_EIO for a zstd failure. */
ckpt_status ckpt_ocdbt_build_tree(const ckpt_ocdbt_kv *kvs, size_t n, const ckpt_ocdbt_tree_opts *o,
                                  ckpt_ocdbt_buf *nodes, ckpt_ocdbt_root *root, ckpt_error *err);

/* A database's configuration (the manifest's first part). */
typedef struct ckpt_ocdbt_config {
  unsigned char uuid[16];
  uint64_t max_inline_value_bytes;
  uint64_t max_decoded_node_bytes;
  int32_t zstd_level;
} ckpt_ocdbt_config;

/* Orbax's configuration with a fresh random uuid. */
ckpt_status ckpt_ocdbt_config_init(ckpt_ocdbt_config *c, ckpt_error *err);

/* The manifest of a database with one version (generation 1, committed at commit_time_ns,
 * nanoseconds since the epoch as TensorStore writes it) whose root is described by root and
 * stored in node_file. *out starts empty. */
ckpt_status ckpt_ocdbt_encode_manifest(const ckpt_ocdbt_config *c, const char *node_file,
                                       const ckpt_ocdbt_root *root, uint64_t commit_time_ns,
                                       ckpt_ocdbt_buf *out, ckpt_error *err);

/* 16 random bytes (getrandom), for uuids and data file names. */
ckpt_status ckpt_ocdbt_random(unsigned char out[16], ckpt_error *err);
/* "d/" + 32 lowercase hex digits of 16 fresh random bytes, into out (at least 35 bytes). */
ckpt_status ckpt_ocdbt_data_file_name(char out[35], ckpt_error *err);

#endif
