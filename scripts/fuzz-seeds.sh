#!/usr/bin/env bash
# Writes the fuzz targets' seeds (fuzz/seeds/<target>/) from the bundled data and from a
# data dir a real server wrote. Run once after a format changes; scripts/fuzz.sh adds the
# bundled files themselves (the OSM extract) at run time.
#
#   scripts/fuzz-seeds.sh            (needs a release build: cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/proxima
S=fuzz/seeds
rm -rf "$S" && mkdir -p "$S"/{import_csv,import_ndjson,import_geojson,positions,query_strings,areas,wal,snapshot,jwt}

head -40 data/cities15000.csv > "$S/import_csv/cities.csv"
printf 'id,lat,lon,name,category,rating,cuisine\na,60.1,24.9,"Café ""A""",cafe,4.5,coffee\nb,-89.9,179.99,B,museum,,\n' > "$S/import_csv/quoted.csv"
python3 - "$S" <<'PY'
import csv, json, sys
S = sys.argv[1]
rows = list(csv.DictReader(open("data/cities15000.csv")))[:20]
with open(f"{S}/import_ndjson/cities.ndjson", "w") as f:
    for r in rows:
        f.write(json.dumps({"id": r["geonameid"], "lat": float(r["latitude"]), "lon": float(r["longitude"]),
                            "name": r["name"], "category": "city", "tags": {"cc": r["countrycode"]}}) + "\n")
features = [{"type": "Feature", "id": r["geonameid"],
             "geometry": {"type": "Point", "coordinates": [float(r["longitude"]), float(r["latitude"])]},
             "properties": {"name": r["name"], "category": "city", "population": int(r["population"])}}
            for r in rows]
json.dump({"type": "FeatureCollection", "features": features}, open(f"{S}/import_geojson/cities.geojson", "w"))
batch = [{"id": f"t{i}", "lat": float(r["latitude"]), "lon": float(r["longitude"]), "ts": 1800000000000 - i,
          "accuracy_m": 5.0, "trip_id": "trip"} for i, r in enumerate(rows[:10])]
open(f"{S}/positions/ndjson", "wb").write(b"\x00" + "".join(json.dumps(b) + "\n" for b in batch).encode())
open(f"{S}/positions/array", "wb").write(b"\x01" + json.dumps(batch).encode())
queries = [
    "lat=60&lon=24.9&radius_m=1000&category=cafe&category=museum&min_rating=2&limit=5",
    "bbox=24,59,25,61&category=cafe&limit=3",
    "lat=60&lon=24.9&radius_m=20000&viewer=t0&limit=2",
    "viewer=t0",
    "since=1799999999000&viewer=t0",
    "limit=1",
    "limit=5",
    "bbox=24,59,25,61&resolution=7&layer=pois",
    "bbox=179,-1,-179,1&viewer=t0",
    "fence=f&fence=g&after=00000001-1",
]
for i, q in enumerate(queries):
    open(f"{S}/query_strings/q{i}", "wb").write(bytes([i]) + q.encode())
open(f"{S}/query_strings/last-event-id", "wb").write(bytes([10]) + b"0a1b2c3d-42")
areas = [
    {"type": "Polygon", "coordinates": [[[24.9, 60.0], [24.95, 60.0], [24.95, 60.02], [24.9, 60.0]]]},
    {"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]], [[2, 2], [2, 4], [4, 4], [2, 2]]]},
    {"type": "MultiPolygon", "coordinates": [[[[179, -1], [180, -1], [180, 1], [179, 1], [179, -1]]],
                                             [[[-180, -1], [-179, -1], [-179, 1], [-180, 1], [-180, -1]]]]},
    {"type": "Circle", "center": [24.9, 60.0], "radius_m": 500},
    {"type": "Polygon", "coordinates": [[[-180, 85], [0, 85], [180, 85], [-180, 85]]]},
]
for i, a in enumerate(areas):
    open(f"{S}/areas/a{i}", "wb").write(bytes([i]) + json.dumps(a).encode())
claims = {"sub": "ann", "aud": "aud", "iss": "iss", "exp": 4102444800, "nbf": 1, "scope": "read write"}
open(f"{S}/jwt/claims", "wb").write(b"\x01" + json.dumps(claims).encode())
open(f"{S}/jwt/token", "wb").write(b"\x00" + b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbm4ifQ.c2lnbmF0dXJl")
PY

# A data dir written by a real server: a log of every kind of change, then a snapshot.
D=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$D"' EXIT
"$BIN" serve --no-sample --data-dir "$D/data" --listen 127.0.0.1:7989 > "$D/log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -sf localhost:7989/readyz > /dev/null && break; sleep 0.1; done
J='content-type: application/json'
B=localhost:7989
curl -sf -X PUT $B/v1/pois/p1 -H "$J" -d '{"lat":60.1,"lon":24.9,"name":"P","category":"cafe","tags":{"k":"v"},"rating":4}' > /dev/null
printf 'id,lat,lon,name,category\nc1,1,2,C,museum\n' | curl -sf -X POST "$B/v1/pois/import?format=csv" -H 'content-type: text/csv' --data-binary @- > /dev/null
curl -sf -X PUT $B/v1/travellers/ann/sharing -H "$J" -d '{"visibility":"friends","viewers":["bob"]}' > /dev/null
curl -sf -X PUT $B/v1/travellers/ann/position -H "$J" -d '{"lat":60.1,"lon":24.9,"ts":1800000000000,"accuracy_m":3,"trip_id":"t"}' > /dev/null
curl -sf -X PUT $B/v1/fences/f -H "$J" -d '{"area":{"type":"Polygon","coordinates":[[[24,60],[25,60],[25,61],[24,60]]]},"viewer":"bob"}' > /dev/null
curl -sf -X PUT $B/v1/fences/r -H "$J" -d '{"roaming":{"around":"bob","radius_m":500},"viewer":"bob"}' > /dev/null
curl -sf -X DELETE $B/v1/pois/c1 > /dev/null
curl -sf -X DELETE $B/v1/fences/r > /dev/null
curl -s -o /dev/null -X DELETE $B/v1/travellers/bob
cp -r "$D/data/wal" "$D/wal"          # the log, before a snapshot rotates it
curl -sf -X POST $B/v1/admin/snapshot > /dev/null
kill -9 $PID
python3 - "$S" "$D/data" <<'PY'
import glob, os, sys
S, data = sys.argv[1], sys.argv[2]
segment = sorted(glob.glob(f"{data}/../wal/*"))[-1]
raw = open(segment, "rb").read()[16:]  # after the segment's header
open(f"{S}/wal/raw", "wb").write(b"\x00" + raw)
records, at = [], 0
while at + 8 <= len(raw):
    n = int.from_bytes(raw[at:at + 4], "little")
    records.append(raw[at + 8:at + 8 + n])
    at += 8 + n
open(f"{S}/wal/records", "wb").write(b"\x01" + b"".join(len(r).to_bytes(2, "little") + r for r in records))
snap = sorted(glob.glob(f"{data}/snapshots/*.psnap"))[-1]
body = open(snap, "rb").read()
open(f"{S}/snapshot/raw", "wb").write(b"\x00" + body)
items, at, payload = [], 0, body[40:]
while at + 4 <= len(payload):
    n = int.from_bytes(payload[at:at + 4], "little")
    items.append(payload[at + 4:at + 4 + n])
    at += 4 + n
open(f"{S}/snapshot/items", "wb").write(b"\x01" + b"".join(len(i).to_bytes(2, "little") + i for i in items))
print(f"wal: {len(records)} records; snapshot: {len(items)} items")
PY
du -sh "$S"/*
