"""Synthetic launches: the QEMU log writer (synth.py) and the fleet with
known verdicts behind `fastrim synth` and `fastrim demo` (fleet.py)."""
