"""Endorsed RIMs as reference values: Arm CCA realm CoRIM (profile
tag:arm.com,2025:cca_realm#1.0.0, as Veraison reads them) in and out.

In: a CoRIM in CBOR, unsigned (tag 501) or signed (COSE_Sign1, tag 18,
around the tagged CoRIM), or a CoMID in the JSON that Veraison's cocli
compiles, in its current form (class-id and `cca.rim` digests) or the older
one (`instance` and `integrity-registers`), read into Endorsements: every
RIM a reference-value triple holds, and the file that endorsed it.

Out: the CoRIM (or CoMID JSON) of the RIMs replayed from golden logs, one
reference-value triple per distinct RIM: class-id the RIM as tagged bytes
(tag 560), measurement `cca.rim` with the digest [IANA hash id, RIM], and
`cca.rpv` as a raw value when given. The same RIMs give the same bytes.

A realm is endorsed when its replayed RIM is one of the set, or a set
value is that RIM followed only by zero bytes to 48 or 64 (the RMM's 64-byte
measurement field), as for attested RIMs."""

import base64
import binascii
import hashlib
import json
import uuid
from collections.abc import Mapping

from ..algorithms import BY_IANA_ID, BY_IANA_NAME
from ..errors import FastrimError, InputError
from ..store.files import read_bounded
from . import jsontext
from .expected import RIM_SIZES, rim_forms

PROFILE = "tag:arm.com,2025:cca_realm#1.0.0"
TAG_CORIM, TAG_COMID, TAG_URI, TAG_BYTES, TAG_SIGN1 = 501, 506, 32, 560, 18
CONTENT_TYPE = "application/rim+cbor"
MAX_REFVALS_SIZE = 16 << 20
# CoRIM / CoMID map keys (draft-ietf-rats-corim)
_CORIM_ID, _CORIM_TAGS, _CORIM_PROFILE = 0, 1, 3
_COMID_IDENTITY, _COMID_TRIPLES, _TAG_ID = 1, 4, 0
_REFERENCE_TRIPLES = 0
_ENV_CLASS, _CLASS_ID = 0, 0
_MKEY, _MVAL, _DIGESTS, _RAW_VALUE = 0, 1, 2, 4
RIM_KEY, RPV_KEY = "cca.rim", "cca.rpv"


class Endorsements:
    """RIMs endorsed by reference-value files: plain data, sent to workers."""

    def __init__(self, by_rim=None):
        self.by_rim = dict(by_rim or {})  # RIM as the file holds it -> the file

    def add(self, rims, source):
        for rim in rims:
            self.by_rim.setdefault(rim, source)

    def endorser(self, rim):
        """The file that endorses a replayed RIM, or None."""
        return next((self.by_rim[form] for form in rim_forms(rim) if form in self.by_rim), None)


def _bad(path, reason):
    return InputError(f"--refvals {path}: {reason}", code="input.bad_refvals")


def read_refvals(path, keys=()):
    """The RIMs a CoRIM or CoMID file endorses (a list, at least one). keys
    (token.PlatformKey list): a CBOR file must then be a signed CoRIM that
    one of them verifies. InputError input.bad_refvals says what is wrong."""
    try:
        data = read_bounded(path, MAX_REFVALS_SIZE)
    except FastrimError as exc:
        raise _bad(path, exc.args[0]) from None
    text = data.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark before JSON
    try:
        if text.lstrip()[:1] == b"{":
            if keys:
                raise _bad(path, "is CoMID JSON, which carries no signature, and --refvals-key asks for one")
            rims = _comid_json_rims(path, jsontext.loads(text.decode("utf-8", "replace"), f"--refvals {path}",
                                                         "input.bad_refvals"))
        else:
            rims = _corim_rims(path, data, keys)
    except FastrimError:
        raise
    except (TypeError, AttributeError, KeyError, IndexError, ValueError) as exc:
        # Every shape is checked on the way; this is the net under a hostile file's other shapes.
        raise _bad(path, f"is not a CCA realm CoRIM or CoMID ({type(exc).__name__}: {exc})") from None
    if not rims:
        raise _bad(path, f"no reference-value triple with a {RIM_KEY} measurement")
    return rims


# ---- CBOR ------------------------------------------------------------------

def _strict(path, raw, what):
    from .token import strict_loads

    try:
        return strict_loads(raw, what)
    except FastrimError as exc:
        raise _bad(path, exc.args[0]) from None


def _corim_rims(path, data, keys):
    import cbor2

    top = _strict(path, data, "CoRIM")
    if isinstance(top, cbor2.CBORTag) and top.tag == TAG_SIGN1:
        top = _signed_corim(path, top, keys)
    elif keys:
        raise _bad(path, "is not signed (a COSE_Sign1 CoRIM), and --refvals-key asks for a signature")
    if not (isinstance(top, cbor2.CBORTag) and top.tag == TAG_CORIM and isinstance(top.value, Mapping)):
        raise _bad(path, "is neither a CoRIM (CBOR tag 501), a signed CoRIM (tag 18) nor CoMID JSON")
    corim = top.value
    profile = corim.get(_CORIM_PROFILE)
    profile = profile.value if isinstance(profile, cbor2.CBORTag) and profile.tag == TAG_URI else profile
    if profile != PROFILE:
        raise _bad(path, f"has profile {profile!r}, not the CCA realm profile {PROFILE}")
    rims = []
    for tag in _list(path, corim.get(_CORIM_TAGS), "its tags"):
        if isinstance(tag, cbor2.CBORTag) and tag.tag == TAG_COMID and isinstance(tag.value, bytes):
            rims += _comid_rims(path, _strict(path, tag.value, "CoMID"))
    return rims


def _signed_corim(path, message, keys):
    """The tagged CoRIM a COSE_Sign1 carries, its signature checked with keys when there are any."""
    from .token import signature_ok

    parts = message.value
    if not (isinstance(parts, (list, tuple)) and len(parts) == 4 and all(
            isinstance(part, kind) for part, kind in zip(parts, (bytes, Mapping, bytes, bytes)))):
        raise _bad(path, "its COSE_Sign1 is not [protected, unprotected, payload, signature]")
    protected, _, payload, signature = parts
    header = _strict(path, protected, "COSE protected header") if protected else {}
    if not isinstance(header, Mapping):
        raise _bad(path, "its COSE protected header is not a map")
    if keys and not any(signature_ok(k.key, header.get(1), protected, payload, signature) for k in keys):
        raise _bad(path, "its signature does not verify with any --refvals-key")
    return _strict(path, payload, "signed CoRIM payload")


def _comid_rims(path, comid):
    if not isinstance(comid, Mapping) or not isinstance(comid.get(_COMID_TRIPLES), Mapping):
        raise _bad(path, "holds a CoMID without triples")
    rims = []
    for triple in _list(path, comid[_COMID_TRIPLES].get(_REFERENCE_TRIPLES), "its reference-value triples"):
        if not (isinstance(triple, (list, tuple)) and len(triple) == 2 and isinstance(triple[1], (list, tuple))):
            raise _bad(path, "holds a reference-value triple that is not [environment, measurements]")
        environment, measurements = triple
        digests = [m[_MVAL].get(_DIGESTS) for m in measurements if isinstance(m, Mapping)
                   and m.get(_MKEY) == RIM_KEY and isinstance(m.get(_MVAL), Mapping)]
        class_id = _class_id(path, environment)
        rims.append(_triple_rim(path, [(d[0], d[1]) for entries in digests for d in _pairs(path, entries)],
                                class_id))
    return rims


def _list(path, value, what):
    """value as a list (None: empty); a usage error when it is something else."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise _bad(path, f"has {what} as a {type(value).__name__}, not an array")
    return value


def _pairs(path, entries):
    if not isinstance(entries, (list, tuple)) or not all(
            isinstance(d, (list, tuple)) and len(d) == 2 and isinstance(d[1], bytes) for d in entries):
        raise _bad(path, f"has a {RIM_KEY} whose digests are not [[alg, bytes], ...]")
    return entries


def _class_id(path, environment):
    """The RIM a class-id names (tagged bytes), or None for a class-id of another kind, or none."""
    import cbor2

    if not isinstance(environment, Mapping):
        raise _bad(path, "has a reference-value environment that is not a map")
    named = environment.get(_ENV_CLASS)
    class_id = named.get(_CLASS_ID) if isinstance(named, Mapping) else None
    if not (isinstance(class_id, cbor2.CBORTag) and class_id.tag == TAG_BYTES):
        return None
    if not isinstance(class_id.value, bytes):
        raise _bad(path, "has a tagged-bytes class-id that does not hold bytes")
    return class_id.value


def _triple_rim(path, digests, class_id):
    """The RIM one triple endorses: its single cca.rim digest, which a RIM
    class-id (when there is one) must equal."""
    if not digests:
        raise _bad(path, f"has a reference-value triple without a {RIM_KEY} digest")
    if len(digests) != 1:
        raise _bad(path, f"has a {RIM_KEY} with {len(digests)} digests, not one")
    alg, rim = digests[0]
    if isinstance(alg, bool) or not isinstance(alg, (int, str)):
        raise _bad(path, f"has a {RIM_KEY} digest whose hash algorithm is {alg!r}, not an IANA id or name")
    algorithm = BY_IANA_ID.get(alg) if isinstance(alg, int) else BY_IANA_NAME.get(alg)
    if algorithm is None or algorithm.rmm_hash_algo is None:
        raise _bad(path, f"has a {RIM_KEY} digest with hash algorithm {alg!r}, not sha-256, sha-384 or sha-512")
    if len(rim) not in RIM_SIZES or len(rim) < algorithm.digest_size:
        raise _bad(path, f"has a {len(rim)}-byte {RIM_KEY} for {algorithm.iana_name}")
    if class_id is not None and class_id != rim:
        what = f"a {len(class_id)}-byte class-id" if len(class_id) not in RIM_SIZES else "a class-id"
        raise _bad(path, f"has {what} that is not the {RIM_KEY} digest it describes")
    return rim


# ---- CoMID JSON ------------------------------------------------------------

def _b64(path, text):
    if not isinstance(text, str):
        raise _bad(path, "has a base64 value that is not a string")
    try:
        return base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _bad(path, f"has a value that is not base64: {text[:40]!r}") from None


def _json_digest(path, entry):
    """(alg, bytes) of a digest written [alg id, base64] or "name;base64"."""
    if isinstance(entry, list) and len(entry) == 2:
        return entry[0], _b64(path, entry[1])
    if isinstance(entry, str) and ";" in entry:
        name, value = entry.split(";", 1)
        return name, _b64(path, value)
    raise _bad(path, f"has a digest that is neither [alg, base64] nor \"alg;base64\": {str(entry)[:40]!r}")


def _comid_json_rims(path, doc):
    if not isinstance(doc, dict):
        raise _bad(path, "is not a CoMID JSON object")
    triples = doc.get("triples")
    if not isinstance(triples, dict):
        raise _bad(path, "has no triples (a CoRIM template names no reference values: give its CoMIDs)")
    rims = []
    for triple in _list(path, triples.get("reference-values"), "reference-values"):
        if not isinstance(triple, dict) or not isinstance(triple.get("measurements"), list):
            raise _bad(path, "has a reference value without measurements")
        digests = []
        for measurement in triple["measurements"]:
            value = measurement.get("value") if isinstance(measurement, dict) else None
            if not isinstance(value, dict):
                continue
            key = measurement.get("key")
            if isinstance(key, dict) and key.get("value") == RIM_KEY:
                digests += [_json_digest(path, d) for d in _list(path, value.get("digests"), "digests")]
            registers = value.get("integrity-registers")  # the older form: rim among rem0..3
            if isinstance(registers, dict) and isinstance(registers.get("rim"), dict):
                digests += [_json_digest(path, d) for d in _list(path, registers["rim"].get("value"), "rim")]
        environment = triple.get("environment") if isinstance(triple.get("environment"), dict) else {}
        rims.append(_triple_rim(path, digests, _json_class_id(path, environment)))
    return rims


def _json_class_id(path, environment):
    """The RIM an environment names: class.id of type bytes, or (older form) instance."""
    named_class = environment.get("class")
    for holder in ((named_class.get("id") if isinstance(named_class, dict) else None), environment.get("instance")):
        if isinstance(holder, dict) and holder.get("type") == "bytes":
            return _b64(path, holder.get("value"))
    return None


# ---- out -------------------------------------------------------------------

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/fastrim/refvals")


def _identity(rims, rpv):
    """A name-based UUID (version 5) of the content: the same RIMs give the same tag-id."""
    name = ";".join(f"{algorithm.iana_id}:{rim.hex()}" for algorithm, rim in rims) + f";rpv:{(rpv or b'').hex()}"
    return uuid.uuid5(_NAMESPACE, name)


def corim(rims, rpv=None):
    """The unsigned CoRIM (tag 501) of rims, (HashAlgorithm, RIM) pairs
    (sorted and made distinct here), with one CoMID, as canonical CBOR."""
    import cbor2

    rims = sorted(set(rims), key=lambda pair: pair[1])
    identity = _identity(rims, rpv)
    triples = []
    for algorithm, rim in rims:
        measurements = [{_MKEY: RIM_KEY, _MVAL: {_DIGESTS: [[algorithm.iana_id, rim]]}}]
        if rpv is not None:
            measurements.append({_MKEY: RPV_KEY, _MVAL: {_RAW_VALUE: cbor2.CBORTag(TAG_BYTES, rpv)}})
        triples.append([{_ENV_CLASS: {_CLASS_ID: cbor2.CBORTag(TAG_BYTES, rim)}}, measurements])
    comid = {_COMID_IDENTITY: {_TAG_ID: identity.bytes}, _COMID_TRIPLES: {_REFERENCE_TRIPLES: triples}}
    body = {
        _CORIM_ID: f"fastrim-refvals-{identity}",
        _CORIM_TAGS: [cbor2.CBORTag(TAG_COMID, cbor2.dumps(comid, canonical=True))],
        _CORIM_PROFILE: cbor2.CBORTag(TAG_URI, PROFILE),
    }
    return cbor2.dumps(cbor2.CBORTag(TAG_CORIM, body), canonical=True)


def comid_json(rims, rpv=None):
    """The CoMID of rims in the JSON form Veraison's cocli compiles."""
    rims = sorted(set(rims), key=lambda pair: pair[1])

    def b64(value, padded=True):  # as Veraison's samples write them: class-ids padded, digests not
        text = base64.b64encode(value).decode()
        return text if padded else text.rstrip("=")

    values = []
    for algorithm, rim in rims:
        measurements = [{"key": {"type": "string", "value": RIM_KEY},
                         "value": {"digests": [[algorithm.iana_id, b64(rim, padded=False)]]}}]
        if rpv is not None:
            measurements.append({"key": {"type": "string", "value": RPV_KEY},
                                 "value": {"raw-value": {"type": "bytes", "value": b64(rpv)}}})
        values.append({"environment": {"class": {"id": {"type": "bytes", "value": b64(rim)}}},
                       "measurements": measurements})
    doc = {"tag-identity": {"id": str(_identity(rims, rpv)).upper(), "version": 0},
           "triples": {"reference-values": values}}
    return json.dumps(doc, indent=2) + "\n"


SIGNER = "fastrim"


def sign(corim_bytes, private_key):
    """corim_bytes (a tagged CoRIM) as a signed CoRIM: COSE_Sign1 (tag 18),
    ES256/ES384/ES512 by the key's curve, whose protected header holds what
    Veraison requires: alg, content type application/rim+cbor, kid (the
    SHA-256 of the public key's SubjectPublicKeyInfo) and corim-meta (the
    signer's name). Deterministic ECDSA (RFC 6979): the same bytes each time."""
    import cbor2
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    alg, hash_type, size = _cose_alg(private_key)
    spki = private_key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
    meta = cbor2.dumps({0: {0: SIGNER}}, canonical=True)  # corim-meta: {signer: {signer-name}}
    protected = cbor2.dumps({1: alg, 3: CONTENT_TYPE, 4: hashlib.sha256(spki).digest(), 8: meta}, canonical=True)
    to_be_signed = cbor2.dumps(["Signature1", protected, b"", corim_bytes])
    der = private_key.sign(to_be_signed, ec.ECDSA(hash_type(), deterministic_signing=True))
    r, s = utils.decode_dss_signature(der)
    signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    return cbor2.dumps(cbor2.CBORTag(TAG_SIGN1, [protected, {}, corim_bytes, signature]))


def load_signing_key(path):
    """An EC private key from a PEM file or a JWK with "d"; InputError input.bad_key otherwise."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from .token import JWK_CURVES, b64url, read_platform_key

    raw = read_platform_key(path)
    try:
        if raw.lstrip().startswith(b"{"):
            jwk = jsontext.loads(raw.decode("utf-8", "replace"), f"--sign {path}", "input.bad_key")
            if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") not in JWK_CURVES \
                    or "d" not in jwk:
                raise ValueError("only private EC JWKs (with d) on P-256, P-384 or P-521")
            key = ec.derive_private_key(int.from_bytes(b64url(jwk["d"]), "big"), JWK_CURVES[jwk["crv"]]())
        else:
            key = serialization.load_pem_private_key(raw, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("not an EC private key")
        _cose_alg(key)
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"--sign {path} is not a usable EC private key: {exc}", code="input.bad_key") from None
    return key


def _cose_alg(private_key):
    """(COSE alg, hash, bytes of r and of s) for the key's curve; ValueError for a curve COSE's ECDSA lacks."""
    from .token import COSE_ALGS

    for alg, (hash_type, curve, size) in COSE_ALGS.items():
        if isinstance(private_key.curve, curve):
            return alg, hash_type, size
    raise ValueError(f"curve {private_key.curve.name} is not P-256, P-384 or P-521")
