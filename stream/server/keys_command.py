"""`voicewire keys create|list|revoke|add-credits|usage`: manage API keys in the server database.

Works on the database `--database-url` names (default `VOICEWIRE_DATABASE_URL`, else the SQLite
file under `--data-dir`: `VOICEWIRE_DATA_DIR`, else ~/.voicewire), also while servers run on it:
they see a new key at once and stop accepting a revoked one within a second. `create` prints the
new key alone on stdout (it is shown only this once) and its details on stderr, so
`KEY=$(voicewire keys create)` works in scripts.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys

from stream.accounts.keys import create_key
from stream.settings import from_env
from stream.storage import ApiKey, DatabaseUrlError, Storage, StorageUnavailable, open_storage


def _storage(args: argparse.Namespace) -> Storage:
    settings = from_env()
    if args.data_dir:
        settings.data_dir = args.data_dir
    if args.database_url:
        settings.database_url = args.database_url
    return open_storage(settings.database_url, settings.database_path)


def _describe(key: ApiKey) -> str:
    credits = "unlimited" if key.credits is None else f"{key.credits} credits"
    state = f"revoked {key.revoked_at}" if key.revoked_at else "active"
    return (f"{key.id}  {key.prefix}...  {key.name or '-'}  {credits}  {key.characters_used} characters used  "
            f"created {key.created_at}  {state}")


def _create(args: argparse.Namespace, storage: Storage) -> int:
    key, secret = create_key(storage.keys, name=args.name, credits=args.credits)
    if args.json:
        print(json.dumps({**key.to_json(), "key": secret}))
    else:
        print(secret)
        print(f"created {_describe(key)}\nthe key above is shown only now; store it safely", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace, storage: Storage) -> int:
    keys = storage.keys.list()
    if args.json:
        print(json.dumps([k.to_json() for k in keys]))
    elif not keys:
        print("no keys (the server runs open)", file=sys.stderr)
    for key in [] if args.json else keys:
        print(_describe(key))
    return 0


def _revoke(args: argparse.Namespace, storage: Storage) -> int:
    if storage.keys.revoke(args.key_id):
        print(f"revoked {args.key_id}")
        return 0
    key = storage.keys.get(args.key_id)
    print(f"keys revoke: {args.key_id} " + ("is already revoked" if key else "does not exist"), file=sys.stderr)
    return 1


def _add_credits(args: argparse.Namespace, storage: Storage) -> int:
    try:
        balance = storage.keys.add_credits(args.key_id, args.amount)
    except (KeyError, ValueError) as exc:
        print(f"keys add-credits: {exc.args[0]}", file=sys.stderr)
        return 1
    print(f"{args.key_id}: {balance} credits")
    return 0


def _usage(args: argparse.Namespace, storage: Storage) -> int:
    if storage.keys.get(args.key_id) is None:
        print(f"keys usage: {args.key_id} does not exist", file=sys.stderr)
        return 1
    days = storage.usage.daily(args.key_id, since=args.since)
    if args.json:
        print(json.dumps([d.to_json() for d in days]))
        return 0
    for day in days:
        print(f"{day.day}  {day.characters} characters  ({day.charged} charged, {day.refunded} refunded)")
    if not days:
        print(f"no usage for {args.key_id}", file=sys.stderr)
    return 0


def _day(text: str) -> str:
    try:
        return datetime.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError("must be a date, YYYY-MM-DD") from None


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def add_keys_parser(sub: argparse._SubParsersAction) -> None:
    keys = sub.add_parser("keys", help="manage API keys and credits", description=__doc__,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = keys.add_subparsers(dest="keys_command", required=True)

    def action(name: str, func, help: str) -> argparse.ArgumentParser:
        def run(args: argparse.Namespace) -> int:
            try:
                storage = _storage(args)
            except (DatabaseUrlError, StorageUnavailable) as exc:
                print(f"keys {name}: {exc}", file=sys.stderr)
                return 2
            try:
                return func(args, storage)
            except StorageUnavailable as exc:
                print(f"keys {name}: {exc}", file=sys.stderr)
                return 2
            finally:
                storage.close()

        parser = actions.add_parser(name, help=help)
        parser.add_argument("--data-dir", dest="data_dir", help="server data directory (default ~/.voicewire)")
        parser.add_argument("--database-url", dest="database_url",
                            help="the server database, sqlite:///ABSOLUTE/PATH or "
                                 "postgresql://USER:PASSWORD@HOST:PORT/DATABASE (default <data-dir>/voicewire.sqlite3)")
        parser.set_defaults(func=run)
        return parser

    create = action("create", _create, "create a key and print it (once)")
    create.add_argument("--name", help="a label for the key")
    create.add_argument("--credits", type=_non_negative,
                        help="starting balance in credits (1 per character synthesized); omit for unlimited")
    create.add_argument("--json", action="store_true", help="print the key and its record as JSON")
    listing = action("list", _list, "list keys (never their secrets)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    revoke = action("revoke", _revoke, "revoke a key (it stays listed)")
    revoke.add_argument("key_id", help="the key's id (key_...)")
    add = action("add-credits", _add_credits, "add credits to a metered key (negative to take away)")
    add.add_argument("key_id", help="the key's id (key_...)")
    add.add_argument("amount", type=int, help="credits to add")
    usage = action("usage", _usage, "characters billed to a key per UTC day")
    usage.add_argument("key_id", help="the key's id (key_...)")
    usage.add_argument("--since", type=_day, help="first day to show, YYYY-MM-DD (default: all)")
    usage.add_argument("--json", action="store_true", help="print JSON")
