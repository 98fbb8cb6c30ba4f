"""IMAPClient's calls for the modern extensions, against asimap on MH.

Issue 6 (Show): "imapclient's idle, condstore, sort, thread and move
calls".  The server runs in process on the MH store over implicit TLS; the
client is IMAPClient (requirements-test.txt), used as an application would
use it.  Every answer is compared with an expectation worked out here by
hand from the RFCs for a small set of messages built for the purpose, never
with what asimap itself computes; threading is also checked on two real
threads of the corpus, read by hand from their headers.

Not covered, because asimap does not advertise it (IMAPClient then
refuses the call itself): ``xlist_folders`` (XLIST, Gmail's).

The eight messages (sequence number = UID = arrival order):

====  ==========  ====================  =============  =====================
 seq   From        Subject               Date (2024)    References
====  ==========  ====================  =============  =====================
  1    zed         Plans                 01 Jan         -
  2    amy         Re: Plans             02 Jan         <a>
  3    bob         Other topic           03 Jan         -
  4    amy         Re: Plans             04 Jan         <a> <b>
  5    carl        RE: Other topic       05 Jan         <missing> (absent)
  6    zed         Fwd: Plans            06 Jan         -
  7    bob         Lunch                 07 Jan         -
  8    dan         lunch                 31 Dec 2023    -
====  ==========  ====================  =============  =====================
"""

from __future__ import annotations

import datetime
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient, exceptions
from imapclient.imapclient import ARCHIVE, DRAFTS, JUNK, SENT, TRASH

from conftest import PASSWORD, USER, ServerFactory, TlsFiles
from worker_harness import Asimapd, mail_setup

TIMEOUT = 10
#: The UIDs of the eight messages (IMAPClient 4 drops answers for UIDs
#: it did not ask for by number, so "1:*" cannot be used with fetch).
ALL = list(range(1, 9))


@dataclass(frozen=True)
class Spec:
    sender: str
    subject: str
    date: str
    ident: str
    references: str = ""
    body: str = ""


SPECS = [
    Spec("zed", "Plans", "Mon, 01 Jan 2024 09:00:00 +0000", "a"),
    Spec("amy", "Re: Plans", "Tue, 02 Jan 2024 09:00:00 +0000", "b", "<a@ex.org>"),
    Spec("bob", "Other topic", "Wed, 03 Jan 2024 09:00:00 +0000", "c"),
    Spec(
        "amy",
        "Re: Plans",
        "Thu, 04 Jan 2024 09:00:00 +0000",
        "d",
        "<a@ex.org> <b@ex.org>",
    ),
    Spec(
        "carl",
        "RE: Other topic",
        "Fri, 05 Jan 2024 09:00:00 +0000",
        "e",
        "<missing@ex.org>",
        "Un café, s'il vous plaît.",
    ),
    Spec("zed", "Fwd: Plans", "Sat, 06 Jan 2024 09:00:00 +0000", "f"),
    Spec("bob", "Lunch", "Sun, 07 Jan 2024 09:00:00 +0000", "g"),
    Spec("dan", "lunch", "Sun, 31 Dec 2023 09:00:00 +0000", "h"),
]


def build(spec: Spec, index: int) -> bytes:
    """One message; bodies grow with ``index`` times a varying amount so
    that no two sizes are equal (for SORT SIZE)."""
    headers = [
        f"From: {spec.sender.title()} <{spec.sender}@ex.org>",
        "To: Demo <demo@ex.org>",
        f"Subject: {spec.subject}",
        f"Date: {spec.date}",
        f"Message-ID: <{spec.ident}@ex.org>",
    ]
    if spec.references:
        headers.append(f"References: {spec.references}")
        headers.append(f"In-Reply-To: {spec.references.split()[-1]}")
    headers += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8"]
    body = (spec.body or f"Message {spec.ident}.") + "\n" + "x" * (37 * index % 101)
    text = "\r\n".join(headers) + "\r\n\r\n" + body.replace("\n", "\r\n") + "\r\n"
    return text.encode("utf-8")


MESSAGES = [build(spec, n) for n, spec in enumerate(SPECS)]


@dataclass
class Mh:
    host: str
    port: int
    tls: TlsFiles

    def client(self) -> IMAPClient:
        client = IMAPClient(
            self.host,
            port=self.port,
            ssl=True,
            ssl_context=self.tls.client_context(),
            timeout=TIMEOUT,
        )
        client.login(USER, PASSWORD)
        return client


@pytest.fixture
def mh(tmp_path: Path, tls_files: TlsFiles, server_factory: ServerFactory) -> Mh:
    """The MH store, with the eight messages in INBOX."""
    return in_process(tmp_path, tls_files, server_factory)


def in_process(
    tmp_path: Path, tls_files: TlsFiles, server_factory: ServerFactory
) -> Mh:
    from asimap.auth.hashers import make_password

    pwfile = tmp_path / "pwfile"
    pwfile.write_text(f"{USER}:{make_password(PASSWORD, iterations=1000)}:Mail\n")
    (tmp_path / "Mail").mkdir()
    server = server_factory(pwfile=pwfile, store="mh", workers=False)
    return seed(Mh(server.host, server.imaps_port, tls_files))


def seed(mh: Mh) -> Mh:
    with mh.client() as client:
        for n, data in enumerate(MESSAGES):
            arrival = datetime.datetime(2024, 2, 1 + n, tzinfo=datetime.UTC)
            client.append("INBOX", data, msg_time=arrival)
    return mh


@pytest.fixture(params=["in-process", "workers"])
def mh_any(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    tls_files: TlsFiles,
    server_factory: ServerFactory,
) -> Iterator[Mh]:
    """:func:`mh`, and the same behind ``asimapd`` in worker mode (the
    production shape: main process, TLS relay, the user's worker)."""
    if request.param == "in-process":
        yield in_process(tmp_path, tls_files, server_factory)
        return
    with mail_setup() as setup:
        daemon = Asimapd(setup, tls_files.cert, tls_files.key)
        try:
            yield seed(Mh("127.0.0.1", daemon.ports["imaps"], tls_files))
        finally:
            assert daemon.stop() == 0, daemon.log()


@pytest.fixture
def inbox(mh: Mh) -> Iterator[IMAPClient]:
    with mh.client() as client:
        client.select_folder("INBOX")
        yield client


# -- IDLE (RFC 2177) ---------------------------------------------------------


def idle_until(client: IMAPClient, count: int, timeout: float = 5) -> list[Any]:
    """``idle_check`` until ``count`` responses arrived (they may come in
    several reads), then once more briefly for any stray extra one."""
    deadline = time.monotonic() + timeout
    got: list[Any] = []
    while len(got) < count and time.monotonic() < deadline:
        got += client.idle_check(timeout=deadline - time.monotonic())
    got += client.idle_check(timeout=0.3)
    return got


def test_idle_sees_exists_fetch_flags_and_expunge_from_another_connection(
    mh_any: Mh,
) -> None:
    mh = mh_any
    with mh.client() as idler, mh.client() as other:
        idler.select_folder("INBOX")
        idler.idle()
        other.append("INBOX", MESSAGES[0])
        # RFC 3501 7.3.1 and 7.3.2: the idler was the first session to
        # select INBOX, so all nine messages are \Recent for it.
        assert idle_until(idler, 2) == [(9, b"EXISTS"), (9, b"RECENT")]
        other.select_folder("INBOX")
        other.add_flags([3], [b"\\Flagged", b"$Work"])
        # RFC 3501 7.2.6: a new keyword is announced in FLAGS first.
        got = idle_until(idler, 3)
        assert got[-1][:3] == (3, b"FETCH", (b"FLAGS", got[-1][2][1])), got
        assert sorted(got[-1][2][1]) == [b"$Work", b"\\Flagged", b"\\Recent"]
        assert got[0][0] == b"FLAGS" and b"$Work" in got[0][1], got
        assert got[1][0] == b"OK" and b"PERMANENTFLAGS" in got[1][1], got
        assert len(got) == 3, got
        other.delete_messages([2, 5])
        assert sorted(idle_until(idler, 2)) == [
            (2, b"FETCH", (b"FLAGS", (b"\\Deleted", b"\\Recent"))),
            (5, b"FETCH", (b"FLAGS", (b"\\Deleted", b"\\Recent"))),
        ]
        other.expunge()
        # Sequence numbers shift down after each EXPUNGE (RFC 3501 7.4.1);
        # both orders are valid, so both are accepted when exact.
        got = idle_until(idler, 2)
        assert got in (
            [(2, b"EXPUNGE"), (4, b"EXPUNGE")],
            [(5, b"EXPUNGE"), (2, b"EXPUNGE")],
        ), got
        idler.idle_done()
        assert idler.search(["ALL"]) == [1, 3, 4, 6, 7, 8, 9]


# -- CONDSTORE (RFC 7162) -----------------------------------------------------


def test_condstore_changedsince_modseq_and_highestmodseq(mh_any: Mh) -> None:
    mh = mh_any
    with mh.client() as reader, mh.client() as writer:
        # RFC 5161 section 3.1: ENABLE is for the authenticated state.
        assert reader.enable("CONDSTORE") == [b"CONDSTORE"]
        info = reader.select_folder("INBOX", readonly=True)
        assert info[b"READ-ONLY"] == [b""]
        start = info[b"HIGHESTMODSEQ"]
        assert isinstance(start, int) and start > 0
        # RFC 7162 3.1.4.1: every message has a MODSEQ, none above the
        # mailbox's HIGHESTMODSEQ.
        modseqs = {
            uid: data[b"MODSEQ"][0]
            for uid, data in reader.fetch(ALL, ["MODSEQ"]).items()
        }
        assert sorted(modseqs) == list(range(1, 9))
        assert max(modseqs.values()) == start
        assert reader.fetch(ALL, ["FLAGS"], modifiers=[f"CHANGEDSINCE {start}"]) == {}

        writer.select_folder("INBOX")
        writer.add_flags([2], [b"\\Seen"])
        writer.add_flags([7], [b"\\Answered"])
        changed = reader.fetch(ALL, ["FLAGS"], modifiers=[f"CHANGEDSINCE {start}"])
        assert sorted(changed) == [2, 7]
        # The reader EXAMINEd first, so the messages are \\Recent for it
        # (RFC 3501 sections 2.3.2 and 6.3.2), although the writer's SELECT
        # claimed them too.
        assert changed[2][b"FLAGS"] == (b"\\Seen", b"\\Recent")
        assert changed[7][b"FLAGS"] == (b"\\Answered", b"\\Recent")
        # RFC 7162 3.1.4.1: CHANGEDSINCE implies MODSEQ in the answer, and
        # each change gets a MODSEQ above everything before it.
        second, seventh = changed[2][b"MODSEQ"][0], changed[7][b"MODSEQ"][0]
        assert start < second < seventh
        later = reader.fetch(ALL, ["FLAGS"], modifiers=[f"CHANGEDSINCE {second}"])
        assert sorted(later) == [7]
        status = reader.folder_status("INBOX", ["HIGHESTMODSEQ"])
        assert status[b"HIGHESTMODSEQ"] == seventh
        # A read-only SELECT does not set \Seen (RFC 3501 6.3.2): BODY[]
        # fetches leave the modseq alone.
        reader.fetch([1], ["BODY[]"])
        assert reader.fetch(ALL, ["FLAGS"], modifiers=[f"CHANGEDSINCE {seventh}"]) == {}


# -- SORT (RFC 5256) ----------------------------------------------------------


def sizes_order(reverse: bool) -> list[int]:
    """Sequence numbers by RFC822.SIZE, computed from the bytes we sent."""
    by_size = sorted(range(1, 9), key=lambda n: len(MESSAGES[n - 1]), reverse=reverse)
    assert len({len(m) for m in MESSAGES}) == 8  # no ties to break
    return by_size


def test_sort_with_several_criteria(inbox: IMAPClient) -> None:
    # RFC 5256 section 3: FROM compares the first From address's mailbox
    # (amy, bob, carl, dan, zed); REVERSE DATE then breaks the ties.
    assert inbox.sort(["FROM", "REVERSE DATE"]) == [4, 2, 7, 3, 5, 8, 6, 1]
    # SUBJECT compares base subjects (section 2.1: "Re:", "RE:", "Fwd:"
    # removed, case folded): lunch < other topic < plans; ARRIVAL next.
    assert inbox.sort(["SUBJECT", "ARRIVAL"]) == [7, 8, 3, 5, 1, 2, 4, 6]
    # DATE is the Date: header (section 2.2); message 8 is from 2023.
    assert inbox.sort("DATE") == [8, 1, 2, 3, 4, 5, 6, 7]
    assert inbox.sort(["REVERSE ARRIVAL"]) == [8, 7, 6, 5, 4, 3, 2, 1]
    assert inbox.sort("SIZE") == sizes_order(reverse=False)
    assert inbox.sort(["REVERSE SIZE"]) == sizes_order(reverse=True)
    # Search criteria narrow the set; sorting applies to what is left.
    assert inbox.sort(["REVERSE DATE"], ["FROM", "zed"]) == [6, 1]


def test_sort_charsets(inbox: IMAPClient) -> None:
    assert inbox.sort("ARRIVAL", ["SUBJECT", "plans"], charset="US-ASCII") == [
        1,
        2,
        4,
        6,
    ]
    # IMAPClient sends the UTF-8 text as a literal with CHARSET UTF-8.
    assert inbox.sort("ARRIVAL", ["BODY", "café"], charset="UTF-8") == [5]
    assert inbox.sort("ARRIVAL", ["BODY", "CAFÉ"], charset="UTF-8") == [5]
    # RFC 3501 6.4.4 / RFC 5256 section 3: a charset the server does not
    # offer is NO [BADCHARSET], listing the ones it does (US-ASCII and
    # UTF-8 are the two every server must have; RFC 9051 6.4.4).
    for charset, words in (
        ("ISO-8859-1", [b"BODY", "plaît".encode("latin-1")]),
        ("X-NO-SUCH", [b"SUBJECT", b"plans"]),
    ):
        with pytest.raises(
            exceptions.IMAPClientError, match=r"\[BADCHARSET \(US-ASCII UTF-8\)\]"
        ):
            inbox.sort("ARRIVAL", words, charset=charset)
    assert inbox.noop()[0] == b"NOOP completed"  # the session goes on


# -- THREAD (RFC 5256) --------------------------------------------------------


def test_thread_references(inbox: IMAPClient) -> None:
    # RFC 5256 section 4 REFERENCES, worked by hand:
    # (1) links: 1 -> 2 -> 4; a dummy for <missing> -> 5.
    # (3) a root dummy with a single child is replaced by it: 5 is a root.
    # (5) same base subject at the root: 5 ("RE:") goes under 3 and 6
    #     ("Fwd:") under 1; 7 and 8 are neither replies nor forwards, so a
    #     new dummy holds both.
    # (6) siblings by sent date; the dummy sorts by its first child, 8
    #     (dated 2023), so its thread comes first.
    assert inbox.thread("REFERENCES") == (
        ((8,), (7,)),
        (1, (2, 4), (6,)),
        (3, 5),
    )
    # Only the messages matching the search take part.
    assert inbox.thread("REFERENCES", ["SUBJECT", "lunch"]) == (((8,), (7,)),)
    # Without 1, <a@ex.org> becomes a dummy whose single child (2) takes
    # its place at the root (step 3); 4 still hangs under 2.
    assert inbox.thread("REFERENCES", ["FROM", "amy"]) == ((2, 4),)


def test_thread_orderedsubject(inbox: IMAPClient) -> None:
    # RFC 5256 section 4 ORDEREDSUBJECT: group by base subject, sort each
    # group by sent date, the first is the parent of the rest; threads in
    # the order of their first message's sent date.
    assert inbox.thread("ORDEREDSUBJECT") == (
        (8, 7),
        (1, (2,), (4,), (6,)),
        (3, 5),
    )
    assert inbox.thread("ORDEREDSUBJECT", ["NOT", "FROM", "zed"]) == (
        (8, 7),
        (2, 4),
        (3, 5),
    )


#: Two real threads of the corpus, by their index in the archive, and the
#: Message-ID each must have (checked, so the expectation below cannot drift
#: from the data).  Read by hand from their headers:
#:
#: * "[USRP-users] B200 Overrun": 46 references only a Yahoo ``.ref`` id
#:   that is not in the archive; 47, 48 and 50 reply to 46; 60 replies to
#:   47; 61, 67 and 71 reply to 60 (47's References is comma-separated).
#: * "Re: [USRP-users] Bringing an elderly N210 to life ...": 81's two
#:   parents are not in the set; 82, 83 and 92 reply to 81.
#:
#: In UTC the Date: headers put each set in archive order (48's ``00:40:50
#: -0400`` is after 47's ``04:38:55 +0000``).
CORPUS_THREADS = {
    46: "<1432742277.62002.1556943355674@mail.yahoo.com>",
    47: "<DM6PR03MB45560C798154B6FD08C115F4F2360"
    "@DM6PR03MB4556.namprd03.prod.outlook.com>",
    48: "<5CCD17D2.8050809@gmail.com>",
    50: "<26baba59a3468cb6e980b63e5c88ec1a6af459c1.camel@ettus.com>",
    60: "<1512147364.461598.1557084229705@mail.yahoo.com>",
    61: "<c12f8d6ac3accd3f0df0550a532a7779dac1ffd0.camel@ettus.com>",
    67: "<648636693.880876.1557142248877@mail.yahoo.com>",
    71: "<473643011.1385817.1557226982243@mail.yahoo.com>",
    81: "<84C6BD1A-2901-4FFC-834C-55B481EB7045@k5so.com>",
    82: "<BL0PR12MB2340CEB818D15EE2D5AF1870AF320"
    "@BL0PR12MB2340.namprd12.prod.outlook.com>",
    83: "<5CD30B61.8080700@gmail.com>",
    92: "<CA+JMMq9oRqxDSVgyACAZucejC2Z3hKwciNCjX_YEJ6taCgUQ-g@mail.gmail.com>",
}


def test_thread_real_corpus_messages(mh: Mh) -> None:
    import email.parser
    import email.policy

    from store_conformance import corpus_messages

    archive = corpus_messages(93)
    with mh.client() as client:
        client.create_folder("usrp")
        for index, ident in CORPUS_THREADS.items():
            headers = email.parser.BytesHeaderParser(
                policy=email.policy.compat32
            ).parsebytes(archive[index])
            assert str(headers["Message-ID"]).strip() == ident
            client.append("usrp", archive[index])
        client.select_folder("usrp", readonly=True)
        # Sequence numbers 1-8 are the B200 thread, 9-12 the N210 one.
        # REFERENCES: the root dummies with one child give way to it (step
        # 3); 47 has the single child 60, which has three.
        assert client.thread("REFERENCES") == (
            (1, (2, 5, (6,), (7,), (8,)), (3,), (4,)),
            (9, (10,), (11,), (12,)),
        )
        # ORDEREDSUBJECT: the "[USRP-users]" blob and "Re:" are not part of
        # the base subject (RFC 5256 section 2.1 steps 3-4).
        assert client.thread("ORDEREDSUBJECT") == (
            (1, (2,), (3,), (4,), (5,), (6,), (7,), (8,)),
            (9, (10,), (11,), (12,)),
        )
        assert client.sort(["REVERSE DATE"]) == list(range(12, 0, -1))


# -- COPY / MOVE with UIDPLUS (RFC 4315, RFC 6851) ----------------------------


def test_copy_and_move_report_uidplus_results(mh_any: Mh) -> None:
    with mh_any.client() as inbox:
        inbox.select_folder("INBOX")
        copy_and_move(inbox)


def copy_and_move(inbox: IMAPClient) -> None:
    inbox.create_folder("Projects/Y2024")
    status = inbox.folder_status("Projects/Y2024", ["UIDVALIDITY", "UIDNEXT"])
    validity, first = status[b"UIDVALIDITY"], status[b"UIDNEXT"]
    responses = inbox._imap.untagged_responses
    responses.clear()
    inbox.copy([1, 3], "Projects/Y2024")
    # RFC 4315 section 3: COPYUID <uidvalidity> <source uids> <new uids>.
    assert responses["COPYUID"] == [f"{validity} 1,3 {first}:{first + 1}".encode()]
    responses.clear()
    assert inbox.move([2, 4], "Projects/Y2024") is None
    # RFC 6851 section 4.3: COPYUID in an untagged OK before the EXPUNGEs
    # (here highest first, so no number shifts under another).
    assert responses["COPYUID"] == [f"{validity} 2,4 {first + 2}:{first + 3}".encode()]
    assert responses["EXPUNGE"] == [b"4", b"2"]
    assert inbox.search(["ALL"]) == [1, 3, 5, 6, 7, 8]

    inbox.select_folder("Projects/Y2024")
    fetched = inbox.fetch(
        [first, first + 1, first + 2, first + 3],
        ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"],
    )
    ids = {
        uid: data[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].strip()
        for uid, data in fetched.items()
    }
    assert ids == {
        first: b"Message-ID: <a@ex.org>",
        first + 1: b"Message-ID: <c@ex.org>",
        first + 2: b"Message-ID: <b@ex.org>",
        first + 3: b"Message-ID: <d@ex.org>",
    }
    # RFC 4315 section 2.1: UID EXPUNGE removes only the UIDs named.
    inbox.add_flags([first, first + 1], [b"\\Deleted"])
    inbox.uid_expunge([first + 1])
    assert inbox.search(["ALL"]) == [first, first + 2, first + 3]
    # The copies are \Recent for the first session to see them (RFC 3501
    # 6.4.7: "the Recent flag SHOULD be set, in the copy").
    assert set(inbox.get_flags([first])[first]) == {b"\\Deleted", b"\\Recent"}


# -- NAMESPACE, ID, special-use (RFC 2342, 2971, 6154) ------------------------


def test_namespace_id_and_special_use_folders(inbox: IMAPClient) -> None:
    from asimap import __version__

    namespace = inbox.namespace()
    assert namespace.personal == (("", "/"),)
    assert namespace.other is None and namespace.shared is None
    assert inbox.id_({"name": "IMAPClient", "version": "4"}) == (
        (b"name", b"asimap", b"version", __version__.encode()),
    )
    # The special-use folders of a new account (design.md section 2) carry
    # their RFC 6154 attributes in a plain LIST.
    folders = {name: set(flags) for flags, _, name in inbox.list_folders()}
    assert folders == {
        "INBOX": {b"\\HasNoChildren"},
        "Archive": {b"\\HasNoChildren", b"\\Archive"},
        "Deleted Messages": {b"\\HasNoChildren", b"\\Trash"},
        "Drafts": {b"\\HasNoChildren", b"\\Drafts"},
        "Junk": {b"\\HasNoChildren", b"\\Junk"},
        "Sent Messages": {b"\\HasNoChildren", b"\\Sent"},
    }
    found = {
        flag: inbox.find_special_folder(flag)
        for flag in (ARCHIVE, DRAFTS, JUNK, SENT, TRASH)
    }
    assert found == {
        ARCHIVE: "Archive",
        DRAFTS: "Drafts",
        JUNK: "Junk",
        SENT: "Sent Messages",
        TRASH: "Deleted Messages",
    }
    # Subscriptions (RFC 3501 6.3.6-6.3.7, LSUB 6.3.9) round-trip.
    inbox.create_folder("Lists")
    inbox.subscribe_folder("Lists")
    assert "Lists" in {name for _, _, name in inbox.list_sub_folders()}
    inbox.unsubscribe_folder("Lists")
    assert "Lists" not in {name for _, _, name in inbox.list_sub_folders()}


# -- QUOTA (RFC 9208) ---------------------------------------------------------


def test_quota_root_usage_limits_and_overquota(
    tmp_path: Path, tls_files: TlsFiles, server_factory: ServerFactory
) -> None:
    from asimap.auth.hashers import make_password

    pwfile = tmp_path / "pwfile"
    pwfile.write_text(f"{USER}:{make_password(PASSWORD, iterations=1000)}:Mail\n")
    (tmp_path / "Mail").mkdir()
    server = server_factory(
        pwfile=pwfile,
        store="mh",
        workers=False,
        quota_storage=64 * 1024,
        quota_messages=10,
    )
    mh = Mh(server.host, server.imaps_port, tls_files)
    with mh.client() as client:
        assert {b"QUOTA", b"QUOTA=RES-STORAGE", b"QUOTA=RES-MESSAGE"} <= set(
            client.capabilities()
        )
        for data in MESSAGES:
            client.append("INBOX", data)
        roots, quotas = client.get_quota_root("INBOX")
        assert roots.mailbox == "INBOX" and len(roots.quota_roots) == 1
        [root] = roots.quota_roots
        by_resource = {q.resource: q for q in quotas}
        assert sorted(by_resource) == ["MESSAGE", "STORAGE"]
        assert all(q.quota_root == root for q in quotas)
        # RFC 9208 section 5.2: MESSAGE counts messages; 5.1: STORAGE is an
        # estimate in units of 1024 octets (whether the MH files keep CRLF
        # or LF line ends, and however it rounds, it lies in this range).
        assert (by_resource["MESSAGE"].usage, by_resource["MESSAGE"].limit) == (8, 10)
        crlf = sum(len(m) for m in MESSAGES)
        lf = sum(len(m.replace(b"\r\n", b"\n")) for m in MESSAGES)
        storage = by_resource["STORAGE"]
        assert math.floor(lf / 1024) <= storage.usage <= math.ceil(crlf / 1024)
        assert storage.limit == 64
        # IMAPClient's get_quota takes a mailbox and asks for its roots.
        assert client.get_quota("Junk") == quotas
        # One root covers every mailbox of the account: Junk counts too.
        client.append("Junk", MESSAGES[0])
        client.append("INBOX", MESSAGES[1])
        # Past the limit: NO [OVERQUOTA] (RFC 5530 section 3, RFC 9208).
        with pytest.raises(exceptions.IMAPClientError, match=r"\[OVERQUOTA\]"):
            client.append("INBOX", MESSAGES[2])
        usage = {q.resource: q.usage for q in client.get_quota("INBOX")}
        assert usage["MESSAGE"] == 10


# -- MULTIAPPEND (RFC 3502) ---------------------------------------------------


def test_multiappend_stores_every_message_with_its_flags_and_date(mh_any: Mh) -> None:
    mh = mh_any
    arrival = datetime.datetime(2020, 5, 17, 8, 30, tzinfo=datetime.UTC)
    with mh.client() as client:
        assert b"MULTIAPPEND" in client.capabilities()
        before = client.folder_status("Drafts", ["MESSAGES", "UIDNEXT"])
        answer = client.multiappend(
            "Drafts",
            [
                {"msg": MESSAGES[0], "flags": [b"\\Seen", b"$Label1"], "date": arrival},
                MESSAGES[1],
                {"msg": MESSAGES[2], "flags": [b"\\Flagged"]},
            ],
        )
        # IMAPClient 3.0 puts two SP between consecutive literals, which
        # asimap accepts (asimap.imap.parser.append explains why).
        # UIDPLUS (RFC 4315 section 3): one APPENDUID with the three UIDs.
        first = before[b"UIDNEXT"]
        status, [text] = answer
        assert status == "OK"
        assert text.startswith(b"[APPENDUID "), text
        assert text.split(b"]")[0].split()[2] == f"{first}:{first + 2}".encode()
        client.select_folder("Drafts")
        uids = list(range(first, first + 3))
        fetched = client.fetch(uids, ["FLAGS", "INTERNALDATE", "BODY.PEEK[]"])
        assert [fetched[u][b"BODY[]"] for u in uids] == MESSAGES[:3]
        assert set(fetched[uids[0]][b"FLAGS"]) - {b"\\Recent"} == {
            b"\\Seen",
            b"$Label1",
        }
        assert set(fetched[uids[1]][b"FLAGS"]) - {b"\\Recent"} == set()
        assert set(fetched[uids[2]][b"FLAGS"]) - {b"\\Recent"} == {b"\\Flagged"}
        assert (
            fetched[uids[0]][b"INTERNALDATE"]
            .astimezone(datetime.UTC)
            .replace(tzinfo=datetime.UTC)
            == arrival
        )
        after = client.folder_status("Drafts", ["MESSAGES"])
        assert after[b"MESSAGES"] == before[b"MESSAGES"] + 3
