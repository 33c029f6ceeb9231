"""EAR export: each verdict as a Veraison EAR (Entity Attestation Result)
claims set, one JSON object per line, unsigned.

One submod per realm (named after its log), its status and trustworthiness
vector mapped from the verdict the way Veraison's CCA realm scheme maps an
appraisal of the realm's measurements (AR4SI executables claim):

    pass        affirming        executables 2  (approved: the RIM matches known-good images)
    unverified  warning          executables 33 (images known, but no attested value to hold them to)
    fail        contraindicated  executables 96 (the attested RIM is not the known-good one, or the token is not trusted)
    error       contraindicated  executables 96 (the evidence could not be appraised: never trust it)

instance-identity is 2 when the RIM came from a token whose whole chain
(platform key, realm key, binding) verified, else 0 (no claim).
"""

import base64
import json
import time

from .. import __version__
from ..store.files import AtomicFile
from ..verifier import ERROR, FAIL, PASS, UNVERIFIED

EAR_PROFILE = "tag:github.com,2023:veraison/ear"
POLICY_ID = "policy:fastrim/rim-replay"
_STATUS = {PASS: ("affirming", 2), UNVERIFIED: ("warning", 33), FAIL: ("contraindicated", 96),
           ERROR: ("contraindicated", 96)}


def _b64(value):
    return base64.b64encode(value).decode() if value is not None else None


def claims(row, issued_at=None):
    """The EAR claims set for one result row (output.rows.row)."""
    status, executables = _STATUS[row["status"]]
    token_trusted = bool(row["token_realm_signature"] and row["token_platform_signature"] and row["token_binding"])
    evidence = {
        "cca-realm-initial-measurement": _b64(row["expected_rim"]),
        "fastrim-replayed-rim": _b64(row["rim"]),
        "fastrim-rim-source": row["rim_source"],
        "cca-realm-challenge": _b64(row["realm_challenge"]),
        "cca-realm-personalization-value": _b64(row["realm_rpv"]),
        "cca-realm-profile": row["realm_profile"],
    }
    submod = {
        "ear.status": status,
        "ear.trustworthiness-vector": {"executables": executables, "instance-identity": 2 if token_trusted else 0},
        "ear.appraisal-policy-id": POLICY_ID,
        "ear.veraison.annotated-evidence": {k: v for k, v in evidence.items() if v is not None},
    }
    if row["error_code"]:
        submod["fastrim.error-code"] = row["error_code"]
        submod["fastrim.detail"] = row["detail"]
    return {
        "eat_profile": EAR_PROFILE,
        "iat": int(issued_at if issued_at is not None else time.time()),
        "ear.verifier-id": {"build": f"fastrim-{__version__}", "developer": "fastrim"},
        "submods": {row["log"]: submod},
    }


class EarLines:
    """EAR claims sets written one JSON line per add()ed row; close() puts
    the file at path, whole (store.files.AtomicFile), abort() leaves nothing."""

    def __init__(self, path, issued_at=None):
        self.path = path
        self._issued_at = int(issued_at if issued_at is not None else time.time())
        self._target = AtomicFile(path)

    def add(self, row):
        self._target.file.write((json.dumps(claims(row, self._issued_at)) + "\n").encode())

    def close(self):
        self._target.commit()

    def abort(self):
        self._target.abort()
