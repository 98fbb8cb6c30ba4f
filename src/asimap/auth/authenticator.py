"""Authenticate against the password file, off the event loop, penalised.

asimap 2.x hashed passwords on the event loop, so one login stalled every
client (design.md section 2).  Here the password-file lookup and the hash
verification run together in a small dedicated thread pool; the event loop
only awaits the result.  The pool is our own so that slow hashing never
starves other users of the default executor (file I/O, DNS).

The answer is ``None`` for *every* failure -- unknown user, wrong password,
unusable password -- so it never tells whether a user exists
(the ``Authenticator`` contract in ``asimap.auth.account``).  Timing is
kept alike too: an unknown user or an unusable password still costs one
verification, against a stand-in hash that costs what the real users'
hashes cost -- a usable hash of the password file, of the most common
algorithm and iteration count (the result is ignored), so that an account
made with fewer or more iterations than our default does not stand out by
its answer time; a generated default hash only when no entry is usable.

Order of checks for one attempt:

1. recent failures from the attempt's address (``asimap.auth.throttle``)?
   Wait the penalty they impose -- attempts from a penalised address one at
   a time -- and then check the password as usual: a correct password is
   never refused for failures, and an address without failures never waits;
2. look up the user and, if the cache (``asimap.auth.cache``) holds a recent
   success for this password and the same stored hash, accept at once;
3. otherwise verify in the pool; on success remember it in the cache, on
   failure count it against the address and the address+user pair, log
   why it failed, wait ``failure_delay``, and refuse.

SCRAM-SHA-256 (:mod:`asimap.auth.scram_exchange`) uses the same penalty,
delays and logs through :meth:`PasswordFileAuthenticator.scram_lookup` and
:meth:`~PasswordFileAuthenticator.scram_outcome`.  It needs no
verification cache: the server's part of SCRAM is a few HMACs (the
client runs PBKDF2), so there is nothing slow to remember, and the
cache's key -- the password -- never reaches the server.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from asimap.auth import hashers, scram
from asimap.auth.account import Account
from asimap.auth.cache import VerificationCache
from asimap.auth.pwfile import PasswordEntry, PasswordFile
from asimap.auth.scram_exchange import ScramLookup
from asimap.auth.throttle import LoginPenalty

log = logging.getLogger(__name__)

Verify = Callable[[str, str], bool]
Sleep = Callable[[float], Awaitable[None]]
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class _Outcome:
    entry: PasswordEntry | None
    verified: bool
    generation: int


class PasswordFileAuthenticator:
    """``asimap.auth.account.Authenticator`` backed by a password file."""

    def __init__(
        self,
        pwfile: PasswordFile | Path,
        *,
        penalty: LoginPenalty | None = None,
        cache: VerificationCache | None = None,
        failure_delay: float = 1.0,
        verify: Verify = hashers.verify_password,
        dummy_hash: str | None = None,
        sleep: Sleep = asyncio.sleep,
        max_workers: int | None = None,
        scram_secret: bytes | None = None,
    ) -> None:
        """``verify``, ``dummy_hash``, ``sleep``, ``penalty`` and the delay are
        injectable so tests can count verifications and run without real
        waiting; production uses the defaults.

        ``scram_secret`` keys the fake SCRAM salts of users who cannot use
        SCRAM (see :mod:`asimap.auth.scram`); by default a random secret
        per process, so fake salts stay stable while the server runs."""
        self._pwfile = (
            pwfile if isinstance(pwfile, PasswordFile) else PasswordFile(pwfile)
        )
        self._penalty = penalty if penalty is not None else LoginPenalty()
        self._cache = cache if cache is not None else VerificationCache()
        self._failure_delay = failure_delay
        self._verify = verify
        self._dummy_hash = dummy_hash
        self._stand_in: tuple[int, str] | None = None  # (generation, hash)
        self._dummy_lock = threading.Lock()
        self._sleep = sleep
        self._cache_generation = -1
        self._scram_secret = (
            scram_secret if scram_secret is not None else secrets.token_bytes(32)
        )
        self._scram_iterations: tuple[int, int] | None = None  # (generation, i)
        workers = (
            max_workers if max_workers is not None else min(4, os.cpu_count() or 1)
        )
        self._executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="asimap-auth"
        )

    async def authenticate(
        self, username: str, password: str, peer_host: str
    ) -> Account | None:
        """The account on success, None on any failure (see module doc)."""
        async with self._penalty.turn(peer_host):
            await self._serve_penalty(username, peer_host)
            entry = await self._in_pool(self._pwfile.lookup, username)
            self._sync_cache_generation()
            if entry is not None and self._cache.contains(
                username, password, entry.password_hash
            ):
                self._penalty.record_success(username, peer_host)
                return Account(entry.username, entry.maildir)

            outcome = await self._in_pool(self._check, username, password)
            self._sync_cache_generation()
            if outcome.verified and outcome.entry is not None:
                if outcome.generation == self._pwfile.generation:
                    self._cache.add(username, password, outcome.entry.password_hash)
                self._penalty.record_success(username, peer_host)
                log.info("login: user %r from %s", username, peer_host)
                return Account(outcome.entry.username, outcome.entry.maildir)

            self._penalty.record_failure(username, peer_host)
            log.info(
                "failed login: user %r from %s: %s",
                username,
                peer_host,
                _failure_reason(outcome.entry),
            )
            await self._sleep(self._failure_delay)
            return None

    async def scram_lookup(self, username: str) -> ScramLookup:
        """SCRAM credentials for ``username``: real for a ``pbkdf2_sha256``
        hash, fake (and no account) for anyone else; looked up in the pool
        because reading the password file blocks."""
        return await self._in_pool(self._scram_lookup, username)

    async def scram_outcome(
        self, lookup: ScramLookup, proof_valid: bool, peer_host: str
    ) -> Account | None:
        """Penalise, log and delay a SCRAM attempt exactly as a password
        login: the penalty is served before the answer."""
        username = lookup.username
        async with self._penalty.turn(peer_host):
            await self._serve_penalty(username, peer_host)
            if proof_valid and lookup.account is not None:
                self._penalty.record_success(username, peer_host)
                log.info("login (SCRAM-SHA-256): user %r from %s", username, peer_host)
                return lookup.account
            self._penalty.record_failure(username, peer_host)
            log.info(
                "failed login (SCRAM-SHA-256): user %r from %s: %s",
                username,
                peer_host,
                "wrong password"
                if lookup.account is not None
                else "unknown user, or a hash SCRAM cannot use",
            )
            await self._sleep(self._failure_delay)
            return None

    async def _serve_penalty(self, username: str, peer_host: str) -> None:
        """Wait what recent failures from ``peer_host`` ask for, saying why."""
        penalty = self._penalty.penalty(username, peer_host)
        if penalty.delay > 0:
            log.info(
                "login of user %r from %s delayed %.0f s: %s",
                username,
                peer_host,
                penalty.delay,
                penalty.describe(),
            )
            await self._sleep(penalty.delay)

    def reload(self) -> None:
        """Re-read the password file now (SIGHUP), whatever its signature
        says; cached successes are forgotten with the old generation.
        Blocking: call it in a thread."""
        self._pwfile.refresh(force=True)

    def close(self) -> None:
        """Stop the hashing threads (pending verifications finish first)."""
        self._executor.shutdown(wait=True)

    async def _in_pool(self, func: Callable[..., _T], *args: object) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, func, *args)

    def _sync_cache_generation(self) -> None:
        # The password file was re-read: forget every cached success, even
        # for users whose line did not change -- cheap, and simple to trust.
        generation = self._pwfile.generation
        if generation != self._cache_generation:
            self._cache.clear()
            self._cache_generation = generation

    def _check(self, username: str, password: str) -> _Outcome:
        """Look up and verify, in a pool thread."""
        entry = self._pwfile.lookup(username)
        generation = self._pwfile.generation
        if entry is None or not hashers.is_usable(entry.password_hash):
            # Same work as a real check, so timing does not reveal whether
            # the user exists or has a usable password.
            self._verify(password, self._get_dummy_hash())
            return _Outcome(entry, False, generation)
        return _Outcome(entry, self._verify(password, entry.password_hash), generation)

    def _scram_lookup(self, username: str) -> ScramLookup:
        """Look up in a pool thread (see :meth:`scram_lookup`)."""
        entry = self._pwfile.lookup(username)
        credentials = None
        if entry is not None and hashers.is_usable(entry.password_hash):
            credentials = scram.credentials_from_django(entry.password_hash)
        if entry is None or credentials is None:
            fake = scram.fake_credentials(
                self._scram_secret, username, self._fake_iterations()
            )
            return ScramLookup(username, fake, None)
        return ScramLookup(
            username, credentials, Account(entry.username, entry.maildir)
        )

    def _fake_iterations(self) -> int:
        """The iteration count real users most often have, so that a fake
        one does not stand out; Django's default when nobody has one."""
        with self._dummy_lock:
            generation = self._pwfile.generation
            if (
                self._scram_iterations is None
                or self._scram_iterations[0] != generation
            ):
                counts = Counter(
                    credentials.iterations
                    for entry in self._pwfile.entries()
                    if (
                        credentials := scram.credentials_from_django(
                            entry.password_hash
                        )
                    )
                    is not None
                )
                common = counts.most_common(1)
                iterations = (
                    common[0][0] if common else hashers.DEFAULT_PBKDF2_ITERATIONS
                )
                self._scram_iterations = (generation, iterations)
            return self._scram_iterations[1]

    def _get_dummy_hash(self) -> str:
        """The hash an unknown user's password is checked against (see the
        module doc); chosen again when the password file changes."""
        with self._dummy_lock:
            if self._dummy_hash is not None:  # given by a test
                return self._dummy_hash
            generation = self._pwfile.generation
            if self._stand_in is None or self._stand_in[0] != generation:
                self._stand_in = (generation, self._pick_stand_in())
            return self._stand_in[1]

    def _pick_stand_in(self) -> str:
        usable = [
            entry.password_hash
            for entry in self._pwfile.entries()
            if hashers.is_usable(entry.password_hash)
        ]
        if not usable:
            return hashers.make_password(secrets.token_urlsafe(16))
        costs = Counter(_cost_of(encoded) for encoded in usable)
        common = costs.most_common(1)[0][0]
        return next(encoded for encoded in usable if _cost_of(encoded) == common)


def _cost_of(encoded: str) -> str:
    """Algorithm and work factor of a Django hash, without salt and digest:
    ``pbkdf2_sha256$1000000``, ``bcrypt_sha256$$2b$12``; the algorithm
    alone for the cheap legacy ones."""
    algorithm = hashers.identify_algorithm(encoded)
    if algorithm.startswith("pbkdf2_"):
        return "$".join(encoded.split("$")[:2])
    if algorithm.startswith("bcrypt"):
        return encoded[: encoded.rfind("$")]
    fields = encoded.split("$")
    if algorithm == "argon2":  # argon2$argon2id$v=19$m=..,t=..,p=..$salt$hash
        return "$".join(fields[:-2])
    if algorithm == "scrypt" and len(fields) == 6:  # scrypt$n$salt$r$p$hash
        return "$".join((fields[0], fields[1], fields[3], fields[4]))
    return algorithm


def _failure_reason(entry: PasswordEntry | None) -> str:
    """For the log only; the client is told nothing of this."""
    if entry is None:
        return "unknown user"
    if not hashers.is_usable(entry.password_hash):
        return "unusable password"
    return "wrong password"
