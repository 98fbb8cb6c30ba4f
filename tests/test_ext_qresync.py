"""Transcripts: QRESYNC (RFC 7162 section 3.2).

MODSEQs are the memory store's: it starts at 1 and every append, flag
change or expunge takes the next number.  Where a transcript must name the
UIDVALIDITY (the QRESYNC parameter), the set-up reads it from the store and
the script is built afterwards.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path

from asimap.auth.account import Account
from asimap.store.base import Store, StoreMode
from asimap.store.memory import MemoryMailbox
from asimap.store.mh.profile import Profile
from asimap.store.mh.store import MHStore
from conftest import PASSWORD, USER, ServerThread, TlsFiles
from transcript import World, add_messages, message, run_transcript

LOGIN1 = """
C1 a LOGIN alice secret-a
S1 a OK %*
C1 e ENABLE QRESYNC
S1 * ENABLED QRESYNC
S1 e OK Enable completed
"""

LOGIN2 = """
C2 a LOGIN alice secret-a
S2 a OK %*
"""


def select_lines(client: int, exists: int, recent: int, uidnext: int) -> str:
    """A plain SELECT INBOX of a mailbox whose messages are all unseen."""
    return f"""
    C{client} s SELECT INBOX
    S{client} * FLAGS %*
    S{client} * OK [PERMANENTFLAGS %*
    S{client} * {exists} EXISTS
    S{client} * {recent} RECENT
    S{client} * OK [UNSEEN 1] %*
    S{client} * OK [UIDVALIDITY %?] UIDs valid
    S{client} * OK [UIDNEXT {uidnext}] Predicted next UID
    S{client} * OK [MAILBOXID (%?)] %*
    S{client} * OK [HIGHESTMODSEQ %?] Highest
    """


async def inbox_with(world: World, count: int) -> MemoryMailbox:
    await add_messages(
        world, "alice", "INBOX", *(message(f"m{n}") for n in range(1, count + 1))
    )
    box = await world.stores["alice"].mailbox("INBOX")
    assert isinstance(box, MemoryMailbox)
    return box


async def test_vanished_replaces_expunge() -> None:
    """3.2.10: once QRESYNC is enabled, expunges (own and others') are
    ``* VANISHED uids``, flag changes by others carry UID and MODSEQ, and
    EXPUNGE's tagged OK gives the new HIGHESTMODSEQ."""
    world = World()
    await inbox_with(world, 3)
    await run_transcript(
        LOGIN1
        + select_lines(1, 3, 3, 4)
        + """
        S1 s OK [READ-WRITE] Select completed
        """
        + LOGIN2
        + select_lines(2, 3, 0, 4)
        + """
        S2 s OK [READ-WRITE] Select completed
        C2 b STORE 2 +FLAGS.SILENT (\\Seen)
        S2 b OK Store completed
        C2 c STORE 1,3 +FLAGS.SILENT (\\Deleted)
        S2 c OK Store completed
        C2 d EXPUNGE
        S2 * 3 EXPUNGE
        S2 * 1 EXPUNGE
        S2 d OK Expunge completed
        C1 n NOOP
        S1 * VANISHED 1,3
        S1 * 1 FETCH (UID 2 FLAGS (\\Seen \\Recent) MODSEQ (5))
        S1 n OK NOOP completed
        C1 f STORE 1 +FLAGS.SILENT (\\Deleted)
        S1 * 1 FETCH (UID 2 MODSEQ (8))
        S1 f OK Store completed
        C1 x EXPUNGE
        S1 * VANISHED 2
        S1 x OK [HIGHESTMODSEQ 9] Expunge completed
        """,
        world,
    )


async def test_vanished_in_idle_uid_expunge_and_move() -> None:
    """VANISHED also during IDLE, after UID EXPUNGE (RFC 4315) and after
    MOVE (RFC 6851 section 4.3: COPYUID first, then VANISHED)."""
    world = World()
    await inbox_with(world, 4)
    await run_transcript(
        LOGIN2
        + select_lines(2, 4, 4, 5)
        + """
        S2 s OK [READ-WRITE] Select completed
        C2 b UID STORE 4 +FLAGS.SILENT (\\Deleted)
        S2 b OK Store completed
        """
        + LOGIN1
        + select_lines(1, 4, 0, 5)
        + """
        S1 s OK [READ-WRITE] Select completed
        C1 i IDLE
        S1 + idling
        C2 c UID EXPUNGE 4
        S2 * 4 EXPUNGE
        S2 c OK Expunge completed
        S1 * VANISHED 4
        C1 DONE
        S1 i OK Idle completed
        C1 b UID STORE 1 +FLAGS.SILENT (\\Deleted)
        S1 * 1 FETCH (UID 1 MODSEQ (8))
        S1 b OK Store completed
        C1 c UID EXPUNGE 1:3
        S1 * VANISHED 1
        S1 c OK [HIGHESTMODSEQ 9] Expunge completed
        C1 m UID MOVE 3 Junk
        S1 * OK [COPYUID %? 3 1] Moved
        S1 * VANISHED 3
        S1 m OK Move completed
        C2 n NOOP
        S2 * 3 EXPUNGE
        S2 * 1 EXPUNGE
        S2 n OK NOOP completed
        """,
        world,
    )


def resync_world_script(uidvalidity: int) -> str:
    """Client 2 changes things; client 1 then resynchronises with SELECT
    (QRESYNC ...) in several ways (the examples of 3.2.5)."""
    return (
        LOGIN2
        + select_lines(2, 5, 5, 6)
        + f"""
        S2 s OK [READ-WRITE] Select completed
        C2 b STORE 2 +FLAGS.SILENT (\\Flagged)
        S2 b OK Store completed
        C2 c UID STORE 4 +FLAGS.SILENT (\\Deleted)
        S2 c OK Store completed
        C2 d UID EXPUNGE 4
        S2 * 4 EXPUNGE
        S2 d OK Expunge completed
        {LOGIN1}
        C1 b SELECT INBOX (QRESYNC ({uidvalidity} 6 1:5))
        S1 * FLAGS %*
        S1 * OK [PERMANENTFLAGS %*
        S1 * 4 EXISTS
        S1 * 0 RECENT
        S1 * OK [UNSEEN 1] %*
        S1 * OK [UIDVALIDITY {uidvalidity}] UIDs valid
        S1 * OK [UIDNEXT 6] Predicted next UID
        S1 * OK [MAILBOXID (%?)] %*
        S1 * OK [HIGHESTMODSEQ 9] Highest
        S1 * VANISHED (EARLIER) 4
        S1 * 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ (7))
        S1 b OK [READ-WRITE] Select completed
        # known-uids restrict both answers; [CLOSED] comes first.
        C1 c EXAMINE INBOX (QRESYNC ({uidvalidity} 6 1:3))
        S1 * OK [CLOSED] Previous mailbox closed
        S1 * FLAGS %*
        S1 * OK [PERMANENTFLAGS ()] %*
        S1 * 4 EXISTS
        S1 * 0 RECENT
        S1 * OK [UNSEEN 1] %*
        S1 * OK [UIDVALIDITY {uidvalidity}] UIDs valid
        S1 * OK [UIDNEXT 6] Predicted next UID
        S1 * OK [MAILBOXID (%?)] %*
        S1 * OK [HIGHESTMODSEQ 9] Highest
        S1 * 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ (7))
        S1 c OK [READ-ONLY] Examine completed
        # Without known-uids everything up to UIDNEXT-1 counts; the
        # MODSEQ 1 answer includes every message.
        C1 d EXAMINE INBOX (QRESYNC ({uidvalidity} 1))
        S1 * OK [CLOSED] Previous mailbox closed
        S1 * FLAGS %*
        S1 * OK [PERMANENTFLAGS ()] %*
        S1 * 4 EXISTS
        S1 * 0 RECENT
        S1 * OK [UNSEEN 1] %*
        S1 * OK [UIDVALIDITY {uidvalidity}] UIDs valid
        S1 * OK [UIDNEXT 6] Predicted next UID
        S1 * OK [MAILBOXID (%?)] %*
        S1 * OK [HIGHESTMODSEQ 9] Highest
        S1 * VANISHED (EARLIER) 4
        S1 * 1 FETCH (UID 1 FLAGS () MODSEQ (2))
        S1 * 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ (7))
        S1 * 3 FETCH (UID 3 FLAGS () MODSEQ (4))
        S1 * 4 FETCH (UID 5 FLAGS () MODSEQ (6))
        S1 d OK [READ-ONLY] Examine completed
        # UIDVALIDITY mismatch: a plain SELECT (3.2.5), CONDSTORE shape.
        C1 e SELECT INBOX (QRESYNC (1 6 1:5))
        S1 * OK [CLOSED] Previous mailbox closed
        S1 * FLAGS %*
        S1 * OK [PERMANENTFLAGS %*
        S1 * 4 EXISTS
        S1 * 0 RECENT
        S1 * OK [UNSEEN 1] %*
        S1 * OK [UIDVALIDITY {uidvalidity}] UIDs valid
        S1 * OK [UIDNEXT 6] Predicted next UID
        S1 * OK [MAILBOXID (%?)] %*
        S1 * OK [HIGHESTMODSEQ 9] Highest
        S1 e OK [READ-WRITE] Select completed
        # Up to date: nothing to report.
        C1 f SELECT INBOX (QRESYNC ({uidvalidity} 9 1:5))
        S1 * OK [CLOSED] Previous mailbox closed
        S1 * FLAGS %*
        S1 * OK [PERMANENTFLAGS %*
        S1 * 4 EXISTS
        S1 * 0 RECENT
        S1 * OK [UNSEEN 1] %*
        S1 * OK [UIDVALIDITY {uidvalidity}] UIDs valid
        S1 * OK [UIDNEXT 6] Predicted next UID
        S1 * OK [MAILBOXID (%?)] %*
        S1 * OK [HIGHESTMODSEQ 9] Highest
        S1 f OK [READ-WRITE] Select completed
        """
    )


async def test_select_qresync_examples() -> None:
    world = World()
    box = await inbox_with(world, 5)
    await run_transcript(resync_world_script(box.uidvalidity), world)


async def test_forgotten_tombstones_fall_back_to_uid_comparison() -> None:
    """When the store no longer remembers the expunges (``expunged_complete``
    false), VANISHED (EARLIER) is every missing UID up to UIDNEXT-1; the
    sequence-match data (3.2.5.2) proves a prefix unchanged and narrows it
    -- the 1:29997 versus (5000,... 15000,...) examples of the RFC."""
    world = World()
    box = await inbox_with(world, 10)
    box.max_tombstones = 0  # the store forgets every expunge at once
    uv = box.uidvalidity
    await box.store([2], StoreMode.ADD, ["\\Deleted"])
    await box.expunge()  # long ago: the client knows uid 2 is gone (modseq 13)
    await box.store([7], StoreMode.ADD, ["\\Deleted"])
    await box.expunge()  # after the client's modseq 13
    await run_transcript(
        LOGIN1
        + f"""
        C1 b EXAMINE INBOX (QRESYNC ({uv} 13 1:10))
        S1 * FLAGS %*
        S1 * OK [PERMANENTFLAGS ()] %*
        S1 * 8 EXISTS
        S1 * 8 RECENT
        S1 * OK [UNSEEN 1] %*
        S1 * OK [UIDVALIDITY {uv}] UIDs valid
        S1 * OK [UIDNEXT 11] Predicted next UID
        S1 * OK [MAILBOXID (%?)] %*
        S1 * OK [HIGHESTMODSEQ 15] Highest
        S1 * VANISHED (EARLIER) 2,7
        S1 b OK [READ-ONLY] Examine completed
        C1 c EXAMINE INBOX (QRESYNC ({uv} 13 1:10 (1,5 1,6)))
        S1 * OK [CLOSED] Previous mailbox closed
        S1 * FLAGS %*
        S1 * OK [PERMANENTFLAGS ()] %*
        S1 * 8 EXISTS
        S1 * 8 RECENT
        S1 * OK [UNSEEN 1] %*
        S1 * OK [UIDVALIDITY {uv}] UIDs valid
        S1 * OK [UIDNEXT 11] Predicted next UID
        S1 * OK [MAILBOXID (%?)] %*
        S1 * OK [HIGHESTMODSEQ 15] Highest
        S1 * VANISHED (EARLIER) 7
        S1 c OK [READ-ONLY] Examine completed
        # A pair that no longer matches ends the proof at the pair before.
        C1 d EXAMINE INBOX (QRESYNC ({uv} 13 1:10 (1,2,5 1,2,6)))
        S1 * OK [CLOSED] Previous mailbox closed
        S1 * FLAGS %*
        S1 * OK [PERMANENTFLAGS ()] %*
        S1 * 8 EXISTS
        S1 * 8 RECENT
        S1 * OK [UNSEEN 1] %*
        S1 * OK [UIDVALIDITY {uv}] UIDs valid
        S1 * OK [UIDNEXT 11] Predicted next UID
        S1 * OK [MAILBOXID (%?)] %*
        S1 * OK [HIGHESTMODSEQ 15] Highest
        S1 * VANISHED (EARLIER) 2,7
        S1 d OK [READ-ONLY] Examine completed
        """,
        world,
    )


async def test_uid_fetch_vanished_modifier() -> None:
    """3.2.6: UID FETCH (CHANGEDSINCE n VANISHED) reports the UIDs of the
    set expunged after n, then the messages changed after n.  An expunge
    this session has not announced yet is left to the plain VANISHED that
    follows (VANISHED (EARLIER) does not decrement EXISTS)."""
    world = World()
    await inbox_with(world, 5)
    await run_transcript(
        LOGIN2
        + select_lines(2, 5, 5, 6)
        + """
        S2 s OK [READ-WRITE] Select completed
        C2 b STORE 1,3 +FLAGS.SILENT (\\Deleted)
        S2 b OK Store completed
        C2 c EXPUNGE
        S2 * 3 EXPUNGE
        S2 * 1 EXPUNGE
        S2 c OK Expunge completed
        C2 d STORE 3 +FLAGS.SILENT (\\Answered)
        S2 d OK Store completed
        """
        + LOGIN1
        + select_lines(1, 3, 0, 6)
        + """
        S1 s OK [READ-WRITE] Select completed
        C1 f UID FETCH 1:* (FLAGS) (CHANGEDSINCE 6 VANISHED)
        S1 * VANISHED (EARLIER) 1,3
        S1 * 3 FETCH (UID 5 FLAGS (\\Answered) MODSEQ (9))
        S1 f OK Fetch completed
        C1 g UID FETCH 2:5 (FLAGS) (CHANGEDSINCE 6 VANISHED)
        S1 * VANISHED (EARLIER) 3
        S1 * 3 FETCH (UID 5 FLAGS (\\Answered) MODSEQ (9))
        S1 g OK Fetch completed
        C2 e STORE 1 +FLAGS.SILENT (\\Deleted)
        S2 e OK Store completed
        C2 x EXPUNGE
        S2 * 1 EXPUNGE
        S2 x OK Expunge completed
        C1 h UID FETCH 1:* (FLAGS) (CHANGEDSINCE 9 VANISHED)
        S1 * VANISHED 2
        S1 h OK Fetch completed
        """,
        world,
    )


# -- through real sockets and TLS ---------------------------------------------


class RawClient:
    """A minimal IMAP client over TLS: sends lines, collects the untagged
    lines up to the tagged one (the responses tested here have no
    literals)."""

    def __init__(self, server: ServerThread, tls: TlsFiles) -> None:
        raw = socket.create_connection((server.host, server.imaps_port), timeout=20)
        self.sock = tls.client_context().wrap_socket(raw, server_hostname=server.host)
        self.file = self.sock.makefile("rb")
        assert self.file.readline().startswith(b"* OK")
        self.counter = 0

    def send(self, line: bytes) -> str:
        self.counter += 1
        tag = f"t{self.counter}"
        self.sock.sendall(tag.encode() + b" " + line + b"\r\n")
        return tag

    def collect(self, tag: str) -> tuple[list[bytes], bytes]:
        untagged: list[bytes] = []
        while True:
            line = self.file.readline().rstrip(b"\r\n")
            assert line, "connection closed"
            if line.startswith(tag.encode() + b" "):
                return untagged, line
            untagged.append(line)

    def command(self, line: bytes) -> list[bytes]:
        untagged, tagged = self.collect(self.send(line))
        assert b" OK " in tagged, tagged
        return untagged

    def close(self) -> None:
        self.command(b"LOGOUT")
        self.file.close()
        self.sock.close()


def _code(lines: list[bytes], name: bytes) -> int:
    for line in lines:
        found = re.search(rb"\[" + name + rb" (\d+)\]", line)
        if found:
            return int(found.group(1))
    raise AssertionError(f"no {name!r} in {lines!r}")


def _expand(uid_set: bytes) -> set[int]:
    uids: set[int] = set()
    for part in uid_set.split(b","):
        low, _, high = part.partition(b":")
        uids.update(range(int(low), int(high or low) + 1))
    return uids


def test_qresync_catches_up_with_1000_flag_changes_and_100_expunges(
    imap_server: ServerThread, tls_files: TlsFiles
) -> None:
    """Issue 6: a QRESYNC client that missed 1,000 flag changes and 100
    expunges catches up with one SELECT -- over TLS, through the driver."""
    setup = RawClient(imap_server, tls_files)
    setup.command(f"LOGIN {USER} {PASSWORD}".encode())
    body = b"Subject: m\r\n\r\nbody\r\n"
    for _ in range(11):  # 1,100 messages, 100 per MULTIAPPEND
        literal = b"{%d+}\r\n" % len(body) + body
        setup.command(b"APPEND INBOX " + b" ".join([literal] * 100))
    setup.close()

    client = RawClient(imap_server, tls_files)
    client.command(f"LOGIN {USER} {PASSWORD}".encode())
    client.command(b"ENABLE QRESYNC")
    selected = client.command(b"SELECT INBOX")
    uidvalidity = _code(selected, b"UIDVALIDITY")
    modseq = _code(selected, b"HIGHESTMODSEQ")
    client.close()

    other = RawClient(imap_server, tls_files)
    other.command(f"LOGIN {USER} {PASSWORD}".encode())
    other.command(b"SELECT INBOX")
    doomed = set(range(11, 1101, 11))
    kept = [uid for uid in range(1, 1101) if uid not in doomed]
    assert len(doomed) == 100 and len(kept) == 1000
    # 1,000 separate flag changes, pipelined, each with its own MODSEQ.
    tags = [
        other.send(
            b"UID STORE %d +FLAGS.SILENT (%s)"
            % (uid, b"\\Flagged" if uid % 2 else b"$Later")
        )
        for uid in kept
    ]
    for tag in tags:
        assert b" OK " in other.collect(tag)[1]
    doomed_set = ",".join(str(uid) for uid in sorted(doomed)).encode()
    other.command(b"UID STORE " + doomed_set + b" +FLAGS.SILENT (\\Deleted)")
    other.command(b"UID EXPUNGE " + doomed_set)
    other.close()

    client = RawClient(imap_server, tls_files)
    client.command(f"LOGIN {USER} {PASSWORD}".encode())
    client.command(b"ENABLE QRESYNC")
    lines = client.command(
        b"SELECT INBOX (QRESYNC (%d %d 1:1100))" % (uidvalidity, modseq)
    )
    client.close()

    vanished = [line for line in lines if line.startswith(b"* VANISHED")]
    assert len(vanished) == 1
    assert vanished[0].startswith(b"* VANISHED (EARLIER) ")
    assert _expand(vanished[0].split(b" ")[-1]) == doomed
    fetches = [line for line in lines if b" FETCH " in line]
    assert len(fetches) == 1000
    seen: dict[int, bytes] = {}
    pattern = re.compile(
        rb"\* (\d+) FETCH \(UID (\d+) FLAGS \((.*)\) MODSEQ \((\d+)\)\)"
    )
    for line in fetches:
        match = pattern.fullmatch(line)
        assert match is not None, line
        seq, uid, flags, message_modseq = (match.group(i) for i in range(1, 5))
        assert int(message_modseq) > modseq
        assert int(seq) == kept.index(int(uid)) + 1
        seen[int(uid)] = flags
    assert sorted(seen) == kept
    assert all(seen[uid] == (b"\\Flagged" if uid % 2 else b"$Later") for uid in kept)
    assert _code(lines, b"HIGHESTMODSEQ") >= modseq + 1001


# -- MODSEQs persist: the MH store reopened on the same root ------------------


@dataclass
class MHWorld(World):
    """Transcript clients served by one MH store instead of memory."""

    mh: Store | None = None

    async def open_store(self, account: Account) -> Store:
        assert self.mh is not None
        return self.mh


async def test_qresync_after_restart_on_the_mh_store(tmp_path: Path) -> None:
    """A restart (the MH store reopened on the same root) keeps UIDVALIDITY,
    HIGHESTMODSEQ, per-message MODSEQs and expunge tombstones, so a QRESYNC
    client that last synced before the changes still catches up exactly."""
    root = tmp_path / "Mail"
    profile = Profile(path=root, unseen=("unseen",))
    store = await MHStore.open(root, profile=profile)
    try:
        inbox = await store.mailbox("INBOX")
        for n in range(3):
            await inbox.append(message(f"m{n}"))
        before = await inbox.status()
        await run_transcript(
            LOGIN1
            + """
            C1 s SELECT INBOX
            S1 * %*
            S1 * %*
            S1 * 3 EXISTS
            S1 * %? RECENT
            S1 * OK [UNSEEN 1] %*
            S1 * OK [UIDVALIDITY %?] %*
            S1 * OK [UIDNEXT 4] %*
            S1 * OK [MAILBOXID (%?)] %*
            S1 * OK [HIGHESTMODSEQ %?] Highest
            S1 s OK [READ-WRITE] Select completed
            C1 b STORE 2 +FLAGS.SILENT (\\Flagged)
            S1 * 2 FETCH (UID 2 MODSEQ (%?))
            S1 b OK Store completed
            C1 c STORE 3 +FLAGS.SILENT (\\Deleted)
            S1 * 3 FETCH (UID 3 MODSEQ (%?))
            S1 c OK Store completed
            C1 d EXPUNGE
            S1 * VANISHED 3
            S1 d OK [HIGHESTMODSEQ %?] Expunge completed
            """,
            MHWorld(mh=store),
        )
        after = await inbox.status()
        flagged = (await inbox.states())[1]
        assert after.highestmodseq > flagged.modseq > before.highestmodseq
    finally:
        await store.close()

    store = await MHStore.open(root, profile=profile)
    try:
        uv = before.uidvalidity
        await run_transcript(
            LOGIN1
            + f"""
            C1 s SELECT INBOX (QRESYNC ({uv} {before.highestmodseq} 1:3))
            S1 * %*
            S1 * %*
            S1 * 2 EXISTS
            S1 * %? RECENT
            S1 * OK [UNSEEN 1] %*
            S1 * OK [UIDVALIDITY {uv}] UIDs valid
            S1 * OK [UIDNEXT 4] %*
            S1 * OK [MAILBOXID (%?)] %*
            S1 * OK [HIGHESTMODSEQ {after.highestmodseq}] Highest
            S1 * VANISHED (EARLIER) 3
            S1 * 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ ({flagged.modseq}))
            S1 s OK [READ-WRITE] Select completed
            """,
            MHWorld(mh=store),
        )
    finally:
        await store.close()
