"""Property tests (hypothesis) for what the fuzz targets cannot check from
bytes alone: values we *write* read back the same, by our parser and by
the tools that share the files.

* ``.mh_sequences``: any sequences we write, through the store's own
  atomic write, parse back to the same sequences, and nmh's ``mark -list``
  reads the same numbers.
* MIME-like messages (fragments that reach boundaries, encapsulation and
  transfer encodings, which random bytes rarely do): the message target's
  checks, ENVELOPE/BODY/BODYSTRUCTURE under the strict grammar included.
* POP3: every well-formed command line parses to the command it spells.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asimap.pop3 import commands as pop3
from asimap.store.mh import seqfile, sequences
from conftest import require_tool
from fuzz import targets
from test_message_robust import _FRAGMENTS

_names = st.one_of(
    st.sampled_from(["unseen", "Seen", "flagged", "replied", "Deleted", "Recent"]),
    st.from_regex(r"[A-Za-z$][A-Za-z0-9$_.\-]{0,10}", fullmatch=True),
)
_numbers = st.sets(st.integers(min_value=1, max_value=3000), max_size=40)
_sequences = st.dictionaries(_names, _numbers, max_size=6)


@settings(max_examples=150, deadline=None)
@given(_sequences)
def test_written_sequences_read_back(wanted: dict[str, set[int]]) -> None:
    text = sequences.format_file(wanted, {})
    parsed = sequences.parse(text)
    assert parsed.sequences == {n: s for n, s in wanted.items() if s}
    assert sequences.format_file(parsed.sequences, {}) == text


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(wanted=_sequences)
def test_written_sequences_read_back_from_disk(
    tmp_path: Path, wanted: dict[str, set[int]]
) -> None:
    folder = tmp_path / "f"
    folder.mkdir(exist_ok=True)
    seqfile.write_atomically(folder, sequences.format_file(wanted, {}))
    parsed = sequences.parse(seqfile.read_text(folder))
    assert parsed.sequences == {n: s for n, s in wanted.items() if s}


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    wanted=st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True),
        st.sets(st.integers(min_value=1, max_value=30), min_size=1, max_size=12),
        min_size=1,
        max_size=3,
    )
)
def test_nmh_reads_what_we_write(tmp_path: Path, wanted: dict[str, set[int]]) -> None:
    mark = require_tool("/usr/bin/mh/mark")
    root = tmp_path / "Mail"
    folder = root / "f"
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(1, 31):
        (folder / str(number)).write_bytes(b"Subject: %d\n\nbody\n" % number)
    profile = tmp_path / "mh_profile"
    profile.write_text(f"Path: {root}\n")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "MH": str(profile),
        "HOME": str(tmp_path),
    }
    seqfile.write_atomically(folder, sequences.format_file(wanted, {}))
    for name, numbers in wanted.items():
        done = subprocess.run(
            [mark, "+f", "-list", "-sequence", name],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        listed = sequences.parse(done.stdout.replace(" (private)", ""))
        assert listed.sequences.get(name) == numbers, done.stdout


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=40))
def test_mime_like_messages_pass_the_message_target(fragments: list[bytes]) -> None:
    targets.message(b"".join(fragments))


_msg = st.integers(min_value=1, max_value=9_999_999_999)
_word = st.binary(min_size=1, max_size=20).filter(
    lambda w: b" " not in w and b"\n" not in w and b"\r" not in w and b"\0" not in w
)
_COMMANDS = st.one_of(
    _word.map(lambda w: (b"USER " + w, pop3.User(w))),
    _word.map(lambda w: (b"PASS " + w + b" x", pop3.Pass(w + b" x"))),
    _msg.map(lambda n: (b"RETR %d" % n, pop3.Retr(n))),
    _msg.map(lambda n: (b"dele %d" % n, pop3.Dele(n))),
    _msg.map(lambda n: (b"LIST %d" % n, pop3.List(n))),
    _msg.map(lambda n: (b"UIDL %d " % n, pop3.Uidl(n))),
    st.tuples(_msg, st.integers(0, 9_999_999_999)).map(
        lambda t: (b"TOP %d %d" % t, pop3.Top(*t))
    ),
    st.sampled_from(
        [
            (b"STAT", pop3.Stat()),
            (b"list", pop3.List(None)),
            (b"CAPA", pop3.Capa()),
            (b"QUIT", pop3.Quit()),
            (b"AUTH", pop3.Auth(None)),
            (b"auth plain =", pop3.Auth("PLAIN", b"=")),
        ]
    ),
)


@settings(max_examples=300, deadline=None)
@given(_COMMANDS)
def test_pop3_commands_parse_to_what_they_spell(case: tuple[bytes, object]) -> None:
    line, command = case
    assert pop3.parse_line(line) == command
    targets.pop3_command(b"\x00\x40" + line + b"\r\n")


def test_the_message_target_rejects_invalid_syntax(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The target can fail: an ENVELOPE with a spaced address list is
    refused by its grammar checker."""
    from asimap.message import model

    monkeypatch.setattr(
        model.Message,
        "envelope",
        lambda self: (
            [None] * 2
            + [[(None, None, b"a", b"b"), (None, None, b"c", b"d")]]
            + [None] * 7
        ),
    )
    with pytest.raises(ValueError, match="expected"):
        targets.message(b"From: a@b\r\n\r\n")
