"""fastrim bench: the measurement algorithms' throughput table."""

import json

from ..algorithms import RIM_ALGORITHMS
from ..backend import select
from .common import EXIT_OK, command, csv_choice, int_in

MAX_MIB = 16 << 10  # the image is built in memory
MAX_REPEAT = 1000


def add_parser(sub):
    algos = tuple(a.name for a in RIM_ALGORITHMS)
    p = command(sub, "bench", "measurement-algorithm throughput table",
                "Time the RIM replay of one image through the verification pipeline, per algorithm and backend: "
                "cold (granule contents hashed), warm (content hashes from the cache) and the descriptor chain "
                "alone, as GB/s and as a ratio to hashlib hashing the same bytes in one call in the same run. "
                "The hash kernel that ran is named; the machine's CPU is yours to name with the figures.",
                ["fastrim bench", "fastrim bench --algo sha512 --mib 256 --repeat 5 --backend cffi,python",
                 "fastrim bench --kernels --mib 256"])
    p.add_argument("--algo", type=csv_choice(algos), default=list(algos),
                   help=f"comma-separated: {','.join(algos)} (default: all)")
    p.add_argument("--backend", type=csv_choice(select.NAMES), default=[select.active.NAME],
                   help="comma-separated: cffi,python (default the active one)")
    p.add_argument("--mib", type=int_in(1, MAX_MIB), default=64,
                   help=f"image size in MiB, 1 to {MAX_MIB} (default %(default)s)")
    p.add_argument("--repeat", type=int_in(1, MAX_REPEAT), default=3,
                   help=f"runs per case, 1 to {MAX_REPEAT}; the best counts (default %(default)s)")
    p.add_argument("--kernels", action="store_true",
                   help="every granule hashing kernel of the C backend instead: its self-test on this CPU, and "
                   "cold and warm replays with it forced (default: the kernel the dispatcher picks)")
    p.add_argument("--json", action="store_true", help="JSON lines, one per row (default: a table)")
    p.set_defaults(parser=p, run=run)


def run(args):
    from .. import bench

    if args.kernels:
        rows = bench.measure_kernels(args.algo, mib=args.mib, repeat=args.repeat)
    else:
        rows = bench.measure(args.algo, args.backend, mib=args.mib, repeat=args.repeat)
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        print(f"{args.mib} MiB image, best of {args.repeat}; ratio = throughput / hashlib one call on the same bytes")
        print(bench.format_table(rows))
    return EXIT_OK
