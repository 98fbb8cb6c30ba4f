"""Messages for APPEND, read from the shared mbox corpus.

The mbox is split on ``From `` separator lines (mboxrd quoting: one leading
``>`` is removed from ``>From `` lines) and each message is converted to
CRLF line endings, because IMAP transmits messages with CRLF (RFC 9051
section 6.3.12 / RFC 5322 section 2.1).
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

DEFAULT_CORPUS = (
    Path(__file__).resolve().parents[2] / "tests" / "data" / "usrp-users.mbox.gz"
)
_QUOTED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)


def to_crlf(message: bytes) -> bytes:
    """Normalise any mix of LF and CRLF line endings to CRLF."""
    return message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def split_mbox(data: bytes) -> list[bytes]:
    """Split mbox data into messages (without the ``From `` lines)."""
    messages: list[bytes] = []
    current: list[bytes] = []
    started = False
    for line in data.splitlines(keepends=True):
        if line.startswith(b"From ") and (not current or current[-1].strip() == b""):
            if started:
                messages.append(_finish(current))
            current = []
            started = True
            continue
        if started:
            current.append(line)
    if started:
        messages.append(_finish(current))
    return messages


def _finish(lines: list[bytes]) -> bytes:
    # The blank line before the next separator belongs to the mbox format.
    if lines and lines[-1].strip() == b"":
        lines = lines[:-1]
    return to_crlf(_QUOTED_FROM.sub(rb"\1", b"".join(lines)))


def load_corpus(path: Path = DEFAULT_CORPUS, limit: int | None = None) -> list[bytes]:
    """Read up to ``limit`` messages from a (gzip-compressed) mbox file."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    messages = split_mbox(data)
    return messages[:limit] if limit is not None else messages
