#!/usr/bin/env python3
"""Gallery search, Consentry's indexes against FAISS, on the same files in one run.

  python3 bench/search_vs_faiss.py [--n 1000000] [--queries 1000] [--kind clustered|random]

Writes the gallery and queries with `consentry bench gen` (raw little-endian f32; clustered:
5 noisy samples per identity, genuine cosine about 0.6), runs `consentry bench search` on them,
then FAISS (faiss-cpu, pinned in bench/requirements-faiss.txt, 1 thread) on the very same files:
IndexFlatIP, IndexScalarQuantizer(QT_8bit) with exact re-ranking (IndexRefineFlat), and
IndexHNSWFlat with the same efConstruction and ef, at M 16 (the usual setting) and M 64 (whose
level 0 has as many links as ours: 2M = M0 = 128). Prints one table; recall@1 is against exact search.
Run `cargo build --release` first. FAISS goes into ~/.cache/consentry/faiss-venv.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = Path.home() / ".cache" / "consentry" / "faiss-venv"


def ensure_venv():
    py = VENV / "bin" / "python"
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    req = (REPO / "bench" / "requirements-faiss.txt").read_text()
    stamp = VENV / "requirements.txt"
    if not (py.exists() and stamp.exists() and stamp.read_text() == req):
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r",
                        str(REPO / "bench" / "requirements-faiss.txt")], check=True)
        stamp.write_text(req)
    os.execv(str(py), [str(py)] + sys.argv)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--kind", default="clustered")
    ap.add_argument("--noise", type=float, default=0.8,
                    help="clustered data: noise norm around each centre (0.8: genuine cosine ~0.6; "
                         "0.64: ~0.71, the median of SFace on LFW dev)")
    ap.add_argument("--m", type=int, default=16, help="our HNSW: links per node on the upper levels")
    ap.add_argument("--m0", type=int, default=128, help="our HNSW: links per node on level 0")
    ap.add_argument("--faiss-m", default="16,64",
                    help="FAISS HNSW M values, comma-separated (FAISS links 2M per node on level 0: "
                         "M 64 has our default level-0 degree)")
    ap.add_argument("--ef-construction", type=int, default=64)
    ap.add_argument("--ef", default="128", help="efSearch values, comma-separated")
    ap.add_argument("--build-threads", type=int, default=1,
                    help="threads inserting into the HNSW graphs (queries always use one)")
    ap.add_argument("--dir", default="/tmp/consentry-search-bench")
    ap.add_argument("--indexes", default="flat,quant,hnsw")
    args = ap.parse_args()
    ensure_venv()
    import faiss
    import numpy as np

    faiss.omp_set_num_threads(1)
    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    tag = f"{args.kind}-{args.n}" + ("" if args.noise == 0.8 else f"-noise{args.noise}")
    base, queries = d / f"base-{tag}.f32", d / f"queries-{tag}.f32"
    consentry = str(REPO / "target" / "release" / "consentry")
    if not base.exists():
        subprocess.run([consentry, "bench", "gen", "--n", str(args.n), "--queries", str(args.queries),
                        "--dim", str(args.dim), "--kind", args.kind, "--noise", str(args.noise),
                        "--out-base", str(base),
                        "--out-queries", str(queries)], check=True)
    out = subprocess.run([consentry, "bench", "search", "--base", str(base), "--queries", str(queries),
                          "--dim", str(args.dim), "--indexes", args.indexes, "--m", str(args.m), "--m0", str(args.m0),
                          "--ef-construction", str(args.ef_construction), "--ef", args.ef,
                          "--build-threads", str(args.build_threads), "--json"],
                         check=True, capture_output=True, text=True)
    rows = [json.loads(line) for line in out.stdout.splitlines()]

    xb = np.fromfile(base, dtype="<f4").reshape(-1, args.dim)
    xq = np.fromfile(queries, dtype="<f4").reshape(-1, args.dim)

    def run(name, index, bytes_per_vector, truth=None, efs=(None,), build_threads=1):
        faiss.omp_set_num_threads(build_threads)
        t = time.perf_counter()
        if not index.is_trained:
            index.train(xb)
        index.add(xb)
        build = time.perf_counter() - t
        faiss.omp_set_num_threads(1)
        for ef in efs:
            if ef is not None:
                index.hnsw.efSearch = ef
            times, top1 = [], []
            for q in xq:
                t = time.perf_counter()
                _, ids = index.search(q.reshape(1, -1), 1)
                times.append((time.perf_counter() - t) * 1e3)
                top1.append(int(ids[0, 0]))
            recall = 1.0 if truth is None else sum(a == b for a, b in zip(truth, top1)) / len(top1)
            rows.append(dict(index=name, n=len(xb), build_s=build, median_ms=statistics.median(times),
                             recall_at_1=recall, bytes_per_vector=bytes_per_vector, ef=ef))
        return top1

    truth = run("faiss IndexFlatIP", faiss.IndexFlatIP(args.dim), 4 * args.dim)
    if "quant" in args.indexes:
        sq = faiss.IndexScalarQuantizer(args.dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        refine = faiss.IndexRefineFlat(sq)
        refine.k_factor = 32
        run("faiss SQ8 + refine", refine, 5 * args.dim, truth)
    if "hnsw" in args.indexes:
        for m in (int(x) for x in args.faiss_m.split(",") if x):
            h = faiss.IndexHNSWFlat(args.dim, m, faiss.METRIC_INNER_PRODUCT)
            h.hnsw.efConstruction = args.ef_construction
            run(f"faiss HNSWFlat M{m}", h, 4 * args.dim + 8 * m, truth,
                efs=[int(e) for e in args.ef.split(",")], build_threads=args.build_threads)
            del h

    flat = next(r for r in rows if r["index"] == "faiss IndexFlatIP")["median_ms"]
    print(f"n={len(xb)} d={args.dim} data={args.kind} queries={len(xq)} k=1, queries on 1 thread, "
          f"HNSW built with {args.build_threads} thread(s)")
    print(f"{'index':<26}{'ef':>5}{'build s':>9}{'ms/query':>10}{'vs FAISS flat':>15}{'recall@1':>10}"
          f"{'bytes/vec':>11}")
    for r in rows:
        ef = r.get("ef") or "-"
        name = f"hnsw M{r['m']} M0 {r['m0']}" if r["index"] == "hnsw" else r["index"]
        print(f"{name:<26}{ef:>5}{r['build_s']:>9.1f}{r['median_ms']:>10.3f}"
              f"{r['median_ms'] / flat:>14.2f}x{r['recall_at_1']:>10.4f}{r['bytes_per_vector']:>11.0f}")


if __name__ == "__main__":
    main()
