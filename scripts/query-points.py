#!/usr/bin/env python3
"""Query points for the wrk cross-check, drawn by a generator that is not Proxima's.

Reads the bundled GeoNames cities (data/cities15000.csv) and writes N points, one
"lat lon" line each, in one of the harness's two shapes, with Python's own random numbers:
  population       a city in proportion to its population, uniform within +-0.05 degrees;
  sqrt-population  a city in proportion to the square root of its population, a Gaussian
                   offset of sigma = 0.5 + 3 sqrt(population / 1e6) km (at most 15 km).

  scripts/query-points.py SHAPE N SEED > points.txt
"""
import bisect
import csv
import math
import random
import sys

shape, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if shape not in ("population", "sqrt-population"):
    sys.exit("SHAPE is population or sqrt-population")
rng = random.Random(seed)
cities, cumulative, total = [], [], 0.0
with open("data/cities15000.csv", newline="") as f:
    for row in csv.DictReader(f):
        population = float(row["population"] or 15000)
        total += population if shape == "population" else math.sqrt(population)
        cities.append((float(row["latitude"]), float(row["longitude"]), population))
        cumulative.append(total)
for _ in range(n):
    lat, lon, population = cities[min(bisect.bisect_left(cumulative, rng.random() * total), len(cities) - 1)]
    if shape == "population":
        lat += rng.uniform(-0.05, 0.05)
        lon += rng.uniform(-0.05, 0.05)
    else:
        sigma_km = min(0.5 + 3 * math.sqrt(population / 1e6), 15.0)
        lat += rng.gauss(0, 1) * sigma_km / 111.195
        lon += rng.gauss(0, 1) * sigma_km / (111.195 * max(math.cos(math.radians(lat)), 0.01))
    lat = max(-90.0, min(90.0, lat))
    lon = (lon + 180.0) % 360.0 - 180.0
    print(f"{lat:.6f} {lon:.6f}")
