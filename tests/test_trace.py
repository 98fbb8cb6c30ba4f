"""Protocol traces (``--trace``): what a trace file holds, and what it never does.

The end-to-end tests run the real server with tracing on and real clients
(imaplib, raw TLS sockets); the unit tests feed :class:`FileTracer` bytes
whole and one at a time, which must give the same trace, because the
driver reports bytes in whatever chunks the network delivers.
"""

from __future__ import annotations

import base64
import imaplib
import io
import json
import socket
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from asimap.ops.trace import (
    MAX_CHUNK,
    NULL_TRACER,
    FileTracer,
    TraceDirectory,
    escape,
    tracer_factory,
)
from conftest import PASSWORD, SAMPLE_MESSAGE, USER, ServerFactory, TlsFiles

TIMEOUT = 10.0
#: The fixture's second account: a password unlike its user name, so a
#: leak cannot hide behind the user name.
OTHER, OTHER_PASSWORD = "other", "other-secret"


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _wait_for_closed_traces(directory: Path, count: int) -> list[Path]:
    """Trace files are complete once their ``close`` event is written."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        files = sorted(directory.glob("*.jsonl"))
        if len(files) >= count and all(
            f.read_text().rstrip().endswith('"event": "close"}') for f in files
        ):
            return files
        time.sleep(0.05)
    raise AssertionError(f"no {count} closed traces in {directory}")


def _client_text(records: list[dict[str, Any]]) -> str:
    return "".join(r["data"] for r in records if r.get("dir") == "c")


def _server_text(records: list[dict[str, Any]]) -> str:
    return "".join(r["data"] for r in records if r.get("dir") == "s")


def _imaps(port: int, tls_files: TlsFiles) -> imaplib.IMAP4_SSL:
    return imaplib.IMAP4_SSL(
        "127.0.0.1", port, ssl_context=tls_files.client_context(), timeout=TIMEOUT
    )


# --- end to end ----------------------------------------------------------------


def test_login_is_traced_with_the_password_redacted(
    server_factory: ServerFactory, tls_files: TlsFiles, tmp_path: Path
) -> None:
    trace_dir = tmp_path / "traces"
    server = server_factory(trace=True, trace_dir=trace_dir)
    client = _imaps(server.imaps_port, tls_files)
    client.login(OTHER, OTHER_PASSWORD)
    client.select("INBOX")
    client.logout()
    (path,) = _wait_for_closed_traces(trace_dir, 1)
    records = _records(path)
    assert records[0]["event"] == "connect"
    assert records[0]["peer"] == "127.0.0.1" and records[0]["listener"] == "imaps"
    assert records[-1]["event"] == "close"
    times = [r["t"] for r in records]
    assert times == sorted(times) and times[0] >= 0
    client_text = _client_text(records)
    # imaplib quotes nothing here: "TAG LOGIN other ***"
    assert f" LOGIN {OTHER} ***\\r\\n" in client_text
    assert "secret" not in path.read_text()
    assert " SELECT INBOX\\r\\n" in client_text and " LOGOUT\\r\\n" in client_text
    server_text = _server_text(records)
    assert server_text.startswith("* OK [CAPABILITY ")
    assert "Logged in\\r\\n" in server_text and "* BYE" in server_text
    # The file holds mail and passwords' neighbours: owner only.
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(trace_dir.stat().st_mode) == 0o700
    assert "-127.0.0.1-" in path.name


def test_login_with_literals_and_quotes_redacts_only_the_password(
    server_factory: ServerFactory, tls_files: TlsFiles, tmp_path: Path
) -> None:
    trace_dir = tmp_path / "t"
    server = server_factory(trace=True, trace_dir=trace_dir)
    raw = socket.create_connection(("127.0.0.1", server.imaps_port), timeout=TIMEOUT)
    sock = tls_files.client_context().wrap_socket(raw, server_hostname="localhost")
    sock.recv(4096)
    # Synchronizing literal for the user, non-synchronizing for the password.
    sock.sendall(b"a LOGIN {4}\r\n")
    assert sock.recv(4096).startswith(b"+")
    sock.sendall(b"demo {4+}\r\nnope\r\n")
    _read_until(sock, b"a NO")
    sock.sendall(b'b LOGIN "demo" "sec\\"ret"\r\nc LOGOUT\r\n')
    _read_until(sock, b"c OK")
    sock.close()
    (path,) = _wait_for_closed_traces(trace_dir, 1)
    client = [r["data"] for r in _records(path) if r.get("dir") == "c"]
    assert client == [
        "a LOGIN {4}\\r\\n",
        "demo",
        " {4+}\\r\\n",
        "***",
        "\\r\\n",
        'b LOGIN "demo" ***\\r\\n',
        "c LOGOUT\\r\\n",
    ]
    assert "nope" not in path.read_text() and "sec" not in path.read_text()


def test_authenticate_plain_is_redacted_with_and_without_initial_response(
    server_factory: ServerFactory, tls_files: TlsFiles, tmp_path: Path
) -> None:
    trace_dir = tmp_path / "t"
    server = server_factory(trace=True, trace_dir=trace_dir)
    secret = base64.b64encode(f"\0{OTHER}\0{OTHER_PASSWORD}".encode())
    raw = socket.create_connection(("127.0.0.1", server.imaps_port), timeout=TIMEOUT)
    sock = tls_files.client_context().wrap_socket(raw, server_hostname="localhost")
    sock.recv(4096)
    sock.sendall(b"a AUTHENTICATE PLAIN " + secret + b"\r\n")
    _read_until(sock, b"a OK")
    sock.sendall(b"b LOGOUT\r\n")
    _read_until(sock, b"b OK")
    sock.close()
    client = _imaps(server.imaps_port, tls_files)  # SASL exchange, no SASL-IR

    def plain(_challenge: bytes) -> bytes:
        return f"\0{OTHER}\0{OTHER_PASSWORD}".encode()

    client.authenticate("PLAIN", plain)
    client.noop()
    client.logout()
    first, second = _wait_for_closed_traces(trace_dir, 2)
    text = first.read_text() + second.read_text()
    assert secret.decode() not in text and "secret" not in text
    first_client = _client_text(_records(first))
    assert first_client.startswith("a AUTHENTICATE PLAIN ***\\r\\nb LOGOUT\\r\\n")
    second_client = [r["data"] for r in _records(second) if r.get("dir") == "c"]
    start = next(
        i
        for i, data in enumerate(second_client)
        if data.endswith(" AUTHENTICATE PLAIN\\r\\n")
    )
    assert second_client[start + 1] == "***\\r\\n"  # the SASL response line
    # Redaction ended with the tagged OK.
    assert second_client[start + 2].endswith(" NOOP\\r\\n")


def test_append_of_a_big_message_is_truncated_in_the_trace(
    server_factory: ServerFactory, tls_files: TlsFiles, tmp_path: Path
) -> None:
    trace_dir = tmp_path / "t"
    server = server_factory(trace=True, trace_dir=trace_dir)
    body = SAMPLE_MESSAGE + b"0123456789abcdef\r\n" * 20_000  # 360 KB
    client = _imaps(server.imaps_port, tls_files)
    client.login(USER, PASSWORD)
    assert client.append("INBOX", None, None, body)[0] == "OK"
    client.select("INBOX")
    typ, data = client.fetch("1", "(BODY.PEEK[])")
    assert typ == "OK" and data[0][1] == body  # type: ignore[index]
    client.logout()
    (path,) = _wait_for_closed_traces(trace_dir, 1)
    records = _records(path)
    omitted = len(body) - MAX_CHUNK
    client_literals = [
        r["data"] for r in records if r.get("dir") == "c" and "…[" in r["data"]
    ]
    assert client_literals == [escape(body[:MAX_CHUNK]) + f"…[{omitted} bytes]"]
    server_literals = [
        r["data"] for r in records if r.get("dir") == "s" and "…[" in r["data"]
    ]
    assert server_literals == [escape(body[:MAX_CHUNK]) + f"…[{omitted} bytes]"]
    assert path.stat().st_size < 20_000


def test_tracing_disabled_writes_nothing(
    server_factory: ServerFactory, tls_files: TlsFiles, tmp_path: Path
) -> None:
    trace_dir = tmp_path / "t"
    server = server_factory(trace=False, trace_dir=trace_dir)
    client = _imaps(server.imaps_port, tls_files)
    client.login(USER, PASSWORD)
    client.logout()
    imap = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=TIMEOUT)
    imap.logout()
    time.sleep(0.2)
    assert not trace_dir.exists()
    assert tracer_factory(False, trace_dir).new_tracer("x") is NULL_TRACER


def test_starttls_is_marked_in_the_trace(
    server_factory: ServerFactory, tls_files: TlsFiles, tmp_path: Path
) -> None:
    trace_dir = tmp_path / "t"
    server = server_factory(trace=True, trace_dir=trace_dir)
    client = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=TIMEOUT)
    client.starttls(tls_files.client_context())
    client.login(USER, PASSWORD)
    client.logout()
    (path,) = _wait_for_closed_traces(trace_dir, 1)
    records = _records(path)
    assert records[0]["listener"] == "imap"
    events = [r.get("event") or r["dir"] for r in records]
    tls_at = events.index("tls")
    assert "STARTTLS" in "".join(
        r["data"] for r in records[:tls_at] if r.get("dir") == "c"
    )
    assert " LOGIN demo ***" in _client_text(records[tls_at:])


def test_an_unusable_trace_directory_does_not_stop_serving(
    server_factory: ServerFactory, tls_files: TlsFiles, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    server = server_factory(trace=True, trace_dir=blocker / "traces")
    client = _imaps(server.imaps_port, tls_files)
    assert client.login(USER, PASSWORD)[0] == "OK"
    client.logout()


def _read_until(sock: socket.socket, prefix: bytes) -> bytes:
    data = b""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        if any(line.startswith(prefix) for line in data.split(b"\r\n")):
            return data
    raise AssertionError(f"no {prefix!r} in {data!r}")


# --- unit -------------------------------------------------------------------------


def _trace(
    client: list[bytes], server: list[tuple[int, bytes]], one_byte: bool
) -> list[tuple[str, str]]:
    """Feed client chunks; ``server`` holds (after client chunk i, bytes)."""
    stream = io.StringIO()
    stream.close = lambda: None  # type: ignore[method-assign]
    tracer = FileTracer(stream)
    tracer.on_connect("192.0.2.1", "imaps")
    for index, chunk in enumerate(client):
        pieces = [chunk[i : i + 1] for i in range(len(chunk))] if one_byte else [chunk]
        for piece in pieces:
            tracer.on_client_bytes(piece)
        for after, data in server:
            if after == index:
                tracer.on_server_bytes(data)
    tracer.on_close()
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [(r["dir"], r["data"]) for r in records if "dir" in r]


@pytest.mark.parametrize("one_byte", [False, True])
def test_refused_synchronizing_literal_is_not_taken_as_data(one_byte: bool) -> None:
    client = [
        b"a APPEND nosuch {4294967296}\r\n",
        b"b LOGIN demo {6}\r\n",
        b"secret\r\nc NOOP\r\n",
    ]
    server = [
        (0, b"a NO [TRYCREATE] Mailbox does not exist\r\n"),
        (1, b"+ Ready for literal\r\n"),
        (2, b"b OK Logged in\r\nc OK NOOP completed\r\n"),
    ]
    assert _trace(client, server, one_byte) == [
        ("c", "a APPEND nosuch {4294967296}\\r\\n"),
        ("s", "a NO [TRYCREATE] Mailbox does not exist\\r\\n"),
        ("c", "b LOGIN demo {6}\\r\\n"),
        ("s", "+ Ready for literal\\r\\n"),
        ("c", "***"),
        ("c", "\\r\\n"),
        ("c", "c NOOP\\r\\n"),
        ("s", "b OK Logged in\\r\\n"),
        ("s", "c OK NOOP completed\\r\\n"),
    ]


@pytest.mark.parametrize("one_byte", [False, True])
def test_long_lines_huge_literals_and_binary_are_bounded(one_byte: bool) -> None:
    long_line = b"a NOOP " + b"x" * 10_000 + b"\r\n"
    client = [long_line, b"b APPEND INBOX {100000+}\r\n" + b"\xff" * 100_000 + b"\r\n"]
    traced = _trace(client, [], one_byte)
    assert traced[0] == (
        "c",
        escape(long_line[:MAX_CHUNK]) + f"…[{len(long_line) - MAX_CHUNK} bytes]",
    )
    assert traced[1] == ("c", "b APPEND INBOX {100000+}\\r\\n")
    assert traced[2] == ("c", "\\xff" * MAX_CHUNK + f"…[{100_000 - MAX_CHUNK} bytes]")
    assert traced[3] == ("c", "\\r\\n")


def test_escape_is_reversible_text() -> None:
    assert escape(b'a\\b\r\n\x00\xc3\xa9\xff"') == 'a\\\\b\\r\\n\x00é\\xff"'


def test_sasl_cancel_and_pipelined_commands_after_the_exchange() -> None:
    client = [b"a AUTHENTICATE PLAIN\r\n", b"*\r\n", b"b NOOP\r\n"]
    server = [(0, b"+ \r\n"), (1, b"a BAD Authentication cancelled\r\n")]
    assert [d for _, d in _trace(client, server, False)] == [
        "a AUTHENTICATE PLAIN\\r\\n",
        "+ \\r\\n",
        "***\\r\\n",
        "a BAD Authentication cancelled\\r\\n",
        "b NOOP\\r\\n",
    ]


def test_trace_directory_names_and_modes(tmp_path: Path) -> None:
    directory = TraceDirectory(tmp_path / "a" / "b")
    first = directory.new_tracer("::1")
    second = directory.new_tracer("::1")
    first.on_close()
    second.on_close()
    names = sorted(p.name for p in (tmp_path / "a" / "b").iterdir())
    assert len(names) == 2 and all("-__1-" in n for n in names)
    assert {n.rsplit("-", 1)[1] for n in names} == {"1.jsonl", "2.jsonl"}
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o700
