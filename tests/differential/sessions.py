"""The scripted sessions: data tables of commands, expanded per message.

A session is a list of commands sent on one fresh connection, logged in.
``${NAME}`` in a command is replaced by the value that server last gave
for it (``${HIGHESTMODSEQ}``, ``${UIDVALIDITY}``, ``${MODSEQ}``), so
values each server picks for itself can still be sent back to it.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message as EmailMessage

from .messages import Message

CORPUS_BOX = "corpus"
EDGE_BOX = "edge"
WORK_BOX = "work"


@dataclass(frozen=True)
class Session:
    name: str
    commands: tuple[bytes, ...]
    #: Messages put into INBOX without IMAP before the session logs in
    #: (an MH file in asimap's root, a Maildir file in Dovecot's).
    deliveries: tuple[bytes, ...] = ()


#: FETCH items every message is asked for (RFC 9051 section 6.4.5 and
#: RFC 3501 for the RFC822.* forms).  Peek forms keep flags unchanged.
WHOLE_MESSAGE_ITEMS = (
    b"(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)",
    b"(BODYSTRUCTURE BODY)",
    b"(BODY.PEEK[HEADER] BODY.PEEK[TEXT])",
    b"(BODY.PEEK[HEADER.FIELDS (From To Cc Subject Date Message-ID X-Missing)])",
    b"(BODY.PEEK[HEADER.FIELDS.NOT (Received DKIM-Signature)])",
    b"(BODY.PEEK[] BODY.PEEK[]<0.100> BODY.PEEK[]<50.20> BODY.PEEK[]<99999.5>)",
    b"(RFC822.HEADER RFC822.SIZE)",
    b"(BINARY.SIZE[] BINARY.PEEK[] BINARY.PEEK[]<0.60>)",
    b"ALL",
    b"FULL",
)

#: What is fetched of each part (RFC 9051 6.4.5; BINARY is RFC 3516).
PART_ITEMS = (
    b"BODY.PEEK[{p}]",
    b"BODY.PEEK[{p}.MIME]",
    b"BODY.PEEK[{p}]<3.40>",
    b"BINARY.PEEK[{p}]",
    b"BINARY.SIZE[{p}]",
    b"BINARY.PEEK[{p}]<0.30>",
)
#: And of a MESSAGE/RFC822 part, the sections of the message inside it.
MESSAGE_PART_ITEMS = (
    b"BODY.PEEK[{p}.HEADER]",
    b"BODY.PEEK[{p}.TEXT]",
    b"BODY.PEEK[{p}.HEADER.FIELDS (Subject)]",
)


def part_numbers(raw: bytes) -> list[tuple[str, bool]]:
    """Every part name with "is a message/rfc822", RFC 9051 6.4.5 numbering.

    Python's parser decides the structure; both servers are asked the
    same, so where they disagree with it the difference still shows."""
    parsed = email.message_from_bytes(raw, policy=email.policy.compat32)
    out: list[tuple[str, bool]] = []

    def walk(node: EmailMessage, name: str | None) -> None:
        if node.is_multipart() and node.get_content_maintype() == "multipart":
            children = node.get_payload()
            assert isinstance(children, list)
            for number, child in enumerate(children, start=1):
                walk(child, f"{name}.{number}" if name else str(number))
            return
        own = name or "1"
        is_message = node.get_content_type() == "message/rfc822"
        out.append((own, is_message))
        if is_message and node.is_multipart():
            inner = node.get_payload()
            if isinstance(inner, list) and inner and inner[0].is_multipart():
                walk(inner[0], own)
            else:
                out.append((f"{own}.1", False))

    walk(parsed, None)
    return out[:40]


def fetch_session(name: str, box: str, messages: list[Message]) -> Session:
    """Every FETCH item of every message of ``box`` (read-only)."""
    commands: list[bytes] = [b"EXAMINE " + box.encode()]
    for uid, message in enumerate(messages, start=1):
        prefix = b"UID FETCH %d " % uid
        commands.extend(prefix + items for items in WHOLE_MESSAGE_ITEMS)
        for part, is_message in part_numbers(message.raw):
            p = part.encode()
            items = [item.replace(b"{p}", p) for item in PART_ITEMS]
            if is_message:
                items.extend(item.replace(b"{p}", p) for item in MESSAGE_PART_ITEMS)
            commands.append(prefix + b"(" + b" ".join(items) + b")")
    return Session(name, tuple(commands))


#: Every search key of RFC 9051 section 6.4.4 (and RFC 3501's, RFC 7162's
#: MODSEQ, RFC 5032's OLDER/YOUNGER), on the corpus-like data.
SEARCH_KEYS: tuple[bytes, ...] = (
    b"ALL",
    b"ANSWERED",
    b"UNANSWERED",
    b"DELETED",
    b"UNDELETED",
    b"DRAFT",
    b"UNDRAFT",
    b"FLAGGED",
    b"UNFLAGGED",
    b"SEEN",
    b"UNSEEN",
    b"NEW",
    b"OLD",
    b"RECENT",
    b"KEYWORD $Label1",
    b"UNKEYWORD $Label1",
    b"KEYWORD todo",
    b"KEYWORD nosuchkeyword",
    b"BEFORE 1-Apr-2023",
    b"ON 2-Mar-2023",
    b"SINCE 15-Mar-2023",
    b"SENTBEFORE 1-Jan-2016",
    b"SENTON 7-Jan-2024",
    b"SENTSINCE 1-Jan-2018",
    b"LARGER 5000",
    b"SMALLER 3000",
    b"FROM ettus",
    b"FROM example.org",
    b"FROM user-from@domain.org",
    b"TO usrp-users",
    b"CC lists",
    b"BCC nobody",
    b"SUBJECT usrp",
    b"SUBJECT RE:",
    b'SUBJECT "caf\xc3\xa9"',
    b"BODY uhd",
    b"BODY FPGA",
    b"TEXT ettus",
    b"TEXT gnuradio",
    b"HEADER Message-ID example.org",
    b'HEADER X-Only ""',
    b"HEADER Content-Type multipart",
    b"UID 1:10",
    b"UID 5,3,90:*",
    b"1:5",
    b"*",
    b"2:4 SEEN",
    b"NOT SEEN",
    b"OR FLAGGED ANSWERED",
    b"OR (FROM ettus SUBJECT usrp) NOT (LARGER 4000)",
    b"NOT OR SEEN DELETED",
    b"CHARSET UTF-8 SUBJECT caf\xc3\xa9",
    b"CHARSET UTF-8 BODY cr\xc3\xa8me",
    b"MODSEQ 1",
)

SORT_CRITERIA: tuple[bytes, ...] = (
    b"(ARRIVAL)",
    b"(CC)",
    b"(DATE)",
    b"(FROM)",
    b"(SIZE)",
    b"(SUBJECT)",
    b"(TO)",
    b"(DISPLAYFROM)",
    b"(DISPLAYTO)",
    b"(REVERSE DATE)",
    b"(REVERSE SUBJECT DATE)",
    b"(FROM REVERSE SIZE)",
    b"(REVERSE ARRIVAL)",
)

THREAD_ALGORITHMS = (b"ORDEREDSUBJECT", b"REFERENCES", b"REFS")


def search_session(box: str) -> Session:
    commands = [b"EXAMINE " + box.encode()]
    for key in SEARCH_KEYS:
        commands.append(b"SEARCH " + key)
        commands.append(b"UID SEARCH " + key)
    for returns in (b"()", b"(MIN)", b"(MAX COUNT)", b"(ALL)", b"(MIN MAX ALL COUNT)"):
        commands.append(b"SEARCH RETURN " + returns + b" FLAGGED")
        commands.append(b"UID SEARCH RETURN " + returns + b" SEEN")
    commands.append(b"UID SEARCH RETURN (COUNT) NOT ALL")
    commands.append(b"SEARCH RETURN (SAVE) FLAGGED")
    commands.append(b"UID SEARCH UID $")
    commands.append(b"SEARCH RETURN (SAVE MIN) SEEN")
    commands.append(b"FETCH $ (UID FLAGS)")
    return Session(f"search-{box}", tuple(commands))


def sort_session(box: str) -> Session:
    commands = [b"EXAMINE " + box.encode()]
    for criteria in SORT_CRITERIA:
        commands.append(b"SORT " + criteria + b" UTF-8 ALL")
        commands.append(b"UID SORT " + criteria + b" UTF-8 ALL")
    # RFC 5267 ESORT: ALL in sort order, MIN/MAX/COUNT.
    commands.append(b"SORT RETURN (MIN MAX COUNT) (DATE) UTF-8 ALL")
    commands.append(b"UID SORT RETURN (ALL) (SUBJECT) UTF-8 ALL")
    commands.append(b"UID SORT RETURN (ALL COUNT) (REVERSE FROM) UTF-8 UNSEEN")
    commands.append(b"SORT (SUBJECT) US-ASCII SEEN")
    commands.append(b"UID SORT (DATE) UTF-8 OR FLAGGED FROM ettus")
    for algorithm in THREAD_ALGORITHMS:
        commands.append(b"THREAD " + algorithm + b" UTF-8 ALL")
        commands.append(b"UID THREAD " + algorithm + b" UTF-8 ALL")
        commands.append(b"UID THREAD " + algorithm + b" US-ASCII UNSEEN")
    return Session(f"sort-{box}", tuple(commands))


#: Mailboxes made for LIST/LSUB/STATUS (beyond corpus, edge, work and the
#: special-use ones); ``&AOk-t&AOk-`` is "été" in modified UTF-7.
FOLDERS = ("a", "a/b", "a/b/c", "a/d", "Foo Bar", "&AOk-t&AOk-", "zeta", "gone")
SUBSCRIBED = ("a/b", "Foo Bar", "zeta", "gone")

LIST_COMMANDS: tuple[bytes, ...] = (
    b'LIST "" ""',
    b'LIST "" "*"',
    b'LIST "" "%"',
    b'LIST "" "a/%"',
    b'LIST "" "a/*"',
    b'LIST "a/" "%"',
    b'LIST "" "A"',
    b'LIST "" "inbox"',
    b'LIST "" "INBOX"',
    b'LIST "" "*b*"',
    b'LIST "" "nosuch"',
    b'LIST "" "x%y"',
    b'LIST "" "&AOk-t&AOk-"',
    b'LIST "" "%/%"',
    b'LIST "" "!#$&\'+,-.0123456789:;<=>?@^_`|[}%*"',
    b'LSUB "" "*"',
    b'LSUB "" "%"',
    b'LSUB "" "a/%"',
    b'LIST (SUBSCRIBED) "" "*"',
    b'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"',
    b'LIST (SPECIAL-USE) "" "*"',
    b'LIST "" "*" RETURN (CHILDREN)',
    b'LIST "" "%" RETURN (SUBSCRIBED CHILDREN)',
    b'LIST "" "*" RETURN (SPECIAL-USE)',
    b'LIST "" ("a" "zeta" "Foo Bar")',
    b'LIST "" "a*" RETURN (STATUS (MESSAGES UNSEEN))',
)

STATUS_ITEMS = b"(MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE)"


def list_session() -> Session:
    commands: list[bytes] = [*LIST_COMMANDS]
    for box in (CORPUS_BOX, EDGE_BOX, "a", "Foo Bar", "INBOX", "nosuch"):
        commands.append(b'STATUS "' + box.encode() + b'" ' + STATUS_ITEMS)
    commands.append(b"STATUS edge (MESSAGES)")
    commands.append(b"STATUS edge (UNSEEN MESSAGES)")
    # Last, as they change what LIST shows: names the servers may refuse.
    commands.append(b'SUBSCRIBE "never-created"')
    commands.append(b'CREATE "x%y"')
    return Session("list-status", tuple(commands))


def condstore_session() -> Session:
    """RFC 7162 CONDSTORE and QRESYNC on a copy of the edge mailbox."""
    work = WORK_BOX.encode()
    return Session(
        "condstore",
        (
            b"ENABLE CONDSTORE",
            b"SELECT " + work,
            b"FETCH 1:* (UID FLAGS MODSEQ)",
            b"STORE 1 +FLAGS (\\Flagged)",
            b"STORE 2 +FLAGS.SILENT (\\Seen)",
            b"FETCH 1:* (FLAGS) (CHANGEDSINCE 1)",
            b"UID STORE 3 (UNCHANGEDSINCE 1) +FLAGS (\\Answered)",
            b"UID STORE 4 (UNCHANGEDSINCE ${HIGHESTMODSEQ}) +FLAGS (kw1)",
            b"SEARCH MODSEQ 1",
            b'SEARCH MODSEQ "/flags/\\\\flagged" all 1',
            b"UID SEARCH RETURN (MIN MAX) MODSEQ 1",
            b"STATUS edge (HIGHESTMODSEQ)",
            b"UNSELECT",
        ),
    )


def qresync_session() -> Session:
    work = WORK_BOX.encode()
    return Session(
        "qresync",
        (
            b"ENABLE QRESYNC",
            b"SELECT " + work,
            b"STORE 5 +FLAGS (\\Deleted)",
            b"EXPUNGE",
            b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)",
            b"UNSELECT",
            b"SELECT " + work + b" (QRESYNC (${UIDVALIDITY} 1))",
            b"UNSELECT",
            b"SELECT " + work + b" (QRESYNC (${UIDVALIDITY} 1 1:20))",
            b"CLOSE",
        ),
    )


def condstore_enabled_by_command() -> Session:
    """Issue 10 point 4: FETCH MODSEQ enables CONDSTORE (RFC 7162 3.1)."""
    return Session(
        "condstore-implicit",
        (b"SELECT " + WORK_BOX.encode(), b"FETCH 1 (MODSEQ)", b"FETCH 2 (FLAGS)"),
    )


def setup_session(boxes: dict[str, list[Message]]) -> Session:
    """Create and fill every mailbox; this is compared too (APPENDUID)."""
    commands: list[bytes] = []
    for box, messages in boxes.items():
        commands.append(b"CREATE " + box.encode())
        for message in messages:
            flags = " ".join(message.flags).encode()
            commands.append(
                b'APPEND %s (%s) "%s" {%d}\r\n%s'
                % (
                    box.encode(),
                    flags,
                    message.internaldate.encode(),
                    len(message.raw),
                    message.raw,
                )
            )
    for folder in FOLDERS:
        commands.append(b'CREATE "' + folder.encode() + b'"')
    for folder in SUBSCRIBED:
        commands.append(b'SUBSCRIBE "' + folder.encode() + b'"')
    # RFC 9051 section 6.3.9: a subscription outlives its mailbox.
    commands.append(b'DELETE "gone"')
    # INBOX once, so that what is delivered later is new mail to both (the
    # first look at an MH folder imports what it holds, "delivered").
    commands += [b"SELECT INBOX", b"UNSELECT"]
    # Selecting claims \Recent (RFC 3501 section 2.3.2), so that the later
    # read-only sessions see none in either server; "recent" tests it.
    for box in boxes:
        commands.append(b"SELECT " + box.encode())
        if box == EDGE_BOX:
            commands.append(b"COPY 1:* " + WORK_BOX.encode())
        commands.append(b"UNSELECT")
    return Session("setup", tuple(commands))


def recent_session() -> Session:
    """Issue 10 point 1: EXAMINE reports RECENT as SELECT does."""
    message = b"From: r@example.org\r\nSubject: recent\r\n\r\nr\r\n"
    append = b"APPEND fresh {%d}\r\n%s" % (len(message), message)
    return Session(
        "recent",
        (
            b"CREATE fresh",
            append,
            append,
            b"STATUS fresh (RECENT MESSAGES)",
            b"EXAMINE fresh",
            b"FETCH 1:* (FLAGS)",
            b"SEARCH RECENT",
            b"UNSELECT",
            b"SELECT fresh",
            b"FETCH 1:* (FLAGS)",
            b"CLOSE",
            b"SELECT fresh",
            b"SEARCH RECENT",
            b"CLOSE",
        ),
    )


#: A message whose second part is binary with NUL octets (RFC 3516 APPEND).
BINARY_MESSAGE = (
    b"From: nul@example.org\r\nSubject: NUL in a binary part\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n"
    b"--z\r\nContent-Type: text/plain\r\n\r\ntext\r\n"
    b"--z\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: binary\r\n\r\n"
    + bytes(range(0, 256))
    + b"\r\n--z--\r\n"
)


def binary_session() -> Session:
    """Issue 10 point 2: NUL must never reach a plain literal (RFC 9051
    section 4.3); only BINARY answered as literal8 may carry it."""
    append = b"APPEND binary ~{%d}\r\n%s" % (len(BINARY_MESSAGE), BINARY_MESSAGE)
    return Session(
        "binary",
        (
            b"CREATE binary",
            append,
            b"SELECT binary",
            b"FETCH 1 (BODYSTRUCTURE RFC822.SIZE)",
            b"FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2])",
            b"FETCH 1 (BODY.PEEK[2])",
            b"FETCH 1 (BODY.PEEK[])",
            b"CLOSE",
        ),
    )


#: Messages with NUL octets that no APPEND re-encoded: a stray NUL in 8bit
#: text, a ``binary`` part, a NUL in a header field.
DELIVERED_MESSAGES = (
    b"From: a@example.org\r\nSubject: stray NUL\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n\r\nhello\x00world\r\nsecond line\r\n",
    # Octets but line ends (a bare CR or LF Dovecot would make CRLF).
    BINARY_MESSAGE.replace(
        bytes(range(256)), bytes(range(256)).replace(b"\r", b"").replace(b"\n", b"")
    ),
    b"From: a@example.org\r\nSubject: NUL\x00in header\r\n\r\nbody\r\n",
)


def delivered_session() -> Session:
    """NUL in messages delivered without APPEND: never in a plain literal
    (RFC 9051 sections 4.3.1 and 9), BINARY exact in a literal8."""
    commands = [b"EXAMINE INBOX"]
    for number in range(1, len(DELIVERED_MESSAGES) + 1):
        fetch = b"FETCH %d " % number
        commands += [
            fetch + b"(BODYSTRUCTURE RFC822.SIZE ENVELOPE)",
            fetch + b"(BODY.PEEK[] BODY.PEEK[]<3.20> BINARY.PEEK[])",
            fetch
            + b"(BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[1] BODY.PEEK[1.MIME])",
            fetch + b"(BINARY.PEEK[1] BINARY.SIZE[1])",
        ]
    commands += [
        b"FETCH 2 (BODY.PEEK[2] BODY.PEEK[2]<0.40> BINARY.PEEK[2] BINARY.SIZE[2])",
        b"SEARCH TEXT world",
        b"SEARCH BODY hello",
        b"SEARCH SUBJECT header",
        b"SELECT INBOX",
        b"FETCH 1:* (RFC822.HEADER RFC822.TEXT)",
        b"FETCH 1:* (RFC822)",
        b"CLOSE",
    ]
    return Session("delivered", tuple(commands), DELIVERED_MESSAGES)


def all_sessions(corpus: list[Message], edge: list[Message]) -> Iterator[Session]:
    yield setup_session({CORPUS_BOX: corpus, EDGE_BOX: edge, WORK_BOX: []})
    yield fetch_session("fetch-edge", EDGE_BOX, edge)
    yield fetch_session("fetch-corpus", CORPUS_BOX, corpus)
    yield search_session(CORPUS_BOX)
    yield search_session(EDGE_BOX)
    yield sort_session(CORPUS_BOX)
    yield sort_session(EDGE_BOX)
    yield list_session()
    yield recent_session()
    yield binary_session()
    yield delivered_session()
    yield condstore_enabled_by_command()
    yield condstore_session()
    yield qresync_session()
