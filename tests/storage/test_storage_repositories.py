"""The repository contract, run on SQLite and on a real PostgreSQL (`storage` is parametrized):
keys and credits, usage, voices, session leases, the change feed across processes, and charges
racing from two processes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from stream.storage import Change, ChargeRefused, Refusal, StoredVoice, Topic
from tests.postgres_server import wait_until


def voice(voice_id: str, name: str, created_at: float) -> StoredVoice:
    return StoredVoice(voice_id, name, "WAV", 24000, 2.0, "h-" + voice_id, created_at)


def test_keys_credits_and_usage(storage):
    keys = storage.keys
    assert not keys.has_keys() and keys.list() == [] and keys.get("key_a") is None
    metered = keys.create("key_a", "agent", "digest-a", "vw_aaaaa", 10)
    keys.create("key_b", None, "digest-b", "vw_bbbbb", None)
    assert keys.has_keys() and [k.id for k in keys.list()] == ["key_a", "key_b"]
    assert (metered.credits, metered.characters_used, metered.active) == (10, 0, True)
    assert metered.created_at.endswith("Z") and metered.last_used_at is None
    assert keys.find_active("digest-a") == metered and keys.find_active("nope") is None

    assert keys.charge("key_a", 4) == 6 and keys.charge("key_b", 1000) is None
    with pytest.raises(ChargeRefused) as short:
        keys.charge("key_a", 7)
    assert (short.value.reason, short.value.credits) == (Refusal.INSUFFICIENT, 6)
    assert keys.refund("key_a", 2) == 8 and keys.refund("key_x", 2) is None
    assert keys.add_credits("key_a", 5) == 13 and keys.add_credits("key_a", -100) == 0
    with pytest.raises(KeyError):
        keys.add_credits("key_x", 1)
    with pytest.raises(ValueError, match="unlimited"):
        keys.add_credits("key_b", 1)
    assert keys.get("key_a").characters_used == 2 and keys.get("key_a").last_used_at is not None

    [day] = storage.usage.daily("key_a")
    assert (day.charged, day.refunded, day.characters) == (4, 2, 2)
    assert storage.usage.daily("key_a", since="2999-01-01") == []
    assert storage.usage.daily("key_a", since=day.day) == [day]

    assert keys.revoke("key_a") and not keys.revoke("key_a") and not keys.revoke("key_x")
    assert keys.find_active("digest-a") is None and keys.get("key_a").revoked_at is not None
    with pytest.raises(ChargeRefused) as revoked:
        keys.charge("key_a", 0)
    assert revoked.value.reason == Refusal.REVOKED
    with pytest.raises(ChargeRefused):
        keys.charge("key_x", 1)


def test_export_and_restore_keep_every_field(storage, open_url, tmp_path):
    storage.keys.create("key_a", "agent", "digest-a", "vw_aaaaa", 10)
    storage.keys.charge("key_a", 3)
    storage.keys.create("key_b", None, "digest-b", "vw_bbbbb", None)
    storage.keys.revoke("key_b")
    other = open_url(f"sqlite://{tmp_path / 'restored.sqlite3'}")
    other.keys.restore(storage.keys.export())
    other.usage.restore(storage.usage.export())
    assert other.keys.export() == storage.keys.export() and other.usage.export() == storage.usage.export()
    assert other.keys.find_active("digest-a").credits == 7


def test_voices_round_trip_and_a_name_means_its_newest_voice(storage, storage_url, open_url):
    voices = storage.voices
    assert voices.list() == [] and voices.get("alice") is None and not voices.delete("v_x")
    a, b = voice("v_a", "alice", 1.0), voice("v_b", "v_b", 2.0)
    voices.add(a, b"RIFFa\x00\xff")
    voices.add(b, b"RIFFb")
    reopened = open_url(storage_url).voices             # a restart (or another replica) sees the same voices
    assert [v.id for v in reopened.list()] == [a.id, b.id]
    assert reopened.get("alice") == a and reopened.get(a.id) == a
    reopened.add(voice("v_c", "alice", 3.0), b"RIFFc")
    assert reopened.get("alice").id == "v_c"
    assert reopened.audio(a.id) == b"RIFFa\x00\xff" and reopened.audio("v_x") is None
    assert reopened.delete(a.id) and not reopened.delete(a.id)
    assert reopened.get(a.id) is None


def test_leases_count_up_to_the_limit_renew_expire_and_release(storage, storage_url, open_url):
    leases, elsewhere = storage.leases, open_url(storage_url).leases   # two replicas on one database
    assert leases.acquire("key_a", "s1", "replica-1", limit=2)
    assert elsewhere.acquire("key_a", "s2", "replica-2", limit=2)
    assert not leases.acquire("key_a", "s3", "replica-1", limit=2)      # at the limit, on every replica
    assert leases.acquire("key_b", "s4", "replica-1", limit=1)          # other keys are counted apart
    assert elsewhere.count("key_a") == 2 and leases.count("key_b") == 1
    leases.release("s1")
    leases.release("s1")                                                # idempotent
    assert elsewhere.acquire("key_a", "s3", "replica-2", limit=2)
    assert leases.count("key_a") == 2

    # replica-2 dies: its leases were short; replica-1 renews its own and keeps them
    assert elsewhere.renew("replica-2", ttl_s=0.3) == 2
    assert leases.renew("replica-1", ttl_s=60) == 1
    wait_until(lambda: leases.count("key_a") == 0, 5, "replica-2's leases expire")
    assert leases.count("key_b") == 1
    assert leases.acquire("key_a", "s5", "replica-1", limit=1)          # expired leases free their places


def test_leases_admit_exactly_the_limit_under_concurrent_acquires(storage, storage_url, open_url):
    replicas = [storage.leases, open_url(storage_url).leases]
    admitted: list[bool] = []
    lock = threading.Lock()

    def admit(n: int) -> None:
        ok = replicas[n % 2].acquire("key_a", f"s{n}", f"replica-{n % 2}", limit=3)
        with lock:
            admitted.append(ok)

    threads = [threading.Thread(target=admit, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(admitted) == [False] * 7 + [True] * 3 and storage.leases.count("key_a") == 3


def collect(storage) -> list[Change]:
    seen: list[Change] = []
    storage.changes.subscribe(seen.append)
    return seen


def test_changes_reach_this_process_at_once_and_others_within_the_bound(storage, storage_url, open_url):
    here, elsewhere = storage, open_url(storage_url)
    seen = collect(here)
    here.voices.add(voice("v_a", "a", 1.0), b"x")
    assert seen == [Change(Topic.VOICES, "v_a")]        # delivered before the write returned

    started = time.monotonic()
    elsewhere.voices.delete("v_a")                      # another storage on the database, as another process
    elsewhere.keys.create("key_1", None, "digest", "vw_12345", 100)
    wait_until(lambda: len(seen) >= 3, 1.0, "another process's changes")
    assert time.monotonic() - started < 1.0
    assert seen[1:] == [Change(Topic.VOICES, "v_a"), Change(Topic.KEYS, "key_1")]

    elsewhere.keys.revoke("key_1")
    wait_until(lambda: len(seen) >= 4, 1.0, "a revocation")
    for _ in range(5):                                  # balances are not announced: nothing to drop
        here.keys.refund("key_1", 1)
        elsewhere.keys.add_credits("key_1", 1)
    elsewhere.voices.add(voice("v_b", "b", 2.0), b"x")  # a marker: everything before it has arrived
    wait_until(lambda: len(seen) >= 5, 1.0, "the marker")
    assert seen[3:] == [Change(Topic.KEYS, "key_1"), Change(Topic.VOICES, "v_b")]


CHARGER = """
import sys, threading
from stream.storage import ChargeRefused, open_storage
storage = open_storage(sys.argv[1], "/nonexistent/unused.sqlite3")
counts = []
def spend():
    n = 0
    while True:
        try:
            storage.keys.charge(sys.argv[2], 7)
            n += 1
        except ChargeRefused:
            break
    counts.append(n)
threads = [threading.Thread(target=spend) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
storage.close()
print(sum(counts))
"""


def test_two_processes_of_eight_threads_charging_one_key_lose_and_overdraw_nothing(storage, storage_url):
    storage.keys.create("key_a", None, "digest-a", "vw_aaaaa", 1000)
    procs = [subprocess.Popen([sys.executable, "-c", CHARGER, storage_url, "key_a"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    charged = sum(int(out) for out, _ in outputs)
    assert charged == 1000 // 7                          # every charge that fit, each counted once
    key = storage.keys.get("key_a")
    assert (key.credits, key.characters_used) == (1000 - 7 * charged, 7 * charged) == (6, 994)
    assert storage.usage.daily("key_a")[0].charged == 994
