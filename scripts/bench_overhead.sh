#!/usr/bin/env bash
# Per-task overhead of a distributed sweep next to `worker --local`, on the built-in grid.
#
#   scripts/bench_overhead.sh [WORKERS]        (default 2 workers x 1 slot)
#
# Runs, in release builds and into fresh folders under $TMPDIR: `worker --local --jobs WORKERS`,
# then `coordinator sweep` with WORKERS workers of one slot each. Prints both wall times and,
# from the coordinator's ledger and manifests, each task's overhead: (attempt start -> result
# committed) minus the worker-side run time (`timings.total_ms` of its manifest).
# Needs python3 (for sqlite3 and json). The results folders are left for inspection.
set -euo pipefail
cd "$(dirname "$0")/.."
workers="${1:-2}"
cargo build --release --locked -p worker -p coordinator >/dev/null
bin=target/release
root="$(mktemp -d "${TMPDIR:-/tmp}/apparate-overhead-XXXXXX")"
echo "folders under $root"

t0=$(date +%s.%N)
"$bin/worker" --local --jobs "$workers" --no-report --out "$root/local" >/dev/null 2>&1
t1=$(date +%s.%N)
local_s=$(echo "$t1 - $t0" | bc)

echo "bench-token" >"$root/token"
"$bin/coordinator" sweep --listen 127.0.0.1:0 --out "$root/dist" --token-file "$root/token" \
  --no-report >"$root/coordinator.out" 2>"$root/coordinator.err" &
coord=$!
trap 'kill "$coord" 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  [ -s "$root/dist/coordinator.addr" ] && break
  sleep 0.1
done
addr="$(cat "$root/dist/coordinator.addr")"
t0=$(date +%s.%N)
pids=()
for i in $(seq 1 "$workers"); do
  "$bin/worker" --coordinator "http://$addr" --token-file "$root/token" --slots 1 \
    --scratch "$root/scratch-$i" --cache "$root/cache-$i" >"$root/worker-$i.log" 2>&1 &
  pids+=($!)
done
wait "$coord"
t1=$(date +%s.%N)
for p in "${pids[@]}"; do wait "$p" || true; done
trap - EXIT
dist_s=$(echo "$t1 - $t0" | bc)

python3 - "$root/dist" "$local_s" "$dist_s" "$workers" <<'PY'
import json, sqlite3, statistics, sys, pathlib
out, local_s, dist_s, workers = pathlib.Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
db = sqlite3.connect(out / "ledger.sqlite")
rows = db.execute(
    "SELECT task_key, started_ms, ended_ms FROM attempts WHERE outcome = 'succeeded'"
).fetchall()
over = []
for key, start, end in rows:
    m = json.loads((out / "tasks" / key / "manifest.json").read_text())
    over.append((end - start) - m["timings"]["total_ms"])
over.sort()
print(f"worker --local --jobs {workers}: {local_s:.1f} s; coordinator + {workers} workers x 1 slot: {dist_s:.1f} s")
print(f"per-task overhead over {len(over)} tasks: median {statistics.median(over):.0f} ms, "
      f"mean {statistics.mean(over):.0f} ms, max {over[-1]:.0f} ms")
PY
