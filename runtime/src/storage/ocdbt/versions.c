/* storage/ocdbt/versions.c — following an OCDBT version tree (the manifest's inline versions and
 * version nodes, version tree nodes) to the latest generation's B+tree root. */
#include "storage/ocdbt/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The generation-number column shared by leaf and interior entries: n varints, each non-zero and
 * greater than the one before; what names an entry in the error ("version" or "entry"). */
static ckpt_status get_generations(ckpt_ocdbt_in *in, uint64_t n, const char *what, uint64_t *gen,
                                   ckpt_error *err) {
  ckpt_status st = CKPT_OK;
  for (size_t i = 0; i < n && st == CKPT_OK; i++) {
    st = ckpt_ocdbt_get_varint(in, "generation number", &gen[i], err);
    if (st == CKPT_OK && (gen[i] == 0 || (i > 0 && gen[i] <= gen[i - 1])))
      st = ckpt_error_set(err, CKPT_ECORRUPT,
                          "%s: generation numbers must be non-zero and increasing (%s %zu: %llu)",
                          in->where, what, i, (unsigned long long)gen[i]);
  }
  return st;
}

/* Leaf entries (inline versions of a manifest, or a leaf version node): keeps the last. */
ckpt_status ocdbt_decode_versions(ckpt_ocdbt *db, ckpt_ocdbt_in *in, const ckpt_ocdbt_file_table *t,
                                  const char *trans, version *out, ckpt_error *err) {
  uint64_t n;
  ckpt_status st =
      ckpt_ocdbt_get_varint_max(in, "version count", (uint64_t)1 << db->arity_log2, &n, err);
  if (st != CKPT_OK || n == 0)
    return st;
  uint64_t *v = calloc((size_t)n * 8, sizeof *v);
  uint8_t *heights = calloc((size_t)n, 1);
  if (!v || !heights) {
    free(v);
    free(heights);
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  }
  uint64_t *gen = v, *file = v + n, *off = v + 2 * n, *len = v + 3 * n, *stat = v + 4 * n;
  st = get_generations(in, n, "version", gen, err);
  for (size_t i = 0; i < n && st == CKPT_OK; i++)
    st = ckpt_ocdbt_get_u8(in, "root height", &heights[i], err);
  for (size_t i = 0; i < n && st == CKPT_OK; i++)
    st = ckpt_ocdbt_get_varint(in, "root data file id", &file[i], err);
  for (size_t i = 0; i < n && st == CKPT_OK; i++)
    st = ckpt_ocdbt_get_varint(in, "root offset", &off[i], err);
  for (size_t i = 0; i < n && st == CKPT_OK; i++)
    st = ckpt_ocdbt_get_varint(in, "root length", &len[i], err);
  for (size_t k = 0; k < 3 * n && st == CKPT_OK; k++)
    st = ckpt_ocdbt_get_varint(in, "version statistics", &stat[k % n], err);
  for (size_t i = 0; i < n && st == CKPT_OK; i++)
    st = ckpt_ocdbt_get_u64le(in, "commit time", &stat[i], err);
  if (st == CKPT_OK) {
    uint64_t last = n - 1;
    uint64_t limit = (gen[last] - 1) % ((uint64_t)1 << db->arity_log2) + 1;
    if (n > limit)
      st = ckpt_error_set(err, CKPT_ECORRUPT,
                          "%s: %llu versions, at most %llu allowed for "
                          "generation %llu",
                          in->where, (unsigned long long)n, (unsigned long long)limit,
                          (unsigned long long)gen[last]);
  }
  if (st == CKPT_OK && heights[n - 1] > CKPT_OCDBT_MAX_HEIGHT)
    st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: B+tree height %u exceeds %u", in->where,
                        heights[n - 1], CKPT_OCDBT_MAX_HEIGHT);
  if (st == CKPT_OK) {
    size_t i = (size_t)n - 1;
    out->found = true;
    out->generation = gen[i];
    out->root_height = heights[i];
    out->root.offset = off[i];
    out->root.length = len[i];
    free(out->root.transitive);
    out->root.transitive = NULL;
    /* length 0: the version has no root node (an empty database) */
    if (len[i] != 0)
      st = ocdbt_resolve(db, in, t, trans, file[i], &out->root.file, &out->root.transitive, err);
  }
  free(v);
  free(heights);
  return st;
}

static ckpt_status read_version_node(ckpt_ocdbt *db, const node_ref *r, unsigned height,
                                     version *out, ckpt_error *err);

/* Interior entries (version nodes of a manifest when with_heights, or an interior node's
 * children): descends into the last, which holds the latest generation. */
ckpt_status ocdbt_decode_version_refs(ckpt_ocdbt *db, ckpt_ocdbt_in *in,
                                      const ckpt_ocdbt_file_table *t, const char *trans,
                                      bool with_heights, unsigned node_height, version *out,
                                      ckpt_error *err) {
  uint64_t n;
  /* An interior node has at most 2^arity children; a manifest lists nodes of decreasing
   * heights. */
  uint64_t max = with_heights ? CKPT_OCDBT_MAX_HEIGHT + 1u : (uint64_t)1 << db->arity_log2;
  ckpt_status st = ckpt_ocdbt_get_varint_max(in, "version node count", max, &n, err);
  if (st != CKPT_OK || n == 0)
    return st;
  uint64_t *v = calloc((size_t)n * 7, sizeof *v);
  if (!v)
    return ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  uint64_t *gen = v, *file = v + n, *off = v + 2 * n, *len = v + 3 * n, *stat = v + 4 * n;
  st = get_generations(in, n, "entry", gen, err);
  for (size_t i = 0; i < n && st == CKPT_OK; i++)
    st = ckpt_ocdbt_get_varint(in, "node data file id", &file[i], err);
  for (size_t i = 0; i < n && st == CKPT_OK; i++)
    st = ckpt_ocdbt_get_varint(in, "node offset", &off[i], err);
  for (size_t i = 0; i < n && st == CKPT_OK; i++)
    st = ckpt_ocdbt_get_varint(in, "node length", &len[i], err);
  for (size_t i = 0; i < n && st == CKPT_OK; i++)
    st = ckpt_ocdbt_get_varint(in, "generation count", &stat[i], err);
  for (size_t i = 0; i < n && st == CKPT_OK; i++)
    st = ckpt_ocdbt_get_u64le(in, "commit time", &stat[i], err);
  uint8_t last_height = node_height > 0 ? (uint8_t)(node_height - 1) : 0;
  for (size_t i = 0; i < n && st == CKPT_OK && with_heights; i++) {
    uint8_t h;
    st = ckpt_ocdbt_get_u8(in, "version node height", &h, err);
    if (st == CKPT_OK && (h > CKPT_OCDBT_MAX_HEIGHT || (i > 0 && h >= last_height)))
      st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: version node height %u invalid (entry %zu)",
                          in->where, h, i);
    last_height = h;
  }
  /* The latest generation is in the last entry; inline versions of a manifest are newer
   * still, so the caller descends only when it found none. */
  if (st == CKPT_OK && !out->found) {
    size_t i = (size_t)n - 1;
    node_ref c = {0, off[i], len[i], NULL};
    st = ocdbt_resolve(db, in, t, trans, file[i], &c.file, &c.transitive, err);
    if (st == CKPT_OK)
      st = read_version_node(db, &c, last_height, out, err);
    free(c.transitive);
  }
  free(v);
  return st;
}

static ckpt_status read_version_node(ckpt_ocdbt *db, const node_ref *r, unsigned height,
                                     version *out, ckpt_error *err) {
  uint8_t *body;
  size_t n;
  ckpt_status st =
      ocdbt_load_node(db, r, CKPT_OCDBT_VERSION_NODE_MAGIC, "version tree node", &body, &n, err);
  if (st != CKPT_OK)
    return st;
  char where[600];
  ocdbt_node_where(where, sizeof where, db, r, "version tree node");
  ckpt_ocdbt_in in = ckpt_ocdbt_in_make(body, n, where);
  uint8_t arity, h;
  ckpt_ocdbt_file_table t = {0};
  st = ckpt_ocdbt_get_u8(&in, "version tree arity", &arity, err);
  if (st == CKPT_OK && arity != db->arity_log2)
    st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: arity log2 %u differs from the manifest's %u",
                        where, arity, db->arity_log2);
  if (st == CKPT_OK)
    st = ckpt_ocdbt_get_u8(&in, "height", &h, err);
  if (st == CKPT_OK && h != height)
    st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: height %u, expected %u", where, h, height);
  if (st == CKPT_OK)
    st = ckpt_ocdbt_get_file_table(&in, &t, err);
  if (st == CKPT_OK && h == 0)
    st = ocdbt_decode_versions(db, &in, &t, r->transitive, out, err);
  else if (st == CKPT_OK)
    st = ocdbt_decode_version_refs(db, &in, &t, r->transitive, false, h, out, err);
  if (st == CKPT_OK && ckpt_ocdbt_in_left(&in) != 0)
    st = ckpt_error_set(err, CKPT_ECORRUPT, "%s: %zu unexpected bytes at the end", where,
                        ckpt_ocdbt_in_left(&in));
  ckpt_ocdbt_file_table_free(&t);
  free(body);
  return st;
}
