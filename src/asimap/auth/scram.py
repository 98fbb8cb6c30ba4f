"""SCRAM-SHA-256 (RFC 7677, RFC 5802) messages and keys, sans-IO.

Why SCRAM can work from the password file: a Django
``pbkdf2_sha256$<i>$<salt>$<hash>`` entry stores PBKDF2-HMAC-SHA256 of the
password under ``salt`` with ``i`` iterations, 32 bytes -- exactly SCRAM's
``SaltedPassword := Hi(password, salt, i)`` (RFC 5802 section 2.2, with
RFC 7677's SHA-256).  ClientKey, StoredKey and ServerKey follow from it
by a few HMACs (RFC 5802 section 3), so the server never needs the
plaintext and never runs PBKDF2 itself: the *client* pays for the
iterations.  Hashes in any other format cannot serve SCRAM.

No user enumeration: an unknown user, an unusable password and a hash of
another format all get *fake* credentials -- a salt and keys derived by
HMAC from a server secret and the username, so the same name always sees
the same salt, and an iteration count like the real users' -- and the
exchange runs to its end and fails with ``invalid-proof`` exactly like a
wrong password.  ``unknown-user`` (RFC 5802 section 7) is never used.

Channel binding (SCRAM-SHA-256-PLUS) is not offered: Python's ``ssl``
module exposes only ``tls-unique``, which RFC 9266 retires for TLS 1.3,
and not the keying-material exporter that ``tls-exporter`` needs.  So a
client asking for it (gs2 flag ``p=``) is refused with
``channel-binding-not-supported`` (RFC 5802 section 6), and ``y`` (client
could bind, thinks we cannot) is accepted: we indeed do not advertise
PLUS.

The message grammar is RFC 5802 section 7; the exchange that drives these
functions over a protocol is :mod:`asimap.auth.scram_exchange`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass

from asimap.auth import sasl
from asimap.auth.saslprep import SaslprepError, saslprep

#: The mechanism name (RFC 7677 section 2).
MECHANISM = "SCRAM-SHA-256"

#: Bytes of a SHA-256 digest: the length of keys, proofs and signatures.
_KEY_LENGTH = 32

# RFC 5802 section 7, server-error-value: the ones this server reports
# (in the failure text; see asimap.auth.scram_exchange for why not as e=).
INVALID_ENCODING = "invalid-encoding"
EXTENSIONS_NOT_SUPPORTED = "extensions-not-supported"
INVALID_PROOF = "invalid-proof"
CHANNEL_BINDINGS_DONT_MATCH = "channel-bindings-dont-match"
CHANNEL_BINDING_NOT_SUPPORTED = "channel-binding-not-supported"
INVALID_USERNAME_ENCODING = "invalid-username-encoding"
OTHER_ERROR = "other-error"

#: Django's salt alphabet, so that fake salts look like real ones.
_SALT_CHARS = string.ascii_letters + string.digits
_FAKE_SALT_LENGTH = 22

#: Upper bound on an iteration count we announce (as hashers.py bounds
#: PBKDF2): a typo in the password file must not make clients spin forever.
_MAX_ITERATIONS = 100_000_000


class ScramError(sasl.SaslFailed):
    """The exchange failed with the RFC 5802 section 7 error ``code``.

    A subclass of :class:`~asimap.auth.sasl.SaslFailed`, so every SCRAM
    failure ends as ``NO [AUTHENTICATIONFAILED]`` / ``-ERR [AUTH]``.  The
    text is the common "Authentication failed" for ``invalid-proof`` (the
    answer to a wrong password, an unknown user and an unusable hash
    alike); protocol errors name their code, which tells nothing about
    the account and helps whoever debugs a client.
    """

    def __init__(self, code: str) -> None:
        text = sasl.FAILED if code == INVALID_PROOF else f"{sasl.FAILED}: {code}"
        Exception.__init__(self, text)
        self.code = code


@dataclass(frozen=True, slots=True)
class ScramCredentials:
    """What the server keeps for one user (RFC 5802 section 3)."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes


@dataclass(frozen=True, slots=True)
class ClientFirst:
    """A parsed client-first-message."""

    #: ``gs2-header`` as sent; echoed base64-encoded in the final ``c=``.
    gs2_header: bytes
    #: The SASLprep'd username (``n=``).
    username: str
    client_nonce: str
    #: ``client-first-message-bare``, part of the AuthMessage.
    bare: bytes


@dataclass(frozen=True, slots=True)
class ClientFinal:
    """A parsed client-final-message."""

    channel_binding: bytes
    nonce: str
    #: ``client-final-message-without-proof``, part of the AuthMessage.
    without_proof: bytes
    proof: bytes


# --- keys ------------------------------------------------------------------


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def credentials_from_salted_password(
    salt: bytes, iterations: int, salted_password: bytes
) -> ScramCredentials:
    """RFC 5802 section 3: ClientKey := HMAC(SaltedPassword, "Client Key"),
    StoredKey := H(ClientKey), ServerKey := HMAC(SaltedPassword, "Server Key")."""
    client_key = _hmac(salted_password, b"Client Key")
    return ScramCredentials(
        salt=salt,
        iterations=iterations,
        stored_key=hashlib.sha256(client_key).digest(),
        server_key=_hmac(salted_password, b"Server Key"),
    )


def credentials_from_django(encoded: str) -> ScramCredentials | None:
    """Credentials from a ``pbkdf2_sha256`` Django hash; None for any other
    format or a malformed entry (the caller then uses fake credentials).

    Django hashes ``password.encode()`` under ``salt.encode()``; SCRAM
    clients hash SASLprep(password) under the salt bytes we send, so the
    two agree whenever SASLprep leaves the password unchanged (every
    printable ASCII password does).
    """
    fields = encoded.split("$")
    if len(fields) != 4 or fields[0] != "pbkdf2_sha256":
        return None
    _algorithm, iterations_text, salt, hash_b64 = fields
    if not iterations_text.isdigit() or not salt:
        return None
    iterations = int(iterations_text)
    if not 0 < iterations <= _MAX_ITERATIONS:
        return None
    try:
        salted_password = binascii.a2b_base64(hash_b64.encode(), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError):
        return None
    if len(salted_password) != _KEY_LENGTH:
        return None
    return credentials_from_salted_password(
        salt.encode("utf-8"), iterations, salted_password
    )


def fake_credentials(secret: bytes, username: str, iterations: int) -> ScramCredentials:
    """Deterministic credentials for a user who cannot use SCRAM.

    The salt is 22 characters of Django's alphabet, like a real one, and is
    the same on every attempt for the same name, so probing twice does not
    reveal a fake; the keys are unrelated to any password, so no proof
    verifies.  The work matches the real path's (two HMACs and a hash).
    """
    name = username.encode("utf-8")
    salt_bytes = _hmac(secret, b"asimap scram fake salt\x00" + name)
    salt = "".join(_SALT_CHARS[b % len(_SALT_CHARS)] for b in salt_bytes)
    salted_password = _hmac(secret, b"asimap scram fake key\x00" + name)
    return credentials_from_salted_password(
        salt[:_FAKE_SALT_LENGTH].encode("ascii"), iterations, salted_password
    )


def verify_proof(
    credentials: ScramCredentials, auth_message: bytes, proof: bytes
) -> bool:
    """RFC 5802 section 3: recover ClientKey := ClientProof XOR
    HMAC(StoredKey, AuthMessage) and check that H(ClientKey) is StoredKey,
    comparing in constant time."""
    signature = _hmac(credentials.stored_key, auth_message)
    if len(proof) != len(signature):
        return False
    client_key = bytes(p ^ s for p, s in zip(proof, signature, strict=True))
    return hmac.compare_digest(
        hashlib.sha256(client_key).digest(), credentials.stored_key
    )


def server_signature(credentials: ScramCredentials, auth_message: bytes) -> bytes:
    """ServerSignature := HMAC(ServerKey, AuthMessage) (RFC 5802 section 3)."""
    return _hmac(credentials.server_key, auth_message)


def new_server_nonce() -> str:
    """The server's part of the nonce: 144 random bits, printable and free
    of ``,`` (RFC 5802 section 5.1, ``r``)."""
    return secrets.token_urlsafe(18)


# --- messages --------------------------------------------------------------


def _text(data: bytes) -> str:
    # RFC 5802 section 7: messages are UTF-8 (saslname, value).
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ScramError(INVALID_ENCODING) from None


def _decode_saslname(value: str) -> str:
    """RFC 5802 section 5.1: ``=2C`` is ``,`` and ``=3D`` is ``=``; any
    other ``=`` MUST fail the authentication."""
    if not value:
        raise ScramError(INVALID_ENCODING)
    parts = value.split("=")
    decoded = [parts[0]]
    for part in parts[1:]:
        if part[:2] == "2C":
            decoded.append("," + part[2:])
        elif part[:2] == "3D":
            decoded.append("=" + part[2:])
        else:
            raise ScramError(INVALID_USERNAME_ENCODING)
    return "".join(decoded)


def _prepare_name(value: str) -> str:
    """Decode and SASLprep a username or authzid (RFC 5802 section 5.1:
    if preparation fails or gives an empty string, abort)."""
    try:
        prepared = saslprep(_decode_saslname(value))
    except SaslprepError:
        raise ScramError(INVALID_USERNAME_ENCODING) from None
    if not prepared:
        raise ScramError(INVALID_USERNAME_ENCODING)
    return prepared


def _is_printable_nonce(nonce: str) -> bool:
    # RFC 5802 section 7: printable = %x21-2B / %x2D-7E (no ",").
    return bool(nonce) and all("\x21" <= ch <= "\x7e" and ch != "," for ch in nonce)


def _is_attr_val(field: str) -> bool:
    # RFC 5802 section 7: attr-val = ALPHA "=" value.
    return (
        len(field) >= 2
        and field[0].isascii()
        and field[0].isalpha()
        and (field[1] == "=")
    )


def parse_client_first(data: bytes) -> ClientFirst:
    """Parse ``gs2-header client-first-message-bare`` (RFC 5802 section 7).

    An authzid other than the username itself is refused: acting for
    another user is not supported (as with PLAIN).
    """
    text = _text(data)
    fields = text.split(",")
    if len(fields) < 4:
        raise ScramError(INVALID_ENCODING)
    flag, authzid_field = fields[0], fields[1]
    # RFC 5802 section 6: "p" asks for channel binding, which we do not
    # offer (no -PLUS), so the server MUST fail the authentication.
    if flag.startswith("p="):
        raise ScramError(CHANNEL_BINDING_NOT_SUPPORTED)
    if flag not in ("n", "y"):
        raise ScramError(INVALID_ENCODING)
    if authzid_field and not authzid_field.startswith("a="):
        raise ScramError(INVALID_ENCODING)
    bare_fields = fields[2:]
    # RFC 5802 section 5.1, "m": reserved; its presence MUST cause failure.
    if bare_fields[0].startswith("m="):
        raise ScramError(EXTENSIONS_NOT_SUPPORTED)
    # Attribute order is fixed by the grammar: n= then r=, extensions after.
    username_field, nonce_field, *extensions = bare_fields
    if not username_field.startswith("n=") or not nonce_field.startswith("r="):
        raise ScramError(INVALID_ENCODING)
    if not all(_is_attr_val(field) for field in extensions):
        raise ScramError(INVALID_ENCODING)
    client_nonce = nonce_field[2:]
    if not _is_printable_nonce(client_nonce):
        raise ScramError(INVALID_ENCODING)
    username = _prepare_name(username_field[2:])
    if authzid_field and _prepare_name(authzid_field[2:]) != username:
        raise ScramError(OTHER_ERROR)
    gs2_header = f"{flag},{authzid_field},".encode()
    return ClientFirst(
        gs2_header=gs2_header,
        username=username,
        client_nonce=client_nonce,
        bare=data[len(gs2_header) :],
    )


def server_first_message(nonce: str, credentials: ScramCredentials) -> bytes:
    """``r=<nonce>,s=<base64 salt>,i=<iterations>`` (RFC 5802 section 7)."""
    salt = base64.b64encode(credentials.salt).decode("ascii")
    return f"r={nonce},s={salt},i={credentials.iterations}".encode("ascii")


def _strict_b64(text: str) -> bytes:
    # Strict: no stray characters, correct padding (as sasl.decode_response).
    return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)


def parse_client_final(data: bytes) -> ClientFinal:
    """Parse ``c=...,r=...[,extensions],p=...`` (RFC 5802 section 7).

    Only the syntax is checked here; the caller compares the channel
    binding, the nonce and the proof with what it expects.
    """
    text = _text(data)
    fields = text.split(",")
    if len(fields) < 3:
        raise ScramError(INVALID_ENCODING)
    binding_field, nonce_field, *extensions, proof_field = fields
    if not (
        binding_field.startswith("c=")
        and nonce_field.startswith("r=")
        and proof_field.startswith("p=")
        and all(_is_attr_val(field) for field in extensions)
    ):
        raise ScramError(INVALID_ENCODING)
    try:
        channel_binding = _strict_b64(binding_field[2:])
        proof = _strict_b64(proof_field[2:])
    except (binascii.Error, UnicodeEncodeError):
        raise ScramError(INVALID_ENCODING) from None
    without_proof = data[: len(data) - len(proof_field.encode()) - 1]
    return ClientFinal(channel_binding, nonce_field[2:], without_proof, proof)


def server_final_message(signature: bytes) -> bytes:
    """``v=<base64 ServerSignature>`` (RFC 5802 section 7)."""
    return b"v=" + base64.b64encode(signature)
