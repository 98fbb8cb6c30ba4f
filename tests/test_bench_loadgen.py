"""The load generator, against a scripted fake IMAP server on loopback.

The fake server is tiny and strict about what it expects, so these tests
check what the generator *sends* (UIDs taken from FETCH text and never from
literal contents, APPEND literal forms, deleting exactly what it appended)
as well as what it *counts* (NO/BAD/disconnect/timeout as errors of the right
command, never a crash) and that every run ends by itself.  A last test
drives a real private Dovecot when one is installed.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.imapload.client import ImapClient, ImapError, read_response
from bench.imapload.corpus import split_mbox
from bench.imapload.runner import (
    Credentials,
    RunPlan,
    make_users,
    populate,
    run_load,
)
from bench.imapload.scenario import Mix, SessionSettings
from bench.imapload.stats import LatencyStats, percentile

MESSAGE = b"From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n"

# -- percentile math ---------------------------------------------------------


def test_percentile_nearest_rank() -> None:
    samples = [float(i) for i in range(1, 101)]  # 1..100
    assert percentile(samples, 50) == 50.0
    assert percentile(samples, 90) == 90.0
    assert percentile(samples, 99) == 99.0
    assert percentile(samples, 100) == 100.0
    assert percentile(samples, 0) == 1.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) == 0.0
    # Nearest rank never interpolates: p50 of 4 samples is the 2nd.
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 51) == 3.0
    with pytest.raises(ValueError):
        percentile(samples, 101)


def test_stats_report_counts_errors_apart_from_latencies() -> None:
    stats = LatencyStats()
    for ms in (1, 2, 3, 4):
        stats.record("NOOP", ms / 1000)
    stats.error("NOOP")
    other = LatencyStats()
    other.record("NOOP", 0.010)
    other.sessions_completed = 2
    stats.merge([other])
    report = stats.report(elapsed=2.0)
    noop = report["per_command"]["NOOP"]
    assert noop["count"] == 6 and noop["errors"] == 1
    assert noop["p50_ms"] == pytest.approx(3.0)
    assert noop["max_ms"] == pytest.approx(10.0)
    assert report["commands_per_s"] == pytest.approx(2.5)  # 5 ok / 2 s
    assert report["sessions_completed"] == 2


# -- response reading with literals -------------------------------------------


def _reader(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_read_response_cuts_literals_out_of_text() -> None:
    first = b"UID 999)\r\n* 5 EXISTS\r\n"
    data = (
        b"* 1 FETCH (UID 10 BODY[] {%d}\r\n" % len(first)
        + first
        + b" X {3}\r\nabc)\r\nA1 OK done\r\n"
    )
    reader = _reader(data)
    response = await read_response(reader)
    assert response.text == b"* 1 FETCH (UID 10 BODY[] {%d} X {3})" % len(first)
    assert response.literals == [first, b"abc"]
    tagged = await read_response(reader)
    assert tagged.text == b"A1 OK done" and tagged.literals == []


async def test_read_response_empty_literal_and_eof() -> None:
    reader = _reader(b"* 2 FETCH (BODY[] {0}\r\n)\r\n* 3 FETCH (BODY[] {10}\r\nshort")
    response = await read_response(reader)
    assert response.literals == [b""] and response.text.endswith(b"{0})")
    with pytest.raises(ImapError):
        await read_response(reader)


async def test_read_response_refuses_oversized_literal() -> None:
    with pytest.raises(ImapError):
        await read_response(_reader(b"* 1 FETCH (BODY[] {100}\r\n"), max_literal=10)


# -- corpus and mix ------------------------------------------------------------


def test_split_mbox_unquotes_and_uses_crlf() -> None:
    mbox = (
        b"From a@b Mon Jan  1 00:00:00 2024\n"
        b"Subject: one\n\n>From the start\nline\n\n"
        b"From c@d Mon Jan  1 00:00:00 2024\n"
        b"Subject: two\n\nbody\nFrom inside a paragraph is no separator\n"
    )
    messages = split_mbox(mbox)
    assert messages == [
        b"Subject: one\r\n\r\nFrom the start\r\nline\r\n",
        b"Subject: two\r\n\r\nbody\r\nFrom inside a paragraph is no separator\r\n",
    ]


def test_mix_parse() -> None:
    assert Mix.parse("") == Mix()
    assert Mix.parse("fetch_body=3, search=0") == Mix(fetch_body=3, search=0)
    for bad in ("nosuch=1", "search", "noop=-1"):
        with pytest.raises(ValueError):
            Mix.parse(bad)


def test_make_users() -> None:
    assert make_users("u%d", "p", 2) == [Credentials("u1", "p"), Credentials("u2", "p")]
    assert make_users("alice", "p", 5) == [Credentials("alice", "p")]


# -- a scripted fake server ----------------------------------------------------

_LITERAL = re.compile(rb"\{(\d+)(\+?)\}\r\n\Z")


@dataclass
class FakeServer:
    """Just enough IMAP for one scenario; records every command line.

    ``fail`` maps a verb to what happens: "NO", "BAD", "drop" (close the
    connection) or "hang" (never answer).
    """

    literal_plus: bool = True
    fail: dict[str, str] = field(default_factory=dict)
    commands: list[bytes] = field(default_factory=list)
    appended: list[bytes] = field(default_factory=list)
    #: The literal markers clients sent: b"{44}" or b"{44+}".
    literal_markers: list[bytes] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    async def __aenter__(self) -> FakeServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        # Python 3.11 has no Server.close_clients(): end the handlers here.
        for task in self._handlers:
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        caps = b"IMAP4rev1 UIDPLUS" + (b" LITERAL+" if self.literal_plus else b"")
        writer.write(b"* OK [CAPABILITY " + caps + b"] fake ready\r\n")
        try:
            while True:
                line = await reader.readuntil(b"\r\n")
                literals: list[bytes] = []
                while match := _LITERAL.search(line):
                    self.literal_markers.append(line[match.start() : -2])
                    if not match[2]:
                        writer.write(b"+ go ahead\r\n")
                    literals.append(await reader.readexactly(int(match[1])))
                    line = line[: match.start()] + await reader.readuntil(b"\r\n")
                tag, _, rest = line.rstrip(b"\r\n").partition(b" ")
                self.commands.append(rest)
                words = rest.split()
                verb = words[0].upper().decode()
                if verb == "UID":
                    verb = words[1].upper().decode()
                action = self.fail.get(verb)
                if action == "drop":
                    writer.close()
                    return
                if action == "hang":
                    await asyncio.sleep(3600)
                if action in ("NO", "BAD"):
                    writer.write(tag + b" " + action.encode() + b" refused\r\n")
                    continue
                if verb == "APPEND":
                    self.appended.extend(literals)
                writer.write(self._answer(tag, verb, rest))
                await writer.drain()
                if verb == "LOGOUT":
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def _answer(self, tag: bytes, verb: str, rest: bytes) -> bytes:
        ok = tag + b" OK done\r\n"
        if verb == "SELECT":
            return b"* 3 EXISTS\r\n* OK [UIDVALIDITY 1] x\r\n" + ok
        if verb == "FETCH" and b"(UID FLAGS)" in rest:
            return (
                b"* 1 FETCH (UID 10 FLAGS ())\r\n"
                b"* 2 FETCH (FLAGS (\\Seen) UID 11)\r\n"
                b"* 3 FETCH (UID 12 FLAGS ())\r\n" + ok
            )
        if verb == "FETCH":
            # The literal mentions a UID that does not exist: a client that
            # parsed literal contents as response text would use it.
            trap = b"Subject: UID 999\r\n* 9 EXISTS\r\n\r\n"
            return (
                b"* 1 FETCH (UID 10 BODY[] {%d}\r\n" % len(trap) + trap + b")\r\n" + ok
            )
        if verb == "APPEND":
            return tag + b" OK [APPENDUID 1 77] appended\r\n"
        if verb == "SEARCH":
            return b"* SEARCH 10 12\r\n" + ok
        if verb == "LIST":
            return (
                b'* LIST (\\HasNoChildren) "/" INBOX\r\n'
                b'* LIST (\\Noselect) "/" top\r\n'
                b'* LIST () "/" "top/Sent Items"\r\n' + ok
            )
        if verb == "LOGOUT":
            return b"* BYE bye\r\n" + ok
        return ok


def _settings(port: int, **overrides: object) -> SessionSettings:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "plain",
        "mix": Mix(),
        "messages": (MESSAGE,),
        "timeout": 5.0,
    }
    values.update(overrides)
    return SessionSettings(**values)  # type: ignore[arg-type]


USERS = [Credentials("user1", "pw")]


async def test_sessions_against_fake_server() -> None:
    async with FakeServer() as fake:
        plan = RunPlan(clients=3, duration=None, sessions_per_client=2, max_duration=20)
        report = await run_load(_settings(fake.port), USERS, plan)
    per = report["per_command"]
    assert report["errors"] == 0
    assert report["sessions_completed"] == 6 and report["sessions_failed"] == 0
    for label, expected in {
        "CONNECT": 6,
        "LOGIN": 6,
        "SELECT": 6,
        "FETCH_FLAGS": 6,
        "FETCH_HEADERS": 6,
        "FETCH_BODY": 12,
        "STORE": 12,
        "APPEND": 6,
        "SEARCH": 6,
        "NOOP": 6,
        "STORE_DELETED": 6,
        "EXPUNGE": 6,
        "LOGOUT": 6,
    }.items():
        assert per[label]["count"] == expected, label
    sent = fake.commands
    assert sent.count(b'LOGIN "user1" "pw"') == 6
    headers = [c for c in sent if b"HEADER.FIELDS" in c]
    assert headers and all(
        c.startswith(b"UID FETCH 10:12 (UID BODY.PEEK") for c in headers
    )
    # Message UIDs come from FETCH text only - never 999 from the literal.
    targets = [c.split()[2] for c in sent if c.startswith((b"UID STORE", b"UID FETCH"))]
    assert b"999" not in b" ".join(targets)
    assert {c.split()[2] for c in sent if c.endswith(b"BODY.PEEK[]")} <= {
        b"10",
        b"11",
        b"12",
    }
    # Exactly what was appended (APPENDUID 77) is deleted and expunged.
    assert sent.count(b"UID STORE 77 +FLAGS.SILENT (\\Deleted)") == 6
    assert sent.count(b"UID EXPUNGE 77") == 6
    assert all(
        m.endswith(MESSAGE) and m.startswith(b"X-Imapload-Id: ") for m in fake.appended
    )
    # LITERAL+ advertised: APPEND saves the round trip (RFC 7888).
    assert all(marker.endswith(b"+}") for marker in fake.literal_markers)


async def test_synchronizing_literal_waits_for_continuation() -> None:
    async with FakeServer(literal_plus=False) as fake:
        client = ImapClient(timeout=5)
        await client.connect("127.0.0.1", fake.port)
        assert "LITERAL+" not in client.capabilities
        result = await client.append("INBOX", MESSAGE, flags="\\Seen")
        assert result.ok and result.text.startswith(b"[APPENDUID 1 77]")
        await client.logout()
    assert fake.appended == [MESSAGE]
    assert fake.commands[-2] == b'APPEND "INBOX" (\\Seen) '
    assert fake.literal_markers == [b"{%d}" % len(MESSAGE)]


async def test_no_and_bad_are_counted_and_session_goes_on() -> None:
    async with FakeServer(fail={"NOOP": "BAD", "SEARCH": "NO"}) as fake:
        plan = RunPlan(clients=2, duration=None, sessions_per_client=2, max_duration=20)
        report = await run_load(_settings(fake.port), USERS, plan)
    per = report["per_command"]
    assert per["NOOP"] == {**per["NOOP"], "count": 4, "errors": 4}
    assert per["SEARCH"]["errors"] == 4
    assert per["NOOP"]["error_kinds"] == {"BAD": 4}
    assert per["SEARCH"]["error_kinds"] == {"NO": 4}
    assert per["SEARCH"]["error_samples"][0] == "NO: refused"
    assert per["NOOP"]["p50_ms"] == 0.0  # failures carry no latency
    assert per["LOGOUT"]["count"] == 4 and per["LOGOUT"]["errors"] == 0
    assert report["errors"] == 8 and report["sessions_completed"] == 4


async def test_refused_login_fails_session_without_crash() -> None:
    async with FakeServer(fail={"LOGIN": "NO"}) as fake:
        plan = RunPlan(clients=2, duration=0.5, max_duration=5)
        report = await run_load(_settings(fake.port), USERS, plan)
    assert report["per_command"]["LOGIN"]["errors"] >= 2
    assert report["sessions_completed"] == 0 and report["sessions_failed"] >= 2
    assert "SELECT" not in report["per_command"]


async def test_disconnect_is_an_error_and_run_continues() -> None:
    async with FakeServer(fail={"SEARCH": "drop"}) as fake:
        plan = RunPlan(clients=2, duration=None, sessions_per_client=3, max_duration=20)
        report = await run_load(_settings(fake.port), USERS, plan)
    per = report["per_command"]
    assert per["SEARCH"]["count"] == 6 and per["SEARCH"]["errors"] == 6
    assert per["SEARCH"]["error_kinds"] == {"lost": 6}
    assert report["sessions_failed"] == 6
    assert "NOOP" not in per  # the session stopped at the lost connection


async def test_unreachable_server_is_counted() -> None:
    async with FakeServer() as fake:
        port = fake.port
    plan = RunPlan(clients=1, duration=None, sessions_per_client=3, max_duration=5)
    report = await run_load(_settings(port), USERS, plan)
    assert report["per_command"]["CONNECT"] == {
        **report["per_command"]["CONNECT"],
        "count": 3,
        "errors": 3,
    }


async def test_hanging_server_run_is_bounded() -> None:
    async with FakeServer(fail={"SELECT": "hang"}) as fake:
        plan = RunPlan(clients=2, duration=0.5, max_duration=5)
        started = time.monotonic()
        report = await run_load(_settings(fake.port, timeout=0.3), USERS, plan)
        took = time.monotonic() - started
    assert took < 3
    assert report["per_command"]["SELECT"]["errors"] >= 2
    assert report["elapsed_s"] <= 0.5 + 1e-6


async def test_populate_tops_up_to_count() -> None:
    async with FakeServer() as fake:
        added = await populate(
            "127.0.0.1", fake.port, "plain", USERS, [MESSAGE, MESSAGE + b"2"], 5
        )
    assert added == 2  # the fake INBOX already "holds" 3 messages
    assert fake.appended == [MESSAGE + b"2", MESSAGE]


# -- a real Dovecot ------------------------------------------------------------


def test_against_private_dovecot() -> None:
    from bench.dovecot import DovecotServer

    from conftest import require_tool

    require_tool("dovecot")
    users = make_users("bench%d", "secret", 2)
    with DovecotServer(users) as server:

        async def scenario() -> dict[str, object]:
            await populate(
                server.host, server.port, "starttls", users, [MESSAGE] * 3, 25
            )
            settings = _settings(server.port, security="starttls", search=b"ALL")
            plan = RunPlan(
                clients=2, duration=None, sessions_per_client=2, max_duration=30
            )
            return await run_load(settings, users, plan)

        report = asyncio.run(scenario())
    assert report["errors"] == 0, report
    assert report["sessions_completed"] == 4
    per = report["per_command"]
    assert isinstance(per, dict) and per["FETCH_BODY"]["count"] == 8


async def test_generator_bug_is_reported_not_fatal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bench.imapload import scenario

    async def broken_block(self: scenario.Session) -> None:
        raise RuntimeError("simulated generator bug")

    monkeypatch.setattr(scenario.Session, "_block", broken_block)
    async with FakeServer() as fake:
        plan = RunPlan(clients=2, duration=None, sessions_per_client=2, max_duration=10)
        report = await run_load(_settings(fake.port), USERS, plan)
    internal = report["per_command"]["INTERNAL"]
    assert internal["errors"] == 4 and internal["error_kinds"] == {"bug": 4}
    assert "simulated generator bug" in internal["error_samples"][0]
    assert report["sessions_failed"] == 4


# -- the suite's mixes ---------------------------------------------------------


def test_mix_parse_new_steps() -> None:
    mix = Mix.parse("list=1,status=2,fetch_envelope=1,expunge=1")
    assert (mix.list, mix.status, mix.fetch_envelope, mix.expunge) == (1, 2, 1, 1)
    assert Mix() == Mix.parse("list=0,status=0,fetch_envelope=0,expunge=0")


async def test_list_status_envelope_and_expunge_in_block() -> None:
    mix = Mix.parse("list=1,status=3,fetch_envelope=1,expunge=1")
    async with FakeServer() as fake:
        plan = RunPlan(clients=1, duration=None, sessions_per_client=1, max_duration=20)
        report = await run_load(_settings(fake.port, mix=mix, repeat=2), USERS, plan)
    per = report["per_command"]
    assert report["errors"] == 0
    assert per["LIST"]["count"] == 1 and per["STATUS"]["count"] == 3
    assert per["FETCH_ENVELOPE"]["count"] == 2
    # Expunged inside every block (2), so nothing is left for the cleanup.
    assert per["EXPUNGE"]["count"] == 2 and per["STORE_DELETED"]["count"] == 2
    sent = fake.commands
    statuses = [c for c in sent if c.startswith(b"STATUS ")]
    # Only selectable folders from LIST, named exactly as the server wrote them.
    assert {c.rsplit(b" (", 1)[0] for c in statuses} <= {
        b"STATUS INBOX",
        b'STATUS "top/Sent Items"',
    }
    assert all(c.endswith(b"(MESSAGES UIDNEXT UNSEEN)") for c in statuses)
    assert sent.index(b'LIST "" "*"') < sent.index(b'SELECT "INBOX"')
    assert b"UID FETCH 10:12 (UID FLAGS ENVELOPE)" in sent
    assert sent.count(b"UID EXPUNGE 77") == 2


def test_stalls_are_counted_overall_and_per_command() -> None:
    stats = LatencyStats()
    for seconds in (0.01, 0.02, 3.5, 4.0):
        stats.record("FETCH", seconds)
    stats.record("NOOP", 0.001)
    report = stats.report(1.0)
    assert report["stalls"] == 2
    assert report["per_command"]["FETCH"]["stalls"] == 2
    assert report["per_command"]["NOOP"]["stalls"] == 0
    assert report["p50_ms"] == 20.0 and report["p99_ms"] == 4000.0


async def test_multiappend_is_one_command_of_literals() -> None:
    async with FakeServer() as fake:
        client = ImapClient(timeout=5)
        await client.connect("127.0.0.1", fake.port)
        result = await client.multiappend("INBOX", [MESSAGE, MESSAGE + b"2"])
        assert result.ok
        await client.logout()
    assert fake.appended == [MESSAGE, MESSAGE + b"2"]
    appends = [c for c in fake.commands if c.startswith(b"APPEND")]
    assert len(appends) == 1
    assert fake.literal_markers == [
        b"{%d+}" % len(MESSAGE),
        b"{%d+}" % (len(MESSAGE) + 1),
    ]
