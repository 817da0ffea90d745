#!/usr/bin/env bash
# An honest follower measured by a client of its own (scripts/follower-delay.py) beside
# `proxima attack followers`, as a check of the attack's own follower probe: a fresh keyed
# server per run; the probe's moves are split into the attack's phases by the times
# `proxima attack` prints on standard error. Prints, per run, the probe's delays (a move
# to its frame) without the attack and with it, and the harness's own figures.
#
#   scripts/followers-probe.sh [RUNS] [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
port=${PORT:-7892}
attack_keys 130
runs=${1:-3}
duration=${2:-15}
for run in $(seq 1 "$runs"); do
  start_attack_server "$port"
  "$bin" attack --target "http://127.0.0.1:$port" --victim-key "$victim" --attacker-keys "$work/attackers.txt" --attack followers --duration "$duration" --crowd 50000 --json >"$work/report-$run.json" 2>"$work/progress-$run.txt" &
  attack=$!
  python3 scripts/follower-delay.py $port "$victim" "probe:trip" $((duration * 2 + 40)) >"$work/probe-$run.txt" &
  probe=$!
  wait $attack
  kill $probe 2>/dev/null || true
  kill "$server"; wait "$server" 2>/dev/null || true; server=
  python3 - "$work/progress-$run.txt" "$work/probe-$run.txt" "$work/report-$run.json" <<'PY'
import json, sys, statistics
marks = {}
for line in open(sys.argv[1]):
    ms, rest = line.split(" ", 1)
    marks[rest.split(": ", 1)[1].strip()] = int(ms)
phases = {"without": (marks["measuring without the attack"], marks["setting up the attack"]),
          "with": (marks["measuring with the attack"], marks["done"])}
samples = [l.split() for l in open(sys.argv[2])]
r = json.loads(open(sys.argv[3]).read())
out = []
for name, (a, b) in phases.items():
    d = [float(x) for t, x in samples if a <= int(t) < b and x != "missed"]
    missed = sum(1 for t, x in samples if a <= int(t) < b and x == "missed")
    d.sort()
    q = lambda p: d[min(len(d) - 1, int(p * len(d)))]
    out.append(f"{name}: n {len(d)} p50 {q(0.5):.1f} p90 {q(0.9):.1f} p99 {q(0.99):.1f} max {d[-1]:.1f} ms missed {missed}")
print("probe:", "; ".join(out))
print("harness: p50", r["follower_before_us"]["p50"]/1000, "->", r["follower_during_us"]["p50"]/1000,
      "p90", r["follower_before_us"]["p90"]/1000, "->", r["follower_during_us"]["p90"]/1000,
      "p99", r["follower_before_us"]["p99"]/1000, "->", r["follower_during_us"]["p99"]/1000, "ms; victim", round(r["victim_ratio"], 2))
PY
done
