"""mutt (Debian's) opens the IMAPS INBOX, flags a message, syncs and quits.

mutt needs a terminal, so it runs under ``script`` (util-linux) which gives
it a pseudo-terminal; ``push`` feeds the keystrokes.
"""

from __future__ import annotations

import imaplib
import os
import subprocess
from pathlib import Path

from conftest import (
    PASSWORD,
    SAMPLE_MESSAGE,
    USER,
    ServerThread,
    TlsFiles,
    require_tool,
)


def test_mutt_opens_inbox_and_quits(
    imap_server: ServerThread, tls_files: TlsFiles, tmp_path: Path
) -> None:
    mutt = require_tool("mutt")
    script = require_tool("script")
    # Something to show in the index.
    with imaplib.IMAP4_SSL(
        imap_server.host, imap_server.imaps_port, ssl_context=tls_files.client_context()
    ) as client:
        client.login(USER, PASSWORD)
        client.append("INBOX", None, None, SAMPLE_MESSAGE)
    config = tmp_path / "muttrc"
    config.write_text(
        f"set folder=imaps://{USER}@{imap_server.host}:{imap_server.imaps_port}/\n"
        f"set spoolfile=+INBOX\n"
        f"set imap_pass={PASSWORD}\n"
        f"set ssl_ca_certificates_file={tls_files.cert}\n"
        "set ssl_verify_host=yes\n"
        "set certificate_file=/dev/null\n"
        "set header_cache=\n"
        "set message_cachedir=\n"
        "set imap_passive=no\n"
        "set timeout=5\n"
        "set mail_check=60\n"
        "unset imap_idle\n"
        "set sort=date\n"
        "set quit=yes\n"
    )
    # Flag the message and sync: the server then holds mutt's change.
    command = f"{mutt} -n -F {config} -e 'push <flag-message><sync-mailbox><quit>'"
    env = dict(os.environ, TERM="xterm", HOME=str(tmp_path), COLUMNS="120", LINES="40")
    result = subprocess.run(
        [script, "-qec", command, "/dev/null"],
        capture_output=True,
        timeout=60,
        env=env,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    output = result.stdout.decode(errors="replace")
    assert result.returncode == 0, output[-2000:]
    assert imap_server.authenticator is not None
    assert (USER, True) in imap_server.authenticator.attempts
    assert "Selecting INBOX" in output, output[-2000:]
    with imaplib.IMAP4_SSL(
        imap_server.host, imap_server.imaps_port, ssl_context=tls_files.client_context()
    ) as client:
        client.login(USER, PASSWORD)
        client.select("INBOX", readonly=True)
        typ, data = client.fetch("1", "(FLAGS)")
    assert typ == "OK" and b"\\Flagged" in data[0], data  # type: ignore[operator]
