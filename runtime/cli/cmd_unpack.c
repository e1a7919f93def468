/* cli/cmd_unpack.c — `ckpt unpack SRC DST`: a copy of SRC in which every item saved with the
 * packed layout (_PACKED + _PACKED.<n>, docs/format.md "Packed arrays") is rewritten into the
 * plain zarr layout Orbax and zarr-python read: one <param>/ directory per packed array with
 * the .zarray the index records and one chunk file per stored chunk, byte for byte as stored
 * (compressed chunks stay compressed), and their CRC-32C added to _CHECKSUMS. Every chunk's
 * CRC is checked on the way, so a damaged source is reported, never copied. Everything else
 * is copied as it is. The copy is built under DST.orbax-checkpoint-tmp and renamed to DST at
 * the end (a failed run leaves only a temporary directory, which `ckpt gc` removes). */
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "inspect/inspect.h"

static const char help[] =
    "Usage: ckpt unpack [--json] SRC DST\n"
    "\n"
    "Copy the checkpoint (or directory of checkpoints) SRC to DST, rewriting every item\n"
    "saved with the packed layout (pack_arrays_up_to_bytes; files _PACKED and _PACKED.<n>)\n"
    "into the plain zarr layout that Orbax (use_ocdbt=False) and zarr-python read: one\n"
    "directory per array with its .zarray and chunk files. Chunk bytes are copied as stored\n"
    "and their checksums verified; _CHECKSUMS gains the new chunk files. DST must not exist;\n"
    "it is written as DST.orbax-checkpoint-tmp and renamed when complete.\n"
    "\n"
    "Options:\n"
    "  --json      print one JSON document (keys documented in docs/cli.md)\n"
    "  -h, --help  show this help\n"
    "\n"
    "Exit status: 0 done; 1 SRC is damaged (a chunk fails its checksum, a file is missing\n"
    "or truncated); 2 usage error, SRC missing, DST exists, I/O error.\n";

#define MAX_DEPTH 64
#define COPY_PIECE ((size_t)8 << 20)

typedef struct unpack_ctx {
  ckpt_io *io;
  uint64_t items, arrays, chunks, files;
} unpack_ctx;

/* Copies the regular file src to dst (new), durably, in pieces. */
static ckpt_status copy_file(unpack_ctx *c, const char *src, const char *dst, uint64_t size,
                             ckpt_error *err) {
  int in = -1, out = -1;
  ckpt_status st = ckpt_io_open(c->io, src, O_RDONLY | O_NOFOLLOW, 0, &in, err);
  if (st == CKPT_OK)
    st = ckpt_io_open(c->io, dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0666, &out, err);
  size_t cap = size < COPY_PIECE ? (size_t)size : COPY_PIECE;
  unsigned char *buf = st == CKPT_OK ? malloc(cap ? cap : 1) : NULL;
  if (st == CKPT_OK && buf == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory copying '%s'", src);
  for (uint64_t pos = 0; st == CKPT_OK && pos < size;) {
    size_t n = size - pos < cap ? (size_t)(size - pos) : cap, got = 0;
    st = ckpt_io_pread_all(c->io, in, src, buf, n, pos, &got, err);
    if (st == CKPT_OK && got != n)
      st = ckpt_error_set(err, CKPT_ECORRUPT, "'%s' shrank while being copied", src);
    if (st == CKPT_OK)
      st = ckpt_io_pwrite_all(c->io, out, dst, buf, n, pos, err);
    pos += n;
  }
  if (st == CKPT_OK)
    st = ckpt_io_fsync(c->io, out, dst, err);
  free(buf);
  if (out >= 0) {
    ckpt_status cst = ckpt_io_close(c->io, out, dst, st == CKPT_OK ? err : NULL);
    if (st == CKPT_OK)
      st = cst;
  }
  if (in >= 0)
    ckpt_io_close(c->io, in, src, NULL);
  c->files++;
  return st;
}

/* Writes the packed arrays of the item src as zarr directories of dst, and dst/_CHECKSUMS
 * (src's entries plus the new chunk files). */
static ckpt_status unpack_item(unpack_ctx *c, const char *src, const char *dst, ckpt_error *err) {
  ckpt_pytree_meta meta;
  ckpt_packed_index idx;
  memset(&idx, 0, sizeof idx);
  ckpt_checksums *read_sums = NULL; /* the source's _CHECKSUMS, if any */
  cJSON *sums = NULL;               /* what DST gets: that document, or a new one */
  bool own_sums = false;
  int *fds = NULL;
  unsigned char *buf = NULL;
  size_t cap = 0;
  ckpt_status st = ckpt_pytree_meta_read(c->io, src, &meta, err);
  if (st == CKPT_OK)
    st = ckpt_packed_read(c->io, src, &idx, err);
  if (st == CKPT_OK)
    st = ckpt_packed_check_meta(&idx, &meta, src, err);
  if (st == CKPT_OK)
    st = ckpt_checksums_read(c->io, src, &read_sums, err);
  if (st == CKPT_OK && (sums = ckpt_checksums_doc(read_sums)) == NULL) {
    own_sums = (sums = ckpt_checksums_new()) != NULL;
    if (!own_sums)
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  }
  /* The source's metadata-file checksums do not describe DST (no _PACKED, new .zarray files):
   * DST's metadata files go unchecked, as in items written before they were recorded. */
  if (st == CKPT_OK)
    cJSON_DeleteItemFromObjectCaseSensitive(sums, "files");
  if (st == CKPT_OK && (fds = malloc((idx.n_files ? idx.n_files : 1) * sizeof *fds)) == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  for (size_t i = 0; fds != NULL && i < idx.n_files; i++)
    fds[i] = -1;
  for (size_t i = 0; st == CKPT_OK && i < idx.n_arrays; i++) {
    const ckpt_packed_array *a = &idx.arrays[i];
    char *adir = ckpt_path_join(dst, a->param);
    if (adir == NULL) {
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
      break;
    }
    st = ckpt_zarr_make_array_dir(c->io, adir, err);
    char *json = NULL, *zpath = ckpt_path_join(adir, CKPT_ZARR_METADATA_FILE);
    size_t jlen = 0;
    if (st == CKPT_OK && zpath == NULL)
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    if (st == CKPT_OK)
      st = ckpt_zarr_meta_encode(&a->meta, &json, &jlen, err);
    if (st == CKPT_OK)
      st = ckpt_io_write_file(c->io, zpath, json, jlen, true, err);
    free(json);
    free(zpath);
    int64_t grid[CKPT_MAX_RANK];
    ckpt_zarr_grid(&a->meta, grid);
    for (size_t k = 0; st == CKPT_OK && k < a->n_chunks; k++) {
      const ckpt_packed_chunk *pc = &a->chunks[k];
      int64_t index[CKPT_MAX_RANK];
      char key[CKPT_ZARR_KEY_MAX];
      ckpt_zarr_chunk_index(&a->meta, grid, pc->linear, index);
      ckpt_zarr_chunk_key(&a->meta, index, key);
      const char *path;
      const ckpt_packed_chunk *found;
      st = ckpt_packed_locate(a, pc->linear, key, &path, &found, err);
      if (st == CKPT_OK && fds[pc->file] < 0)
        st = ckpt_io_open(c->io, path, O_RDONLY | O_NOFOLLOW, 0, &fds[pc->file], err);
      if (st == CKPT_OK && pc->nbytes > cap) {
        unsigned char *g = realloc(buf, (size_t)pc->nbytes);
        if (g == NULL)
          st = ckpt_error_set(err, CKPT_ENOMEM, "array '%s': cannot allocate chunk '%s'", a->param,
                              key);
        else
          buf = g, cap = (size_t)pc->nbytes;
      }
      size_t got = 0;
      if (st == CKPT_OK)
        st = ckpt_io_pread_all(c->io, fds[pc->file], path, buf, (size_t)pc->nbytes, pc->offset,
                               &got, err);
      if (st == CKPT_OK && got != pc->nbytes)
        st = ckpt_error_set(err, CKPT_ECORRUPT, "array '%s': chunk '%s': '%s' is truncated",
                            a->param, key, path);
      uint32_t crc = st == CKPT_OK ? ckpt_crc32c(0, buf, (size_t)pc->nbytes) : 0;
      if (st == CKPT_OK && crc != pc->crc)
        st = ckpt_error_set(err, CKPT_ECORRUPT,
                            "array '%s': chunk '%s' is corrupt (crc32c %08x, expected %08x) in "
                            "'%s'",
                            a->param, key, crc, pc->crc, path);
      char *cpath = st == CKPT_OK ? ckpt_path_join(adir, key) : NULL;
      if (st == CKPT_OK && cpath == NULL)
        st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
      if (st == CKPT_OK)
        st = ckpt_io_write_file(c->io, cpath, buf, (size_t)pc->nbytes, true, err);
      free(cpath);
      if (st == CKPT_OK && !ckpt_checksums_add(sums, a->param, key, crc, pc->nbytes))
        st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
      c->chunks++;
      c->files++;
    }
    if (st == CKPT_OK)
      st = ckpt_io_fsync_dir(c->io, adir, err);
    free(adir);
    c->arrays++;
  }
  char *text = NULL, *spath = NULL;
  size_t len = 0;
  if (st == CKPT_OK)
    st = ckpt_json_dump_compact(sums, &text, &len, err);
  if (st == CKPT_OK && (spath = ckpt_path_join(dst, CKPT_CHECKSUMS_FILE)) == NULL)
    st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
  if (st == CKPT_OK)
    st = ckpt_io_write_file(c->io, spath, text, len, true, err);
  free(text);
  free(spath);
  for (size_t i = 0; fds != NULL && i < idx.n_files; i++)
    if (fds[i] >= 0)
      ckpt_io_close(c->io, fds[i], idx.files[i].path, NULL);
  free(fds);
  free(buf);
  if (own_sums)
    cJSON_Delete(sums);
  ckpt_checksums_free(read_sums);
  ckpt_packed_free(&idx);
  ckpt_pytree_meta_free(&meta);
  c->items++;
  return st;
}

/* True for names unpack_item writes itself (the packed files and _CHECKSUMS). */
static bool replaced_in_item(const char *name) {
  return strcmp(name, CKPT_PACKED_INDEX_FILE) == 0 ||
         strncmp(name, CKPT_PACKED_INDEX_FILE ".", sizeof CKPT_PACKED_INDEX_FILE) == 0 ||
         strcmp(name, CKPT_CHECKSUMS_FILE) == 0;
}

/* Copies the directory src to dst (created here), unpacking packed items on the way. */
static ckpt_status copy_dir(unpack_ctx *c, const char *src, const char *dst, int depth,
                            ckpt_error *err) {
  if (depth > MAX_DEPTH)
    return ckpt_error_set(err, CKPT_EINVAL, "'%s': directories nested deeper than %d", src,
                          MAX_DEPTH);
  ckpt_status st = ckpt_io_mkdir(c->io, dst, err);
  char **names = NULL;
  size_t n = 0;
  if (st == CKPT_OK)
    st = ckpt_io_list_dir(c->io, src, &names, &n, err);
  bool packed = false;
  for (size_t i = 0; st == CKPT_OK && i < n; i++)
    packed |= strcmp(names[i], CKPT_PACKED_INDEX_FILE) == 0;
  if (st == CKPT_OK && packed)
    st = unpack_item(c, src, dst, err);
  for (size_t i = 0; st == CKPT_OK && i < n; i++) {
    if (packed && replaced_in_item(names[i]))
      continue;
    /* The checkpoint's manifest lists the source's _CHECKSUMS, which unpacking rewrites: DST
     * has none (its files are then parsed, not checked against it; docs/format.md). */
    if (depth == 0 && strcmp(names[i], CKPT_MANIFEST_FILE) == 0)
      continue;
    char *s = ckpt_path_join(src, names[i]), *d = ckpt_path_join(dst, names[i]);
    ckpt_io_kind kind = CKPT_IO_KIND_MISSING;
    uint64_t size = 0;
    if (s == NULL || d == NULL)
      st = ckpt_error_set(err, CKPT_ENOMEM, "out of memory");
    if (st == CKPT_OK)
      st = ckpt_io_stat(c->io, s, &kind, &size, err);
    if (st == CKPT_OK) {
      if (kind == CKPT_IO_KIND_DIR)
        st = copy_dir(c, s, d, depth + 1, err);
      else if (kind == CKPT_IO_KIND_FILE)
        st = copy_file(c, s, d, size, err);
      else if (kind != CKPT_IO_KIND_MISSING)
        st = ckpt_error_set(err, CKPT_EUNSAFE,
                            "'%s' is %s; a checkpoint holds only files and "
                            "directories",
                            s, kind == CKPT_IO_KIND_SYMLINK ? "a symlink" : "not a regular file");
    }
    free(s);
    free(d);
  }
  ckpt_io_free_names(names, n);
  if (st == CKPT_OK)
    st = ckpt_io_fsync_dir(c->io, dst, err);
  return st;
}

int cli_cmd_unpack(int argc, char **argv) {
  static const struct option opts[] = {
      {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
  bool json = false;
  opterr = 0;
  int ch;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
      case 'j':
        json = true;
        break;
      case 'h':
        fputs(help, stdout);
        return CLI_EXIT_OK;
      default:
        return cli_usage_error("unpack", "unknown or incomplete option '%s'", argv[optind - 1]);
    }
  }
  if (argc - optind != 2)
    return cli_usage_error("unpack", "expected SRC and DST");
  unpack_ctx c = {.io = ckpt_io_default()};
  ckpt_error err = CKPT_ERROR_INIT;
  char *src = ckpt_path_normalize(argv[optind]), *dst = ckpt_path_normalize(argv[optind + 1]);
  char *tmp = dst ? cli_asprintf("%s%s", dst, CKPT_TMP_SUFFIX) : NULL;
  if (src == NULL || dst == NULL || tmp == NULL) {
    free(src);
    free(dst);
    free(tmp);
    fprintf(stderr, "ckpt: out of memory\n");
    return CLI_EXIT_ERROR;
  }
  ckpt_io_kind kind = CKPT_IO_KIND_MISSING, dkind = CKPT_IO_KIND_MISSING;
  uint64_t size;
  ckpt_status st = ckpt_io_stat(c.io, src, &kind, &size, &err);
  if (st == CKPT_OK && kind != CKPT_IO_KIND_DIR)
    st = ckpt_error_set(&err, CKPT_ENOENT, "unpack: '%s' %s", src,
                        kind == CKPT_IO_KIND_MISSING ? "does not exist" : "is not a directory");
  if (st == CKPT_OK)
    st = ckpt_io_stat(c.io, dst, &dkind, &size, &err);
  if (st == CKPT_OK && dkind != CKPT_IO_KIND_MISSING)
    st = ckpt_error_set(&err, CKPT_EEXIST, "unpack: '%s' already exists", dst);
  if (st == CKPT_OK)
    st = ckpt_io_stat(c.io, tmp, &dkind, &size, &err);
  if (st == CKPT_OK && dkind != CKPT_IO_KIND_MISSING)
    st = ckpt_error_set(&err, CKPT_EEXIST,
                        "unpack: '%s' exists (a leftover of an interrupted run? `ckpt gc` "
                        "removes it)",
                        tmp);
  if (st == CKPT_OK) {
    st = copy_dir(&c, src, tmp, 0, &err);
    if (st == CKPT_OK)
      st = ckpt_io_rename(c.io, tmp, dst, &err);
    if (st == CKPT_OK) {
      char *parent = cli_asprintf("%s/..", dst);
      if (parent != NULL)
        st = ckpt_io_fsync_dir(c.io, parent, &err);
      free(parent);
    } else {
      ckpt_io_remove_tree(c.io, tmp, NULL);
    }
  }
  int rc = CLI_EXIT_OK;
  if (st != CKPT_OK) {
    rc = cli_report(&err);
  } else if (json) {
    bool oom = false;
    cJSON *doc = cJSON_CreateObject();
    cli_jadd(doc, "src", cJSON_CreateString(src), &oom);
    cli_jadd(doc, "dst", cJSON_CreateString(dst), &oom);
    cli_jadd(doc, "packed_items", cli_juint(c.items), &oom);
    cli_jadd(doc, "arrays", cli_juint(c.arrays), &oom);
    cli_jadd(doc, "chunks", cli_juint(c.chunks), &oom);
    cli_jadd(doc, "files", cli_juint(c.files), &oom);
    rc = cli_json_emit(doc, oom);
  } else {
    printf("%s -> %s: %llu packed item%s, %llu arrays (%llu chunks) unpacked, %llu files written\n",
           src, dst, (unsigned long long)c.items, c.items == 1 ? "" : "s",
           (unsigned long long)c.arrays, (unsigned long long)c.chunks, (unsigned long long)c.files);
  }
  free(src);
  free(dst);
  free(tmp);
  return rc;
}
