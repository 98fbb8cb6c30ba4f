"""METADATA (RFC 5464): the examples of section 4, limits and errors.

Run on the memory store and on an MH root, where the entries live in the
store's SQLite database: they must survive reopening it, move with RENAME
and vanish with DELETE.
"""

from __future__ import annotations

from pathlib import Path

from asimap.store.base import METADATA_MAX_ENTRIES, METADATA_MAX_VALUE
from test_ext_special_use import MHWorld
from transcript import World, run_transcript

LOGIN = """
C1 a LOGIN alice secret-a
S1 a OK %*
"""

#: Section 4.2-4.3's examples, answered by our server (entry names are
#: quoted strings on the wire; INBOX is "INBOX").
EXAMPLES = (
    """
    # 4.3: set server and mailbox entries; a literal value across lines.
    C1 s1 SETMETADATA "" (/shared/comment "Shared comment")
    S1 s1 OK Setmetadata completed
    C1 s2 SETMETADATA INBOX (/shared/comment "Shared comment" /private/comment "My own comment")
    S1 s2 OK Setmetadata completed
    # 4.2: server entries, then two entries of a mailbox.
    C1 g1 GETMETADATA "" /shared/comment
    S1 * METADATA "" ("/shared/comment" "Shared comment")
    S1 g1 OK Getmetadata completed
    C1 g2 GETMETADATA INBOX (/shared/comment /private/comment)
    S1 * METADATA "INBOX" ("/shared/comment" "Shared comment" "/private/comment" "My own comment")
    S1 g2 OK Getmetadata completed
    # 4.2.1: MAXSIZE leaves the long value out and reports its size.
    C1 s3 SETMETADATA INBOX (/shared/comment {2199+}
    """  # noqa: E501
    + "C1 "
    + "x" * 2197
    + "\n"
    + """
    C1 )
    S1 s3 OK Setmetadata completed
    C1 g3 GETMETADATA INBOX (MAXSIZE 1024) (/shared/comment /private/comment)
    S1 * METADATA "INBOX" ("/private/comment" "My own comment")
    S1 g3 OK [METADATA LONGENTRIES 2199] Getmetadata completed
    # 4.2.2: DEPTH (options before the mailbox, as in the formal syntax).
    C1 s4 SETMETADATA INBOX (/private/filters/values/small "SMALLER THAN 1MB" /private/filters/values/big "BIGGER THAN 1MB" /private/filters/values/big/x "deeper")
    S1 s4 OK Setmetadata completed
    C1 g4 GETMETADATA (DEPTH 1) INBOX (/private/filters/values)
    S1 * METADATA "INBOX" ("/private/filters/values/big" "BIGGER THAN 1MB" "/private/filters/values/small" "SMALLER THAN 1MB")
    S1 g4 OK Getmetadata completed
    C1 g5 GETMETADATA INBOX (DEPTH infinity MAXSIZE 100) /private/filters
    S1 * METADATA "INBOX" ("/private/filters/values/big" "BIGGER THAN 1MB" "/private/filters/values/big/x" "deeper" "/private/filters/values/small" "SMALLER THAN 1MB")
    S1 g5 OK Getmetadata completed
    C1 g6 GETMETADATA INBOX (DEPTH 0) /private/filters
    S1 * METADATA "INBOX" ("/private/filters" NIL)
    S1 g6 OK Getmetadata completed
    # 4.3: a literal across lines; NIL removes an entry.
    C1 s5 SETMETADATA INBOX (/private/comment {35+}
    C1 My new comment across
    C1 two lines.
    C1 )
    S1 s5 OK Setmetadata completed
    C1 g7 GETMETADATA INBOX /PRIVATE/Comment
    S1 * METADATA "INBOX" ("/private/comment" {35}
    S1 My new comment across
    S1 two lines.
    S1 )
    S1 g7 OK Getmetadata completed
    C1 s6 SETMETADATA INBOX (/private/comment NIL)
    S1 s6 OK Setmetadata completed
    C1 g8 GETMETADATA INBOX (/private/comment /shared/vendor/example/x)
    S1 * METADATA "INBOX" ("/private/comment" NIL "/shared/vendor/example/x" NIL)
    S1 g8 OK Getmetadata completed
    # Binary values travel as literal8 (section 5: value = nstring / literal8).
    C1 s7 SETMETADATA INBOX (/private/vendor/example/bin ~{5+}
    C1 a\\x00b
    C1 )
    S1 s7 OK Setmetadata completed
    C1 g9 GETMETADATA INBOX /private/vendor/example/bin
    S1 * METADATA "INBOX" ("/private/vendor/example/bin" ~{5}
    S1 a\x00b
    S1 )
    S1 g9 OK Getmetadata completed
    """  # noqa: E501 (transcript lines are as long as the protocol's)
)


async def test_rfc5464_examples_memory() -> None:
    await run_transcript(LOGIN + EXAMPLES)


ERRORS = f"""
C1 e1 GETMETADATA nosuch /shared/comment
S1 e1 NO [NONEXISTENT] %*
C1 e2 SETMETADATA nosuch (/shared/comment "x")
S1 e2 NO [NONEXISTENT] %*
# Section 3.2: entry-name rules; only /private/ and /shared/ hold values.
C1 e3 GETMETADATA INBOX comment
S1 e3 BAD Invalid metadata entry name
C1 e4 GETMETADATA INBOX /shared//comment
S1 e4 BAD Invalid metadata entry name
C1 e5 GETMETADATA INBOX /shared/comment/
S1 e5 BAD Invalid metadata entry name
C1 e6 GETMETADATA INBOX "/shared/*"
S1 e6 BAD Invalid metadata entry name
C1 e7 SETMETADATA INBOX (/comment "x")
S1 e7 BAD Metadata entries begin with /private/ or /shared/
C1 e8 SETMETADATA INBOX (/shared "x")
S1 e8 BAD Metadata entries begin with /private/ or /shared/
C1 e9 GETMETADATA INBOX (DEPTH 2) /shared
S1 e9 BAD DEPTH must be 0, 1 or infinity
C1 e10 GETMETADATA INBOX (BOGUS 1) /shared
S1 e10 BAD Unknown or repeated GETMETADATA option BOGUS
C1 e11 SETMETADATA INBOX ()
S1 e11 BAD %*
C1 e12 SETMETADATA INBOX (/shared/comment)
S1 e12 BAD %*
# Section 4.3: limits, all or nothing.
C1 e13 SETMETADATA INBOX (/shared/a "kept" /shared/big {{{METADATA_MAX_VALUE + 1}+}}
C1 {"y" * (METADATA_MAX_VALUE - 1)}
C1 )
S1 e13 NO [METADATA MAXSIZE {METADATA_MAX_VALUE}] Metadata value too large
C1 e14 SETMETADATA INBOX ({
    " ".join(f'/shared/n{i} "v"' for i in range(METADATA_MAX_ENTRIES + 1))
})
S1 e14 NO [METADATA TOOMANY] At most {METADATA_MAX_ENTRIES} metadata entries
C1 e15 GETMETADATA INBOX (DEPTH infinity) /shared
S1 * METADATA "INBOX" ("/shared" NIL)
S1 e15 OK Getmetadata completed
# Exactly the limits are fine.
C1 e16 SETMETADATA INBOX ({
    " ".join(f'/shared/n{i} "v"' for i in range(METADATA_MAX_ENTRIES))
})
S1 e16 OK Setmetadata completed
C1 e17 SETMETADATA INBOX (/shared/n0 {{{METADATA_MAX_VALUE}+}}
C1 {"z" * (METADATA_MAX_VALUE - 2)}
C1 )
S1 e17 OK Setmetadata completed
C1 e18 SETMETADATA INBOX (/shared/one-more "v")
S1 e18 NO [METADATA TOOMANY] %*
"""


async def test_errors_and_limits() -> None:
    await run_transcript(LOGIN + ERRORS)


async def test_needs_authentication() -> None:
    await run_transcript(
        """
        C1 a GETMETADATA "" /shared/comment
        S1 a BAD GETMETADATA not allowed in the not authenticated state
        C1 b SETMETADATA "" (/shared/comment "x")
        S1 b BAD SETMETADATA not allowed in the not authenticated state
        """
    )


LIFECYCLE = """
C1 s1 CREATE Projects/Work
S1 s1 OK %*
C1 s2 SETMETADATA Projects/Work (/private/comment "work" /shared/comment "w")
S1 s2 OK %*
# RENAME carries the entries (of inferiors too).
C1 r1 RENAME Projects Jobs
S1 r1 OK %*
C1 g1 GETMETADATA Jobs/Work /private/comment
S1 * METADATA "Jobs/Work" ("/private/comment" "work")
S1 g1 OK %*
# DELETE drops them; a new mailbox of the same name starts empty.
C1 d1 DELETE Jobs/Work
S1 d1 OK %*
C1 c1 CREATE Jobs/Work
S1 c1 OK %*
C1 g2 GETMETADATA Jobs/Work (/private/comment /shared/comment)
S1 * METADATA "Jobs/Work" ("/private/comment" NIL "/shared/comment" NIL)
S1 g2 OK %*
C1 s3 SETMETADATA Junk (/private/comment "spam")
S1 s3 OK %*
C1 s4 SETMETADATA "" (/shared/admin "mailto:postmaster@example.org")
S1 s4 OK %*
"""

REOPENED = """
C1 g1 GETMETADATA Junk /private/comment
S1 * METADATA "Junk" ("/private/comment" "spam")
S1 g1 OK %*
C1 g2 GETMETADATA "" /shared/admin
S1 * METADATA "" ("/shared/admin" "mailto:postmaster@example.org")
S1 g2 OK %*
"""


async def test_rename_delete_memory() -> None:
    world = await run_transcript(LOGIN + LIFECYCLE)
    await run_transcript(LOGIN + REOPENED, world)


async def test_mh_store_persists_and_follows_the_hierarchy(tmp_path: Path) -> None:
    world = MHWorld(tmp_path / "mail")
    try:
        await run_transcript(LOGIN + EXAMPLES + LIFECYCLE, world)
    finally:
        await world.close()
    again = MHWorld(tmp_path / "mail")
    try:
        await run_transcript(LOGIN + REOPENED, again)
    finally:
        await again.close()


async def test_mh_store_limits(tmp_path: Path) -> None:
    world: World = MHWorld(tmp_path / "mail")
    try:
        await run_transcript(LOGIN + ERRORS, world)
    finally:
        assert isinstance(world, MHWorld)
        await world.close()
