"""A small SCRAM-SHA-256 client (RFC 5802, RFC 7677), written for the tests.

Deliberately independent of ``asimap.auth.scram``: it uses only hashlib
and hmac and its own parsing, so a shared mistake cannot make both sides
agree on something the RFC does not say.  Usernames here are ASCII
without ``,`` or ``=``, so SASLprep and the ``=2C``/``=3D`` escapes are
identities and the client need not implement them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


class ScramClient:
    """One exchange: :meth:`first`, :meth:`final`, :meth:`check_server`."""

    def __init__(
        self,
        username: str,
        password: str,
        *,
        nonce: str | None = None,
        gs2_header: str = "n,,",
    ) -> None:
        self.username = username
        self.password = password
        self.nonce = nonce if nonce is not None else secrets.token_hex(12)
        self.gs2_header = gs2_header
        self.bare = f"n={username},r={self.nonce}"
        self.server_signature: bytes | None = None

    def first(self) -> bytes:
        """The client-first-message."""
        return (self.gs2_header + self.bare).encode()

    def final(
        self,
        server_first: bytes,
        *,
        tamper_proof: bool = False,
        nonce_override: str | None = None,
    ) -> bytes:
        """The client-final-message answering ``server_first``.

        ``tamper_proof`` flips one bit of the proof; ``nonce_override``
        sends another nonce (both to exercise the server's checks).
        """
        text = server_first.decode()
        attrs = dict(item.split("=", 1) for item in text.split(","))
        combined = attrs["r"]
        if not combined.startswith(self.nonce):
            raise ValueError("server nonce does not extend ours")
        salt = base64.b64decode(attrs["s"])
        iterations = int(attrs["i"])
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), salt, iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        binding = base64.b64encode(self.gs2_header.encode()).decode()
        nonce = nonce_override if nonce_override is not None else combined
        without_proof = f"c={binding},r={nonce}"
        auth_message = f"{self.bare},{text},{without_proof}".encode()
        signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
        proof = bytearray(a ^ b for a, b in zip(client_key, signature, strict=True))
        if tamper_proof:
            proof[0] ^= 1
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        self.server_signature = hmac.new(
            server_key, auth_message, hashlib.sha256
        ).digest()
        return f"{without_proof},p={base64.b64encode(bytes(proof)).decode()}".encode()

    def check_server(self, server_final: bytes) -> None:
        """Raise unless ``server_final`` is ``v=`` with the right signature
        (RFC 5802 section 3: the client authenticates the server too)."""
        assert self.server_signature is not None
        expected = b"v=" + base64.b64encode(self.server_signature)
        if not hmac.compare_digest(server_final, expected):
            raise ValueError(f"bad server-final-message {server_final!r}")
