"""backend.cache.ByteLRU: the one byte-bounded cache every per-process cache uses."""

from __future__ import annotations

import threading

from backend.cache import ByteLRU


def test_total_cost_never_exceeds_the_budget_and_the_least_recent_goes_first() -> None:
    closed: list[str] = []
    cache: ByteLRU[str, str] = ByteLRU(10, len, on_evict=closed.append)
    cache.put("a", "xxxx")
    cache.put("b", "yyyy")
    assert cache.get("a") == "xxxx"  # a is now the most recent
    cache.put("c", "zzzz")  # 12 > 10: b goes
    assert "b" not in cache and "a" in cache and "c" in cache
    assert cache.total_bytes == 8 and closed == ["yyyy"]


def test_a_value_larger_than_the_budget_is_returned_but_not_kept() -> None:
    closed: list[str] = []
    cache: ByteLRU[str, str] = ByteLRU(10, len, on_evict=closed.append)
    cache.put("small", "abc")
    assert cache.put("big", "x" * 11) == "x" * 11
    assert "big" not in cache and cache.get("small") == "abc" and cache.total_bytes == 3
    assert closed == []  # never stored, so never handed back


def test_replacing_pop_clear_and_resize_hand_every_value_to_on_evict_once() -> None:
    closed: list[str] = []
    cache: ByteLRU[str, str] = ByteLRU(100, len, on_evict=closed.append)
    cache.put("k", "one")
    cache.put("k", "two")  # replaced: the old value is closed
    cache.put("j", "three")
    assert cache.pop("j") == "three"
    cache.put("i", "four")
    cache.resize(4)  # "two" (3 bytes, least recent) must go to fit "four"
    assert closed == ["one", "three", "two"] and cache.total_bytes == 4
    cache.clear()
    assert closed == ["one", "three", "two", "four"] and len(cache) == 0 and cache.total_bytes == 0


def test_a_failing_on_evict_is_logged_not_raised(caplog) -> None:
    def boom(_: str) -> None:
        raise RuntimeError("close failed")

    cache: ByteLRU[str, str] = ByteLRU(3, len, on_evict=boom)
    cache.put("a", "abc")
    cache.put("b", "def")  # evicts a: the error is logged
    assert "b" in cache and "closing an evicted entry failed" in caplog.text


def test_get_or_create_keeps_one_value_per_key_under_concurrency() -> None:
    closed: list[object] = []
    cache: ByteLRU[str, object] = ByteLRU(1000, lambda _: 1, on_evict=closed.append)
    made: list[object] = []
    barrier = threading.Barrier(8)

    def create() -> object:
        obj = object()
        made.append(obj)
        return obj

    results: list[object] = []

    def worker() -> None:
        barrier.wait()
        results.append(cache.get_or_create("k", create))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(map(id, results))) == 1  # every caller got the one cached value
    assert len(closed) == len(made) - 1  # every loser of the race was closed
    assert cache.total_bytes == 1
