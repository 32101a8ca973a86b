"""Pinned virtual environments for the bench scripts' peers, made on first use."""

import os
import subprocess
import sys
from pathlib import Path


def pinned_venv(venv: Path, requirements: Path, what: str) -> Path:
    """The Python of `venv`, (re)made when `requirements` changed since it was installed."""
    py = venv / "bin" / "python"
    stamp = venv / "requirements.txt"
    req = requirements.read_text()
    if not (py.exists() and stamp.exists() and stamp.read_text() == req):
        print(f"bench: installing {what} into", venv, file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "-r", str(requirements)], check=True)
        stamp.write_text(req)
    return py


def run_in_pinned_venv(venv: Path, requirements: Path, what: str) -> None:
    """Re-runs this script with the Python of `venv` (made by `pinned_venv`), unless it already
    runs there."""
    if Path(sys.prefix).resolve() == venv.resolve():
        return
    py = pinned_venv(venv, requirements, what)
    os.execv(str(py), [str(py)] + sys.argv)
