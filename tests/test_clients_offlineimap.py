"""offlineimap (Debian's offlineimap3) mirrors every folder of an MH account.

The same seeded server and comparisons as the mbsync test: a one-shot sync
into a local Maildir, changes on both sides, a second sync, and both sides
must agree (folders, messages, flags, content).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import PASSWORD, USER, require_tool
from test_clients_mbsync import (
    SYNC_TIMEOUT,
    Synced,
    assert_agree,
    assert_changes_synced,
    change_both_sides,
    expected_seed,
    flags_of,
    local_state,
    server_state,
    synced,
)

__all__ = ["synced"]  # the fixture, imported so pytest finds it here


def offlineimap_config(synced: Synced, local: Path) -> Path:
    """A one-account configuration; ``sep = /`` nests local folders as
    directories like the server's ``/`` hierarchy (offlineimap.conf)."""
    config = synced.tmp / "offlineimaprc"
    config.write_text(
        f"[general]\n"
        f"accounts = A\n"
        f"metadata = {synced.tmp / 'offlineimap-meta'}\n"
        f"\n"
        f"[Account A]\n"
        f"localrepository = Local\n"
        f"remoterepository = Remote\n"
        f"\n"
        f"[Repository Local]\n"
        f"type = Maildir\n"
        f"localfolders = {local}\n"
        f"sep = /\n"
        f"\n"
        f"[Repository Remote]\n"
        f"type = IMAP\n"
        f"remotehost = localhost\n"
        f"remoteport = {synced.server.imaps_port}\n"
        f"remoteuser = {USER}\n"
        f"remotepass = {PASSWORD}\n"
        f"ssl = yes\n"
        f"sslcacertfile = {synced.tls.cert}\n"
        f"timeout = 20\n"
        f"maxconnections = 1\n"
    )
    return config


def run_offlineimap(config: Path, home: Path) -> str:
    offlineimap = require_tool("offlineimap")
    result = subprocess.run(
        [offlineimap, "-o", "-u", "basic", "-c", str(config)],
        capture_output=True,
        timeout=SYNC_TIMEOUT,
        check=False,
        stdin=subprocess.DEVNULL,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
    )
    output = (result.stdout + result.stderr).decode(errors="replace")
    assert result.returncode == 0, output[-4000:]
    # offlineimap exits 0 after some per-folder errors; they must not happen.
    assert "ERROR" not in output, output[-4000:]
    return output


def test_offlineimap_mirrors_every_folder_and_converges_after_changes(
    synced: Synced,
) -> None:
    require_tool("offlineimap")
    local = synced.tmp / "maildir"
    local.mkdir()
    config = offlineimap_config(synced, local)
    run_offlineimap(config, synced.tmp)

    server = server_state(synced.server, synced.tls)
    for folder, flags in expected_seed().items():
        assert flags_of(server)[folder] == flags
    assert_agree(server, local_state(local))

    change_both_sides(synced, local)
    run_offlineimap(config, synced.tmp)
    assert_changes_synced(synced, local)
