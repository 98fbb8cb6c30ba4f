"""The password file format (design.md section 2) and change detection."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from asimap.auth.pwfile import (
    MalformedLine,
    PasswordEntry,
    PasswordFile,
    parse_line,
    parse_pwfile,
)

HASH = "pbkdf2_sha256$1000$salt$aGFzaA=="


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_parse_absolute_and_relative_maildir(tmp_path: Path) -> None:
    assert parse_line(f"alice:{HASH}:/var/mail/alice", tmp_path) == PasswordEntry(
        "alice", HASH, Path("/var/mail/alice")
    )
    assert parse_line(f"bob:{HASH}:mail/bob\n", tmp_path).maildir == (
        tmp_path / "mail" / "bob"
    )


def test_maildir_may_contain_colons(tmp_path: Path) -> None:
    assert parse_line(f"u:{HASH}:/m/a:b", tmp_path).maildir == Path("/m/a:b")


@pytest.mark.parametrize(
    "line",
    [
        "no colons at all",
        f"onlyuser:{HASH}",
        f":{HASH}:/m",
        "user::/m",
        f"user:{HASH}:",
        "user:has space:/m",
        f"tab\tuser:{HASH}:/m",
    ],
)
def test_malformed_lines(line: str, tmp_path: Path) -> None:
    with pytest.raises(MalformedLine):
        parse_line(line, tmp_path)


def test_parse_file_skips_comments_blank_and_bad_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines = [
        "# a comment",
        "",
        "   ",
        "  # indented comment",
        f"alice:{HASH}:alice",
        "garbage line",
        f"bob:{HASH}:/srv/bob",
        f"alice:{HASH}x:other",
    ]
    with caplog.at_level(logging.ERROR, logger="asimap.auth.pwfile"):
        entries = parse_pwfile(lines, tmp_path, "pw")
    assert set(entries) == {"alice", "bob"}
    assert entries["alice"].maildir == tmp_path / "alice"  # first line wins
    messages = [r.getMessage() for r in caplog.records]
    assert any("pw:6" in m for m in messages)
    assert any("pw:8" in m and "duplicate" in m for m in messages)
    # Hashes never appear in the log.
    assert not any(HASH in m for m in messages)


def test_invalid_utf8_line_spoils_only_itself(tmp_path: Path) -> None:
    path = tmp_path / "pwfile"
    path.write_bytes(b"\xff\xfe:bad\n" + f"ok:{HASH}:ok\n".encode())
    pwfile = PasswordFile(path)
    assert pwfile.lookup("ok") is not None


def test_reread_when_changed_at_most_once_per_interval(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "pwfile"
    path.write_text(f"alice:{HASH}:alice\n")
    pwfile = PasswordFile(path, check_interval=1.0, clock=clock)
    assert pwfile.lookup("alice") is not None
    assert pwfile.lookup("bob") is None
    generation = pwfile.generation

    path.write_text(f"alice:{HASH}:alice\nbob:{HASH}:bob\n")
    clock.now += 0.5
    assert pwfile.lookup("bob") is None  # not checked yet
    clock.now += 0.6
    assert pwfile.lookup("bob") is not None
    assert pwfile.generation == generation + 1

    clock.now += 2
    assert pwfile.lookup("bob") is not None
    assert pwfile.generation == generation + 1  # unchanged file: no reload


def test_change_detected_even_with_same_size_and_mtime(tmp_path: Path) -> None:
    """An atomic rename replaces the inode; same size and mtime must not hide it."""
    clock = FakeClock()
    path = tmp_path / "pwfile"
    path.write_text(f"alice:{HASH}:aaaa\n")
    stat = path.stat()
    pwfile = PasswordFile(path, clock=clock)
    assert pwfile.lookup("alice") is not None

    replacement = tmp_path / "new"
    replacement.write_text(f"alice:{HASH}:bbbb\n")
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    replacement.replace(path)
    clock.now += 1
    entry = pwfile.lookup("alice")
    assert entry is not None and entry.maildir == tmp_path / "bbbb"


def test_missing_file_then_created(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    path = tmp_path / "pwfile"
    pwfile = PasswordFile(path, clock=clock)
    with caplog.at_level(logging.ERROR, logger="asimap.auth.pwfile"):
        for _ in range(3):
            clock.now += 1
            assert pwfile.lookup("alice") is None
    assert len(caplog.records) == 1  # reported once, not per login

    path.write_text(f"alice:{HASH}:alice\n")
    clock.now += 1
    assert pwfile.lookup("alice") is not None

    path.unlink()
    clock.now += 1
    assert pwfile.lookup("alice") is None  # accounts forgotten


def test_relative_path_resolved_against_file_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "pwfile").write_text(f"alice:{HASH}:mail/alice\n")
    monkeypatch.chdir(tmp_path)
    pwfile = PasswordFile(Path("etc/pwfile"))
    monkeypatch.chdir("/")
    entry = pwfile.lookup("alice")
    assert entry is not None
    assert entry.maildir == tmp_path / "etc" / "mail" / "alice"
