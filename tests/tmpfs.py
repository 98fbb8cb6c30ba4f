"""A small tmpfs as a mail root, so that tests can fill a file system.

Only root may mount; locally a test without it is skipped, under ``CI``
(set to anything) it fails, as a missing tool does (``require_tool``).
The file system is always unmounted when the test ends (lazily if a
process still holds a file there), whatever happened.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"a tmpfs is required under CI: {reason}")
    pytest.skip(f"no tmpfs: {reason}")


@contextlib.contextmanager
def tmpfs(directory: Path, size: str, owner: int | None = None) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` (``mount -o size=``) on ``directory``,
    mode 700, owned by ``owner`` (a uid, also the gid) when given."""
    if os.geteuid() != 0:
        _unavailable("mounting needs root")
    directory.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", directory],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        _unavailable(done.stderr.strip() or f"mount exited {done.returncode}")
    try:
        if owner is not None:
            os.chown(directory, owner, owner)
        yield directory
    finally:
        if subprocess.run(["umount", directory], check=False, timeout=30).returncode:
            subprocess.run(["umount", "-l", directory], check=False, timeout=30)


def fill(directory: Path, name: str = ".test-filler") -> Path:
    """Take every byte still free under ``directory`` with a file of root's
    (a tmpfs's size limit applies to root too); returns the file, whose
    removal gives the room back."""
    filler = directory / name
    chunk = bytes(4096)
    with open(filler, "wb", buffering=0) as handle:
        while True:
            try:
                handle.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
    # A last partial page, to the last byte.
    with open(filler, "ab", buffering=0) as handle:
        for size in (1024, 256, 64, 16, 1):
            with contextlib.suppress(OSError):
                while True:
                    handle.write(bytes(size))
    return filler


def free_bytes(directory: Path) -> int:
    stat = os.statvfs(directory)
    return stat.f_bavail * stat.f_frsize
