#!/usr/bin/env python3
"""An honest follower, a client of its own (not the harness): puts trip TRIP of its own
traveller of the same id with KEY, opens the trip's stream, and for SECONDS moves the
traveller 300 ms after each move reached the stream (longer than the 250 ms a stream waits
between reads), printing one line a move: the Unix time in ms when the write was sent, and
the ms until the stream's frame holding that point came (or "missed" after 5 s).

    scripts/follower-delay.py PORT KEY TRIP SECONDS
"""
import http.client
import json
import socket
import sys
import time

port, key, trip, seconds = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

writer = http.client.HTTPConnection("127.0.0.1", port, timeout=10)


def send(method, path, body):
    writer.request(method, path, json.dumps(body), auth)
    answer = writer.getresponse()
    answer.read()
    if answer.status >= 300:
        sys.exit(f"{method} {path}: {answer.status}")


now = int(time.time() * 1000)
send("PUT", f"/v1/trips/{trip}", {"traveller": trip, "title": "probe", "started_at": now - 86_400_000})

stream = socket.create_connection(("127.0.0.1", port))
stream.sendall(
    f"GET /v1/trips/{trip}/watch?viewer={trip} HTTP/1.1\r\nHost: proxima\r\n"
    f"Authorization: Bearer {key}\r\nAccept: text/event-stream\r\n\r\n".encode()
)
unread = b""


def frame_with(ts, deadline):
    """Reads the stream until the `point` event whose data holds `ts`, or the deadline."""
    global unread
    while True:
        while b"\n\n" in unread:
            event, unread = unread.split(b"\n\n", 1)
            lines = event.decode(errors="replace").splitlines()
            if any(l.strip() == "event: point" for l in lines):
                for l in lines:
                    if l.startswith("data:") and json.loads(l[5:]).get("ts") == ts:
                        return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        stream.settimeout(left)
        try:
            data = stream.recv(65536)
        except socket.timeout:
            return False
        if not data:
            sys.exit("the stream ended")
        # Chunked framing: the chunk sizes sit on lines of their own between events and do
        # not start with "event:" or "data:", so they are ignored as lines of no event.
        unread += data.replace(b"\r\n", b"\n")


time.sleep(0.3)
end = time.monotonic() + seconds
last = 0
step = 0
while time.monotonic() < end:
    step += 1
    ts = max(int(time.time() * 1000), last + 1)
    last = ts
    sent_ms, sent = ts, time.monotonic()
    send("PUT", f"/v1/travellers/{trip}/position",
         {"lat": 60.17 + 0.0001 * (step % 100), "lon": 24.94, "ts": ts})
    if frame_with(ts, sent + 5.0):
        print(sent_ms, f"{(time.monotonic() - sent) * 1000:.2f}", flush=True)
    else:
        print(sent_ms, "missed", flush=True)
    time.sleep(0.3)
