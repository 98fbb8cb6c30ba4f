"""imapload: a small asyncio IMAP load generator that works against any server.

It deliberately avoids :mod:`imaplib` (blocking, one connection per thread)
and implements just enough of the client side of RFC 3501 / RFC 9051 to drive
realistic sessions: tagged commands, untagged responses with literals,
synchronizing and non-synchronizing literals on APPEND, STARTTLS and
implicit TLS.
"""

from bench.imapload.client import ImapClient, ImapError, Response, TaggedResult
from bench.imapload.stats import LatencyStats, percentile

__all__ = [
    "ImapClient",
    "ImapError",
    "LatencyStats",
    "Response",
    "TaggedResult",
    "percentile",
]
