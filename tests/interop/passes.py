#!/usr/bin/env python3
"""Consentry passes checked by code nobody on the project wrote: pycose (COSE_Sign1, EdDSA),
cbor2 (CWT claims) and base45, with zlib from the standard library.

    python passes.py --consentry BIN --pass PASS_FILE --trust TRUST_JSON --workdir DIR

1. Our pass (from the server) verifies with pycose against the key in our trust list, and its
   claims decode with cbor2: iss, sub, aud, exp, nbf, iat, cti and "access", nothing else.
2. A copy with a changed expiry (payload edited, signature kept) fails pycose's verification.
3. A pass made here, with a key in a trust list written here, is accepted by our verifier
   (`consentry pass verify`, exit 0, the same claims back); one made with another key is
   refused with pass_unknown_key (exit 12), and one whose signature does not match its key id
   with pass_bad_signature (exit 11).

Prints one line per check and exits 1 on the first failure. The venv with the pinned libraries
is made by `python3 setup/fetch.py` (setup/requirements-test.txt).
"""

import argparse
import base64
import hashlib
import json
import subprocess
import sys
import time
import zlib
from pathlib import Path

import base45
import cbor2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pycose.algorithms import EdDSA
from pycose.headers import KID, Algorithm
from pycose.keys.curves import Ed25519
from pycose.keys.keyparam import KpKty, OKPKpCurve, OKPKpD, OKPKpX
from pycose.keys.keytype import KtyOKP
from pycose.keys.okp import OKPKey
from pycose.messages import Sign1Message

PREFIX = "CS1:"
CLAIM_KEYS = {1, 2, 3, 4, 5, 6, 7, "access"}


def fail(msg: str) -> None:
    print(f"FAIL: {msg}")
    sys.exit(1)


def ok(msg: str) -> None:
    print(f"ok: {msg}")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def unwrap(text: str) -> bytes:
    if not text.startswith(PREFIX):
        fail(f"no {PREFIX} prefix")
    return zlib.decompress(base45.b45decode(text[len(PREFIX):]))


def wrap(cose: bytes) -> str:
    return PREFIX + base45.b45encode(zlib.compress(cose, 9)).decode()


def public_key(x: bytes) -> OKPKey:
    return OKPKey.from_dict({KpKty: KtyOKP, OKPKpCurve: Ed25519, OKPKpX: x})


def private_key(sk: Ed25519PrivateKey) -> tuple[OKPKey, bytes]:
    d = sk.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                         serialization.NoEncryption())
    x = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return OKPKey.from_dict({KpKty: KtyOKP, OKPKpCurve: Ed25519, OKPKpX: x, OKPKpD: d}), x


def verify_ours(text: str, trust: dict) -> dict:
    cose = unwrap(text)
    msg = Sign1Message.decode(cose)
    if msg.phdr.get(Algorithm) is not EdDSA and msg.phdr.get(Algorithm) != EdDSA:
        fail(f"algorithm is {msg.phdr.get(Algorithm)}, not EdDSA")
    kid = msg.phdr.get(KID)
    keys = {unb64url(k["kid"]): unb64url(k["x"]) for k in trust["keys"]}
    if kid not in keys:
        fail("the pass's kid is not in the trust list")
    if hashlib.sha256(keys[kid]).digest()[:8] != kid:
        fail("the kid is not the first 8 bytes of SHA-256 of the key")
    msg.key = public_key(keys[kid])
    if not msg.verify_signature():
        fail("pycose does not verify our pass")
    claims = cbor2.loads(msg.payload)
    if set(claims) != CLAIM_KEYS:
        fail(f"claims are {sorted(map(str, claims))}, expected exactly {sorted(map(str, CLAIM_KEYS))}")
    return {"msg": msg, "claims": claims, "kid": kid, "x": keys[kid]}


def tampered_fails(ours: dict) -> None:
    msg = ours["msg"]
    claims = dict(ours["claims"])
    claims[4] = claims[4] + 365 * 86400
    forged = Sign1Message(phdr=msg.phdr, uhdr=msg.uhdr, payload=cbor2.dumps(claims))
    forged._signature = msg.signature  # the old signature over the new payload
    again = Sign1Message.decode(forged.encode(sign=False, tag=True))
    again.key = public_key(ours["x"])
    try:
        good = again.verify_signature()
    except Exception:  # noqa: BLE001 - any refusal is the expected outcome
        good = False
    if good:
        fail("pycose accepted a pass whose expiry was changed after signing")


def make_pass(sk: Ed25519PrivateKey, claims: dict, kid: bytes | None = None) -> str:
    key, x = private_key(sk)
    kid = kid if kid is not None else hashlib.sha256(x).digest()[:8]
    msg = Sign1Message(phdr={Algorithm: EdDSA, KID: kid}, payload=cbor2.dumps(claims))
    msg.key = key
    return wrap(msg.encode(tag=True))


def run_verify(consentry: str, pass_text: str, trust_path: Path) -> tuple[int, dict]:
    res = subprocess.run([consentry, "pass", "verify", pass_text, "--trust", str(trust_path),
                          "--json"], capture_output=True, text=True, check=False)
    try:
        out = json.loads(res.stdout)
    except json.JSONDecodeError:
        out = {"stdout": res.stdout, "stderr": res.stderr}
    return res.returncode, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--consentry", required=True)
    ap.add_argument("--pass", dest="pass_file", required=True)
    ap.add_argument("--trust", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    work = Path(a.workdir)
    trust = json.loads(Path(a.trust).read_text())
    ours = verify_ours(Path(a.pass_file).read_text().strip(), trust)
    ok(f"pycose verifies our pass (kid {ours['kid'].hex()}), cbor2 reads its claims "
       f"(access {ours['claims']['access']!r}, no name, no birth date)")
    tampered_fails(ours)
    ok("pycose refuses our pass with its expiry changed after signing")

    now = int(time.time())
    claims = {1: "consentry/interop", 2: "ab" * 16, 3: "venue-9", 4: now + 3600, 5: now - 60,
              6: now - 60, 7: bytes(range(16)), "access": "venue-9"}
    sk, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    _, x = private_key(sk)
    kid = hashlib.sha256(x).digest()[:8]
    trust_path = work / "interop-trust.json"
    trust_path.write_text(json.dumps({"issuer": "consentry/interop", "keys": [
        {"kty": "OKP", "crv": "Ed25519", "kid": b64url(kid), "x": b64url(x)}]}))

    code, out = run_verify(a.consentry, make_pass(sk, claims), trust_path)
    if code != 0 or out.get("decision") != "valid":
        fail(f"our verifier refused a pass made here with a trusted key: exit {code}, {out}")
    got = out["claims"]
    if (got["verifier"], got["access"], got["expires_at"], got["pass_id"]) != (
            "venue-9", "venue-9", now + 3600, bytes(range(16)).hex()):
        fail(f"our verifier read other claims: {got}")
    ok("our verifier accepts a pass made with pycose and a trusted key, with its claims")

    code, out = run_verify(a.consentry, make_pass(other, claims), trust_path)
    if code != 12 or out.get("error", {}).get("code") != "pass_unknown_key":
        fail(f"a pass made with another key: exit {code}, {out}")
    ok("our verifier refuses a pass made with another key (pass_unknown_key, exit 12)")

    code, out = run_verify(a.consentry, make_pass(other, claims, kid=kid), trust_path)
    if code != 11 or out.get("error", {}).get("code") != "pass_bad_signature":
        fail(f"a pass signed by another key under the trusted kid: exit {code}, {out}")
    ok("our verifier refuses another key's signature under the trusted kid (pass_bad_signature, exit 11)")
    print("interop: all 5 checks passed")


if __name__ == "__main__":
    main()
