"""An existing nmh folder keeps what its user read (issue 10 point 11).

nmh users read with ``show``, which takes a message out of the unseen
sequence and never writes a ``Seen`` sequence.  nmh and asimap 2.x agree
that a message not in ``unseen`` is seen; the first time asimap serves
the folder it must say the same over IMAP -- whether or not the folder has
a ``Seen`` sequence -- and it must leave ``.mh_sequences`` exactly as nmh
left it (a login is not a change).  Real nmh, a real server, a real IMAP
conversation.
"""

from __future__ import annotations

import re
from pathlib import Path

from conftest import PASSWORD, USER, ServerFactory, TlsFiles
from test_mh_live_imap import RawClient, inc, make_nmh, message

_FLAGS = re.compile(rb"\* \d+ FETCH \(UID (\d+) FLAGS \(([^)]*)\)\)")


def _flags_by_uid(client: RawClient) -> dict[int, set[str]]:
    untagged, _ = client.command("UID FETCH 1:* (UID FLAGS)")
    found: dict[int, set[str]] = {}
    for line in untagged:
        match = _FLAGS.fullmatch(line)
        assert match, line
        found[int(match.group(1))] = set(match.group(2).decode().split())
    return found


def test_first_login_keeps_what_nmh_users_read(
    tmp_path: Path, tls_files: TlsFiles, server_factory: ServerFactory
) -> None:
    from asimap.auth.hashers import make_password

    root = tmp_path / "Mail"
    nmh = make_nmh(tmp_path, root)
    root.mkdir()
    nmh("folder", "-create", "+inbox")
    nmh("folder", "-create", "+archive")
    inc(nmh, tmp_path, [message(f"in{n}") for n in range(1, 7)])
    inc(nmh, tmp_path, [message(f"ar{n}") for n in range(1, 6)], folder="archive")
    # Read the nmh way: show (leaves unseen, writes no Seen) and mark.
    nmh("show", "+inbox", "2", "-showproc", "/bin/true")
    nmh("mark", "+inbox", "4", "-sequence", "unseen", "-delete")
    nmh("show", "+archive", "1", "-showproc", "/bin/true")
    nmh("mark", "+archive", "3-4", "-sequence", "unseen", "-delete")
    # The archive also has a Seen sequence (as asimap 2.x leaves one) that
    # lists only some of what is read, and one message in both.
    nmh("mark", "+archive", "1", "-sequence", "Seen", "-add")
    nmh("mark", "+archive", "5", "-sequence", "Seen", "-add")
    files = {name: root / name / ".mh_sequences" for name in ("inbox", "archive")}
    before = {name: path.read_bytes() for name, path in files.items()}
    assert b"Seen" not in before["inbox"]

    pwfile = tmp_path / "pwfile"
    pwfile.write_text(f"{USER}:{make_password(PASSWORD, iterations=1000)}:Mail\n")
    server = server_factory(pwfile=pwfile, store="mh")
    client = RawClient.connect(server, tls_files)
    try:
        client.command(f"LOGIN {USER} {PASSWORD}")
        client.command('LIST "" "*"')
        client.command("STATUS archive (MESSAGES UNSEEN)")
        untagged, _ = client.command("SELECT INBOX")
        inbox = _flags_by_uid(client)
        client.command("SELECT archive")
        archive = _flags_by_uid(client)
        client.command("LOGOUT")
    finally:
        client.close()

    assert b"[UNSEEN 1]" in b"".join(untagged)
    seen = {uid for uid, flags in inbox.items() if "\\Seen" in flags}
    assert len(inbox) == 6 and seen == {2, 4}
    seen = {uid for uid, flags in archive.items() if "\\Seen" in flags}
    # 5 is in Seen *and* unseen: nmh says unseen, so do we.
    assert len(archive) == 5 and seen == {1, 3, 4}
    assert all("\\Recent" not in flags for flags in [*inbox.values()])
    # The login changed nothing nmh sees.
    assert {name: path.read_bytes() for name, path in files.items()} == before
    assert nmh("mark", "+inbox", "-list", "-sequence", "unseen").split() == [
        "unseen:",
        "1",
        "3",
        "5-6",
    ]
