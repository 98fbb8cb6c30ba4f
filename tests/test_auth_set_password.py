"""asimapd_set_password, in-process and as a real subprocess."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pytest

from asimap.auth import hashers, set_password
from asimap.auth.pwfile import PasswordFile, read_lines
from asimap.auth.set_password import (
    SetPasswordError,
    main,
    update_account,
    updated_lines,
)

EXISTING = (
    "# asimap accounts\n"
    "\n"
    "alice:md5$salt$0123:mail/alice\n"
    "this line is broken\n"
    "bob:md5$salt$4567:/srv/bob\n"
    "   # indented comment\n"
)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # .env is read from the current directory; PWFILE may be set outside.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PWFILE", raising=False)


@pytest.fixture
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process runs hash with few iterations to stay fast; the
    subprocess tests use the real default."""

    original = hashers.make_password

    def make_password(password: str, iterations: int = 1000) -> str:
        return original(password, iterations=1000)

    monkeypatch.setattr(hashers, "make_password", make_password)


def _hash_of(pwfile: Path, user: str) -> str:
    for line in read_lines(pwfile):
        if line.startswith(f"{user}:"):
            return line.split(":", 2)[1]
    raise AssertionError(f"{user} not in {pwfile}")


def test_updated_lines_replaces_only_the_users_line() -> None:
    lines = EXISTING.splitlines(keepends=True)
    new, update = updated_lines(lines, "alice", "pbkdf2_sha256$1$s$h", None)
    assert not update.created and update.maildir == "mail/alice"
    assert new[2] == "alice:pbkdf2_sha256$1$s$h:mail/alice\n"
    assert new[:2] + new[3:] == lines[:2] + lines[3:]


def test_updated_lines_appends_new_user_after_missing_newline() -> None:
    new, update = updated_lines(["# c\n", "bob:h:/b"], "carol", "h2", None)
    assert update.created and update.maildir == "carol"
    assert new == ["# c\n", "bob:h:/b\n", "carol:h2:carol\n"]


def test_updated_lines_explicit_maildir() -> None:
    new, update = updated_lines(["bob:h:/b\n"], "bob", "h2", "/new/bob")
    assert new == ["bob:h2:/new/bob\n"] and update.maildir == "/new/bob"


def test_update_account_creates_file_0600(tmp_path: Path) -> None:
    pwfile = tmp_path / "pwfile"
    assert update_account(pwfile, "alice", "h1", None).created
    assert pwfile.read_text() == "alice:h1:alice\n"
    assert stat.S_IMODE(pwfile.stat().st_mode) == 0o600


def test_update_account_keeps_everything_else_and_mode(tmp_path: Path) -> None:
    pwfile = tmp_path / "pwfile"
    pwfile.write_text(EXISTING)
    pwfile.chmod(0o640)
    inode = pwfile.stat().st_ino
    update_account(pwfile, "bob", "newhash", None)
    assert pwfile.read_text() == EXISTING.replace("md5$salt$4567", "newhash")
    assert stat.S_IMODE(pwfile.stat().st_mode) == 0o640
    assert pwfile.stat().st_ino != inode  # replaced by rename, not rewritten
    leftovers = {p.name for p in tmp_path.iterdir()} - {"pwfile", ".pwfile.lock"}
    assert leftovers == set()


@pytest.mark.parametrize(
    ("user", "maildir"),
    [("a:b", None), ("", None), ("tab\tuser", None), ("ok", ""), ("ok", "a\nb")],
)
def test_update_account_refuses_bad_input(
    tmp_path: Path, user: str, maildir: str | None
) -> None:
    pwfile = tmp_path / "pwfile"
    with pytest.raises(SetPasswordError):
        update_account(pwfile, user, "h", maildir)
    assert not pwfile.exists()


def _update_in_child(args: tuple[str, str]) -> bool:
    pwfile, user = args
    return update_account(Path(pwfile), user, "h-" + user, None).created


def test_concurrent_updates_lose_nothing(tmp_path: Path) -> None:
    pwfile = tmp_path / "pwfile"
    users = [f"user{i}" for i in range(24)]
    with ProcessPoolExecutor(max_workers=6, mp_context=get_context("fork")) as pool:
        assert all(pool.map(_update_in_child, [(str(pwfile), u) for u in users]))
    assert sorted(line.split(":")[0] for line in read_lines(pwfile)) == sorted(users)


def test_main_with_password_and_maildir(tmp_path: Path, cheap_hashing: None) -> None:
    pwfile = tmp_path / "pwfile"
    pwfile.write_text(EXISTING)
    assert main([f"--pwfile={pwfile}", "alice", "s3cret", "/var/mail/a"]) == 0
    assert hashers.verify_password("s3cret", _hash_of(pwfile, "alice"))
    assert "alice:" in pwfile.read_text() and ":/var/mail/a\n" in pwfile.read_text()
    # Only the password this time: the maildir stays.
    assert main([f"--pwfile={pwfile}", "alice", "other"]) == 0
    entry = PasswordFile(pwfile).lookup("alice")
    assert entry is not None and entry.maildir == Path("/var/mail/a")
    assert hashers.verify_password("other", entry.password_hash)


def test_main_pwfile_from_env_and_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cheap_hashing: None
) -> None:
    dotenv_file, env_file = tmp_path / "from_dotenv", tmp_path / "from_env"
    (tmp_path / ".env").write_text(f"PWFILE={dotenv_file}\n")
    assert main(["u1", "pw"]) == 0
    assert dotenv_file.exists()
    monkeypatch.setenv("PWFILE", str(env_file))
    assert main(["u2", "pw"]) == 0
    assert env_file.exists() and "u2:" not in dotenv_file.read_text()


def test_main_prompts_twice_on_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cheap_hashing: None
) -> None:
    pwfile = tmp_path / "pwfile"
    answers = iter(["typed-pw", "typed-pw"])
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(set_password.getpass, "getpass", lambda prompt: next(answers))
    assert main([f"--pwfile={pwfile}", "alice"]) == 0
    assert hashers.verify_password("typed-pw", _hash_of(pwfile, "alice"))


def test_main_prompt_mismatch_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pwfile = tmp_path / "pwfile"
    pwfile.write_text(EXISTING)
    answers = iter(["one", "two"])
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(set_password.getpass, "getpass", lambda prompt: next(answers))
    assert main([f"--pwfile={pwfile}", "alice"]) == 1
    assert "do not match" in capsys.readouterr().err
    assert pwfile.read_text() == EXISTING


def test_main_empty_prompt_sets_unusable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pwfile = tmp_path / "pwfile"
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(set_password.getpass, "getpass", lambda prompt: "")
    assert main([f"--pwfile={pwfile}", "alice"]) == 0
    assert not hashers.is_usable(_hash_of(pwfile, "alice"))


def test_main_missing_directory_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cheap_hashing: None
) -> None:
    assert main([f"--pwfile={tmp_path / 'no' / 'pwfile'}", "u", "p"]) == 1
    assert "does not exist" in capsys.readouterr().err


def _run(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asimap.auth.set_password", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        env={"PATH": os.environ.get("PATH", ""), **(env or {})},
    )


def test_subprocess_sets_a_password_the_server_accepts(tmp_path: Path) -> None:
    pwfile = tmp_path / "pwfile"
    pwfile.write_text(EXISTING)
    done = _run([f"--pwfile={pwfile}", "carol", "c-pass"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "created" in done.stdout
    encoded = _hash_of(pwfile, "carol")
    assert encoded.startswith(f"pbkdf2_sha256${hashers.DEFAULT_PBKDF2_ITERATIONS}$")
    assert hashers.verify_password("c-pass", encoded)
    entry = PasswordFile(pwfile).lookup("carol")
    assert entry is not None and entry.maildir == tmp_path / "carol"
    assert pwfile.read_text().startswith(EXISTING)


def test_subprocess_without_terminal_sets_unusable_password(tmp_path: Path) -> None:
    done = _run(["bob"], tmp_path, env={"PWFILE": str(tmp_path / "pw")})
    assert done.returncode == 0, done.stderr
    assert "unusable" in done.stdout
    encoded = _hash_of(tmp_path / "pw", "bob")
    assert encoded.startswith("!") and not hashers.verify_password("", encoded)


def test_subprocess_usage_error(tmp_path: Path) -> None:
    done = _run([], tmp_path)
    assert done.returncode == 2
    assert "usage" in done.stderr
