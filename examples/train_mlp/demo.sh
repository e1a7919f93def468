#!/bin/sh
# examples/train_mlp/demo.sh BUILD_DIR — kill a training run with SIGKILL, resume it, and show
# that it ends bit for bit where an uninterrupted run ends. Run by `make demo`; exits non-zero
# if the resumed run differs from the uninterrupted one in any logged bit.
#
#   1. reference: an uninterrupted run (STEPS steps, checkpoint every SAVE_EVERY)
#   2. victim:    the same run, slowed down with --sleep-ms, killed with SIGKILL once at least
#                 one checkpoint has committed, then restarted with --resume
#   3. the losses logged after the resume point, and the final state, must be identical;
#      `ckpt ls` / `ckpt diff` (if the ckpt tool was built) and zarr-python look at the files.
set -eu

build=${1:-build}
here=$(cd "$(dirname "$0")/../.." && pwd)
case $build in /*) ;; *) build=$here/$build ;; esac
prog=$build/bin/examples/train_mlp
ckpt_tool=$build/bin/ckpt
python=${CKPT_PYTHON:-/usr/bin/python3}

STEPS=200
SAVE_EVERY=25
KEEP=3
SLEEP_MS=8

if [ ! -x "$prog" ]; then
  echo "demo.sh: $prog is missing; run 'make BUILD=${1:-build} all' first" >&2
  exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/train-mlp-demo.XXXXXX")
victim_pid=
cleanup() {
  if [ -n "$victim_pid" ]; then kill -9 "$victim_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n-- %s\n' "$*"; }
# Finalized step directories of a manager directory (tmp leftovers are not steps).
steps_in() {
  for p in "$1"/*; do
    n=${p##*/}
    case $n in '' | *[!0-9]*) ;; *) if [ -d "$p" ]; then echo "$n"; fi ;; esac
  done | sort -n
}

ref=$work/reference
run=$work/run
args="--steps $STEPS --save-every $SAVE_EVERY --keep $KEEP"

say "1. reference run: $STEPS steps, checkpoint every $SAVE_EVERY (async), keep the $KEEP best by val_loss + the latest"
# shellcheck disable=SC2086
"$prog" --dir "$ref" $args --log "$work/reference.log" >/dev/null 2>"$work/reference.err"
grep -E '^step (1|50|100|150|200) ' "$work/reference.log" || true
tail -n 1 "$work/reference.log"

say "2. the same run, slowed to ${SLEEP_MS} ms a step, killed with SIGKILL mid-run"
# shellcheck disable=SC2086
"$prog" --dir "$run" $args --sleep-ms "$SLEEP_MS" --log "$work/killed.log" \
  >/dev/null 2>"$work/killed.err" &
victim_pid=$!
# Wait until the step-50 checkpoint has committed, then let it run on a little so the kill lands
# between (or during) later saves.
waited=0
until steps_in "$run" | grep -qx 50; do
  if ! kill -0 "$victim_pid" 2>/dev/null; then
    echo "demo.sh: the run ended before it could be killed" >&2
    cat "$work/killed.err" >&2
    exit 1
  fi
  sleep 0.05
  waited=$((waited + 1))
  if [ "$waited" -gt 600 ]; then
    echo "demo.sh: no checkpoint committed within 30 s" >&2
    exit 1
  fi
done
sleep 0.3
if ! kill -9 "$victim_pid" 2>/dev/null; then
  echo "demo.sh: the run finished before it could be killed" >&2
  exit 1
fi
wait "$victim_pid" 2>/dev/null || true
victim_pid=
last_logged=$(grep '^step' "$work/killed.log" | tail -n 1)
echo "killed after: $last_logged"
echo "on disk: $(cd "$run" && echo *)"
for p in "$run"/*.orbax-checkpoint-tmp*; do
  if [ -e "$p" ]; then
    echo "(${p##*/}: the save that was in flight when the process died; never a step)"
  fi
done
# Everything the killed run logged is what the reference logged (same lines, same order).
grep -v '^#' "$work/killed.log" > "$work/killed.lines" || true
grep -v '^#' "$work/reference.log" | head -n "$(grep -c '' "$work/killed.lines")" \
  > "$work/reference.head"
if ! diff "$work/reference.head" "$work/killed.lines" > "$work/diff.out"; then
  echo "demo.sh: before it died, the killed run logged other losses than the reference:" >&2
  head -n 10 "$work/diff.out" >&2
  exit 1
fi

say "3. resume with --resume"
# shellcheck disable=SC2086
"$prog" --dir "$run" $args --resume --log "$work/resumed.log" >/dev/null 2>"$work/resumed.err"
grep -E 'resumed from|done:' "$work/resumed.err"
resumed_from=$(sed -n 's/.*resumed from step \([0-9][0-9]*\).*/\1/p' "$work/resumed.err")
if [ -z "$resumed_from" ]; then
  echo "demo.sh: the restarted run did not resume from a checkpoint" >&2
  cat "$work/resumed.err" >&2
  exit 1
fi

say "4. bit-exact? losses after step $resumed_from and the final state, resumed vs reference"
awk -v s="$resumed_from" '($1 == "step" && $2 + 0 > s) || $1 == "final"' \
  "$work/reference.log" > "$work/expected.lines"
grep -v '^#' "$work/resumed.log" > "$work/resumed.lines"
if diff "$work/expected.lines" "$work/resumed.lines" > "$work/diff.out"; then
  echo "identical: $(grep -c '' "$work/resumed.lines") logged lines (steps $((resumed_from + 1))..$STEPS, 9 significant digits = every float32 bit)"
  tail -n 1 "$work/resumed.lines"
else
  echo "demo.sh: NOT bit-exact: the resumed run differs from the reference:" >&2
  head -n 20 "$work/diff.out" >&2
  exit 1
fi
final=$(steps_in "$run" | tail -n 1)
if [ -x "$ckpt_tool" ]; then
  echo "\$ ckpt diff reference/$final run/$final"
  "$ckpt_tool" diff "$ref/$final" "$run/$final" || {
    echo "demo.sh: ckpt diff found differences in the final checkpoints" >&2
    exit 1
  }
fi

if [ -x "$ckpt_tool" ]; then
  say "5. ckpt ls of the manager directory (the $KEEP best by val_loss, plus the latest)"
  "$ckpt_tool" ls "$run"
else
  say "5. the manager directory (build the ckpt tool for 'ckpt ls')"
  ls -l "$run"
fi

say "6. the final weights, read by zarr-python"
if "$python" -c 'import zarr' 2>/dev/null; then
  echo "\$ $python -c \"import zarr; a = zarr.open('RUN/$final/default/w1', 'r'); print(a.shape, a.dtype, a[:2, :4])\""
  "$python" -c "import zarr; a = zarr.open('$run/$final/default/w1', 'r'); print(a.shape, a.dtype, a[:2, :4])"
  # Every array of the two final checkpoints, compared bit for bit by numpy.
  "$python" - "$ref/$final/default" "$run/$final/default" <<'EOF'
import os, sys
import numpy as np, zarr
a_dir, b_dir = sys.argv[1], sys.argv[2]
names = sorted(n for n in os.listdir(a_dir) if os.path.exists(os.path.join(a_dir, n, ".zarray")))
diff = [n for n in names
        if not np.array_equal(zarr.open(os.path.join(a_dir, n), "r")[...],
                              zarr.open(os.path.join(b_dir, n), "r")[...])]
print("numpy: %d arrays compared, %d differ" % (len(names), len(diff)), *diff)
sys.exit(1 if diff else 0)
EOF
else
  echo "($python has no zarr module; skipped)"
fi
echo
echo "train_mlp: killed at \"$last_logged\", resumed from step $resumed_from, finished bit-exact."
