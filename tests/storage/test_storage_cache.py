"""The shared-record cache: bounded, and an answer read before a change is never cached after it."""

from __future__ import annotations

from stream.storage import SharedRecordCache


def test_an_answer_read_before_a_drop_is_returned_but_not_cached():
    cache: SharedRecordCache[str, str] = SharedRecordCache(8)
    token = cache.token()                       # a reader starts its database read ...
    cache.drop(lambda key, value: True)         # ... the record changes meanwhile ...
    assert cache.put("k", "stale", token) == "stale"
    assert cache.get("k") is None               # ... and the stale answer is not kept
    cache.put("k", "fresh", cache.token())
    assert cache.get("k") == "fresh"


def test_drop_removes_what_it_selects_and_capacity_evicts_the_least_recent():
    cache: SharedRecordCache[str, int] = SharedRecordCache(2)
    for key, value in (("a", 1), ("b", 2)):
        cache.put(key, value, cache.token())
    cache.get("a")                              # b is now the least recently used
    cache.put("c", 3, cache.token())
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    cache.drop(lambda key, value: value == 3)
    assert (cache.get("a"), cache.get("c")) == (1, None)
