#!/usr/bin/env python3
"""What the per-tenant template transform protects, measured (ISO/IEC 30136 style).

Every template is multiplied by a secret random rotation Q_t of its tenant before it is sealed
(crates/vault/src/transform.rs). This script measures, on real SFace embeddings of the LFW dev
photos, what an attacker who holds the *opened* templates (the vault's encryption broken or
bypassed) learns despite the transform:

1. Linkability between two tenants (the same people enrolled at both): the mated and non-mated
   score distributions of cross-tenant comparisons and the global linkability D<->sys
   (Gomez-Barrero et al., "General framework to evaluate unlinkability in biometric template
   protection systems", 2018), for
     - plain comparison (cosine of Q1.a and Q2.b);
     - an attacker who knows k people enrolled at both (k cross-tenant pairs) and fits the
       rotation Q2.Q1^T between the galleries by orthogonal Procrustes;
     - an attacker who knows no pair at all and aligns the two galleries' principal axes
       (their covariances are rotations of each other when the same people are in both).
2. Irreversibility: an attacker who knows k (raw, transformed) pairs of one tenant fits Q by
   Procrustes and inverts the other templates: the cosine of a recovered template to its raw
   one, and how often it verifies as its person against another photo (threshold 0.32).

The rotations here are drawn by numpy (Haar-random, like the vault's, which derives its own from
a secret): the attacks do not depend on how a rotation was derived.

Usage: python3 bench/template_protection.py [--models standard-int8] [--out docs/img] [--json]
Needs ../shared/data/lfw-dev, `python3 setup/fetch.py` and `cargo build --release`.
numpy and matplotlib are installed, pinned (bench/requirements-protection.txt), into
~/.cache/consentry/protection-venv on first use.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from venvs import run_in_pinned_venv  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
VENV = Path.home() / ".cache" / "consentry" / "protection-venv"
REQUIREMENTS = REPO / "bench" / "requirements-protection.txt"


def ensure_venv():
    run_in_pinned_venv(VENV, REQUIREMENTS, "numpy and matplotlib")


def read_pairs(root):
    lines = (root / "pairs-dev.txt").read_text().split("\n")[1:]
    photo = lambda name, i: root / name / f"{name}_{int(i):04d}.jpg"
    genuine, impostor = [], []
    for line in lines:
        f = line.split()
        if len(f) == 3:
            genuine.append((photo(f[0], f[1]), photo(f[0], f[2]), f[0]))
        elif len(f) == 4:
            impostor.append((photo(f[0], f[1]), photo(f[2], f[3])))
    return genuine, impostor


def embed(paths, models):
    import numpy as np
    exe = REPO / "target" / "release" / "consentry"
    out = subprocess.run([str(exe), "embed", "--models", models, "--json"] + [str(p) for p in paths],
                         check=True, capture_output=True, text=True).stdout
    vecs = {}
    for p, line in zip(paths, out.strip().split("\n")):
        v = json.loads(line).get("embedding")
        if v is not None:
            v = np.asarray(v, dtype=np.float64)
            vecs[p] = v / np.linalg.norm(v)
    return vecs


def haar(d, rng):
    import numpy as np
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def procrustes(x, y):
    """The rotation R minimising |R x_i - y_i| (rows of x and y are paired vectors)."""
    import numpy as np
    u, _, vt = np.linalg.svd(y.T @ x)
    return u @ vt


def d_sys(mated, nonmated, bins=60):
    """Global linkability D<->sys with equal priors (Gomez-Barrero et al. 2018), from
    histograms: sum over bins of p(s|mated) * max(0, 2 LR/(1+LR) - 1); a bin with mated scores
    and no non-mated ones counts fully."""
    import numpy as np
    lo, hi = min(mated.min(), nonmated.min()), max(mated.max(), nonmated.max())
    edges = np.linspace(lo, hi + 1e-9, bins + 1)
    pm, _ = np.histogram(mated, edges)
    pn, _ = np.histogram(nonmated, edges)
    pm, pn = pm / pm.sum(), pn / pn.sum()
    d = np.ones(bins)
    has = pn > 0
    lr = pm[has] / pn[has]
    d[has] = np.where(lr > 1, 2 * lr / (1 + lr) - 1, 0.0)
    return float((pm * d).sum())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=str(REPO.parent / "shared" / "data" / "lfw-dev"))
    ap.add_argument("--models", default="standard-int8")
    ap.add_argument("--out", default=str(REPO / "docs" / "img"))
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    ensure_venv()
    import numpy as np
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    genuine, impostor = read_pairs(Path(a.root))
    paths = sorted({p for g in genuine for p in g[:2]} | {p for i in impostor for p in i})
    print(f"embedding {len(paths)} photos ({a.models})...", file=sys.stderr)
    v = embed(paths, a.models)
    genuine = [g for g in genuine if g[0] in v and g[1] in v]
    impostor = [i for i in impostor if i[0] in v and i[1] in v]
    rng = np.random.default_rng(a.seed)
    d = len(next(iter(v.values())))
    q1, q2 = haar(d, rng), haar(d, rng)
    threshold = 0.32

    # Tenant 1 enrolled the first photo of each genuine pair, tenant 2 the second: the same
    # people at both. Non-mated: the impostor pairs (different people), one side at each.
    A = np.stack([v[g[0]] for g in genuine])
    B = np.stack([v[g[1]] for g in genuine])
    IA = np.stack([v[i[0]] for i in impostor])
    IB = np.stack([v[i[1]] for i in impostor])
    t1 = lambda x: x @ q1.T
    t2 = lambda x: x @ q2.T
    cos = lambda x, y: np.sum(x * y, axis=1)
    results = {"photos": len(v), "mated_pairs": len(genuine), "non_mated_pairs": len(impostor),
               "dim": d, "models": a.models}

    raw = d_sys(cos(A, B), cos(IA, IB))
    # The estimator's floor: two halves of one distribution (no link at all) score this much.
    half = len(IA) // 2
    nm = cos(t1(IA), t2(IB))
    results["linkability_estimator_floor"] = d_sys(nm[:half], nm[half:])
    plain = d_sys(cos(t1(A), t2(B)), cos(t1(IA), t2(IB)))
    results["linkability_unprotected"] = raw
    results["linkability_transformed"] = plain

    # Procrustes with k known cross-tenant pairs; evaluated on the other mated pairs.
    order = rng.permutation(len(genuine))
    ks = [8, 16, 32, 64, 128, 256, 512]
    results["linkability_known_pairs"] = {}
    for k in ks:
        known, rest = order[:k], order[k:]
        r = procrustes(t1(A[known]), t2(B[known]))
        mapped = lambda x: t1(x) @ r.T
        results["linkability_known_pairs"][k] = d_sys(cos(mapped(A[rest]), t2(B[rest])),
                                                      cos(mapped(IA), t2(IB)))

    # No known pair: align the galleries' principal axes, each axis's sign by the third moment.
    def axes(x):
        c = x - x.mean(axis=0)
        w, e = np.linalg.eigh(c.T @ c / len(x))
        e = e[:, ::-1]
        skew = np.sign(np.sum((c @ e) ** 3, axis=0))
        return e * np.where(skew == 0, 1, skew)
    g1, g2 = t1(np.vstack([A, IA])), t2(np.vstack([B, IB]))
    r0 = axes(g2) @ axes(g1).T
    results["linkability_no_known_pairs_pca"] = d_sys(cos(t1(A) @ r0.T, t2(B)),
                                                      cos(t1(IA) @ r0.T, t2(IB)))

    # Irreversibility: k known (raw, transformed) pairs of tenant 1 give Q1; invert the rest.
    results["inversion_known_pairs"] = {}
    genuine_rate = float(np.mean(cos(A, B) >= threshold))
    results["genuine_accept_raw"] = genuine_rate
    for k in ks:
        known, rest = order[:k], order[k:]
        r = procrustes(t1(A[known]), A[known])  # maps transformed -> raw
        rec = t1(A[rest]) @ r.T
        rec = rec / np.linalg.norm(rec, axis=1, keepdims=True)
        results["inversion_known_pairs"][k] = {
            "cosine_to_raw_mean": float(np.mean(cos(rec, A[rest]))),
            "verifies_as_person": float(np.mean(cos(rec, B[rest]) >= threshold)),
        }

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    fig, (l, r) = plt.subplots(1, 2, figsize=(10, 4))
    l.semilogx(ks, [results["linkability_known_pairs"][k] for k in ks], "o-", label="Procrustes, k known pairs")
    l.axhline(raw, color="red", ls="--", label=f"no transform ({raw:.2f})")
    l.axhline(plain, color="green", ls="--", label=f"transform, plain comparison ({plain:.2f})")
    l.axhline(results["linkability_estimator_floor"], color="gray", ls="-", lw=0.8,
              label=f"estimator floor, no link ({results['linkability_estimator_floor']:.2f})")
    l.axhline(results["linkability_no_known_pairs_pca"], color="purple", ls=":",
              label=f"transform, no pair known, axes aligned ({results['linkability_no_known_pairs_pca']:.2f})")
    l.set_xlabel("cross-tenant pairs known to the attacker (k)")
    l.set_ylabel("global linkability D↔sys (0 none, 1 full)")
    l.set_ylim(-0.02, 1.02)
    l.legend(fontsize=7)
    l.set_title("Linking two tenants' galleries")
    r.semilogx(ks, [results["inversion_known_pairs"][k]["cosine_to_raw_mean"] for k in ks], "o-",
               label="cosine of recovered to raw template")
    r.semilogx(ks, [results["inversion_known_pairs"][k]["verifies_as_person"] for k in ks], "s-",
               label="recovered template verifies as its person")
    r.axhline(genuine_rate, color="red", ls="--", label=f"raw template verifies ({genuine_rate:.3f})")
    r.set_xlabel("(raw, transformed) pairs known to the attacker (k)")
    r.set_ylim(-0.02, 1.02)
    r.legend(fontsize=7)
    r.set_title("Inverting one tenant's transform")
    fig.suptitle(f"Template transform on LFW dev ({a.models}, {d}-d): what an attacker with the opened templates learns", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "template-protection.png", dpi=110)
    if a.json:
        print(json.dumps(results, indent=1))
    else:
        print(f"D<->sys: unprotected {raw:.3f}; transformed {plain:.3f} "
              f"(estimator floor {results['linkability_estimator_floor']:.3f}); "
              f"axes aligned, no pair known {results['linkability_no_known_pairs_pca']:.3f}")
        for k in ks:
            inv = results["inversion_known_pairs"][k]
            print(f"k={k:4d}: linkability {results['linkability_known_pairs'][k]:.3f}; "
                  f"inversion cosine {inv['cosine_to_raw_mean']:.3f}, verifies {inv['verifies_as_person']:.3f}")
        print(f"plot: {out / 'template-protection.png'}")


if __name__ == "__main__":
    main()
