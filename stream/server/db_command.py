"""`voicewire db copy --from URL --to URL`: move a single-machine install to a shared database.

Copies every key (ids, secret digests, prefixes, balances, usage counts, times, revoked state),
every day of usage and every voice (ids, metadata, clip bytes) through the storage repositories, so
it works between any two backends, e.g. the SQLite file of one machine to the PostgreSQL that
replicas share. The target is migrated first and must hold nothing: copying into a database that
already has keys or voices could give one id two meanings, so it is refused, not merged. Stop the
servers on the source first: what they write during the copy may be missed.
"""

from __future__ import annotations

import argparse
import sys

from stream.storage import DatabaseUrlError, Storage, StorageUnavailable, open_storage, parse_database_url
from stream.storage.transfer import TargetNotEmpty, copy_storage


def _open(flag: str, url: str, must_exist: bool) -> Storage:
    parsed = parse_database_url(url)
    if must_exist and parsed.path is not None and not parsed.path.is_file():
        raise DatabaseUrlError(f"{flag}: there is no database file at {parsed.path}")
    return open_storage(url, "/nonexistent")   # a URL is always given: the default path is never used


def _copy(args: argparse.Namespace) -> int:
    if parse_database_url(args.source).redacted == parse_database_url(args.target).redacted:
        print("db copy: --from and --to name the same database", file=sys.stderr)
        return 2
    opened: list[Storage] = []
    try:
        opened.append(_open("--from", args.source, must_exist=True))
        opened.append(_open("--to", args.target, must_exist=False))
        source, target = opened
        copied = copy_storage(source, target)
    except (DatabaseUrlError, StorageUnavailable) as exc:
        print(f"db copy: {exc}", file=sys.stderr)
        return 2
    except TargetNotEmpty as exc:
        print(f"db copy: {exc}", file=sys.stderr)
        return 1
    finally:
        for storage in opened:
            storage.close()
    print(f"copied {copied.describe()} from {source.url.redacted} to {target.url.redacted}")
    return 0


def _url(text: str) -> str:
    try:
        parse_database_url(text)
    except DatabaseUrlError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_db_parser(sub: argparse._SubParsersAction) -> None:
    db = sub.add_parser("db", help="move the server database between backends", description=__doc__,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = db.add_subparsers(dest="db_command", required=True)
    copy = actions.add_parser("copy", help="copy keys, usage and voices into an empty database")
    copy.add_argument("--from", dest="source", required=True, type=_url,
                      help="the database to read, e.g. sqlite:///ABSOLUTE/PATH")
    copy.add_argument("--to", dest="target", required=True, type=_url,
                      help="the empty database to fill, e.g. postgresql://USER:PASSWORD@HOST:PORT/DATABASE")
    copy.set_defaults(func=_copy)
