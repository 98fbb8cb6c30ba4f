"""OBJECTID (RFC 8474) and SAVEDATE (RFC 8514) through a real client over
real sockets and TLS, on the MH store, across a server restart."""

from __future__ import annotations

from typing import Any

from imapclient import IMAPClient

from asimap.store.objectid import emailid_of, is_objectid
from conftest import PASSWORD, USER, ServerFactory, ServerThread, TlsFiles
from store_conformance_objectid import OTHER, REPLY, ROOT


def _connect(server: ServerThread, tls_files: TlsFiles) -> IMAPClient:
    client = IMAPClient(
        server.host,
        port=server.imaps_port,
        ssl=True,
        ssl_context=tls_files.client_context(),
        timeout=10,
    )
    client.login(USER, PASSWORD)
    return client


def _ids(client: IMAPClient, folder: str) -> dict[int, tuple[Any, Any, Any]]:
    client.select_folder(folder)
    uids = client.search(["ALL"])
    fetched = client.fetch(uids, ["EMAILID", "THREADID", "SAVEDATE"])
    return {
        uid: (data[b"EMAILID"], data[b"THREADID"], data[b"SAVEDATE"])
        for uid, data in fetched.items()
    }


def test_ids_over_the_wire_and_across_restart(
    server_factory: ServerFactory, tls_files: TlsFiles
) -> None:
    server = server_factory(store="mh")
    with _connect(server, tls_files) as client:
        caps = client.capabilities()
        assert b"OBJECTID" in caps and b"SAVEDATE" in caps
        client.create_folder("Threads")
        for raw in (ROOT, REPLY, OTHER):
            client.append("INBOX", raw)
        inbox = _ids(client, "INBOX")
        (root_id,), (root_thread,), _ = inbox[1]
        assert root_id.decode() == emailid_of(ROOT)
        assert inbox[2][1] == inbox[1][1] != inbox[3][1]  # one thread, another
        assert all(saved is not None for _, _, saved in inbox.values())
        found = client.search(["THREADID", root_thread.decode()])
        assert found == [1, 2]
        assert client.search(["EMAILID", root_id.decode()]) == [1]
        client.move([1, 2], "Threads")
        status = client.folder_status("Threads", ["MAILBOXID", "MESSAGES"])
        (mailboxid,) = status[b"MAILBOXID"]
        assert is_objectid(mailboxid.decode()) and status[b"MESSAGES"] == 2
        moved = _ids(client, "Threads")
        # EMAILID and THREADID travel with MOVE (RFC 8474 section 5).
        assert [v[:2] for v in moved.values()] == [inbox[1][:2], inbox[2][:2]]
    server.stop()

    again = server_factory(store="mh")
    with _connect(again, tls_files) as client:
        status = client.folder_status("Threads", ["MAILBOXID"])
        assert status[b"MAILBOXID"] == (mailboxid,)
        assert _ids(client, "Threads") == moved
