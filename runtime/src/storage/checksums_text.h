/* storage/checksums_text.h — a write plan's _CHECKSUMS printed as text straight from the plan.
 *
 * The document is the one zarr_io.h describes (ckpt_checksums_new and its adders build it as a
 * cJSON tree, for the writers of other files), in TensorStore's layout (CKPT_JSON_STYLE_NLOHMANN:
 * compact, keys sorted bytewise at every level), byte for byte what dumping that tree writes.
 * Printing it from the plan's CRCs instead of building 20,000 cJSON entries (four allocations
 * each) and dumping them took the small state's _CHECKSUMS from 20-30 ms to a few: it was the
 * longest job of an OCDBT save after the data was written (docs/performance.md).
 *
 * Two steps, so that OCDBT can print the arrays while its databases are still being encoded:
 * begin prints every chunk's entry and lists the metadata files known then; files added later
 * (OCDBT's node and manifest files) join the list; finish sorts the list and prints the whole
 * document. Messages name the parameter, chunk or file, not the item: the writer prefixes
 * "while writing '<item>'". Private to the zarr writer (zarr_write.c). */
#ifndef CKPT_STORAGE_CHECKSUMS_TEXT_H
#define CKPT_STORAGE_CHECKSUMS_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "storage/zarr_io.h"
#include "storage/zarr_write.h"

typedef struct ckpt_sums_text ckpt_sums_text;

/* Prints "arrays" from j's chunk sums (a multi-process plan: its merged sums) and lists
 * _METADATA (j->meta_crc, j->meta_len), _strings.json (when strings->present), each leaf's
 * .zarray or zarr.json, and a multi-process plan's extra files. Parameter names must be valid
 * UTF-8 and unique (the plan's are), a leaf's chunks consecutive (zarr_write.h); a chunk key or
 * file listed twice is CKPT_EINVAL, as the JSON writer refuses a repeated key. *out owned by the
 * caller (ckpt_sums_text_free or ckpt_sums_text_finish). */
ckpt_status ckpt_sums_text_begin(const ckpt_write_plan *j, const ckpt_file_sum *strings,
                                 ckpt_sums_text **out, ckpt_error *err);
/* Adds one "files" entry (rel, relative to the item directory, is copied). */
ckpt_status ckpt_sums_text_add_file(ckpt_sums_text *s, const char *rel, uint32_t crc,
                                    uint64_t bytes, ckpt_error *err);
/* The whole document into *text (malloc'ed, NUL-terminated; *len without the NUL). s is freed,
 * also on error. */
ckpt_status ckpt_sums_text_finish(ckpt_sums_text *s, char **text, size_t *len, ckpt_error *err);
void ckpt_sums_text_free(ckpt_sums_text *s); /* NULL is a no-op */

#endif
