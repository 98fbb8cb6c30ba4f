"""What one simulated user does in one session, and how often.

A session is: CONNECT (TCP, greeting, TLS), LOGIN, what a client does on
connecting (``list`` times ``LIST "" "*"``, ``status`` times STATUS of a
listed folder - a mail client's first look at its folders), SELECT INBOX,
then a *block* of mail-client work repeated ``repeat`` times, then LOGOUT.
The block holds, in this order and as many times as the :class:`Mix` says:

* ``UID FETCH 1:* (UID FLAGS)`` - a client resynchronising its flag cache;
* ``UID FETCH <newest 20> (UID BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT
  DATE)])`` - drawing the message list;
* ``UID FETCH <newest 20> (UID FLAGS ENVELOPE)`` - the same, as clients
  that ask for ENVELOPE do (``fetch_envelope``);
* ``UID FETCH u BODY.PEEK[]`` - opening messages;
* ``UID STORE u +FLAGS (\\Seen)`` / ``(\\Flagged)`` alternately;
* ``APPEND`` of a corpus message - saving a draft or a sent copy;
* ``UID SEARCH <criteria>``;
* ``NOOP`` - the poll a client does every few minutes;
* with ``expunge``: marking what this session appended ``\\Deleted`` and
  expunging it, inside the block, so that in a long-lived session the
  changes flow to the user's other connections while they work (they see
  them as untagged EXISTS/EXPUNGE/FETCH on their next command);

and finally every appended message is marked ``\\Deleted`` and expunged
(``UID EXPUNGE`` when the server has UIDPLUS, RFC 4315 section 2.1; plain
EXPUNGE otherwise) so the mailbox does not grow during a long run.

Every command is timed under a label; NO/BAD and lost connections are
counted as errors of that label and never stop the generator.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

from bench.imapload.client import ImapClient, ImapError, TaggedResult, quote
from bench.imapload.stats import LatencyStats

_EXISTS = re.compile(rb"^\* (\d+) EXISTS", re.IGNORECASE)
_UID_ITEM = re.compile(rb"\bUID (\d+)", re.IGNORECASE)
_APPENDUID = re.compile(rb"\[APPENDUID \d+ (\d+)\]", re.IGNORECASE)
_SEARCH = re.compile(rb"^\* SEARCH\b(.*)$", re.IGNORECASE)
#: ``* LIST (attrs) "/" name``; the name as sent (quoted or atom), reusable
#: as is in a STATUS command.
_LIST_NAME = re.compile(rb'^\* LIST \(([^)]*)\) (?:"[^"]*"|NIL) (.+)$', re.IGNORECASE)
STATUS_ITEMS = b" (MESSAGES UIDNEXT UNSEEN)"
ENVELOPE_ITEMS = b"(UID FLAGS ENVELOPE)"

HEADER_FIELDS = b"BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)]"
NEWEST = 20


@dataclass(frozen=True, slots=True)
class Mix:
    """How many times each step runs per block (0 disables it)."""

    fetch_flags: int = 1
    fetch_headers: int = 1
    fetch_body: int = 2
    store: int = 2
    append: int = 1
    search: int = 1
    noop: int = 1
    #: After LOGIN, before SELECT.
    list: int = 0
    status: int = 0
    fetch_envelope: int = 0
    #: Expunge this session's appended messages at the end of every block.
    expunge: int = 0

    @classmethod
    def parse(cls, text: str) -> Mix:
        """Parse ``fetch_body=3,search=0``; unnamed steps keep defaults."""
        values: dict[str, int] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, sep, count = item.partition("=")
            if not sep or name not in cls.__dataclass_fields__:
                raise ValueError(f"bad mix item {item!r}")
            values[name] = int(count)
            if values[name] < 0:
                raise ValueError(f"negative count in {item!r}")
        return cls(**values)


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """Everything a session needs besides its user."""

    host: str
    port: int
    security: str
    mix: Mix
    messages: tuple[bytes, ...]
    repeat: int = 1
    think_s: float = 0.0
    search: bytes = b'SUBJECT "usrp"'
    timeout: float = 30.0
    mailbox: str = "INBOX"


class _Aborted(Exception):
    """The session cannot go on (connection lost, LOGIN/SELECT refused)."""


class _Late(Exception):
    """The run's deadline passed before the session got going."""


class Session:
    """One login-to-logout session that records into shared stats."""

    def __init__(
        self,
        settings: SessionSettings,
        user: str,
        password: str,
        stats: LatencyStats,
        rng: random.Random,
        deadline: float,
    ) -> None:
        self.settings = settings
        self.user = user
        self.password = password
        self.stats = stats
        self.rng = rng
        self.deadline = deadline
        self.client = ImapClient(timeout=settings.timeout)
        self.uids: list[int] = []
        self.exists = 0
        self.appended: list[int] = []
        #: Selectable folder names from LIST, as the server wrote them.
        self.folders: list[bytes] = []

    # -- plumbing -----------------------------------------------------------

    def _expired(self) -> bool:
        return time.monotonic() >= self.deadline

    async def _timed(
        self, label: str, action: Callable[[], Awaitable[TaggedResult]]
    ) -> TaggedResult | None:
        """Run one command; record latency or error. None = skipped (late)."""
        if self._expired():
            return None
        if self.settings.think_s > 0:
            await asyncio.sleep(self.rng.uniform(0, 2 * self.settings.think_s))
        start = time.perf_counter()
        try:
            result = await action()
        except ImapError as exc:
            self.stats.error(label, "lost", str(exc))
            raise _Aborted(str(exc)) from exc
        elapsed = time.perf_counter() - start
        if result.ok:
            self.stats.record(label, elapsed)
        else:
            text = result.text.decode("utf-8", "replace")
            self.stats.error(label, result.status, text)
        self._track(result)
        return result

    async def _cmd(self, label: str, line: bytes) -> TaggedResult | None:
        """Time one plain command line (tag and CRLF are added)."""
        return await self._timed(label, partial(self.client.command, line))

    def _track(self, result: TaggedResult) -> None:
        """Follow EXISTS so sequence-number fallbacks stay roughly right."""
        for response in result.untagged:
            match = _EXISTS.match(response.text)
            if match:
                self.exists = int(match[1])

    # -- the session --------------------------------------------------------

    async def run(self) -> bool | None:
        """Run the session: True = reached LOGOUT, False = failed, None = the
        deadline passed before it could log in (neither success nor failure).
        """
        try:
            await self._connect()
            await self._login_and_select()
            for _ in range(self.settings.repeat):
                if self._expired():
                    break
                await self._block()
            await self._cleanup()
            if self._expired():
                await self.client.logout()
            else:
                await self._timed("LOGOUT", self.client.logout)
            return True
        except _Late:
            return None
        except (_Aborted, ImapError):
            return False
        finally:
            self.client.close()

    async def _connect(self) -> None:
        async def connect() -> TaggedResult:
            await self.client.connect(
                self.settings.host, self.settings.port, security=self.settings.security
            )
            return TaggedResult("OK", b"", [])

        if await self._timed("CONNECT", connect) is None:
            raise _Late()

    async def _login_and_select(self) -> None:
        login = await self._timed(
            "LOGIN", partial(self.client.login, self.user, self.password)
        )
        if login is None:
            raise _Late()
        if not login.ok:
            raise _Aborted("login failed")
        for _ in range(self.settings.mix.list):
            await self._list()
        for _ in range(self.settings.mix.status):
            folder = self.rng.choice(self.folders) if self.folders else b"INBOX"
            await self._cmd("STATUS", b"STATUS " + folder + STATUS_ITEMS)
        select = await self._cmd("SELECT", b"SELECT " + quote(self.settings.mailbox))
        if select is None:
            raise _Late()
        if not select.ok:
            raise _Aborted("select failed")

    async def _block(self) -> None:
        mix = self.settings.mix
        for _ in range(mix.fetch_flags):
            await self._fetch_flags()
        for _ in range(mix.fetch_headers):
            await self._cmd("FETCH_HEADERS", self._newest_fetch())
        for _ in range(mix.fetch_envelope):
            await self._cmd("FETCH_ENVELOPE", self._newest_fetch(ENVELOPE_ITEMS))
        for _ in range(mix.fetch_body):
            line = self._set_command(b"FETCH", self._pick()) + b" BODY.PEEK[]"
            await self._cmd("FETCH_BODY", line)
        for i in range(mix.store):
            flag = b"\\Seen" if i % 2 == 0 else b"\\Flagged"
            line = (
                self._set_command(b"STORE", self._pick()) + b" +FLAGS (" + flag + b")"
            )
            await self._cmd("STORE", line)
        for _ in range(mix.append):
            await self._append()
        for _ in range(mix.search):
            await self._cmd("SEARCH", b"UID SEARCH " + self.settings.search)
        for _ in range(mix.noop):
            await self._cmd("NOOP", b"NOOP")
        if mix.expunge and self.appended and not self._expired():
            await self._expunge_appended()

    async def _list(self) -> None:
        result = await self._cmd("LIST", b'LIST "" "*"')
        if result is None or not result.ok:
            return
        folders: list[bytes] = []
        for response in result.untagged:
            match = _LIST_NAME.match(response.text)
            if match and b"\\noselect" not in match[1].lower():
                folders.append(match[2])
        self.folders = folders

    async def _fetch_flags(self) -> None:
        result = await self._cmd("FETCH_FLAGS", b"UID FETCH 1:* (UID FLAGS)")
        if result is not None and result.ok:
            uids: list[int] = []
            for response in result.untagged:
                match = _UID_ITEM.search(response.text)
                if match:
                    uids.append(int(match[1]))
            self.uids = uids

    def _pick(self) -> int:
        """A random message: a UID if we know them, else a sequence number."""
        if self.uids:
            return self.rng.choice(self.uids)
        return self.rng.randint(1, max(1, self.exists))

    def _set_command(self, verb: bytes, target: int) -> bytes:
        prefix = b"UID " if self.uids else b""
        return prefix + verb + b" %d" % target

    def _newest_fetch(self, items: bytes = b"(UID " + HEADER_FIELDS + b")") -> bytes:
        if self.uids:
            newest = sorted(self.uids)[-NEWEST:]
            uid_set = b"%d:%d" % (newest[0], newest[-1])
            return b"UID FETCH " + uid_set + b" " + items
        low = max(1, self.exists - NEWEST + 1)
        return b"FETCH %d:%d " % (low, max(1, self.exists)) + items

    async def _append(self) -> None:
        token = b"%s-%d" % (self.user.encode(), self.rng.getrandbits(48))
        message = (
            b"X-Imapload-Id: "
            + token
            + b"\r\n"
            + self.rng.choice(self.settings.messages)
        )
        result = await self._timed(
            "APPEND", partial(self.client.append, self.settings.mailbox, message)
        )
        if result is None or not result.ok:
            return
        match = _APPENDUID.search(result.text)
        if match:
            self.appended.append(int(match[1]))
            return
        # No UIDPLUS: find the message by its unique header instead.
        found = await self._cmd(
            "SEARCH_APPENDED",
            b"UID SEARCH HEADER X-Imapload-Id " + quote(token.decode()),
        )
        if found is not None and found.ok:
            for response in found.untagged:
                hit = _SEARCH.match(response.text)
                if hit:
                    self.appended.extend(int(uid) for uid in hit[1].split())

    def _delete_commands(self) -> tuple[bytes, bytes]:
        """STORE \\Deleted and (UID) EXPUNGE of what this session appended."""
        uid_set = b",".join(b"%d" % uid for uid in self.appended)
        self.appended = []
        store = b"UID STORE " + uid_set + b" +FLAGS.SILENT (\\Deleted)"
        if "UIDPLUS" in self.client.capabilities:
            return store, b"UID EXPUNGE " + uid_set
        return store, b"EXPUNGE"

    async def _expunge_appended(self) -> None:
        store, expunge = self._delete_commands()
        await self._cmd("STORE_DELETED", store)
        await self._cmd("EXPUNGE", expunge)

    async def _cleanup(self) -> None:
        """Delete what this session appended (RFC 9051 sections 6.4.3, 6.4.9).

        Runs even after the deadline, unmeasured, so that the mailbox keeps
        its populated size from one run to the next.
        """
        if not self.appended:
            return
        store, expunge = self._delete_commands()
        if self._expired():
            try:
                await self.client.command(store)
                await self.client.command(expunge)
            except ImapError as exc:
                raise _Aborted(str(exc)) from exc
            return
        await self._cmd("STORE_DELETED", store)
        await self._cmd("EXPUNGE", expunge)
