"""Transcripts: mailbox management, discovery and APPEND."""

from __future__ import annotations

from transcript import World, add_messages, append_lines, message, run_transcript

LOGIN = """
C1 a LOGIN alice secret-a
S1 a OK %*
"""


async def test_create_delete_rename_and_errors() -> None:
    await run_transcript(
        LOGIN
        + """
        C1 c1 CREATE foo/bar/
        S1 c1 OK [MAILBOXID (%?)] Create completed
        C1 c2 CREATE foo/bar
        S1 c2 NO [ALREADYEXISTS] %*
        C1 c3 CREATE inbox
        S1 c3 NO [ALREADYEXISTS] %*
        C1 c4 CREATE "a//b"
        S1 c4 NO [CANNOT] %*
        C1 c5 CREATE "&AAA"
        S1 c5 NO [CANNOT] Mailbox name is not valid modified UTF-7
        C1 c6 CREATE "../escape"
        S1 c6 NO [CANNOT] %*
        C1 d1 DELETE foo
        S1 d1 OK Delete completed
        C1 l1 LIST "" "foo*"
        S1 * LIST (\\Noselect \\HasChildren) "/" "foo"
        S1 * LIST (\\HasNoChildren) "/" "foo/bar"
        S1 l1 OK List completed
        C1 d2 DELETE nosuch
        S1 d2 NO [NONEXISTENT] %*
        C1 d3 DELETE Inbox
        S1 d3 NO [CANNOT] INBOX cannot be deleted
        C1 r1 RENAME foo/bar baz
        S1 r1 OK Rename completed
        C1 r2 RENAME nosuch x
        S1 r2 NO [NONEXISTENT] %*
        C1 r3 RENAME baz Junk
        S1 r3 NO [ALREADYEXISTS] %*
        C1 l2 LIST "" "baz"
        S1 * LIST (\\HasNoChildren) "/" "baz"
        S1 l2 OK List completed
        """
    )


async def test_delete_of_the_selected_mailbox_is_refused() -> None:
    await run_transcript(
        LOGIN
        + """
        C1 b SELECT Junk
        S1 %*
        S1 %*
        S1 %*
        S1 %*
        S1 %*
        S1 %*
        S1 * OK [MAILBOXID (%?)] %*
        S1 * OK [HIGHESTMODSEQ %?] Highest
        S1 b OK [READ-WRITE] Select completed
        C1 c DELETE Junk
        S1 c NO [INUSE] %*
        """
    )


async def test_list_forms() -> None:
    await run_transcript(
        LOGIN
        + """
        C1 b LIST "" ""
        S1 * LIST (\\Noselect) "/" ""
        S1 b OK List completed
        C1 c LIST "" "*"
        S1 * LIST (\\HasNoChildren \\Archive) "/" "Archive"
        S1 * LIST (\\HasNoChildren \\Trash) "/" "Deleted Messages"
        S1 * LIST (\\HasNoChildren \\Drafts) "/" "Drafts"
        S1 * LIST (\\HasNoChildren) "/" "INBOX"
        S1 * LIST (\\HasNoChildren \\Junk) "/" "Junk"
        S1 * LIST (\\HasNoChildren \\Sent) "/" "Sent Messages"
        S1 c OK List completed
        C1 d LIST "" "InBoX"
        S1 * LIST (\\HasNoChildren) "/" "INBOX"
        S1 d OK List completed
        C1 e CREATE "&Jjo-/x"
        S1 e OK [MAILBOXID (%?)] Create completed
        C1 f LIST "" "&Jjo-%"
        S1 * LIST (\\HasChildren) "/" "&Jjo-"
        S1 f OK List completed
        C1 g LIST "&Jjo-/" "%"
        S1 * LIST (\\HasNoChildren) "/" "&Jjo-/x"
        S1 g OK List completed
        C1 h LIST "" "nothing*"
        S1 h OK List completed
        # Extended forms (RFC 5258): tests/test_ext_list_extended.py.
        C1 i LIST (SUBSCRIBED) "" "*"
        S1 i OK List completed
        C1 j LIST "" ("a" "b")
        S1 j OK List completed
        """
    )


async def test_subscribe_and_lsub() -> None:
    await run_transcript(
        LOGIN
        + """
        C1 a1 CREATE news/comp/mail
        S1 a1 OK %*
        C1 b SUBSCRIBE news/comp/mail
        S1 b OK Subscribe completed
        C1 c SUBSCRIBE Junk
        S1 c OK Subscribe completed
        C1 d LSUB "" "*"
        S1 * LSUB () "/" "Junk"
        S1 * LSUB () "/" "news/comp/mail"
        S1 d OK Lsub completed
        # RFC 3501 6.3.9: an unsubscribed parent matched by % is \\Noselect.
        C1 e LSUB "news/" "%"
        S1 * LSUB (\\Noselect) "/" "news/comp"
        S1 e OK Lsub completed
        C1 f UNSUBSCRIBE Junk
        S1 f OK Unsubscribe completed
        C1 g LSUB "" "J*"
        S1 g OK Lsub completed
        """
    )


async def test_status_and_namespace() -> None:
    async def setup(world: World) -> None:
        await add_messages(world, "alice", "Drafts", message("x"), message("y"))

    await run_transcript(
        LOGIN
        + """
        C1 b STATUS Drafts (MESSAGES UNSEEN UIDNEXT RECENT)
        S1 * STATUS "Drafts" (MESSAGES 2 UNSEEN 2 UIDNEXT 3 RECENT 2)
        S1 b OK Status completed
        C1 c STATUS Drafts (UIDVALIDITY)
        S1 * STATUS "Drafts" (UIDVALIDITY %?)
        S1 c OK Status completed
        C1 d STATUS nosuch (MESSAGES)
        S1 d NO [NONEXISTENT] %*
        C1 e STATUS INBOX (APPENDLIMIT)
        S1 * STATUS "INBOX" (APPENDLIMIT 67108864)
        S1 e OK Status completed
        C1 f NAMESPACE
        S1 * NAMESPACE (("" "/")) NIL NIL
        S1 f OK Namespace completed
        """,
        before=setup,
    )


async def test_enable_only_what_we_support() -> None:
    await run_transcript(
        LOGIN
        + """
        C1 b ENABLE X-UNKNOWN condstore IMAP4rev2
        S1 * ENABLED CONDSTORE IMAP4rev2
        S1 b OK Enable completed
        """
    )


async def test_append_with_appenduid_and_errors() -> None:
    data = message("appended")
    await run_transcript(
        LOGIN
        + append_lines(1, "b", "Drafts", data, flags="\\Draft \\Seen")
        + f"""
        S1 b OK [APPENDUID %? 1] Append completed
        C1 c STATUS Drafts (MESSAGES UNSEEN)
        S1 * STATUS "Drafts" (MESSAGES 1 UNSEEN 0)
        S1 c OK %*
        # A synchronizing literal to a missing mailbox is refused before
        # the message is sent (RFC 3501 6.3.11): no "+" continuation.
        C1 d APPEND nosuch {{{len(data)}}}
        S1 d NO [TRYCREATE] Mailbox does not exist
        C1 e NOOP
        S1 e OK NOOP completed
        C1 f APPEND "../bad" {{{len(data)}}}
        S1 f NO [CANNOT] %*
        C1 g APPEND Drafts {{3}}
        S1 + Ready for literal
        C1 h
        C1
        S1 g OK [APPENDUID %? 2] Append completed
        """
    )


async def test_append_empty_message_and_bad_flags() -> None:
    await run_transcript(
        LOGIN
        + """
        C1 b APPEND Drafts {0+}
        C1
        S1 b NO Cannot append an empty message
        C1 c APPEND Drafts (\\Bogus) {3+}
        C1 x
        C1
        S1 c BAD %*
        C1 d STATUS Drafts (MESSAGES)
        S1 * STATUS "Drafts" (MESSAGES 0)
        S1 d OK %*
        """
    )


async def test_append_before_login_refused_before_the_literal() -> None:
    await run_transcript(
        """
        C1 a APPEND INBOX {10}
        S1 a BAD APPEND not allowed in this state
        C1 b NOOP
        S1 b OK NOOP completed
        """
    )


async def test_append_too_big_is_refused_before_the_literal() -> None:
    from asimap.imap.limits import Limits

    world = World(limits=Limits(max_literal=100))
    # The reader enforces the limit itself; check_literal never sees it.
    await run_transcript(
        LOGIN
        + """
        C1 b APPEND INBOX {500}
        S1 b %? [TOOBIG] %*
        C1 c NOOP
        S1 c OK NOOP completed
        """,
        world,
    )


async def test_multiappend_is_all_or_nothing() -> None:
    one, two = message("one"), message("two")
    # The second message has an invalid flag: nothing may be stored.
    lines = (
        f"C1 b APPEND Drafts {{{len(one)}+}}\n"
        + "\n".join(f"C1 {p}" for p in one.decode()[:-2].split("\r\n"))
        + f"\nC1  (\\Bogus) {{{len(two)}+}}\n"
        + "\n".join(f"C1 {p}" for p in two.decode()[:-2].split("\r\n"))
        + "\nC1\n"
    )
    ok_lines = (
        f"C1 c APPEND Drafts {{{len(one)}+}}\n"
        + "\n".join(f"C1 {p}" for p in one.decode()[:-2].split("\r\n"))
        + f"\nC1  (\\Seen) {{{len(two)}+}}\n"
        + "\n".join(f"C1 {p}" for p in two.decode()[:-2].split("\r\n"))
        + "\nC1\n"
    )
    await run_transcript(
        LOGIN
        + lines
        + """
        S1 b BAD %*
        C1 s STATUS Drafts (MESSAGES)
        S1 * STATUS "Drafts" (MESSAGES 0)
        S1 s OK %*
        """
        + ok_lines
        + """
        S1 c OK [APPENDUID %? 1:2] Append completed
        """
    )
