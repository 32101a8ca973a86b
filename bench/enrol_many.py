#!/usr/bin/env python3
"""Fill a running Consentry server with N enrolled people, through the HTTP API (for the
load and memory figures in docs/benchmarks.md).

    python3 bench/enrol_many.py URL ADMIN_KEY PHOTO_DIR N [--jobs J] [--purpose access]

Each person is a new subject with a consent for the purpose and one face enrolled from the next
photo under PHOTO_DIR (searched recursively for .jpg/.png, in sorted order, reused in turn when
there are fewer photos than N). Photos that the enrolment quality gate refuses (two faces, too
small, ...) are skipped and counted. Prints one JSON line with the counts and the time taken.
Standard library only.
"""

import argparse
import http.client
import json
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("key")
    ap.add_argument("photos")
    ap.add_argument("n", type=int)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--purpose", default="access")
    a = ap.parse_args()
    photos = sorted(p for p in Path(a.photos).rglob("*") if p.suffix.lower() in (".jpg", ".png"))
    if not photos:
        sys.exit(f"no photos under {a.photos}")
    u = urlparse(a.url)
    lock = threading.Lock()
    state = {"next": 0, "enrolled": 0, "refused": {}, "tries": 0}
    auth = {"Authorization": f"Bearer {a.key}"}

    def call(conn, method, path, body=b"", ctype=None):
        headers = dict(auth)
        if ctype:
            headers["Content-Type"] = ctype
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        return r.status, json.loads(data) if data else None

    def worker():
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        while True:
            with lock:
                if state["enrolled"] >= a.n or state["tries"] >= 3 * a.n:
                    return
                i = state["next"]
                state["next"] += 1
                state["tries"] += 1
            photo = photos[i % len(photos)]
            st, body = call(conn, "POST", "/api/v1/subjects")
            sid = body["id"]
            call(conn, "POST", f"/api/v1/subjects/{sid}/consents",
                 json.dumps({"purpose": a.purpose, "retention_days": 365}).encode(),
                 "application/json")
            ctype = "image/png" if photo.suffix.lower() == ".png" else "image/jpeg"
            st, body = call(conn, "POST", f"/api/v1/subjects/{sid}/faces?purpose={a.purpose}",
                            photo.read_bytes(), ctype)
            with lock:
                if st == 201:
                    state["enrolled"] += 1
                    if state["enrolled"] % 500 == 0:
                        print(f"enrolled {state['enrolled']}", file=sys.stderr)
                else:
                    code = (body or {}).get("code", str(st))
                    state["refused"][code] = state["refused"].get(code, 0) + 1
            if st != 201:
                call(conn, "DELETE", f"/api/v1/subjects/{sid}")

    t0 = time.time()
    threads = [threading.Thread(target=worker) for _ in range(a.jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"enrolled": state["enrolled"], "refused": state["refused"],
                      "seconds": round(time.time() - t0, 1)}))


if __name__ == "__main__":
    main()
