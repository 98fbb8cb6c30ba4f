"""Per-user trace files (worker mode) and POP3 traces, at the unit level:
rotation at 20 MB x 5 like asimap 2.x (with a small limit here), records of
connections sharing one file kept whole, the user's folder made safely,
and POP3 secrets redacted.  The end-to-end checks, as root in worker
mode, are in ``test_worker_trace.py``."""

from __future__ import annotations

import io
import json
import os
import poplib
import stat
import time
from pathlib import Path

import pytest

from asimap.ops import trace_files
from asimap.ops.trace import FileTracer
from asimap.ops.trace_files import UserTraceFile, open_user_trace_dir
from conftest import PASSWORD, USER, ServerFactory, TlsFiles


def _pop3_trace(client: list[bytes], server: list[bytes], one_byte: bool) -> list[str]:
    """Alternate client and server chunks; the traced data, in order."""
    stream = io.StringIO()
    stream.close = lambda: None  # type: ignore[method-assign]
    tracer = FileTracer(stream, protocol="pop3")
    for sent, answer in zip(client, server, strict=True):
        pieces = [sent[i : i + 1] for i in range(len(sent))] if one_byte else [sent]
        for piece in pieces:
            tracer.on_client_bytes(piece)
        tracer.on_server_bytes(answer)
    tracer.on_close()
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [r["data"] for r in records if "dir" in r]


@pytest.mark.parametrize("one_byte", [False, True])
def test_pop3_passwords_digests_and_sasl_are_redacted(one_byte: bool) -> None:
    client = [
        b"USER demo\r\n",
        b"PASS my secret pass\r\n",
        b"APOP demo c4c9334bac560ecc979e58001b3e22fb\r\n",
        b"AUTH PLAIN AGRlbW8AZGVtbw==\r\n",
        b"AUTH PLAIN\r\n",
        b"AGRlbW8AZGVtbw==\r\n",
        b"RETR {5}\r\n",
    ]
    server = [
        b"+OK\r\n",
        b"-ERR [AUTH] no\r\n",
        b"-ERR [AUTH] no\r\n",
        b"-ERR [AUTH] no\r\n",
        b"+ \r\n",
        b"+OK Logged in\r\n",
        b"-ERR bad\r\n",
    ]
    traced = _pop3_trace(client, server, one_byte)
    client_lines = traced[0::2]
    assert client_lines == [
        "USER demo\\r\\n",
        "PASS ***\\r\\n",
        "APOP demo ***\\r\\n",
        "AUTH PLAIN ***\\r\\n",
        "AUTH PLAIN\\r\\n",
        "***\\r\\n",
        # No literals in POP3: the next line is not swallowed as one.
        "RETR {5}\\r\\n",
    ]
    assert "secret" not in "".join(traced) and "ZGVtbw" not in "".join(traced)


def test_user_file_rotates_keeping_five(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trace_files, "MAX_BYTES", 2000)
    fd = open_user_trace_dir(tmp_path / "traces", "demo", None)
    factory = UserTraceFile(fd)
    first = factory.new_tracer("192.0.2.1")
    second = factory.new_tracer("192.0.2.2", "pop3")
    for n in range(300):
        first.on_client_bytes(b"a%d NOOP\r\n" % n)
        second.on_client_bytes(b"NOOP\r\n")
    first.on_close()
    second.on_close()
    factory.close()
    folder = tmp_path / "traces" / "demo"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["trace.jsonl"] + [f"trace.jsonl.{n}" for n in range(1, 6)]
    for path in folder.iterdir():
        assert path.stat().st_size <= 2000
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        for line in path.read_text().splitlines():  # every record whole
            record = json.loads(line)
            assert record["conn"] in (1, 2)
    # The newest records are in trace.jsonl, the oldest kept in .5.
    newest = [json.loads(x) for x in (folder / "trace.jsonl").read_text().splitlines()]
    assert newest[-1] == {**newest[-1], "conn": 2, "event": "close"}
    oldest = (folder / "trace.jsonl.5").read_text()
    assert "a0 NOOP" not in oldest  # older than five files: gone


def test_user_folder_is_private_and_never_a_symlink(tmp_path: Path) -> None:
    traces = tmp_path / "traces"
    fd = open_user_trace_dir(traces, "../evil/.x", None)
    os.close(fd)
    (made,) = traces.iterdir()
    assert made.name == "_.._evil_.x"  # inside traces/, not hidden
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (traces / "mallory").symlink_to(elsewhere)
    with pytest.raises(OSError):
        open_user_trace_dir(traces, "mallory", None)


def test_pop3_session_in_process_is_traced_with_the_password_redacted(
    server_factory: ServerFactory, tls_files: TlsFiles, tmp_path: Path
) -> None:
    trace_dir = tmp_path / "traces"
    server = server_factory(
        trace=True, trace_dir=trace_dir, enable_pop3=True, pop3_port=0
    )
    client = poplib.POP3_SSL(
        "127.0.0.1",
        server.ports["pop3s"],
        context=tls_files.client_context(),
        timeout=10,
    )
    client.user(USER)
    client.pass_(PASSWORD)
    assert client.stat() == (0, 0)
    client.quit()
    deadline = time.monotonic() + 10
    while not (files := list(trace_dir.glob("*.jsonl"))) or not files[
        0
    ].read_text().rstrip().endswith('"event": "close"}'):
        assert time.monotonic() < deadline, files
        time.sleep(0.05)
    (path,) = files
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert records[0]["listener"] == "pop3s" and records[-1]["event"] == "close"
    client_lines = [r["data"] for r in records if r.get("dir") == "c"]
    assert client_lines == [
        f"USER {USER}\\r\\n",
        "PASS ***\\r\\n",
        "STAT\\r\\n",
        "QUIT\\r\\n",
    ]
    server_text = "".join(r["data"] for r in records if r.get("dir") == "s")
    assert server_text.startswith("+OK") and "+OK 0 0" in server_text
