#!/usr/bin/env python3
"""Writes a Google Takeout `Records.json` of about SIZE_MB megabytes to OUT, as the old
location-history export has it: one record a minute or two along a wandering walk, each
with `latitudeE7`, `longitudeE7`, `accuracy`, `source`, `deviceTag`, and, as real exports
do, Wi-Fi scans on some and activity guesses on others; the older half with
`timestampMs`, the newer with an ISO 8601 `timestamp`. Prints the number of records and
the time span (first and last Unix ms) as JSON.

    scripts/takeout-records.py SIZE_MB OUT [SEED]
"""
import datetime
import json
import random
import sys


def main():
    size = int(float(sys.argv[1]) * 1_000_000)
    out = sys.argv[2]
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    lat, lon = 48.8566, 2.3522
    ts = 1_400_000_000_000
    first = ts
    written = 0
    n = 0
    activities = ["STILL", "ON_FOOT", "WALKING", "IN_VEHICLE", "ON_BICYCLE", "TILTING", "UNKNOWN"]
    with open(out, "w", buffering=1 << 20) as f:
        head = '{\n  "locations": [\n'
        f.write(head)
        written += len(head)
        while written < size:
            lat = min(85.0, max(-85.0, lat + rng.gauss(0, 0.0008)))
            lon = (lon + rng.gauss(0, 0.0011) + 180.0) % 360.0 - 180.0
            ts += rng.randint(30_000, 120_000)
            parts = [
                f'"latitudeE7": {round(lat * 1e7)}',
                f'"longitudeE7": {round(lon * 1e7)}',
                f'"accuracy": {rng.randint(3, 60)}',
            ]
            if n % 2 == 0:
                at = datetime.datetime.fromtimestamp(ts / 1000, datetime.timezone.utc)
                parts.append(f'"timestamp": "{at.strftime("%Y-%m-%dT%H:%M:%S")}.{ts % 1000:03d}Z"')
            else:
                parts.append(f'"timestampMs": "{ts}"')
            parts.append(f'"source": "{rng.choice(["WIFI", "GPS", "CELL"])}"')
            parts.append(f'"deviceTag": {rng.randint(-2**31, 2**31 - 1)}')
            if rng.random() < 0.25:
                macs = ", ".join(
                    f'{{"mac": {rng.randint(1, 2**48)}, "strength": {rng.randint(-90, -30)}, "frequencyMhz": 2437}}'
                    for _ in range(rng.randint(1, 4))
                )
                parts.append(f'"activeWifiScan": {{"accessPoints": [{macs}]}}')
            if rng.random() < 0.3:
                guesses = ", ".join(
                    f'{{"type": "{a}", "confidence": {rng.randint(1, 100)}}}'
                    for a in rng.sample(activities, rng.randint(1, 4))
                )
                parts.append(f'"activity": [{{"activity": [{guesses}], "timestampMs": "{ts - 5000}"}}]')
            record = ("    {" if n == 0 else ",\n    {") + ", ".join(parts) + "}"
            f.write(record)
            written += len(record)
            n += 1
        tail = "\n  ]\n}\n"
        f.write(tail)
    print(json.dumps({"records": n, "first_ms": first, "last_ms": ts, "bytes": written + len(tail)}))


if __name__ == "__main__":
    main()
