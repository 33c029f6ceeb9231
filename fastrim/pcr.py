"""TPM-style PCR replay of a parsed log: what the TPM's PCRs would hold after
every logged digest was extended into them."""

from .events import EV_EFI_HCRTM_EVENT, EV_NO_ACTION, REPLAYABLE_ALGS, alg_name

_STARTUP_LOCALITY = b"StartupLocality\0"
_HCRTM_LOCALITY = 4


def startup_locality(log):
    """The locality PCR0 starts from: 4 after an H-CRTM event, else the
    byte of a StartupLocality EV_NO_ACTION event, else 0."""
    locality = None
    for raw in log.framing.events:
        if raw.type == EV_EFI_HCRTM_EVENT:
            return _HCRTM_LOCALITY
        if locality is None and raw.type == EV_NO_ACTION and raw.pcr == 0 and raw.data_size == 17:
            data = bytes(log.buf[raw.data_offset : raw.data_offset + 17])
            if data.startswith(_STARTUP_LOCALITY):
                locality = data[16]
    return locality or 0


def replay(log):
    """{bank name: {pcr index: value}} for every bank the backend can hash,
    listing only PCRs, and banks, that received an extend."""
    locality = startup_locality(log)
    banks = {}
    for alg, size in log.algs:
        if alg not in REPLAYABLE_ALGS:
            continue
        result = log.impl.pcr_replay(log.buf, log.framing, alg, size, locality)
        if result is None:
            continue
        values, extended = result
        if extended:
            banks[alg_name(alg)] = {i: values[i] for i in range(24) if extended >> i & 1}
    return banks
