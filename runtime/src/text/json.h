/* text/json.h — the one JSON module of libckpt: every JSON file ckpt writes or reads goes
 * through it (private to libckpt; text/json_write.c and text/json_read.c own it).
 *
 * cJSON's own printer and parser are not used for checkpoint files because they lose data:
 * cJSON_Print writes NaN and infinities as null and prints doubles with 15 significant digits
 * when they "nearly" round-trip (0.30000000000000004 becomes 0.3, 2^53 becomes
 * 9.00719925474099e+15), and cJSON_Parse rejects the NaN/Infinity that Python's json.dumps
 * writes, accepts invalid UTF-8 and gives no line/column.
 *
 * Writing. One writer, in three layouts (CKPT_JSON_STYLE_*) that differ only in separators,
 * escaping of non-ASCII text and key order; the values are written the same way in all:
 *  - numbers: NaN / Infinity / -Infinity (Python's spelling), integral values below 1e17 as
 *    integers, every other double in its shortest round-trip form (Python's repr);
 *  - an integer literal kept as a cJSON_Raw item (see reading) is written digit for digit;
 *  - it refuses what could not be read back as the same value: invalid UTF-8, duplicate object
 *    keys, invalid items, nesting deeper than CKPT_JSON_MAX_DEPTH.
 *
 * Reading (ckpt_json_load) accepts RFC 8259 JSON plus NaN / Infinity / -Infinity (Python's
 * extension), keeps the last of duplicate keys at the first key's position (as Python's dict
 * does), and reports errors as "source:line:col: ...". An integer literal that no double holds
 * exactly (beyond 2^53) becomes a cJSON_Raw item with the literal digits, so it is never
 * silently rounded and is written back unchanged; ckpt_json_get_int64/uint64 read such items
 * (and plain numbers) as exact integers. */
#ifndef CKPT_JSON_TEXT_H
#define CKPT_JSON_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ckpt/error.h"
#include "ckpt/io.h"

#define CKPT_JSON_MAX_DEPTH 1000

/* Layout flags of the writer (combinable; 0 is json.dumps with its defaults). */
#define CKPT_JSON_COMPACT 0x1u /* separators "," and ":" instead of ", " and ": " */
#define CKPT_JSON_UTF8 0x2u    /* non-ASCII text as UTF-8 bytes, not \uXXXX (ensure_ascii=False) */
#define CKPT_JSON_SORT_KEYS 0x4u /* object members in bytewise (= code point) key order */

/* Python's json.dumps(v): Orbax's own files (_METADATA, JSON items, metrics, CLI output). */
#define CKPT_JSON_STYLE_PYTHON 0u
/* json.dumps(v, separators=(",", ":"), ensure_ascii=False), members in the tree's order: the
 * layout _CHECKPOINT_METADATA and record JSON fields have always had (cJSON_PrintUnformatted's). */
#define CKPT_JSON_STYLE_TIGHT (CKPT_JSON_COMPACT | CKPT_JSON_UTF8)
/* TensorStore's nlohmann dump(): compact, raw UTF-8, keys sorted (its objects are std::map):
 * _strings.json, _CHECKSUMS and the _PACKED index. */
#define CKPT_JSON_STYLE_NLOHMANN (CKPT_JSON_COMPACT | CKPT_JSON_UTF8 | CKPT_JSON_SORT_KEYS)

/* Writes item in the given layout (CKPT_JSON_* flags). *out: malloc'ed NUL-terminated text
 * owned by the caller (free()); *len without the NUL. Errors name the offending value by its
 * path ("$.cfg.name"); nothing is written then. */
ckpt_status ckpt_json_dumps(const cJSON *item, unsigned style, char **out, size_t *len,
                            ckpt_error *err);
/* ckpt_json_dumps(item, CKPT_JSON_STYLE_PYTHON, ...): exactly what json.dumps writes. */
ckpt_status ckpt_json_dump(const cJSON *item, char **out, size_t *len, ckpt_error *err);
/* ckpt_json_dumps(value, CKPT_JSON_STYLE_NLOHMANN, ...), under the name the PyTree layout's
 * writers use for _strings.json and _CHECKSUMS. */
ckpt_status ckpt_json_dump_compact(const cJSON *value, char **text, size_t *len, ckpt_error *err);

/* Primitives for documents too large to build as cJSON trees first (_METADATA and the _PACKED
 * index of thousands of arrays); they append exactly what the writer above would. s must be
 * valid UTF-8 (the caller's to check, e.g. with ckpt_tf_utf8_valid: there is no error path
 * here); an invalid byte is copied (CKPT_JSON_UTF8) or escaped as the code point of its value. */
struct ckpt_tf_buf;
/* s as a JSON string; only the CKPT_JSON_UTF8 flag of style matters. */
void ckpt_json_put_string_style(struct ckpt_tf_buf *b, const char *s, size_t n, unsigned style);
/* s as CKPT_JSON_STYLE_NLOHMANN writes strings (raw UTF-8). */
void ckpt_json_put_string(struct ckpt_tf_buf *b, const char *s);
/* v as every style writes numbers (see above). */
void ckpt_json_put_number(struct ckpt_tf_buf *b, double v);

/* Parses text[0..len) (need not be NUL-terminated). source names it in messages (NULL:
 * "<json>"). *out owned by the caller (cJSON_Delete); NULL on failure. Malformed text is
 * CKPT_ECORRUPT. */
ckpt_status ckpt_json_load(const char *text, size_t len, const char *source, cJSON **out,
                           ckpt_error *err);
/* ckpt_json_load with flags: CKPT_JSON_UNIQUE_KEYS makes a repeated object key an error
 * (ckpt's own index files, where a repeated entry means a damaged or hostile file). */
#define CKPT_JSON_UNIQUE_KEYS 0x1u
ckpt_status ckpt_json_load_opts(const char *text, size_t len, const char *source, unsigned flags,
                                cJSON **out, ckpt_error *err);
/* ckpt_json_load_opts with every item and string of *out allocated from arena (util/arena.h):
 * the tree is freed with the arena (ckpt_arena_free), never with cJSON_Delete, and must not be
 * edited with cJSON functions that free or reallocate (Delete, Replace, SetValuestring). Items
 * may be added that the caller also allocates from the arena. For the large documents a
 * restore reads and drops (_METADATA, _CHECKSUMS): one free of a few blocks instead of one
 * per item. On failure the arena may hold part of a tree; the caller frees it as usual. */
struct ckpt_arena;
ckpt_status ckpt_json_load_arena(const char *text, size_t len, const char *source,
                                 unsigned flags, struct ckpt_arena *arena, cJSON **out,
                                 ckpt_error *err);

/* An integer value exactly: a cJSON number holding an integer, or an integer literal kept as
 * a cJSON_Raw item (ckpt_json_load's form for those beyond 2^53). False for anything else,
 * for fractions and for values outside the type's range. */
bool ckpt_json_get_int64(const cJSON *v, int64_t *out);
bool ckpt_json_get_uint64(const cJSON *v, uint64_t *out);

/* A whole file through the I/O layer: at most max_bytes, parsed with the path as source.
 * (Writers dump with ckpt_json_dump and write through their engine group or
 * ckpt_io_write_file, which decide the durability.) */
ckpt_status ckpt_json_read_file(ckpt_io *io, const char *path, size_t max_bytes, cJSON **out,
                                ckpt_error *err);

#endif
