"""How much of a hostile message is interpreted: every limit in one place.

A message may be as large as APPENDLIMIT allows (64 MiB), and nothing stops
it from being one 62 MB ``To:`` field of 1.4 million addresses, ten million
empty MIME parts, or multiparts nested two thousand deep.  Served as
written, such a message made a worker hold gigabytes of parsed objects for
a single FETCH ENVELOPE.  So the message model *interprets* only a bounded
amount of any message -- the raw bytes stay the truth, and every byte is
still served verbatim through ``BODY[...]``/``BINARY[...]`` -- and each
limit below says what happens past it.  ``docs/reliability.md`` ("Limits on
hostile messages") explains them for operators; each is chosen far above
what real mail carries.

None of these limits is in an RFC: RFC 3501/9051 set no bound on the size
of an ENVELOPE or BODYSTRUCTURE, and a server that answers at all has one.
Dovecot's are noted beside ours.
"""

from __future__ import annotations

#: Octets of one header field's value that are interpreted (unfolded,
#: parsed as addresses or parameters, decoded for SEARCH and summaries).
#: ENVELOPE strings, BODYSTRUCTURE fields, SEARCH HEADER/SUBJECT/TEXT and
#: SORT see at most this much of a field; BODY[HEADER...] still returns the
#: whole field as stored.  Real fields are under a few kilobytes; a
#: References: of a long thread or a To: of ten thousand people stays
#: below it.
MAX_FIELD_BYTES = 1024 * 1024

#: Addresses parsed from one address field (From, Sender, Reply-To, To, Cc,
#: Bcc) for ENVELOPE and, through it, SEARCH FROM/TO/CC/BCC and SORT.  The
#: list ends after this many (group markers are not counted; an open group
#: is closed).  Dovecot stops after 100,000 addresses *per message* (a
#: later Cc: then reads as NIL); ours is per field, so every field keeps
#: its first addresses, and lower, because a parsed address costs a Python
#: process far more than a C one.
MAX_ADDRESSES = 10_000

#: Header fields of one header block that are indexed (looked up by name
#: for every purpose).  Fields after these are not seen by ENVELOPE,
#: BODYSTRUCTURE, SEARCH or HEADER.FIELDS, but are still part of
#: ``BODY[HEADER]``.  Real messages carry tens to a few hundred.
MAX_HEADER_FIELDS = 10_000

#: Deepest nesting of multiparts and encapsulated messages (message/rfc822,
#: message/global) that is parsed, counting the message itself as level 0.
#: A container at this depth is served as one opaque
#: ``APPLICATION/OCTET-STREAM`` leaf holding its whole body: BODYSTRUCTURE
#: stops there, its section number names those bytes (and ``.1`` under it
#: names the same leaf, as for any non-multipart part), BINARY returns
#: them unchanged, and SEARCH BODY/TEXT reads them as raw text.  Dovecot
#: also stops multipart nesting at 100.
MAX_MIME_DEPTH = 100

#: MIME entities (the message, every body part, every encapsulated
#: message) parsed in one message.  When the budget runs out inside a
#: multipart, its last parsed part extends to the end of that multipart's
#: body (so no byte becomes unreachable) and is served as an opaque leaf;
#: later part numbers do not exist.  Dovecot's limit is the same 10,000,
#: with the same "last part takes the rest".
MAX_MIME_PARTS = 10_000

#: Longest field value that the parsers' memo caches keep.  The caches
#: (address lists, Content-Type, Content-Disposition) hold up to 4096
#: entries each; with keys of up to :data:`MAX_FIELD_BYTES` that could be
#: a gigabyte kept for the life of the worker.  Longer values are parsed
#: each time instead -- they are rare and never the shared, repeated
#: values the caches exist for.
MAX_MEMO_TEXT = 1024
