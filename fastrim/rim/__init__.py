"""Rebuilding the Realm Initial Measurement from decoded CCA records, per
RMM profile (replay.py); here, what the replay may be asked, for the command
line to read without loading the replay."""

PROFILES = ("1.0-rel0", "1.0-eac2", "2.0")

# Work a log may ask of the verifier; beyond it the log is refused rather
# than replayed (configurable). Image bytes, measured or not: 64 GiB is ~16 M
# descriptors, seconds of C. RIPAS blocks: a whole 52-bit IPA space splits
# into a few thousand, so a million only comes from a log repeating them.
DEFAULT_MAX_MEASURED_BYTES = 64 << 30
DEFAULT_MAX_RIPAS_BLOCKS = 1 << 20
MAX_LIMIT = (1 << 63) - 1  # the largest limit either may be set to
