"""fastrim index: build or refresh the reference image index."""

from ..store import default_cache_dir
from .common import EXIT_OK, add_jobs_option


def add_parser(sub):
    p = sub.add_parser("index", help="build or refresh the reference image index",
                       description="Hash new or changed files of a reference store and save the index.")
    p.add_argument("refs", metavar="DIR")
    p.add_argument("--cache-dir", default=default_cache_dir(), metavar="DIR")
    add_jobs_option(p, "processes hashing new or changed images")
    p.set_defaults(parser=p, run=run)


def run(args):
    from ..store.refs import RefStore

    store = RefStore(args.refs, cache_dir=args.cache_dir, jobs=args.jobs)
    print(f"{len(store)} reference images in {store.root}, {store.hashed} hashed now; index {store.index_path}")
    return EXIT_OK
