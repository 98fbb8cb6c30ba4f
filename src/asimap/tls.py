"""TLS contexts and self-signed certificates.

asimap terminates TLS itself (implicit TLS on the IMAPS port, STARTTLS on
the plain port), so the server context is built in one place with one
policy: TLS 1.2 or newer, forward-secret AEAD ciphers only for TLS 1.2
(TLS 1.3 suites are all acceptable and are not configurable through
``set_ciphers``), no TLS compression (CRIME), no session renegotiation.

``generate_self_signed`` exists for the quickstart and for tests: a real
certificate (EC P-256, subjectAltName for every host name and address) made
with ``cryptography`` rather than by shelling out to ``openssl``.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: TLS 1.2 suites we accept: ECDHE/DHE key exchange (forward secrecy) and
#: AEAD ciphers only (RFC 9325 section 4.2 recommendations).
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!MD5:!DSS"


def make_server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server-side context for ``cert``/``key`` (PEM files).

    Raises ``OSError``/``ssl.SSLError`` with the file name when the files
    are missing or do not match, so that startup fails loudly rather than
    every handshake failing later.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # RFC 8996 deprecates TLS 1.0/1.1; RFC 9325 section 3.1.1 requires 1.2+.
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    try:
        context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    except (OSError, ssl.SSLError) as exc:
        raise type(exc)(
            f"cannot load TLS certificate {cert} / key {key}: {exc}"
        ) from exc
    return context


def generate_self_signed(
    cert_path: Path,
    key_path: Path,
    hostnames: Iterable[str],
    *,
    days: int = 825,
) -> None:
    """Write a self-signed certificate valid for ``hostnames``.

    Each entry is either a DNS name or an IP address literal (``127.0.0.1``,
    ``::1``); the first one is also the subject CN.  The key file is
    created with mode 0600 and both files are written atomically, so a
    crash never leaves a certificate without its key.
    """
    names = list(hostnames)
    if not names:
        raise ValueError("at least one host name is needed")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    alt_names: list[x509.GeneralName] = []
    for name in names:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        # A self-signed leaf acts as its own trust anchor: clients given it
        # as CA file (curl --cacert, ssl.create_default_context(cafile=))
        # need it marked as a CA to build the chain.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_atomically(key_path, key_pem, mode=0o600)
    _write_atomically(
        cert_path, certificate.public_bytes(serialization.Encoding.PEM), mode=0o644
    )


def _write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    """Write via a temporary file, fsync and rename (design.md section 4 rule 1)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
