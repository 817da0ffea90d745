#!/usr/bin/env python3
"""Opens PER follower streams on each of TRIPS trips of the `trips` workload
(`bench:trip:0` .. `bench:trip:TRIPS-1`, read as their own travellers), reads them for
SECONDS and prints how many points they were told in all. A client of its own, not the
harness: the followers' side of `scripts/followers-ab.sh`.

    scripts/trip-streams.py PORT TRIPS PER SECONDS
"""
import asyncio
import sys

port, trips, per, seconds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
told = 0


async def follow(trip):
    global told
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET /v1/trips/bench:trip:{trip}/watch?viewer=bench:t:{trip} HTTP/1.1\r\n"
        "Host: proxima\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    while True:
        data = await reader.read(65536)
        if not data:
            return
        told += data.count(b"event: point")


async def main():
    streams = [asyncio.create_task(follow(t)) for t in range(trips) for _ in range(per)]
    await asyncio.sleep(seconds)
    print(f"streams {len(streams)} points told {told}", flush=True)
    for stream in streams:
        stream.cancel()


asyncio.run(main())
