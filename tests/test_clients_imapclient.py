"""The server driven by IMAPClient (a widely used third-party client)."""

from __future__ import annotations

from imapclient import IMAPClient

from conftest import PASSWORD, SAMPLE_MESSAGE, USER, ServerThread, TlsFiles


def test_imapclient_flow_over_imaps(
    imap_server: ServerThread, tls_files: TlsFiles
) -> None:
    with IMAPClient(
        imap_server.host,
        port=imap_server.imaps_port,
        ssl=True,
        ssl_context=tls_files.client_context(),
        timeout=10,
    ) as client:
        client.login(USER, PASSWORD)
        assert b"IMAP4REV1" in client.capabilities()
        client.create_folder("Projects/asimap")
        folders = {name for _flags, _delim, name in client.list_folders()}
        assert {"INBOX", "Projects/asimap"} <= folders
        client.append("Projects/asimap", SAMPLE_MESSAGE, flags=[b"$Important"])
        info = client.select_folder("Projects/asimap")
        assert info[b"EXISTS"] == 1
        uids = client.search(["ALL"])
        assert len(uids) == 1
        fetched = client.fetch(uids, ["RFC822", "FLAGS", "ENVELOPE"])[uids[0]]
        assert fetched[b"RFC822"] == SAMPLE_MESSAGE
        assert b"$Important" in fetched[b"FLAGS"]
        assert fetched[b"ENVELOPE"].subject == b"asimap client test"
        client.add_flags(uids, [b"\\Seen"])
        assert client.search(["SEEN"]) == uids
        client.move(uids, "INBOX")
        assert client.search(["ALL"]) == []
        client.select_folder("INBOX")
        assert len(client.search(["SUBJECT", "client test"])) == 1
        client.delete_messages(client.search(["ALL"]))
        client.expunge()
        assert client.search(["ALL"]) == []


def test_imapclient_starttls(imap_server: ServerThread, tls_files: TlsFiles) -> None:
    client = IMAPClient(
        imap_server.host, port=imap_server.imap_port, ssl=False, timeout=10
    )
    assert b"LOGINDISABLED" in client.capabilities()
    client.starttls(tls_files.client_context())
    client.login(USER, PASSWORD)
    assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == 0
    client.logout()
