#!/usr/bin/env bash
# POI query latency against kiddo and rstar, on both data shapes: runs
# `cargo bench --bench poi_queries` RUNS times (default 3) and prints, per run and as the
# median of the runs, each case's median time and its ratios to kiddo's and to the fair
# baseline's (`kiddo-exact`: kiddo plus exact distances and their order), measured in the
# same run (blank where kiddo has no such query: filters).
#
#   scripts/poi-bench-ratios.sh [RUNS] [FILTER]
#
# FILTER is a criterion filter (default: the k-nearest and radius cases).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
filter=${2:-'knn_k20/|radius_2km_k20/|radius_10km_k20/|rare|min_rating'}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

median_ns() { # estimates.json -> median point estimate, ns
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["median"]["point_estimate"])' "$1"
}

for run in $(seq 1 "$runs"); do
  echo "run $run of $runs" >&2
  cargo bench --quiet --bench poi_queries -- "$filter" >/dev/null 2>&1
  for group in target/criterion/pois_1m_population target/criterion/pois_1m_sqrt-population; do
    for dir in "$group"/*/; do
      [ -f "$dir/new/estimates.json" ] || continue
      echo "$(basename "$group") $(basename "$dir") $(median_ns "$dir/new/estimates.json")" >>"$out/run$run"
    done
  done
done

python3 - "$out" "$runs" <<'PY'
import collections, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
times = collections.defaultdict(list)   # (shape, case, engine) -> [ns per run]
for run in range(1, runs + 1):
    for line in open(f"{out}/run{run}"):
        group, name, ns = line.split()
        case, _, engine = name.rpartition("_")
        times[(group.removeprefix("pois_1m_"), case, engine)].append(float(ns))
print(f"{'shape':16} {'case':24} {'proxima µs':>11} {'kiddo µs':>9} {'exact µs':>9} {'rstar µs':>9} "
      f"{'÷ kiddo (runs)':>18} {'median':>7} {'÷ kiddo-exact (runs)':>22} {'median':>7}")
fmt = lambda xs: f"{statistics.median(xs) / 1000:.2f}" if xs else "-"
def ratios_of(p, base):
    ratios = [a / b for a, b in zip(p, base)]
    return (' '.join(f'{x:.2f}' for x in ratios), f'{statistics.median(ratios):.2f}' if ratios else '-')
for shape in ("population", "sqrt-population"):
    cases = sorted({c for (s, c, e) in times if s == shape and e == "proxima"})
    for case in cases:
        p = times[(shape, case, "proxima")]
        k = times.get((shape, case, "kiddo"), [])
        x = times.get((shape, case, "kiddo-exact"), [])
        r = times.get((shape, case, "rstar"), [])
        (kr, km), (xr, xm) = ratios_of(p, k), ratios_of(p, x)
        print(f"{shape:16} {case:24} {fmt(p):>11} {fmt(k):>9} {fmt(x):>9} {fmt(r):>9} "
              f"{kr:>18} {km:>7} {xr:>22} {xm:>7}")
PY
