#!/usr/bin/env python3
"""Soak: `consentry serve` on loopback at saturation with mixed traffic for a bounded time,
bounded in what it stores. 80% of operations are decisions (1:1 verify and 1:N identify against
a standing set of enrolled people), 20% are writes: an enrolment (three requests: subject,
consent, face) or the deletion of someone added earlier, half each, so the gallery stays about
the same size. Samples the
server's resident memory every 5 s and prints, at the end, the counts per kind, errors (any
answer that is not the expected one, 503 `overloaded` included), p50/p99 per kind and the RSS
trend. Exits 1 on any error or a panic in the server's log. Standard library only.

    python3 bench/soak.py --seconds 300        (the long run; docs/security.md)
    python3 bench/soak.py --seconds 20         (.ci/run's short form)

Needs `cargo build --release` and `python3 setup/fetch.py` (photos)."""
import argparse
import http.client
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release" / "consentry"


def assets() -> Path:
    env = os.environ.get("CONSENTRY_ASSETS")
    return Path(env) if env else Path.home() / ".cache" / "consentry" / "assets"


class Api:
    def __init__(self, addr: str, key: str):
        self.host, port = addr.rsplit(":", 1)
        self.port = int(port)
        self.key = key

    def call(self, method, path, body=b"", content_type="application/json"):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers={
                "Authorization": f"Bearer {self.key}", "Content-Type": content_type,
                "X-Consentry-Purpose": "soak"})
            r = conn.getresponse()
            data = r.read()
            return r.status, (json.loads(data) if data else None)
        finally:
            conn.close()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--clients", type=int, default=8, help="concurrent clients (saturation)")
    ap.add_argument("--people", type=int, default=20, help="standing enrolled people")
    a = ap.parse_args()
    photos = assets() / "photos"
    face, probe, other = ((photos / n).read_bytes() for n in ("obama.jpg", "obama2.jpg", "biden.jpg"))
    work = Path(tempfile.mkdtemp(prefix="consentry-soak-"))
    keys = Path(tempfile.mkdtemp(prefix="consentry-soak-keys-"))
    log = open(work / "serve.log", "w+")
    server = subprocess.Popen(
        [str(BIN), "serve", "--demo", "--db", f"sqlite://{work}/soak.db", "--key-dir", str(keys / "k"),
         "--listen", "127.0.0.1:0", "--rate-limit", "admin=100000/1000000",
         "--burst-floor", "100000000", "--distinct-reads-floor", "100000000"],
        stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        addr = key = None
        for line in server.stdout:
            m = re.search(r"listening on http://(\S+)", line)
            key = key or (re.search(r"(cs_[0-9a-f]+)", line) or [None, None])[1]
            if m:
                addr = m.group(1)
                break
        if not (addr and key):
            sys.exit("the server did not start")
        threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()
        api = Api(addr, key)

        def enrol(purpose_list=("verification", "access")):
            st, v = api.call("POST", "/api/v1/subjects")
            assert st == 201, (st, v)
            sid = v["id"]
            for purpose in purpose_list:
                body = json.dumps({"purpose": purpose, "retention_days": 30}).encode()
                st, v = api.call("POST", f"/api/v1/subjects/{sid}/consents", body)
                assert st == 201, (st, v)
                st, v = api.call("POST", f"/api/v1/subjects/{sid}/faces?purpose={purpose}", face, "image/jpeg")
                assert st == 201, (st, v)
            return sid

        standing = [enrol() for _ in range(a.people)]
        added, added_lock = [], threading.Lock()
        lat = {"verify": [], "identify": [], "enrol": [], "delete": []}
        errors, stop = [], time.monotonic() + a.seconds
        lock = threading.Lock()

        def client(seed):
            rnd = random.Random(seed)
            while time.monotonic() < stop:
                roll = rnd.random()
                t0 = time.perf_counter()
                try:
                    if roll < 0.4:
                        kind = "verify"
                        sid = rnd.choice(standing)
                        same = rnd.random() < 0.5
                        st, v = api.call("POST", f"/api/v1/verify?subject={sid}", probe if same else other, "image/jpeg")
                        ok = st == 200 and v["decision"] == ("allow" if same else "deny")
                    elif roll < 0.8:
                        kind = "identify"
                        st, v = api.call("POST", "/api/v1/identify", probe, "image/jpeg")
                        ok = st == 200 and v["decision"] == "allow"
                    elif roll < 0.9:
                        kind = "enrol"
                        sid = enrol(("access",))
                        with added_lock:
                            added.append(sid)
                        st, v, ok = 201, None, True
                    else:
                        kind = "delete"
                        with added_lock:
                            sid = added.pop(0) if added else None
                        if sid is None:
                            continue
                        st, v = api.call("DELETE", f"/api/v1/subjects/{sid}")
                        ok = st == 204
                except (AssertionError, OSError, ValueError) as e:
                    kind, ok, st, v = "error", False, None, repr(e)
                dt = (time.perf_counter() - t0) * 1000
                with lock:
                    if ok:
                        lat[kind].append(dt)
                    else:
                        errors.append((kind, st, v))

        rss = [(0.0, rss_kib(server.pid))]
        t_start = time.monotonic()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            time.sleep(5)
            rss.append((time.monotonic() - t_start, rss_kib(server.pid)))
        for t in threads:
            t.join()
        took = time.monotonic() - t_start
        total = sum(len(v) for v in lat.values())
        print(f"soak: {took:.0f} s, {a.clients} clients, {total} requests answered right "
              f"({total / took:.1f}/s), {len(errors)} errors")
        for kind, values in lat.items():
            print(f"  {kind:9s} {len(values):6d}  p50 {pct(values, 50):7.1f} ms  p99 {pct(values, 99):7.1f} ms")
        third = max(1, len(rss) // 3)
        first = sum(r for _, r in rss[:third]) / third
        last = sum(r for _, r in rss[-third:]) / third
        print(f"  RSS: start {rss[0][1] / 1024:.0f} MiB, mean of the first third {first / 1024:.0f} MiB, "
              f"of the last third {last / 1024:.0f} MiB, peak {max(r for _, r in rss) / 1024:.0f} MiB")
        print(f"  people added and not yet deleted at the end: {len(added)} (bounded by the 50/50 mix)")
        for e in errors[:10]:
            print(f"  error: {e}")
        log.seek(0)
        panicked = "panicked" in log.read()
        if panicked:
            print("  the server's log has a panic")
        sys.exit(1 if errors or panicked else 0)
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(keys, ignore_errors=True)


if __name__ == "__main__":
    main()
