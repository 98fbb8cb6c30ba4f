"""LoginPenalty and VerificationCache as units, with an injected clock."""

from __future__ import annotations

import asyncio

from asimap.auth.cache import VerificationCache
from asimap.auth.throttle import (
    FREE_ADDRESS_FAILURES,
    MAX_DELAY,
    LoginPenalty,
    address_delay,
    pair_delay,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_pair_delay_doubles_up_to_the_cap() -> None:
    clock = FakeClock()
    penalty = LoginPenalty(clock=clock)
    delays = []
    for _ in range(7):
        delays.append(penalty.penalty("alice", "10.0.0.1").delay)
        penalty.record_failure("alice", "10.0.0.1")
    assert delays == [0.0, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0]
    assert pair_delay(10_000) == MAX_DELAY


def test_failures_elsewhere_never_delay_the_owner() -> None:
    """The defect this design fixes: failures for a user from other
    addresses used to lock that user out everywhere."""
    clock = FakeClock()
    penalty = LoginPenalty(clock=clock)
    for i in range(50):
        penalty.record_failure("alice", f"10.0.0.{i}")
    for _ in range(50):
        penalty.record_failure("alice", "192.0.2.66")
    assert penalty.penalty("alice", "198.51.100.1").delay == 0.0


def test_address_delay_spares_the_first_failures_then_grows() -> None:
    clock = FakeClock()
    penalty = LoginPenalty(clock=clock)
    delays = []
    for i in range(FREE_ADDRESS_FAILURES + 12):
        delays.append(penalty.penalty("newcomer", "10.0.0.1").delay)
        penalty.record_failure(f"user{i}", "10.0.0.1")
    free = FREE_ADDRESS_FAILURES + 1
    assert delays[:free] == [0.0] * free
    assert delays[free:] == [1.0, 1.0, 2.0, 2.0, 4.0, 4.0, 8.0, 8.0, 15.0, 15.0, 15.0]
    # Another address is untouched.
    assert penalty.penalty("newcomer", "10.0.0.2").delay == 0.0
    assert penalty.penalty("user0", "10.0.0.1").address_failures == len(delays)


def test_failures_are_forgotten() -> None:
    clock = FakeClock()
    penalty = LoginPenalty(clock=clock, forget_after=60)
    for _ in range(4):
        penalty.record_failure("alice", "10.0.0.1")
        clock.now += 10
    # Failures at t=0,10,20,30; now t=40.
    assert penalty.penalty("alice", "10.0.0.1").delay == 8.0
    clock.now = 60
    # The t=0 failure is forgotten: three remain.
    assert penalty.penalty("alice", "10.0.0.1").delay == 4.0
    assert penalty.tracked == (1, 1)
    clock.now = 200
    assert penalty.penalty("alice", "10.0.0.1").delay == 0.0
    assert penalty.tracked == (0, 0)


def test_success_forgets_the_pair_but_not_the_address() -> None:
    penalty = LoginPenalty(clock=FakeClock())
    for i in range(10):
        penalty.record_failure("alice", "10.0.0.1")
        penalty.record_failure(f"user{i}", "10.0.0.1")
    penalty.record_success("alice", "10.0.0.1")
    after = penalty.penalty("alice", "10.0.0.1")
    assert after.pair_failures == 0
    assert after.address_failures == 20
    assert after.delay == address_delay(20)


def test_tracked_keys_are_bounded() -> None:
    penalty = LoginPenalty(clock=FakeClock(), max_tracked=100)
    for i in range(1000):
        penalty.record_failure(f"user{i}", f"10.0.{i // 256}.{i % 256}")
    assert penalty.tracked == (100, 100)


async def test_attempts_from_a_penalised_address_take_turns() -> None:
    penalty = LoginPenalty(clock=FakeClock())
    inside = 0
    most_inside = 0

    async def attempt(peer: str) -> None:
        nonlocal inside, most_inside
        async with penalty.turn(peer):
            inside += 1
            most_inside = max(most_inside, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    # No failures yet: attempts run side by side.
    await asyncio.gather(*(attempt("10.0.0.1") for _ in range(5)))
    assert most_inside == 5
    penalty.record_failure("alice", "10.0.0.1")
    most_inside = 0
    await asyncio.gather(*(attempt("10.0.0.1") for _ in range(5)))
    assert most_inside == 1
    # Nothing is left behind once the turns are over.
    assert penalty._turns == {}


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
