#!/usr/bin/env python3
"""Face and voice together: calibrates the fusion rule and measures it on a paired set.

Usage: python3 bench/fusion.py --lfw DIR --fsdd DIR --out DIR [--consentry PATH]
       [--face-models standard|standard-int8 --face-threshold T] [--constants FILE]

1. Face scores: `consentry eval` on LFW's dev pairs (DIR/pairs-dev.txt): 1,500 same-person and
   1,500 different-person pairs.
2. Voice scores: FSDD joined. For each of george, jackson and theo, the speaker's digit
   recordings sorted by name, shuffled (random.seed(1)) and joined eight at a time into 40
   probes of about 3.6 s; `consentry voice eval` on all pairs of the 120 probes.
3. The paired set. No set has the same people's faces and voices, so each pair of the paired
   set is a "chimeric" person: a face pair and a voice pair drawn independently (the usual
   construction when the modalities are independent). The i-th same-person face pair goes with
   a same-speaker voice pair, the i-th different-person face pair with a different-speaker
   voice pair, the voice pairs drawn without replacement (random.seed(2)). The 3,000 paired
   scores are split in two: even positions calibrate, odd positions measure.
4. Calibration (even half): a logistic model `bias + a*face + b*voice` by Newton's method (a
   little L2 keeps it finite when the half separates), and the floors `face_and_voice` adds:
   the face's own threshold (a recording can be replayed and has no liveness check, so the
   face must stand alone against a stranger holding the person's voice), and the voice cosine
   that lets 1% of the half's impostors through.
5. Measure (odd half): EER of face, voice and the fused score; errors at the shipped rules.

The face term is taken relative to the face model's threshold (`face - T`), so the rule carries
over to the server's int8 model, whose threshold differs by 0.01. With --constants (a
metrics.json of an earlier run) the rule is not fitted again but measured as it is: that is
how the shipped constants are checked on the int8 model's scores.

Writes OUT/metrics.json and OUT/det.svg (DET curves of the three); prints the constants in the
form `crates/core/src/fusion.rs` takes.
"""

import argparse
import json
import math
import random
import subprocess
import sys
import wave
from pathlib import Path

VOICE_THRESHOLD = 0.66  # crates/voice: DEFAULT_THRESHOLD


def join_fsdd(src: Path, dst: Path) -> Path:
    """The FSDD joined probes and their pairs file; returns the pairs file."""
    dst.mkdir(parents=True, exist_ok=True)
    random.seed(1)
    probes = []
    for speaker in ("george", "jackson", "theo"):
        files = sorted(src.glob(f"*_{speaker}_*.wav"))
        random.shuffle(files)
        for k in range(40):
            out = dst / f"{speaker}_{k:02d}.wav"
            frames, params = [], None
            for f in files[k * 8:(k + 1) * 8]:
                with wave.open(str(f)) as w:
                    params = w.getparams()
                    frames.append(w.readframes(w.getnframes()))
            with wave.open(str(out), "wb") as w:
                w.setparams(params)
                for fr in frames:
                    w.writeframes(fr)
            probes.append((speaker, out.name))
    pairs = dst / "pairs.tsv"
    with pairs.open("w") as f:
        for i in range(len(probes)):
            for j in range(i + 1, len(probes)):
                same = int(probes[i][0] == probes[j][0])
                f.write(f"{probes[i][1]}\t{probes[j][1]}\t{same}\n")
    return pairs


def read_scores(path: Path):
    """(same, score) rows of a `consentry eval` or `consentry voice eval` scores.tsv."""
    lines = path.read_text().splitlines()
    head = lines[0].split("\t")
    si, ci = head.index("same"), head.index("score")
    rows = []
    for line in lines[1:]:
        cols = line.split("\t")
        same = cols[si] in ("1", "true")
        rows.append((same, float(cols[ci])))
    return rows


def eer(gen, imp):
    """Equal error rate and its threshold over scores (higher = same)."""
    best = (2.0, 0.0, 0.0)  # (|FRR - FAR|, threshold, EER)
    for t in sorted(set(gen + imp)):
        frr = sum(g < t for g in gen) / len(gen)
        far = sum(i >= t for i in imp) / len(imp)
        if abs(frr - far) < best[0]:
            best = (abs(frr - far), t, (frr + far) / 2)
    return best[2], best[1]


def det(gen, imp, steps=400):
    lo, hi = min(gen + imp), max(gen + imp)
    pts = []
    for k in range(steps + 1):
        t = lo + (hi - lo) * k / steps
        pts.append((sum(i >= t for i in imp) / len(imp), sum(g < t for g in gen) / len(gen)))
    return pts


def fit_logistic(xs, ys, l2=1e-3, iters=50):
    """Newton's method for P(same) = sigmoid(w . [1, face, voice])."""
    w = [0.0, 0.0, 0.0]
    for _ in range(iters):
        g = [0.0] * 3
        h = [[0.0] * 3 for _ in range(3)]
        for x, y in zip(xs, ys):
            z = w[0] + w[1] * x[0] + w[2] * x[1]
            p = 1 / (1 + math.exp(-max(-40, min(40, z))))
            v = (1.0, x[0], x[1])
            for a in range(3):
                g[a] += (p - y) * v[a]
                for b in range(3):
                    h[a][b] += p * (1 - p) * v[a] * v[b]
        for a in range(1, 3):
            g[a] += l2 * w[a] * len(xs)
            h[a][a] += l2 * len(xs)
        step = solve3(h, g)
        w = [w[a] - step[a] for a in range(3)]
        if max(abs(s) for s in step) < 1e-9:
            break
    return w


def solve3(m, v):
    """Solves m x = v (3x3) by Gaussian elimination."""
    a = [row[:] + [v[i]] for i, row in enumerate(m)]
    for c in range(3):
        p = max(range(c, 3), key=lambda r: abs(a[r][c]))
        a[c], a[p] = a[p], a[c]
        for r in range(3):
            if r != c and a[c][c] != 0:
                f = a[r][c] / a[c][c]
                a[r] = [a[r][k] - f * a[c][k] for k in range(4)]
    return [a[i][3] / a[i][i] for i in range(3)]


def quantile(xs, q):
    s = sorted(xs)
    return s[min(len(s) - 1, int(math.ceil(q * len(s))) - 1)]


def svg_det(curves, path: Path):
    """DET curves on log axes from 1e-3 to 1, as a plain SVG."""
    w, h, m = 640, 480, 60

    def pos(x, y):
        lx = (math.log10(max(x, 1e-3)) + 3) / 3
        ly = (math.log10(max(y, 1e-3)) + 3) / 3
        return m + lx * (w - 2 * m), h - m - ly * (h - 2 * m)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'font-family="sans-serif" font-size="13">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="24" text-anchor="middle" font-size="16">'
           'DET: face, voice and the two fused (paired set, measuring half)</text>']
    for k, lab in enumerate(["0.001", "0.01", "0.1", "1"]):
        x, _ = pos(10 ** (k - 3), 1e-3)
        _, y = pos(1e-3, 10 ** (k - 3))
        out.append(f'<line x1="{x}" y1="{m}" x2="{x}" y2="{h - m}" stroke="#ddd"/>')
        out.append(f'<line x1="{m}" y1="{y}" x2="{w - m}" y2="{y}" stroke="#ddd"/>')
        out.append(f'<text x="{x}" y="{h - m + 18}" text-anchor="middle">{lab}</text>')
        out.append(f'<text x="{m - 6}" y="{y + 4}" text-anchor="end">{lab}</text>')
    out.append(f'<text x="{w / 2}" y="{h - 16}" text-anchor="middle">false accept rate</text>')
    out.append(f'<text x="16" y="{h / 2}" transform="rotate(-90 16 {h / 2})" '
               'text-anchor="middle">false reject rate</text>')
    colours = ["#1f77b4", "#d62728", "#2ca02c"]
    for k, (name, pts) in enumerate(curves):
        xy = " ".join("%.1f,%.1f" % pos(x, y) for x, y in pts)
        out.append(f'<polyline fill="none" stroke="{colours[k]}" stroke-width="2" points="{xy}"/>')
        out.append(f'<text x="{w - m - 150}" y="{m + 20 + 18 * k}" fill="{colours[k]}">{name}</text>')
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lfw", type=Path, required=True)
    ap.add_argument("--fsdd", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--consentry", default="target/release/consentry")
    ap.add_argument("--face-models", default="standard")
    ap.add_argument("--face-threshold", type=float, default=0.33)
    ap.add_argument("--constants", type=Path)
    a = ap.parse_args()
    t_face = a.face_threshold
    a.out.mkdir(parents=True, exist_ok=True)

    face_dir, voice_dir = a.out / "face", a.out / "voice"
    if not (face_dir / "scores.tsv").exists():
        subprocess.run([a.consentry, "--models", a.face_models, "eval", "--pairs", str(a.lfw / "pairs-dev.txt"),
                        "--root", str(a.lfw), "--out", str(face_dir)], check=True)
    if not (voice_dir / "scores.tsv").exists():
        joined = a.out / "fsdd-joined"
        pairs = join_fsdd(a.fsdd, joined)
        subprocess.run([a.consentry, "voice", "eval", "--pairs", str(pairs), "--root",
                        str(joined), "--out", str(voice_dir)], check=True)
    # The face as its margin over its model's threshold.
    face = [(same, f - t_face) for same, f in read_scores(face_dir / "scores.tsv")]
    voice = read_scores(voice_dir / "scores.tsv")

    random.seed(2)
    vg = [s for same, s in voice if same]
    vi = [s for same, s in voice if not same]
    random.shuffle(vg)
    random.shuffle(vi)
    paired = []
    for same, f in face:
        v = vg.pop() if same else vi.pop()
        paired.append((same, f, v))
    cal, test = paired[0::2], paired[1::2]

    if a.constants:
        c = json.loads(a.constants.read_text())["constants"]
        w = [c["bias"], c["face_weight"], c["voice_weight"]]
        voice_floor = c["voice_floor"]
    else:
        w = fit_logistic([(f, v) for _, f, v in cal], [1 if s else 0 for s, _, _ in cal])
        voice_floor = quantile([v for s, _, v in cal if not s], 0.99)

    def fused(f, v):
        return w[0] + w[1] * f + w[2] * v

    def split(rows, key):
        return [key(r) for r in rows if r[0]], [key(r) for r in rows if not r[0]]

    result = {"pairs": {"calibrate": len(cal), "measure": len(test)},
              "face_models": a.face_models, "face_threshold": t_face,
              "constants": {"bias": w[0], "face_weight": w[1], "voice_weight": w[2],
                            "voice_floor": voice_floor}}
    curves = []
    for name, key in [("face", lambda r: r[1]), ("voice", lambda r: r[2]),
                      ("fused", lambda r: fused(r[1], r[2]))]:
        g, i = split(test, key)
        e, t = eer(g, i)
        result[name] = {"eer": e, "eer_threshold": t}
        curves.append((f"{name} (EER {100 * e:.2f}%)", det(g, i)))

    def rule_errors(accept):
        g = [accept(f, v) for s, f, v in test if s]
        i = [accept(f, v) for s, f, v in test if not s]
        frr = 1 - sum(g) / len(g)
        far = sum(i) / len(i)
        return {"frr": frr, "far": far, "accuracy": 1 - (frr * len(g) + far * len(i)) / len(test)}

    result["at_shipped_rules"] = {
        f"face >= {t_face}": rule_errors(lambda f, v: f >= 0),
        "voice >= 0.66": rule_errors(lambda f, v: v >= VOICE_THRESHOLD),
        "face_or_voice: fused >= 0": rule_errors(lambda f, v: fused(f, v) >= 0),
        "face_and_voice: fused >= 0 and floors": rule_errors(
            lambda f, v: fused(f, v) >= 0 and f >= 0 and v >= voice_floor),
        "both thresholds (no fusion)": rule_errors(
            lambda f, v: f >= 0 and v >= VOICE_THRESHOLD),
    }
    (a.out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    svg_det(curves, a.out / "det.svg")
    print(json.dumps(result, indent=2))
    print("\n// crates/core/src/fusion.rs, Fusion::DEFAULT")
    print(f"face_weight: {w[1]:.4f},\nvoice_weight: {w[2]:.4f},\nbias: {w[0]:.4f},\n"
          f"voice_floor: {voice_floor:.4f},")


if __name__ == "__main__":
    sys.exit(main())
