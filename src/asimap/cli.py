"""The ``asimapd`` command line: flags, environment, ``.env`` and defaults.

design.md section 2 is the contract asimap 2.x users rely on: each setting
comes from its flag, else its environment variable, else a ``.env`` file in
the current directory (which never overrides a real environment variable),
else the default.  Everything ends up in one immutable
:class:`asimap.config.Config`.

Errors are reported the argparse way -- a message on stderr and exit status
2 -- whether the bad value came from a flag or from the environment, so a
typo in a unit file fails at start-up instead of being silently ignored.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from dotenv import dotenv_values

from asimap import __version__
from asimap.config import Config

_T = TypeVar("_T")

#: Values accepted for boolean variables (compared case-insensitively).
_TRUE = frozenset({"1", "true", "yes"})
_FALSE = frozenset({"0", "false", "no", ""})

STORES = ("memory", "mh")
_DEFAULTS = Config()


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message names the setting."""


def parse_bool(name: str, value: str) -> bool:
    """design.md section 2: ``1/true/yes`` true, ``0/false/no/empty`` false."""
    folded = value.strip().lower()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise ConfigError(f"{name}: expected 1/true/yes or 0/false/no, got {value!r}")


def parse_port(name: str, value: str) -> int:
    """A TCP port number; 0 asks the system for a free one (tests)."""
    try:
        port = int(value.strip())
    except ValueError:
        raise ConfigError(f"{name}: not a port number: {value!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{name}: port out of range 0-65535: {port}")
    return port


def parse_rate(name: str, value: str) -> float:
    """A sampling rate between 0 and 1 (Sentry's)."""
    try:
        rate = float(value.strip())
    except ValueError:
        raise ConfigError(f"{name}: not a number: {value!r}") from None
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"{name}: must be between 0 and 1, got {rate}")
    return rate


def parse_switch(name: str, value: str) -> bool:
    """``on``/``off`` (``--workers=off``), or any boolean spelling."""
    folded = value.strip().lower()
    if folded == "on":
        return True
    if folded == "off":
        return False
    return parse_bool(name, value)


def parse_seconds(name: str, value: str) -> float:
    """A non-negative duration in seconds (``--worker-linger``)."""
    try:
        seconds = float(value.strip())
    except ValueError:
        raise ConfigError(f"{name}: not a number of seconds: {value!r}") from None
    if not 0.0 <= seconds < float("inf"):
        raise ConfigError(f"{name}: must be a finite number >= 0, got {value!r}")
    return seconds


def parse_count(name: str, value: str) -> int:
    """A positive whole number (``--max-workers``)."""
    try:
        count = int(value.strip())
    except ValueError:
        raise ConfigError(f"{name}: not a whole number: {value!r}") from None
    if count < 1:
        raise ConfigError(f"{name}: must be at least 1, got {count}")
    return count


#: Multipliers of the ``--quota-storage`` suffixes (powers of 1024, as
#: RFC 9208 section 5.1 counts STORAGE in units of 1024 octets).
_SIZE_SUFFIXES = {"": 1024, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(name: str, value: str) -> int:
    """A storage quota in octets, from KiB (``500000``, the unit GETQUOTA
    reports, RFC 9208 section 5.1) or with a binary suffix (``500M``,
    ``2G``; ``K``, ``M``, ``G``, ``T``, optionally followed by ``iB`` or
    ``B``)."""
    text = value.strip().upper()
    for tail in ("IB", "B"):
        if text.endswith(tail) and text[: -len(tail)][-1:] in "KMGT":
            text = text[: -len(tail)]
            break
    suffix = text[-1:] if text[-1:] in ("K", "M", "G", "T") else ""
    digits = text[: len(text) - len(suffix)].strip()
    if not digits.isdigit():
        raise ConfigError(f"{name}: not a size like 500000 (KiB) or 500M: {value!r}")
    octets = int(digits) * _SIZE_SUFFIXES[suffix]
    if octets < 1024:
        raise ConfigError(f"{name}: must be at least 1K, got {value!r}")
    return octets


_MEMORY = re.compile(r"(\d+)\s*([KMGT]?)(?:I?B)?")


def parse_memory(name: str, value: str) -> int | None:
    """A memory limit in octets, or with a binary suffix (``1G``, ``512M``,
    ``512MiB``); ``0``, ``off`` or ``none`` for no limit (None)."""
    text = value.strip().upper()
    if text in ("0", "OFF", "NONE", "UNLIMITED"):
        return None
    match = _MEMORY.fullmatch(text)
    if match is None:
        raise ConfigError(f"{name}: not a size like 1G or 512M (or off): {value!r}")
    suffix = match.group(2)
    octets = int(match.group(1)) * (1024 ** ("KMGT".index(suffix) + 1) if suffix else 1)
    if octets < 64 * 1024**2:
        raise ConfigError(f"{name}: must be at least 64M (or off), got {value!r}")
    return octets


def _memory_flag(name: str, value: str) -> int:
    """``--worker-memory-limit``: as :func:`parse_memory`, with "off" as
    :data:`_NO_LIMIT` (argparse's None means "not given")."""
    octets = parse_memory(name, value)
    return _NO_LIMIT if octets is None else octets


def parse_store(name: str, value: str) -> str:
    store = value.strip().lower()
    if store not in STORES:
        raise ConfigError(f"{name}: expected one of {', '.join(STORES)}: {value!r}")
    return store


def environment_with_dotenv(
    environ: Mapping[str, str], dotenv_path: Path | None = Path(".env")
) -> dict[str, str]:
    """``environ`` completed by the ``.env`` file, if there is one.

    Real environment variables win over the file (python-dotenv's own
    default), and the process environment is not modified: the result is
    a plain mapping that ``load_config`` reads from.
    """
    merged: dict[str, str] = {}
    if dotenv_path is not None and dotenv_path.is_file():
        for key, value in dotenv_values(dotenv_path).items():
            if value is not None:
                merged[key] = value
    merged.update(environ)
    return merged


def _argparse_type(parse: Callable[[str, str], _T]) -> Callable[[str], _T]:
    """Adapt a ``parse_*`` function so argparse reports its error message."""

    def convert(value: str) -> _T:
        try:
            return parse("value", value)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix("value: ")) from exc

    return convert


def build_parser(prog: str = "asimapd") -> argparse.ArgumentParser:
    """The argument parser; every default is None so that "not given" can
    fall through to the environment."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="IMAP and POP3 server for MH mail stores.",
        epilog="Each flag overrides its environment variable (also read from "
        "a .env file in the current directory), which overrides the default.",
    )
    port = _argparse_type(parse_port)
    add = parser.add_argument
    add("--address", help="address to listen on (ADDRESS; default 0.0.0.0)")
    add("--port", type=port, help="IMAP over implicit TLS port (PORT; default 993)")
    add(
        "--imap-port",
        type=port,
        help="plain IMAP port with STARTTLS (IMAP_PORT; default: not listening)",
    )
    add("--cert", help="TLS certificate (SSL_CERT; default /opt/asimap/ssl/cert.pem)")
    add("--key", help="TLS private key (SSL_KEY; default /opt/asimap/ssl/key.pem)")
    add("--trace", action="store_true", default=None, help="trace sessions (TRACE)")
    add("--trace-dir", help="where traces go (TRACE_DIR; default /opt/asimap/traces/)")
    add("--debug", action="store_true", default=None, help="debug logging (DEBUG)")
    add("--log-config", help="logging config file, .json or .cfg (LOG_CONFIG)")
    add("--pwfile", help="password file (PWFILE; default /opt/asimap/pwfile)")
    add(
        "--enable-pop3",
        action="store_true",
        default=None,
        help="serve POP3 too (ENABLE_POP3)",
    )
    add("--pop3-port", type=port, help="POP3 over implicit TLS (POP3_PORT; 995)")
    add(
        "--pop3-stls-port",
        type=port,
        help="plain POP3 port with STLS (POP3_STLS_PORT; default: not listening)",
    )
    add(
        "--store",
        type=_argparse_type(parse_store),
        help="mail store: mh or memory (ASIMAP_STORE; default mh)",
    )
    add(
        "--workers",
        type=_argparse_type(parse_switch),
        metavar="on|off",
        help="one worker process per user (WORKERS; default on); off serves "
        "everyone in the main process",
    )
    add(
        "--worker-linger",
        type=_argparse_type(parse_seconds),
        metavar="SECONDS",
        help="how long a worker outlives its user's last connection "
        "(WORKER_LINGER; default 1800)",
    )
    add(
        "--max-connections",
        type=_argparse_type(parse_count),
        metavar="N",
        help="most client connections at once, IMAP and POP3 together "
        "(MAX_CONNECTIONS; default 1000)",
    )
    add(
        "--max-prelogin-connections",
        type=_argparse_type(parse_count),
        metavar="N",
        help="most connections that have not logged in yet; when full, the "
        "oldest of them is dropped for a newcomer "
        "(MAX_PRELOGIN_CONNECTIONS; default a quarter of --max-connections)",
    )
    add(
        "--max-prelogin-per-address",
        type=_argparse_type(parse_count),
        metavar="N",
        help="most connections from one address that have not logged in yet "
        "(MAX_PRELOGIN_PER_ADDRESS; default 20)",
    )
    add(
        "--login-timeout",
        type=_argparse_type(parse_seconds),
        metavar="SECONDS",
        help="time a client has to log in after connecting, however active "
        "(LOGIN_TIMEOUT; default 180)",
    )
    add(
        "--max-workers",
        type=_argparse_type(parse_count),
        metavar="N",
        help="most worker processes at once (MAX_WORKERS; default 1000)",
    )
    add(
        "--worker-memory-limit",
        type=_argparse_type(_memory_flag),
        metavar="SIZE",
        help="most memory one worker may use (1G, 512M; off for no limit) "
        "(WORKER_MEMORY_LIMIT; default 1G)",
    )
    add(
        "--allow-root-mail",
        action="store_true",
        default=None,
        help="let a worker serve a mail root owned by root (ALLOW_ROOT_MAIL)",
    )
    add(
        "--quota-storage",
        type=_argparse_type(parse_size),
        metavar="SIZE",
        help="most storage per account, in KiB or with a K/M/G/T suffix "
        "(QUOTA_STORAGE; default: no limit)",
    )
    add(
        "--quota-messages",
        type=_argparse_type(parse_count),
        metavar="N",
        help="most messages per account (QUOTA_MESSAGES; default: no limit)",
    )
    add(
        "--literal-minus",
        action="store_true",
        default=None,
        help="advertise LITERAL- instead of LITERAL+: non-synchronizing "
        "literals over 4096 octets are refused (LITERAL_MINUS; RFC 7888)",
    )
    add("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _optional_path(value: str | None) -> Path | None:
    return None if value is None else Path(value)


#: ``--worker-memory-limit`` given as "off": no limit, unlike "not given".
_NO_LIMIT = -1


def _memory_limit(flag: int | None, env_value: str | None, d: Config) -> int | None:
    """The flag's value, else the variable's, else the default; ``off``
    (parsed to None) in the flag or variable means no limit."""
    if flag is not None:
        return None if flag == _NO_LIMIT else flag
    if env_value is not None and env_value.strip():
        return parse_memory("WORKER_MEMORY_LIMIT", env_value)
    return d.worker_memory_limit


def load_config(
    argv: Sequence[str],
    environ: Mapping[str, str],
    *,
    dotenv_path: Path | None = Path(".env"),
) -> Config:
    """Build the configuration from ``argv`` (without the program name).

    Raises :class:`ConfigError` for a bad environment value; a bad flag
    makes argparse exit with status 2 (as do ``--help`` and ``--version``,
    with status 0).
    """
    args = build_parser().parse_args(list(argv))
    env = environment_with_dotenv(environ, dotenv_path)

    def setting(
        flag: _T | None, var: str, parse: Callable[[str, str], _T]
    ) -> _T | None:
        if flag is not None:
            return flag
        value = env.get(var)
        # An empty non-boolean variable means "not set" (as in unit files
        # that write ``PORT=``); for booleans empty is documented as false.
        if value is None or (value.strip() == "" and parse is not parse_bool):
            return None
        return parse(var, value)

    def text(name: str, value: str) -> str:
        return value.strip()

    def path(name: str, value: str) -> Path:
        return Path(value.strip())

    def pick(value: _T | None, default: _T) -> _T:
        return default if value is None else value

    d = _DEFAULTS
    cert = _optional_path(args.cert)
    key = _optional_path(args.key)
    trace_dir = _optional_path(args.trace_dir)
    log_config = _optional_path(args.log_config)
    pwfile = _optional_path(args.pwfile)
    return Config(
        address=pick(setting(args.address, "ADDRESS", text), d.address),
        port=pick(setting(args.port, "PORT", parse_port), d.port),
        imap_port=setting(args.imap_port, "IMAP_PORT", parse_port),
        cert=pick(setting(cert, "SSL_CERT", path), d.cert),
        key=pick(setting(key, "SSL_KEY", path), d.key),
        trace=pick(setting(args.trace, "TRACE", parse_bool), d.trace),
        trace_dir=pick(setting(trace_dir, "TRACE_DIR", path), d.trace_dir),
        debug=pick(setting(args.debug, "DEBUG", parse_bool), d.debug),
        log_config=setting(log_config, "LOG_CONFIG", path),
        pwfile=pick(setting(pwfile, "PWFILE", path), d.pwfile),
        enable_pop3=pick(
            setting(args.enable_pop3, "ENABLE_POP3", parse_bool), d.enable_pop3
        ),
        pop3_port=pick(setting(args.pop3_port, "POP3_PORT", parse_port), d.pop3_port),
        pop3_stls_port=setting(args.pop3_stls_port, "POP3_STLS_PORT", parse_port),
        enable_mh_file_locking=pick(
            setting(None, "ENABLE_MH_FILE_LOCKING", parse_bool),
            d.enable_mh_file_locking,
        ),
        store=pick(setting(args.store, "ASIMAP_STORE", parse_store), d.store),
        workers=pick(setting(args.workers, "WORKERS", parse_switch), d.workers),
        worker_linger=pick(
            setting(args.worker_linger, "WORKER_LINGER", parse_seconds),
            d.worker_linger,
        ),
        max_connections=pick(
            setting(args.max_connections, "MAX_CONNECTIONS", parse_count),
            d.max_connections,
        ),
        max_prelogin_connections=pick(
            setting(
                args.max_prelogin_connections,
                "MAX_PRELOGIN_CONNECTIONS",
                parse_count,
            ),
            d.max_prelogin_connections,
        ),
        max_prelogin_per_address=pick(
            setting(
                args.max_prelogin_per_address,
                "MAX_PRELOGIN_PER_ADDRESS",
                parse_count,
            ),
            d.max_prelogin_per_address,
        ),
        login_timeout=pick(
            setting(args.login_timeout, "LOGIN_TIMEOUT", parse_seconds),
            d.login_timeout,
        ),
        max_workers=pick(
            setting(args.max_workers, "MAX_WORKERS", parse_count), d.max_workers
        ),
        worker_memory_limit=_memory_limit(
            args.worker_memory_limit, env.get("WORKER_MEMORY_LIMIT"), d
        ),
        allow_root_mail=pick(
            setting(args.allow_root_mail, "ALLOW_ROOT_MAIL", parse_bool),
            d.allow_root_mail,
        ),
        quota_storage=setting(args.quota_storage, "QUOTA_STORAGE", parse_size),
        quota_messages=setting(args.quota_messages, "QUOTA_MESSAGES", parse_count),
        literal_minus=pick(
            setting(args.literal_minus, "LITERAL_MINUS", parse_bool),
            d.literal_minus,
        ),
        sentry_dsn=setting(None, "SENTRY_DSN", text),
        sentry_traces_sample_rate=pick(
            setting(None, "SENTRY_TRACES_SAMPLE_RATE", parse_rate),
            d.sentry_traces_sample_rate,
        ),
        sentry_profiles_sample_rate=pick(
            setting(None, "SENTRY_PROFILES_SAMPLE_RATE", parse_rate),
            d.sentry_profiles_sample_rate,
        ),
        sentry_asyncio_task_spans=pick(
            setting(None, "SENTRY_ASYNCIO_TASK_SPANS", parse_bool),
            d.sentry_asyncio_task_spans,
        ),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``asimapd``: configure, set up logging, serve."""
    import os

    from asimap.ops.logging_setup import LoggingSetupError, setup_logging

    try:
        config = load_config(sys.argv[1:] if argv is None else argv, os.environ)
    except ConfigError as exc:
        print(f"asimapd: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # argparse: --help, --version, bad flags
        return exc.code if isinstance(exc.code, int) else 2
    try:
        setup_logging(config)
    except LoggingSetupError as exc:
        print(f"asimapd: error: {exc}", file=sys.stderr)
        return 2

    # Imported here so that configuration (and its tests) never depends on
    # the server's import graph.
    from asimap.imap import server

    return server.run(config)


if __name__ == "__main__":
    sys.exit(main())
