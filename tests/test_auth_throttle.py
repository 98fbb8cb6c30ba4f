"""LoginThrottle and VerificationCache as units, with an injected clock."""

from __future__ import annotations

from asimap.auth.cache import VerificationCache
from asimap.auth.throttle import LoginThrottle


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_ip_limit_is_five_failures() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(clock=clock)
    for i in range(5):
        assert not throttle.is_throttled(f"user{i}", "10.0.0.1")
        throttle.record_failure(f"user{i}", "10.0.0.1")
    assert throttle.is_throttled("anyone", "10.0.0.1")
    assert not throttle.is_throttled("anyone", "10.0.0.2")


def test_user_limit_is_four_failures() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(clock=clock)
    for i in range(4):
        assert not throttle.is_throttled("alice", f"10.0.0.{i}")
        throttle.record_failure("alice", f"10.0.0.{i}")
    assert throttle.is_throttled("alice", "10.9.9.9")
    assert not throttle.is_throttled("bob", "10.0.0.1")


def test_window_slides() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(clock=clock, window=60)
    for _ in range(4):
        throttle.record_failure("alice", "10.0.0.1")
        clock.now += 10
    # Failures at t=0,10,20,30; now t=40.
    assert throttle.is_throttled("alice", "10.0.0.1")
    clock.now = 60
    # The t=0 failure left the window: three remain.
    assert not throttle.is_throttled("alice", "10.0.0.1")
    assert throttle.tracked == (1, 1)
    clock.now = 200
    assert not throttle.is_throttled("alice", "10.0.0.1")
    assert throttle.tracked == (0, 0)


def test_tracked_keys_are_bounded() -> None:
    throttle = LoginThrottle(clock=FakeClock(), max_tracked=100)
    for i in range(1000):
        throttle.record_failure(f"user{i}", f"10.0.{i // 256}.{i % 256}")
    assert throttle.tracked == (100, 100)


def test_cache_never_keeps_plain_password() -> None:
    cache = VerificationCache(clock=FakeClock())
    cache.add("alice", "secret-pw", "hash1")
    assert "secret-pw" not in repr(cache._entries)
    assert cache.contains("alice", "secret-pw", "hash1")
    assert not cache.contains("alice", "secret-px", "hash1")
    assert not cache.contains("bob", "secret-pw", "hash1")


def test_cache_entry_expires_and_follows_hash() -> None:
    clock = FakeClock()
    cache = VerificationCache(clock=clock, ttl=60)
    cache.add("alice", "pw", "hash1")
    assert not cache.contains("alice", "pw", "hash2")  # password changed
    assert not cache.contains("alice", "pw", "hash1")  # and the entry is gone
    cache.add("alice", "pw", "hash1")
    clock.now += 59
    assert cache.contains("alice", "pw", "hash1")
    clock.now += 1
    assert not cache.contains("alice", "pw", "hash1")


def test_cache_is_bounded_lru() -> None:
    cache = VerificationCache(clock=FakeClock(), max_entries=3)
    for user in ("a", "b", "c"):
        cache.add(user, "pw", "h")
    assert cache.contains("a", "pw", "h")  # a is now most recent
    cache.add("d", "pw", "h")
    assert len(cache) == 3
    assert not cache.contains("b", "pw", "h")
    assert cache.contains("a", "pw", "h")
    cache.clear()
    assert len(cache) == 0
