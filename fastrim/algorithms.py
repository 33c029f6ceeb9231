"""The one table of the hash algorithms fastrim meets: their TCG algorithm id
(TCG Algorithm Registry), RMM hash_algo, hashlib name, digest size and IANA
hash id (Named Information registry, as CoRIM and CCA tokens name them)."""

import hashlib
from typing import NamedTuple, Optional

from .errors import InputError


class HashAlgorithm(NamedTuple):
    name: str  # as rows, JSON output and PCR banks call it
    tcg_id: int  # TPM_ALG_ID in TCG event logs
    hashlib_name: str
    digest_size: int
    rmm_hash_algo: Optional[int] = None  # REALM_CREATE hash_algo; None: not a RIM algorithm
    iana_id: Optional[int] = None
    iana_name: Optional[str] = None
    pcr_replay: bool = True  # both backends can replay a PCR bank of it

    def new(self, data=b""):
        return hashlib.new(self.hashlib_name, data)


SHA1 = HashAlgorithm("sha1", 0x0004, "sha1", 20)
SHA256 = HashAlgorithm("sha256", 0x000B, "sha256", 32, rmm_hash_algo=0, iana_id=1, iana_name="sha-256")
SHA384 = HashAlgorithm("sha384", 0x000C, "sha384", 48, rmm_hash_algo=2, iana_id=7, iana_name="sha-384")
SHA512 = HashAlgorithm("sha512", 0x000D, "sha512", 64, rmm_hash_algo=1, iana_id=8, iana_name="sha-512")
SM3_256 = HashAlgorithm("sm3_256", 0x0012, "sm3", 32)
ALGORITHMS = (
    SHA1, SHA256, SHA384, SHA512, SM3_256,
    HashAlgorithm("sha3_256", 0x0027, "sha3_256", 32, pcr_replay=False),
    HashAlgorithm("sha3_384", 0x0028, "sha3_384", 48, pcr_replay=False),
    HashAlgorithm("sha3_512", 0x0029, "sha3_512", 64, pcr_replay=False),
)

BY_TCG_ID = {a.tcg_id: a for a in ALGORITHMS}
BY_NAME = {a.name: a for a in ALGORITHMS}
BY_RMM = {a.rmm_hash_algo: a for a in ALGORITHMS if a.rmm_hash_algo is not None}
BY_IANA_NAME = {a.iana_name: a for a in ALGORITHMS if a.iana_name is not None}
BY_IANA_ID = {a.iana_id: a for a in ALGORITHMS if a.iana_id is not None}
RIM_ALGORITHMS = tuple(BY_RMM.values())


def tcg_name(tcg_id):
    """The bank name of a TCG algorithm id, or alg_0xNNNN for an unknown one."""
    known = BY_TCG_ID.get(tcg_id)
    return known.name if known else f"alg_0x{tcg_id:04x}"


def rim_algorithm(tcg_id):
    """The RIM algorithm with this TCG id; InputError for any other."""
    known = BY_TCG_ID.get(tcg_id)
    if known is None or known.rmm_hash_algo is None:
        raise InputError(f"unsupported RIM algorithm 0x{tcg_id:04x}", code="input.unsupported_alg")
    return known
