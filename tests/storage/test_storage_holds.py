"""Credit holds on SQLite and on a real PostgreSQL (`storage` is parametrized): a session's charges
stay pending until settled, refunded or released; an expired hold (its replica died) is swept back
to the key exactly once, even with two replicas sweeping at once."""

from __future__ import annotations

import threading
import time

import pytest

from stream.storage import ChargeRefused, Hold


def test_charge_settle_refund_and_release(storage):
    keys, holds = storage.keys, storage.holds
    keys.create("key_a", None, "digest-a", "vw_aaaaa", 100)
    hold = Hold("s1", "replica-1", ttl_s=60)
    assert holds.pending("s1") is None
    assert keys.charge("key_a", 30, hold) == 70 and keys.charge("key_a", 20, hold) == 50
    assert holds.pending("s1") == 50
    holds.settle("s1", 12)                     # a phrase's audio went out
    assert holds.pending("s1") == 38
    assert keys.refund("key_a", 8, session_id="s1") == 58   # a cancel gives back what was not spoken
    assert holds.pending("s1") == 30
    holds.settle("s1", 1000)                   # never below zero
    assert holds.pending("s1") == 0
    with pytest.raises(ChargeRefused):         # a refused charge takes nothing and holds nothing
        keys.charge("key_a", 1000, Hold("s2", "replica-1"))
    assert holds.pending("s2") is None
    holds.release("s1")
    holds.release("s1")                        # idempotent
    assert holds.pending("s1") is None and holds.sweep() == []
    key = keys.get("key_a")
    assert (key.credits, key.characters_used) == (58, 42)
    [day] = storage.usage.daily("key_a")
    assert (day.charged, day.refunded) == (50, 8)


def test_expired_holds_are_swept_back_to_the_key_and_renewed_ones_stay(storage, storage_url, open_url):
    keys, holds = storage.keys, storage.holds
    keys.create("key_a", None, "digest-a", "vw_aaaaa", 100)
    keys.create("key_u", None, "digest-u", "vw_uuuuu", None)      # unlimited: usage is given back
    keys.charge("key_a", 25, Hold("dead-1", "dead", ttl_s=0.2))
    holds.settle("dead-1", 10)                                       # spoken before the replica died
    keys.charge("key_u", 7, Hold("dead-2", "dead", ttl_s=0.2))
    keys.charge("key_a", 5, Hold("alive", "live", ttl_s=0.2))
    assert holds.renew("live", ttl_s=60) == 1
    time.sleep(0.4)
    swept = sorted(open_url(storage_url).holds.sweep(), key=lambda s: s.session_id)   # another replica sweeps
    assert [(s.session_id, s.key_id, s.characters) for s in swept] == [("dead-1", "key_a", 15), ("dead-2", "key_u", 7)]
    assert holds.sweep() == [] and holds.pending("dead-1") is None and holds.pending("alive") == 5
    assert keys.get("key_a").credits == 100 - 25 - 5 + 15
    assert keys.get("key_a").characters_used == 10 + 5 and keys.get("key_u").characters_used == 0
    [day] = storage.usage.daily("key_a")
    assert (day.charged, day.refunded) == (30, 15)
    [unlimited] = storage.usage.daily("key_u")
    assert (unlimited.charged, unlimited.refunded) == (7, 7)


def test_two_sweepers_return_each_expired_hold_once(storage, storage_url, open_url):
    keys = storage.keys
    keys.create("key_a", None, "digest-a", "vw_aaaaa", 10_000)
    for i in range(40):
        keys.charge("key_a", i + 1, Hold(f"s{i}", "dead", ttl_s=0.1))
    time.sleep(0.3)
    sweepers = [storage.holds, open_url(storage_url).holds]
    results: list[list] = [[], []]
    barrier = threading.Barrier(2)

    def sweep(i: int) -> None:
        barrier.wait()
        results[i] = sweepers[i].sweep()

    threads = [threading.Thread(target=sweep, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    returned = [s.session_id for r in results for s in r]
    assert sorted(returned) == sorted(f"s{i}" for i in range(40))   # every hold once, none twice
    assert sum(s.characters for r in results for s in r) == sum(range(1, 41))
    key = keys.get("key_a")
    assert (key.credits, key.characters_used) == (10_000, 0)
    [day] = storage.usage.daily("key_a")
    assert (day.charged, day.refunded) == (820, 820)
