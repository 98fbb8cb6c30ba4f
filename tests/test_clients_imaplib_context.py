"""RFC 5267 contexts over a real socket and TLS, driven by ``imaplib``.

No Python IMAP library knows CONTEXT=SEARCH, so the updating client sends
the commands raw (``imaplib``'s own ``send``/``readline`` on its TLS
connection) and reads every line in order; a second ``imaplib`` client
makes the changes with ordinary calls.
"""

from __future__ import annotations

import imaplib

from conftest import PASSWORD, SAMPLE_MESSAGE, USER, ServerThread, TlsFiles

TIMEOUT = 10.0


def _connect(server: ServerThread, tls_files: TlsFiles) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL(
        server.host,
        server.imaps_port,
        ssl_context=tls_files.client_context(),
        timeout=TIMEOUT,
    )
    assert client.login(USER, PASSWORD)[0] == "OK"
    return client


def _raw(client: imaplib.IMAP4_SSL, tag: str, command: str) -> list[bytes]:
    """Send ``tag command``; every line up to and including the tagged one."""
    client.send(f"{tag} {command}\r\n".encode())
    lines: list[bytes] = []
    while True:
        line = client.readline().rstrip(b"\r\n")
        lines.append(line)
        if line.startswith(f"{tag} ".encode()):
            return lines


def test_context_updates_over_tls(
    imap_server: ServerThread, tls_files: TlsFiles
) -> None:
    watcher, changer = (_connect(imap_server, tls_files) for _ in range(2))
    try:
        for _ in range(3):
            assert changer.append("INBOX", None, None, SAMPLE_MESSAGE)[0] == "OK"
        assert changer.select("INBOX") == ("OK", [b"3"])
        caps = {c.decode() for c in _capabilities(watcher)}
        assert {"ESORT", "CONTEXT=SEARCH", "CONTEXT=SORT"} <= caps
        assert _raw(watcher, "s", "SELECT INBOX")[-1].startswith(b"s OK")
        assert _raw(watcher, "B01", "UID SEARCH RETURN (UPDATE COUNT) FLAGGED") == [
            b'* ESEARCH (TAG "B01") UID COUNT 0',
            b"B01 OK Search completed",
        ]
        assert _raw(watcher, "C01", "SORT RETURN (UPDATE ALL) (ARRIVAL) UTF-8 ALL") == [
            b'* ESEARCH (TAG "C01") ALL 1:3',
            b"C01 OK Sort completed",
        ]
        changer.store("2", "+FLAGS", r"(\Flagged \Deleted)")
        changer.expunge()
        lines = _raw(watcher, "n", "NOOP")
        # REMOVEFROM names message 2 before the EXPUNGE renumbers it.
        assert lines == [
            b'* ESEARCH (TAG "C01") REMOVEFROM (2 2)',
            b"* 2 EXPUNGE",
            b"n OK NOOP completed",
        ]
        assert changer.append("INBOX", r"(\Flagged)", None, SAMPLE_MESSAGE)[0] == "OK"
        lines = _raw(watcher, "n2", "NOOP")
        assert lines[0] == b"* 3 EXISTS"
        assert b'* ESEARCH (TAG "B01") UID ADDTO (0 4)' in lines[1:]
        assert b'* ESEARCH (TAG "C01") ADDTO (3 3)' in lines[1:]
        assert _raw(watcher, "x", 'CANCELUPDATE "B01" "C01"') == [
            b"x OK No further updates"
        ]
        changer.store("1", "+FLAGS", r"(\Flagged)")
        assert _raw(watcher, "n3", "NOOP") == [
            b"* 1 FETCH (FLAGS (\\Flagged))",
            b"n3 OK NOOP completed",
        ]
        assert watcher.logout()[0] == "BYE"
    finally:
        changer.logout()


def _capabilities(client: imaplib.IMAP4_SSL) -> list[bytes]:
    typ, data = client.capability()
    assert typ == "OK"
    return data[0].split() if data and isinstance(data[0], bytes) else []
