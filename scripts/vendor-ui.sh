#!/usr/bin/env bash
# Refreshes the map viewer's third-party files in ui/vendor/ from the npm registry, each
# package pinned by version and by the sha512 the registry publishes for its tarball (the
# `integrity` of `npm view PKG@VERSION dist.integrity`). A tarball whose digest differs is
# refused. Each package keeps its licence file beside what is taken from it (qrcode-generator
# ships none: its MIT notice heads qrcode.js, and package.json names the licence).
#
#   scripts/vendor-ui.sh          (needs curl, tar, sha512sum, base64)
set -euo pipefail
cd "$(dirname "$0")/.."

# package version integrity files-to-take (paths inside the tarball's package/ folder)
PACKAGES=(
  "leaflet 1.9.4 sha512-nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3XnWyZAxwQixURb+FA74PA== LICENSE dist/leaflet.js dist/leaflet.css"
  "topojson-client 3.1.0 sha512-605uxS6bcYxGXw9qi62XyrV6Q3xwbndjachmNxu8HWTtVPxZfEJN9fd/SZS1Q54Sn2y0TMyMxFj/cJINqGHrKw== LICENSE dist/topojson-client.min.js"
  "qrcode-generator 2.0.4 sha512-mZSiP6RnbHl4xL2Ap5HfkjLnmxfKcPWpWe/c+5XxCuetEenqmNFf1FH/ftXPCtFG5/TDobjsjz6sSNL0Sr8Z9g== package.json dist/qrcode.js"
  "world-atlas 2.0.2 sha512-IXfV0qwlKXpckz1FhwXVwKRjiIhOnWttOskm5CtxMsjgE/MXAYRHWJqgXOpM8IkcPBoXnyTU5lFHcYa5ChG0LQ== LICENSE countries-110m.json"
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for entry in "${PACKAGES[@]}"; do
    read -r name version integrity files <<< "$entry"
    tarball="$work/$name-$version.tgz"
    curl -sSf -o "$tarball" "https://registry.npmjs.org/$name/-/$name-$version.tgz"
    got="sha512-$(sha512sum "$tarball" | cut -d' ' -f1 | xxd -r -p | base64 -w0)"
    if [ "$got" != "$integrity" ]; then
        echo "vendor-ui.sh: $name@$version: digest $got, expected $integrity; refused" >&2
        exit 1
    fi
    dest="ui/vendor/$name-$version"
    rm -rf "$dest" && mkdir -p "$dest"
    tar -xzf "$tarball" -C "$work"
    for f in $files; do
        cp "$work/package/$f" "$dest/$(basename "$f")"
    done
    rm -rf "$work/package"
    echo "$name@$version ($integrity)" > "$dest/VERSION"
    echo "vendored $name@$version into $dest: $(ls "$dest" | tr '\n' ' ')"
done
