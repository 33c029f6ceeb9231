"""Attestation stage: the attested RIM from an Arm CCA attestation token,
believed only after the token is checked.

A CCA token is a collection (CBOR tag 399, or the tag 907 CMW collection)
of two tagged COSE_Sign1 messages: the platform token, signed by the
platform attestation key (a trust anchor the operator configures), and the
realm token, signed by the realm attestation key (RAK) it carries in claim
44237. They are bound by the platform challenge, which must equal the hash
(algorithm of claim 44240) of the exact bytes of claim 44237.

verify_token() returns what was decoded and which checks passed; a token
that cannot be decoded raises TokenError. Checks that fail do not raise:
the verdict says `fail` with the first failed check's code.
"""

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from ..algorithms import BY_IANA_NAME
from ..errors import FileError, InputError, TokenError
from ..store.files import read_head
from . import jsontext, strictcbor
from .claims import (
    CLAIM_CHALLENGE,
    CLAIM_HASH_ALGO,
    CLAIM_INSTANCE_ID,
    CLAIM_PROFILE,
    CLAIM_RAK,
    CLAIM_RAK_HASH_ALGO,
    CLAIM_REMS,
    CLAIM_RIM,
    CLAIM_RPV,
    CMW_CONTENT_FORMAT,
    PLATFORM,
    REALM,
    TAG_CMW_COLLECTION,
    TAG_COLLECTION,
    TAG_SIGN1,
)

# COSE algorithm -> (hash, curve, bytes of r and of s)
COSE_ALGS = {
    -7: (hashes.SHA256, ec.SECP256R1, 32),
    -35: (hashes.SHA384, ec.SECP384R1, 48),
    -36: (hashes.SHA512, ec.SECP521R1, 66),
}
_COSE_CURVES = {1: ec.SECP256R1, 2: ec.SECP384R1, 3: ec.SECP521R1}
JWK_CURVES = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1}
_POINT_CURVES = {65: ec.SECP256R1, 97: ec.SECP384R1, 133: ec.SECP521R1}  # 04 || X || Y


@dataclass
class PlatformKey:
    name: str  # the file it came from
    fingerprint: str  # SHA-256 of the SubjectPublicKeyInfo, hex
    key: ec.EllipticCurvePublicKey


@dataclass
class TokenResult:
    realm_claims: dict
    platform_claims: dict
    rim: bytes
    realm_signature: bool = False
    platform_signature: bool = None  # None: no configured key could be tried
    binding: bool = False
    platform_key: str = None  # fingerprint of the trust anchor that verified it
    failures: list = field(default_factory=list)  # (code, detail), in check order

    @property
    def trusted(self):
        return not self.failures


def _fingerprint(key):
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_MAX_KEY_FILE = 1 << 16


def read_platform_key(path):
    """The bytes of a trust anchor's file (parse_platform_key reads them)."""
    raw = read_head(path, _MAX_KEY_FILE)
    if raw is None:
        raise FileError(f"cannot read platform key {path}: no such file", code="io.unreadable")
    return raw


def load_platform_key(path):
    """A trust anchor from a PEM file (public or private key) or an EC JWK."""
    return parse_platform_key(str(path), read_platform_key(path))


def parse_platform_key(name, raw):
    """A trust anchor from the bytes of a PEM key (public or private) or an
    EC JWK; name says where they came from."""
    path = name
    try:
        if raw.lstrip().startswith(b"{"):
            jwk = jsontext.loads(raw.decode("utf-8", "replace"), f"platform key {path}", "input.bad_key")
            if not isinstance(jwk, dict):
                raise ValueError("a JWK is a JSON object")
            if jwk.get("kty") != "EC" or jwk.get("crv") not in JWK_CURVES:
                raise ValueError("only EC JWKs on P-256, P-384 or P-521")
            numbers = ec.EllipticCurvePublicNumbers(int.from_bytes(b64url(jwk["x"]), "big"),
                                                    int.from_bytes(b64url(jwk["y"]), "big"),
                                                    JWK_CURVES[jwk["crv"]]())
            key = numbers.public_key()
        elif b"PRIVATE KEY" in raw:
            key = serialization.load_pem_private_key(raw, password=None).public_key()
        else:
            key = serialization.load_pem_public_key(raw)
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("not an EC key")
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"platform key {path} is not a usable EC key: {exc}", code="input.bad_key") from None
    return PlatformKey(name, _fingerprint(key), key)


def strict_loads(raw, what):
    """The CBOR item raw holds, once strictcbor finds it strict (one item,
    definite lengths, distinct map keys, nothing after it)."""
    strictcbor.check(raw, what)
    try:
        return cbor2.loads(raw)
    except Exception as exc:  # cbor2 raises a variety of errors on bad input
        raise TokenError(f"the {what} is not CBOR: {exc}", code="token.malformed") from None


def _sign1(raw, which):
    message = strict_loads(raw, f"{which} token")
    if not (isinstance(message, cbor2.CBORTag) and message.tag == TAG_SIGN1):
        raise TokenError(f"the {which} token is not a tagged COSE_Sign1", code="token.malformed")
    parts = message.value
    if not (isinstance(parts, (list, tuple)) and len(parts) == 4 and isinstance(parts[0], bytes)
            and isinstance(parts[1], Mapping) and isinstance(parts[2], bytes) and isinstance(parts[3], bytes)):
        raise TokenError(f"the {which} COSE_Sign1 is not [protected, unprotected, payload, signature]",
                         code="token.malformed")
    protected, _, payload, signature = parts
    header = strict_loads(protected, f"{which} token's protected header") if protected else {}
    claims = strict_loads(payload, f"{which} token's claims")
    if not isinstance(header, Mapping) or not isinstance(claims, Mapping):
        raise TokenError(f"the {which} token's header or claims are not maps", code="token.malformed")
    return protected, header, payload, signature, claims


def signature_ok(key, alg, protected, payload, signature):
    """ECDSA over the COSE Sig_structure; False for any mismatch of algorithm, curve or signature."""
    if not isinstance(alg, int) or alg not in COSE_ALGS:
        return False
    hash_type, curve, size = COSE_ALGS[alg]
    if not isinstance(key.curve, curve) or len(signature) != 2 * size:
        return False
    to_be_signed = cbor2.dumps(["Signature1", protected, b"", payload])
    der = utils.encode_dss_signature(int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big"))
    try:
        key.verify(der, to_be_signed, ec.ECDSA(hash_type()))
        return True
    except InvalidSignature:
        return False


def _collection(data):
    top = strict_loads(data, "token")
    if isinstance(top, Mapping) and isinstance(top.get("pat"), cbor2.CBORTag):
        top = top["pat"]  # a Parsec key-attestation bundle: {"kat": ..., "pat": CCA token}
    if not isinstance(top, cbor2.CBORTag) or top.tag not in (TAG_COLLECTION, TAG_CMW_COLLECTION) \
            or not isinstance(top.value, Mapping):
        raise TokenError("the token is not a CCA collection (CBOR tag 399 or 907 around a map)",
                         code="token.malformed")
    tokens = {}
    for key in (PLATFORM, REALM):
        value = top.value.get(key)
        if top.tag == TAG_CMW_COLLECTION:  # [content-format, bstr]
            if not (isinstance(value, (list, tuple)) and len(value) == 2 and value[0] == CMW_CONTENT_FORMAT):
                raise TokenError(f"CMW entry {key} is not [{CMW_CONTENT_FORMAT}, token]", code="token.malformed")
            value = value[1]
        if not isinstance(value, bytes):
            raise TokenError(f"collection entry {key} is not a byte string holding a token", code="token.malformed")
        tokens[key] = value
    return tokens[PLATFORM], tokens[REALM]


def _realm_key(claims):
    """The RAK from claim 44237: a COSE_Key with a profile claim, else a raw EC point."""
    raw = claims[CLAIM_RAK]
    try:
        if CLAIM_PROFILE in claims:
            cose_key = strict_loads(raw, "realm attestation key")
            curve = _COSE_CURVES[cose_key[-1]]
            if cose_key.get(1) != 2:
                raise ValueError("not an EC2 COSE_Key")
            return ec.EllipticCurvePublicNumbers(int.from_bytes(cose_key[-2], "big"),
                                                 int.from_bytes(cose_key[-3], "big"), curve()).public_key()
        return ec.EllipticCurvePublicKey.from_encoded_point(_POINT_CURVES[len(raw)](), raw)
    except Exception as exc:
        raise TokenError(f"the realm attestation key (claim 44237) is not an EC key: {exc}",
                         code="token.bad_realm_key") from None


_REQUIRED = {CLAIM_CHALLENGE: bytes, CLAIM_RPV: bytes, CLAIM_HASH_ALGO: str, CLAIM_RAK: bytes, CLAIM_RIM: bytes,
             CLAIM_REMS: (list, tuple), CLAIM_RAK_HASH_ALGO: str}


def verify_token(data, platform_keys):
    """Decode a CCA token and check it against platform_keys (PlatformKey list)."""
    platform_raw, realm_raw = _collection(data)
    r_protected, r_header, r_payload, r_signature, realm = _sign1(realm_raw, "realm")
    p_protected, p_header, p_payload, p_signature, platform = _sign1(platform_raw, "platform")
    for claim, kind in _REQUIRED.items():
        if not isinstance(realm.get(claim), kind):
            raise TokenError(f"realm claim {claim} is missing or of the wrong type", code="token.malformed")
    if not all(isinstance(rem, bytes) for rem in realm[CLAIM_REMS]) or \
            not isinstance(realm.get(CLAIM_PROFILE, ""), str) or not isinstance(realm.get(CLAIM_INSTANCE_ID, b""), bytes):
        raise TokenError("realm claims 44239 (REMs), 265 (profile) or 256 (instance id) are of the wrong type",
                         code="token.malformed")
    if not isinstance(platform.get(CLAIM_CHALLENGE), bytes):
        raise TokenError("platform claim 10 (challenge) is missing", code="token.malformed")
    result = TokenResult(realm, platform, realm[CLAIM_RIM])

    result.realm_signature = signature_ok(_realm_key(realm), r_header.get(1), r_protected, r_payload, r_signature)
    if not result.realm_signature:
        result.failures.append(("token.realm_signature", "the realm token's signature does not verify "
                                "with the realm attestation key it carries"))
    if platform_keys:
        for trust_anchor in platform_keys:
            if signature_ok(trust_anchor.key, p_header.get(1), p_protected, p_payload, p_signature):
                result.platform_signature, result.platform_key = True, trust_anchor.fingerprint
                break
        else:
            result.platform_signature = False
            result.failures.append(("token.platform_signature", "the platform token's signature does not verify "
                                    "with any configured platform key"))
    else:
        result.failures.append(("token.untrusted_platform", "no platform key is configured (--platform-key): "
                                "the platform token cannot be trusted"))
    binding_hash = BY_IANA_NAME.get(realm[CLAIM_RAK_HASH_ALGO])
    result.binding = binding_hash is not None and \
        binding_hash.new(realm[CLAIM_RAK]).digest() == platform[CLAIM_CHALLENGE]
    if not result.binding:
        result.failures.append(("token.binding", "the platform challenge is not the "
                                f"{realm[CLAIM_RAK_HASH_ALGO]} hash of the realm attestation key"))
    return result
