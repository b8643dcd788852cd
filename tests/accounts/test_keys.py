"""Keys and credits: only hashes on disk, the key lifecycle, atomic credit charges under concurrency,
daily usage, and the authenticator's key cache following revocations."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from stream.accounts.auth import Authenticator, Caller
from stream.accounts.keys import create_key, find_key
from stream.core.errors import InsufficientCredits, Unauthorized
from stream.storage import ChargeRefused, Refusal, Storage, open_storage


@pytest.fixture
def storage(tmp_path) -> Storage:
    storage = open_storage(None, tmp_path / "voicewire.sqlite3")
    yield storage
    storage.close()


def test_no_database_file_until_a_key_is_created(storage):
    keys = storage.keys
    assert keys.list() == [] and not keys.has_keys() and find_key(keys, "vw_anything") is None
    assert not keys.revoke("key_x") and storage.usage.daily("key_x") == []
    with pytest.raises(ChargeRefused):
        keys.charge("key_x", 1)
    assert not storage.url.path.exists()
    create_key(keys)
    assert storage.url.path.exists()


def test_only_a_hash_of_the_key_is_stored(storage, tmp_path):
    key, secret = create_key(storage.keys, name="ops", credits=10)
    assert secret.startswith("vw_") and len(secret) > 40
    assert key.prefix == secret[:8] and key.credits == 10 and key.name == "ops"
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("voicewire.sqlite3"))
    assert secret.encode() not in raw and secret[8:].encode() not in raw
    with pytest.raises(ValueError, match="credits: must be >= 0"):
        create_key(storage.keys, credits=-1)


def test_lifecycle_create_lookup_revoke(storage):
    keys = storage.keys
    key, secret = create_key(keys)
    assert find_key(keys, secret).id == key.id and find_key(keys, secret + "x") is None
    assert keys.revoke(key.id) is True and keys.revoke(key.id) is False
    assert find_key(keys, secret) is None
    assert keys.has_keys()  # a revoked last key keeps the server closed
    assert keys.get(key.id).revoked_at is not None


def test_charge_refund_and_add_credits(storage):
    keys = storage.keys
    metered, _ = create_key(keys, credits=100)
    unlimited, _ = create_key(keys)
    assert keys.charge(metered.id, 30) == 70
    with pytest.raises(ChargeRefused) as short:
        keys.charge(metered.id, 71)
    assert (short.value.reason, short.value.credits) == (Refusal.INSUFFICIENT, 70)
    assert keys.get(metered.id).credits == 70
    assert keys.refund(metered.id, 30) == 100
    assert keys.charge(unlimited.id, 1000) is None and keys.get(unlimited.id).characters_used == 1000
    assert keys.add_credits(metered.id, 50) == 150
    assert keys.add_credits(metered.id, -500) == 0
    with pytest.raises(ValueError, match="unlimited"):
        keys.add_credits(unlimited.id, 5)
    with pytest.raises(KeyError, match="no key with id"):
        keys.add_credits("key_missing", 5)
    keys.revoke(metered.id)
    with pytest.raises(ChargeRefused) as revoked:
        keys.charge(metered.id, 0)
    assert revoked.value.reason is Refusal.REVOKED


def test_usage_is_recorded_per_day_with_the_charges(storage):
    keys = storage.keys
    key, _ = create_key(keys, credits=100)
    keys.charge(key.id, 30)
    keys.charge(key.id, 12)
    keys.refund(key.id, 5)
    with pytest.raises(ChargeRefused):
        keys.charge(key.id, 1000)                 # refused: nothing taken, nothing recorded
    [today] = storage.usage.daily(key.id)
    assert (today.charged, today.refunded, today.characters) == (42, 5, 37)
    assert keys.get(key.id).characters_used == 37
    assert storage.usage.daily(key.id, since="9999-01-01") == []
    assert storage.usage.daily("key_other") == []


def test_concurrent_charges_lose_no_updates_across_threads_and_processes(storage):
    keys = storage.keys
    key, _ = create_key(keys, credits=600)
    successes = []
    lock = threading.Lock()

    def spend() -> None:
        mine = 0
        for _ in range(20):
            try:
                keys.charge(key.id, 3)
                mine += 1
            except ChargeRefused:
                pass
        with lock:
            successes.append(mine)

    script = (
        "import sys\nfrom stream.storage import ChargeRefused, open_storage\n"
        "s = open_storage(None, sys.argv[1]).keys; n = 0\n"
        "for _ in range(40):\n"
        "    try:\n        s.charge(sys.argv[2], 3); n += 1\n"
        "    except ChargeRefused:\n        pass\n"
        "print(n)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(storage.url.path), key.id], stdout=subprocess.PIPE,
                              text=True) for _ in range(2)]
    threads = [threading.Thread(target=spend) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    charged = sum(successes) + sum(int(p.communicate(timeout=60)[0]) for p in procs)
    # 8 x 20 + 2 x 40 = 240 attempts of 3 against 600 credits: exactly 200 succeed, none lost or doubled
    assert charged == 200
    final = keys.get(key.id)
    assert final.credits == 0 and final.characters_used == 600
    assert storage.usage.daily(key.id)[0].characters == 600


async def test_authenticator_static_and_database_keys(storage, tmp_path):
    other = open_storage(None, tmp_path / "other.sqlite3")
    open_server = Authenticator((), other)
    assert not open_server.required and open_server.authenticate(None) is None
    auth = Authenticator(("static-secret",), storage)
    assert auth.required
    static = auth.authenticate("static-secret")
    assert static.metered is False and "static-secret" not in static.key_id
    assert await auth.charge(static, 10**9) is None
    key, secret = create_key(storage.keys, credits=5)
    caller = auth.authenticate(secret)
    assert caller == Caller(key.id, metered=True)
    assert await auth.charge(caller, 5) == 0
    assert await auth.usage(caller, 5) == {"characters": 5, "remaining_credits": 0}
    with pytest.raises(InsufficientCredits, match="needs 1 credits .* has 0 left") as short:
        await auth.charge(caller, 1, "ctx")
    assert short.value.context_id == "ctx"
    for bad, message in (("", "empty"), ("vw_nope", "invalid or revoked")):
        with pytest.raises(Unauthorized, match=message):
            auth.authenticate(bad)
    with pytest.raises(Unauthorized, match="missing"):
        auth.authenticate(None)
    db_only = Authenticator((), storage)
    assert db_only.required
    assert db_only.authenticate(secret) == caller         # now cached
    storage.keys.revoke(key.id)                           # through the same storage: forgotten at once
    with pytest.raises(Unauthorized, match="invalid or revoked"):
        db_only.authenticate(secret)
    with pytest.raises(InsufficientCredits, match="revoked"):
        await auth.charge(caller, 0)
    other.close()


def test_a_key_revoked_by_another_process_is_refused_within_the_bound(storage):
    auth = Authenticator((), storage)
    key, secret = create_key(storage.keys)
    assert auth.authenticate(secret).key_id == key.id      # cached from here on
    revoker = open_storage(f"sqlite://{storage.url.path}", storage.url.path)   # as another process would
    revoker.keys.revoke(key.id)
    revoker.close()
    started = time.monotonic()
    while True:
        try:
            auth.authenticate(secret)
        except Unauthorized:
            break
        assert time.monotonic() - started < 1.0, "a revoked key was still accepted after 1 s"
        time.sleep(0.01)
