/* storage/ocdbt/ocdbt_write.h — the OCDBT writer: a save's arrays as Orbax's OCDBT databases.
 *
 * With use_ocdbt (ckpt_checkpointer_options.use_ocdbt) the zarr writer (storage/zarr_write.c)
 * hands the arrays of its write plan here instead of writing a zarr directory per array. The
 * item directory then holds what Orbax writes (docs/format.md, "OCDBT"):
 *
 *   <item>/ocdbt.process_0/d/<32 hex>     values of more than 1024 bytes, back to back (a new
 *                                         file once one reaches the target size, 2 GiB)
 *   <item>/ocdbt.process_0/d/<32 hex>     the process database's B+tree nodes
 *   <item>/ocdbt.process_0/manifest.ocdbt the process database's manifest
 *   <item>/d/<32 hex>                     the root database's B+tree: every process's keys, the
 *                                         large values referred to in place through the base
 *                                         path "ocdbt.process_<i>/" of its data-file tables
 *   <item>/manifest.ocdbt                 the root database's manifest (what readers open)
 *
 * Keys are the zarr v2 paths relative to the item: "<param>/.zarray" (the .zarray text) and
 * "<param>/<chunk key>" (the chunk's stored bytes, exactly as a chunk file would hold them).
 * Values of at most 1024 bytes are inline in the B+tree leaves. Every chunk's CRC-32C still
 * goes to the item's _CHECKSUMS, as for zarr directories.
 *
 * Durability: every data, node and manifest file is written through the engine and closed
 * durably, each new directory fsync'd after its last entry; the write returns only when all of
 * it is durable, and reports the paths to the plan's note_durable (the commit skips them). */
#ifndef CKPT_STORAGE_OCDBT_OCDBT_WRITE_H
#define CKPT_STORAGE_OCDBT_OCDBT_WRITE_H

#include "storage/ocdbt/encode.h"
#include "storage/zarr_write.h"

/* One process's database as the primary's merge sees it: its keys (sorted, distinct) and the
 * value files their indirect entries name ("d/<32 hex>", relative to ocdbt.process_<process>/).
 * Multi-process saves gather one per process; a single-process save passes its own. */
typedef struct ckpt_ocdbt_process_table {
  unsigned process;
  size_t n_files;
  const char *const *files;
  size_t n;
  const ckpt_ocdbt_kv *kvs;
} ckpt_ocdbt_process_table;

/* The root database over n_tables process databases: its B+tree nodes (for the root's
 * node_file, "d/<32 hex>") into *nodes and its manifest into *manifest (both start empty).
 * A key present in two processes is CKPT_EINVAL unless both hold the same inline bytes (a
 * replicated .zarray); then it is stored once. */
ckpt_status ckpt_ocdbt_merge_encode(const ckpt_ocdbt_process_table *tables, size_t n_tables,
                                    const ckpt_ocdbt_config *config, const char *node_file,
                                    size_t target_node_bytes, uint64_t commit_time_ns,
                                    ckpt_ocdbt_buf *nodes, ckpt_ocdbt_buf *manifest,
                                    ckpt_error *err);

/* Work of the caller (the zarr writer's item files) run as jobs of the OCDBT writer's one
 * engine group, so that all of a save's files are written and made durable together, with one
 * wait. Each may be NULL, gets the plan as its argument and may submit writes to plan->group:
 *   first         starts with the values, with no prerequisite (_METADATA, which does not
 *                 depend on the data);
 *   values_known  once `first` is done and every value's CRC and size are known, in parallel
 *                 with the encoding of the databases (most of _CHECKSUMS);
 *   last          once `values_known` is done and plan->ocdbt_files is known (the databases'
 *                 files: the rest of _CHECKSUMS).
 * The data may still be on its way to the disk while they run. */
typedef struct ckpt_ocdbt_write_jobs {
  ckpt_status (*first)(void *plan, ckpt_error *err);
  ckpt_status (*values_known)(void *plan, ckpt_error *err);
  ckpt_status (*last)(void *plan, ckpt_error *err);
} ckpt_ocdbt_write_jobs;

/* Writes every array of the plan (plan->ocdbt) as the process database of process 0 and the
 * root database over it (multi-process: only this process's database,
 * ocdbt.process_<plan->process>/, kept in plan->ocdbt_db for the merge), durably, on plan->engine_used, in one engine group with the caller's
 * jobs (NULL: none). Fills each chunk's crc and bytes and each leaf's zcrc and zbytes (for
 * _CHECKSUMS), and plan->ocdbt_files (the small files written, with their CRCs). Returns once
 * everything the group wrote is durable. Runs on the save's background thread. */
ckpt_status ckpt_ocdbt_write(ckpt_write_plan *plan, const ckpt_ocdbt_write_jobs *jobs,
                             ckpt_error *err);

/* A database built key by key, synchronously through ckpt/io.h (the `ckpt convert` tool, which
 * has the values of an existing item rather than a write plan): values over the inline limit
 * are appended to value files of <item>/ocdbt.process_0/d/ as they are put, the others kept;
 * finish sorts the keys, makes the value files durable and writes both databases' nodes and
 * manifests durably (each directory fsync'd after its entries). The layout is the writer's. */
typedef struct ckpt_ocdbt_builder ckpt_ocdbt_builder;
ckpt_status ckpt_ocdbt_builder_new(ckpt_io *io, const char *item_dir, uint64_t target_file_bytes,
                                   ckpt_ocdbt_builder **out, ckpt_error *err);
/* value is copied (inline) or written now; keys must be distinct (checked at finish). */
ckpt_status ckpt_ocdbt_builder_put(ckpt_ocdbt_builder *b, const char *key, const void *value,
                                   size_t n, ckpt_error *err);
ckpt_status ckpt_ocdbt_builder_finish(ckpt_ocdbt_builder *b, ckpt_error *err);
/* After finish: the node and manifest files written (relative to the item), with their sums. */
size_t ckpt_ocdbt_builder_files(const ckpt_ocdbt_builder *b, const ckpt_write_file_sum **sums);
void ckpt_ocdbt_builder_free(ckpt_ocdbt_builder *b); /* NULL is a no-op */

/* Multi-process saves (docs/multiprocess.md, docs/format.md "OCDBT: several processes"): what
 * the writer keeps of this process's database ocdbt.process_<plan->process>/ for the handler's
 * gather to the primary (plan->ocdbt_db; NULL when this process stored no key). kvs are sorted;
 * their keys are owned here, their inline values borrowed from the plan (the chunks' bytes, the
 * .zarray texts), which outlives the gather. files: the value files, "d/<32 hex>". */
typedef struct ckpt_ocdbt_process_db {
  size_t n;
  ckpt_ocdbt_kv *kvs;
  char **keys;
  size_t n_files;
  char (*files)[CKPT_OCDBT_DATA_NAME_HEX + 3];
} ckpt_ocdbt_process_db;
void ckpt_ocdbt_process_db_free(ckpt_ocdbt_process_db *db); /* NULL is a no-op */

/* Whether the plan's process stores any key: every process its chunks, the primary (or a
 * single process) also every leaf's .zarray / zarr.json. No key, no database. */
bool ckpt_ocdbt_plan_has_keys(const ckpt_write_plan *plan);

/* Multi-process saves, on the primary once every process's database is durable
 * (storage/ocdbt/ocdbt_merge.c): the root database over the n_tables process tables
 * (ckpt_ocdbt_merge_encode), its node file and manifest.ocdbt written durably (<item>/d
 * created and fsync'd), their sums appended to plan->ocdbt_files for _CHECKSUMS, and the root's
 * entries and each listed process directory reported to plan->note_durable. */
ckpt_status ckpt_ocdbt_write_root(ckpt_write_plan *plan, const ckpt_ocdbt_process_table *tables,
                                  size_t n_tables, ckpt_error *err);

/* The paths (relative to the item directory) the OCDBT writer made durable, for the commit's
 * claims: the two top-level entries and the process directory. */
extern const char *const ckpt_ocdbt_durable_entries[3];

#endif
