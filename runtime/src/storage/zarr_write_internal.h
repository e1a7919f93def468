/* storage/zarr_write_internal.h — what the zarr writer (zarr_write.c) and the OCDBT writer
 * (ocdbt/ocdbt_write.c) share: both prepare chunks the same way. Private to those two files. */
#ifndef CKPT_STORAGE_ZARR_WRITE_INTERNAL_H
#define CKPT_STORAGE_ZARR_WRITE_INTERNAL_H

#include "storage/zarr_write.h"

/* Prepares the stored bytes of one chunk (once): a pointer into the snapshot when the chunk is
 * one run of it, else a copy in ch->own (edge chunks padded, casts, zstd). *key receives the
 * chunk key (at least CKPT_ZARR_KEY_MAX bytes). */
ckpt_status ckpt_write_prepare_chunk(ckpt_write_chunk *ch, char *key, ckpt_error *err);

/* Gives memory-budget bytes not handed to a write back to the engine (*reserved becomes 0). */
void ckpt_write_release_reserved(ckpt_write_plan *j, uint64_t *reserved);

/* Waits for j->group (canceled first when st is an error) and frees it; returns the first
 * error (st, else the group's). */
ckpt_status ckpt_write_end_group(ckpt_write_plan *j, ckpt_status st, ckpt_error *err);

#endif
