/* storage/ocdbt/internal.h — what the OCDBT reader's files share (not for other code: the
 * interface is ocdbt.h). The reader is split by job: manifest.c reads the manifest and opens a
 * database, versions.c follows the version tree to the latest generation, btree.c reads the
 * B+tree into the key table, files.c owns the data files and node references, read.c answers
 * lookups and reads values. decode.c (format.h) has the primitive decoders. */
#ifndef CKPT_STORAGE_OCDBT_INTERNAL_H
#define CKPT_STORAGE_OCDBT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/ocdbt/format.h"
#include "storage/ocdbt/ocdbt.h"
#include "util/arena.h"

typedef struct data_file {
  char *rel;  /* relative to the database directory */
  char *path; /* dir/rel */
  int fd;     /* -1 until first use */
  bool checked;
  uint64_t size;
} data_file;

typedef struct entry {
  char *key; /* in the database's arena */
  size_t key_len;
  ckpt_ocdbt_value v;
  uint8_t *owned; /* inline bytes, in the database's arena */
} entry;

struct ckpt_ocdbt {
  ckpt_io *io;
  char *dir;
  uint64_t generation;
  uint64_t max_decoded; /* config.max_decoded_node_bytes, bounded by CKPT_OCDBT_DECODED_MAX */
  uint8_t arity_log2;
  pthread_mutex_t mu; /* guards files[].fd/checked/size */
  size_t n_files, cap_files;
  data_file *files;
  size_t n, cap;
  entry *entries;
  /* The entries' keys and inline values, filled while the B+tree is read (on the opening
   * thread only) and freed at once: two small allocations per key otherwise, 20,000 for a
   * state of 10,000 arrays. */
  ckpt_arena arena;
  /* B+tree nodes read so far, as (file, offset) in an open-addressing set: a node referenced
   * twice is refused, which bounds the work to the bytes of the data files (a crafted DAG of
   * nodes sharing children would otherwise cost exponentially many reads). */
  size_t n_seen, cap_seen;
  uint64_t (*seen)[2];
  /* ckpt_ocdbt_memo_get/put (guarded by mu): the source bytes and the result last put. */
  unsigned char *memo_src, *memo_result;
  size_t memo_n, memo_result_len;
};

/* A node reference: where an encoded node is and the transitive path for its children. */
typedef struct node_ref {
  uint32_t file; /* db file index */
  uint64_t offset, length;
  char *transitive; /* transitive path of the node's own data-file table */
} node_ref;

/* The latest version found: its B+tree root. */
typedef struct version {
  bool found;
  uint64_t generation;
  uint8_t root_height;
  node_ref root;
} version;

/* ---------------------------------------------------------------- files.c */

/* The index of the data file at rel (transitive + base + relative), added when new. */
ckpt_status ocdbt_file_index(ckpt_ocdbt *db, const char *rel, uint32_t *index, ckpt_error *err);
/* Opens (once) and sizes data file i; what names its content in a missing-file error. */
ckpt_status ocdbt_file_fd(ckpt_ocdbt *db, uint32_t i, const char *what, int *fd, uint64_t *size,
                          ckpt_error *err);
/* CKPT_ECORRUPT naming f when [offset, offset + length) is not inside its size bytes. */
ckpt_status ocdbt_check_range(const data_file *f, uint64_t offset, uint64_t length, uint64_t size,
                              const char *what, ckpt_error *err);
/* Reads [offset, offset + length) of data file i into a new buffer (caller frees). */
ckpt_status ocdbt_read_range(ckpt_ocdbt *db, uint32_t i, uint64_t offset, uint64_t length,
                             const char *what, uint8_t **out, ckpt_error *err);
/* Resolves entry id of table t (decoded in a node whose transitive path is trans): the db file
 * index and, when child_trans is not NULL, the transitive path a referenced node's children
 * use (malloc'ed). */
ckpt_status ocdbt_resolve(ckpt_ocdbt *db, const ckpt_ocdbt_in *in, const ckpt_ocdbt_file_table *t,
                          const char *trans, uint64_t id, uint32_t *file, char **child_trans,
                          ckpt_error *err);
/* "'<path>': <kind> at offset <n>" for messages about a node. */
void ocdbt_node_where(char *buf, size_t n, const ckpt_ocdbt *db, const node_ref *r,
                      const char *kind);
/* Reads the node r points to and unpacks its envelope (magic) into *body (caller frees). */
ckpt_status ocdbt_load_node(ckpt_ocdbt *db, const node_ref *r, uint32_t magic, const char *kind,
                            uint8_t **body, size_t *body_len, ckpt_error *err);

/* ---------------------------------------------------------------- btree.c */

/* Reads the B+tree node r (of the given height) and everything below it into db's entries,
 * level by level (a level's nodes are loaded in parallel); prefix (pl bytes) is the key prefix
 * the path from the root implies. */
ckpt_status ocdbt_read_btree(ckpt_ocdbt *db, const node_ref *r, unsigned height, const char *prefix,
                             size_t pl, ckpt_error *err);

/* ---------------------------------------------------------------- versions.c */

/* Leaf version entries (a manifest's inline versions, or a leaf version node's): the last is
 * the latest, kept in *out. */
ckpt_status ocdbt_decode_versions(ckpt_ocdbt *db, ckpt_ocdbt_in *in, const ckpt_ocdbt_file_table *t,
                                  const char *trans, version *out, ckpt_error *err);
/* Interior version entries (a manifest's version nodes when with_heights, or an interior
 * node's children, node_height its height): descends into the last when *out has no version
 * yet. */
ckpt_status ocdbt_decode_version_refs(ckpt_ocdbt *db, ckpt_ocdbt_in *in,
                                      const ckpt_ocdbt_file_table *t, const char *trans,
                                      bool with_heights, unsigned node_height, version *out,
                                      ckpt_error *err);

/* ---------------------------------------------------------------- read.c */

/* Bytewise key order (qsort comparator over entry). */
int ocdbt_cmp_entry(const void *a, const void *b);

#endif
