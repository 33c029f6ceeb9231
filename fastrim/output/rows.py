"""The result row: one per log, always, built from a Verdict; the one
definition of its columns and their Arrow types. Output formats read rows;
nothing here reads them back."""

from .. import __version__
from ..evidence import claims
from ..log.cca import REALM_PARAMS
from ..verifier import ERROR, Verdict

# The realm parameters as columns: hash_algo is a column of its own, by name.
REALM_COLUMNS = tuple((name, code) for name, code in REALM_PARAMS if name != "hash_algo")


def row(verdict, root=None):
    """The result row of a Verdict: flat fields, digests as bytes. root is
    the LOGS directory the log was found under (its name is relative to it)."""
    vmm, realm = verdict.vm_version, verdict.realm
    return {
        "log": verdict.log,
        "root": root,
        "status": verdict.status,
        "error_code": verdict.error_code,
        "detail": verdict.detail,
        "hash_algo": verdict.hash_algo,
        "rim": verdict.rim,
        "expected_rim": verdict.expected_rim,
        "rim_source": verdict.rim_source,
        "endorsed": verdict.endorsed,
        "endorsed_by": verdict.endorsed_by,
        "explain": verdict.explain,
        "vmm_name": vmm.name if vmm else None,
        "vmm_version": vmm.version if vmm else None,
        "ram_size": vmm.ram_size if vmm else None,
        "num_cpus": vmm.num_cpus if vmm else None,
        **{name: getattr(realm, name) if realm else None for name, _ in REALM_COLUMNS},
        "images": [
            {
                "description": image.description,
                "base": image.base,
                "size": image.size,
                "digest": image.digest,
                "reference": ref.name if ref is not None else None,
            }
            for image, ref in verdict.images
        ],
        "unknown_images": [image.digest for image, ref in verdict.images if image.digest is not None and ref is None],
        "steps": [{"label": label, "rim": value} for label, value in verdict.steps],
        "events": verdict.events,
        "granules": verdict.granules,
        "bytes_hashed": verdict.bytes_hashed,
        "cache_hits": verdict.cache_hits,
        "memo_hits": verdict.memo_hits,
        "reused": verdict.reused,
        **_token_columns(verdict.token),
        "elapsed_ms": round(verdict.elapsed_ms, 3),
        "backend": verdict.backend,
    }


def _token_columns(result):
    """What an auditor wants of the token: the checks and the realm claims."""
    realm = result.realm_claims if result is not None else {}
    return {
        "token_realm_signature": result.realm_signature if result else None,
        "token_platform_signature": result.platform_signature if result else None,
        "token_binding": result.binding if result else None,
        "token_platform_key": result.platform_key if result else None,
        "realm_profile": realm.get(claims.CLAIM_PROFILE),
        "realm_challenge": realm.get(claims.CLAIM_CHALLENGE),
        "realm_rpv": realm.get(claims.CLAIM_RPV),
        "realm_rems": list(realm[claims.CLAIM_REMS]) if claims.CLAIM_REMS in realm else None,
        "realm_hash_algo": realm.get(claims.CLAIM_HASH_ALGO),
        "realm_instance_id": realm.get(claims.CLAIM_INSTANCE_ID),
    }


def internal_row(log_file, code, detail, backend):
    """The row of a log (a run.work.LogFile) that no verdict could be had
    for: its worker crashed or raised."""
    return row(Verdict(log_file.name, ERROR, error_code=code, detail=detail, backend=backend), log_file.root)


def run_columns(run_id, run_at, host):
    """The columns every row of one run shares, so that nights can be told
    apart and compared: a UUID, when it started (an aware datetime), where."""
    return {"run_id": run_id, "run_at": run_at, "host": host, "fastrim_version": __version__}


def arrow_schema(metadata=None):
    """The rows' Arrow schema (pyarrow loads here, only for the commands that write Parquet)."""
    import pyarrow as pa

    text = pa.dictionary(pa.int32(), pa.string())  # low-cardinality strings
    ints = {"Q": pa.uint64(), "B": pa.uint8()}
    schema = pa.schema([
        pa.field("log", pa.string(), nullable=False),
        ("root", text),
        pa.field("status", text, nullable=False),
        ("error_code", text),
        ("detail", pa.string()),
        ("hash_algo", text),
        ("rim", pa.binary()),
        ("expected_rim", pa.binary()),
        ("rim_source", text),
        ("endorsed", pa.bool_()),
        ("endorsed_by", text),
        ("explain", pa.string()),
        ("vmm_name", text),
        ("vmm_version", text),
        ("ram_size", pa.uint64()),
        ("num_cpus", pa.uint32()),
        *((name, ints[code]) for name, code in REALM_COLUMNS),
        ("images", pa.list_(pa.struct([
            ("description", pa.string()),
            ("base", pa.uint64()),
            ("size", pa.uint64()),
            ("digest", pa.binary()),
            ("reference", pa.string()),
        ]))),
        ("unknown_images", pa.list_(pa.binary())),
        ("steps", pa.list_(pa.struct([("label", pa.string()), ("rim", pa.binary())]))),
        ("events", pa.uint32()),
        ("granules", pa.uint64()),
        ("bytes_hashed", pa.uint64()),
        ("cache_hits", pa.uint32()),
        ("memo_hits", pa.uint32()),
        ("reused", pa.bool_()),
        ("token_realm_signature", pa.bool_()),
        ("token_platform_signature", pa.bool_()),
        ("token_binding", pa.bool_()),
        ("token_platform_key", pa.string()),
        ("realm_profile", text),
        ("realm_challenge", pa.binary()),
        ("realm_rpv", pa.binary()),
        ("realm_rems", pa.list_(pa.binary())),
        ("realm_hash_algo", text),
        ("realm_instance_id", pa.binary()),
        ("elapsed_ms", pa.float64()),
        ("backend", text),
        ("run_id", text),
        ("run_at", pa.timestamp("us", tz="UTC")),
        ("host", text),
        ("fastrim_version", text),
    ])
    return schema.with_metadata(metadata) if metadata else schema
