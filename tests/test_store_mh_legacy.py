"""Import of asimap 2.x state: ``asimap.db`` read into UIDVALIDITYs and UIDs.

The databases are written by :mod:`legacy_asimap2` exactly as asimap 2.x
leaves them; corrupt rows are the kind a crash or a 2.x bug leaves behind.
"""

from __future__ import annotations

import itertools
import logging
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asimap.store.mh import legacy
from asimap.store.mh.legacy import (
    MAX_RANGE,
    MAX_UID,
    LegacyAccount,
    LegacyDbUnreadable,
    LegacyMailbox,
    parse_ranges,
    read_legacy_db,
)
from legacy_asimap2 import build_legacy_db, compress_ranges

# --------------------------------------------------------------- helpers


def read(path: Path) -> LegacyAccount:
    account = read_legacy_db(path)
    assert account is not None
    assert_invariants(account)
    return account


def assert_invariants(account: LegacyAccount) -> None:
    """What the MH store relies on, whatever the database held."""
    for name, mailbox in account.mailboxes.items():
        assert mailbox.name == name
        assert 1 <= mailbox.uid_vv <= account.uid_vv <= MAX_UID
        assert 1 <= mailbox.next_uid <= MAX_UID + 1
        uids = list(mailbox.uid_by_key.values())
        assert len(set(uids)) == len(uids), "two messages share a UID"
        assert all(1 <= uid < mailbox.next_uid for uid in uids)
        assert all(key >= 1 for key in mailbox.uid_by_key)


def one_bad_mailbox(tmp_path: Path, **row: Any) -> tuple[Path, dict[str, Any]]:
    """A database with a good INBOX and one mailbox ``Bad`` built from ``row``."""
    good = {"name": "inbox", "uid_vv": 3, "uids": [5, 6], "msg_keys": [1, 2]}
    bad = {"name": "Bad", "uid_vv": 7, **row}
    path = tmp_path / "asimap.db"
    build_legacy_db(path, uid_vv=9, mailboxes=[good, bad])
    return path, bad


def assert_good_inbox_intact(account: LegacyAccount) -> None:
    inbox = account.mailboxes["INBOX"]
    assert (inbox.uid_vv, inbox.next_uid, inbox.uid_by_key) == (3, 7, {1: 5, 2: 6})


# ------------------------------------------------------------ round trip


def test_round_trip_of_several_mailboxes(tmp_path: Path) -> None:
    path = tmp_path / "asimap.db"
    build_legacy_db(
        path,
        uid_vv=12,
        mailboxes=[
            {
                "name": "inbox",
                "uid_vv": 1,
                "next_uid": 40,
                # After rmm of 4-5 and a later folder -pack: keys and UIDs
                # no longer line up, which is the point of the mapping.
                "uids": [1, 2, 3, 6, 7, 30, 31, 39],
                "msg_keys": [1, 2, 3, 4, 5, 6, 7, 8],
                "attributes": ["\\HasChildren", "\\Marked"],
                "subscribed": 1,
                "sequences": {
                    "unseen": [6, 7, 8],
                    "flagged": [2],
                    "Seen": [1, 2, 3, 4, 5],
                },
            },
            {"name": "inbox/sub", "uid_vv": 4, "uids": [1], "msg_keys": [10]},
            {
                "name": "Sent Messages",
                "uid_vv": 5,
                "uids": [],
                "msg_keys": [],
                "next_uid": 17,
                "attributes": ["\\Sent", "\\HasNoChildren"],
                "subscribed": 1,
            },
            {
                "name": "Archiv/Entwürfe 2019/Ünter",
                "uid_vv": 11,
                "uids": [100, 101, 102],
                "msg_keys": [7, 8, 9],
            },
            {
                "name": "lists/usrp",
                "uid_vv": 2,
                "uids": list(range(1, 501)),
                "next_uid": 501,
            },
        ],
    )

    account = read(path)

    assert account.uid_vv == 12
    assert list(account.mailboxes) == [
        "INBOX",
        "inbox/sub",
        "Sent Messages",
        "Archiv/Entwürfe 2019/Ünter",
        "lists/usrp",
    ]
    assert account.mailboxes["INBOX"] == LegacyMailbox(
        name="INBOX",
        uid_vv=1,
        next_uid=40,
        uid_by_key={1: 1, 2: 2, 3: 3, 4: 6, 5: 7, 6: 30, 7: 31, 8: 39},
        subscribed=True,
        attributes=frozenset({"\\HasChildren", "\\Marked"}),
        sequences={"unseen": (6, 7, 8), "flagged": (2,), "Seen": (1, 2, 3, 4, 5)},
    )
    assert account.mailboxes["inbox/sub"].uid_by_key == {10: 1}
    assert account.mailboxes["inbox/sub"].subscribed is False
    sent = account.mailboxes["Sent Messages"]
    assert (sent.uid_vv, sent.next_uid, sent.uid_by_key) == (5, 17, {})
    assert sent.attributes == {"\\Sent", "\\HasNoChildren"}
    assert account.mailboxes["Archiv/Entwürfe 2019/Ünter"].uid_by_key == {
        7: 100,
        8: 101,
        9: 102,
    }
    usrp = account.mailboxes["lists/usrp"]
    assert usrp.uid_by_key == {n: n for n in range(1, 501)}


def test_writer_compresses_like_asimap2(tmp_path: Path) -> None:
    """The helper must store what 2.x stores, or the round trip proves little."""
    path = tmp_path / "asimap.db"
    build_legacy_db(
        path,
        uid_vv=1,
        mailboxes=[
            {
                "name": "inbox",
                "uid_vv": 1,
                "uids": [1, 2, 3, 6, 7, 9],
                "sequences": {"unseen": [2, 3]},
            }
        ],
    )
    with sqlite3.connect(path) as connection:
        uids, keys, attributes = connection.execute(
            "SELECT uids, msg_keys, attributes FROM mailboxes"
        ).fetchone()
        (sequence,) = connection.execute("SELECT sequence FROM sequences").fetchone()
    connection.close()
    assert (uids, keys, attributes, sequence) == (
        "1-3,6-7,9",
        "1-6",
        "\\HasNoChildren",
        "2-3",
    )


def test_older_plain_lists_and_space_separated_sequences(tmp_path: Path) -> None:
    path, _ = one_bad_mailbox(
        tmp_path,
        uids="1,2,3,10",
        msg_keys="1,2,3,4",
        next_uid=11,
        sequences={"unseen": "3 4", "Deleted": "1-2 4"},
    )
    bad = read(path).mailboxes["Bad"]
    assert bad.uid_by_key == {1: 1, 2: 2, 3: 3, 4: 10}
    assert bad.sequences == {"unseen": (3, 4), "Deleted": (1, 2, 4)}


def test_database_without_later_columns(tmp_path: Path) -> None:
    """An early 2.x database: no uids/msg_keys/subscribed, no sequences.id."""
    path = tmp_path / "asimap.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE versions (version INTEGER)")
        connection.execute(
            "CREATE TABLE user_server (id INTEGER PRIMARY KEY, uid_vv INTEGER)"
        )
        connection.execute(
            "CREATE TABLE mailboxes (id INTEGER PRIMARY KEY, name TEXT, "
            "uid_vv INTEGER, attributes TEXT, mtime INTEGER, next_uid INTEGER, "
            "num_msgs INTEGER, num_recent INTEGER)"
        )
        connection.execute(
            "CREATE TABLE sequences (name TEXT, mailbox_id INTEGER, sequence TEXT)"
        )
        connection.execute("INSERT INTO sequences VALUES ('unseen', 1, '2-3')")
        connection.execute("INSERT INTO user_server VALUES (1, 2)")
        connection.execute(
            "INSERT INTO mailboxes "
            "VALUES (1, 'inbox', 2, '\\HasNoChildren', 0, 8, 3, 0)"
        )
    connection.close()
    inbox = read(path).mailboxes["INBOX"]
    assert (inbox.uid_vv, inbox.next_uid, inbox.uid_by_key, inbox.subscribed) == (
        2,
        8,
        {},
        False,
    )
    assert inbox.sequences == {"unseen": (2, 3)}


def test_account_uid_vv_covers_every_mailbox(tmp_path: Path) -> None:
    """A stale user_server counter must not let the store repeat a value."""
    path = tmp_path / "asimap.db"
    build_legacy_db(path, uid_vv=3, mailboxes=[{"name": "a", "uid_vv": 8}])
    assert read(path).uid_vv == 8


def test_path_with_uri_special_characters(tmp_path: Path) -> None:
    directory = tmp_path / "mail #1?x=y %41 dir"
    directory.mkdir()
    path = directory / "asimap.db"
    build_legacy_db(path, uid_vv=1, mailboxes=[{"name": "inbox", "uid_vv": 1}])
    assert list(read(path).mailboxes) == ["INBOX"]


# ----------------------------------------------------------- parse_ranges


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, []),
        ("", []),
        ("7", [7]),
        ("1-3,6-7", [1, 2, 3, 6, 7]),
        ("1,2,3", [1, 2, 3]),
        ("1 2\t3\n", [1, 2, 3]),
        ("1-3, 5 ,8-9", [1, 2, 3, 5, 8, 9]),
        (",4,", [4]),
        ("5-5", [5]),
        ("9,3,3", [9, 3, 3]),
        (f"{MAX_UID}", [MAX_UID]),
    ],
)
def test_parse_ranges(text: str | None, expected: list[int]) -> None:
    assert parse_ranges(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "a",
        "1,x",
        "1-",
        "-1",
        "0",
        "0-3",
        "3-1",
        "1-2-3",
        "+5",
        "1_0",
        "1.5",
        "\u0663",  # ARABIC-INDIC DIGIT THREE: int() would accept it
        "1;2",
        "9" * 30,
    ],
)
def test_parse_ranges_refuses_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        parse_ranges(text)


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "text",
    [
        f"1-{MAX_RANGE + 1}",
        "1-99999999999999",
        f"1-{MAX_RANGE // 2 + 1},1-{MAX_RANGE // 2}",
    ],
)
def test_parse_ranges_refuses_absurd_ranges_before_expanding(text: str) -> None:
    with pytest.raises(ValueError, match="more than"):
        parse_ranges(text)


@given(st.lists(st.integers(min_value=1, max_value=MAX_UID), max_size=200))
def test_compress_then_parse_round_trips(numbers: list[int]) -> None:
    assert parse_ranges(compress_ranges(numbers)) == numbers


@given(st.sets(st.integers(min_value=1, max_value=2_000), max_size=300))
def test_compression_of_sorted_sets_has_no_adjacent_runs(numbers: set[int]) -> None:
    text = compress_ranges(sorted(numbers))
    assert parse_ranges(text) == sorted(numbers)
    # Maximal runs: the next element never starts right after the last.
    bounds = [[int(n) for n in part.split("-")] for part in text.split(",") if part]
    for previous, current in itertools.pairwise(bounds):
        assert current[0] > previous[-1] + 1


# Short texts: a valid range below MAX_RANGE is expanded, and big ones are
# covered above; here the point is the kinds of exception.
@settings(deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789-, x\t\u0663"), max_size=8))
def test_parse_ranges_only_ever_raises_value_error(text: str) -> None:
    try:
        result = parse_ranges(text)
    except ValueError:
        return
    assert all(number >= 1 for number in result)


# ----------------------------------------------------------- corrupt rows


@pytest.mark.parametrize(
    ("row", "next_uid"),
    [
        ({"uids": [1, 2, 3], "msg_keys": [1, 2], "next_uid": 4}, 4),
        ({"uids": "1,x,3", "msg_keys": [1, 2, 3], "next_uid": 2}, 4),
        ({"uids": "1,1", "msg_keys": [1, 2], "next_uid": 5}, 5),
        ({"uids": [1, 2], "msg_keys": "4,4", "next_uid": 5}, 5),
        (
            {"uids": list(range(1, 11)), "msg_keys": list(range(1, 11)), "next_uid": 5},
            11,
        ),
        ({"uids": "0,1", "msg_keys": [1, 2], "next_uid": 5}, 5),
        ({"uids": "-3,1", "msg_keys": [1, 2], "next_uid": 5}, 5),
        ({"uids": [1, 2], "msg_keys": "0,1", "next_uid": 5}, 5),
        ({"uids": "1-99999999", "msg_keys": "1-99999999", "next_uid": 3}, 100_000_000),
        ({"uids": b"1,\xff2", "msg_keys": [1, 2], "next_uid": 3}, 3),
        ({"uids": 7, "msg_keys": "1,2", "next_uid": 3}, 8),
        ({"uids": [1, 2], "msg_keys": None, "next_uid": 3}, 3),
    ],
    ids=[
        "lengths-differ",
        "garbage",
        "duplicate-uids",
        "duplicate-keys",
        "uid-not-below-next-uid",
        "zero-uid",
        "negative-uid",
        "zero-key",
        "absurd-range",
        "invalid-utf8",
        "integer-text",
        "null-keys",
    ],
)
def test_inconsistent_mapping_is_dropped_but_uidvalidity_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, row: dict[str, Any], next_uid: int
) -> None:
    path, _ = one_bad_mailbox(tmp_path, **row)
    with caplog.at_level(logging.WARNING, logger="asimap.store.mh.legacy"):
        account = read(path)
    bad = account.mailboxes["Bad"]
    assert (bad.uid_vv, bad.uid_by_key, bad.next_uid) == (7, {}, next_uid)
    assert "'Bad'" in caplog.text
    assert_good_inbox_intact(account)


@pytest.mark.parametrize(
    "row",
    [
        {"uid_vv": 0},
        {"uid_vv": -4},
        {"uid_vv": None},
        {"uid_vv": "seven"},
        {"uid_vv": 1.5},
        {"uid_vv": MAX_UID + 1},
        {"next_uid": None},
        {"next_uid": 0},
        {"next_uid": MAX_UID + 2},
        {"uids": "4294967296", "msg_keys": "1", "next_uid": 2},
        {"uids": "1," + "9" * 40, "msg_keys": "1,2", "next_uid": 2},
    ],
    ids=[
        "zero-uid-vv",
        "negative-uid-vv",
        "null-uid-vv",
        "text-uid-vv",
        "real-uid-vv",
        "uid-vv-beyond-32-bits",
        "null-next-uid",
        "zero-next-uid",
        "next-uid-beyond-32-bits",
        "uid-beyond-32-bits",
        "huge-digit-run",
    ],
)
def test_unusable_uidvalidity_or_next_uid_gets_a_fresh_uidvalidity(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, row: dict[str, Any]
) -> None:
    path, _ = one_bad_mailbox(
        tmp_path,
        subscribed=1,
        attributes=["\\Archive"],
        **{"uids": [1], "msg_keys": [1], **row},
    )
    with caplog.at_level(logging.WARNING, logger="asimap.store.mh.legacy"):
        account = read(path)
    bad = account.mailboxes["Bad"]
    # Above user_server's 9 and every mailbox value: collides with nothing.
    assert bad.uid_vv == account.uid_vv == 10
    assert (bad.next_uid, bad.uid_by_key) == (1, {})
    assert bad.subscribed and bad.attributes == {"\\Archive"}
    assert "'Bad'" in caplog.text
    assert_good_inbox_intact(account)


def test_duplicate_names_are_merged_with_a_fresh_uidvalidity(tmp_path: Path) -> None:
    path = tmp_path / "asimap.db"
    build_legacy_db(
        path,
        uid_vv=5,
        mailboxes=[
            {"name": "Junk", "uid_vv": 4, "uids": [1], "subscribed": 1},
            {"name": "Junk", "uid_vv": 20, "uids": [1, 2]},
            {"name": "inbox", "uid_vv": 1},
        ],
    )
    account = read(path)
    junk = account.mailboxes["Junk"]
    # 21: above the 20 of the row that was merged away.
    assert (junk.uid_vv, junk.next_uid, junk.uid_by_key, junk.subscribed) == (
        21,
        1,
        {},
        True,
    )
    assert account.uid_vv == 21
    assert account.mailboxes["INBOX"].uid_vv == 1


def test_rows_without_a_usable_name_are_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "asimap.db"
    build_legacy_db(
        path,
        uid_vv=5,
        mailboxes=[
            {"name": None, "uid_vv": 2},
            {"name": "", "uid_vv": 3},
            {"name": b"bad\xff", "uid_vv": 4},
            {"name": "inbox", "uid_vv": 1},
        ],
    )
    with caplog.at_level(logging.WARNING, logger="asimap.store.mh.legacy"):
        account = read(path)
    assert list(account.mailboxes) == ["INBOX"]
    assert account.uid_vv == 5
    assert caplog.text.count("without a usable name") == 3


def test_bad_sequences_are_skipped(tmp_path: Path) -> None:
    path, _ = one_bad_mailbox(
        tmp_path,
        uids=[1, 2],
        sequences={
            "unseen": "1,zz",
            "flagged": [2],
            "Seen": b"\xfe",
            "big": f"1-{10**9}",
        },
    )
    bad = read(path).mailboxes["Bad"]
    assert bad.sequences == {"flagged": (2,)}
    assert bad.uid_by_key == {1: 1, 2: 2}


def test_garbage_in_attributes_and_subscribed(tmp_path: Path) -> None:
    path, _ = one_bad_mailbox(tmp_path, attributes=b"\xff\xfe", subscribed="yes")
    bad = read(path).mailboxes["Bad"]
    assert (bad.attributes, bad.subscribed) == (frozenset(), False)


# --------------------------------------------------- files that are not 2.x


def test_missing_file(tmp_path: Path) -> None:
    assert read_legacy_db(tmp_path / "asimap.db") is None
    assert read_legacy_db(tmp_path) is None  # a directory


def test_other_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "asimap.db"
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE mailboxes (id INTEGER PRIMARY KEY, title TEXT)"
        )
        connection.execute(
            "CREATE TABLE user_server (id INTEGER PRIMARY KEY, uid_vv INTEGER)"
        )
    connection.close()
    assert read_legacy_db(path) is None


@pytest.mark.parametrize("content", [b"", b"not a database at all\n" * 100])
def test_not_sqlite(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "asimap.db"
    path.write_bytes(content)
    assert read_legacy_db(path) is None


def _small_database() -> bytes:
    """A valid 2.x database as bytes, built once for the damage tests."""
    directory = Path(tempfile.mkdtemp(prefix="asimap-legacy-"))
    path = directory / "asimap.db"
    build_legacy_db(
        path,
        uid_vv=40,
        mailboxes=[
            {
                "name": f"f{n}",
                "uid_vv": n,
                "uids": list(range(1, 200, 2)),
                "sequences": {"unseen": [1, 2, 5]},
            }
            for n in range(1, 30)
        ],
    )
    data = path.read_bytes()
    path.unlink()
    directory.rmdir()
    return data


SMALL_DATABASE = _small_database()


def test_database_cut_in_half(tmp_path: Path) -> None:
    path = tmp_path / "asimap.db"
    path.write_bytes(SMALL_DATABASE[: len(SMALL_DATABASE) // 2])
    assert read_legacy_db(path) is None


def test_database_missing_its_tail(tmp_path: Path) -> None:
    """SQLite reads the lost pages as zeros: what survives must be right."""
    path = tmp_path / "asimap.db"
    path.write_bytes(SMALL_DATABASE[: len(SMALL_DATABASE) * 9 // 10])
    account = read(path)
    assert account.mailboxes, "the surviving rows should still be read"
    original = {n: 2 * n - 1 for n in range(1, 101)}  # key n -> UID 2n-1
    for name, mailbox in account.mailboxes.items():
        assert mailbox.uid_vv == int(name[1:])
        assert mailbox.uid_by_key in ({}, original)


@pytest.mark.parametrize(
    ("needle", "damage"),
    [
        # sqlite3 raises UnicodeDecodeError for the error message that
        # quotes a schema with invalid UTF-8 in it.
        (b"CREATE TABLE mailboxes (", b"CR\xffATE TABLE mailboxes ("),
        # A syntax error in the stored schema: OperationalError, SQLITE_ERROR.
        (b"CREATE TABLE mailboxes (", b"CREATE TABLE mailboxes)("),
    ],
    ids=["invalid-utf8", "syntax-error"],
)
def test_damaged_schema(tmp_path: Path, needle: bytes, damage: bytes) -> None:
    assert SMALL_DATABASE.count(needle) == 1
    path = tmp_path / "asimap.db"
    path.write_bytes(SMALL_DATABASE.replace(needle, damage))
    assert read_legacy_db(path) is None


@settings(max_examples=150, deadline=None)
@given(
    edits=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=len(SMALL_DATABASE) - 1),
            st.integers(min_value=0, max_value=255),
        ),
        min_size=1,
        max_size=20,
    ),
    cut=st.none() | st.integers(min_value=0, max_value=len(SMALL_DATABASE)),
)
def test_damaged_database_never_raises(
    tmp_path_factory: pytest.TempPathFactory,
    edits: list[tuple[int, int]],
    cut: int | None,
) -> None:
    """Random byte damage (schema included) yields None or a sane account.

    Damaged schema text once made sqlite3 raise UnicodeDecodeError from an
    error message, and mangled table definitions raise OperationalError;
    neither may escape.
    """
    data = bytearray(SMALL_DATABASE)
    for offset, value in edits:
        data[offset] = value
    path = tmp_path_factory.mktemp("damaged") / "asimap.db"
    path.write_bytes(bytes(data[:cut]))
    account = read_legacy_db(path)
    if account is not None:
        assert_invariants(account)


def test_locked_database_is_unreadable_not_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A running 2.x holding a write lock must not read as "no legacy state"."""
    path = tmp_path / "asimap.db"
    build_legacy_db(path, uid_vv=1, mailboxes=[{"name": "inbox", "uid_vv": 1}])
    monkeypatch.setattr(legacy, "BUSY_TIMEOUT", 0.05)
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN EXCLUSIVE")
        with pytest.raises(LegacyDbUnreadable):
            read_legacy_db(path)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert read(path).uid_vv == 1


# ------------------------------------------------------------- read-only


def test_reading_leaves_the_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "asimap.db"
    build_legacy_db(
        path,
        uid_vv=3,
        mailboxes=[
            {"name": "inbox", "uid_vv": 1, "uids": [1, 2], "sequences": {"unseen": [2]}}
        ],
    )
    past = 1_500_000_000
    os.utime(path, (past, past))
    before = path.read_bytes()
    listing = sorted(p.name for p in tmp_path.iterdir())
    read(path)
    assert path.read_bytes() == before
    assert path.stat().st_mtime == past
    assert sorted(p.name for p in tmp_path.iterdir()) == listing  # no journal left


def test_read_only_file(tmp_path: Path) -> None:
    path = tmp_path / "asimap.db"
    build_legacy_db(path, uid_vv=3, mailboxes=[{"name": "inbox", "uid_vv": 1}])
    path.chmod(0o444)
    assert read(path).uid_vv == 3


# ----------------------------------------------------------------- scale


@pytest.mark.timeout(20)
def test_large_mailbox(tmp_path: Path) -> None:
    """100,000 messages, with gaps on both sides (rmm, then folder -pack)."""
    uids = [n for n in range(1, 150_001) if n % 3]  # 100,000 UIDs, runs of two
    keys = list(range(1, 100_001))
    path = tmp_path / "asimap.db"
    build_legacy_db(
        path,
        uid_vv=1,
        mailboxes=[
            {
                "name": "inbox",
                "uid_vv": 1,
                "uids": uids,
                "msg_keys": keys,
                "next_uid": 150_001,
                "sequences": {"unseen": list(range(1, 100_001, 2))},
            }
        ],
    )
    inbox = read(path).mailboxes["INBOX"]
    assert len(inbox.uid_by_key) == 100_000
    assert inbox.uid_by_key[1] == 1 and inbox.uid_by_key[100_000] == 149_999
    assert len(inbox.sequences["unseen"]) == 50_000
