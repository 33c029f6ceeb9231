"""The framing and hashing core: one contract (contract.py), two backends
(native.py over the C core, fallback.py in pure Python), and the choice of
the live one (select.py)."""
