#!/bin/sh
# examples/model_state/demo.sh BUILD_DIR — a transformer-like state saved by one C process,
# restored resharded by others, read by Python. Run by `make demo`; exits non-zero if any
# reader disagrees with the saver.
#
#   1. `model_state save`: a Composite of StandardSave (float32 params, bfloat16 and float32
#      optimizer moments, int64 step, float64 learning rate), PyTreeSave (strings), a JAX key
#      and numpy's MT19937 state; prints a fingerprint of every leaf and the next RNG draws
#   2. `model_state restore --shards 3` and `--shards 7`: new processes restore every array as
#      row-blocks that cut across the saved chunks, verify every element, and print the same
#   3. zarr-python + numpy + json read the same directory (check_zarr.py)
set -eu

build=${1:-build}
here=$(cd "$(dirname "$0")/../.." && pwd)
case $build in /*) ;; *) build=$here/$build ;; esac
prog=$build/bin/examples/model_state
python=${CKPT_PYTHON:-/usr/bin/python3}

if [ ! -x "$prog" ]; then
  echo "demo.sh: $prog is missing; run 'make BUILD=${1:-build} all' first" >&2
  exit 2
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/model-state-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
say() { printf '\n-- %s\n' "$*"; }
# The lines saver and restorers must agree on (all but the closing summary).
agreed() { grep -v -e '^saved ' -e '^verified ' "$1"; }

say "1. model_state save (seed 2024)"
"$prog" save "$work/ckpt" --seed 2024 > "$work/save.out"
echo "$(grep -c '^leaf ' "$work/save.out") leaves fingerprinted, e.g.:"
grep -E 'leaf state/(params.embed.embedding|opt_state.mu.embed.embedding|step) ' "$work/save.out"
grep -E '^(string meta/tokenizer|rng |np_rng next_u32)' "$work/save.out"
tail -n 1 "$work/save.out"
echo "items: $(cd "$work/ckpt" && ls -d */ | tr -d / | tr '\n' ' ')"
echo "params.embed.embedding is stored in $(ls "$work/ckpt/state/params.embed.embedding" | wc -l) chunks," \
  "opt_state.mu.embed.embedding (bfloat16) in $(ls "$work/ckpt/state/opt_state.mu.embed.embedding" | wc -l)"

for n in 3 7; do
  say "2. model_state restore --shards $n (a new process)"
  "$prog" restore "$work/ckpt" --shards "$n" > "$work/restore$n.out"
  tail -n 1 "$work/restore$n.out"
  agreed "$work/restore$n.out" > "$work/restore$n.cmp"
  if ! agreed "$work/save.out" | diff - "$work/restore$n.cmp" > "$work/diff.out"; then
    echo "demo.sh: the restoring process printed other values than the saver:" >&2
    head -n 20 "$work/diff.out" >&2
    exit 1
  fi
  echo "identical: all $(grep -c '' "$work/restore$n.cmp") fingerprint and RNG lines"
done

say "3. Python: zarr-python + numpy + json read the same directory"
if "$python" -c 'import zarr, numpy' 2>/dev/null; then
  "$python" "$here/examples/model_state/check_zarr.py" "$work/ckpt" "$work/save.out"
else
  echo "($python has no zarr/numpy; skipped)"
fi
echo
echo "model_state: saved in one process, restored resharded in others, read by Python: all agree."
