"""Python's ``imaplib`` and ``poplib`` against ``asimapd`` in worker mode.

The same conversations as ``test_clients_imaplib`` and ``test_pop3_poplib``
run in-process; here every logged-in connection is served by the user's
worker process through the TLS relay, on the MH store, as in production.
"""

from __future__ import annotations

import imaplib
import poplib
from collections.abc import Iterator

import pytest

from conftest import SAMPLE_MESSAGE, TlsFiles
from worker_harness import Asimapd, running_with_pop3

TIMEOUT = 15.0


@pytest.fixture
def server(tls_files: TlsFiles) -> Iterator[Asimapd]:
    with running_with_pop3(tls_files.cert, tls_files.key) as daemon:
        yield daemon


def imaps(server: Asimapd) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL(
        "127.0.0.1",
        server.ports["imaps"],
        ssl_context=server.client_context(),
        timeout=TIMEOUT,
    )
    client.login("demo", "demo")
    return client


def test_imaplib_session_append_fetch_store_search_expunge(server: Asimapd) -> None:
    client = imaps(server)
    assert client.select("INBOX") == ("OK", [b"0"])
    typ, data = client.append("INBOX", r"(\Flagged)", None, SAMPLE_MESSAGE)
    assert typ == "OK", data
    assert client.select("INBOX") == ("OK", [b"1"])
    typ, data = client.fetch("1", "(FLAGS RFC822.SIZE BODY.PEEK[])")
    assert typ == "OK"
    meta, body = data[0]  # type: ignore[misc]
    assert body == SAMPLE_MESSAGE
    assert b"\\Flagged" in meta
    assert f"RFC822.SIZE {len(SAMPLE_MESSAGE)}".encode() in meta
    assert client.store("1", "+FLAGS", r"(\Seen)")[0] == "OK"
    assert client.search(None, "SEEN") == ("OK", [b"1"])
    assert client.search(None, "SUBJECT", '"client test"') == ("OK", [b"1"])
    client.store("1", "+FLAGS", r"(\Deleted)")
    assert client.expunge() == ("OK", [b"1"])
    assert client.search(None, "ALL") == ("OK", [b""])
    assert client.logout()[0] == "BYE"


def test_imaplib_starttls_then_login_is_relayed(server: Asimapd) -> None:
    client = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=TIMEOUT)
    client.starttls(server.client_context())
    assert client.login("demo", "demo")[0] == "OK"
    assert client.select("INBOX")[0] == "OK"
    assert client.logout()[0] == "BYE"


def test_poplib_session_and_imap_sees_the_deletion(server: Asimapd) -> None:
    messages = [SAMPLE_MESSAGE.replace(b"client test", b"pop %d" % n) for n in (1, 2)]
    imap = imaps(server)
    for raw in messages:
        assert imap.append("INBOX", "", None, raw)[0] == "OK"
    imap.select("INBOX")
    pop = poplib.POP3_SSL(
        "127.0.0.1",
        server.ports["pop3s"],
        context=server.client_context(),
        timeout=TIMEOUT,
    )
    assert pop.getwelcome() == b"+OK asimap POP3 ready"
    pop.user("demo")
    pop.pass_("demo")
    assert pop.stat() == (2, sum(map(len, messages)))
    _resp, uidl, _octets = pop.uidl()
    assert len(uidl) == 2
    _resp, lines, _octets = pop.retr(2)
    assert b"\r\n".join(lines) + b"\r\n" == messages[1]
    _resp, top, _octets = pop.top(1, 0)
    assert any(line.startswith(b"Subject: asimap pop 1") for line in top)
    pop.dele(1)
    assert pop.quit().startswith(b"+OK")
    # The IMAP client of the same user, in the same worker, is told.
    typ, _data = imap.noop()
    assert typ == "OK"
    assert imap.untagged_responses.get("EXPUNGE") == [b"1"]
    assert imap.search(None, "ALL") == ("OK", [b"1"])
    imap.logout()


def test_poplib_stls_then_login(server: Asimapd) -> None:
    pop = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=TIMEOUT)
    pop.stls(server.client_context())
    pop.user("demo")
    pop.pass_("demo")
    assert pop.stat() == (0, 0)
    assert pop.quit().startswith(b"+OK")
