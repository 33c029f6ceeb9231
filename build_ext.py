"""cffi build script for fastrim._native (out-of-line API mode).

The declarations live in csrc/fastrim.h so that C and cffi read one text.
"""

import os
import pathlib

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent
CSRC = HERE / "csrc"

# FASTRIM_SANITIZE=1 builds with AddressSanitizer and UndefinedBehaviorSanitizer
# (for .ci/run's sanitizer job; load with LD_PRELOAD=$(gcc -print-file-name=libasan.so)).
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"]
sanitize = SANITIZE if os.environ.get("FASTRIM_SANITIZE") == "1" else []

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
    sources=[f"csrc/{name}.c" for name in ("framing", "pcr", "hash", "rim", "kernels", "sha2", "lanes_shani",
                                                       "lanes_avx2", "lanes_avx512")],
    include_dirs=["csrc"],
    libraries=["crypto", "pthread"],  # pthread_once (in libc since glibc 2.34, a library before)
    # The low-level SHA*_Init calls are deprecated in OpenSSL 3 but are
    # the fastest path for the short messages of a replay. Hidden
    # visibility: the module exports its init function, not the C core.
    extra_compile_args=["-O3", "-std=c11", "-Wall", "-Wextra", "-Wno-deprecated-declarations",
                        "-fvisibility=hidden", *sanitize],
    extra_link_args=sanitize,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
