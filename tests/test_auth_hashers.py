"""Our hash verification against hashes that Django itself produced.

design.md section 2: a password saved by a Django application must work
unchanged.  So every format is generated here by Django's own hashers (the
test dependency), then verified by ``asimap.auth.hashers`` with the right and
a wrong password; and our ``make_password`` output is checked by Django.
"""

from __future__ import annotations

import hashlib
import logging

import argon2
import django
import pytest
from django.conf import settings

from asimap.auth import hashers

if not settings.configured:
    settings.configure(
        PASSWORD_HASHERS=[
            "django.contrib.auth.hashers.PBKDF2PasswordHasher",
            "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
            "django.contrib.auth.hashers.Argon2PasswordHasher",
            "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
            "django.contrib.auth.hashers.BCryptPasswordHasher",
            "django.contrib.auth.hashers.ScryptPasswordHasher",
            "django.contrib.auth.hashers.MD5PasswordHasher",
        ],
        USE_I18N=False,
    )
    django.setup()

from django.contrib.auth import hashers as dj


class _Argon2i(dj.Argon2PasswordHasher):
    """Django's argon2 hasher producing the argon2i variant (Django < 2.0)."""

    def params(self) -> argon2.Parameters:
        params = super().params()
        return argon2.Parameters(
            type=argon2.low_level.Type.I,
            version=params.version,
            salt_len=params.salt_len,
            hash_len=params.hash_len,
            time_cost=params.time_cost,
            memory_cost=params.memory_cost,
            parallelism=params.parallelism,
        )


class _Argon2d(_Argon2i):
    def params(self) -> argon2.Parameters:
        params = super().params()
        params.type = argon2.low_level.Type.D
        return params


class _CheapPBKDF2(dj.PBKDF2PasswordHasher):
    iterations = 1000


PASSWORD = "correct horse battery staple ünïcödé"

DJANGO_HASHERS: dict[str, object] = {
    "pbkdf2_sha256": "pbkdf2_sha256",
    "pbkdf2_sha256_cheap": _CheapPBKDF2(),
    "pbkdf2_sha1": "pbkdf2_sha1",
    "argon2id": "argon2",
    "argon2i": _Argon2i(),
    "argon2d": _Argon2d(),
    "bcrypt_sha256": "bcrypt_sha256",
    "bcrypt": "bcrypt",
    "scrypt": "scrypt",
    "md5": "md5",
}


@pytest.fixture(scope="module", params=sorted(DJANGO_HASHERS))
def django_hash(request: pytest.FixtureRequest) -> str:
    encoded: str = dj.make_password(PASSWORD, hasher=DJANGO_HASHERS[request.param])
    return encoded


def test_django_hash_verifies_with_right_password(django_hash: str) -> None:
    assert hashers.verify_password(PASSWORD, django_hash)


def test_django_hash_rejects_wrong_password(django_hash: str) -> None:
    assert not hashers.verify_password(PASSWORD[:-1], django_hash)


def test_argon2_variants_are_the_ones_requested() -> None:
    assert dj.make_password("p", hasher=_Argon2i()).startswith("argon2$argon2i$")
    assert dj.make_password("p", hasher=_Argon2d()).startswith("argon2$argon2d$")
    assert dj.make_password("p", hasher="argon2").startswith("argon2$argon2id$v=19$")


def test_bcrypt_long_password_truncated_as_when_hashed() -> None:
    # Old bcrypt versions silently used only the first 72 bytes; a hash made
    # that way must still verify although bcrypt 5 refuses long input.
    import bcrypt

    long_password = "a" * 80
    encoded = "bcrypt$" + bcrypt.hashpw(b"a" * 72, bcrypt.gensalt(4)).decode()
    assert hashers.verify_password(long_password, encoded)
    assert not hashers.verify_password("a" * 71, encoded)


def test_unsalted_md5_and_sha1_legacy_forms() -> None:
    # Django 5.1 removed these hashers; the formats are those of its
    # UnsaltedMD5PasswordHasher and UnsaltedSHA1PasswordHasher.
    md5_hex = hashlib.md5(PASSWORD.encode()).hexdigest()
    sha1_hex = hashlib.sha1(PASSWORD.encode()).hexdigest()
    for encoded in (md5_hex, "md5$$" + md5_hex, "sha1$$" + sha1_hex):
        assert hashers.verify_password(PASSWORD, encoded), encoded
        assert not hashers.verify_password("wrong", encoded), encoded
    assert hashers.identify_algorithm(md5_hex) == "unsalted_md5"
    assert hashers.identify_algorithm("md5$$" + md5_hex) == "unsalted_md5"
    assert hashers.identify_algorithm("sha1$$" + sha1_hex) == "unsalted_sha1"


def test_unusable_password_never_verifies() -> None:
    unusable = dj.make_password(None)
    assert unusable.startswith("!")
    assert not hashers.verify_password("", unusable)
    assert not hashers.verify_password(unusable, unusable)
    ours = hashers.make_unusable_password()
    assert not dj.is_password_usable(ours)
    assert not hashers.verify_password(ours, ours)
    assert ours != hashers.make_unusable_password()


def test_unusable_prefix_on_a_valid_hash_still_refused() -> None:
    encoded = dj.make_password(PASSWORD, hasher=_CheapPBKDF2())
    assert not hashers.verify_password(PASSWORD, "!" + encoded)


def test_our_make_password_is_django_default_and_django_accepts_it() -> None:
    encoded = hashers.make_password(PASSWORD)
    algorithm, iterations, salt, _hash = encoded.split("$")
    assert algorithm == "pbkdf2_sha256"
    assert int(iterations) == dj.PBKDF2PasswordHasher.iterations
    assert len(salt) >= 22
    assert dj.check_password(PASSWORD, encoded)
    assert not dj.check_password(PASSWORD + "x", encoded)
    # Django would not ask to re-hash it: same hasher, same work factor.
    assert not dj.get_hasher("default").must_update(encoded)
    assert hashers.verify_password(PASSWORD, encoded)


def test_make_password_salts_differ() -> None:
    assert hashers.make_password("p", iterations=10) != hashers.make_password(
        "p", iterations=10
    )


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "plaintext",
        "sha256$$abcd",
        "pbkdf2_sha256$notanumber$salt$hash",
        "pbkdf2_sha256$1000$salt",
        "pbkdf2_sha256$0$salt$hash",
        "argon2$argon2id$garbage",
        "bcrypt_sha256$$2b$12$short",
        "bcrypt$$nonsense",
        "scrypt$16384$salt$8$5",
        "scrypt$1099511627776$salt$8$5$hash",
        "md5$onlysalt",
        "z" * 32,
        "md5$$" + "z" * 32,
    ],
)
def test_malformed_or_unknown_hashes_never_verify(encoded: str) -> None:
    assert not hashers.verify_password("anything", encoded)
    assert not hashers.verify_password("", encoded)


def test_unknown_algorithm_warned_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="asimap.auth.hashers"):
        for _ in range(3):
            assert not hashers.verify_password("p", "rot13_unique_test$x$y")
    messages = [r for r in caplog.records if "rot13_unique_test" in r.getMessage()]
    assert len(messages) == 1


def test_every_supported_algorithm_is_covered_here() -> None:
    covered = {
        dj.identify_hasher(dj.make_password("p", hasher=h)).algorithm
        for h in ("md5", "pbkdf2_sha1")
    } | {
        "pbkdf2_sha256",
        "argon2",
        "bcrypt_sha256",
        "bcrypt",
        "scrypt",
        "unsalted_md5",
        "unsalted_sha1",
    }
    assert covered == hashers.SUPPORTED_ALGORITHMS
