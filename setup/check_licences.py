#!/usr/bin/env python3
"""Holds the models and other assets setup fetches to the licence policy the Rust dependencies
are held to (`cargo deny check licenses`, deny.toml).

Every package setup/manifest.tsv names must have a row in setup/licences.tsv; a package the
server or CLI loads by default (`shipped`) or the tests read (`tests`) must carry a licence from
deny.toml's `[licenses] allow` list; one outside it must be `opt-in` (loaded only after an
explicit acknowledgement). Prints the table and exits 1 on any breach.

Usage: python3 setup/check_licences.py
"""

import sys
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent


def rows(name):
    for line in (HERE / name).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            yield line.split("\t")


def main():
    allow = set(tomllib.loads((HERE.parent / "deny.toml").read_text())["licenses"]["allow"])
    used = {spec for kind, spec, *_ in rows("manifest.tsv") if kind != "prep"}
    listed = {}
    errors = []
    for fields in rows("licences.tsv"):
        if len(fields) != 4:
            errors.append(f"licences.tsv: expected 4 fields: {fields}")
            continue
        spec, use, licence, what = fields
        listed[spec] = licence
        print(f"{spec:40} {use:8} {licence}")
        if use not in ("shipped", "tests", "opt-in"):
            errors.append(f"{spec}: unknown use {use!r}")
        elif use != "opt-in" and licence not in allow:
            errors.append(f"{spec}: {licence} is not in deny.toml's allow-list; it may only be opt-in")
        if spec not in used:
            errors.append(f"{spec}: listed but setup/manifest.tsv does not use it")
    for spec in sorted(used - listed.keys()):
        errors.append(f"{spec}: in setup/manifest.tsv without a licence in setup/licences.tsv")
    for e in errors:
        print("licence check:", e, file=sys.stderr)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
