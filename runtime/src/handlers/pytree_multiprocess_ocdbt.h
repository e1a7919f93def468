/* handlers/pytree_multiprocess_ocdbt.h — the OCDBT merge of a multi-process PyTree save
 * (pytree_multiprocess_ocdbt.c; docs/multiprocess.md "OCDBT"), private to handlers/ (and its
 * tests, which feed the parser malformed tables).
 *
 * Within ckpt_pt_finish_item, once every process's database is durable, every process sends
 * the primary its database's key table (ckpt_pt_ocdbt_encode_table; the wire format is at the
 * top of the .c); the primary parses and checks every table (ckpt_pt_ocdbt_parse_tables) and
 * writes the root database over them (storage's ckpt_ocdbt_write_root). */
#ifndef CKPT_SRC_HANDLERS_PYTREE_MULTIPROCESS_OCDBT_H
#define CKPT_SRC_HANDLERS_PYTREE_MULTIPROCESS_OCDBT_H

#include <stdbool.h>
#include <stddef.h>

#include "ckpt/error.h"
#include "storage/ocdbt/ocdbt_write.h"

/* Every process's table as the primary parsed it: tables[r] is process r's (its keys and
 * inline values borrowed from the gathered bytes, which must outlive it). */
typedef struct ckpt_pt_ocdbt_tables {
  int size;
  ckpt_ocdbt_process_table *tables;
  ckpt_ocdbt_kv **kvs;
  char (**names)[CKPT_OCDBT_DATA_NAME_HEX + 3];
  const char ***files; /* per process: pointers into names */
} ckpt_pt_ocdbt_tables;

/* The gather and, on the primary, the parse and (when write) the root database. Every process
 * calls it (a collective); errors name the item directory and the process. */
ckpt_status ckpt_pt_ocdbt_merge(ckpt_write_plan *plan, bool write, ckpt_error *err);

/* This process's table (plan->ocdbt_db, or an empty one; its database files from
 * plan->ocdbt_files) appended to *b; b->failed when out of memory. */
void ckpt_pt_ocdbt_encode_table(const ckpt_write_plan *plan, ckpt_ocdbt_buf *b);

/* Parses the gathered tables (process r's sizes[r] bytes, back to back in all), checking every
 * count, length, name and index (CKPT_ECORRUPT naming the process otherwise). The database
 * files of every process but `self` are appended to plan->ocdbt_files (for _CHECKSUMS). *out
 * is empty on error; free with ckpt_pt_ocdbt_tables_free. */
ckpt_status ckpt_pt_ocdbt_parse_tables(ckpt_write_plan *plan, int self, const void *all,
                                       const size_t *sizes, int size, ckpt_pt_ocdbt_tables *out,
                                       ckpt_error *err);
void ckpt_pt_ocdbt_tables_free(ckpt_pt_ocdbt_tables *t);

#endif
