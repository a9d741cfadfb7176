#!/usr/bin/env bash
# Load time of a large simulation pickle: our reader (release build) vs CPython's pickle.load,
# on the same file, in the same run.
#
#   scripts/bench_pickle_load.sh                # R=16, N=700000, Python floats/bools, protocol 4
#   ACC=numpy PYTHON=/tmp/fxvenv/bin/python scripts/bench_pickle_load.sh   # numpy.bool_ flags
#
# The file is generated under /tmp (never committed) unless it already exists. Both sides
# print checksums (sequential sum of conf[0..R-1], number of true flags) that must agree.
set -euo pipefail
cd "$(dirname "$0")/.."

R=${R:-16}
N=${N:-700000}
ACC=${ACC:-python}
REPEAT=${REPEAT:-3}
PYTHON=${PYTHON:-python3}
FILE=${FILE:-/tmp/apparate_bench_sim_R${R}_N${N}_${ACC}.pickle}

if [ ! -f "$FILE" ]; then
    echo "generating $FILE (R=$R, N=$N, acc=$ACC) ..."
    "$PYTHON" - "$FILE" "$R" "$N" "$ACC" <<'PY'
import pickle, random, sys
path, R, N, acc_kind = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = random.Random(7)
conf = [[0.5 + 0.5 * rng.random() for _ in range(N)] for _ in range(R)] + [[None] * N]
if acc_kind == "numpy":
    import numpy as np
    flag = [np.bool_(False), np.bool_(True)]
else:
    flag = [False, True]
acc = [[flag[rng.random() < 0.9] for _ in range(N)] for _ in range(R)] + [[True] * N]
with open(path, "wb") as f:
    pickle.dump({"conf": conf, "acc": acc}, f, protocol=4)
PY
fi
ls -l "$FILE"

cargo build --release -q -p apparate --example load_pickle

"$PYTHON" - "$FILE" "$REPEAT" <<'PY'
import os, pickle, sys, time
path, repeat = sys.argv[1], int(sys.argv[2])
times = []
for _ in range(repeat):
    t = time.perf_counter()
    with open(path, "rb") as f:
        p = pickle.load(f)
    times.append(time.perf_counter() - t)
    R = len(p["conf"]) - 1
    if _ < repeat - 1:
        del p
times.sort()
s = 0.0
for r in range(R):
    for x in p["conf"][r]:
        s += x
true = sum(1 for r in range(R) for a in p["acc"][r] if a)
print("cpython %s: %.1f MB, best %.3f s, median %.3f s over %d runs; R=%d N=%d conf_sum=%r acc_true=%d"
      % (path, os.path.getsize(path) / 1e6, times[0], times[len(times) // 2], repeat, R, len(p["conf"][0]), s, true))
PY

target/release/examples/load_pickle --repeat "$REPEAT" "$FILE"
