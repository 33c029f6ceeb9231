"""fastrim index: build or refresh the reference image index."""

from ..algorithms import RIM_ALGORITHMS
from ..store import default_cache_dir
from .common import EXIT_OK, add_jobs_option, cache_dir, check_jobs, command, csv_choice, input_dir


def add_parser(sub):
    p = command(sub, "index", "build or refresh the reference image index",
                "Hash the new or changed files of a reference store (every file under DIR, any name) and save "
                "the index of their digests in the cache directory, so that verify and batch find images by "
                "the digest a log records without hashing the store again. Files whose size, mtime, ctime and "
                "inode are unchanged are not read. Run it once, and again when images change (batch refreshes "
                "it too, with every algorithm; verify hashes only what its log needs, when it needs it).",
                ["fastrim index /srv/known-good", "fastrim index refs/ --cache-dir /var/cache/fastrim --jobs 8",
                 "fastrim index refs/ --algo sha384"])
    p.add_argument("refs", metavar="DIR", help="the reference store: a directory of known-good images")
    p.add_argument("--cache-dir", default=default_cache_dir(), metavar="DIR",
                   help="where the index is kept (default: $FASTRIM_CACHE_DIR or %(default)s)")
    algos = tuple(a.name for a in RIM_ALGORITHMS)
    p.add_argument("--algo", type=csv_choice(algos), default=list(algos),
                   help=f"digest algorithms to index every image with, comma-separated: {','.join(algos)} "
                   "(default: all)")
    add_jobs_option(p, "processes hashing new or changed images")
    p.set_defaults(parser=p, run=run)


def run(args):
    from ..run.progress import file_progress
    from ..store.refs import RefStore

    check_jobs(args)
    input_dir(args.parser, "--refs", args.refs)
    from ..algorithms import BY_NAME

    store = RefStore(args.refs, cache_dir=cache_dir(args), jobs=args.jobs,
                     progress=None if args.quiet else file_progress, index={BY_NAME[name].tcg_id for name in args.algo})
    print(f"{len(store)} reference images in {store.root}, {store.hashed} hashed now; "
          f"index {store.index_path or 'not kept (no usable cache directory)'}")
    return EXIT_OK
