/* text/json.h — JSON text for cJSON trees, exact and compatible with Python's json.
 *
 * cJSON's own printer and parser are not used for checkpoint files because they lose data:
 * cJSON_Print writes NaN and infinities as null and may print a double with 15 digits that
 * reads back one ulp off, and cJSON_Parse rejects the NaN/Infinity that Python's json.dumps
 * writes and gives no line/column. These functions fix exactly that (private to libckpt;
 * other parts of the runtime may use them for their JSON files):
 *
 *  - ckpt_json_dump writes what json.dumps would for the same value: separators ", " and
 *    ": ", non-ASCII escaped as \uXXXX, NaN / Infinity / -Infinity, every double in its
 *    shortest round-trip form (integral values below 1e17 as integers). It refuses what
 *    Python could not read back as the same value: invalid UTF-8, duplicate object keys,
 *    invalid items, nesting deeper than CKPT_JSON_MAX_DEPTH.
 *  - ckpt_json_load accepts RFC 8259 JSON plus NaN / Infinity / -Infinity (Python's
 *    extension), keeps the last of duplicate keys at the first key's position (as Python's
 *    dict does), and reports errors as "source:line:col: ...". An integer literal that no
 *    double holds exactly (beyond 2^53) becomes a cJSON_Raw item with the literal digits,
 *    so it is never silently rounded and is written back unchanged. */
#ifndef CKPT_JSON_TEXT_H
#define CKPT_JSON_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "ckpt/error.h"
#include "ckpt/io.h"

#define CKPT_JSON_MAX_DEPTH 1000

/* *out: malloc'ed NUL-terminated text owned by the caller (free()); *len without the NUL. */
ckpt_status ckpt_json_dump(const cJSON *item, char **out, size_t *len, ckpt_error *err);

/* Parses text[0..len) (need not be NUL-terminated). source names it in messages (NULL:
 * "<json>"). *out owned by the caller (cJSON_Delete); NULL on failure. Malformed text is
 * CKPT_ECORRUPT. */
ckpt_status ckpt_json_load(const char *text, size_t len, const char *source, cJSON **out,
                           ckpt_error *err);

/* Whole files through the I/O layer. write: dump + ckpt_io_write_file. read: at most
 * max_bytes, parsed with the path as source. */
ckpt_status ckpt_json_write_file(ckpt_io *io, const char *path, const cJSON *item, bool durable,
                                 ckpt_error *err);
ckpt_status ckpt_json_read_file(ckpt_io *io, const char *path, size_t max_bytes, cJSON **out,
                                ckpt_error *err);

#endif
