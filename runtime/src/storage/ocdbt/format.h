/* storage/ocdbt/format.h — the OCDBT on-disk format's constants and its primitive decoders,
 * shared by the OCDBT reader (ocdbt.h, read.c) and writer (ocdbt_write.*, encode.*).
 *
 * OCDBT ("optionally-cooperative distributed B+tree") is TensorStore's key-value database
 * format, which Orbax uses by default for array data (docs/format.md, "OCDBT"). A database is
 * a directory holding
 *
 *   manifest.ocdbt           the manifest: configuration and (single kind) the version tree
 *   manifest.<16 hex>        numbered kind only: the manifests holding the version tree; the
 *                            name is the latest generation they reference, 0-padded lowercase
 *   d/<32 hex>               data files: B+tree nodes, version tree nodes, out-of-line values
 *
 * Every encoded manifest, version tree node and B+tree node is one "envelope":
 *
 *   magic      uint32 big endian
 *   length     uint64 little endian, of the whole envelope (header and footer included)
 *   version    varint, 0
 *   compression varint: 0 none, 1 zstd (one zstd frame holding the body)
 *   body       (compressed) node-specific fields
 *   crc32c     uint32 little endian, CRC-32C of every byte before it
 *
 * Integers in bodies are unsigned LEB128 varints (at most 10 bytes, 64 bits) unless said
 * otherwise; byte strings carry their length in front. Everything here is untrusted input:
 * the decoders check every length against the bytes that remain and name the place in errors.
 */
#ifndef CKPT_STORAGE_OCDBT_FORMAT_H
#define CKPT_STORAGE_OCDBT_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt/error.h"

/* ---------------------------------------------------------------- file names */

#define CKPT_OCDBT_MANIFEST_FILE "manifest.ocdbt"
/* Numbered manifests: CKPT_OCDBT_NUMBERED_PREFIX followed by CKPT_OCDBT_NUMBERED_DIGITS
 * lowercase hex digits (the latest generation the manifest references). */
#define CKPT_OCDBT_NUMBERED_PREFIX "manifest."
#define CKPT_OCDBT_NUMBERED_DIGITS 16
/* Written next to numbered manifests by TensorStore for its own locking; never read. */
#define CKPT_OCDBT_LOCK_FILE "manifest.__lock"
/* New data files are d/<CKPT_OCDBT_DATA_NAME_HEX lowercase hex digits> (a random 128-bit id). */
#define CKPT_OCDBT_DATA_DIR "d"
#define CKPT_OCDBT_DATA_NAME_HEX 32
/* Orbax: each process writes <item>/ocdbt.process_<i>/, the merged root is <item>/ itself and
 * refers to the per-process data files through data-file base paths "ocdbt.process_<i>/". */
#define CKPT_OCDBT_PROCESS_DIR_PREFIX "ocdbt.process_"

/* ---------------------------------------------------------------- envelope */

#define CKPT_OCDBT_MANIFEST_MAGIC 0x0cdb3a2au
#define CKPT_OCDBT_VERSION_NODE_MAGIC 0x0cdb1234u
#define CKPT_OCDBT_BTREE_NODE_MAGIC 0x0cdb20deu
#define CKPT_OCDBT_FORMAT_VERSION 0u /* the only envelope version defined */

#define CKPT_OCDBT_COMPRESSION_NONE 0u
#define CKPT_OCDBT_COMPRESSION_ZSTD 1u

/* magic + length: the fixed part of the header (version and compression are varints). */
#define CKPT_OCDBT_HEADER_FIXED_BYTES 12u
#define CKPT_OCDBT_FOOTER_BYTES 4u /* the CRC-32C */

/* ---------------------------------------------------------------- manifest configuration */

#define CKPT_OCDBT_UUID_BYTES 16u
/* config.manifest_kind */
#define CKPT_OCDBT_MANIFEST_KIND_SINGLE 0u   /* manifest.ocdbt holds the version tree too */
#define CKPT_OCDBT_MANIFEST_KIND_NUMBERED 1u /* the version tree is in manifest.<16 hex> */
/* config.compression_method */
#define CKPT_OCDBT_CONFIG_COMPRESSION_NONE 0u
#define CKPT_OCDBT_CONFIG_COMPRESSION_ZSTD 1u /* followed by the level, int32 little endian */

/* What Orbax configures (orbax-reference §5.1) and TensorStore writes by default. */
#define CKPT_OCDBT_ORBAX_MAX_INLINE_VALUE_BYTES 1024u
#define CKPT_OCDBT_ORBAX_MAX_DECODED_NODE_BYTES 100000000u
#define CKPT_OCDBT_DEFAULT_VERSION_TREE_ARITY_LOG2 4u

/* ---------------------------------------------------------------- B+tree and version tree */

/* Leaf B+tree entries: value_kind. */
#define CKPT_OCDBT_VALUE_INLINE 0u
#define CKPT_OCDBT_VALUE_INDIRECT 1u

/* The longest data file path the format allows (transitive + base + relative). */
#define CKPT_OCDBT_MAX_PATH 65535u
#define CKPT_OCDBT_VARINT_MAX_BYTES 10u

/* ---------------------------------------------------------------- reader limits */

/* Largest manifest file read (a manifest holds the configuration, a data-file table and at
 * most 2^arity_log2 inline versions plus version node references: kilobytes). */
#define CKPT_OCDBT_MANIFEST_MAX (64u << 20)
/* Largest decoded body accepted for any node, whatever config.max_decoded_node_bytes says:
 * a bound on memory for hostile input. Orbax configures 100 MB. */
#define CKPT_OCDBT_DECODED_MAX (256u << 20)
/* Deepest B+tree / version tree accepted (real trees have a few levels). */
#define CKPT_OCDBT_MAX_HEIGHT 32u

/* ---------------------------------------------------------------- decoding primitives */

/* A bounded cursor over a byte buffer. `where` names the buffer for messages (e.g.
 * "'<dir>/d/ab12...': B+tree node at offset 123"); the decoders below report
 * "<where>: <field> truncated at byte <n>" etc. with CKPT_ECORRUPT. */
typedef struct ckpt_ocdbt_in {
  const uint8_t *start;
  const uint8_t *p;
  const uint8_t *end;
  const char *where;
} ckpt_ocdbt_in;

static inline ckpt_ocdbt_in ckpt_ocdbt_in_make(const void *data, size_t n, const char *where) {
  ckpt_ocdbt_in in;
  in.start = (const uint8_t *)data;
  in.p = in.start;
  in.end = in.start + n;
  in.where = where;
  return in;
}

static inline size_t ckpt_ocdbt_in_left(const ckpt_ocdbt_in *in) {
  return (size_t)(in->end - in->p);
}
static inline size_t ckpt_ocdbt_in_pos(const ckpt_ocdbt_in *in) {
  return (size_t)(in->p - in->start);
}

/* An unsigned LEB128 varint of at most 10 bytes whose value fits 64 bits. */
ckpt_status ckpt_ocdbt_get_varint(ckpt_ocdbt_in *in, const char *field, uint64_t *v,
                                  ckpt_error *err);
/* A varint that must be at most max (a count or a length that indexes memory). */
ckpt_status ckpt_ocdbt_get_varint_max(ckpt_ocdbt_in *in, const char *field, uint64_t max,
                                      uint64_t *v, ckpt_error *err);
ckpt_status ckpt_ocdbt_get_u8(ckpt_ocdbt_in *in, const char *field, uint8_t *v, ckpt_error *err);
ckpt_status ckpt_ocdbt_get_u32le(ckpt_ocdbt_in *in, const char *field, uint32_t *v,
                                 ckpt_error *err);
ckpt_status ckpt_ocdbt_get_u64le(ckpt_ocdbt_in *in, const char *field, uint64_t *v,
                                 ckpt_error *err);
/* n raw bytes, borrowed from the buffer. */
ckpt_status ckpt_ocdbt_get_bytes(ckpt_ocdbt_in *in, const char *field, uint64_t n,
                                 const uint8_t **bytes, ckpt_error *err);

/* Unpacks one envelope (header, CRC-32C footer, zstd or stored body): checks the magic,
 * that the encoded length equals n, the version and the CRC, and decompresses the body into
 * *body (malloc'ed, caller frees; at most max_decoded bytes). `where` names it in errors. */
ckpt_status ckpt_ocdbt_open_envelope(const void *data, size_t n, uint32_t magic,
                                     uint64_t max_decoded, const char *where, uint8_t **body,
                                     size_t *body_len, ckpt_error *err);

/* A data-file table as decoded: path[i] = base_path[i] + relative_path[i] (the transitive path
 * of the node it came from is not included), NUL-terminated, base_len[i] bytes of it being the
 * base path. */
typedef struct ckpt_ocdbt_file_table {
  size_t n;
  char **path;
  size_t *path_len;
  size_t *base_len;
} ckpt_ocdbt_file_table;

/* Decodes a data-file table at in (prefix-compressed paths). Paths must be non-empty, hold no
 * NUL byte, not start with '/', and have no "." or ".." component: a database cannot name a
 * file outside its directory. *t is the caller's (ckpt_ocdbt_file_table_free), also on error. */
ckpt_status ckpt_ocdbt_get_file_table(ckpt_ocdbt_in *in, ckpt_ocdbt_file_table *t, ckpt_error *err);
void ckpt_ocdbt_file_table_free(ckpt_ocdbt_file_table *t);

#endif
