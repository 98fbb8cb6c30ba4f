"""SCRAM-SHA-256 server side: SASLprep, messages, keys, the exchange, and
the password-file authenticator's SCRAM lookups (RFC 4013, 5802, 7677).

The wire answers in IMAP and POP3 are in test_auth_scram_protocols.py;
real clients over real sockets in worker mode in test_auth_scram_sockets.py.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asimap.auth import hashers, sasl, scram, scram_exchange
from asimap.auth.account import Account
from asimap.auth.authenticator import PasswordFileAuthenticator
from asimap.auth.pwfile import PasswordFile
from asimap.auth.saslprep import SaslprepError, saslprep
from asimap.auth.scram_exchange import ScramLookup
from asimap.auth.throttle import LoginPenalty
from scram_client import ScramClient

# RFC 7677 section 3, the SCRAM-SHA-256 example (user "user", "pencil").
RFC_CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
RFC_SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
RFC_CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
RFC_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def rfc_credentials() -> scram.ScramCredentials:
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", salt, 4096)
    return scram.credentials_from_salted_password(salt, 4096, salted)


class OneUser:
    """A ScramAuthenticator with one account and fixed credentials."""

    def __init__(self, username: str, credentials: scram.ScramCredentials) -> None:
        self.username = username
        self.credentials = credentials
        self.outcomes: list[bool] = []

    async def scram_lookup(self, username: str) -> ScramLookup:
        if username == self.username:
            return ScramLookup(
                username, self.credentials, Account(username, Path("/mail"))
            )
        fake = scram.fake_credentials(b"k" * 32, username, 4096)
        return ScramLookup(username, fake, None)

    async def scram_outcome(
        self, lookup: ScramLookup, proof_valid: bool, peer_host: str
    ) -> Account | None:
        self.outcomes.append(proof_valid)
        return lookup.account if proof_valid else None


class Script:
    """Answers challenges in order (already base64-encoded, as on the wire)
    and records the decoded challenges."""

    def __init__(self, *answers: bytes) -> None:
        self.answers = list(answers)
        self.challenges: list[bytes] = []

    async def __call__(self, challenge: bytes) -> bytes:
        self.challenges.append(challenge)
        return self.answers.pop(0)


@pytest.fixture
def rfc_nonce(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scram_exchange, "server_nonce", lambda: RFC_SERVER_NONCE)


# --- SASLprep (RFC 4013) ---------------------------------------------------


def test_saslprep_rfc4013_section3_examples() -> None:
    assert saslprep("I\u00adX") == "IX"  # SOFT HYPHEN mapped to nothing
    assert saslprep("user") == "user"
    assert saslprep("USER") == "USER"  # case preserved
    assert saslprep("\u00aa") == "a"  # NFKC
    assert saslprep("\u2168") == "IX"  # NFKC
    with pytest.raises(SaslprepError):
        saslprep("\u0007")  # prohibited (C.2.1)
    with pytest.raises(SaslprepError):
        saslprep("\u0627\u0031")  # bidi: must end with an RandALCat


def test_saslprep_spaces_unassigned_and_bidi() -> None:
    assert saslprep("a\u00a0b\u3000c") == "a b c"  # C.1.2 to SPACE
    assert saslprep("\u0627\u0628") == "\u0627\u0628"  # all right-to-left
    with pytest.raises(SaslprepError):
        saslprep("\u0627a\u0628")  # mixes RandALCat and LCat
    with pytest.raises(SaslprepError):
        saslprep("x\ue000")  # private use (C.3)
    # U+0221 was unassigned in Unicode 3.2 (RFC 3454 table A.1).
    with pytest.raises(SaslprepError, match="unassigned"):
        saslprep("\u0221")
    assert saslprep("\u0221", allow_unassigned=True) == "\u0221"


# --- RFC 7677 section 3 example ---------------------------------------------


def test_rfc7677_keys_reproduce_the_example_proof() -> None:
    credentials = rfc_credentials()
    bare = RFC_CLIENT_FIRST[3:]
    without_proof = RFC_CLIENT_FINAL.rsplit(b",p=", 1)[0]
    auth_message = b",".join((bare, RFC_SERVER_FIRST, without_proof))
    proof = base64.b64decode(RFC_CLIENT_FINAL.rsplit(b",p=", 1)[1])
    assert scram.verify_proof(credentials, auth_message, proof)
    assert not scram.verify_proof(credentials, auth_message, bytes(32))
    assert not scram.verify_proof(credentials, auth_message, proof[:-1])
    signature = scram.server_signature(credentials, auth_message)
    assert scram.server_final_message(signature) == RFC_SERVER_FINAL


async def test_rfc7677_exchange_with_the_fixed_nonce(rfc_nonce: None) -> None:
    auth = OneUser("user", rfc_credentials())
    client = Script(b64(RFC_CLIENT_FINAL), b"")
    account = await scram_exchange.exchange(
        b64(RFC_CLIENT_FIRST), client, auth, "192.0.2.1"
    )
    assert account.username == "user"
    assert client.challenges == [RFC_SERVER_FIRST, RFC_SERVER_FINAL]
    assert auth.outcomes == [True]


async def test_rfc7677_exchange_without_initial_response(rfc_nonce: None) -> None:
    auth = OneUser("user", rfc_credentials())
    client = Script(b64(RFC_CLIENT_FIRST), b64(RFC_CLIENT_FINAL), b"=")
    account = await scram_exchange.exchange(None, client, auth, "192.0.2.1")
    assert account.username == "user"
    assert client.challenges == [b"", RFC_SERVER_FIRST, RFC_SERVER_FINAL]


# --- Django hashes and fake credentials -------------------------------------


def test_django_pbkdf2_sha256_hash_is_scram_material() -> None:
    encoded = hashers.make_password("pencil", iterations=1000)
    credentials = scram.credentials_from_django(encoded)
    assert credentials is not None
    salt_text = encoded.split("$")[2]
    assert credentials.salt == salt_text.encode()
    assert credentials.iterations == 1000
    # The test client, from the password alone, proves it to the server.
    client = ScramClient("u", "pencil", nonce="abc")
    server_first = scram.server_first_message("abcXYZ", credentials)
    final = scram.parse_client_final(client.final(server_first))
    auth_message = b",".join((client.bare.encode(), server_first, final.without_proof))
    assert scram.verify_proof(credentials, auth_message, final.proof)
    client.check_server(
        scram.server_final_message(scram.server_signature(credentials, auth_message))
    )


@pytest.mark.parametrize(
    "encoded",
    [
        "pbkdf2_sha1$1000$salt$" + base64.b64encode(bytes(20)).decode(),
        "md5$salt$" + "0" * 32,
        "!unusable",
        "pbkdf2_sha256$0$salt$" + base64.b64encode(bytes(32)).decode(),
        "pbkdf2_sha256$x$salt$" + base64.b64encode(bytes(32)).decode(),
        "pbkdf2_sha256$1000$$" + base64.b64encode(bytes(32)).decode(),
        "pbkdf2_sha256$1000$salt$" + base64.b64encode(bytes(31)).decode(),
        "pbkdf2_sha256$1000$salt$not*base64",
        "pbkdf2_sha256$1000$salt",
    ],
)
def test_other_hashes_give_no_credentials(encoded: str) -> None:
    assert scram.credentials_from_django(encoded) is None


def test_fake_credentials_are_stable_per_name_and_look_real() -> None:
    a1 = scram.fake_credentials(b"secret", "ghost", 600_000)
    a2 = scram.fake_credentials(b"secret", "ghost", 600_000)
    b = scram.fake_credentials(b"secret", "other", 600_000)
    c = scram.fake_credentials(b"another secret", "ghost", 600_000)
    assert a1 == a2
    assert a1.salt != b.salt and a1.salt != c.salt
    assert len(a1.salt) == 22 and a1.salt.decode().isalnum()
    assert a1.iterations == 600_000


# --- message parsing --------------------------------------------------------


def test_parse_client_first_forms() -> None:
    first = scram.parse_client_first(b"n,,n=user,r=abc")
    assert (first.username, first.client_nonce) == ("user", "abc")
    assert (first.gs2_header, first.bare) == (b"n,,", b"n=user,r=abc")
    # "y": the client could bind but believes we cannot -- true, accepted.
    assert scram.parse_client_first(b"y,,n=user,r=abc").gs2_header == b"y,,"
    # An authzid equal to the user; escapes; SASLprep; extensions ignored.
    first = scram.parse_client_first(b"n,a=a=2Cb,n=a=2Cb,r=x,q=ext")
    assert first.username == "a,b" and first.bare == b"n=a=2Cb,r=x,q=ext"
    assert scram.parse_client_first(b"n,,n=x=3Dy,r=n").username == "x=y"
    assert scram.parse_client_first("n,,n=I\u00adX,r=n".encode()).username == "IX"


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (b"p=tls-unique,,n=user,r=abc", scram.CHANNEL_BINDING_NOT_SUPPORTED),
        (b"p=tls-exporter,,n=user,r=abc", scram.CHANNEL_BINDING_NOT_SUPPORTED),
        (b"x,,n=user,r=abc", scram.INVALID_ENCODING),
        (b"n,n=user,r=abc", scram.INVALID_ENCODING),
        (b"n,b=user,n=user,r=abc", scram.INVALID_ENCODING),
        (b"n,,r=abc,n=user", scram.INVALID_ENCODING),  # attribute order
        (b"n,,n=user", scram.INVALID_ENCODING),
        (b"n,,n=user,r=", scram.INVALID_ENCODING),
        (b"n,,n=user,r=a\x7fb", scram.INVALID_ENCODING),
        (b"n,,n=user,r=abc,junk", scram.INVALID_ENCODING),
        (b"n,,n=,r=abc", scram.INVALID_ENCODING),
        (b"n,,m=ext,n=user,r=abc", scram.EXTENSIONS_NOT_SUPPORTED),
        (b"n,,n=us=er,r=abc", scram.INVALID_USERNAME_ENCODING),
        (b"n,,n=us=2,r=abc", scram.INVALID_USERNAME_ENCODING),
        (b"n,,n=\xff,r=abc", scram.INVALID_ENCODING),
        ("n,,n=a\u0007,r=abc".encode(), scram.INVALID_USERNAME_ENCODING),
        ("n,,n=\u00ad,r=abc".encode(), scram.INVALID_USERNAME_ENCODING),
        (b"n,a=other,n=user,r=abc", scram.OTHER_ERROR),  # acting as another
        (b"", scram.INVALID_ENCODING),
    ],
)
def test_parse_client_first_errors(message: bytes, code: str) -> None:
    with pytest.raises(scram.ScramError) as info:
        scram.parse_client_first(message)
    assert info.value.code == code
    assert isinstance(info.value, sasl.SaslFailed)
    assert str(info.value) == f"Authentication failed: {code}"


def test_parse_client_final() -> None:
    final = scram.parse_client_final(b"c=biws,r=abc,x=1,p=AAAA")
    assert final.channel_binding == b"n,,"
    assert (final.nonce, final.proof) == ("abc", b"\x00\x00\x00")
    assert final.without_proof == b"c=biws,r=abc,x=1"
    for bad in (
        b"c=biws,r=abc",
        b"r=abc,c=biws,p=AAAA",
        b"c=biws,r=abc,p=AAA",
        b"c=bi*s,r=abc,p=AAAA",
        b"c=biws,r=abc,1,p=AAAA",
        b"c=biws,p=AAAA,r=abc",
        b"\xff",
    ):
        with pytest.raises(scram.ScramError) as info:
            scram.parse_client_final(bad)
        assert info.value.code == scram.INVALID_ENCODING, bad


def test_invalid_proof_text_is_the_common_failure_text() -> None:
    assert str(scram.ScramError(scram.INVALID_PROOF)) == sasl.FAILED


# --- the exchange's failures --------------------------------------------------


async def run_client(
    client: ScramClient,
    auth: OneUser,
    *,
    tamper_proof: bool = False,
    nonce_override: str | None = None,
    channel_binding: bytes | None = None,
    ack: bytes = b"",
) -> tuple[list[bytes], BaseException | Account]:
    """Drive the exchange with ``client``; return the challenges seen and
    the account or the exception raised."""
    challenges: list[bytes] = []

    async def answer(challenge: bytes) -> bytes:
        challenges.append(challenge)
        if challenge.startswith(b"r="):
            final = client.final(
                challenge, tamper_proof=tamper_proof, nonce_override=nonce_override
            )
            if channel_binding is not None:
                final = b"c=" + b64(channel_binding) + final[final.index(b",") :]
            return b64(final)
        return ack

    try:
        return challenges, await scram_exchange.exchange(
            b64(client.first()), answer, auth, "192.0.2.1"
        )
    except sasl.SaslError as exc:
        return challenges, exc


async def test_exchange_success_checks_the_server_signature() -> None:
    auth = OneUser("user", rfc_credentials())
    client = ScramClient("user", "pencil")
    challenges, result = await run_client(client, auth)
    assert isinstance(result, Account)
    assert len(challenges) == 2
    client.check_server(challenges[1])


@pytest.mark.parametrize(
    ("username", "password", "options", "code"),
    [
        ("user", "wrong", {}, scram.INVALID_PROOF),
        ("ghost", "pencil", {}, scram.INVALID_PROOF),  # unknown user
        ("user", "pencil", {"tamper_proof": True}, scram.INVALID_PROOF),
        ("user", "pencil", {"nonce_override": "abc"}, scram.OTHER_ERROR),
        (
            "user",
            "pencil",
            {"channel_binding": b"y,,"},
            scram.CHANNEL_BINDINGS_DONT_MATCH,
        ),
    ],
)
async def test_exchange_failures_end_without_another_challenge(
    username: str, password: str, options: dict[str, object], code: str
) -> None:
    auth = OneUser("user", rfc_credentials())
    client = ScramClient(username, password, nonce="clientnonce")
    if "nonce_override" in options:
        # Only the client's own part of the nonce: not what we sent.
        options = {"nonce_override": client.nonce}
    challenges, result = await run_client(client, auth, **options)  # type: ignore[arg-type]
    assert isinstance(result, scram.ScramError)
    assert result.code == code
    # RFC 5802 section 5.1 "e": no server-final-message on failure (see
    # scram_exchange: an e= challenge hangs Cyrus SASL clients).
    assert len(challenges) == 1
    assert challenges[0].startswith(b"r=clientnonce")
    if code == scram.INVALID_PROOF:
        assert auth.outcomes == [False]
    else:
        assert auth.outcomes == []  # refused before looking at the proof


async def test_exchange_unknown_user_sees_a_stable_fake_salt() -> None:
    auth = OneUser("user", rfc_credentials())
    salts = set()
    for _ in range(2):
        challenges, _result = await run_client(ScramClient("ghost", "x"), auth)
        salts.add(challenges[0].split(b",")[1])
    assert len(salts) == 1


async def test_exchange_bad_gs2_header_fails_before_any_lookup() -> None:
    auth = OneUser("user", rfc_credentials())
    client = Script()
    with pytest.raises(scram.ScramError) as info:
        await scram_exchange.exchange(
            b64(b"p=tls-server-end-point,,n=user,r=abc"), client, auth, "h"
        )
    assert info.value.code == scram.CHANNEL_BINDING_NOT_SUPPORTED
    assert client.challenges == []
    assert auth.outcomes == []


async def test_exchange_cancel_and_malformed_base64() -> None:
    auth = OneUser("user", rfc_credentials())
    with pytest.raises(sasl.SaslCancelled):
        await scram_exchange.exchange(b"*", Script(), auth, "h")
    with pytest.raises(sasl.SaslCancelled):
        await scram_exchange.exchange(None, Script(b"*"), auth, "h")
    with pytest.raises(sasl.SaslCancelled):
        await scram_exchange.exchange(
            b64(ScramClient("user", "pencil").first()), Script(b"*"), auth, "h"
        )
    with pytest.raises(sasl.SaslMalformed):
        await scram_exchange.exchange(b"!!", Script(), auth, "h")
    with pytest.raises(sasl.SaslMalformed):
        await scram_exchange.exchange(
            b64(ScramClient("user", "pencil").first()), Script(b"%%%"), auth, "h"
        )


async def test_exchange_success_needs_an_empty_acknowledgement() -> None:
    auth = OneUser("user", rfc_credentials())
    _challenges, result = await run_client(
        ScramClient("user", "pencil"), auth, ack=b"*"
    )
    assert isinstance(result, sasl.SaslCancelled)
    _challenges, result = await run_client(
        ScramClient("user", "pencil"), auth, ack=b64(b"extra")
    )
    assert isinstance(result, scram.ScramError)
    assert result.code == scram.OTHER_ERROR


# --- PasswordFileAuthenticator ----------------------------------------------


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.now = 1000.0
        self.delays: list[float] = []
        path = tmp_path / "pwfile"
        lines = [
            f"alice:{hashers.make_password('alice-pw', iterations=1000)}:alice",
            f"carol:{hashers.make_password('carol-pw', iterations=1000)}:carol",
            f"dave:{hashers.make_password('dave-pw', iterations=2000)}:dave",
            "bob:md5$salt$" + hashlib.md5(b"saltbob-pw").hexdigest() + ":bob",
            "eve:!unusable:eve",
        ]
        path.write_text("\n".join(lines) + "\n")
        self.auth = PasswordFileAuthenticator(
            PasswordFile(path, check_interval=0.0, clock=self.clock),
            penalty=LoginPenalty(clock=self.clock),
            failure_delay=0.5,
            sleep=self.sleep,
            scram_secret=b"s" * 32,
        )

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    harness.auth.close()


async def test_lookup_real_and_fake(h: Harness) -> None:
    alice = await h.auth.scram_lookup("alice")
    assert alice.account is not None and alice.account.username == "alice"
    assert alice.credentials.iterations == 1000
    for name in ("bob", "eve", "nobody"):  # md5, unusable, unknown
        lookup = await h.auth.scram_lookup(name)
        assert lookup.account is None
        # The most common real iteration count (two users at 1000).
        assert lookup.credentials.iterations == 1000
        assert lookup.credentials == (await h.auth.scram_lookup(name)).credentials


async def test_outcome_success_failure_and_penalty(h: Harness) -> None:
    alice = await h.auth.scram_lookup("alice")
    assert await h.auth.scram_outcome(alice, True, "192.0.2.1") == alice.account
    assert h.delays == []
    assert await h.auth.scram_outcome(alice, False, "192.0.2.1") is None
    assert h.delays == [0.5]
    ghost = await h.auth.scram_lookup("bob")
    assert await h.auth.scram_outcome(ghost, True, "192.0.2.1") is None
    assert await h.auth.scram_outcome(alice, False, "192.0.2.1") is None
    # Two failures for alice from this address: a valid proof still gets
    # in, after the pair's penalty (2 s), and the other address at once.
    assert await h.auth.scram_outcome(alice, True, "192.0.2.1") == alice.account
    assert h.delays[-1] == 2.0
    h.delays.clear()
    assert await h.auth.scram_outcome(alice, True, "192.0.2.2") == alice.account
    assert h.delays == []


async def test_full_exchange_against_the_password_file(h: Harness) -> None:
    for user, password, ok in (
        ("alice", "alice-pw", True),
        ("alice", "wrong", False),
        ("bob", "bob-pw", False),  # right password, but an md5 hash
        ("eve", "", False),
        ("nobody", "x", False),
    ):
        client = ScramClient(user, password)
        challenges: list[bytes] = []

        async def answer(
            challenge: bytes,
            client: ScramClient = client,
            challenges: list[bytes] = challenges,
        ) -> bytes:
            challenges.append(challenge)
            if challenge.startswith(b"r="):
                return b64(client.final(challenge))
            return b""

        try:
            account = await scram_exchange.exchange(
                b64(client.first()), answer, h.auth, "192.0.2.9"
            )
        except scram.ScramError as exc:
            assert not ok and exc.code == scram.INVALID_PROOF, user
            assert len(challenges) == 1
        else:
            assert ok and account.username == user
            client.check_server(challenges[-1])


# --- totality: any input is a result or a ScramError ------------------------

_SCRAM_BYTES = st.one_of(
    st.binary(max_size=80),
    st.lists(
        st.sampled_from(
            [
                b"n",
                b"y",
                b"p=x",
                b"a=u",
                b"n=user",
                b"r=abc",
                b"m=1",
                b"c=biws",
                b"p=AAAA",
                b"x=1",
                b"=",
                b"=2C",
                b"",
                b"\xff",
                b"\x00",
            ]
        ),
        max_size=6,
    ).map(b",".join),
)


@given(_SCRAM_BYTES)
def test_parsers_are_total(data: bytes) -> None:
    for parse in (scram.parse_client_first, scram.parse_client_final):
        try:
            parse(data)
        except scram.ScramError as exc:
            assert exc.code in {
                scram.INVALID_ENCODING,
                scram.EXTENSIONS_NOT_SUPPORTED,
                scram.CHANNEL_BINDING_NOT_SUPPORTED,
                scram.INVALID_USERNAME_ENCODING,
                scram.OTHER_ERROR,
            }


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=4), _SCRAM_BYTES)
def test_exchange_raises_only_sasl_errors(answers: list[bytes], first: bytes) -> None:
    auth = OneUser("user", rfc_credentials())
    # Alternate raw and base64-encoded answers, so both malformed lines
    # and well-framed nonsense reach the SCRAM parsers.
    encoded = [b64(a) if i % 2 else a for i, a in enumerate(answers)]
    script = Script(*encoded, *([b""] * 4))
    with pytest.raises(sasl.SaslError):
        asyncio.run(scram_exchange.exchange(b64(first), script, auth, "h"))
