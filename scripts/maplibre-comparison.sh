#!/usr/bin/env bash
# Measures the live map drawn with MapLibre GL, for comparison with the viewer's own
# (Leaflet and one pixel canvas): 10,000 points, a tenth moving up to 150 m every 200 ms,
# in the same headless Chromium as the browser tests. Prints the frame times; the viewer's
# come from `cargo test --test it ten_thousand -- --nocapture`.
#
# MapLibre is fetched from npm into ui/maplibre-comparison/ (git-ignored, so it is never
# committed or shipped) and removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=5.24.1
dir=ui/maplibre-comparison
work=$(mktemp -d)
trap 'rm -rf "$work" "$dir"; touch src/server/ui.rs' EXIT
(cd "$work" && npm pack --silent "maplibre-gl@$VERSION" >/dev/null && tar xzf "maplibre-gl-$VERSION.tgz")
mkdir -p "$dir"
cp "$work/package/dist/maplibre-gl.js" "$work/package/dist/maplibre-gl.css" "$dir/"
cp scripts/maplibre-comparison/index.html "$dir/"
echo "maplibre-gl $VERSION: $(wc -c <"$dir/maplibre-gl.js") bytes, $(gzip -9c "$dir/maplibre-gl.js" | wc -c) gzipped"
touch src/server/ui.rs # the files are embedded at build time
cargo test --test it maplibre_comparison -- --ignored --nocapture 2>&1 | grep -E '^maplibre|test result'
