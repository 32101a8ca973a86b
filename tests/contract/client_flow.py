#!/usr/bin/env python3
"""The whole flow through a client generated from /openapi.json by openapi-python-client:
subject, consent, enrolment, 1:1 verification, 1:N identification, deletion. Run by
crates/cli/tests/contract.rs with the contract venv's Python:

    client_flow.py GENERATED_PARENT_DIR BASE_URL ADMIN_KEY DEVICE_KEY ENROL.jpg SAME.jpg OTHER.jpg

Prints one JSON line of what it saw; exits non-zero at the first answer that is not right."""
import io
import json
import sys

sys.path.insert(0, sys.argv[1])

from consentry_client import AuthenticatedClient  # noqa: E402
from consentry_client.api.consents import grant_consent  # noqa: E402
from consentry_client.api.decisions import identify_face, verify_face  # noqa: E402
from consentry_client.api.faces import enrol_face  # noqa: E402
from consentry_client.api.subjects import create_subject, delete_subject  # noqa: E402
from consentry_client.models import ConsentRequest, ImageUpload, ProbesUpload  # noqa: E402
from consentry_client.types import File  # noqa: E402

base, admin_key, device_key = sys.argv[2:5]
enrol_photo, same_photo, other_photo = (open(p, "rb").read() for p in sys.argv[5:8])
admin = AuthenticatedClient(base_url=base, token=admin_key, timeout=60)
device = AuthenticatedClient(base_url=base, token=device_key, timeout=60)
seen = {}


def expect(step, response, status):
    body = json.loads(response.content) if response.content else None
    if response.status_code != status:
        sys.exit(f"{step}: {response.status_code} {body}, expected {status}")
    seen[step] = body
    return body


def jpeg(data):
    return File(payload=io.BytesIO(data), file_name="photo.jpg", mime_type="image/jpeg")


subject = expect("create_subject", create_subject.sync_detailed(client=admin), 201)["id"]
for purpose in ("verification", "access"):
    expect(f"grant_consent {purpose}", grant_consent.sync_detailed(
        subject, client=admin, body=ConsentRequest(purpose=purpose, retention_days=30)), 201)
    expect(f"enrol_face {purpose}", enrol_face.sync_detailed(
        subject, client=admin, body=ImageUpload(image=jpeg(enrol_photo)), purpose=purpose), 201)

same = expect("verify_face same", verify_face.sync_detailed(
    client=device, body=ProbesUpload(image=jpeg(same_photo)), subject=subject), 200)
other = expect("verify_face other", verify_face.sync_detailed(
    client=device, body=ProbesUpload(image=jpeg(other_photo)), subject=subject), 200)
found = expect("identify_face", identify_face.sync_detailed(
    client=device, body=ProbesUpload(image=jpeg(same_photo))), 200)
if (same["decision"], other["decision"], found["decision"], found.get("subject")) != (
        "allow", "deny", "allow", subject):
    sys.exit(f"wrong decisions: {same} {other} {found}")

expect("delete_subject", delete_subject.sync_detailed(subject, client=admin), 204)
gone = expect("identify_face after deletion", identify_face.sync_detailed(
    client=device, body=ProbesUpload(image=jpeg(same_photo))), 200)
if gone["decision"] != "deny":
    sys.exit(f"identified after deletion: {gone}")
print(json.dumps(seen))
