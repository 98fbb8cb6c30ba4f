"""TLS 1.2 or newer, forward-secret AEAD ciphers only, on every listener.

Security review (docs/security.md, "TLS"): real handshakes against a real
server -- implicit TLS for IMAP and POP3, STARTTLS and STLS on the plain
ports -- with clients that offer only what must be refused: TLS 1.0, TLS
1.1, a CBC (non-AEAD) suite with ECDHE, and an AEAD suite without forward
secrecy (RSA key exchange).  The server runs with an RSA certificate, the
kind most operators have, because with an EC key a static-RSA suite could
never be chosen anyway and the last check would prove nothing.

Each refusal has a control: the same client completes its handshake with
a deliberately permissive server on the same certificate, so a refusal is
the server's policy and not this machine's OpenSSL being unable to speak
the old protocol.  Certificate reload on SIGHUP is proven in
tests/test_worker_faults.py
(``test_sighup_reloads_passwords_and_certificate_without_dropping``); the
reloaded certificate goes through the same ``make_server_context``.
"""

from __future__ import annotations

import contextlib
import datetime
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from asimap.tls import make_server_context
from conftest import ServerFactory, ServerThread

TIMEOUT = 10.0

#: The clients below deliberately speak what Python deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")

#: (name, minimum = maximum version, OpenSSL cipher string) a client offers.
REFUSED = [
    ("TLS 1.0", ssl.TLSVersion.TLSv1, "ALL:@SECLEVEL=0"),
    ("TLS 1.1", ssl.TLSVersion.TLSv1_1, "ALL:@SECLEVEL=0"),
    (
        "TLS 1.2 CBC",
        ssl.TLSVersion.TLSv1_2,
        "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA384",
    ),
    ("TLS 1.2 no FS", ssl.TLSVersion.TLSv1_2, "AES128-GCM-SHA256:AES256-GCM-SHA384"),
]
ACCEPTED = [
    ("TLS 1.2 ECDHE AEAD", ssl.TLSVersion.TLSv1_2, "ECDHE-RSA-AES128-GCM-SHA256"),
    ("TLS 1.3", ssl.TLSVersion.TLSv1_3, "DEFAULT"),
]


@pytest.fixture(scope="module")
def rsa_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("rsa")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _client(version: ssl.TLSVersion, ciphers: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers(ciphers)
    context.minimum_version = version
    context.maximum_version = version
    return context


@contextlib.contextmanager
def _permissive_server(cert: Path, key: Path) -> Iterator[int]:
    """A bare TLS server that accepts anything OpenSSL can still speak."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.set_ciphers("ALL:@SECLEVEL=0")
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with (
                contextlib.suppress(OSError),
                conn,
                context.wrap_socket(conn, server_side=True) as tls,
            ):
                tls.sendall(b"ok")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        # Wake the accept() so the thread sees the stop at once.
        with contextlib.suppress(OSError):
            socket.create_connection(listener.getsockname(), TIMEOUT).close()
        thread.join(TIMEOUT)
        listener.close()


def _handshake(
    port: int,
    context: ssl.SSLContext,
    prelude: Callable[[socket.socket], None] | None = None,
) -> str:
    """The negotiated "version cipher", or raise on a refused handshake."""
    raw = socket.create_connection(("127.0.0.1", port), TIMEOUT)
    try:
        if prelude is not None:
            prelude(raw)
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            cipher = tls.cipher()
            assert cipher is not None
            return f"{tls.version()} {cipher[0]}"
    finally:
        raw.close()


def _read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(1)
        assert chunk, data
        data += chunk
    return data


def _starttls(sock: socket.socket) -> None:
    assert _read_line(sock).startswith(b"* OK")
    sock.sendall(b"a STARTTLS\r\n")
    assert _read_line(sock).startswith(b"a OK")


def _stls(sock: socket.socket) -> None:
    assert _read_line(sock).startswith(b"+OK")
    sock.sendall(b"STLS\r\n")
    assert _read_line(sock).startswith(b"+OK")


@pytest.fixture(scope="module")
def permissive_port(rsa_files: tuple[Path, Path]) -> Iterator[int]:
    with _permissive_server(*rsa_files) as port:
        yield port


@pytest.fixture
def server(server_factory: ServerFactory, rsa_files: tuple[Path, Path]) -> ServerThread:
    cert, key = rsa_files
    return server_factory(
        cert=cert, key=key, enable_pop3=True, pop3_port=0, pop3_stls_port=0
    )


LISTENERS: list[tuple[str, Callable[[socket.socket], None] | None]] = [
    ("imaps", None),
    ("imap", _starttls),
    ("pop3s", None),
    ("pop3", _stls),
]


@pytest.mark.parametrize(
    ("what", "version", "ciphers"), REFUSED, ids=[r[0] for r in REFUSED]
)
def test_old_protocols_and_weak_ciphers_are_refused(
    server: ServerThread,
    permissive_port: int,
    what: str,
    version: ssl.TLSVersion,
    ciphers: str,
) -> None:
    client = _client(version, ciphers)
    # Control: this client can complete that handshake with a server that
    # allows it, so the refusal below is our policy.
    _handshake(permissive_port, client)
    for listener, prelude in LISTENERS:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            _handshake(server.ports[listener], client, prelude)
    # The server is unharmed: a modern client still gets in.
    assert _handshake(server.ports["imaps"], _client(*ACCEPTED[0][1:])).startswith(
        "TLSv1.2"
    )


@pytest.mark.parametrize(
    ("what", "version", "ciphers"), ACCEPTED, ids=[a[0] for a in ACCEPTED]
)
def test_modern_clients_are_served_on_every_listener(
    server: ServerThread, what: str, version: ssl.TLSVersion, ciphers: str
) -> None:
    for listener, prelude in LISTENERS:
        negotiated = _handshake(
            server.ports[listener], _client(version, ciphers), prelude
        )
        assert negotiated.split()[0] in ("TLSv1.2", "TLSv1.3"), negotiated
        assert "GCM" in negotiated or "CHACHA20" in negotiated, negotiated


def test_the_server_context_offers_only_forward_secret_aead_suites(
    rsa_files: tuple[Path, Path],
) -> None:
    """Every TLS 1.2 suite the context would pick has ECDHE/DHE key exchange
    and an AEAD cipher (TLS 1.3 suites all do)."""
    context = make_server_context(*rsa_files)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    suites = context.get_ciphers()
    assert suites
    for suite in suites:
        if suite["protocol"] == "TLSv1.3":
            continue
        assert suite["aead"], suite["name"]
        assert suite["kea"] in ("kx-ecdhe", "kx-dhe"), suite["name"]
