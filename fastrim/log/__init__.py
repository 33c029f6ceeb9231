"""Reading a log: TCG framing on top of the live backend (tcg.py), TPM-style
PCR replay (pcr.py) and the QEMU Arm CCA events it carries (cca.py)."""
