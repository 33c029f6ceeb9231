"""fastrim index: build or refresh the reference image index."""

from ..store import default_cache_dir
from .common import EXIT_OK, add_jobs_option, cache_dir, check_jobs, command, input_dir


def add_parser(sub):
    p = command(sub, "index", "build or refresh the reference image index",
                "Hash the new or changed files of a reference store (every file under DIR, any name) and save "
                "the index of their digests in the cache directory, so that verify and batch find images by "
                "the digest a log records without hashing the store again. Files whose size, mtime, ctime and "
                "inode are unchanged are not read. Run it once, and again when images change (batch and "
                "verify refresh it too).",
                ["fastrim index /srv/known-good", "fastrim index refs/ --cache-dir /var/cache/fastrim --jobs 8"])
    p.add_argument("refs", metavar="DIR", help="the reference store: a directory of known-good images")
    p.add_argument("--cache-dir", default=default_cache_dir(), metavar="DIR",
                   help="where the index is kept (default: $FASTRIM_CACHE_DIR or %(default)s)")
    add_jobs_option(p, "processes hashing new or changed images")
    p.set_defaults(parser=p, run=run)


def run(args):
    from ..run.progress import file_progress
    from ..store.refs import RefStore

    check_jobs(args)
    input_dir(args.parser, "--refs", args.refs)
    store = RefStore(args.refs, cache_dir=cache_dir(args), jobs=args.jobs,
                     progress=None if args.quiet else file_progress)
    print(f"{len(store)} reference images in {store.root}, {store.hashed} hashed now; "
          f"index {store.index_path or 'not kept (no usable cache directory)'}")
    return EXIT_OK
