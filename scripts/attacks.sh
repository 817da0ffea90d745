#!/usr/bin/env bash
# What each availability attack costs everyone else: starts a release server with keys
# (one victim key, ATTACKERS ordinary attacker keys), runs `proxima attack` for each attack
# on a fresh server, RUNS times, and prints the median over the runs of the victim's write
# rate with the attack as a share of without (target: at least 0.5) and of /healthz's 99th
# percentile during the attack (target: at most 10 ms); for `followers`, also how long an
# honest follower's frames took to come (a move of its trip to the frame holding it).
#
#   scripts/attacks.sh [RUNS] [ATTACKS] [DURATION]
#
# Every caller here connects from 127.0.0.1, so the per-address connection limit (a quarter
# of --max-connections) would shut the victim out with the attackers; the server is started
# with it raised to --max-connections, as for callers behind one proxy.
#
# ATTACKS is comma-separated (default roaming,maps,polygons,imports,routes,followers,narrowings); DURATION is seconds
# per phase (default 10). ATTACK_FLAGS are passed on (`--attackers-at-full-priority` runs
# the attackers' client unniced: see `proxima attack --help`). CROWD travellers (default 50,000) stand around the victim.
# SERVER_BIN runs another build as the server (this build's `proxima attack` attacks it),
# to compare two builds on an attack the older client does not know.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
attacks=${2:-roaming,maps,polygons,imports,routes,followers,narrowings}
duration=${3:-10}
attackers=${ATTACKERS:-130}
port=${PORT:-7893}
. scripts/lib.sh

attack_keys "$attackers"

for run in $(seq 1 "$runs"); do
  for attack in ${attacks//,/ }; do
    echo "run $run of $runs: $attack" >&2
    start_attack_server "$port"
    "$bin" attack --target "http://127.0.0.1:$port" --victim-key "$victim" \
      --attacker-keys "$work/attackers.txt" --attack "$attack" --duration "$duration" \
      --crowd "${CROWD:-50000}" ${ATTACK_FLAGS:-} \
      --json >>"$work/reports.ndjson"
    kill "$server"
    wait "$server" 2>/dev/null || true
    server=
  done
done

python3 - "$work/reports.ndjson" <<'PY'
import collections, json, statistics, sys
by = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    by[r["attack"]].append(r)
print(f"{'attack':<9} {'runs':>4} {'set up':>7} {'refused':>8} {'attacks/s':>10} {'victim ratio':>13} "
      f"{'healthz p99 before µs':>22} {'during µs':>10}  (medians; ratios per run)")
for attack, rs in by.items():
    med = lambda f: statistics.median(f(r) for r in rs)
    ratios = " ".join(f"{r['victim_ratio']:.2f}" for r in rs)
    print(f"{attack:<9} {len(rs):>4} {med(lambda r: r['set_up']):>7.0f} "
          f"{med(lambda r: r['refused']):>8.0f} {med(lambda r: r.get('attack_requests_per_s', 0)):>10.0f} "
          f"{med(lambda r: r['victim_ratio']):>13.2f} "
          f"{med(lambda r: r['healthz_before_us']['p99']):>22.0f} "
          f"{med(lambda r: r['healthz_during_us']['p99']):>10.0f}  ({ratios})")
# The followers attack's honest follower: how long each move of its trip took to reach its
# stream, without the attack and with it.
for attack, rs in by.items():
    rs = [r for r in rs if r.get("follower_before_us")]
    if not rs:
        continue
    med = lambda f: statistics.median(f(r) for r in rs)
    print(f"{attack}: honest follower, a move to its frame, µs: "
          f"p50 {med(lambda r: r['follower_before_us']['p50']):.0f} -> {med(lambda r: r['follower_during_us']['p50']):.0f}, "
          f"p90 {med(lambda r: r['follower_before_us']['p90']):.0f} -> {med(lambda r: r['follower_during_us']['p90']):.0f}, "
          f"p99 {med(lambda r: r['follower_before_us']['p99']):.0f} -> {med(lambda r: r['follower_during_us']['p99']):.0f} "
          f"({' '.join(str(r['follower_during_us']['p99']) for r in rs)}), "
          f"max during {med(lambda r: r['follower_during_us']['max']):.0f}; "
          f"missed {sum(r['follower_missed'] for r in rs)}")
PY
