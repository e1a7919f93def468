#!/usr/bin/python3
"""Python peer of test_interop_json_proto.c: does what Orbax's JsonCheckpointHandler and
ProtoCheckpointHandler do (json.dumps / json.loads, text_format.MessageToString /
text_format.Parse) on files the C test writes, and checks the results.

Usage (all paths absolute; MODDIR holds the *_pb2.py modules protoc generated at test time):
  jp_peer.py pbtxt-print MODDIR CASEDIR   for each case_N: read case_N.bin (serialized message
                                          of type case_N.type), write case_N.py.pbtxt with
                                          MessageToString, and check that text_format.Parse of
                                          the C text case_N.c.pbtxt gives the same message.
  jp_peer.py pbtxt-equal MODDIR CASEDIR   for each case_N: case_N.c2.bin (C's parse of Python's
                                          text, re-serialized) equals case_N.bin as a message.
  jp_peer.py json-read FILE               json.loads(FILE) must equal expected_json().
  jp_peer.py json-write FILE              writes json.dumps(expected_json()) as Orbax does.
  jp_peer.py step-metadata CKPT EXPECT    checks CKPT/_CHECKPOINT_METADATA against the JSON
                                          object EXPECT (item_handlers, custom_metadata) and
                                          Orbax's key set and types.
  jp_peer.py composite MODDIR CKPT BIN    CKPT/meta/metadata is expected_json() and
                                          CKPT/config/proto.pbtxt parses into the ckpt_jp3.Run
                                          serialized in BIN.
Exit status 0 when every check passes; otherwise the failures are printed on stderr.
"""
import glob
import importlib
import json
import math
import os
import sys

failures = []


def fail(msg):
    failures.append(msg)
    print("jp_peer: " + msg, file=sys.stderr)


def message_class(moddir, full_name):
    sys.path.insert(0, moddir)
    from google.protobuf import symbol_database
    for name in ("jp_interop_pb2", "jp_interop3_pb2"):
        importlib.import_module(name)
    return symbol_database.Default().GetSymbol(full_name)


def same_message(a, b):
    # == treats NaN as unequal; deterministic bytes compare NaN fields too.
    return a == b or (a.SerializeToString(deterministic=True) ==
                      b.SerializeToString(deterministic=True))


def read(path, mode="rb"):
    with open(path, mode) as f:
        return f.read()


def cases(casedir):
    return sorted(glob.glob(os.path.join(casedir, "case_*.type")))


def pbtxt_print(moddir, casedir):
    from google.protobuf import text_format
    for tpath in cases(casedir):
        base = tpath[:-len(".type")]
        cls = message_class(moddir, read(tpath, "r").strip())
        msg = cls.FromString(read(base + ".bin"))
        with open(base + ".py.pbtxt", "w") as f:
            f.write(text_format.MessageToString(msg))
        try:
            ours = text_format.Parse(read(base + ".c.pbtxt", "r"), cls())
        except text_format.ParseError as e:
            fail("%s: Python cannot parse ckpt's text: %s" % (base, e))
            continue
        if not same_message(ours, msg):
            fail("%s: ckpt's text parses into a different message:\n%s" %
                 (base, text_format.MessageToString(ours)))


def pbtxt_equal(moddir, casedir):
    for tpath in cases(casedir):
        base = tpath[:-len(".type")]
        cls = message_class(moddir, read(tpath, "r").strip())
        want = cls.FromString(read(base + ".bin"))
        got = cls.FromString(read(base + ".c2.bin"))
        if not same_message(got, want):
            fail("%s: ckpt parsed Python's text into a different message" % base)


def expected_json():
    return {
        "step": 1200,
        "lr": 0.0003,
        "neg": -2.5e-8,
        "big": 2 ** 63 + 1,
        "huge": 1e300,
        "nan": float("nan"),
        "inf": float("inf"),
        "ninf": float("-inf"),
        "zero": -0.0,
        "name": "r\u00e9sum\u00e9 \U0001F600 \"q\" \\ \n\t\x01",
        "flags": [True, False, None],
        "nested": {"a": [1, [2, [3, {}]]], "empty": [], "s": ""},
    }


def same_json(a, b):
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) and math.isnan(b):
            return True
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    return a == b


def json_read(path):
    got = json.loads(read(path, "r"))
    if not same_json(got, expected_json()):
        fail("%s holds %r, expected %r" % (path, got, expected_json()))


def json_write(path):
    with open(path, "w") as f:
        f.write(json.dumps(expected_json()))  # what JsonCheckpointHandler writes


STEP_KEYS = {"item_handlers", "metrics", "performance_metrics", "init_timestamp_nsecs",
             "commit_timestamp_nsecs", "custom_metadata"}


def step_metadata(ckpt, expect_text):
    expect = json.loads(expect_text)
    meta = json.loads(read(os.path.join(ckpt, "_CHECKPOINT_METADATA"), "r"))
    if set(meta) != STEP_KEYS:
        fail("_CHECKPOINT_METADATA keys %s, expected %s" % (sorted(meta), sorted(STEP_KEYS)))
    if meta.get("item_handlers") != expect["item_handlers"]:
        fail("item_handlers %r, expected %r" % (meta.get("item_handlers"), expect["item_handlers"]))
    if meta.get("custom_metadata") != expect["custom_metadata"]:
        fail("custom_metadata %r, expected %r" % (meta.get("custom_metadata"),
                                                   expect["custom_metadata"]))
    for key in ("metrics", "performance_metrics"):
        if not isinstance(meta.get(key), dict):
            fail("%s is %r, expected a dict" % (key, meta.get(key)))
    for v in meta.get("performance_metrics", {}).values():
        if not isinstance(v, float):
            fail("performance_metrics holds a non-float %r" % (v,))
    init, commit = meta.get("init_timestamp_nsecs"), meta.get("commit_timestamp_nsecs")
    if not (isinstance(init, int) and isinstance(commit, int) and 0 < init <= commit):
        fail("timestamps init=%r commit=%r" % (init, commit))


def composite(moddir, ckpt, binpath):
    from google.protobuf import text_format
    json_read(os.path.join(ckpt, "meta", "metadata"))
    cls = message_class(moddir, "ckpt_jp3.Run")
    want = cls.FromString(read(binpath))
    got = text_format.Parse(read(os.path.join(ckpt, "config", "proto.pbtxt"), "r"), cls())
    if not same_message(got, want):
        fail("config/proto.pbtxt parses into %s" % text_format.MessageToString(got))


def main(argv):
    cmd = argv[1]
    if cmd == "pbtxt-print":
        pbtxt_print(argv[2], argv[3])
    elif cmd == "pbtxt-equal":
        pbtxt_equal(argv[2], argv[3])
    elif cmd == "json-read":
        json_read(argv[2])
    elif cmd == "json-write":
        json_write(argv[2])
    elif cmd == "step-metadata":
        step_metadata(argv[2], argv[3])
    elif cmd == "composite":
        composite(argv[2], argv[3], argv[4])
    else:
        fail("unknown command %s" % cmd)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
