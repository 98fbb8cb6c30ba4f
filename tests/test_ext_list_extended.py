"""LIST-EXTENDED (RFC 5258): every example of section 5, and the errors.

Each example runs against a store holding the RFC's hierarchy.  Our
answers differ from the RFC's text only where the RFC leaves a choice,
and each difference is commented:

* ``\\HasChildren``/``\\HasNoChildren`` are always returned (section 4: a
  server MAY), so lines the RFC shows as ``()`` carry one of them;
* INBOX is spelled ``INBOX`` and has no ``\\Marked``/``\\NoInferiors``;
* our stores create missing parents (like Dovecot), so a parent the RFC
  calls non-existent exists here; a name with no mailbox at all *below*
  it stands in for it (example 8 A2);
* attribute order is ours (the RFC's is not significant);
* we have no remote mailboxes: REMOTE changes nothing.
"""

from __future__ import annotations

from asimap.store.memory import MemoryStore
from transcript import World, run_transcript

#: The CHILDINFO extended data item of a SUBSCRIBED RECURSIVEMATCH LIST
#: (section 3.5), written ``<CHILDINFO>`` in the scripts below.
CHILDINFO = '("CHILDINFO" ("SUBSCRIBED"))'

LOGIN = """
C1 a LOGIN alice secret-a
S1 a OK %*
"""


async def _run(script: str, mailboxes: list[str], subscribed: list[str]) -> None:
    """Run ``script`` for alice, whose store holds exactly ``mailboxes``
    (plus INBOX) and ``subscribed``."""

    async def fill(world: World) -> None:
        store = world.stores["alice"] = MemoryStore()
        for name in mailboxes:
            await store.create(name)
        for name in subscribed:
            await store.subscribe(name)

    script = script.replace("<CHILDINFO>", CHILDINFO)
    await run_transcript(LOGIN + script, before=fill)


#: The hierarchy of examples 1-6.
FRUIT = [
    "Fruit",
    "Fruit/Apple",
    "Fruit/Banana",
    "Tofu",
    "Vegetable",
    "Vegetable/Broccoli",
    "Vegetable/Corn",
]
FRUIT_SUBSCRIBED = [
    "INBOX",
    "Fruit/Banana",
    "Fruit/Peach",
    "Vegetable",
    "Vegetable/Broccoli",
]

#: The lines of ``LIST (SUBSCRIBED) "" "*"`` (examples 2 and 5).
FRUIT_SUBSCRIBED_LINES = """
S1 * LIST (\\HasNoChildren \\Subscribed) "/" "Fruit/Banana"
S1 * LIST (\\NonExistent \\Subscribed) "/" "Fruit/Peach"
S1 * LIST (\\HasNoChildren \\Subscribed) "/" "INBOX"
S1 * LIST (\\HasChildren \\Subscribed) "/" "Vegetable"
S1 * LIST (\\HasNoChildren \\Subscribed) "/" "Vegetable/Broccoli"
"""

#: The lines of ``LIST () "" "%" RETURN (CHILDREN)`` (examples 3 and 4).
FRUIT_CHILDREN_LINES = """
S1 * LIST (\\HasChildren) "/" "Fruit"
S1 * LIST (\\HasNoChildren) "/" "INBOX"
S1 * LIST (\\HasNoChildren) "/" "Tofu"
S1 * LIST (\\HasChildren) "/" "Vegetable"
"""


async def test_examples_1_to_6_fruit_hierarchy() -> None:
    await _run(
        """
        # 1: the whole local hierarchy; the subscribed but deleted
        # Fruit/Peach is not a mailbox and is not listed.
        C1 A01 LIST "" "*"
        S1 * LIST (\\HasChildren) "/" "Fruit"
        S1 * LIST (\\HasNoChildren) "/" "Fruit/Apple"
        S1 * LIST (\\HasNoChildren) "/" "Fruit/Banana"
        S1 * LIST (\\HasNoChildren) "/" "INBOX"
        S1 * LIST (\\HasNoChildren) "/" "Tofu"
        S1 * LIST (\\HasChildren) "/" "Vegetable"
        S1 * LIST (\\HasNoChildren) "/" "Vegetable/Broccoli"
        S1 * LIST (\\HasNoChildren) "/" "Vegetable/Corn"
        S1 A01 OK List completed
        # 2: subscribed names, existing or not; Fruit is not subscribed.
        C1 A02 LIST (SUBSCRIBED) "" "*"
        """
        + FRUIT_SUBSCRIBED_LINES
        + """
        S1 A02 OK List completed
        # 3: child information for the top level.
        C1 A03 LIST () "" "%" RETURN (CHILDREN)
        """
        + FRUIT_CHILDREN_LINES
        + """
        S1 A03 OK List completed
        # 4: REMOTE adds nothing here (no remote mailboxes).
        C1 A04 LIST (REMOTE) "" "%" RETURN (CHILDREN)
        """
        + FRUIT_CHILDREN_LINES
        + """
        S1 A04 OK List completed
        # 5: two selection options.
        C1 A05 LIST (REMOTE SUBSCRIBED) "" "*"
        """
        + FRUIT_SUBSCRIBED_LINES
        + """
        S1 A05 OK List completed
        # 6: subscription state of every mailbox; no Fruit/Peach, which
        # does not exist and is not selected without SUBSCRIBED.
        C1 A06 LIST (REMOTE) "" "*" RETURN (SUBSCRIBED)
        S1 * LIST (\\HasChildren) "/" "Fruit"
        S1 * LIST (\\HasNoChildren) "/" "Fruit/Apple"
        S1 * LIST (\\HasNoChildren \\Subscribed) "/" "Fruit/Banana"
        S1 * LIST (\\HasNoChildren \\Subscribed) "/" "INBOX"
        S1 * LIST (\\HasNoChildren) "/" "Tofu"
        S1 * LIST (\\HasChildren \\Subscribed) "/" "Vegetable"
        S1 * LIST (\\HasNoChildren \\Subscribed) "/" "Vegetable/Broccoli"
        S1 * LIST (\\HasNoChildren) "/" "Vegetable/Corn"
        S1 A06 OK List completed
        """,
        FRUIT,
        FRUIT_SUBSCRIBED,
    )


async def test_example_7_multiple_patterns() -> None:
    await _run(
        """
        C1 BBB LIST "" ("INBOX" "Drafts" "Sent/%")
        S1 * LIST (\\HasNoChildren) "/" "Drafts"
        S1 * LIST (\\HasNoChildren) "/" "INBOX"
        S1 * LIST (\\HasNoChildren) "/" "Sent/August2004"
        S1 * LIST (\\HasNoChildren) "/" "Sent/December2003"
        S1 * LIST (\\HasNoChildren) "/" "Sent/March2004"
        S1 BBB OK List completed
        # A name matched by several patterns is listed once (section 3).
        C1 BB2 LIST "" ("Sent" "S*" "%")
        S1 * LIST (\\HasNoChildren) "/" "Drafts"
        S1 * LIST (\\HasNoChildren) "/" "INBOX"
        S1 * LIST (\\HasChildren) "/" "Sent"
        S1 * LIST (\\HasNoChildren) "/" "Sent/August2004"
        S1 * LIST (\\HasNoChildren) "/" "Sent/December2003"
        S1 * LIST (\\HasNoChildren) "/" "Sent/March2004"
        S1 BB2 OK List completed
        """,
        ["Drafts", "Sent/March2004", "Sent/December2003", "Sent/August2004"],
        [],
    )


async def test_example_8_haschildren_versus_childinfo() -> None:
    await _run(
        """
        C1 C01 LIST "" "*"
        S1 * LIST (\\HasChildren) "/" "Foo"
        S1 * LIST (\\HasNoChildren) "/" "Foo/Bar"
        S1 * LIST (\\HasNoChildren) "/" "Foo/Baz"
        S1 * LIST (\\HasNoChildren) "/" "INBOX"
        S1 * LIST (\\HasNoChildren) "/" "Moo"
        S1 C01 OK List completed
        C1 CA3 LIST "" "%" RETURN (CHILDREN)
        S1 * LIST (\\HasChildren) "/" "Foo"
        S1 * LIST (\\HasNoChildren) "/" "INBOX"
        S1 * LIST (\\HasNoChildren) "/" "Moo"
        S1 CA3 OK List completed
        # A) Foo/Baz is the only subscribed mailbox.
        C1 s1 SUBSCRIBE Foo/Baz
        S1 s1 OK %*
        C1 C02 LIST (SUBSCRIBED) "" "*"
        S1 * LIST (\\HasNoChildren \\Subscribed) "/" "Foo/Baz"
        S1 C02 OK List completed
        C1 C03 LIST (SUBSCRIBED) "" "%"
        S1 C03 OK List completed
        C1 C04 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"
        S1 * LIST (\\HasChildren) "/" "Foo" <CHILDINFO>
        S1 C04 OK List completed
        # A1) Foo subscribed too.
        C1 s2 SUBSCRIBE Foo
        S1 s2 OK %*
        C1 C05 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"
        S1 * LIST (\\HasChildren \\Subscribed) "/" "Foo" <CHILDINFO>
        S1 C05 OK List completed
        # A2) a parent that does not exist at all: Zoo has no mailbox
        # below it, only the subscription Zoo/Baz.
        C1 s3 SUBSCRIBE Zoo/Baz
        S1 s3 OK %*
        C1 C06 LIST (SUBSCRIBED RECURSIVEMATCH) "" "Z%"
        S1 * LIST (\\NonExistent) "/" "Zoo" <CHILDINFO>
        S1 C06 OK List completed
        # B) nothing subscribed: nothing listed, though Foo has children.
        C1 u1 UNSUBSCRIBE Foo
        S1 u1 OK %*
        C1 u2 UNSUBSCRIBE Foo/Baz
        S1 u2 OK %*
        C1 u3 UNSUBSCRIBE Zoo/Baz
        S1 u3 OK %*
        C1 C07 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"
        S1 C07 OK List completed
        # C) Foo and Moo subscribed: Foo has children, none subscribed.
        C1 s4 SUBSCRIBE Foo
        S1 s4 OK %*
        C1 s5 SUBSCRIBE Moo
        S1 s5 OK %*
        C1 C08 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)
        S1 * LIST (\\HasChildren \\Subscribed) "/" "Foo"
        S1 * LIST (\\HasNoChildren \\Subscribed) "/" "Moo"
        S1 C08 OK List completed
        """,
        ["Foo", "Foo/Bar", "Foo/Baz", "Moo"],
        [],
    )


EXAMPLE_9 = [
    "foo2",
    "foo2/bar1",
    "foo2/bar2",
    "baz2",
    "baz2/bar2",
    "baz2/bar22",
    "baz2/bar222",
    "eps2",
    "eps2/mamba",
    "qux2/bar2",
]


async def test_example_9_childinfo_whether_or_not_children_match() -> None:
    await _run(
        """
        C1 D02 LIST (SUBSCRIBED) "" "*"
        S1 * LIST (\\HasNoChildren \\Subscribed) "/" "baz2/bar2"
        S1 * LIST (\\HasNoChildren \\Subscribed) "/" "baz2/bar22"
        S1 * LIST (\\HasNoChildren \\Subscribed) "/" "baz2/bar222"
        S1 * LIST (\\HasChildren \\Subscribed) "/" "eps2"
        S1 * LIST (\\HasNoChildren \\Subscribed) "/" "eps2/mamba"
        S1 * LIST (\\HasNoChildren \\Subscribed) "/" "foo2/bar1"
        S1 * LIST (\\HasNoChildren \\Subscribed) "/" "foo2/bar2"
        S1 * LIST (\\HasNoChildren \\Subscribed) "/" "qux2/bar2"
        S1 D02 OK List completed
        # Exactly the RFC's answer: foo2 (child foo2/bar1 not matched) and
        # eps2 (child eps2/mamba not matched) carry CHILDINFO; baz2 and
        # qux2, whose subscribed children are all listed, are suppressed
        # (section 3.5: redundant CHILDINFO SHOULD be suppressed).
        C1 D03 LIST (RECURSIVEMATCH SUBSCRIBED) "" "*2"
        S1 * LIST (\\HasNoChildren \\Subscribed) "/" "baz2/bar2"
        S1 * LIST (\\HasNoChildren \\Subscribed) "/" "baz2/bar22"
        S1 * LIST (\\HasNoChildren \\Subscribed) "/" "baz2/bar222"
        S1 * LIST (\\HasChildren \\Subscribed) "/" "eps2" <CHILDINFO>
        S1 * LIST (\\HasChildren) "/" "foo2" <CHILDINFO>
        S1 * LIST (\\HasNoChildren \\Subscribed) "/" "foo2/bar2"
        S1 * LIST (\\HasNoChildren \\Subscribed) "/" "qux2/bar2"
        S1 D03 OK List completed
        # With "*" the RFC shows the redundant foo2 and baz2 lines as
        # allowed; we keep suppressing them.  eps2 is selected itself and
        # keeps its CHILDINFO, as in the RFC.
        C1 D04 LIST (RECURSIVEMATCH SUBSCRIBED) "" "*"
        S1 * LIST (\\HasNoChildren \\Subscribed) "/" "baz2/bar2"
        S1 * LIST (\\HasNoChildren \\Subscribed) "/" "baz2/bar22"
        S1 * LIST (\\HasNoChildren \\Subscribed) "/" "baz2/bar222"
        S1 * LIST (\\HasChildren \\Subscribed) "/" "eps2" <CHILDINFO>
        S1 * LIST (\\HasNoChildren \\Subscribed) "/" "eps2/mamba"
        S1 * LIST (\\HasNoChildren \\Subscribed) "/" "foo2/bar1"
        S1 * LIST (\\HasNoChildren \\Subscribed) "/" "foo2/bar2"
        S1 * LIST (\\HasNoChildren \\Subscribed) "/" "qux2/bar2"
        S1 D04 OK List completed
        """,
        EXAMPLE_9,
        [
            "foo2/bar1",
            "foo2/bar2",
            "baz2/bar2",
            "baz2/bar22",
            "baz2/bar222",
            "eps2",
            "eps2/mamba",
            "qux2/bar2",
        ],
    )


async def test_example_10_childinfo_without_haschildren() -> None:
    await _run(
        """
        C1 a1 LIST "" ("foo" "foo/*")
        S1 * LIST (\\HasNoChildren) "/" "foo"
        S1 a1 OK List completed
        C1 a2 LIST (SUBSCRIBED) "" "foo/*"
        S1 * LIST (\\NonExistent \\Subscribed) "/" "foo/bar"
        S1 a2 OK List completed
        C1 a3 LIST (SUBSCRIBED RECURSIVEMATCH) "" foo RETURN (CHILDREN)
        S1 * LIST (\\HasNoChildren) "/" "foo" <CHILDINFO>
        S1 a3 OK List completed
        """,
        ["foo"],
        ["foo/bar"],
    )


async def test_example_11_parents_and_remote() -> None:
    # Our stores create the missing parent "music", so it exists and is
    # listed as an ordinary mailbox with \HasChildren.
    await _run(
        """
        C1 a1 LIST (REMOTE) "" *
        S1 * LIST (\\HasNoChildren) "/" "INBOX"
        S1 * LIST (\\HasChildren) "/" "music"
        S1 * LIST (\\HasNoChildren) "/" "music/rock"
        S1 a1 OK List completed
        C1 a2 LIST () "" %
        S1 * LIST (\\HasNoChildren) "/" "INBOX"
        S1 * LIST (\\HasChildren) "/" "music"
        S1 a2 OK List completed
        C1 a3 LIST "" (% music/rock)
        S1 * LIST (\\HasNoChildren) "/" "INBOX"
        S1 * LIST (\\HasChildren) "/" "music"
        S1 * LIST (\\HasNoChildren) "/" "music/rock"
        S1 a3 OK List completed
        """,
        ["music/rock"],
        [],
    )


async def test_lsub_and_list_subscribed_differ() -> None:
    """Section 3.1: LSUB's \\Noselect means "not subscribed, but has
    subscribed children"; LIST (SUBSCRIBED) keeps attributes accurate and
    says that with CHILDINFO instead."""
    await _run(
        """
        C1 b LSUB "" "%"
        S1 * LSUB (\\Noselect) "/" "Fruit"
        S1 * LSUB () "/" "INBOX"
        S1 * LSUB () "/" "Vegetable"
        S1 b OK Lsub completed
        C1 c LIST (SUBSCRIBED) "" "%"
        S1 * LIST (\\HasNoChildren \\Subscribed) "/" "INBOX"
        S1 * LIST (\\HasChildren \\Subscribed) "/" "Vegetable"
        S1 c OK List completed
        C1 d LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"
        S1 * LIST (\\HasChildren) "/" "Fruit" <CHILDINFO>
        S1 * LIST (\\HasNoChildren \\Subscribed) "/" "INBOX"
        S1 * LIST (\\HasChildren \\Subscribed) "/" "Vegetable" <CHILDINFO>
        S1 d OK List completed
        """,
        FRUIT,
        FRUIT_SUBSCRIBED,
    )


async def test_extended_forms_and_empty_patterns() -> None:
    await _run(
        """
        # Section 3: an extended LIST never treats "" as the request for
        # the delimiter; in a pattern list "" is ignored.
        C1 b LIST () "" ""
        S1 b OK List completed
        C1 c LIST "" ""  RETURN ()
        S1 c BAD %*
        C1 d LIST "" "" RETURN ()
        S1 d OK List completed
        C1 e LIST "" ("" "Tofu")
        S1 * LIST (\\HasNoChildren) "/" "Tofu"
        S1 e OK List completed
        # The basic form still answers the delimiter request.
        C1 f LIST "" ""
        S1 * LIST (\\Noselect) "/" ""
        S1 f OK List completed
        # Options given twice act as given once; order does not matter.
        C1 g LIST (SUBSCRIBED SUBSCRIBED) "Vegetable/" % RETURN (SUBSCRIBED SUBSCRIBED)
        S1 * LIST (\\HasNoChildren \\Subscribed) "/" "Vegetable/Broccoli"
        S1 g OK List completed
        # The reference is joined to every pattern.
        C1 h LIST "Fruit/" ("A*" "B*")
        S1 * LIST (\\HasNoChildren) "/" "Fruit/Apple"
        S1 * LIST (\\HasNoChildren) "/" "Fruit/Banana"
        S1 h OK List completed
        # Options are case-insensitive atoms.
        C1 i list (subscribed) "" "Fruit/*" return (children)
        S1 * LIST (\\HasNoChildren \\Subscribed) "/" "Fruit/Banana"
        S1 * LIST (\\NonExistent \\HasNoChildren \\Subscribed) "/" "Fruit/Peach"
        S1 i OK List completed
        """,
        FRUIT,
        FRUIT_SUBSCRIBED,
    )


async def test_errors() -> None:
    await _run(
        """
        # Section 3.1: RECURSIVEMATCH alone, or only with REMOTE, is BAD.
        C1 b LIST (RECURSIVEMATCH) "" "*"
        S1 b BAD RECURSIVEMATCH needs the SUBSCRIBED selection option
        C1 c LIST (REMOTE RECURSIVEMATCH) "" "*"
        S1 c BAD RECURSIVEMATCH needs the SUBSCRIBED selection option
        # SPECIAL-USE is an independent option, not a base one (RFC 6154 s6).
        C1 d LIST (SPECIAL-USE RECURSIVEMATCH) "" "*"
        S1 d BAD RECURSIVEMATCH needs the SUBSCRIBED selection option
        # Section 3: unknown options are BAD.
        C1 e LIST (BOGUS) "" "*"
        S1 e BAD Unknown LIST selection option BOGUS
        C1 f LIST "" "*" RETURN (BOGUS)
        S1 f BAD Unknown LIST return option BOGUS
        C1 g LIST (CHILDREN) "" "*"
        S1 g BAD Unknown LIST selection option CHILDREN
        C1 h LIST "" "*" RETURN (RECURSIVEMATCH)
        S1 h BAD Unknown LIST return option RECURSIVEMATCH
        C1 i LIST "" "*" (CHILDREN)
        S1 i BAD %*
        C1 j LIST "" ()
        S1 j BAD %*
        C1 k LIST (SUBSCRIBED "" "*"
        S1 k BAD %*
        # A pattern that is not modified UTF-7 is not bad syntax: it just
        # matches nothing, while the other patterns still match.
        C1 l LIST "" ("Tofu" "&AAA")
        S1 * LIST (\\HasNoChildren) "/" "Tofu"
        S1 l OK List completed
        # The connection is still usable.
        C1 m LIST () "" "Tofu"
        S1 * LIST (\\HasNoChildren) "/" "Tofu"
        S1 m OK List completed
        """,
        FRUIT,
        FRUIT_SUBSCRIBED,
    )


async def test_extended_list_needs_authentication() -> None:
    await run_transcript(
        """
        C1 a LIST (SUBSCRIBED) "" "*"
        S1 a BAD LIST not allowed in the not authenticated state
        """
    )
