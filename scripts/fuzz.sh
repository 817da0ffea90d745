#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/) for SECONDS each (default 60) with cargo-fuzz
# on the nightly toolchain, from the seeds in fuzz/seeds/ (and the bundled OSM extract),
# keeping what each run finds in fuzz/corpus/<target>/. Prints, per target, executions,
# executions per second, coverage (libFuzzer's `cov`, edges hit) and features (`ft`).
# Exits non-zero when a target crashes, runs out of memory or time: the input is saved in
# fuzz/artifacts/<target>/ (replay it with `cargo +nightly fuzz run -s none TARGET FILE`;
# then keep it as a regression test).
#
#   scripts/fuzz.sh [SECONDS]      needs: cargo install cargo-fuzz; rustup toolchain nightly
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
TARGETS=(import_csv import_ndjson import_geojson import_osm_pbf positions query_strings areas wal snapshot jwt)

if ! cargo +nightly fuzz --version > /dev/null 2>&1; then
    echo "fuzz.sh: needs cargo-fuzz on the nightly toolchain (cargo install cargo-fuzz)" >&2
    exit 2
fi
cd fuzz
echo "fuzz.sh: building ${#TARGETS[@]} targets (sanitizer none: the code is safe Rust; crashes, OOM and hangs are what is sought)"
cargo +nightly fuzz build -s none > /dev/null
mkdir -p logs
failed=()
printf '%-16s %12s %10s %8s %8s  %s\n' target executions "execs/s" cov ft result
for t in "${TARGETS[@]}"; do
    mkdir -p "corpus/$t"
    cp -n seeds/"$t"/* "corpus/$t/" 2> /dev/null || true
    if [ "$t" = import_osm_pbf ]; then cp -n ../data/helsinki.osm.pbf "corpus/$t/"; fi
    # 2 GiB of memory, 1 GiB in one allocation, 10 s an input: past those is a finding.
    set +e
    cargo +nightly fuzz run -s none "$t" "corpus/$t" -- \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 \
        -print_final_stats=1 > "logs/$t.log" 2>&1
    rc=$?
    set -e
    runs=$(grep -oE 'Done [0-9]+ runs' "logs/$t.log" | grep -oE '[0-9]+' || echo 0)
    execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "logs/$t.log" | grep -oE '[0-9]+$' || echo "$runs")
    rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "logs/$t.log" | grep -oE '[0-9]+$' || echo "?")
    cov=$(grep -oE 'cov: [0-9]+' "logs/$t.log" | tail -1 | grep -oE '[0-9]+' || echo "?")
    ft=$(grep -oE 'ft: [0-9]+' "logs/$t.log" | tail -1 | grep -oE '[0-9]+' || echo "?")
    if [ "$rc" -eq 0 ]; then result=clean; else result="FAILED (fuzz/logs/$t.log)"; failed+=("$t"); fi
    printf '%-16s %12s %10s %8s %8s  %s\n' "$t" "$execs" "$rate" "$cov" "$ft" "$result"
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: findings in: ${failed[*]}" >&2
    for t in "${failed[@]}"; do grep -E 'panicked|ERROR|SUMMARY|artifact' "logs/$t.log" | head -5 >&2; done
    exit 1
fi
