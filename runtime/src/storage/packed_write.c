/* storage/packed_write.c — the packed writer: the packed leaves of a write plan (zarr_write.h)
 * written as one data file and its _PACKED index (storage/packed.h is the format; packed.c its
 * codec). Split from zarr_write.c, which schedules it in its second group, because the route
 * has its own jobs and memory rules.
 *
 * The chunks are laid out in one data file at aligned offsets; one function job per 4 MiB
 * segment prepares its chunks, takes their CRCs and submits one vectored write straight from
 * their bytes (no gather copy, no holes), and the file is closed (fsync'd) after the last
 * segment; a job after the segments writes _PACKED. */
#include <fcntl.h>
#include <sys/uio.h>
#include <stdint.h>
#include <stdlib.h>

#include "storage/packed.h"
#include "storage/zarr_write_internal.h"
#include "util/crc32c.h"
#include "util/path.h"

/* A run of consecutive packed chunks written together by one vectored write. */
typedef struct ckpt_pack_segment {
  ckpt_write_plan *job;
  size_t lo, hi;  /* packed[lo .. hi) */
  uint64_t start; /* file offset of the first chunk */
  uint64_t len;
  uint64_t reserved; /* memory-budget bytes held and not yet handed to a write */
} pack_segment;

/* Bytes per segment (one vectored write): large enough for long sequential writes, small
 * enough that a few segments keep every worker busy (40 MiB of small leaves = 10 segments). */
#define PACK_SEGMENT ((uint64_t)4 << 20)

/* on_done of a segment's function job (also when canceled): budget not handed to a write goes
 * back. */
static void segment_done(void *arg, void *buf, ckpt_status status) {
  (void)buf;
  (void)status;
  pack_segment *g = arg;
  ckpt_write_release_reserved(g->job, &g->reserved);
}

/* The alignment gaps between packed chunks (each under CKPT_PACKED_ALIGN bytes) are written
 * from here. */
static const unsigned char k_pack_gap[CKPT_PACKED_ALIGN];

/* on_done of a segment's vectored write (also when canceled or failed): the kernel has the
 * bytes, so the chunks' private copies (edge, cast, zstd) can go. The snapshot's bytes stay
 * until the plan is freed, after the group. */
static void segment_written(void *arg, void *buf, ckpt_status status) {
  (void)buf;
  (void)status;
  pack_segment *g = arg;
  for (size_t i = g->lo; i < g->hi; i++) {
    ckpt_write_chunk *ch = &g->job->chunks[g->job->packed[i]];
    free(ch->own);
    ch->own = NULL;
    ch->data = NULL;
  }
}

/* Function job: prepares its chunks, records each chunk's CRC-32C, and submits one vectored
 * write of the segment straight from the chunks' bytes (the snapshot's, the caller's in a
 * zero-copy save, or a chunk's private copy), alignment gaps from k_pack_gap. No gather copy
 * and no fresh segment memory: docs/performance.md has the A/B figures. Unlike chunk files,
 * packed data leaves no holes for zero blocks (packed arrays are small; the check would cost a
 * pass and the writes would split). */
static ckpt_status task_pack_segment(void *arg, ckpt_error *err) {
  pack_segment *g = arg;
  ckpt_write_plan *j = g->job;
  size_t cap = 2 * (g->hi - g->lo);
  struct iovec *iov = malloc((cap > 0 ? cap : 1) * sizeof *iov);
  if (iov == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "'%s': out of memory for a write list",
                          CKPT_PACKED_DATA_FILE);
  size_t n = 0;
  uint64_t pos = g->start;
  for (size_t i = g->lo; i < g->hi; i++) {
    ckpt_write_chunk *ch = &j->chunks[j->packed[i]];
    char key[CKPT_ZARR_KEY_MAX];
    ckpt_status st = ckpt_write_prepare_chunk(ch, key, err);
    if (st != CKPT_OK) {
      free(iov);
      return st;
    }
    ch->crc = ckpt_crc32c(0, ch->data, (size_t)ch->bytes);
    if (ch->offset > pos)
      iov[n++] = (struct iovec){.iov_base = (void *)(uintptr_t)k_pack_gap,
                                .iov_len = (size_t)(ch->offset - pos)};
    iov[n++] =
        (struct iovec){.iov_base = (void *)(uintptr_t)ch->data, .iov_len = (size_t)ch->bytes};
    pos = ch->offset + ch->bytes;
  }
  /* The write takes over the segment's budget reservation and releases it when done. */
  bool hand = g->len > 0 && g->reserved >= g->len;
  ckpt_engine_job_opts o = {.budget_reserved = hand, .on_done = segment_written, .on_done_arg = g};
  ckpt_status st = ckpt_engine_writev(j->group, j->pfile, iov, n, g->start, &o, NULL, err);
  if (st == CKPT_OK && hand)
    g->reserved -= g->len;
  free(iov); /* copied by the engine */
  return st;
}

/* _PACKED as compact JSON; *text malloc'ed (caller frees). */
ckpt_status ckpt_packed_index_text(ckpt_write_plan *j, char **text, size_t *len, ckpt_error *err) {
  size_t na = j->n_packed_leaves;
  const char **params = malloc((na ? na : 1) * sizeof *params);
  const ckpt_zarr_meta **metas = malloc((na ? na : 1) * sizeof *metas);
  size_t *slot = malloc((j->n_leaves ? j->n_leaves : 1) * sizeof *slot);
  ckpt_packed_row *rows = malloc((j->n_packed ? j->n_packed : 1) * sizeof *rows);
  ckpt_status st;
  if (params == NULL || metas == NULL || slot == NULL || rows == NULL) {
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory building %s", CKPT_PACKED_INDEX_FILE);
  } else {
    size_t k = 0;
    for (size_t i = 0; i < j->n_leaves; i++) {
      if (!j->leaves[i].packed)
        continue;
      slot[i] = k;
      params[k] = j->meta.entries[j->leaves[i].entry].param;
      metas[k++] = &j->leaves[i].zm;
    }
    for (size_t i = 0; i < j->n_packed; i++) {
      const ckpt_write_chunk *c = &j->chunks[j->packed[i]];
      rows[i] = (ckpt_packed_row){.array = slot[c->leaf],
                                  .linear = c->linear,
                                  .offset = c->offset,
                                  .nbytes = c->bytes,
                                  .crc = c->crc};
    }
    st = ckpt_packed_encode(na, params, metas, j->n_packed, rows, text, len, err);
    if (st == CKPT_OK) { /* for _CHECKSUMS' "files", written after it */
      j->packed_index_crc = ckpt_crc32c(0, *text, *len);
      j->packed_index_bytes = *len;
    }
  }
  free(params);
  free(metas);
  free(slot);
  free(rows);
  return st;
}

/* Function job after every segment job (every CRC is known): encodes the _PACKED index and
 * submits its durable write, while the data file is made durable (only _METADATA, written
 * last, says the item is complete). */
static ckpt_status task_write_packed_index(void *arg, ckpt_error *err) {
  ckpt_write_plan *j = arg;
  char *text = NULL, *path = NULL;
  size_t len = 0;
  ckpt_status st = ckpt_packed_index_text(j, &text, &len, err);
  if (st == CKPT_OK && (path = ckpt_path_join(j->dir, CKPT_PACKED_INDEX_FILE)) == NULL) {
    free(text);
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  }
  if (st == CKPT_OK)
    st = ckpt_engine_write_file(j->group, path, text, len, NULL, err); /* takes text */
  free(path);
  if (st == CKPT_OK)
    j->packed_index_written = true;
  return st;
}

/* Function job after every segment job: submits the data file's durable close (after every
 * write the segments submitted, as the close is a barrier for the file's earlier jobs). */
static ckpt_status task_pack_close(void *arg, ckpt_error *err) {
  ckpt_write_plan *j = arg;
  return ckpt_engine_file_close(j->group, j->pfile, NULL, NULL, err);
}

/* Lays out the packed chunks (compressing zstd ones first: their size decides the offsets of
 * the rest), then opens the data file and submits one job per segment and the closing job.
 * Runs on the save's background thread, before the zarr arrays' jobs, so it overlaps them. */
ckpt_status ckpt_packed_submit(ckpt_write_plan *j, ckpt_error *err) {
  if (j->n_packed_leaves == 0)
    return CKPT_OK;
  j->packed = malloc((j->n_chunks ? j->n_chunks : 1) * sizeof *j->packed);
  if (j->packed == NULL)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  for (size_t i = 0; i < j->n_chunks; i++)
    if (j->leaves[j->chunks[i].leaf].packed)
      j->packed[j->n_packed++] = i;
  if (j->n_packed == 0)
    return CKPT_OK; /* packed arrays with an empty dimension: no bytes, no data file */
  uint64_t off = 0;
  for (size_t i = 0; i < j->n_packed; i++) {
    ckpt_write_chunk *ch = &j->chunks[j->packed[i]];
    const ckpt_zarr_meta *m = &j->leaves[ch->leaf].zm;
    if (m->compressor == CKPT_COMPRESSION_ZSTD) {
      char key[CKPT_ZARR_KEY_MAX];
      ckpt_status st = ckpt_write_prepare_chunk(ch, key, err);
      if (st != CKPT_OK)
        return st;
    } else {
      ch->bytes = ckpt_zarr_chunk_elements(m) * (uint64_t)ckpt_dtype_size(m->dtype);
    }
    off = (off + CKPT_PACKED_ALIGN - 1) / CKPT_PACKED_ALIGN * CKPT_PACKED_ALIGN;
    ch->offset = off;
    off += ch->bytes;
  }
  j->segments = calloc(j->n_packed, sizeof *j->segments);
  ckpt_future **done = calloc(j->n_packed, sizeof *done);
  char *path = ckpt_path_join(j->dir, CKPT_PACKED_DATA_FILE);
  ckpt_status st = CKPT_OK;
  if (j->segments == NULL || done == NULL || path == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  /* Segments: consecutive chunks, split where the next chunk would pass PACK_SEGMENT. */
  for (size_t i = 0; st == CKPT_OK && i < j->n_packed; i++) {
    ckpt_write_chunk *ch = &j->chunks[j->packed[i]];
    pack_segment *g = j->n_segments ? &j->segments[j->n_segments - 1] : NULL;
    if (g == NULL || ch->offset + ch->bytes - g->start > PACK_SEGMENT) {
      g = &j->segments[j->n_segments++];
      *g = (pack_segment){.job = j, .lo = i, .hi = i, .start = ch->offset};
    }
    g->hi = i + 1;
    g->len = ch->offset + ch->bytes - g->start;
  }
  if (st == CKPT_OK)
    st = ckpt_engine_file_open(j->group, path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0666,
                               CKPT_ENGINE_FILE_DURABLE, &j->pfile, err);
  size_t submitted = 0;
  for (; st == CKPT_OK && submitted < j->n_segments; submitted++) {
    /* The memory budget bounds the segments between submission and durability, as it bounds
     * chunks: this thread (never a worker) waits here while it is used up. */
    pack_segment *g = &j->segments[submitted];
    g->reserved = g->len;
    ckpt_engine_reserve(j->engine_used, g->reserved);
    ckpt_engine_job_opts o = {.label = "packed arrays", .on_done = segment_done, .on_done_arg = g};
    st = ckpt_engine_call(j->group, task_pack_segment, g, &o, &done[submitted], err);
    if (st != CKPT_OK) {
      segment_done(g, NULL, st); /* not submitted: its on_done will not run */
      break;
    }
  }
  if (st == CKPT_OK) {
    ckpt_engine_job_opts o = {.after = done, .n_after = submitted, .label = "writing _PACKED"};
    st = ckpt_engine_call(j->group, task_write_packed_index, j, &o, NULL, err);
  }
  if (j->pfile != NULL) {
    /* Also after a failed submission, so the descriptor is closed (without fsync). */
    ckpt_engine_job_opts o = {.after = done, .n_after = submitted, .label = "closing packed data"};
    ckpt_status cst =
        ckpt_engine_call(j->group, task_pack_close, j, &o, NULL, st == CKPT_OK ? err : NULL);
    if (st == CKPT_OK)
      st = cst;
  }
  free(path);
  free(done);
  return st;
}
