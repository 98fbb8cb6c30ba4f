"""Verify and create password hashes in Django's formats.

design.md section 2 makes the password file's hash column Django's
``algorithm$...`` encoding, so that a password saved by a Django application
(asimap 2.x's admin site, for one) works here unchanged.  We do not import
Django at run time: each format is small and fully specified by the
primitives underneath it (``hashlib``, ``argon2-cffi``, ``bcrypt``), and the
tests check every format against hashes Django itself produced.

Formats (``$`` separates fields; none of them contains ``:``):

* ``pbkdf2_sha256$<iterations>$<salt>$<base64 hash>`` and ``pbkdf2_sha1$...``
* ``argon2$argon2id$v=19$m=..,t=..,p=..$<salt>$<hash>`` (also ``argon2i`` and
  ``argon2d``, which older Django versions or custom hashers produce)
* ``bcrypt_sha256$$2b$<cost>$<salt+hash>`` (password pre-hashed with SHA-256)
  and ``bcrypt$$2b$...`` (raw password, truncated to 72 bytes by bcrypt)
* ``scrypt$<n>$<salt>$<r>$<p>$<base64 hash>``
* ``md5$<salt>$<hex>`` (salted, legacy)
* ``md5$$<hex>`` or a bare 32-hex-digit string (unsalted MD5, read-only) and
  ``sha1$$<hex>`` (unsalted SHA-1, read-only)

A hash starting with ``!`` is Django's "unusable password"; it never
verifies.  An unknown or malformed hash never verifies either, and is
reported once per algorithm name so that a typo in the password file is
visible without flooding the log.

Every comparison of secrets is constant time (``hmac.compare_digest``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import string
from collections.abc import Callable

import argon2
import bcrypt

log = logging.getLogger(__name__)

#: Prefix of an unusable password (Django's ``UNUSABLE_PASSWORD_PREFIX``).
UNUSABLE_PREFIX = "!"

#: Django 5.2's ``PBKDF2PasswordHasher.iterations``.  We create new hashes
#: with Django's *default* hasher and work factor so that a Django
#: application sharing the password file neither rejects nor immediately
#: re-hashes what ``asimapd_set_password`` wrote, and so that our hashes are
#: no weaker than what the Django project currently recommends.  PBKDF2 needs
#: nothing but the standard library, which keeps the file usable from any
#: Django installation (argon2/bcrypt need optional libraries there).
DEFAULT_PBKDF2_ITERATIONS = 1_000_000

#: Django's salt alphabet and length (128 bits of entropy, 22 characters).
_SALT_CHARS = string.ascii_letters + string.digits
_SALT_LENGTH = 22

#: Upper bound on the memory one scrypt verification may use.  The password
#: file is trusted, but a typo in ``n`` must not exhaust the machine.
_SCRYPT_MAX_MEMORY = 512 * 1024 * 1024

#: Upper bound on PBKDF2 iterations, for the same reason.
_PBKDF2_MAX_ITERATIONS = 100_000_000

_HEX_DIGITS = frozenset(string.hexdigits)

_warned_algorithms: set[str] = set()


def is_usable(encoded: str) -> bool:
    """Whether ``encoded`` can ever verify (Django's ``is_password_usable``)."""
    return not encoded.startswith(UNUSABLE_PREFIX)


def identify_algorithm(encoded: str) -> str:
    """Name the algorithm of ``encoded`` the way Django's ``identify_hasher``
    does, including its special cases for ancient unsalted hashes."""
    if (len(encoded) == 32 and "$" not in encoded) or (
        len(encoded) == 37 and encoded.startswith("md5$$")
    ):
        return "unsalted_md5"
    if len(encoded) == 46 and encoded.startswith("sha1$$"):
        return "unsalted_sha1"
    return encoded.split("$", 1)[0]


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches ``encoded``.

    Never raises: a malformed hash is a failed verification, because the
    caller (a login) must answer NO rather than crash.  This is CPU-bound
    and slow by design; call it off the event loop.
    """
    if not is_usable(encoded):
        return False
    algorithm = identify_algorithm(encoded)
    verifier = _VERIFIERS.get(algorithm)
    if verifier is None:
        _warn_once(algorithm, "unknown password hash algorithm %r; never verifies")
        return False
    try:
        return verifier(password, encoded)
    except (ValueError, TypeError, binascii.Error, argon2.exceptions.InvalidHashError):
        _warn_once(algorithm, "malformed %r password hash; never verifies")
        return False


def make_password(password: str, iterations: int = DEFAULT_PBKDF2_ITERATIONS) -> str:
    """Hash ``password`` with Django's default hasher (``pbkdf2_sha256``).

    ``iterations`` exists for tests and benchmarks that must stay fast; the
    default matches Django 5.2 (see :data:`DEFAULT_PBKDF2_ITERATIONS`).
    """
    salt = "".join(secrets.choice(_SALT_CHARS) for _ in range(_SALT_LENGTH))
    return _pbkdf2_encode("pbkdf2_sha256", "sha256", password, salt, iterations)


def make_unusable_password() -> str:
    """A value that never verifies, unique so that two accounts without a
    password cannot be told apart from their hashes (as Django does)."""
    return UNUSABLE_PREFIX + secrets.token_urlsafe(30)


def _warn_once(algorithm: str, message: str) -> None:
    if algorithm not in _warned_algorithms:
        _warned_algorithms.add(algorithm)
        log.warning(message, algorithm)


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


# --- PBKDF2 -------------------------------------------------------------------


def _pbkdf2_encode(
    algorithm: str, digest: str, password: str, salt: str, iterations: int
) -> str:
    derived = hashlib.pbkdf2_hmac(digest, password.encode(), salt.encode(), iterations)
    hash_b64 = base64.b64encode(derived).decode("ascii").strip()
    return f"{algorithm}${iterations}${salt}${hash_b64}"


def _pbkdf2_verifier(digest: str) -> Callable[[str, str], bool]:
    def verify(password: str, encoded: str) -> bool:
        algorithm, iterations_text, salt, _hash = encoded.split("$", 3)
        iterations = int(iterations_text)
        if not 0 < iterations <= _PBKDF2_MAX_ITERATIONS:
            raise ValueError("iterations out of range")
        computed = _pbkdf2_encode(algorithm, digest, password, salt, iterations)
        return _equal(encoded, computed)

    return verify


# --- argon2 -------------------------------------------------------------------


def _verify_argon2(password: str, encoded: str) -> bool:
    # Django stores argon2-cffi's PHC string after an "argon2" prefix; the
    # PHC string names the variant (argon2id/argon2i/argon2d), which
    # argon2-cffi's verify() honours.
    _algorithm, rest = encoded.split("$", 1)
    try:
        return argon2.PasswordHasher().verify("$" + rest, password)
    except argon2.exceptions.VerificationError:
        return False


# --- bcrypt -------------------------------------------------------------------

#: bcrypt only ever used the first 72 bytes; bcrypt >= 5 refuses longer
#: input instead of truncating, so we truncate as the hash was made.
_BCRYPT_MAX_BYTES = 72


def _verify_bcrypt_sha256(password: str, encoded: str) -> bool:
    # Django pre-hashes with SHA-256 and hex-encodes, so bcrypt sees 64 bytes.
    _algorithm, data = encoded.split("$", 1)
    prehashed = binascii.hexlify(hashlib.sha256(password.encode()).digest())
    return bcrypt.checkpw(prehashed, data.encode("ascii"))


def _verify_bcrypt(password: str, encoded: str) -> bool:
    _algorithm, data = encoded.split("$", 1)
    raw = password.encode()[:_BCRYPT_MAX_BYTES]
    return bcrypt.checkpw(raw, data.encode("ascii"))


# --- scrypt -------------------------------------------------------------------


def _verify_scrypt(password: str, encoded: str) -> bool:
    algorithm, n_text, salt, r_text, p_text, _hash = encoded.split("$", 5)
    n, r, p = int(n_text), int(r_text), int(p_text)
    # scrypt needs about 128 * n * r bytes (plus 128 * r * p); refuse
    # parameters beyond our bound rather than let OpenSSL allocate them.
    needed = 128 * r * (n + p + 2)
    if needed > _SCRYPT_MAX_MEMORY:
        raise ValueError("scrypt parameters need too much memory")
    derived = hashlib.scrypt(
        password.encode(),
        salt=salt.encode(),
        n=n,
        r=r,
        p=p,
        maxmem=needed + 1024 * 1024,
        dklen=64,
    )
    hash_b64 = base64.b64encode(derived).decode("ascii").strip()
    return _equal(encoded, f"{algorithm}${n}${salt}${r}${p}${hash_b64}")


# --- legacy digests (read-only) -----------------------------------------------


def _verify_md5(password: str, encoded: str) -> bool:
    _algorithm, salt, hex_hash = encoded.split("$", 2)
    computed = hashlib.md5((salt + password).encode()).hexdigest()
    return _equal(hex_hash, computed)


def _verify_unsalted_md5(password: str, encoded: str) -> bool:
    hex_hash = encoded.removeprefix("md5$$")
    if not _HEX_DIGITS.issuperset(hex_hash):
        raise ValueError("not a hex digest")
    computed = hashlib.md5(password.encode()).hexdigest()
    return _equal(hex_hash.lower(), computed)


def _verify_unsalted_sha1(password: str, encoded: str) -> bool:
    hex_hash = encoded.removeprefix("sha1$$")
    computed = hashlib.sha1(password.encode()).hexdigest()
    return _equal(hex_hash.lower(), computed)


_VERIFIERS: dict[str, Callable[[str, str], bool]] = {
    "pbkdf2_sha256": _pbkdf2_verifier("sha256"),
    "pbkdf2_sha1": _pbkdf2_verifier("sha1"),
    "argon2": _verify_argon2,
    "bcrypt_sha256": _verify_bcrypt_sha256,
    "bcrypt": _verify_bcrypt,
    "scrypt": _verify_scrypt,
    "md5": _verify_md5,
    "unsalted_md5": _verify_unsalted_md5,
    "unsalted_sha1": _verify_unsalted_sha1,
}

#: The algorithms this module verifies, for documentation and tests.
SUPPORTED_ALGORITHMS = frozenset(_VERIFIERS)
