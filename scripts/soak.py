#!/usr/bin/env python3
"""Soak and chaos: a mixed load against a real server that is killed (SIGKILL) and
restarted on the same data dir every --kill-every seconds, for --minutes.

Load: POI writes, batches of position reports, single reports of a traveller walking in
and out of a fence, queries, and a subscriber following the fence's events (resuming with
Last-Event-ID across every restart).

Checks, each printed with its figures; the exit status is 1 if any fails:
  1. no acknowledged write is lost: after each restart every POI and traveller is at least
     at its last acknowledged version;
  2. no silent gap: every acknowledged crossing of the fence reached the subscriber as its
     event, or a `reset` reached it afterwards;
  3. the server's RSS after each restart (3 s after it is ready, before the load resumes) is
     within 10 % of the first restart's;
  4. the server's log holds no panic and no WARN other than the torn-tail cut.
Only the standard library; talks to 127.0.0.1 only.
"""

import argparse
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

POIS = 500
TRAVELLERS = 5000
BATCH = 200
FENCE_CENTRE = (60.1699, 24.9384)
INSIDE = (60.1699, 24.9384)
OUTSIDE = (60.1799, 24.9384)  # ~1.1 km north, outside a 200 m circle


def now_ms():
    return int(time.time() * 1000)


class Server:
    """The server process, restarted on the same data dir."""

    def __init__(self, binary, data_dir, port, log_path, snapshot_every):
        self.binary, self.data_dir, self.port, self.log_path = binary, data_dir, port, log_path
        self.snapshot_every = snapshot_every
        self.proc = None
        self.restarts = []  # (seconds to ready, RSS bytes once ready, before any load)
        self.loaded = []  # RSS bytes under load, just before each kill

    def start(self):
        log = open(self.log_path, "ab")
        started = time.time()
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--no-sample", "--data-dir", self.data_dir,
             "--listen", f"127.0.0.1:{self.port}", "--fsync", "batch",
             "--snapshot-every", str(self.snapshot_every)],
            stdout=log, stderr=log, env={**os.environ, "RUST_LOG": "info"})
        for _ in range(1200):
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        else:
            raise RuntimeError("the server was not ready within 60 s")
        ready_s = time.time() - started
        # Recovery reads each log segment whole; the allocator returns those buffers to
        # the system within a second of going idle (measured: 55 MB at ready, 40 MB from
        # 0.5 s on, then flat). The figure is the recovered state's, 3 s after ready.
        time.sleep(3)
        self.restarts.append((ready_s, self.rss()))

    def rss(self):
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)


class Client:
    """A keep-alive connection that reconnects; `call` returns (status, body) or None when
    the server could not be reached (the write is then unacknowledged)."""

    def __init__(self, port):
        self.port, self.conn = port, None

    def call(self, method, path, body=None, headers=None):
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            self.conn.request(method, path, body=body, headers=headers or {})
            response = self.conn.getresponse()
            data = response.read()
            return response.status, data
        except (OSError, http.client.HTTPException):
            self.conn = None
            return None


class State:
    """What was acknowledged, and what the subscriber saw."""

    def __init__(self):
        self.lock = threading.Lock()
        self.pois = {}  # id -> the number of its last acknowledged write
        self.travellers = {}  # id -> last acknowledged ts
        self.crossings = []  # (ts, kind, wall time acknowledged)
        self.events = {}  # walker ts -> kind, as received
        self.resets = []  # wall times of each listing after a reset (and the first)
        self.errors = []
        self.requests = 0
        # Cleared while the server is killed and restarted: the writers wait, so that the
        # memory measured after a restart is the recovered state's, not the load's.
        self.running = threading.Event()
        self.running.set()


def writer_pois(port, state, stop):
    client, rating = Client(port), 0
    while not stop.is_set():
        state.running.wait()
        rating += 1
        pid = f"soak-poi-{rating % POIS}"
        body = json.dumps({"lat": 60 + (rating % POIS) * 1e-4, "lon": 24.9,
                           "name": f"soak {rating}", "category": "cafe"})
        got = client.call("PUT", f"/v1/pois/{pid}", body, {"content-type": "application/json"})
        if got and got[0] in (200, 201):
            with state.lock:
                state.pois[pid] = rating
                state.requests += 1


def writer_batches(port, state, stop):
    client, rng = Client(port), random.Random(7)
    while not stop.is_set():
        state.running.wait()
        ts = now_ms()
        ids = [f"soak-t-{rng.randrange(TRAVELLERS)}" for _ in range(BATCH)]
        lines = "".join(json.dumps({"id": i, "lat": 48 + rng.random(), "lon": 2 + rng.random(),
                                    "ts": ts}) + "\n" for i in ids)
        got = client.call("POST", "/v1/positions", lines, {"content-type": "application/x-ndjson"})
        if got and got[0] == 200:
            with state.lock:
                for i in ids:
                    state.travellers[i] = max(state.travellers.get(i, 0), ts)
                state.requests += 1
        time.sleep(0.01)


def walker(port, state, stop):
    client, inside = Client(port), False
    while not stop.is_set():
        state.running.wait()
        inside = not inside
        ts = now_ms()
        lat, lon = INSIDE if inside else OUTSIDE
        body = json.dumps({"lat": lat, "lon": lon, "ts": ts})
        got = client.call("PUT", "/v1/travellers/soak-walker/position", body,
                          {"content-type": "application/json"})
        if got and got[0] == 200 and json.loads(got[1]).get("applied"):
            with state.lock:
                state.crossings.append((ts, "enter" if inside else "exit", time.time()))
                state.requests += 1
        else:
            inside = not inside  # not acknowledged: try the same crossing again
        time.sleep(0.05)


def reader(port, state, stop):
    client = Client(port)
    paths = ["/v1/pois/nearby?lat=60&lon=24.9&radius_m=5000&limit=20",
             "/v1/travellers/nearby?lat=48.5&lon=2.5&radius_m=20000&limit=20",
             "/v1/fences/soak-fence/inside", "/v1/pois/within?bbox=24,59,25,61&limit=50"]
    while not stop.is_set():
        got = client.call("GET", random.choice(paths))
        if got and got[0] >= 500 and got[0] != 503:
            with state.lock:
                state.errors.append(f"a read got {got[0]}: {got[1][:200]!r}")
        if got:
            with state.lock:
                state.requests += 1


def relist(port):
    """After a `reset`: who is inside now, and the event id to watch from (list, then
    watch). None if the server cannot be reached yet."""
    got = Client(port).call("GET", "/v1/fences/soak-fence/inside")
    if not got or got[0] != 200:
        return None
    return json.loads(got[1])["last_event_id"]


def subscriber(port, state, stop):
    last_id = None
    while not stop.is_set():
        if last_id is None:
            # The first start, or after a reset: list, then watch from the listing's id.
            listed = relist(port)
            if listed is None:
                time.sleep(0.2)
                continue
            with state.lock:
                state.resets.append(time.time())
            last_id = listed
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            headers = {"accept": "text/event-stream"}
            headers["last-event-id"] = last_id
            conn.request("GET", "/v1/events?fence=soak-fence", headers=headers)
            response = conn.getresponse()
            if response.status != 200:
                time.sleep(0.2)
                continue
            event, data, eid = None, None, None
            while not stop.is_set():
                line = response.fp.readline()
                if not line:
                    break
                line = line.decode().rstrip("\n")
                if line.startswith("id: "):
                    eid = line[4:]
                elif line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
                elif line == "" and event:
                    if event == "reset":
                        last_id = None  # the stream ends; list again
                        break
                    elif event in ("enter", "exit"):
                        payload = json.loads(data)
                        if payload.get("traveller") == "soak-walker":
                            with state.lock:
                                state.events[payload["ts"]] = event
                    if eid:
                        last_id = eid
                    event, data, eid = None, None, None
        except (OSError, http.client.HTTPException, ValueError):
            time.sleep(0.2)


def check_durability(port, state, acked_pois, acked_travellers):
    """Every write acknowledged before the kill is there after the restart."""
    client, lost = Client(port), []
    for pid, version in acked_pois.items():
        got = client.call("GET", f"/v1/pois/{pid}")
        if not got or got[0] != 200 or int(json.loads(got[1])["name"].split()[1]) < version:
            lost.append(f"{pid}: {got and got[0]} {got and got[1][:80]!r}")
    sample = random.sample(sorted(acked_travellers), min(500, len(acked_travellers)))
    for tid in sample:
        got = client.call("GET", f"/v1/travellers/{tid}?viewer={tid}")
        if not got or got[0] != 200 or json.loads(got[1])["ts"] < acked_travellers[tid]:
            lost.append(f"{tid}: {got and got[0]} {got and got[1][:80]!r}")
    return lost, len(acked_pois) + len(sample)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", default="target/release/proxima")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--kill-every", type=float, default=120, help="seconds")
    parser.add_argument("--port", type=int, default=7993)
    parser.add_argument("--snapshot-every", type=int, default=60,
                        help="the server's --snapshot-every, seconds")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="proxima-soak-")
    log_path = os.path.join(work, "server.log")
    server = Server(args.binary, os.path.join(work, "data"), args.port, log_path,
                    args.snapshot_every)
    server.start()
    setup = Client(args.port)
    for method, path, body in [
        ("PUT", "/v1/travellers/soak-walker/sharing", {"visibility": "friends", "viewers": ["soak-watcher"]}),
        ("PUT", "/v1/fences/soak-fence", {"area": {"type": "Circle", "center": [FENCE_CENTRE[1], FENCE_CENTRE[0]],
                                                     "radius_m": 200}, "viewer": "soak-watcher"}),
    ]:
        got = setup.call(method, path, json.dumps(body), {"content-type": "application/json"})
        assert got and got[0] in (200, 201), got

    state, stop = State(), threading.Event()
    threads = [threading.Thread(target=f, args=(args.port, state, stop), daemon=True)
               for f in (writer_pois, writer_batches, walker, reader, reader, subscriber)]
    for t in threads:
        t.start()
    deadline = time.time() + args.minutes * 60
    kills, lost_total, checked_total, failures = 0, [], 0, []
    while time.time() < deadline:
        time.sleep(min(args.kill_every, max(0.0, deadline - time.time())))
        if time.time() >= deadline - 1:
            break
        loaded_rss = server.rss()
        state.running.clear()
        time.sleep(0.5)  # the writes in flight finish (or fail, unacknowledged)
        with state.lock:
            acked_pois, acked_travellers = dict(state.pois), dict(state.travellers)
        # What was acknowledged before the kill is what must survive it.
        server.kill()
        kills += 1
        server.start()
        lost, checked = check_durability(args.port, state, acked_pois, acked_travellers)
        state.running.set()
        server.loaded.append(loaded_rss)
        lost_total += lost
        checked_total += checked
        ready_s, rss = server.restarts[-1]
        print(f"kill {kills}: RSS {loaded_rss / 1e6:.1f} MB under load; ready in {ready_s:.2f} s, "
              f"RSS {rss / 1e6:.1f} MB once recovered, "
              f"{checked} writes checked, {len(lost)} lost", flush=True)
    # No new writes, then time for the last events: a crossing acknowledged while the
    # server was already stopping (a write in flight at SIGTERM) could not be told, and was
    # counted as silent.
    state.running.clear()
    time.sleep(2)  # let the last events arrive
    stop.set()
    server.stop()

    # 1. durability
    if lost_total:
        failures.append(f"acknowledged writes lost: {lost_total[:5]}")
    # 2. no silent gap
    with state.lock:
        crossings, events, resets = list(state.crossings), dict(state.events), list(state.resets)
        errors, requests = list(state.errors), state.requests
    silent = [c for c in crossings if c[0] not in events and not any(r >= c[2] for r in resets)]
    if silent:
        failures.append(f"{len(silent)} acknowledged crossings neither told nor reset, e.g. {silent[:3]}")
    # 3. RSS after each restart
    rss = [r for _, r in server.restarts[1:]]
    if rss:
        worst = max(abs(r - rss[0]) / rss[0] for r in rss)
        if worst > 0.10:
            failures.append(f"RSS after restarts {[round(r / 1e6, 1) for r in rss]} MB: {worst:.0%} from the first")
    # 4. the log
    log = open(log_path, errors="replace").read()
    bad = [line for line in log.splitlines()
           if ("panicked" in line or re.search(r"\bWARN\b", line)) and "torn" not in line]
    if bad:
        failures.append(f"{len(bad)} log lines with a panic or WARN, e.g. {bad[:3]}")
    failures += errors[:5]

    told = sum(1 for c in crossings if c[0] in events)
    print(f"soak: {args.minutes} min, {kills} kills, {requests} requests acknowledged, "
          f"{checked_total} acknowledged writes checked after restarts, {len(lost_total)} lost; "
          f"{len(crossings)} crossings: {told} told, {len(crossings) - told} covered by "
          f"{len(resets)} listings after a reset, {len(silent)} silent; "
          f"RSS after restarts {[round(r / 1e6, 1) for r in rss]} MB "
          f"(under load before each kill {[round(r / 1e6, 1) for r in server.loaded]} MB); "
          f"ready after a kill in {[round(s, 2) for s, _ in server.restarts[1:]]} s; "
          f"{len(bad)} bad log lines")
    if failures:
        for f in failures:
            print(f"FAILED: {f}", file=sys.stderr)
        print(f"server log: {log_path}", file=sys.stderr)
        sys.exit(1)
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
