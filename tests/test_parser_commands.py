"""Parser tests for the session-level and mailbox commands.

Valid forms follow the RFC examples; every invalid form must give a
ParseError that keeps the tag (so the session can answer a tagged BAD).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from asimap.imap import commands as c
from asimap.imap.commands import STAR, SequenceSet
from asimap.imap.parser import PendingCommand, describe_pending
from test_parser_support import bad, ok, parse


@pytest.mark.parametrize(
    ("raw", "cls"),
    [
        (b"a CAPABILITY", c.Capability),
        (b"a noop", c.Noop),
        (b"a LOGOUT", c.Logout),
        (b"a STARTTLS", c.StartTLS),
        (b"a NAMESPACE", c.Namespace),
        (b"a IDLE", c.Idle),
        (b"a CHECK", c.Check),
        (b"a CLOSE", c.Close),
        (b"a UNSELECT", c.Unselect),
        (b"a UNAUTHENTICATE", c.Unauthenticate),
    ],
)
def test_commands_without_arguments(raw: bytes, cls: type[c.Command]) -> None:
    assert ok(raw) == cls("a")
    err = bad(raw + b" x", "Unexpected extra arguments")
    assert err.tag == "a"
    assert err.command == raw.split(b" ")[1].decode().upper()


def test_tags() -> None:
    assert ok(b"A0001.x] NOOP").tag == "A0001.x]"
    assert ok(b"~!#$&'-=_ NOOP").tag == "~!#$&'-=_"
    assert bad(b"a+b NOOP", "Invalid tag").tag is None
    assert bad(b"").tag is None
    assert bad(b" NOOP").tag is None
    assert bad(b"a(b NOOP").tag is None
    assert bad(b"a\xff NOOP").tag is None
    err = bad(b"tag", "Missing command name")
    assert err.tag == "tag" and err.command is None
    long_tag = b"t" * 300
    assert bad(long_tag + b" NOOP", "Tag too long").tag is None


def test_unknown_commands() -> None:
    err = bad(b"a FROB x", "Unknown command FROB")
    assert (err.tag, err.command) == ("a", "FROB")
    err = bad(b"a UID NOOP", "Unknown command UID NOOP")
    assert err.command == "UID NOOP"
    assert bad(b"a UID", "Missing argument").command == "UID"
    assert bad(b"a CATENATE", "CATENATE not supported").tag == "a"


def test_nul_and_bad_framing() -> None:
    err = bad(b"a LOGIN bob p\x00w", "NUL")
    assert err.tag == "a" and err.command == "LOGIN"
    assert bad(b"a LOGIN bob {3}\r\np\x00w", "NUL").tag == "a"
    result = c.ParseError
    from asimap.imap.parser import parse_command

    assert isinstance(parse_command((), ()), result)
    assert isinstance(parse_command((b"a NOOP",), (b"x",)), result)
    assert isinstance(parse_command((b"a LOGIN {3}", b" x"), (b"bobx",)), result)


def test_login_all_astring_forms() -> None:
    assert ok(b"a LOGIN bob secret") == c.Login("a", b"bob", b"secret")
    assert ok(b'a login "b o\\"b" "p\\\\w"') == c.Login("a", b'b o"b', b"p\\w")
    assert ok(b'a LOGIN {3}\r\nbob {5+}\r\ns{}c"') == c.Login("a", b"bob", b's{}c"')
    assert ok(b'a LOGIN "" {0}\r\n') == c.Login("a", b"", b"")
    assert ok(b'a LOGIN "\xc3\xa9" x').username == "é".encode()
    bad(b"a LOGIN bob", "Missing argument")
    bad(b'a LOGIN "bob x', "Unterminated quoted string")
    bad(b'a LOGIN "b\\ob" x', "Invalid backslash escape")
    bad(b"a LOGIN bob  x", "Unexpected extra space")
    bad(b"a LOGIN bob x y", "Unexpected extra arguments")
    bad(b"a LOGIN bob ~{1}\r\nx")  # "~" is an atom; "{1}" is then extra
    bad(b'a ID (~{1}\r\nx "v")', "Literal8 not allowed here")
    bad(b"a LOGIN {3} bob", "Invalid literal")


def test_authenticate() -> None:
    assert ok(b"a AUTHENTICATE plain") == c.Authenticate("a", "PLAIN")
    assert ok(b"a AUTHENTICATE PLAIN AGJvYgBwdw==") == c.Authenticate(
        "a", "PLAIN", b"AGJvYgBwdw=="
    )
    assert ok(b"a AUTHENTICATE EXTERNAL =").initial_response == b"="  # type: ignore[attr-defined]
    bad(b"a AUTHENTICATE PLAIN AGJ*", "Invalid base64")
    bad(b"a AUTHENTICATE PLAIN ", "Invalid base64")
    bad(b"a AUTHENTICATE", "Missing argument")


def test_id() -> None:
    assert ok(b"a ID NIL") == c.Id("a", None)
    assert ok(b'a ID ("name" "sodr" "version" NIL)') == c.Id(
        "a", (("name", "sodr"), ("version", None))
    )
    assert ok(b"a ID ()") == c.Id("a", ())
    assert ok(b'a ID ({4}\r\nname "x")') == c.Id("a", (("name", "x"),))
    bad(b"a ID (name x)")
    bad(b'a ID ("name")', "Expected space at ')'")
    bad(b'a ID ("name"', "Missing argument")
    bad(b'a ID ("' + b"k" * 31 + b'" "v")', "ID field name too long")
    bad(b'a ID ("k" "' + b"v" * 1025 + b'")', "ID field value too long")
    many = b" ".join(b'"k%d" "v"' % i for i in range(31))
    bad(b"a ID (" + many + b")", "Too many ID fields")


def test_enable_compress() -> None:
    assert ok(b"a ENABLE condstore utf8=accept") == c.Enable(
        "a", ("CONDSTORE", "UTF8=ACCEPT")
    )
    bad(b"a ENABLE", "Missing argument")
    assert ok(b"a COMPRESS deflate") == c.Compress("a", "DEFLATE")
    bad(b"a COMPRESS", "Missing argument")


def test_select_examine() -> None:
    assert ok(b"a SELECT INBOX") == c.Select("a", b"INBOX")
    assert ok(b'a EXAMINE "a b"') == c.Select("a", b"a b", readonly=True)
    assert ok(b"a SELECT INBOX (CONDSTORE)").condstore  # type: ignore[attr-defined]
    # RFC 7162 section 3.2.5.2 examples.
    sel = ok(
        b"A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))"
    )
    assert sel == c.Select(
        "A02",
        b"INBOX",
        qresync=c.QresyncParams(
            67890007,
            20050715194045000,
            SequenceSet(((41, 41), (43, 211), (214, 541))),
        ),
    )
    sel = ok(
        b"B04 SELECT INBOX (QRESYNC (67890007 90060115194045000 "
        b"1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973)))"
    )
    assert isinstance(sel, c.Select) and sel.qresync is not None
    assert sel.qresync.seq_match is not None
    assert sel.qresync.seq_match[0].ranges[-1] == (9990, 9999)
    sel = ok(b"a SELECT x (QRESYNC (1 2 (1:2 3:4)))")
    assert isinstance(sel, c.Select) and sel.qresync is not None
    assert sel.qresync.known_uids is None and sel.qresync.seq_match is not None
    bad(b"a SELECT INBOX (FOO)", "Unknown or repeated SELECT parameter")
    bad(b"a SELECT INBOX (CONDSTORE CONDSTORE)", "repeated")
    bad(b"a SELECT INBOX (QRESYNC (0 1))", "Zero")
    bad(b"a SELECT INBOX ()")
    bad(b"a SELECT", "Missing argument")
    bad(b"a SELECT INBOX (QRESYNC (1 2)", "Missing argument")


def test_mailbox_commands() -> None:
    assert ok(b"a CREATE foo/bar") == c.Create("a", b"foo/bar")
    assert ok(b"a CREATE Sent (USE (\\Sent \\Archive))") == c.Create(
        "a", b"Sent", ("\\Sent", "\\Archive")
    )
    assert ok(b"a CREATE x (USE ())") == c.Create("a", b"x")
    bad(b"a CREATE x (FOO (\\Sent))", "Unknown CREATE parameter")
    bad(b"a CREATE x (USE (Sent))", "Invalid special-use")
    assert ok(b"a DELETE {3}\r\nfoo") == c.Delete("a", b"foo")
    assert ok(b"a RENAME a b") == c.Rename("a", b"a", b"b")
    assert ok(b'a RENAME "a b" {3}\r\nc d') == c.Rename("a", b"a b", b"c d")
    bad(b"a RENAME a", "Missing argument")
    assert ok(b"a SUBSCRIBE x") == c.Subscribe("a", b"x")
    assert ok(b"a UNSUBSCRIBE x") == c.Unsubscribe("a", b"x")
    assert ok(b"a DELETE ]x]") == c.Delete("a", b"]x]")
    bad(b"a DELETE x%", "Unexpected extra arguments")


def test_status() -> None:
    assert ok(b"a STATUS blurdybloop (UIDNEXT MESSAGES)") == c.Status(
        "a", b"blurdybloop", ("UIDNEXT", "MESSAGES")
    )
    items = b"messages recent uidnext uidvalidity unseen deleted size "
    items += b"highestmodseq appendlimit mailboxid"
    assert len(ok(b"a STATUS x (" + items + b")").items) == 10  # type: ignore[attr-defined]
    bad(b"a STATUS x ()", "Expected STATUS item")
    bad(b"a STATUS x (FOO)", "Unknown STATUS item FOO")
    bad(b"a STATUS x", "Missing argument")


def test_list_and_lsub() -> None:
    assert ok(b'a LIST "" %') == c.List("a", b"", (b"%",))
    assert ok(b"a LIST ~/Mail/ %/*]") == c.List("a", b"~/Mail/", (b"%/*]",))
    assert ok(b'a LIST {0}\r\n "*"') == c.List("a", b"", (b"*",))
    # RFC 5258 section 5 examples.
    assert ok(b'A02 LIST (SUBSCRIBED) "" "*"') == c.List(
        "A02", b"", (b"*",), ("SUBSCRIBED",)
    )
    assert ok(b'A03 LIST () "" "%" RETURN (CHILDREN)') == c.List(
        "A03", b"", (b"%",), (), ("CHILDREN",)
    )
    assert ok(
        b'A04 LIST (REMOTE RECURSIVEMATCH subscribed) "" ("foo" bar/*)'
    ) == c.List(
        "A04", b"", (b"foo", b"bar/*"), ("REMOTE", "RECURSIVEMATCH", "SUBSCRIBED")
    )
    # RFC 5819 section 3 example.
    assert ok(b'A01 LIST "" % RETURN (STATUS (MESSAGES UNSEEN))') == c.List(
        "A01", b"", (b"%",), (), ("STATUS",), ("MESSAGES", "UNSEEN")
    )
    assert ok(b'a LIST "" % RETURN ()') == c.List("a", b"", (b"%",))
    bad(b'a LIST (RECURSIVEMATCH) "" %', "RECURSIVEMATCH")
    bad(b'a LIST (BOGUS) "" %', "Unknown LIST selection option")
    bad(b'a LIST "" % RETURN (BOGUS)', "Unknown LIST return option")
    bad(b'a LIST "" % RETURN (STATUS (MESSAGES) STATUS (UNSEEN))', "repeated")
    bad(b'a LIST "" % FOO (CHILDREN)', "Expected RETURN")
    bad(b'a LIST "" ()', "Expected mailbox pattern")
    bad(b'a LIST ""', "Missing argument")
    assert ok(b'a LSUB "#news." comp.%') == c.Lsub("a", b"#news.", b"comp.%")
    bad(b'a LSUB "" % x', "Unexpected extra arguments")


def test_copy_move_expunge() -> None:
    assert ok(b"a COPY 2:4 MEETING") == c.Copy("a", SequenceSet(((2, 4),)), b"MEETING")
    assert ok(b"a UID MOVE 1:* {5}\r\nTrash") == c.Move(
        "a", SequenceSet(((1, STAR),)), b"Trash", uid=True
    )
    assert ok(b"a uid copy $ x") == c.Copy("a", SequenceSet((), True), b"x", True)
    bad(b"a COPY 0 x", "Invalid sequence set")
    bad(b"a MOVE 1", "Missing argument")
    assert ok(b"a EXPUNGE") == c.Expunge("a")
    assert ok(b"a UID EXPUNGE 3000:3002") == c.Expunge(
        "a", SequenceSet(((3000, 3002),))
    )
    bad(b"a UID EXPUNGE", "Missing argument")
    bad(b"a EXPUNGE 1", "Unexpected extra arguments")


def test_append() -> None:
    # RFC 3501 section 6.3.11 example.
    msg = b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n\r\nHello Joe\r\n"
    raw = b"A003 APPEND saved-messages (\\Seen) {%d}\r\n" % len(msg) + msg
    assert ok(raw) == c.Append(
        "A003", b"saved-messages", (c.AppendMessage(msg, ("\\Seen",)),)
    )
    parsed = ok(b'a APPEND x " 7-Feb-1994 21:52:25 -0800" {1+}\r\nz')
    assert isinstance(parsed, c.Append)
    assert parsed.messages[0].internaldate == datetime(
        1994, 2, 7, 21, 52, 25, tzinfo=timezone(timedelta(hours=-8))
    )
    # RFC 3502 MULTIAPPEND, with literal8 (RFC 3516).
    parsed = ok(
        b'a APPEND x (\\Seen $Junk) {1}\r\na () "17-Jul-1996 02:44:25 +0000" '
        b"~{3}\r\nb\x00c {1}\r\nd"
    )
    assert isinstance(parsed, c.Append)
    assert [m.data for m in parsed.messages] == [b"a", b"b\x00c", b"d"]
    assert [m.binary for m in parsed.messages] == [False, True, False]
    assert parsed.messages[0].flags == ("\\Seen", "$Junk")
    assert parsed.messages[1].flags == ()
    bad(b'a APPEND x "hello"', "APPEND message data must be a literal")
    bad(b"a APPEND x (\\Recent) {1}\r\na", "\\Recent")
    bad(b'a APPEND x "31-Feb-2020 00:00:00 +0000" {1}\r\na', "Invalid date-time")
    bad(b'a APPEND x "1-Feb-2020 00:00:00 +0000" {1}\r\na', "Invalid date-time")
    bad(b'a APPEND x "01-Feb-2020 00:00:00 +2400" {1}\r\na', "bad zone")
    bad(b"a APPEND x {1}\r\n\x00", "NUL in literal")
    bad(b'a APPEND x CATENATE (TEXT "a")', "CATENATE TEXT must be a literal")
    bad(b"a APPEND x CATENATE (FOO {1}\r\na)", "CATENATE part must be")
    bad(b"a APPEND x UTF8 ({1}\r\na)", "UTF8 message data must be a literal8")
    bad(b"a APPEND x", "Missing argument")
    bad(b"a APPEND x {1}\r\na ", "Missing argument")


def test_describe_pending() -> None:
    assert describe_pending((b"a APPEND INBOX (\\Seen) {11}",), ()) == (
        PendingCommand("a", "APPEND", b"INBOX", 0)
    )
    assert describe_pending((b"a APPEND {5}",), ()) == PendingCommand(
        "a", "APPEND", None, 0
    )
    assert describe_pending((b"a APPEND {5}", b" {3}"), (b"INBOX",)) == (
        PendingCommand("a", "APPEND", b"INBOX", 1)
    )
    assert describe_pending((b'a APPEND "x y" {3}',), ()).mailbox == b"x y"
    assert describe_pending((b"a uid search text {3}",), ()) == PendingCommand(
        "a", "UID SEARCH", None, 0
    )
    assert describe_pending((b"+bad {3}",), ()) == PendingCommand(None, None, None, 0)
    assert describe_pending((), ()) == PendingCommand(None, None, None, 0)


def test_error_keeps_tag_for_every_command() -> None:
    from asimap.imap.parser.commands_table import COMMANDS, UID_COMMANDS

    for name in COMMANDS:
        result = parse(b"t1 " + name.encode() + b" ((((")
        assert isinstance(result, c.ParseError), name
        assert result.tag == "t1" and result.command == name
    for name in UID_COMMANDS:
        result = parse(b"t2 UID " + name.encode() + b" ((((")
        assert isinstance(result, c.ParseError), name
        assert result.command == "UID " + name
