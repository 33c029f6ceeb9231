"""The fastrim command line: main.py assembles the parser from one module
per command; each imports what it needs (pyarrow, cryptography, cbor2,
multiprocessing) only when it runs, so that a one-log command starts fast."""

from .main import main

__all__ = ["main"]
