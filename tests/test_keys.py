"""The key store: only hashes on disk, the key lifecycle, and atomic credit charges under concurrency."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from stream.accounts.auth import Authenticator, Caller
from stream.accounts.keys import KeyStore
from stream.core.errors import InsufficientCredits, Unauthorized


@pytest.fixture
def store(tmp_path) -> KeyStore:
    return KeyStore(tmp_path / "voicewire.sqlite3")


def test_no_database_file_until_a_key_is_created(store):
    assert store.list() == [] and not store.has_keys() and store.lookup("vw_anything") is None
    assert not store.path.exists()
    store.create()
    assert store.path.exists()


def test_only_a_hash_of_the_key_is_stored(store, tmp_path):
    key, secret = store.create(name="ops", credits=10)
    assert secret.startswith("vw_") and len(secret) > 40
    assert key.prefix == secret[:8] and key.credits == 10 and key.name == "ops"
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("voicewire.sqlite3"))
    assert secret.encode() not in raw and secret[8:].encode() not in raw


def test_lifecycle_create_lookup_revoke(store):
    key, secret = store.create()
    assert store.lookup(secret).id == key.id and store.lookup(secret + "x") is None
    assert store.revoke(key.id) is True and store.revoke(key.id) is False
    assert store.lookup(secret) is None
    assert store.has_keys()  # a revoked last key keeps the server closed
    assert store.get(key.id).revoked_at is not None


def test_charge_refund_and_add_credits(store):
    metered, _ = store.create(credits=100)
    unlimited, _ = store.create()
    assert store.charge(metered.id, 30) == 70
    with pytest.raises(InsufficientCredits, match="needs 71 credits .* has 70 left"):
        store.charge(metered.id, 71)
    assert store.get(metered.id).credits == 70
    assert store.refund(metered.id, 30) == 100
    assert store.charge(unlimited.id, 1000) is None and store.get(unlimited.id).characters_used == 1000
    assert store.add_credits(metered.id, 50) == 150
    assert store.add_credits(metered.id, -500) == 0
    with pytest.raises(ValueError, match="unlimited"):
        store.add_credits(unlimited.id, 5)
    with pytest.raises(KeyError, match="no key with id"):
        store.add_credits("key_missing", 5)
    store.revoke(metered.id)
    with pytest.raises(InsufficientCredits, match="revoked"):
        store.charge(metered.id, 0)


def test_concurrent_charges_lose_no_updates_across_threads_and_processes(store):
    key, _ = store.create(credits=600)
    successes = []
    lock = threading.Lock()

    def spend() -> None:
        mine = 0
        for _ in range(20):
            try:
                store.charge(key.id, 3)
                mine += 1
            except InsufficientCredits:
                pass
        with lock:
            successes.append(mine)

    script = (
        "import sys\nfrom stream.accounts.keys import KeyStore\nfrom stream.core.errors import InsufficientCredits\n"
        "s = KeyStore(sys.argv[1]); n = 0\n"
        "for _ in range(40):\n"
        "    try:\n        s.charge(sys.argv[2], 3); n += 1\n"
        "    except InsufficientCredits:\n        pass\n"
        "print(n)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(store.path), key.id], stdout=subprocess.PIPE,
                              text=True) for _ in range(2)]
    threads = [threading.Thread(target=spend) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    charged = sum(successes) + sum(int(p.communicate(timeout=60)[0]) for p in procs)
    # 8 x 20 + 2 x 40 = 240 attempts of 3 against 600 credits: exactly 200 succeed, none lost or doubled
    assert charged == 200
    final = store.get(key.id)
    assert final.credits == 0 and final.characters_used == 600


async def test_authenticator_static_and_database_keys(store):
    open_server = Authenticator((), KeyStore(store.path.parent / "other.sqlite3"))
    assert not open_server.required and open_server.authenticate(None) is None
    auth = Authenticator(("static-secret",), store)
    assert auth.required
    static = auth.authenticate("static-secret")
    assert static.metered is False and "static-secret" not in static.key_id
    assert await auth.charge(static, 10**9) is None
    key, secret = store.create(credits=5)
    caller = auth.authenticate(secret)
    assert caller == Caller(key.id, metered=True)
    assert await auth.charge(caller, 5) == 0
    assert await auth.usage(caller, 5) == {"characters": 5, "remaining_credits": 0}
    for bad, message in ((None, "missing"), ("", "empty"), ("vw_nope", "invalid or revoked")):
        with pytest.raises(Unauthorized, match=message):
            auth.authenticate(bad)
    db_only = Authenticator((), store)
    assert db_only.required
    store.revoke(key.id)
    with pytest.raises(Unauthorized, match="invalid or revoked"):
        db_only.authenticate(secret)
