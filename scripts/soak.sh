#!/usr/bin/env bash
# Soak and chaos: a mixed load (POI writes, position batches, a traveller walking in and out
# of a fence, queries, and a subscriber to the fence's events) against the release server,
# which is killed with SIGKILL and restarted on the same data dir every 2 minutes. Checks
# that no acknowledged write is lost, that the subscriber never misses an event without a
# `reset`, that RSS after each restart stays within 10 % of the first, and that the log has
# no panic or WARN but the torn-tail cut. See scripts/soak.py.
#
#   scripts/soak.sh MINUTES [--kill-every SECONDS] [--port PORT]
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:?usage: scripts/soak.sh MINUTES [--kill-every SECONDS]}
shift
cargo build --release --locked --quiet
exec python3 scripts/soak.py --binary target/release/proxima --minutes "$MINUTES" "$@"
