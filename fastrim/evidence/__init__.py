"""What a log's RIM is compared with: attestation tokens (token.py, claim
keys in claims.py) and plain expected values from flags, sidecars and
--expected files (expected.py)."""
