"""The MIME tree of a message, as byte offsets into the raw message.

Every entity (the message itself, each body part, each encapsulated
message) is a :class:`Part` that records where its header and body lie in
the raw bytes, so that sections are served exactly as stored.  Parsing
follows RFC 2045/2046 and tolerates what real mail does wrong:

* multipart boundaries per RFC 2046 section 5.1.1 -- at the start of a line,
  optionally followed by ``--`` and trailing whitespace; the line break
  before a boundary belongs to the boundary; preamble and epilogue are
  skipped; a missing close-delimiter ends the last part at the end of the
  enclosing body.
* a multipart with no boundary parameter or no boundary line in its body is
  served as a single ``text/plain`` part (its body is still readable that
  way; an empty ``multipart`` would be invalid in BODYSTRUCTURE).
* ``message/rfc822`` (and ``message/global``, RFC 6532) bodies are parsed as
  messages of their own.
* nesting stops at :data:`~asimap.message.limits.MAX_MIME_DEPTH`: a
  container at that depth is served as an opaque
  ``application/octet-stream`` leaf of its whole body;
* at most :data:`~asimap.message.limits.MAX_MIME_PARTS` entities are
  parsed: when they run out inside a multipart, its last parsed part takes
  the rest of the multipart's body, as an opaque leaf.

Both limits are explained in ``docs/reliability.md``; construction never
recurses deeper than the depth limit, whatever the input.
"""

from __future__ import annotations

from asimap.message.headers import Headers, split_header
from asimap.message.limits import MAX_MIME_DEPTH, MAX_MIME_PARTS
from asimap.message.params import StructuredValue, parse_content_type

#: Deepest nesting of multiparts / encapsulated messages we descend into
#: (the name other modules and tests know it by).
MAX_DEPTH = MAX_MIME_DEPTH

_MESSAGE_SUBTYPES = frozenset({"rfc822", "global"})
_DEFAULT_TYPE = StructuredValue("text/plain", (("charset", "US-ASCII"),))
_OPAQUE_TYPE = StructuredValue("application/octet-stream", ())


class _Budget:
    """The entities a message may still have (shared by its whole tree)."""

    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left


class Part:
    """One MIME entity inside the raw message ``data``.

    ``start:header_end`` are the header fields, ``header_end:body_start``
    the empty separator line (possibly absent), ``body_start:end`` the body.
    ``children`` are the body parts of a multipart; ``message`` is the
    parsed encapsulated message of a ``message/rfc822`` part.
    """

    __slots__ = (
        "body_start",
        "children",
        "content_type",
        "data",
        "end",
        "header_end",
        "headers",
        "message",
        "start",
        "subtype",
        "type",
    )

    def __init__(
        self,
        data: bytes,
        start: int,
        end: int,
        depth: int = 0,
        default_type: str = "text/plain",
        budget: _Budget | None = None,
        opaque: bool = False,
    ) -> None:
        if budget is None:
            budget = _Budget(MAX_MIME_PARTS)
        if not opaque:
            budget.left -= 1
        self.data = data
        self.start = start
        self.end = end
        self.header_end, self.body_start = split_header(data, start, end)
        self.headers = Headers(data, start, self.header_end)
        self.children: list[Part] = []
        self.message: Part | None = None
        parsed = parse_content_type(self.headers.latin1("Content-Type"))
        if parsed is None:
            # RFC 2045 section 5.2 default; RFC 2046 section 5.1.5 for digest.
            if default_type == "message/rfc822":
                parsed = ("message", "rfc822", StructuredValue(default_type, ()))
            else:
                parsed = ("text", "plain", _DEFAULT_TYPE)
        self.type, self.subtype, self.content_type = parsed
        if opaque:
            self._make_opaque()
        elif self.type == "multipart":
            self._parse_multipart(depth, budget)
        elif self.type == "message" and self.subtype in _MESSAGE_SUBTYPES:
            if depth >= MAX_DEPTH or budget.left <= 0:
                self._make_opaque()
            else:
                self.message = Part(
                    data, self.body_start, end, depth + 1, budget=budget
                )

    # -- construction ------------------------------------------------------

    def _make_opaque(self) -> None:
        """Serve this entity as one leaf of its whole body (past a limit)."""
        self.type, self.subtype = "application", "octet-stream"
        self.content_type = _OPAQUE_TYPE

    @property
    def is_opaque(self) -> bool:
        """True for a leaf made opaque by a limit (depth or part count)."""
        return self.content_type is _OPAQUE_TYPE

    def _parse_multipart(self, depth: int, budget: _Budget) -> None:
        boundary = self.content_type.param("boundary")
        if depth >= MAX_DEPTH or budget.left <= 0:
            self._make_opaque()
            return
        spans, overflow = split_multipart_bounded(
            self.data, self.body_start, self.end, boundary, budget.left
        )
        if not spans:
            self.type, self.subtype, self.content_type = "text", "plain", _DEFAULT_TYPE
            return
        # RFC 2046 5.1.5: in a digest the parts default to message/rfc822.
        child_default = "message/rfc822" if self.subtype == "digest" else "text/plain"
        children: list[Part] = []
        last = len(spans) - 1
        for index, (start, end) in enumerate(spans):
            if budget.left <= 0 or (budget.left == 1 and (index < last or overflow)):
                # The budget ends here: this part takes the rest of the
                # multipart's body, opaque, so no byte becomes unreachable.
                children.append(
                    Part(
                        self.data,
                        start,
                        spans[last][1],
                        depth + 1,
                        budget=budget,
                        opaque=True,
                    )
                )
                break
            children.append(
                Part(self.data, start, end, depth + 1, child_default, budget)
            )
        self.children = children

    # -- views ---------------------------------------------------------------

    @property
    def is_multipart(self) -> bool:
        return bool(self.children)

    @property
    def header_bytes(self) -> bytes:
        """The header including its empty separator line (``MIME``/``HEADER``)."""
        return self.data[self.start : self.body_start]

    @property
    def body(self) -> bytes:
        """The body exactly as stored (still transfer-encoded)."""
        return self.data[self.body_start : self.end]

    @property
    def body_size(self) -> int:
        return self.end - self.body_start

    def body_lines(self) -> int:
        """Number of lines of the body, a final unterminated line included."""
        count = self.data.count(b"\n", self.body_start, self.end)
        if self.end > self.body_start and self.data[self.end - 1] != 0x0A:
            count += 1
        return count

    def numbered_children(self) -> list[Part]:
        """What ``.1``, ``.2`` ... under this part name (RFC 3501 6.4.5).

        A multipart's children; for an encapsulated message, the parts of
        that message (its children, or the message itself when it is not
        multipart); for any other part, the part itself as ``.1``.
        """
        if self.children:
            return self.children
        if self.message is not None:
            return self.message.children or [self.message]
        return [self]

    def walk(self) -> list[Part]:
        """This part and every part inside it, depth first, in order."""
        out: list[Part] = []
        stack: list[Part] = [self]
        while stack:
            part = stack.pop()
            out.append(part)
            inner = list(part.children)
            if part.message is not None:
                inner.append(part.message)
            stack.extend(reversed(inner))
        return out


def _find_boundary(
    data: bytes, needle: bytes, pos: int, start: int, end: int
) -> tuple[int, int, bool] | None:
    """Find the next boundary line at or after ``pos``.

    RFC 2046 5.1.1: ``"--" boundary ["--"] *LWSP-char CRLF`` at the start of
    a line (bare LF accepted).  Returns ``(line_start, next_line, is_close)``.
    ``bytes.find`` keeps this fast on multi-megabyte attachments.
    """
    while True:
        found = data.find(needle, pos, end)
        if found < 0:
            return None
        pos = found + 1
        if found != start and data[found - 1] != 0x0A:
            continue  # not at the start of a line
        after = found + len(needle)
        close = data.startswith(b"--", after, end)
        cursor = after + 2 if close else after
        while cursor < end and data[cursor] in (0x20, 0x09):
            cursor += 1
        if cursor < end and data[cursor] == 0x0D:
            cursor += 1
        if cursor < end and data[cursor] != 0x0A:
            continue  # something else follows: a longer boundary or text
        return found, min(cursor + 1, end), close


def split_multipart(
    data: bytes, start: int, end: int, boundary: str | None
) -> list[tuple[int, int]]:
    """Return the ``(start, end)`` spans of the body parts in ``data[start:end]``.

    The CRLF (or LF) before a boundary line belongs to the boundary, so a
    part ends before it (RFC 2046 section 5.1.1).  An empty list means no
    boundary line was found.
    """
    return split_multipart_bounded(data, start, end, boundary, None)[0]


def split_multipart_bounded(
    data: bytes, start: int, end: int, boundary: str | None, limit: int | None
) -> tuple[list[tuple[int, int]], bool]:
    """:func:`split_multipart` returning at most ``limit`` spans: when more
    parts follow, the last span runs to ``end`` and the flag is True."""
    if not boundary:
        return [], False
    needle = b"--" + boundary.encode("latin-1", errors="replace")
    spans: list[tuple[int, int]] = []
    part_start = -1
    pos = start
    while pos < end:
        found = _find_boundary(data, needle, pos, start, end)
        if found is None:
            break
        line_start, next_line, close = found
        if part_start >= 0:
            part_end = line_start
            if part_end > part_start and data[part_end - 1] == 0x0A:
                part_end -= 1
                if part_end > part_start and data[part_end - 1] == 0x0D:
                    part_end -= 1
            spans.append((part_start, part_end))
        if close:  # close-delimiter: the rest is epilogue
            return spans, False
        if limit is not None and len(spans) >= limit:
            spans[-1] = (spans[-1][0], end)  # more parts follow: take them
            return spans, True
        part_start = pos = next_line
    if part_start >= 0:
        # Missing close-delimiter: the last part runs to the end (tolerated).
        spans.append((part_start, end))
    return spans, False
