"""SIGKILL at random points of every write path, then check what is left.

One real ``asimapd`` in worker mode (as root, the mail root owned by an
unprivileged user, as ``tests/test_worker_privileges.py`` runs it) serves
the user ``demo``.  Each round picks a write -- APPEND, MULTIAPPEND,
CATENATE, COPY, MOVE, EXPUNGE, STORE, REPLACE, an MH delivery through
:mod:`asimap.store.mh.delivery`, RENAME, DELETE (STORE and EXPUNGE are also
what rewrites ``.mh_sequences``) -- sends it, waits a random time within
what that write usually takes, and SIGKILLs, by PID, the user's worker
(found among the zygote's children), sometimes the main process, or the
delivery process.  Then it logs in again and checks against a model:

- every acknowledged message is present exactly once, byte for byte, in
  IMAP and as an MH file; a message whose command was cut short is there
  at most once, whole;
- nothing partial: every numbered file of a folder is a whole message we
  sent, nmh's ``scan`` and ``pick`` list exactly the IMAP messages;
- no UID is handed out twice: every UID ever seen (APPENDUID, COPYUID,
  FETCH) keeps naming the same message while UIDVALIDITY stays, and a new
  UID is above every one seen before;
- the flags IMAP shows are the sequences nmh's ``mark -list`` shows, and
  acknowledged STOREs are there;
- atomic commands stay atomic: COPY and MULTIAPPEND all or nothing,
  RENAME under one name, MOVE and REPLACE never lose their message;
- the account is still served (the checks are made through a new login).

Used by ``tests/test_crash_safety.py`` (a few dozen kills) and
``scripts/crash`` (hundreds; ``python tests/crash_harness.py --help``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from worker_harness import (
    IS_ROOT,
    PASSWORDS,
    Asimapd,
    LineClient,
    MailSetup,
    children_of,
    mail_setup,
)

USER = "demo"
FOLDERS = ("INBOX", "A", "B")
SYSTEM_FLAGS = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")
FLAG_SEQUENCE = {
    "\\Seen": "Seen",
    "\\Answered": "replied",
    "\\Flagged": "flagged",
    "\\Deleted": "Deleted",
    "\\Draft": "Draft",
}
NMH_BIN = Path("/usr/bin/mh")
_MID = re.compile(rb"Message-ID: <([^>]+)>")
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) ([\d:,]+)\]")
_COPYUID = re.compile(rb"\[COPYUID (\d+) ([\d:,]+) ([\d:,]+)\]")
_FETCH = re.compile(rb"^\* \d+ FETCH \(UID (\d+) FLAGS \(([^)]*)\) BODY\[\] \{(\d+)\}$")

#: A MULTIAPPEND, COPY or MOVE cut short by a kill that left part of its
#: messages is a failure: each is one job on the pending-files mechanism
#: (asimap.store.mh.pending; RFC 3502 section 6.3.11, RFC 3501 section
#: 6.4.7).  True counts such a cut instead of failing it.
ALLOW_PARTIAL_GROUPS = False
#: In a set of allowed flags: any flags pass, but are counted.
RELAXED = frozenset({"(relaxed)"})
CUT_SEEN = frozenset({"\\Seen"})
OPERATIONS = (
    "append",
    "multiappend",
    "catenate",
    "copy",
    "move",
    "expunge",
    "store",
    "replace",
    "deliver",
    "rename",
    "delete",
)


def gone_for_good(pid: int, timeout: float = 30) -> None:
    """Wait until ``pid`` is reaped, not only a zombie: a killed process's
    main thread turns zombie while its other threads still hold its
    descriptors, and until they let go the main process cannot see the
    worker's end of the channel close.  A login in that window (a few
    milliseconds) is handed to the dying worker and gets ``BYE``."""
    deadline = time.monotonic() + timeout
    while os.path.exists(f"/proc/{pid}"):
        if time.monotonic() > deadline:
            raise Failure(f"process {pid} was not reaped")
        time.sleep(0.002)


class Failure(AssertionError):
    """A broken promise, with the round that broke it."""


def uid_set(text: bytes) -> list[int]:
    out: list[int] = []
    for part in text.decode().split(","):
        low, _, high = part.partition(":")
        out.extend(range(int(low), int(high or low) + 1))
    return out


class Client(LineClient):
    """LineClient that reads literals and survives a dead server."""

    def exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed in a literal")
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def outcome(self, tag: bytes) -> tuple[bytes | None, list[bytes]]:
        """(tagged line or None when the connection died, untagged lines)."""
        lines: list[bytes] = []
        try:
            while True:
                line = self.line()
                if line.startswith(tag + b" "):
                    return line, lines
                lines.append(line)
        except (EOFError, OSError, ssl.SSLError):
            return None, lines

    def ok(self, tag: bytes, text: bytes) -> list[bytes]:
        lines = self.command(tag, text)
        if not lines[-1].startswith(tag + b" OK"):
            raise Failure(f"{text[:80]!r}: {lines[-3:]!r}")
        return lines


def message(mid: str, rng: random.Random, big: bool) -> bytes:
    size = rng.randint(100_000, 400_000) if big else rng.randint(200, 4000)
    head = (
        f"From: crash@example.org\r\nTo: demo@example.org\r\n"
        f"Subject: crash {mid}\r\nMessage-ID: <{mid}>\r\n\r\n"
    ).encode()
    line = (mid.encode() + b" ") * 8 + b"\r\n"
    return head + line * (size // len(line) + 1)


@dataclass
class Folder:
    """What the model knows of one folder: message ids by UID, flags."""

    uidvalidity: int = 0
    uids: dict[int, str] = field(default_factory=dict)
    flags: dict[str, frozenset[str]] = field(default_factory=dict)

    def mids(self) -> set[str]:
        return set(self.uids.values())


@dataclass
class Expectation:
    """What a round allows the next check to see."""

    #: folder -> message ids that must be there (acknowledged or older).
    must: dict[str, set[str]] = field(default_factory=dict)
    #: folder -> message ids that may be there (cut-short commands).
    may: dict[str, set[str]] = field(default_factory=dict)
    #: folder -> mid -> allowed flag sets.
    flags: dict[str, dict[str, set[frozenset[str]]]] = field(default_factory=dict)
    #: folders that must exist / may exist.
    folders_must: set[str] = field(default_factory=set)
    folders_may: set[str] = field(default_factory=set)
    #: groups of (folder, mids) of which all or none must be present.
    atomic: list[tuple[str, set[str]]] = field(default_factory=list)
    #: (mid, places) : the message must be in at least one place.
    somewhere: list[tuple[str, list[str]]] = field(default_factory=list)
    #: folders where an atomic group may be cut (MULTIAPPEND: reported).
    partial_ok: set[str] = field(default_factory=set)
    #: (old, new) renames cut short: exactly one of the two names.
    either_name: list[tuple[str, str]] = field(default_factory=list)
    #: folder -> UID -> mid promised by APPENDUID/COPYUID.
    promised: dict[str, dict[int, str]] = field(default_factory=dict)


@dataclass
class Stats:
    rounds: int = 0
    kills: dict[str, int] = field(default_factory=dict)
    acknowledged: dict[str, int] = field(default_factory=dict)
    cut_short: dict[str, int] = field(default_factory=dict)
    messages_checked: int = 0
    uids_recorded: int = 0
    both_after_move: int = 0
    partial_atomic: int = 0
    logins_dropped: int = 0
    flags_off_after_cut: int = 0
    seconds: float = 0.0

    def bump(self, table: dict[str, int], key: str) -> None:
        table[key] = table.get(key, 0) + 1


class CrashRun:
    """The server, the model and the rounds."""

    def __init__(
        self, setup: MailSetup, cert: Path, key: Path, seed: int, main_every: int
    ) -> None:
        self.setup = setup
        self.cert, self.key = cert, key
        self.rng = random.Random(seed)
        self.main_every = main_every
        self.root = setup.roots[USER]
        self.bytes: dict[str, bytes] = {}
        self.folders: dict[str, Folder] = {}
        self.high: dict[tuple[str, int], int] = {}
        self.owner: dict[tuple[str, int, int], str] = {}
        self.timing: dict[str, float] = dict.fromkeys(OPERATIONS, 0.05)
        self.timing["deliver"] = 1.0  # an interpreter starts first
        self.counter = 0
        self.stats = Stats()
        self.nmh_home = Path(tempfile.mkdtemp(prefix="crash-nmh-", dir=setup.base))
        (self.nmh_home / ".mh_profile").write_text(
            f"Path: {self.root}\nUnseen-Sequence: unseen\n"
        )
        self.server = Asimapd(setup, cert, key)

    # plumbing ----------------------------------------------------------------

    def login(self) -> Client:
        for attempt in range(3):
            client = Client(self.server.tls_socket(), timeout=30)
            greeting = client.line()
            assert greeting.startswith(b"* OK"), greeting
            try:
                client.ok(b"l", f"LOGIN {USER} {PASSWORDS[USER]}".encode())
            except EOFError:
                # Should not happen once the killed worker is reaped
                # (gone_for_good); counted, and a client reconnects.
                if attempt == 2:
                    raise
                self.stats.logins_dropped += 1
                client.close()
                time.sleep(0.2)
                continue
            return client
        raise AssertionError("unreachable")

    def new_mid(self) -> str:
        self.counter += 1
        return f"m{self.counter}.{self.rng.randrange(1 << 30)}@crash"

    def new_message(self, big: bool | None = None) -> tuple[str, bytes]:
        mid = self.new_mid()
        raw = message(mid, self.rng, self.rng.random() < 0.5 if big is None else big)
        self.bytes[mid] = raw
        return mid, raw

    def nmh(self, *argv: str) -> tuple[int, str]:
        done = subprocess.run(
            [str(NMH_BIN / argv[0]), *argv[1:]],
            env={
                "PATH": f"{NMH_BIN}:/usr/bin:/bin",
                "HOME": str(self.nmh_home),
                "MH": str(self.nmh_home / ".mh_profile"),
                "LC_ALL": "C",
            },
            capture_output=True,
            timeout=60,
            check=False,
        )
        return done.returncode, (done.stdout + done.stderr).decode("utf-8", "replace")

    def folder_dir(self, name: str) -> Path:
        return self.root / ("inbox" if name == "INBOX" else name)

    def record_uid(self, folder: str, uidvalidity: int, uid: int, mid: str) -> None:
        key = (folder, uidvalidity, uid)
        seen = self.owner.get(key)
        if seen is not None and seen != mid:
            raise Failure(
                f"UID {uid} of {folder} (UIDVALIDITY {uidvalidity}) named "
                f"{seen} and now {mid}"
            )
        self.owner[key] = mid

    # the check -----------------------------------------------------------------

    def fetch_folder(self, client: Client, name: str) -> Folder:
        lines = client.ok(b"s", f'SELECT "{name}"'.encode())
        uv = 0
        for line in lines:
            found = re.search(rb"\[UIDVALIDITY (\d+)\]", line)
            if found:
                uv = int(found.group(1))
        result = Folder(uidvalidity=uv)
        client.send(b"f UID FETCH 1:* (UID FLAGS BODY.PEEK[])\r\n")
        while True:
            line = client.line()
            if line.startswith(b"f "):
                if not line.startswith(b"f OK"):
                    raise Failure(f"FETCH in {name}: {line!r}")
                break
            matched = _FETCH.match(line)
            if not matched:
                continue
            uid, flags, size = int(matched[1]), matched[2], int(matched[3])
            raw = client.exact(size)
            client.line()  # the closing ")"
            mid_match = _MID.search(raw)
            mid = mid_match.group(1).decode() if mid_match else "?"
            if self.bytes.get(mid) != raw:
                raise Failure(
                    f"{name} UID {uid}: not a whole message we sent "
                    f"({len(raw)} octets, {mid})"
                )
            if mid in result.mids():
                raise Failure(f"{mid} twice in {name}")
            result.uids[uid] = mid
            result.flags[mid] = frozenset(
                f for f in flags.decode().split() if f in SYSTEM_FLAGS
            )
        client.ok(b"c", b"UNSELECT")
        return result

    def check_nmh(self, name: str, seen: Folder) -> None:
        directory = self.folder_dir(name)
        plus = "+" + directory.name
        numbered = sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit())
        by_number: dict[int, str] = {}
        for number in numbered:
            raw = (directory / str(number)).read_bytes()
            found = _MID.search(raw)
            mid = found.group(1).decode() if found else "?"
            if self.bytes.get(mid) != raw:
                raise Failure(
                    f"MH file {name}/{number}: partial or foreign ({len(raw)} octets)"
                )
            by_number[number] = mid
        if sorted(by_number.values()) != sorted(seen.mids()):
            raise Failure(
                f"MH files of {name} {sorted(by_number.values())} "
                f"!= IMAP {sorted(seen.mids())}"
            )
        code, out = self.nmh("scan", plus, "-format", "%(msg)")
        listed = [int(n) for n in out.split()] if code == 0 else []
        if listed != numbered and not (not numbered and "no messages" in out):
            raise Failure(f"scan +{name}: {out[:300]!r} != {numbered}")
        if numbered:
            code, out = self.nmh("pick", plus, "-subject", "crash")
            if sorted(int(n) for n in out.split()) != numbered:
                raise Failure(f"pick +{name}: {out[:300]!r} != {numbered}")
        code, out = self.nmh("mark", plus, "-list")
        sequences: dict[str, set[int]] = {}
        for line in out.splitlines():
            label, _, ranges = line.partition(":")
            label = label.split()[0] if label.split() else ""
            numbers: set[int] = set()
            for part in ranges.split():
                low, _, high = part.partition("-")
                if low.isdigit():
                    numbers.update(range(int(low), int(high or low) + 1))
            sequences[label] = numbers
        for number, mid in by_number.items():
            nmh_flags = frozenset(
                flag
                for flag, seq in FLAG_SEQUENCE.items()
                if number in sequences.get(seq, set())
            )
            if nmh_flags != seen.flags[mid]:
                raise Failure(
                    f"{name}/{number}: nmh says {sorted(nmh_flags)}, IMAP "
                    f"{sorted(seen.flags[mid])}"
                )
            if (number in sequences.get("unseen", set())) == ("\\Seen" in nmh_flags):
                raise Failure(f"{name}/{number}: unseen and Seen disagree")

    def check(self, expect: Expectation, label: str) -> None:
        client = self.login()
        listed = client.ok(b"ls", b'LIST "" "*"')
        names = {
            line.rpartition(b" ")[2].strip(b'"').decode()
            for line in listed
            if line.startswith(b"* LIST")
        }
        observed: dict[str, Folder] = {}
        for name in sorted(expect.folders_must | expect.folders_may):
            if name not in names:
                if name in expect.folders_must:
                    raise Failure(f"{label}: folder {name} is gone")
                continue
            folder = self.fetch_folder(client, name)
            self.check_nmh(name, folder)
            observed[name] = folder
            self.stats.messages_checked += len(folder.uids)
        client.ok(b"z", b"LOGOUT")
        client.close()
        for old, new in expect.either_name:
            if (old in observed) == (new in observed):
                raise Failure(
                    f"{label}: RENAME {old} -> {new} left "
                    f"{sorted(n for n in (old, new) if n in observed)}"
                )
        for name, folder in observed.items():
            must = expect.must.get(name, set())
            may = expect.may.get(name, set())
            lost = must - folder.mids()
            if lost:
                raise Failure(f"{label}: lost from {name}: {sorted(lost)}")
            extra = folder.mids() - must - may
            if extra:
                raise Failure(f"{label}: appeared in {name}: {sorted(extra)}")
            for mid, allowed in expect.flags.get(name, {}).items():
                if mid in folder.flags and folder.flags[mid] not in allowed:
                    if RELAXED in allowed:
                        self.stats.flags_off_after_cut += 1
                        continue
                    raise Failure(
                        f"{label}: {name} {mid} flags {folder.flags[mid]} "
                        f"not in {allowed}"
                    )
            for uid, mid in expect.promised.get(name, {}).items():
                if folder.uids.get(uid) != mid:
                    raise Failure(
                        f"{label}: {name} UID {uid} was promised to "
                        f"{mid}, is {folder.uids.get(uid)}"
                    )
            for uid, mid in folder.uids.items():
                self.record_uid(name, folder.uidvalidity, uid, mid)
        for name, group in expect.atomic:
            present = group & observed.get(name, Folder()).mids()
            if present and present != group:
                if name in expect.partial_ok:
                    self.stats.partial_atomic += 1
                    continue
                raise Failure(
                    f"{label}: {len(present)} of {len(group)} in {name}; all or nothing"
                )
        for mid, places in expect.somewhere:
            where = [p for p in places if mid in observed.get(p, Folder()).mids()]
            if not where:
                raise Failure(f"{label}: {mid} lost (in none of {places})")
            if len(where) > 1:
                self.stats.both_after_move += 1
        # The state seen becomes the model.
        self.folders = observed
        for name, folder in observed.items():
            key = (name, folder.uidvalidity)
            self.high[key] = max([self.high.get(key, 0), *folder.uids])

    def base_expectation(self) -> Expectation:
        expect = Expectation()
        for name, folder in self.folders.items():
            expect.folders_must.add(name)
            expect.must[name] = folder.mids()
            expect.flags[name] = {m: {f} for m, f in folder.flags.items()}
        return expect

    # killing -------------------------------------------------------------------

    def worker(self) -> int:
        return self.server.wait_for_worker(USER, timeout=30)

    def kill_main(self) -> None:
        zygote = self.server.zygote_pid()
        doomed = [zygote, *children_of(zygote)]
        os.kill(self.server.pid, signal.SIGKILL)
        self.server.process.wait(30)
        for pid in doomed:
            # The zygote and workers see their parent go and exit by
            # themselves ("no orphans"); wait for that, do not help.
            gone_for_good(pid)
        self.server = Asimapd(self.setup, self.cert, self.key)

    def kill_worker(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        gone_for_good(pid)

    # one round -----------------------------------------------------------------

    def prepared(self, client: Client, name: str, count: int) -> list[int]:
        """UIDs of ``count`` messages in ``name`` (APPENDed, acknowledged,
        when there are fewer)."""
        folder = self.folders.setdefault(name, Folder())
        while len(folder.uids) < count:
            mid, raw = self.new_message(big=False)
            lines = client.ok(
                b"p", b'APPEND "%s" {%d+}\r\n' % (name.encode(), len(raw)) + raw
            )
            found = _APPENDUID.search(lines[-1])
            assert found, lines
            uid = int(found[2])
            folder.uidvalidity = int(found[1])
            folder.uids[uid] = mid
            folder.flags[mid] = frozenset()
        return sorted(folder.uids)

    def trim(self, client: Client) -> None:
        """Keep folders small: expunge (acknowledged) down to 30 messages."""
        for name in FOLDERS:
            folder = self.folders.get(name)
            if folder is None or len(folder.uids) <= 40:
                continue
            doomed = sorted(folder.uids)[:-30]
            client.ok(b"t", f'SELECT "{name}"'.encode())
            text = ",".join(map(str, doomed)).encode()
            client.ok(b"t", b"UID STORE " + text + b" +FLAGS.SILENT (\\Deleted)")
            client.ok(b"t", b"UID EXPUNGE " + text)
            client.ok(b"t", b"UNSELECT")
            for uid in doomed:
                folder.flags.pop(folder.uids.pop(uid), None)

    def round(self, operation: str) -> None:
        label = f"round {self.stats.rounds} ({operation})"
        client = self.login()
        self.trim(client)
        for name in FOLDERS:
            self.prepared(client, name, 3)
        expect = self.base_expectation()
        send, settle = getattr(self, f"op_{operation}")(client, expect)
        target = (
            "main"
            if self.main_every
            and (self.stats.rounds % self.main_every == self.main_every - 1)
            else "worker"
        )
        worker = self.worker()
        process = send()
        time.sleep(self.rng.uniform(0, self.timing[operation] * 1.3))
        if process is not None:
            target = "deliver"
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait(30)
        elif target == "main":
            self.kill_main()
        else:
            self.kill_worker(worker)
        self.stats.bump(self.stats.kills, target)
        acked = settle(process)
        # Aim earlier after an answer, later after a cut: the kills land
        # all over the command, about half of them before its answer.
        if acked:
            self.timing[operation] *= 0.8
            self.stats.bump(self.stats.acknowledged, operation)
        else:
            self.timing[operation] *= 1.25
            self.stats.bump(self.stats.cut_short, operation)
        client.close()
        self.check(expect, label)
        self.stats.rounds += 1

    # The operations: each returns (send, settle).  send() starts the
    # command; settle() reads what came back, fills the expectation and
    # says whether it was acknowledged.

    def _append_result(
        self,
        client: Client,
        tag: bytes,
        name: str,
        mids: list[str],
        expect: Expectation,
    ) -> bool:
        tagged, _ = client.outcome(tag)
        expect.may.setdefault(name, set()).update(mids)
        for mid in mids:
            # A message whose APPEND was cut short between linking its
            # file and adding it to the unseen sequence is read as nmh
            # reads it: not unseen, so \Seen (reported, see the docs).
            expect.flags.setdefault(name, {})[mid] = {frozenset(), CUT_SEEN}
        if tagged is None or not tagged.startswith(tag + b" OK"):
            if tagged is not None:
                raise Failure(f"{name}: {tagged!r}")
            return False
        found = _APPENDUID.search(tagged)
        if not found:
            raise Failure(f"no APPENDUID: {tagged!r}")
        uv, uids = int(found[1]), uid_set(found[2])
        if len(uids) != len(mids):
            raise Failure(f"APPENDUID {tagged!r} for {len(mids)} messages")
        high = self.high.get((name, uv), 0)
        for uid, mid in zip(uids, mids, strict=True):
            if uid <= high:
                raise Failure(f"APPENDUID {uid} in {name} not above {high}")
            self.record_uid(name, uv, uid, mid)
            expect.promised.setdefault(name, {})[uid] = mid
            self.stats.uids_recorded += 1
        expect.must.setdefault(name, set()).update(mids)
        for mid in mids:
            expect.flags[name][mid] = {frozenset()}
        return True

    def op_append(self, client: Client, expect: Expectation) -> tuple:
        name = self.rng.choice(FOLDERS)
        mid, raw = self.new_message()
        command = b'a APPEND "%s" {%d+}\r\n' % (name.encode(), len(raw)) + raw + b"\r\n"
        return (
            lambda: client.send(command),
            lambda _p: self._append_result(client, b"a", name, [mid], expect),
        )

    def op_multiappend(self, client: Client, expect: Expectation) -> tuple:
        name = self.rng.choice(FOLDERS)
        made = [self.new_message() for _ in range(self.rng.randint(2, 5))]
        command = b'a APPEND "%s"' % name.encode()
        for _mid, raw in made:
            command += b" {%d+}\r\n" % len(raw) + raw
        command += b"\r\n"
        mids = [mid for mid, _ in made]
        expect.atomic.append((name, set(mids)))
        if ALLOW_PARTIAL_GROUPS:
            expect.partial_ok.add(name)
        return (
            lambda: client.send(command),
            lambda _p: self._append_result(client, b"a", name, mids, expect),
        )

    def op_catenate(self, client: Client, expect: Expectation) -> tuple:
        name = self.rng.choice(FOLDERS)
        source = self.rng.choice(FOLDERS)
        uid = self.rng.choice(sorted(self.folders[source].uids))
        part = self.bytes[self.folders[source].uids[uid]]
        mid = self.new_mid()
        head = (
            f"From: crash@example.org\r\nSubject: crash {mid}\r\n"
            f"Message-ID: <{mid}>\r\nContent-Type: message/rfc822\r\n\r\n"
        ).encode()
        self.bytes[mid] = head + part
        url = f"/{source}/;UID={uid}".encode()
        command = (
            b'a APPEND "%s" CATENATE (TEXT {%d+}\r\n' % (name.encode(), len(head))
            + head
            + b' URL "'
            + url
            + b'")\r\n'
        )
        return (
            lambda: client.send(command),
            lambda _p: self._append_result(client, b"a", name, [mid], expect),
        )

    def _pick(self, source: str, dest: str, most: int) -> list[int]:
        have = self.folders[dest].mids() if dest in self.folders else set()
        uids = [u for u, m in self.folders[source].uids.items() if m not in have]
        self.rng.shuffle(uids)
        return sorted(uids[: self.rng.randint(1, most)])

    def op_copy(self, client: Client, expect: Expectation, move: bool = False) -> tuple:
        source, dest = self.rng.sample(FOLDERS, 2)
        uids = self._pick(source, dest, 6)
        if not uids:  # the destination has them all already
            return self.op_append(client, expect)
        folder = self.folders[source]
        mids = [folder.uids[u] for u in uids]
        client.ok(b"s", f'SELECT "{source}"'.encode())
        verb = b"MOVE" if move else b"COPY"
        command = b'a UID %s %s "%s"\r\n' % (
            verb,
            ",".join(map(str, uids)).encode(),
            dest.encode(),
        )
        expect.may.setdefault(dest, set()).update(mids)
        for mid in mids:
            # The copies are recorded with their flags in the COMMIT that
            # makes them mail, or removed at the next open: never a file
            # imported without its flags (asimap.store.mh.pending).
            expect.flags.setdefault(dest, {})[mid] = {folder.flags[mid]}
        if move:
            expect.must[source] -= set(mids)
            expect.may.setdefault(source, set()).update(mids)
            for mid in mids:
                expect.somewhere.append((mid, [source, dest]))
        else:
            expect.atomic.append((dest, set(mids)))

        def settle(_p: object) -> bool:
            tagged, untagged = client.outcome(b"a")
            if tagged is None:
                return False
            if not tagged.startswith(b"a OK"):
                raise Failure(f"{verb!r}: {tagged!r}")
            text = b" ".join([tagged, *untagged])
            found = _COPYUID.search(text)
            if not found:
                raise Failure(f"no COPYUID: {text[:200]!r}")
            uv = int(found[1])
            high = self.high.get((dest, uv), 0)
            for src, new in zip(uid_set(found[2]), uid_set(found[3]), strict=True):
                if new <= high:
                    raise Failure(f"COPYUID {new} in {dest} not above {high}")
                mid = folder.uids[src]
                self.record_uid(dest, uv, new, mid)
                expect.promised.setdefault(dest, {})[new] = mid
                self.stats.uids_recorded += 1
            expect.must[dest] = expect.must.get(dest, set()) | set(mids)
            for mid in mids:
                expect.flags[dest][mid] = {folder.flags[mid]}
            if move:
                expect.may[source] -= set(mids)
            return True

        return lambda: client.send(command), settle

    def op_move(self, client: Client, expect: Expectation) -> tuple:
        return self.op_copy(client, expect, move=True)

    def op_expunge(self, client: Client, expect: Expectation) -> tuple:
        name = self.rng.choice(FOLDERS)
        folder = self.folders[name]
        uids = sorted(self.rng.sample(sorted(folder.uids), self.rng.randint(1, 3)))
        text = ",".join(map(str, uids)).encode()
        client.ok(b"s", f'SELECT "{name}"'.encode())
        client.ok(b"d", b"UID STORE " + text + b" +FLAGS.SILENT (\\Deleted)")
        mids = {folder.uids[u] for u in uids}
        # EXPUNGE takes every \Deleted message, also one a cut-short
        # REPLACE left marked.
        mids |= {m for m, f in folder.flags.items() if "\\Deleted" in f}
        expect.must[name] -= mids
        expect.may.setdefault(name, set()).update(mids)
        for mid in mids:
            expect.flags[name][mid] = {folder.flags[mid] | {"\\Deleted"}}

        def settle(_p: object) -> bool:
            tagged, _ = client.outcome(b"a")
            if tagged is None:
                return False
            expect.may[name] -= mids
            return True

        return lambda: client.send(b"a EXPUNGE\r\n"), settle

    def op_store(self, client: Client, expect: Expectation) -> tuple:
        name = self.rng.choice(FOLDERS)
        folder = self.folders[name]
        uids = sorted(folder.uids)
        client.ok(b"s", f'SELECT "{name}"'.encode())
        flag = self.rng.choice(["\\Seen", "\\Flagged", "\\Answered", "\\Draft"])
        sign = self.rng.choice("+-")
        text = b"a UID STORE 1:* %sFLAGS.SILENT (%s)\r\n" % (
            sign.encode(),
            flag.encode(),
        )
        new: dict[str, frozenset[str]] = {}
        for uid in uids:
            mid = folder.uids[uid]
            old = folder.flags[mid]
            new[mid] = old | {flag} if sign == "+" else old - {flag}
            expect.flags[name][mid] = {old, new[mid]}

        def settle(_p: object) -> bool:
            tagged, _ = client.outcome(b"a")
            if tagged is None:
                return False
            for mid, flags in new.items():
                expect.flags[name][mid] = {flags}
            return True

        return lambda: client.send(text), settle

    def op_replace(self, client: Client, expect: Expectation) -> tuple:
        name = self.rng.choice(FOLDERS)
        folder = self.folders[name]
        uid = self.rng.choice(sorted(folder.uids))
        old = folder.uids[uid]
        mid, raw = self.new_message()
        client.ok(b"s", f'SELECT "{name}"'.encode())
        command = b'a UID REPLACE %d "%s" {%d+}\r\n' % (uid, name.encode(), len(raw))
        command += raw + b"\r\n"
        # Cut short after the new copy is in, before the old one is
        # expunged: the old one is left marked \Deleted.
        was = folder.flags[old]
        expect.flags[name][old] = {was, was | {"\\Deleted"}}
        expect.must[name].discard(old)
        expect.may.setdefault(name, set()).update({old, mid})
        expect.flags[name][mid] = {frozenset(), CUT_SEEN}
        group = (old, mid)  # one of the two must be there afterwards

        def settle(_p: object) -> bool:
            tagged, untagged = client.outcome(b"a")
            if tagged is None:
                self._either.append((name, group))
                return False
            found = _APPENDUID.search(b" ".join([tagged, *untagged]))
            if not found:
                raise Failure(f"REPLACE without APPENDUID: {tagged!r} {untagged!r}")
            uv, new_uid = int(found[1]), int(found[2])
            self.record_uid(name, uv, new_uid, mid)
            expect.promised.setdefault(name, {})[new_uid] = mid
            self.stats.uids_recorded += 1
            expect.may[name].discard(old)
            expect.must[name].add(mid)
            expect.flags[name][mid] = {frozenset()}
            return True

        return lambda: client.send(command), settle

    def op_deliver(self, client: Client, expect: Expectation) -> tuple:
        name = self.rng.choice(FOLDERS)
        made = [self.new_message() for _ in range(self.rng.randint(1, 4))]
        spool = Path(tempfile.mkdtemp(dir=self.setup.base))
        for n, (_mid, raw) in enumerate(made):
            (spool / str(n)).write_bytes(raw)
        os.chmod(spool, 0o755)
        expect.may.setdefault(name, set()).update(m for m, _ in made)
        for mid, _ in made:
            expect.flags.setdefault(name, {})[mid] = {frozenset(), CUT_SEEN}
        helper = Path(__file__).resolve()

        def send() -> subprocess.Popen[bytes]:
            env = {
                "PATH": "/usr/bin:/bin",
                "HOME": str(spool),
                "PYTHONPATH": str(helper.parent.parent / "src"),
            }
            return subprocess.Popen(
                [
                    sys.executable,
                    str(helper),
                    "--deliver",
                    str(self.root),
                    name,
                    str(spool),
                    str(len(made)),
                ],
                stdout=subprocess.PIPE,
                env=env,
            )

        def settle(process: subprocess.Popen[bytes] | None) -> bool:
            assert process is not None and process.stdout is not None
            out = process.stdout.read().decode().split()
            delivered = [int(u) for u in out]
            for (mid, _raw), uid in zip(made, delivered, strict=False):
                expect.must.setdefault(name, set()).add(mid)
                expect.flags[name][mid] = {frozenset()}
                expect.promised.setdefault(name, {})[uid] = mid
                self.stats.uids_recorded += 1
            return len(delivered) == len(made)

        return send, settle

    def op_rename(self, client: Client, expect: Expectation) -> tuple:
        old = f"R{self.counter}"
        self.counter += 1
        new = f"N{self.counter}"
        client.ok(b"c", f'CREATE "{old}"'.encode())
        self.prepared(client, old, self.rng.randint(1, 4))
        mids = self.folders[old].mids()
        command = f'a RENAME "{old}" "{new}"\r\n'.encode()
        expect.folders_may.update({old, new})
        for name in (old, new):
            expect.may[name] = set(mids)
            expect.flags[name] = {m: {frozenset()} for m in mids}
        expect.atomic.extend([(old, set(mids)), (new, set(mids))])
        expect.either_name.append((old, new))

        def settle(_p: object) -> bool:
            tagged, _ = client.outcome(b"a")
            self.folders.pop(old, None)
            if tagged is None:
                return False
            expect.folders_may.discard(old)
            expect.folders_must.add(new)
            expect.must[new] = set(mids)
            return True

        return lambda: client.send(command), settle

    def op_delete(self, client: Client, expect: Expectation) -> tuple:
        name = f"D{self.counter}"
        self.counter += 1
        client.ok(b"c", f'CREATE "{name}"'.encode())
        self.prepared(client, name, self.rng.randint(1, 4))
        mids = self.folders[name].mids()
        expect.folders_may.add(name)
        expect.may[name] = set(mids)
        # A DELETE cut short between removing .mh_sequences and the
        # files leaves them outside unseen, so read (counted).
        expect.flags[name] = {m: {frozenset(), RELAXED} for m in mids}

        def settle(_p: object) -> bool:
            tagged, _ = client.outcome(b"a")
            self.folders.pop(name, None)
            if tagged is None:
                return False
            expect.folders_may.discard(name)
            return True

        return lambda: client.send(f'a DELETE "{name}"\r\n'.encode()), settle

    _either: list[tuple[str, tuple[str, str]]]

    def run(
        self,
        kills: int,
        budget: float | None = None,
        enough: Callable[[Stats], bool] | None = None,
        max_kills: int | None = None,
    ) -> Stats:
        """``kills`` rounds; with ``enough``, more (up to ``max_kills``)
        until it holds -- kill timing is random, so on a fast machine a
        short run may cut too few commands short to prove anything."""
        started = time.monotonic()
        self._either = []
        client = self.login()
        for name in FOLDERS[1:]:
            client.ok(b"c", f'CREATE "{name}"'.encode())
        client.close()
        self.check(Expectation(folders_must=set(FOLDERS)), "start")
        ops = list(OPERATIONS)
        limit = max(kills, max_kills or kills)
        while self.stats.rounds < kills or (
            enough is not None and not enough(self.stats) and self.stats.rounds < limit
        ):
            if budget is not None and time.monotonic() - started > budget:
                break
            operation = ops[self.stats.rounds % len(ops)]
            if self.stats.rounds >= len(ops):
                operation = self.rng.choice(ops)
            self.round(operation)
            self._check_replaced()
            self.drop_leftover_folders()
        self.stats.seconds = time.monotonic() - started
        return self.stats

    def _check_replaced(self) -> None:
        for name, (old, new) in self._either:
            present = self.folders.get(name, Folder()).mids()
            if old not in present and new not in present:
                raise Failure(f"REPLACE cut short lost both {old} and {new} in {name}")
        self._either = []

    def drop_leftover_folders(self) -> None:
        """Folders from RENAME/DELETE rounds are not carried on."""
        extra = [n for n in self.folders if n not in FOLDERS]
        if not extra:
            return
        client = self.login()
        for name in extra:
            client.ok(b"x", f'DELETE "{name}"'.encode())
            del self.folders[name]
        client.close()

    def close(self) -> None:
        if self.server.process.poll() is None:
            status = self.server.stop()
            if status != 0:
                raise Failure(f"asimapd exited {status}:\n{self.server.log()[-3000:]}")


def deliver_main(root: str, name: str, spool: str, count: int) -> int:
    """The delivery process: deliver each spooled message through the
    store and print its UID once it is stored (acknowledged)."""
    import asyncio

    from asimap.store.mh import MHStore
    from asimap.store.mh.delivery import deliver

    if IS_ROOT:
        # As the mail root's owner, as a delivery agent runs; dropped only
        # now, since the interpreter lives where that user cannot read.
        owner = Path(root).stat().st_uid
        os.setgroups([])
        os.setgid(owner)
        os.setuid(owner)

    async def go() -> None:
        store = await MHStore.open(Path(root), create=False, watch=False)
        try:
            for n in range(count):
                uid = await deliver(store, name, (Path(spool) / str(n)).read_bytes())
                print(uid, flush=True)
        finally:
            await store.close()

    asyncio.run(go())
    return 0


@contextlib.contextmanager
def crash_run(seed: int, main_every: int = 5) -> Iterator[CrashRun]:
    from asimap.tls import generate_self_signed

    with mail_setup() as setup:
        cert, key = setup.base / "cert.pem", setup.base / "key.pem"
        generate_self_signed(cert, key, ["127.0.0.1", "localhost"])
        run = CrashRun(setup, cert, key, seed, main_every)
        try:
            yield run
        finally:
            try:
                run.close()
            finally:
                if run.server.process.poll() is None:
                    run.server.kill()


def main(argv: list[str]) -> int:
    if argv[:1] == ["--deliver"]:
        return deliver_main(argv[1], argv[2], argv[3], int(argv[4]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=300)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument(
        "--main-every",
        type=int,
        default=5,
        help="every Nth kill is of the main process (0: never)",
    )
    args = parser.parse_args(argv)
    with crash_run(args.seed, args.main_every) as run:
        stats = run.run(args.kills)
    print(f"seed {args.seed}: {stats.rounds} rounds in {stats.seconds:.0f} s")
    print(f"kills: {stats.kills}")
    print(f"acknowledged before the kill: {stats.acknowledged}")
    print(f"cut short by the kill: {stats.cut_short}")
    print(
        f"messages checked: {stats.messages_checked}, "
        f"UIDs recorded: {stats.uids_recorded}, "
        f"MOVE left in both: {stats.both_after_move}, "
        f"MULTIAPPEND/COPY cut in part: {stats.partial_atomic}, "
        f"logins dropped just after a kill: {stats.logins_dropped}, "
        f"flags off on a cut-short copy: {stats.flags_off_after_cut}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
