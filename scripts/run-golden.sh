#!/usr/bin/env bash
# Runs `worker simulate` on one golden scenario with the flags of its run.json and compares
# the log with the original's (the `args:` line aside).
#   scripts/run-golden.sh [SCENARIO] [OUT]     default: cv-resnet18-auburn, results/golden/SCENARIO
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
scenario="${1:-cv-resnet18-auburn}"
dir="$root/../shared/golden/$scenario"
out="${2:-$root/results/golden/$scenario}"
[ -f "$dir/run.json" ] || { echo "error: no golden scenario at $dir" >&2; exit 1; }
cargo build --release --quiet -p worker --manifest-path "$root/Cargo.toml"
mapfile -t args < <(python3 - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
run = json.load(open(f"{d}/run.json"))
rel = run["paths_relative_to_data"]
flags = dict(run["flags"])
for k in ("bootstrap_pickle_path", "simulation_pickle_path", "batch_decision_path"):
    if k in flags:
        flags[k] = f"{d}/data/{rel[k]}"
flags["profile_dir"] = f"{d}/data/{run['profile_dir_relative_to_data']}"
for k, v in flags.items():
    print(f"--{k}"); print(v)
PY
)
"$root/target/release/worker" simulate "${args[@]}" --out "$out"
if diff <(tail -n +2 "$out/log.txt") <(tail -n +2 "$dir/expected/log.txt") >/dev/null; then
  echo "$scenario: log.txt matches the original line for line ($(wc -l < "$out/log.txt") lines); results in $out"
else
  echo "$scenario: log.txt differs from the original:" >&2
  diff <(tail -n +2 "$out/log.txt") <(tail -n +2 "$dir/expected/log.txt") | head -20 >&2
  exit 1
fi
