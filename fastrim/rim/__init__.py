"""Rebuilding the Realm Initial Measurement from decoded CCA records, per
RMM profile (replay.py)."""
