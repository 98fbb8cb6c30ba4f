"""POP3 (RFC 1939) with CAPA (RFC 2449), STLS (RFC 2595), AUTH (RFC 5034)
and response codes (RFC 2449, RFC 3206).

Layers, as on the IMAP side: :mod:`.reader` (bytes -> lines, bounded),
:mod:`.commands` (line -> typed command), :mod:`.responses` and
:mod:`.transfer` (typed answers and message bytes -> wire bytes), the
session (:mod:`.session` with its handler modules and the :mod:`.maildrop`
snapshot), and :mod:`.driver`, the only module that touches a socket.
"""
