"""Mailbox-name rules shared by every store, and LIST pattern matching.

Why one module for all stores: a name that is valid for the memory store but
not for MH (or the reverse) would make the stores disagree on what a client
may CREATE, and the MH store maps names onto directories, so a name like
``../x`` must be refused *everywhere*, before any store sees it.  (An
all-digit level such as ``2024`` is fine everywhere: the MH store escapes
it, since to nmh a digit-only entry is a message number.)  The session
calls :func:`check_name` on every name it receives; stores call it again
as defence in depth.

The hierarchy delimiter is ``/`` for every store.  Only the exact name
``INBOX`` is case-insensitive (RFC 3501 section 5.1; RFC 9051 section 5.1
and the ``mailbox`` rule in its section 9): ``inbox``, ``Inbox`` and
``INBOX`` are all spelled ``INBOX`` after :func:`check_name`, while
``inbox/sub`` is kept as given (the MH store happens to map INBOX onto the
directory ``inbox``, which is its own business).

LIST patterns (RFC 3501 section 6.3.8): ``*`` matches any run of
characters, ``%`` any run without the delimiter.  The matcher is a
dynamic-programming glob rather than a translated regular expression,
because a hostile pattern such as ``*a*a*a*a*a*b`` makes a backtracking
regex engine take exponential time; here each match costs at most
``len(pattern) * len(name)`` steps.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from asimap.store.base import InvalidMailboxName

#: The hierarchy delimiter of every asimap store.
DELIMITER = "/"

#: The special name of the primary mailbox (RFC 3501 section 5.1).
INBOX = "INBOX"

#: Longest name accepted, in UTF-8 octets.  Keeps file paths (MH) and
#: database keys (DB store) bounded; far above what clients use.
MAX_NAME_OCTETS = 1024

#: Deepest hierarchy accepted (number of ``/``-separated components).
MAX_DEPTH = 64


def _is_control(char: str) -> bool:
    """True for C0/C1 controls and DEL (Unicode category ``Cc``).

    Controls in a name break log lines, terminals and the MH file system
    layout; no real client creates them.
    """
    return unicodedata.category(char) == "Cc"


def canonical_inbox(name: str) -> str:
    """Spell the exact name INBOX (any case) as ``INBOX``; keep others."""
    return INBOX if name.upper() == INBOX else name


def check_name(name: str, *, strip_trailing_delimiter: bool = False) -> str:
    """Validate ``name`` and return its canonical form.

    ``strip_trailing_delimiter`` is for CREATE: a trailing ``/`` only
    declares that the client intends to create inferiors, and the name is
    created without it (RFC 3501 section 6.3.3).  Exactly one trailing
    delimiter is removed; ``a//`` is still refused (empty component).

    Raises :class:`InvalidMailboxName` with a message fit for the client.
    """
    if strip_trailing_delimiter and name.endswith(DELIMITER):
        name = name[: -len(DELIMITER)]
    if not name:
        raise InvalidMailboxName("Mailbox name is empty")
    try:
        octets = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        # Lone surrogates (from a lenient decoder) cannot be stored.
        raise InvalidMailboxName("Mailbox name is not valid UTF-8") from None
    if octets > MAX_NAME_OCTETS:
        raise InvalidMailboxName(
            f"Mailbox name is longer than {MAX_NAME_OCTETS} octets"
        )
    if any(_is_control(char) for char in name):
        raise InvalidMailboxName("Mailbox name contains a control character")
    # The LIST wildcards "%" and "*" are valid in a name (RFC 9051 section
    # 5.1 item 3: "difficult to use ... with the LIST command", not
    # forbidden), and folders such as "100% done" come from other servers
    # when users migrate; Dovecot accepts them too.
    if name.startswith(DELIMITER):
        raise InvalidMailboxName("Mailbox name starts with the delimiter /")
    if name.startswith("~"):
        # "~" means "home directory" to MH tools and some IMAP servers.
        raise InvalidMailboxName("Mailbox name starts with ~")
    components = name.split(DELIMITER)
    if len(components) > MAX_DEPTH:
        raise InvalidMailboxName(f"Mailbox name is deeper than {MAX_DEPTH} levels")
    for component in components:
        _check_component(component)
    return canonical_inbox(name)


def _check_component(component: str) -> None:
    """Refuse one hierarchy level that a file-system store cannot hold."""
    if not component:
        raise InvalidMailboxName("Mailbox name has an empty level (//)")
    if component in (".", ".."):
        raise InvalidMailboxName("Mailbox name has a . or .. level")
    # An all-digit level ("Archive/2024") is a valid name: the MH store,
    # where a digit-only entry would be a message number, stores it under
    # an escaped directory name (asimap.store.mh.paths).


def parent_of(name: str) -> str | None:
    """The canonical name of the immediate superior, or None at the top.

    ``inbox/sub`` has the parent ``INBOX`` (the parent is a name of its
    own, so the INBOX rule applies to it).
    """
    head, sep, _ = name.rpartition(DELIMITER)
    return canonical_inbox(head) if sep else None


def ancestors_of(name: str) -> tuple[str, ...]:
    """Canonical names of every superior, outermost first.

    ``a/b/c`` gives ``("a", "a/b")``; CREATE makes the missing ones
    (RFC 3501 section 6.3.3).
    """
    parts = name.split(DELIMITER)
    return tuple(
        canonical_inbox(DELIMITER.join(parts[:depth])) for depth in range(1, len(parts))
    )


def is_inferior(name: str, superior: str) -> bool:
    """True if ``name`` lies strictly below ``superior`` in the hierarchy."""
    return superior in ancestors_of(name)


def join_reference(reference: str, pattern: str) -> str:
    """Combine LIST's reference and mailbox arguments (RFC 3501 6.3.8).

    We have no break-out characters and no namespaces, so the canonical
    form is "normally the reference name appended with the mailbox name"
    (RFC 3501 section 6.3.8).  A delimiter doubled at the joint (reference
    ``a/`` with pattern ``/b``) is collapsed, since an empty level can
    never name a mailbox.  The empty-pattern special request (return the
    delimiter) is the session's business and is not handled here.
    """
    if reference.endswith(DELIMITER) and pattern.startswith(DELIMITER):
        return reference + pattern[len(DELIMITER) :]
    return reference + pattern


@dataclass(frozen=True, slots=True)
class ListMatcher:
    """A compiled LIST pattern (RFC 3501 section 6.3.8).

    Compile once per LIST command and test every name of the account.
    The name ``INBOX`` is matched case-insensitively (``inb%`` lists it),
    because its spelling is not significant (RFC 3501 section 5.1).
    """

    pattern: str
    _folded: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_folded", self.pattern.upper())

    def matches(self, name: str) -> bool:
        """True if ``name`` matches the pattern."""
        if name == INBOX:
            return _glob_match(self._folded, INBOX)
        return _glob_match(self.pattern, name)


def list_pattern_matches(pattern: str, name: str) -> bool:
    """One-shot form of :class:`ListMatcher`."""
    return ListMatcher(pattern).matches(name)


def _glob_match(pattern: str, name: str) -> bool:
    """Match ``*`` / ``%`` globs in O(len(pattern) * len(name)) time.

    ``reachable[j]`` is True when the pattern read so far can consume
    exactly ``name[:j]``.
    """
    size = len(name)
    reachable = [True] + [False] * size
    for token in pattern:
        if token == "*":
            # Anything may follow a reachable position.
            first = reachable.index(True) if True in reachable else size + 1
            reachable = [j >= first for j in range(size + 1)]
        elif token == "%":
            # Extend each reachable position over non-delimiter characters.
            extended = reachable[:]
            for j in range(1, size + 1):
                if extended[j - 1] and name[j - 1] != DELIMITER:
                    extended[j] = True
            reachable = extended
        else:
            reachable = [False] + [
                reachable[j - 1] and name[j - 1] == token for j in range(1, size + 1)
            ]
        if not any(reachable):
            return False
    return reachable[size]
