"""TPM-style PCR replay of a parsed log: what the TPM's PCRs would hold after
every logged digest was extended into them."""

from ..algorithms import BY_TCG_ID
from ..backend.contract import PCR_COUNT


def startup_locality(log):
    """The locality PCR0 starts from: 4 after an H-CRTM event, else the
    byte of a StartupLocality EV_NO_ACTION event, else 0."""
    return log.impl.startup_locality(log.buf, log.framing)


def replay_pcrs(log):
    """{bank name: {pcr index: value}} for every bank the backend can hash,
    listing only PCRs, and banks, that received an extend."""
    locality = startup_locality(log)
    banks = {}
    for alg, size in log.algs:
        known = BY_TCG_ID.get(alg)
        if known is None or not known.pcr_replay:
            continue
        result = log.impl.pcr_replay(log.buf, log.framing, alg, size, locality)
        if result is None:
            continue
        values, extended = result
        if extended:
            banks[known.name] = {i: values[i * size : (i + 1) * size] for i in range(PCR_COUNT) if extended >> i & 1}
    return banks
