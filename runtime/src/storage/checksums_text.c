/* storage/checksums_text.c — a write plan's _CHECKSUMS printed straight from the plan
 * (checksums_text.h): the "arrays" object in one pass over the leaves sorted by parameter name,
 * the "files" object from a list sorted at the end. Strings and numbers go through the JSON
 * writer's own primitives (text/json.h), so the text is what dumping the cJSON document writes. */
#include "storage/checksums_text.h"

#include <stdlib.h>
#include <string.h>

#include "storage/pytree_meta.h"
#include "text/json.h"
#include "util/text.h"

/* One "files" entry; its name is at off in the names buffer (a pointer once finish sorts). */
typedef struct file_entry {
  size_t off;
  const char *name;
  uint32_t crc;
  uint64_t bytes;
} file_entry;

struct ckpt_sums_text {
  ckpt_tf_buf arrays; /* the "arrays" object's text */
  ckpt_tf_buf names;  /* every file name, NUL-terminated, back to back */
  file_entry *files;
  size_t n_files, cap_files;
};

void ckpt_sums_text_free(ckpt_sums_text *s) {
  if (s == NULL)
    return;
  ckpt_tf_buf_free(&s->arrays);
  ckpt_tf_buf_free(&s->names);
  free(s->files);
  free(s);
}

static ckpt_status oom(ckpt_error *err) {
  return ckpt_error_set(err, CKPT_ENOMEM, "out of memory building _CHECKSUMS");
}

/* Adds a file entry named a, or a + "/" + b when b is not NULL. */
static ckpt_status add_file2(ckpt_sums_text *s, const char *a, const char *b, uint32_t crc,
                             uint64_t bytes, ckpt_error *err) {
  if (s->n_files == s->cap_files) {
    size_t cap = s->cap_files ? 2 * s->cap_files : 16;
    file_entry *f = realloc(s->files, cap * sizeof *f);
    if (f == NULL)
      return oom(err);
    s->files = f;
    s->cap_files = cap;
  }
  s->files[s->n_files++] = (file_entry){.off = s->names.len, .crc = crc, .bytes = bytes};
  ckpt_tf_buf_puts(&s->names, a);
  if (b != NULL) {
    ckpt_tf_buf_putc(&s->names, '/');
    ckpt_tf_buf_puts(&s->names, b);
  }
  ckpt_tf_buf_append(&s->names, "", 1); /* the NUL */
  return s->names.oom ? oom(err) : CKPT_OK;
}

ckpt_status ckpt_sums_text_add_file(ckpt_sums_text *s, const char *rel, uint32_t crc,
                                    uint64_t bytes, ckpt_error *err) {
  return add_file2(s, rel, NULL, crc, bytes, err);
}

/* "name":[crc,bytes] */
static void put_sum(ckpt_tf_buf *b, const char *name, uint32_t crc, uint64_t bytes) {
  ckpt_json_put_string(b, name);
  ckpt_tf_buf_putc(b, ':');
  ckpt_tf_buf_putc(b, '[');
  ckpt_json_put_number(b, (double)crc);
  ckpt_tf_buf_putc(b, ',');
  ckpt_json_put_number(b, (double)bytes);
  ckpt_tf_buf_putc(b, ']');
}

typedef struct leaf_ref {
  const char *param;
  size_t leaf;
} leaf_ref;

static int cmp_leaf_ref(const void *a, const void *b) {
  return strcmp(((const leaf_ref *)a)->param, ((const leaf_ref *)b)->param);
}

/* One chunk's entry of an array, its key in a buffer of the caller's. */
typedef struct chunk_ref {
  const char *key;
  uint32_t crc;
  uint64_t bytes;
} chunk_ref;

static int cmp_chunk_ref(const void *a, const void *b) {
  return strcmp(((const chunk_ref *)a)->key, ((const chunk_ref *)b)->key);
}

static int cmp_file(const void *a, const void *b) {
  return strcmp(((const file_entry *)a)->name, ((const file_entry *)b)->name);
}

/* The i-th chunk sum of the plan: its own chunks, or a multi-process plan's merged ones. */
static void sum_at(const ckpt_write_plan *j, size_t i, size_t *leaf, uint64_t *linear,
                   uint32_t *crc, uint64_t *bytes) {
  if (j->multiprocess) {
    *leaf = (size_t)j->merged[i].leaf;
    *linear = j->merged[i].linear;
    *crc = j->merged[i].crc;
    *bytes = j->merged[i].bytes;
  } else {
    *leaf = j->chunks[i].leaf;
    *linear = j->chunks[i].linear;
    *crc = j->chunks[i].crc;
    *bytes = j->chunks[i].bytes;
  }
}

/* The "arrays" object: each leaf with chunks, by parameter name, its chunks by key. */
static ckpt_status print_arrays(ckpt_sums_text *s, const ckpt_write_plan *j, ckpt_error *err) {
  size_t n_sums = j->multiprocess ? j->n_merged : j->n_chunks;
  size_t nl = j->n_leaves;
  leaf_ref *order = malloc((nl ? nl : 1) * sizeof *order);
  size_t *first = malloc((nl ? nl : 1) * sizeof *first);
  size_t *count = calloc(nl ? nl : 1, sizeof *count);
  chunk_ref *refs = NULL;
  char *keys = NULL;
  size_t cap_refs = 0;
  ckpt_status st = CKPT_OK;
  if (order == NULL || first == NULL || count == NULL)
    st = oom(err);
  /* Each leaf's run of sums (consecutive: zarr_write.h). */
  size_t prev = SIZE_MAX;
  for (size_t i = 0; st == CKPT_OK && i < n_sums; i++) {
    size_t leaf;
    uint64_t linear, bytes;
    uint32_t crc;
    sum_at(j, i, &leaf, &linear, &crc, &bytes);
    if (leaf >= nl)
      st = ckpt_error_set(err, CKPT_EINVAL, "a chunk sum names leaf %zu of %zu", leaf, nl);
    else if (leaf != prev && count[leaf] > 0)
      st = ckpt_error_set(err, CKPT_EINVAL, "the chunks of '%s' are not consecutive",
                          j->meta.entries[j->leaves[leaf].entry].param);
    else if (count[leaf]++ == 0)
      first[leaf] = i;
    prev = leaf;
  }
  for (size_t i = 0; st == CKPT_OK && i < nl; i++) {
    const char *param = j->meta.entries[j->leaves[i].entry].param;
    size_t bad;
    if (!ckpt_tf_utf8_valid((const uint8_t *)param, strlen(param), &bad))
      st = ckpt_error_set(err, CKPT_EINVAL,
                          "parameter name '%s' is not valid UTF-8 (byte %zu): _CHECKSUMS cannot "
                          "name it",
                          param, bad);
    order[i] = (leaf_ref){param, i};
  }
  /* Leaves usually come in the order of their names (a dict's): then no sort is needed. */
  bool sorted = true;
  for (size_t i = 1; st == CKPT_OK && sorted && i < nl; i++)
    sorted = strcmp(order[i - 1].param, order[i].param) < 0;
  if (st == CKPT_OK && !sorted)
    qsort(order, nl, sizeof *order, cmp_leaf_ref);
  ckpt_tf_buf *b = &s->arrays;
  ckpt_tf_buf_putc(b, '{');
  bool any = false;
  for (size_t o = 0; st == CKPT_OK && o < nl; o++) {
    size_t li = order[o].leaf, n = count[li];
    if (n == 0)
      continue; /* no entry, as for a leaf nothing was written of */
    const ckpt_write_leaf *l = &j->leaves[li];
    int64_t grid[CKPT_MAX_RANK], index[CKPT_MAX_RANK];
    ckpt_zarr_grid(l->zm, grid);
    if (any)
      ckpt_tf_buf_putc(b, ',');
    any = true;
    ckpt_json_put_string(b, order[o].param);
    ckpt_tf_buf_putc(b, ':');
    ckpt_tf_buf_putc(b, '{');
    if (n > cap_refs) {
      free(refs);
      free(keys);
      refs = malloc(n * sizeof *refs);
      keys = malloc(n * CKPT_ZARR_KEY_MAX);
      cap_refs = refs != NULL && keys != NULL ? n : 0;
      if (cap_refs == 0) {
        st = oom(err);
        break;
      }
    }
    for (size_t k = 0; k < n; k++) {
      size_t leaf;
      uint64_t linear;
      sum_at(j, first[li] + k, &leaf, &linear, &refs[k].crc, &refs[k].bytes);
      char *key = keys + k * CKPT_ZARR_KEY_MAX;
      ckpt_zarr_chunk_index(l->zm, grid, linear, index);
      ckpt_zarr_chunk_key(l->zm, index, key);
      refs[k].key = key;
    }
    if (n > 1)
      qsort(refs, n, sizeof *refs, cmp_chunk_ref);
    for (size_t k = 0; k < n; k++) {
      if (k > 0 && strcmp(refs[k - 1].key, refs[k].key) == 0) {
        st = ckpt_error_set(err, CKPT_EINVAL, "chunk '%s' of '%s' is listed twice", refs[k].key,
                            order[o].param);
        break;
      }
      if (k > 0)
        ckpt_tf_buf_putc(b, ',');
      put_sum(b, refs[k].key, refs[k].crc, refs[k].bytes);
    }
    ckpt_tf_buf_putc(b, '}');
  }
  ckpt_tf_buf_putc(b, '}');
  if (st == CKPT_OK && b->oom)
    st = oom(err);
  free(order);
  free(first);
  free(count);
  free(refs);
  free(keys);
  return st;
}

ckpt_status ckpt_sums_text_begin(const ckpt_write_plan *j, const ckpt_file_sum *strings,
                                 ckpt_sums_text **out, ckpt_error *err) {
  *out = NULL;
  ckpt_sums_text *s = calloc(1, sizeof *s);
  if (s == NULL)
    return oom(err);
  /* The metadata files, from the CRCs taken when their text was made (never read back). */
  ckpt_status st = add_file2(s, CKPT_METADATA_FILE, NULL, j->meta_crc, j->meta_len, err);
  if (st == CKPT_OK && strings->present)
    st = add_file2(s, CKPT_STRINGS_FILE, NULL, strings->crc, strings->bytes, err);
  /* Each .zarray by its path, also when OCDBT holds it as the value of the key of that name. */
  for (size_t i = 0; st == CKPT_OK && i < j->n_leaves; i++) {
    const ckpt_write_leaf *l = &j->leaves[i];
    st = add_file2(s, j->meta.entries[l->entry].param, ckpt_zarr_meta_file(l->zm), l->zcrc,
                   l->zbytes, err);
  }
  /* Multi-process: every process's array_metadatas/process_<i>. */
  for (size_t i = 0; st == CKPT_OK && j->multiprocess && i < j->n_extra; i++)
    st = add_file2(s, j->extra[i].rel, NULL, j->extra[i].crc, j->extra[i].bytes, err);
  if (st == CKPT_OK)
    st = print_arrays(s, j, err);
  if (st != CKPT_OK) {
    ckpt_sums_text_free(s);
    return st;
  }
  *out = s;
  return CKPT_OK;
}

ckpt_status ckpt_sums_text_finish(ckpt_sums_text *s, char **text, size_t *len, ckpt_error *err) {
  *text = NULL;
  *len = 0;
  ckpt_status st = CKPT_OK;
  for (size_t i = 0; i < s->n_files; i++)
    s->files[i].name = s->names.data + s->files[i].off; /* the buffer no longer moves */
  qsort(s->files, s->n_files, sizeof *s->files, cmp_file);
  ckpt_tf_buf b = CKPT_TF_BUF_INIT;
  /* The top level's keys in their sorted order. */
  ckpt_tf_buf_puts(&b, "{\"algorithm\":\"crc32c\",\"arrays\":");
  ckpt_tf_buf_append(&b, s->arrays.data, s->arrays.len);
  ckpt_tf_buf_puts(&b, ",\"files\":{");
  for (size_t i = 0; i < s->n_files; i++) {
    const file_entry *f = &s->files[i];
    size_t bad;
    if (i > 0 && strcmp(s->files[i - 1].name, f->name) == 0) {
      st = ckpt_error_set(err, CKPT_EINVAL, "file '%s' is listed twice in _CHECKSUMS", f->name);
      break;
    }
    if (!ckpt_tf_utf8_valid((const uint8_t *)f->name, strlen(f->name), &bad)) {
      st = ckpt_error_set(err, CKPT_EINVAL,
                          "file name '%s' is not valid UTF-8 (byte %zu): _CHECKSUMS cannot name it",
                          f->name, bad);
      break;
    }
    if (i > 0)
      ckpt_tf_buf_putc(&b, ',');
    put_sum(&b, f->name, f->crc, f->bytes);
  }
  ckpt_tf_buf_puts(&b, "},\"format\":\"ckpt-checksums\",\"version\":1}");
  if (st == CKPT_OK)
    st = ckpt_tf_buf_take(&b, "_CHECKSUMS", text, len, err);
  ckpt_tf_buf_free(&b);
  ckpt_sums_text_free(s);
  return st;
}
