"""The protocol-neutral SASL PLAIN/LOGIN module (asimap.auth.sasl).

The IMAP and POP3 wire answers built on it are covered by
test_session_basic.py and test_pop3_session.py; here: the decoding rules
(RFC 4959 section 3, RFC 5034 section 4), PLAIN parsing (RFC 4616), the
exchange's challenges, and that no input raises anything but the three
neutral exceptions.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asimap.auth import sasl


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


class Client:
    """Answers challenges from a script and records what it was asked."""

    def __init__(self, *answers: bytes) -> None:
        self.answers = list(answers)
        self.challenges: list[bytes] = []

    async def __call__(self, challenge: bytes) -> bytes:
        self.challenges.append(challenge)
        return self.answers.pop(0)


def test_decode_response_rules() -> None:
    assert sasl.decode_response(b64(b"hello")) == b"hello"
    assert sasl.decode_response(b"  " + b64(b"x") + b" ") == b"x"
    assert sasl.decode_response(b"=") == b""
    assert sasl.decode_response(b"") == b""
    with pytest.raises(sasl.SaslCancelled, match="Authentication cancelled"):
        sasl.decode_response(b" * ")
    with pytest.raises(sasl.SaslMalformed, match="Invalid base64"):
        sasl.decode_response(b"not base64!")
    # Strict mode: missing padding is malformed, not silently repaired.
    with pytest.raises(sasl.SaslMalformed):
        sasl.decode_response(b"YWJj\x00")
    with pytest.raises(sasl.SaslMalformed):
        sasl.decode_response(b"YQ")


def test_parse_plain() -> None:
    assert sasl.parse_plain(b"\x00alice\x00secret") == ("alice", "secret")
    assert sasl.parse_plain(b"alice\x00alice\x00secret") == ("alice", "secret")
    assert sasl.parse_plain("\x00j\u00fcrgen\x00p\u00e4ss".encode()) == (
        "j\u00fcrgen",
        "p\u00e4ss",
    )
    # An empty password is a (wrong) password, not a malformed message.
    assert sasl.parse_plain(b"\x00alice\x00") == ("alice", "")
    for bad in (
        b"alice\x00secret",  # one NUL
        b"\x00a\x00b\x00c",  # three NULs
        b"bob\x00alice\x00secret",  # acting as another user
        b"\x00al\xffice\x00secret",  # not UTF-8
        b"",
    ):
        with pytest.raises(sasl.SaslFailed, match="Authentication failed"):
            sasl.parse_plain(bad)


def test_utf8() -> None:
    assert sasl.utf8("caf\u00e9".encode()) == "caf\u00e9"
    with pytest.raises(sasl.SaslFailed):
        sasl.utf8(b"\xc3")


async def test_plain_exchange_with_and_without_initial_response() -> None:
    client = Client()
    assert await sasl.exchange("PLAIN", b64(b"\x00a\x00p"), client) == ("a", "p")
    assert client.challenges == []
    client = Client(b64(b"\x00a\x00p"))
    assert await sasl.exchange("PLAIN", None, client) == ("a", "p")
    assert client.challenges == [b""]
    with pytest.raises(sasl.SaslCancelled):
        await sasl.exchange("PLAIN", None, Client(b"*"))
    with pytest.raises(sasl.SaslFailed):
        await sasl.exchange("PLAIN", b"=", Client())


async def test_login_exchange() -> None:
    client = Client(b64(b"alice"), b64(b"secret"))
    assert await sasl.exchange("LOGIN", None, client) == ("alice", "secret")
    assert client.challenges == [b"Username:", b"Password:"]
    # RFC 4959 section 3: an initial response for LOGIN is the username.
    client = Client(b64(b"secret"))
    assert await sasl.exchange("LOGIN", b64(b"alice"), client) == ("alice", "secret")
    assert client.challenges == [b"Password:"]
    # A username that is not UTF-8 still gets the password challenge, then
    # fails like a wrong password (the answer does not tell which).
    client = Client(b64(b"\xff"), b64(b"secret"))
    with pytest.raises(sasl.SaslFailed):
        await sasl.exchange("LOGIN", None, client)
    assert client.challenges == [b"Username:", b"Password:"]
    with pytest.raises(sasl.SaslCancelled):
        await sasl.exchange("LOGIN", None, Client(b64(b"alice"), b"*"))


async def test_exchange_refuses_unknown_mechanism() -> None:
    with pytest.raises(ValueError, match="CRAM-MD5"):
        await sasl.exchange("CRAM-MD5", None, Client())


@given(st.binary(max_size=200))
def test_random_responses_raise_only_neutral_errors(data: bytes) -> None:
    try:
        decoded = sasl.decode_response(data)
    except (sasl.SaslCancelled, sasl.SaslMalformed):
        return
    with contextlib.suppress(sasl.SaslFailed):
        sasl.parse_plain(decoded)
    with contextlib.suppress(sasl.SaslFailed):
        sasl.utf8(decoded)


@given(st.binary(max_size=100), st.binary(max_size=100), st.binary(max_size=100))
def test_random_plain_messages_raise_only_failed(
    authzid: bytes, authcid: bytes, password: bytes
) -> None:
    message = b"\x00".join((authzid, authcid, password))
    try:
        user, secret = sasl.parse_plain(message)
    except sasl.SaslFailed:
        return
    assert user.encode() == authcid and secret.encode() == password
    assert authzid in (b"", authcid)


@given(
    st.sampled_from(sasl.MECHANISMS),
    st.none() | st.binary(max_size=60),
    st.lists(st.binary(max_size=60), min_size=2, max_size=2),
)
def test_random_exchanges_raise_only_neutral_errors(
    mechanism: str, initial: bytes | None, answers: list[bytes]
) -> None:
    with contextlib.suppress(sasl.SaslError):
        asyncio.run(sasl.exchange(mechanism, initial, Client(*answers)))
