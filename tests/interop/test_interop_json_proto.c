/* test_interop_json_proto.c — JsonSave/ProtoSave files against Python, the reader and writer
 * Orbax itself uses (json, google.protobuf.text_format), in both directions.
 *
 * The peer is tests/interop/jp_peer.py; the Python message classes are generated at test time
 * with `protoc --python_out` from the same .proto files protoc-c compiled for this suite.
 *  - text format: our printer's output is byte-identical to text_format.MessageToString for
 *    every field kind (including thousands of random float/double bit patterns), Python's
 *    text_format.Parse reads our text into an equal message, and we parse Python's text into
 *    an equal message;
 *  - JSON: Python's json.loads reads our `metadata` as the same value and we read json.dumps'
 *    output (NaN, Infinity, big integers, non-ASCII);
 *  - through the checkpointer: _CHECKPOINT_METADATA has Orbax's keys and the handlers' typestrs,
 *    and a Composite of a JSON item and a proto item round-trips, read by Python in between. */
#include <criterion/criterion.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "jp_interop.pb-c.h"
#include "jp_interop3.pb-c.h"
#include "text/json.h"

static char jp_dir[256];
static char jp_mods[300];

static int jp_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

/* Runs argv (argv[0] looked up in PATH) and returns its exit status (-1 if it did not exit). */
static int jp_run(char *const argv[]) {
  fflush(NULL);
  pid_t pid = fork();
  cr_assert_neq(pid, -1, "fork failed");
  if (pid == 0) {
    execvp(argv[0], argv);
    _exit(127);
  }
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void jp_setup(void) {
  snprintf(jp_dir, sizeof jp_dir, "/tmp/ckpt_interop_jp_XXXXXX");
  cr_assert_not_null(mkdtemp(jp_dir));
  snprintf(jp_mods, sizeof jp_mods, "%s/py", jp_dir);
  cr_assert_eq(mkdir(jp_mods, 0700), 0);
  char out[320];
  snprintf(out, sizeof out, "--python_out=%s", jp_mods);
  char *argv[] = {
      "protoc", "-I" CKPT_SOURCE_DIR "/tests/interop", out, "jp_interop.proto", "jp_interop3.proto",
      NULL};
  cr_assert_eq(jp_run(argv), 0, "protoc --python_out failed");
}

static void jp_teardown(void) {
  nftw(jp_dir, jp_rm, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(interop_jp, .init = jp_setup, .fini = jp_teardown);

static int peer(const char *cmd, const char *a, const char *b, const char *c) {
  char *argv[] = {CKPT_PYTHON, CKPT_SOURCE_DIR "/tests/interop/jp_peer.py",
                  (char *)cmd, (char *)a,
                  (char *)b,   (char *)c,
                  NULL};
  return jp_run(argv);
}

static char *in_dir(const char *name) {
  static char buf[8][512];
  static int next;
  char *p = buf[next++ % 8];
  snprintf(p, 512, "%s/%s", jp_dir, name);
  return p;
}

static void spit(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "cannot create %s", path);
  cr_assert_eq(fwrite(data, 1, len, f), len);
  cr_assert_eq(fclose(f), 0);
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "cannot open %s", path);
  cr_assert_eq(fseek(f, 0, SEEK_END), 0);
  long n = ftell(f);
  cr_assert_geq(n, 0);
  rewind(f);
  char *buf = malloc((size_t)n + 1);
  cr_assert_not_null(buf);
  cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  buf[n] = '\0';
  if (len)
    *len = (size_t)n;
  return buf;
}

/* ---------------------------------------------------------------- text format */

static int n_cases;

static void add_case(const ProtobufCMessage *m) {
  char name[64];
  size_t len = protobuf_c_message_get_packed_size(m);
  uint8_t *bin = malloc(len + 1);
  cr_assert_not_null(bin);
  protobuf_c_message_pack(m, bin);
  snprintf(name, sizeof name, "cases/case_%02d.bin", n_cases);
  spit(in_dir(name), bin, len);
  free(bin);
  snprintf(name, sizeof name, "cases/case_%02d.type", n_cases);
  spit(in_dir(name), m->descriptor->name, strlen(m->descriptor->name));
  ckpt_error err = CKPT_ERROR_INIT;
  char *text;
  size_t tlen;
  cr_assert_eq(ckpt_pbtxt_print(m, &text, &tlen, &err), CKPT_OK, "case %d: %s", n_cases,
               err.message);
  snprintf(name, sizeof name, "cases/case_%02d.c.pbtxt", n_cases);
  spit(in_dir(name), text, tlen);
  free(text);
  n_cases++;
}

/* First differing line of two texts, for a readable assertion message. */
static void assert_same_text(const char *ours, const char *theirs, int index) {
  if (strcmp(ours, theirs) == 0)
    return;
  size_t line = 1;
  const char *a = ours, *b = theirs, *la = ours, *lb = theirs;
  while (*a && *a == *b) {
    if (*a == '\n')
      line++, la = a + 1, lb = b + 1;
    a++, b++;
  }
  cr_assert_fail(
      "case %d: line %zu differs from Python's MessageToString\n ckpt:   %.120s\n "
      "python: %.120s",
      index, line, la, lb);
}

static uint64_t rng_state = 0x243F6A8885A308D3u;
static uint64_t next_u64(void) {
  rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
  return rng_state;
}

Test(interop_jp, text_format_matches_python_both_ways) {
  cr_assert_eq(mkdir(in_dir("cases"), 0700), 0);
  n_cases = 0;

  /* 0: every proto2 field kind */
  CkptJp2__Leaf l1 = CKPT_JP2__LEAF__INIT, l2 = CKPT_JP2__LEAF__INIT;
  l1.has_id = 1, l1.id = -1, l1.name = "leaf \"one\"";
  CkptJp2__Leaf *kids[] = {&l1, &l1};
  l2.n_kids = 2, l2.kids = kids, l2.name = "";
  CkptJp2__All a = CKPT_JP2__ALL__INIT;
  a.has_i32 = a.has_i64 = a.has_u32 = a.has_u64 = a.has_s32 = a.has_s64 = 1;
  a.has_f32 = a.has_f64 = a.has_sf32 = a.has_sf64 = a.has_fl = a.has_db = 1;
  a.has_bo = a.has_by = a.has_lv = a.has_with_default = 1;
  a.i32 = INT32_MIN, a.i64 = INT64_MIN, a.u32 = UINT32_MAX, a.u64 = UINT64_MAX;
  a.s32 = -12345, a.s64 = INT64_MAX, a.f32 = 7, a.f64 = UINT64_MAX / 3;
  a.sf32 = -1, a.sf64 = INT64_MIN + 7, a.fl = 1.1f, a.db = -2.5e-300, a.bo = 1;
  a.st = "esc: \\ \" ' \n\r\t \x01\x1f\x7f caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 ?";
  uint8_t all_bytes[256];
  for (int i = 0; i < 256; i++)
    all_bytes[i] = (uint8_t)i;
  a.by.data = all_bytes, a.by.len = 256;
  a.lv = CKPT_JP2__LEVEL__NEGATIVE;
  a.leaf = &l2;
  int32_t ri[] = {0, 1, -1, INT32_MAX};
  double rd[] = {0.0, -0.0, 0.1, 1e16, 1e-5, 123456789.125, INFINITY, -INFINITY};
  float rf[] = {0.0f, 0.1f, 1e-45f, 3.4028235e38f, 16777217.0f, -7.25f};
  char *rs[] = {"", "a", "\xce\xbb"};
  uint8_t b0[] = {0}, b1[] = {'"', '\\'};
  ProtobufCBinaryData rb[] = {{0, NULL}, {1, b0}, {2, b1}};
  /* (no unknown numbers here: Python rejects them for closed proto2 enums, see case 4) */
  CkptJp2__Level rl[] = {CKPT_JP2__LEVEL__LOW, CKPT_JP2__LEVEL__HIGH, CKPT_JP2__LEVEL__LEVEL_NONE};
  CkptJp2__Leaf *rleaf[] = {&l1, &l2};
  protobuf_c_boolean rbo[] = {0, 1};
  uint64_t ru[] = {UINT64_MAX, 0};
  a.n_r_i32 = 4, a.r_i32 = ri;
  a.n_r_db = 8, a.r_db = rd;
  a.n_r_fl = 6, a.r_fl = rf;
  a.n_r_st = 3, a.r_st = rs;
  a.n_r_by = 3, a.r_by = rb;
  a.n_r_lv = 3, a.r_lv = rl;
  a.n_r_leaf = 2, a.r_leaf = rleaf;
  a.n_r_bo = 2, a.r_bo = rbo;
  a.n_r_u64 = 2, a.r_u64 = ru;
  a.pick_case = CKPT_JP2__ALL__PICK_P_LEAF;
  a.p_leaf = &l1;
  a.with_default = 17; /* explicitly set to its default: printed */
  a.must = 3;
  add_case(&a.base);

  /* 1: only the required field */
  CkptJp2__All min = CKPT_JP2__ALL__INIT;
  add_case(&min.base);

  /* 2: thousands of random doubles and floats (every exponent range), oneof double zero */
  CkptJp2__All rnd = CKPT_JP2__ALL__INIT;
  size_t n_rand = 3000;
  double *dd = malloc(n_rand * sizeof *dd);
  float *ff = malloc(n_rand * sizeof *ff);
  cr_assert(dd && ff);
  for (size_t i = 0; i < n_rand;) {
    uint64_t x = next_u64();
    double d;
    memcpy(&d, &x, sizeof d);
    if (isnan(d))
      continue;
    dd[i++] = d;
  }
  for (size_t i = 0; i < n_rand;) {
    uint32_t x = (uint32_t)next_u64();
    float f;
    memcpy(&f, &x, sizeof f);
    if (isnan(f))
      continue;
    ff[i++] = f;
  }
  rnd.n_r_db = n_rand, rnd.r_db = dd;
  rnd.n_r_fl = n_rand, rnd.r_fl = ff;
  rnd.pick_case = CKPT_JP2__ALL__PICK_P_DB;
  rnd.p_db = 0.0;
  add_case(&rnd.base);

  /* 3: NaN and special floats (compared as bytes by the peer) */
  CkptJp2__All nan = CKPT_JP2__ALL__INIT;
  nan.has_db = nan.has_fl = 1;
  nan.db = NAN;
  nan.fl = NAN;
  double nd[] = {NAN, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308};
  nan.n_r_db = 4, nan.r_db = nd;
  add_case(&nan.base);

  /* 4: proto3 with maps out of order, negative and bool keys, open enum, oneof message */
  CkptJp3__Vec v1 = CKPT_JP3__VEC__INIT, v0 = CKPT_JP3__VEC__INIT;
  v1.x = 1.5, v1.y = -2;
  CkptJp3__Run r = CKPT_JP3__RUN__INIT;
  r.step = 42, r.name = "run \xe2\x98\x83", r.lr = 3e-4f, r.loss = 0.6931471805599453;
  r.done = 1, r.phase = CKPT_JP3__PHASE__DECAY, r.origin = &v0;
  uint8_t blob[] = {0xde, 0xad, 0xbe, 0xef, 0x00};
  r.blob.data = blob, r.blob.len = sizeof blob;
  CkptJp3__Vec *path[] = {&v1, &v0, &v1};
  r.n_path = 3, r.path = path;
  int64_t dims[] = {INT64_MIN, 0, 3};
  r.n_dims = 3, r.dims = dims;
  CkptJp3__Run__CountsEntry c[4] = {
      CKPT_JP3__RUN__COUNTS_ENTRY__INIT, CKPT_JP3__RUN__COUNTS_ENTRY__INIT,
      CKPT_JP3__RUN__COUNTS_ENTRY__INIT, CKPT_JP3__RUN__COUNTS_ENTRY__INIT};
  c[0].key = "zeta", c[0].value = 1;
  c[1].key = "\xc3\xa9", c[1].value = 2;
  c[2].key = "", c[2].value = 3;
  c[3].key = "Alpha", c[3].value = 0;
  CkptJp3__Run__CountsEntry *cp[] = {&c[0], &c[1], &c[2], &c[3]};
  r.n_counts = 4, r.counts = cp;
  CkptJp3__Run__PointsEntry p[3] = {CKPT_JP3__RUN__POINTS_ENTRY__INIT,
                                    CKPT_JP3__RUN__POINTS_ENTRY__INIT,
                                    CKPT_JP3__RUN__POINTS_ENTRY__INIT};
  p[0].key = 10, p[0].value = &v1;
  p[1].key = -10, p[1].value = &v0;
  p[2].key = 0, p[2].value = &v1;
  CkptJp3__Run__PointsEntry *pp[] = {&p[0], &p[1], &p[2]};
  r.n_points = 3, r.points = pp;
  CkptJp3__Run__FlagsEntry fl[2] = {CKPT_JP3__RUN__FLAGS_ENTRY__INIT,
                                    CKPT_JP3__RUN__FLAGS_ENTRY__INIT};
  fl[0].key = 1, fl[0].value = "yes";
  fl[1].key = 0, fl[1].value = "";
  CkptJp3__Run__FlagsEntry *fp[] = {&fl[0], &fl[1]};
  r.n_flags = 2, r.flags = fp;
  CkptJp3__Run__PhasesEntry ph[2] = {CKPT_JP3__RUN__PHASES_ENTRY__INIT,
                                     CKPT_JP3__RUN__PHASES_ENTRY__INIT};
  ph[0].key = UINT32_MAX, ph[0].value = CKPT_JP3__PHASE__WARMUP;
  ph[1].key = 5, ph[1].value = (CkptJp3__Phase)99; /* unknown value of an open enum */
  CkptJp3__Run__PhasesEntry *php[] = {&ph[0], &ph[1]};
  r.n_phases = 2, r.phases = php;
  CkptJp3__Run__NamedEntry ne = CKPT_JP3__RUN__NAMED_ENTRY__INIT;
  ne.key = "n";
  ne.value = &v1;
  CkptJp3__Run__NamedEntry *nep[] = {&ne};
  r.n_named = 1, r.named = nep;
  r.source_case = CKPT_JP3__RUN__SOURCE_ANCHOR, r.anchor = &v0;
  r.big = UINT64_MAX, r.neg = INT64_MIN, r.fx = 1;
  char *tags[] = {"a", "", "b"};
  r.n_tags = 3, r.tags = tags;
  add_case(&r.base);

  /* 5: empty proto3 message; 6, 7: zero-valued oneof members. (Not -0.0 in an implicit-presence
   * field: the protobuf-c binary this harness uses as the reference drops it, while both text
   * formats keep it; the runtime suite pins that.) */
  CkptJp3__Run empty = CKPT_JP3__RUN__INIT;
  add_case(&empty.base);
  CkptJp3__Run zero = CKPT_JP3__RUN__INIT;
  zero.source_case = CKPT_JP3__RUN__SOURCE_SEED, zero.seed = 0;
  add_case(&zero.base);
  zero.source_case = CKPT_JP3__RUN__SOURCE_FILE, zero.file = "";
  add_case(&zero.base);

  /* 8: deep nesting */
  CkptJp2__Leaf chain[60];
  CkptJp2__Leaf *links[60];
  for (int i = 0; i < 60; i++) {
    CkptJp2__Leaf init = CKPT_JP2__LEAF__INIT;
    chain[i] = init;
    chain[i].has_id = 1, chain[i].id = i;
    links[i] = &chain[i];
    if (i)
      chain[i - 1].n_kids = 1, chain[i - 1].kids = &links[i];
  }
  CkptJp2__All deep = CKPT_JP2__ALL__INIT;
  deep.leaf = &chain[0];
  add_case(&deep.base);

  /* Python prints every case and parses our text */
  cr_assert_eq(peer("pbtxt-print", jp_mods, in_dir("cases"), NULL), 0,
               "Python's text_format rejected or misread ckpt's text (see stderr)");

  /* our text is byte-identical to Python's; we parse Python's text */
  for (int i = 0; i < n_cases; i++) {
    char name[64];
    snprintf(name, sizeof name, "cases/case_%02d.c.pbtxt", i);
    char *ours = slurp(in_dir(name), NULL);
    snprintf(name, sizeof name, "cases/case_%02d.py.pbtxt", i);
    size_t plen;
    char *theirs = slurp(in_dir(name), &plen);
    assert_same_text(ours, theirs, i);
    snprintf(name, sizeof name, "cases/case_%02d.type", i);
    char *type = slurp(in_dir(name), NULL);
    const ProtobufCMessageDescriptor *d =
        strcmp(type, "ckpt_jp2.All") == 0 ? &ckpt_jp2__all__descriptor : &ckpt_jp3__run__descriptor;
    cr_assert_str_eq(d->name, type);
    ckpt_error err = CKPT_ERROR_INIT;
    ProtobufCMessage *m = NULL;
    cr_assert_eq(ckpt_pbtxt_parse(d, theirs, plen, name, &m, &err), CKPT_OK, "case %d: %s", i,
                 err.message);
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *bin = malloc(len + 1);
    protobuf_c_message_pack(m, bin);
    snprintf(name, sizeof name, "cases/case_%02d.c2.bin", i);
    spit(in_dir(name), bin, len);
    free(bin);
    protobuf_c_message_free_unpacked(m, NULL);
    free(type);
    free(ours);
    free(theirs);
  }
  cr_assert_eq(peer("pbtxt-equal", jp_mods, in_dir("cases"), NULL), 0,
               "ckpt parsed Python's text into a different message (see stderr)");
  free(dd);
  free(ff);
}

/* ---------------------------------------------------------------- JSON */

/* The value jp_peer.py's expected_json() holds. */
static cJSON *expected_json(void) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "step", 1200);
  cJSON_AddNumberToObject(o, "lr", 0.0003);
  cJSON_AddNumberToObject(o, "neg", -2.5e-8);
  cJSON_AddRawToObject(o, "big", "9223372036854775809");
  cJSON_AddNumberToObject(o, "huge", 1e300);
  cJSON_AddNumberToObject(o, "nan", NAN);
  cJSON_AddNumberToObject(o, "inf", INFINITY);
  cJSON_AddNumberToObject(o, "ninf", -INFINITY);
  cJSON_AddNumberToObject(o, "zero", -0.0);
  cJSON_AddStringToObject(o, "name", "r\xc3\xa9sum\xc3\xa9 \xf0\x9f\x98\x80 \"q\" \\ \n\t\x01");
  cJSON *flags = cJSON_AddArrayToObject(o, "flags");
  cJSON_AddItemToArray(flags, cJSON_CreateTrue());
  cJSON_AddItemToArray(flags, cJSON_CreateFalse());
  cJSON_AddItemToArray(flags, cJSON_CreateNull());
  cJSON *nested = cJSON_AddObjectToObject(o, "nested");
  cJSON *a = cJSON_AddArrayToObject(nested, "a");
  cJSON_AddItemToArray(a, cJSON_CreateNumber(1));
  cJSON *a2 = cJSON_CreateArray();
  cJSON_AddItemToArray(a2, cJSON_CreateNumber(2));
  cJSON *a3 = cJSON_CreateArray();
  cJSON_AddItemToArray(a3, cJSON_CreateNumber(3));
  cJSON_AddItemToArray(a3, cJSON_CreateObject());
  cJSON_AddItemToArray(a2, a3);
  cJSON_AddItemToArray(a, a2);
  cJSON_AddArrayToObject(nested, "empty");
  cJSON_AddStringToObject(nested, "s", "");
  return o;
}

/* Deep equality that treats NaN as equal to NaN and tells -0.0 from 0.0. */
static int same_json(const cJSON *x, const cJSON *y) {
  if ((x->type & 0xFF) != (y->type & 0xFF))
    return 0;
  switch (x->type & 0xFF) {
    case cJSON_Number:
      if (isnan(x->valuedouble))
        return isnan(y->valuedouble);
      return x->valuedouble == y->valuedouble && signbit(x->valuedouble) == signbit(y->valuedouble);
    case cJSON_String:
    case cJSON_Raw:
      return strcmp(x->valuestring, y->valuestring) == 0;
    case cJSON_Array:
    case cJSON_Object: {
      const cJSON *a = x->child, *b = y->child;
      for (; a && b; a = a->next, b = b->next) {
        if ((x->type & 0xFF) == cJSON_Object && strcmp(a->string, b->string) != 0)
          return 0;
        if (!same_json(a, b))
          return 0;
      }
      return !a && !b;
    }
    default:
      return 1;
  }
}

Test(interop_jp, python_json_reads_our_metadata) {
  cJSON *item = expected_json();
  ckpt_JsonSave s;
  cr_assert_eq(ckpt_JsonSave_init(&s), CKPT_OK);
  s.item = item;
  ckpt_error err = CKPT_ERROR_INIT;
  cr_assert_eq(ckpt_JsonCheckpointHandler_save(NULL, NULL, jp_dir, &s.base, &err), CKPT_OK, "%s",
               err.message);
  cr_assert_eq(peer("json-read", in_dir("metadata"), NULL, NULL), 0,
               "Python's json.loads read a different value (see stderr)");
  cJSON_Delete(item);
}

Test(interop_jp, we_read_python_json_dumps) {
  cr_assert_eq(peer("json-write", in_dir("metadata"), NULL, NULL), 0);
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_value v = {0};
  cr_assert_eq(ckpt_JsonCheckpointHandler_restore(NULL, NULL, jp_dir, NULL, &v, &err), CKPT_OK,
               "%s", err.message);
  cJSON *want = expected_json();
  char *got_text = NULL;
  ckpt_json_dump(v.u.json, &got_text, NULL, &err);
  cr_assert(same_json(v.u.json, want), "restored %s", got_text ? got_text : "?");
  /* re-saving what Python wrote gives Python's bytes back */
  char *py = slurp(in_dir("metadata"), NULL);
  cr_assert_str_eq(got_text, py);
  free(py);
  free(got_text);
  cJSON_Delete(want);
  ckpt_value_free(&v);
}

/* ---------------------------------------------------------------- through the checkpointer */

static char *expect_step_meta(cJSON *item_handlers, const cJSON *custom) {
  cJSON *e = cJSON_CreateObject();
  cJSON_AddItemToObject(e, "item_handlers", item_handlers);
  cJSON_AddItemToObject(e, "custom_metadata", cJSON_Duplicate(custom, true));
  char *text = cJSON_PrintUnformatted(e);
  cJSON_Delete(e);
  return text;
}

Test(interop_jp, checkpointer_metadata_is_what_orbax_reads) {
  ckpt_error err = CKPT_ERROR_INIT;
  ckpt_checkpointer *c;
  cr_assert_eq(ckpt_checkpointer_new(&ckpt_JsonCheckpointHandler_desc, NULL, &c, &err), CKPT_OK,
               "%s", err.message);
  ckpt_JsonSave *s = ckpt_JsonSave_new();
  cr_assert_not_null(s);
  s->item = expected_json(); /* owned by the args */
  cJSON *custom = cJSON_Parse("{\"run\": \"jp\", \"attempt\": 2}");
  char *path = in_dir("ckpt_single");
  cr_assert_eq(ckpt_checkpointer_save(c, path, &s->base, false, custom, &err), CKPT_OK, "%s",
               err.message);
  cr_assert_eq(ckpt_checkpointer_wait_until_finished(c, &err), CKPT_OK, "%s", err.message);
  char *expect =
      expect_step_meta(cJSON_CreateString(ckpt_JsonCheckpointHandler_desc.typestr), custom);
  cr_assert_eq(peer("step-metadata", path, expect, NULL), 0,
               "_CHECKPOINT_METADATA is not what Orbax expects (see stderr)");
  char meta[600];
  snprintf(meta, sizeof meta, "%s/metadata", path);
  cr_assert_eq(peer("json-read", meta, NULL, NULL), 0);

  ckpt_value v = {0};
  cr_assert_eq(ckpt_checkpointer_restore(c, path, NULL, &v, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(v.kind, CKPT_VALUE_JSON);
  cr_assert(same_json(v.u.json, s->item));
  ckpt_value_free(&v);
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
  free(expect);
  cJSON_Delete(custom);
  ckpt_args_delete(&s->base);
}

/* A heap Run that ckpt_record_free (via protobuf_c_message_free_unpacked) can release. */
static ProtobufCMessage *heap_run(size_t *len_out, uint8_t **bin_out) {
  CkptJp3__Vec v = CKPT_JP3__VEC__INIT;
  v.x = 0.5;
  CkptJp3__Run r = CKPT_JP3__RUN__INIT;
  r.step = 77, r.name = "composite", r.lr = 0.01f, r.origin = &v;
  CkptJp3__Run__CountsEntry ce = CKPT_JP3__RUN__COUNTS_ENTRY__INIT;
  ce.key = "k", ce.value = 5;
  CkptJp3__Run__CountsEntry *cep[] = {&ce};
  r.n_counts = 1, r.counts = cep;
  size_t len = protobuf_c_message_get_packed_size(&r.base);
  uint8_t *bin = malloc(len + 1);
  cr_assert_not_null(bin);
  protobuf_c_message_pack(&r.base, bin);
  ProtobufCMessage *m = protobuf_c_message_unpack(&ckpt_jp3__run__descriptor, NULL, len, bin);
  cr_assert_not_null(m);
  *len_out = len;
  *bin_out = bin;
  return m;
}

static void composite_round_trip(bool async, const char *name) {
  ckpt_error err = CKPT_ERROR_INIT;
  size_t len;
  uint8_t *bin;
  ckpt_ProtoSave *ps = ckpt_ProtoSave_new();
  ckpt_JsonSave *js = ckpt_JsonSave_new();
  cr_assert(ps && js);
  ps->item = heap_run(&len, &bin);
  js->item = expected_json();
  ckpt_Composite *save = ckpt_composite_new();
  cr_assert_not_null(save);
  cr_assert_eq(ckpt_composite_add(save, "config", &ps->base, &err), CKPT_OK, "%s", err.message);
  cr_assert_eq(ckpt_composite_add(save, "meta", &js->base, &err), CKPT_OK, "%s", err.message);

  ckpt_checkpointer_options opts = CKPT_CHECKPOINTER_OPTIONS_INIT;
  opts.async = async;
  ckpt_checkpointer *c;
  cr_assert_eq(ckpt_checkpointer_new(NULL, &opts, &c, &err), CKPT_OK, "%s", err.message);
  char *path = in_dir(name);
  cr_assert_eq(ckpt_checkpointer_save(c, path, &save->base, false, NULL, &err), CKPT_OK, "%s",
               err.message);
  cr_assert_eq(ckpt_checkpointer_wait_until_finished(c, &err), CKPT_OK, "%s", err.message);

  /* Python reads both items the way Orbax's handlers do */
  char binpath[600];
  snprintf(binpath, sizeof binpath, "%s.bin", path);
  spit(binpath, bin, len);
  cr_assert_eq(peer("composite", jp_mods, path, binpath), 0, "see stderr");
  cJSON *handlers = cJSON_CreateObject();
  cJSON_AddStringToObject(handlers, "config", ckpt_ProtoCheckpointHandler_desc.typestr);
  cJSON_AddStringToObject(handlers, "meta", ckpt_JsonCheckpointHandler_desc.typestr);
  cJSON *no_custom = cJSON_CreateObject();
  char *expect = expect_step_meta(handlers, no_custom);
  cr_assert_eq(peer("step-metadata", path, expect, NULL), 0, "see stderr");

  /* restore with the message type for the proto item */
  ckpt_ProtoRestore *pr = ckpt_ProtoRestore_new();
  cr_assert_not_null(pr);
  pr->item = malloc(ckpt_jp3__run__descriptor.sizeof_message);
  cr_assert_not_null(pr->item);
  ckpt_jp3__run__init((CkptJp3__Run *)pr->item);
  ckpt_Composite *restore = ckpt_composite_new();
  cr_assert_eq(ckpt_composite_add(restore, "config", &pr->base, &err), CKPT_OK);
  cr_assert_eq(ckpt_composite_add(restore, "meta", &ckpt_JsonRestore_new()->base, &err), CKPT_OK);
  ckpt_value v = {0};
  cr_assert_eq(ckpt_checkpointer_restore(c, path, &restore->base, &v, &err), CKPT_OK, "%s",
               err.message);
  cr_assert_eq(v.kind, CKPT_VALUE_COMPOSITE);
  ckpt_value *cfg = ckpt_value_item_get(&v, "config"), *meta = ckpt_value_item_get(&v, "meta");
  cr_assert(cfg && meta);
  cr_assert_eq(cfg->kind, CKPT_VALUE_PROTO);
  size_t got_len = protobuf_c_message_get_packed_size(cfg->u.proto);
  uint8_t *got = malloc(got_len + 1);
  protobuf_c_message_pack(cfg->u.proto, got);
  cr_assert(got_len == len && memcmp(got, bin, len) == 0, "proto item changed");
  cr_assert_eq(meta->kind, CKPT_VALUE_JSON);
  cr_assert(same_json(meta->u.json, js->item));
  free(got);
  ckpt_value_free(&v);
  cr_assert_eq(ckpt_checkpointer_close(c, &err), CKPT_OK, "%s", err.message);
  ckpt_args_delete(&restore->base);
  ckpt_args_delete(&save->base);
  cJSON_Delete(no_custom);
  free(expect);
  free(bin);
}

Test(interop_jp, composite_of_json_and_proto_round_trips) {
  composite_round_trip(false, "ckpt_composite");
}

Test(interop_jp, async_composite_of_json_and_proto_round_trips) {
  composite_round_trip(true, "ckpt_composite_async");
}
