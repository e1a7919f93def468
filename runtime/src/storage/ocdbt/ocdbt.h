/* storage/ocdbt/ocdbt.h — reading an OCDBT database (TensorStore's key-value format, which
 * Orbax uses by default for array data; format.h has the layout, docs/format.md "OCDBT" what
 * ckpt reads).
 *
 * ckpt_ocdbt_open reads the manifest (single-file or numbered), follows the version tree to the
 * latest generation and reads that version's whole B+tree into a sorted in-memory table of
 * keys: a checkpoint's database holds a few keys per array (`<param>/.zarray`, one per chunk),
 * so lookups afterwards cost no I/O. Values are either inline bytes (held by the database) or
 * byte ranges of data files, read through a read-only descriptor per data file opened lazily
 * (O_NOFOLLOW, through ckpt/io.h) and shared by all readers, like storage/packed.h's.
 *
 * Ownership: a ckpt_ocdbt is the caller's (ckpt_ocdbt_close); keys, values and paths it returns
 * are borrowed from it. After open it is read-only except for the lazy descriptor table, which
 * a mutex guards: any number of threads may look up and read concurrently.
 *
 * Everything read is untrusted: every length and offset is checked before use, node sizes are
 * bounded, data file paths must stay inside the database directory, and errors name the file
 * and the place ("'<dir>/d/ab12...': B+tree node at offset 123: key prefix length 9 exceeds
 * previous key length 4"). A missing manifest or data file is CKPT_EINCOMPLETE, damage
 * CKPT_ECORRUPT. */
#ifndef CKPT_STORAGE_OCDBT_OCDBT_H
#define CKPT_STORAGE_OCDBT_OCDBT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt/error.h"
#include "ckpt/io.h"

typedef struct ckpt_ocdbt ckpt_ocdbt;

/* Where a key's value is. */
typedef struct ckpt_ocdbt_value {
  bool is_inline;
  const uint8_t *bytes; /* inline: length bytes owned by the database */
  uint32_t file;        /* indirect: data file index (ckpt_ocdbt_file_path) */
  uint64_t offset;      /* indirect: byte offset in the data file */
  uint64_t length;
} ckpt_ocdbt_value;

/* True when dir holds a manifest.ocdbt (any kind, not checked further): how a reader tells
 * that an item's arrays are in OCDBT when _METADATA does not say. */
bool ckpt_ocdbt_present(ckpt_io *io, const char *dir);

/* Opens the database in dir (see above). *out is NULL on failure. */
ckpt_status ckpt_ocdbt_open(ckpt_io *io, const char *dir, ckpt_ocdbt **out, ckpt_error *err);
/* Closes the data files and frees everything. NULL is a no-op. */
void ckpt_ocdbt_close(ckpt_ocdbt *db);

/* Opens a database from an in-memory manifest (the fuzz target and tests): data files are
 * still read from dir. where names the manifest in messages. */
ckpt_status ckpt_ocdbt_open_manifest(ckpt_io *io, const char *dir, const void *manifest, size_t n,
                                     const char *where, ckpt_ocdbt **out, ckpt_error *err);

const char *ckpt_ocdbt_dir(const ckpt_ocdbt *db);
/* Generation number of the version read (0: the database has no version). */
uint64_t ckpt_ocdbt_generation(const ckpt_ocdbt *db);

/* The key table, sorted bytewise. Keys are NUL-terminated for convenience; *len (may be NULL)
 * is the exact length (keys could hold NUL bytes; Orbax's never do). */
size_t ckpt_ocdbt_count(const ckpt_ocdbt *db);
const char *ckpt_ocdbt_key(const ckpt_ocdbt *db, size_t i, size_t *len);
const ckpt_ocdbt_value *ckpt_ocdbt_value_at(const ckpt_ocdbt *db, size_t i);
/* The entry holding key (NUL-terminated), or false. */
bool ckpt_ocdbt_find(const ckpt_ocdbt *db, const char *key, size_t *index);
/* The entries whose keys start with prefix: [*begin, *end). */
void ckpt_ocdbt_prefix_range(const ckpt_ocdbt *db, const char *prefix, size_t *begin, size_t *end);

/* Data files referenced by the values (deduplicated): the path, dir/<relative path>. */
size_t ckpt_ocdbt_n_files(const ckpt_ocdbt *db);
const char *ckpt_ocdbt_file_path(const ckpt_ocdbt *db, uint32_t file);

/* For a reader that preads an indirect value itself (the zarr chunk reader): the shared
 * descriptor of the value's data file, after checking that the file exists and that the
 * value's range lies inside it. *path is borrowed. key names the value in messages: a missing
 * data file is CKPT_EINCOMPLETE, a range past its end CKPT_ECORRUPT. Thread-safe. */
ckpt_status ckpt_ocdbt_value_fd(ckpt_ocdbt *db, const ckpt_ocdbt_value *v, const char *key, int *fd,
                                const char **path, ckpt_error *err);

/* Reads value i into buf (at least its length bytes). Thread-safe. */
ckpt_status ckpt_ocdbt_read(ckpt_ocdbt *db, size_t i, void *buf, ckpt_error *err);
/* Reads the value of key into a malloc'ed buffer with a NUL byte after it (caller frees),
 * refusing values longer than max. A missing key is CKPT_ENOENT (message names the key and
 * the database). */
ckpt_status ckpt_ocdbt_read_key(ckpt_ocdbt *db, const char *key, size_t max, void **data, size_t *n,
                                ckpt_error *err);

/* A one-entry memo a reader of the database may keep with it: what it derived last from a
 * value's bytes (the zarr reader: the decoded .zarray, so that 10,000 arrays with the same
 * metadata are decoded once). put copies the source bytes and the result; get copies the result
 * into out and returns true when src (n bytes) equals the bytes last put and out_len matches.
 * Thread-safe (the database's mutex). put keeps the previous memo when out of memory. */
bool ckpt_ocdbt_memo_get(ckpt_ocdbt *db, const void *src, size_t n, void *out, size_t out_len);
void ckpt_ocdbt_memo_put(ckpt_ocdbt *db, const void *src, size_t n, const void *result,
                         size_t result_len);

#endif
