"""cffi build script for fastrim._native (out-of-line API mode).

The declarations live in csrc/fastrim.h so that C and cffi read one text.
"""

import pathlib

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent
CSRC = HERE / "csrc"

ffibuilder = FFI()
ffibuilder.cdef(
    "\n".join(
        line
        for line in (CSRC / "fastrim.h").read_text().splitlines()
        if not line.startswith("#")
    )
)
ffibuilder.set_source(
    "fastrim._native",
    '#include "fastrim.h"',
    sources=["csrc/fastrim.c"],
    include_dirs=["csrc"],
    libraries=["crypto"],
    # The low-level SHA*_Init calls are deprecated in OpenSSL 3 but are
    # the fastest path for the short messages of a replay.
    extra_compile_args=["-O3", "-std=c99", "-Wall", "-Wextra", "-Wno-deprecated-declarations"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
