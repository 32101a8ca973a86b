#!/usr/bin/env python3
"""Consentry passes checked by code nobody on the project wrote: pycose (COSE_Sign1, EdDSA),
cbor2 (CWT claims) and base45, with zlib from the standard library.

    python passes.py --consentry BIN --pass PASS --pass-es256 PASS --trust TRUST_JSON --workdir DIR

1. Our passes (from the server, EdDSA and ES256) verify with pycose against the keys in our
   trust list, and their claims decode with cbor2: iss, sub, aud, exp, nbf, iat, cti and
   "access", nothing else.
2. Copies with a changed expiry (payload edited, signature kept) fail pycose's verification.
3. A pass made here, with a key in a trust list written here, is accepted by our verifier
   (`consentry pass verify`, exit 0, the same claims back); one made with another key is
   refused with pass_unknown_key (exit 12), and one whose signature does not match its key id
   with pass_bad_signature (exit 11); the same for ES256 passes made here.

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
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pycose.algorithms import Es256, EdDSA
from pycose.headers import KID, Algorithm
from pycose.keys.curves import P256, Ed25519
from pycose.keys.ec2 import EC2Key
from pycose.keys.keyparam import EC2KpCurve, EC2KpD, EC2KpX, EC2KpY, KpKty, OKPKpCurve, OKPKpD, OKPKpX
from pycose.keys.keytype import KtyEC2, KtyOKP
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


def public_key(jwk: dict):
    if jwk["kty"] == "EC":
        return EC2Key.from_dict({KpKty: KtyEC2, EC2KpCurve: P256, EC2KpX: unb64url(jwk["x"]),
                                 EC2KpY: unb64url(jwk["y"])})
    return OKPKey.from_dict({KpKty: KtyOKP, OKPKpCurve: Ed25519, OKPKpX: unb64url(jwk["x"])})


def key_bytes(jwk: dict) -> bytes:
    """What the kid hashes: Ed25519's 32 bytes, P-256's uncompressed point."""
    if jwk["kty"] == "EC":
        return b"\x04" + unb64url(jwk["x"]) + unb64url(jwk["y"])
    return unb64url(jwk["x"])


def private_key(sk: Ed25519PrivateKey) -> tuple[OKPKey, bytes]:
    d = sk.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                         serialization.NoEncryption())
    x = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return OKPKey.from_dict({KpKty: KtyOKP, OKPKpCurve: Ed25519, OKPKpX: x, OKPKpD: d}), x


def verify_ours(text: str, trust: dict, alg) -> dict:
    cose = unwrap(text)
    msg = Sign1Message.decode(cose)
    if msg.phdr.get(Algorithm) is not alg and msg.phdr.get(Algorithm) != alg:
        fail(f"algorithm is {msg.phdr.get(Algorithm)}, not {alg}")
    kid = msg.phdr.get(KID)
    keys = {unb64url(k["kid"]): k for k in trust["keys"]}
    if kid not in keys:
        fail("the pass's kid is not in the trust list")
    if hashlib.sha256(key_bytes(keys[kid])).digest()[:8] != kid:
        fail("the kid is not the first 8 bytes of SHA-256 of the key")
    msg.key = public_key(keys[kid])
    if not msg.verify_signature():
        fail("pycose does not verify our pass")
    claims = cbor2.loads(msg.payload)
    if set(claims) != CLAIM_KEYS:
        fail(f"claims are {sorted(map(str, claims))}, expected exactly {sorted(map(str, CLAIM_KEYS))}")
    return {"msg": msg, "claims": claims, "kid": kid, "jwk": keys[kid]}


def tampered_fails(ours: dict) -> None:
    msg = ours["msg"]
    claims = dict(ours["claims"])
    claims[4] = claims[4] + 365 * 86400
    forged = Sign1Message(phdr=msg.phdr, uhdr=msg.uhdr, payload=cbor2.dumps(claims))
    forged._signature = msg.signature  # the old signature over the new payload
    again = Sign1Message.decode(forged.encode(sign=False, tag=True))
    again.key = public_key(ours["jwk"])
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


def es256_key() -> tuple[EC2Key, dict]:
    """A P-256 key for pycose, and its JWK as our trust list holds it."""
    sk = ec.generate_private_key(ec.SECP256R1())
    nums = sk.private_numbers()
    x = nums.public_numbers.x.to_bytes(32, "big")
    y = nums.public_numbers.y.to_bytes(32, "big")
    d = nums.private_value.to_bytes(32, "big")
    key = EC2Key.from_dict({KpKty: KtyEC2, EC2KpCurve: P256, EC2KpX: x, EC2KpY: y, EC2KpD: d})
    kid = hashlib.sha256(b"\x04" + x + y).digest()[:8]
    return key, {"kty": "EC", "crv": "P-256", "kid": b64url(kid), "x": b64url(x), "y": b64url(y)}


def make_es256_pass(key: EC2Key, jwk: dict, claims: dict) -> str:
    msg = Sign1Message(phdr={Algorithm: Es256, KID: unb64url(jwk["kid"])},
                       payload=cbor2.dumps(claims))
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
    ap.add_argument("--pass-es256", dest="es256_file", required=True)
    ap.add_argument("--trust", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    work = Path(a.workdir)
    trust = json.loads(Path(a.trust).read_text())
    ours = verify_ours(Path(a.pass_file).read_text().strip(), trust, EdDSA)
    ok(f"pycose verifies our pass (kid {ours['kid'].hex()}), cbor2 reads its claims "
       f"(access {ours['claims']['access']!r}, no name, no birth date)")
    ours_es = verify_ours(Path(a.es256_file).read_text().strip(), trust, Es256)
    ok(f"pycose verifies our ES256 pass (kid {ours_es['kid'].hex()})")
    tampered_fails(ours_es)
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

    es_key, es_jwk = es256_key()
    es_trust = work / "interop-trust-es256.json"
    es_trust.write_text(json.dumps({"issuer": "consentry/interop", "keys": [es_jwk]}))
    code, out = run_verify(a.consentry, make_es256_pass(es_key, es_jwk, claims), es_trust)
    if code != 0 or out.get("claims", {}).get("access") != "venue-9":
        fail(f"our verifier refused an ES256 pass made with pycose and a trusted key: exit {code}, {out}")
    other_key, _ = es256_key()
    code, out = run_verify(a.consentry, make_es256_pass(other_key, es_jwk, claims), es_trust)
    if code != 11:
        fail(f"an ES256 pass signed by another key under the trusted kid: exit {code}, {out}")
    ok("our verifier accepts pycose's ES256 pass with a trusted key and refuses another key's")
    print("interop: all 7 checks passed")


if __name__ == "__main__":
    main()
