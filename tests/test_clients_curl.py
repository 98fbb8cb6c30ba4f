"""The server driven by curl's IMAP client (Debian's curl, over IMAPS)."""

from __future__ import annotations

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


def _curl(server: ServerThread, tls_files: TlsFiles, path: str, *args: str) -> str:
    curl = require_tool("curl")
    url = f"imaps://{server.host}:{server.imaps_port}/{path}"
    result = subprocess.run(
        [
            curl,
            "-sS",
            "--max-time",
            "20",
            "--cacert",
            str(tls_files.cert),
            "-u",
            f"{USER}:{PASSWORD}",
            url,
            *args,
        ],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout.decode(errors="replace")


def test_curl_append_list_search_fetch(
    imap_server: ServerThread, tls_files: TlsFiles, tmp_path: Path
) -> None:
    message = tmp_path / "message.eml"
    message.write_bytes(SAMPLE_MESSAGE)
    _curl(imap_server, tls_files, "INBOX", "-T", str(message))
    _curl(imap_server, tls_files, "INBOX", "-T", str(message))
    listing = _curl(imap_server, tls_files, "")
    assert '"INBOX"' in listing or " INBOX" in listing
    assert "Sent Messages" in listing
    assert _curl(imap_server, tls_files, "INBOX", "-X", "UID SEARCH ALL").strip() == (
        "* SEARCH 1 2"
    )
    body = _curl(imap_server, tls_files, "INBOX;UID=2")
    assert body.encode() == SAMPLE_MESSAGE
    examine = _curl(imap_server, tls_files, "", "-X", "EXAMINE INBOX")
    assert "2 EXISTS" in examine
