"""PasswordFileAuthenticator: results, the login penalty, caching, and that
hashing never runs on the event loop.

Clock and sleeps are injected, so the penalty and the delays are exercised
exactly and the tests never really wait for them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from asimap.auth import hashers
from asimap.auth.account import Account
from asimap.auth.authenticator import PasswordFileAuthenticator
from asimap.auth.cache import VerificationCache
from asimap.auth.pwfile import PasswordFile
from asimap.auth.throttle import LoginPenalty


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingVerify:
    """The real verification, counted, with the hashes it was asked about."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, password: str, encoded: str) -> bool:
        with self._lock:
            self.calls.append(encoded)
        return hashers.verify_password(password, encoded)


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = FakeClock()
        self.delays: list[float] = []
        self.verify = CountingVerify()
        self.path = tmp_path / "pwfile"
        self.dummy = hashers.make_password("dummy", iterations=1000)
        self.write({"alice": "alice-pw", "bob": "bob-pw"})
        self.pwfile = PasswordFile(self.path, check_interval=0.0, clock=self.clock)
        self.auth = PasswordFileAuthenticator(
            self.pwfile,
            penalty=LoginPenalty(clock=self.clock),
            cache=VerificationCache(clock=self.clock),
            failure_delay=0.5,
            verify=self.verify,
            dummy_hash=self.dummy,
            sleep=self.sleep,
        )

    async def sleep(self, delay: float) -> None:
        self.delays.append(delay)

    def write(self, passwords: dict[str, str], extra: str = "") -> None:
        lines = [
            f"{user}:{hashers.make_password(pw, iterations=1000)}:{user}"
            for user, pw in passwords.items()
        ]
        self.path.write_text("# accounts\n" + "\n".join(lines) + "\n" + extra)


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    harness.auth.close()


async def test_right_password_gives_account_with_maildir(h: Harness) -> None:
    account = await h.auth.authenticate("alice", "alice-pw", "192.0.2.1")
    assert account == Account("alice", h.path.parent / "alice")
    assert h.delays == []


async def test_wrong_password_unknown_user_and_unusable_all_none(
    h: Harness, tmp_path: Path
) -> None:
    with h.path.open("a") as f:
        f.write(f"carol:{hashers.make_unusable_password()}:carol\n")
    assert await h.auth.authenticate("alice", "bob-pw", "192.0.2.1") is None
    assert await h.auth.authenticate("nobody", "alice-pw", "192.0.2.2") is None
    assert await h.auth.authenticate("carol", "", "192.0.2.3") is None
    # The unknown user and the unusable password still cost one verification
    # each, against the dummy hash, so timing does not reveal them.
    assert len(h.verify.calls) == 3
    assert h.verify.calls[1:] == [h.dummy, h.dummy]
    assert h.delays == [0.5, 0.5, 0.5]


async def test_hundred_wrong_passwords_in_a_row(h: Harness) -> None:
    results = [
        await h.auth.authenticate("alice", f"guess{i}", "192.0.2.9") for i in range(100)
    ]
    assert results == [None] * 100
    # Every attempt is verified, after a penalty that doubles per failure of
    # the pair up to 15 s: guessing from one address slows to 1 try / 15 s.
    assert len(h.verify.calls) == 100
    penalties = [d for d in h.delays if d != 0.5]
    assert penalties[:5] == [1.0, 2.0, 4.0, 8.0, 15.0]
    assert penalties[5:] == [15.0] * 94
    # The right password from the guessing address still works, late.
    h.delays.clear()
    assert await h.auth.authenticate("alice", "alice-pw", "192.0.2.9") is not None
    assert h.delays == [15.0]


async def test_failures_elsewhere_never_lock_the_owner_out(h: Harness) -> None:
    """The defect: four failures for a username from anywhere used to lock
    its owner out everywhere for a minute, with the right password."""
    for i in range(20):
        assert await h.auth.authenticate("alice", "wrong", f"192.0.2.{i}") is None
        assert await h.auth.authenticate("alice", "wrong", "192.0.2.250") is None
    h.delays.clear()
    assert await h.auth.authenticate("alice", "alice-pw", "198.51.100.1") is not None
    assert h.delays == []


async def test_guessing_across_users_slows_the_address_only(h: Harness) -> None:
    for i in range(10):
        assert await h.auth.authenticate(f"user{i}", "wrong", "203.0.113.7") is None
    h.delays.clear()
    # Another user from that address gets in with the right password, after
    # the address's penalty; from another address at once.
    assert await h.auth.authenticate("bob", "bob-pw", "203.0.113.7") is not None
    assert h.delays == [8.0]
    h.delays.clear()
    assert await h.auth.authenticate("bob", "bob-pw", "203.0.113.8") is not None
    assert h.delays == []


async def test_a_few_typos_cost_little(h: Harness) -> None:
    for _ in range(3):
        assert await h.auth.authenticate("alice", "wrong", "192.0.2.1") is None
    h.delays.clear()
    assert await h.auth.authenticate("alice", "alice-pw", "192.0.2.1") is not None
    assert h.delays == [4.0]
    # The success forgets the owner's own typos.
    h.delays.clear()
    h.clock.now += 61  # past the cache, so the password is verified again
    assert await h.auth.authenticate("alice", "alice-pw", "192.0.2.1") is not None
    assert h.delays == []


async def test_penalty_is_forgotten(h: Harness) -> None:
    for _ in range(6):
        await h.auth.authenticate("alice", "wrong", "192.0.2.1")
    h.clock.now += 901
    h.delays.clear()
    assert await h.auth.authenticate("alice", "alice-pw", "192.0.2.1") is not None
    assert h.delays == []


async def test_unknown_user_penalised_like_known_user(h: Harness) -> None:
    known = [await h.auth.authenticate("alice", "x", "192.0.2.1") for _ in range(6)]
    unknown = [await h.auth.authenticate("ghost", "x", "192.0.2.2") for _ in range(6)]
    assert known == unknown == [None] * 6
    assert h.delays[: len(h.delays) // 2] == h.delays[len(h.delays) // 2 :]
    assert h.verify.calls.count(h.dummy) == 6


async def test_refusals_are_logged_with_their_reason(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="asimap.auth.authenticator")
    with h.path.open("a") as f:
        f.write(f"carol:{hashers.make_unusable_password()}:carol\n")
    await h.auth.authenticate("alice", "wrong", "192.0.2.1")
    await h.auth.authenticate("ghost", "x", "192.0.2.1")
    await h.auth.authenticate("carol", "x", "192.0.2.1")
    await h.auth.authenticate("alice", "wrong", "192.0.2.1")
    messages = [r.getMessage() for r in caplog.records]
    assert "failed login: user 'alice' from 192.0.2.1: wrong password" in messages
    assert "failed login: user 'ghost' from 192.0.2.1: unknown user" in messages
    assert "failed login: user 'carol' from 192.0.2.1: unusable password" in messages
    assert (
        "login of user 'alice' from 192.0.2.1 delayed 1 s: 3 recent failure(s) "
        "from the address, 1 for this user from it" in messages
    )


async def test_cache_hit_avoids_hashing(h: Harness) -> None:
    for _ in range(5):
        assert await h.auth.authenticate("alice", "alice-pw", "192.0.2.1")
    assert len(h.verify.calls) == 1
    # A wrong password is never answered from the cache.
    assert await h.auth.authenticate("alice", "alice-pw2", "192.0.2.1") is None
    assert len(h.verify.calls) == 2
    # After the cache lifetime, the hash is verified again.
    h.clock.now += 61
    assert await h.auth.authenticate("alice", "alice-pw", "192.0.2.1")
    assert len(h.verify.calls) == 3


async def test_cache_invalidated_when_password_file_changes(h: Harness) -> None:
    assert await h.auth.authenticate("alice", "alice-pw", "192.0.2.1")
    assert await h.auth.authenticate("bob", "bob-pw", "192.0.2.1")
    assert len(h.verify.calls) == 2
    h.write({"alice": "new-pw", "bob": "bob-pw"})
    assert await h.auth.authenticate("alice", "alice-pw", "192.0.2.1") is None
    assert await h.auth.authenticate("alice", "new-pw", "192.0.2.1")
    # bob's line was rewritten too; the whole cache was dropped.
    assert await h.auth.authenticate("bob", "bob-pw", "192.0.2.1")
    assert len(h.verify.calls) == 5


async def test_removed_user_cannot_log_in_from_cache(h: Harness) -> None:
    assert await h.auth.authenticate("bob", "bob-pw", "192.0.2.1")
    h.write({"alice": "alice-pw"})
    assert await h.auth.authenticate("bob", "bob-pw", "192.0.2.1") is None


async def test_verification_does_not_block_the_event_loop(tmp_path: Path) -> None:
    """The verifier waits until the loop has ticked three times: if it ran
    on the loop thread it would wait in vain and fail the login."""
    ticks = 0
    ticked = threading.Event()

    def verify(password: str, encoded: str) -> bool:
        return ticked.wait(timeout=5.0) and hashers.verify_password(password, encoded)

    path = tmp_path / "pwfile"
    path.write_text(f"u:{hashers.make_password('pw', iterations=1000)}:u\n")
    auth = PasswordFileAuthenticator(path, verify=verify)

    async def ticker(done: Callable[[], bool]) -> None:
        nonlocal ticks
        while not done():
            await asyncio.sleep(0.001)
            ticks += 1
            if ticks >= 3:
                ticked.set()

    try:
        login = asyncio.create_task(auth.authenticate("u", "pw", "127.0.0.1"))
        await ticker(login.done)
        assert await login == Account("u", tmp_path / "u")
    finally:
        auth.close()


async def test_real_slow_hash_leaves_loop_responsive(tmp_path: Path) -> None:
    path = tmp_path / "pwfile"
    path.write_text(f"u:{hashers.make_password('pw')}:u\n")  # Django's 1M rounds
    auth = PasswordFileAuthenticator(path)
    ticks = 0
    try:
        login = asyncio.create_task(auth.authenticate("u", "pw", "127.0.0.1"))
        while not login.done():
            await asyncio.sleep(0.005)
            ticks += 1
        assert login.result() is not None
        # The loop kept running many times during the verification.
        assert ticks >= 5
    finally:
        auth.close()


async def test_concurrent_logins(h: Harness) -> None:
    results = await asyncio.gather(
        *(h.auth.authenticate("alice", "alice-pw", f"192.0.2.{i}") for i in range(20)),
        *(h.auth.authenticate("bob", "bob-pw", f"192.0.2.{i}") for i in range(20)),
    )
    assert all(r is not None for r in results)


async def test_missing_password_file_refuses_everyone(tmp_path: Path) -> None:
    sleeps: list[float] = []

    async def no_sleep(delay: float) -> None:
        sleeps.append(delay)

    auth = PasswordFileAuthenticator(
        tmp_path / "absent",
        dummy_hash=hashers.make_password("d", iterations=10),
        sleep=no_sleep,
    )
    try:
        assert await auth.authenticate("alice", "pw", "127.0.0.1") is None
        assert sleeps == [1.0]
    finally:
        auth.close()
