"""``asimapd`` configuration: flag > environment > .env > default
(design.md section 2), value parsing and error exits."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from asimap import __version__, cli
from asimap.cli import ConfigError, load_config
from asimap.config import Config


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """load_config reads ./.env, so run every test in an empty directory;
    main() reconfigures the root logger, so put it back afterwards."""
    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)


def test_defaults_match_the_contract() -> None:
    config = load_config([], {})
    assert config == Config()
    assert config.address == "0.0.0.0"
    assert config.port == 993
    assert config.imap_port is None
    assert config.cert == Path("/opt/asimap/ssl/cert.pem")
    assert config.key == Path("/opt/asimap/ssl/key.pem")
    assert config.trace is False
    assert config.trace_dir == Path("/opt/asimap/traces/")
    assert config.debug is False
    assert config.log_config is None
    assert config.pwfile == Path("/opt/asimap/pwfile")
    assert config.enable_pop3 is False
    assert config.pop3_port == 995
    assert config.pop3_stls_port is None
    assert config.store == "mh"
    assert config.sentry_dsn is None
    assert config.sentry_traces_sample_rate == 0.0
    assert config.workers is True
    assert config.worker_linger == 1800
    assert config.max_workers == 1000
    assert config.worker_memory_limit == 1024**3
    assert config.max_connections == 1000
    assert config.allow_root_mail is False
    assert config.quota_storage is None
    assert config.quota_messages is None
    assert config.literal_minus is False


FLAGS_AND_ENV = [
    ("--address", "ADDRESS", "127.0.0.1", "address", "127.0.0.1"),
    ("--port", "PORT", "1993", "port", 1993),
    ("--imap-port", "IMAP_PORT", "1143", "imap_port", 1143),
    ("--cert", "SSL_CERT", "/c.pem", "cert", Path("/c.pem")),
    ("--key", "SSL_KEY", "/k.pem", "key", Path("/k.pem")),
    ("--trace-dir", "TRACE_DIR", "/t", "trace_dir", Path("/t")),
    ("--log-config", "LOG_CONFIG", "/l.json", "log_config", Path("/l.json")),
    ("--pwfile", "PWFILE", "/pw", "pwfile", Path("/pw")),
    ("--pop3-port", "POP3_PORT", "1995", "pop3_port", 1995),
    ("--pop3-stls-port", "POP3_STLS_PORT", "1110", "pop3_stls_port", 1110),
    ("--store", "ASIMAP_STORE", "memory", "store", "memory"),
    ("--workers", "WORKERS", "off", "workers", False),
    ("--worker-linger", "WORKER_LINGER", "2.5", "worker_linger", 2.5),
    ("--max-workers", "MAX_WORKERS", "7", "max_workers", 7),
    (
        "--worker-memory-limit",
        "WORKER_MEMORY_LIMIT",
        "512M",
        "worker_memory_limit",
        512 * 1024**2,
    ),
    ("--max-connections", "MAX_CONNECTIONS", "10000", "max_connections", 10000),
    (
        "--max-prelogin-connections",
        "MAX_PRELOGIN_CONNECTIONS",
        "300",
        "max_prelogin_connections",
        300,
    ),
    (
        "--max-prelogin-per-address",
        "MAX_PRELOGIN_PER_ADDRESS",
        "5",
        "max_prelogin_per_address",
        5,
    ),
    ("--login-timeout", "LOGIN_TIMEOUT", "30", "login_timeout", 30.0),
    ("--quota-storage", "QUOTA_STORAGE", "500M", "quota_storage", 500 * 1024**2),
    ("--quota-messages", "QUOTA_MESSAGES", "1000", "quota_messages", 1000),
]


@pytest.mark.parametrize(("flag", "var", "value", "field", "expected"), FLAGS_AND_ENV)
def test_each_setting_from_flag_env_and_dotenv(
    flag: str, var: str, value: str, field: str, expected: object, tmp_path: Path
) -> None:
    assert getattr(load_config([f"{flag}={value}"], {}), field) == expected
    assert getattr(load_config([flag, value], {}), field) == expected
    assert getattr(load_config([], {var: value}), field) == expected
    (tmp_path / ".env").write_text(f"{var}={value}\n")
    assert getattr(load_config([], {}), field) == expected


def test_worker_memory_limit_spellings_and_off() -> None:
    def limit(argv: list[str], env: dict[str, str]) -> int | None:
        return load_config(argv, env, dotenv_path=None).worker_memory_limit

    assert limit(["--worker-memory-limit=2GiB"], {}) == 2 * 1024**3
    assert limit([], {"WORKER_MEMORY_LIMIT": "1073741824"}) == 1024**3
    assert limit(["--worker-memory-limit=off"], {}) is None
    assert limit([], {"WORKER_MEMORY_LIMIT": "0"}) is None
    # A flag wins over the variable, "off" included, both ways.
    assert limit(["--worker-memory-limit=off"], {"WORKER_MEMORY_LIMIT": "1G"}) is None
    assert limit(["--worker-memory-limit=256M"], {"WORKER_MEMORY_LIMIT": "off"}) == (
        256 * 1024**2
    )


def test_precedence_flag_over_env_over_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PORT=1001\nADDRESS=10.0.0.1\nPWFILE=/dotenv\n")
    config = load_config(["--port=1003"], {"PORT": "1002", "ADDRESS": "10.0.0.2"})
    assert config.port == 1003  # flag
    assert config.address == "10.0.0.2"  # env over .env
    assert config.pwfile == Path("/dotenv")  # .env over default


def test_dotenv_path_can_be_disabled(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PORT=1001\n")
    assert load_config([], {}, dotenv_path=None).port == 993


@pytest.mark.parametrize(("flag", "var", "field"), [
    ("--trace", "TRACE", "trace"),
    ("--debug", "DEBUG", "debug"),
    ("--enable-pop3", "ENABLE_POP3", "enable_pop3"),
    (None, "ENABLE_MH_FILE_LOCKING", "enable_mh_file_locking"),
    (None, "SENTRY_ASYNCIO_TASK_SPANS", "sentry_asyncio_task_spans"),
    ("--allow-root-mail", "ALLOW_ROOT_MAIL", "allow_root_mail"),
    ("--literal-minus", "LITERAL_MINUS", "literal_minus"),
])  # fmt: skip
def test_booleans(flag: str | None, var: str, field: str) -> None:
    for value in ("1", "true", "TRUE", "Yes", " yes "):
        assert getattr(load_config([], {var: value}), field) is True, value
    for value in ("0", "false", "False", "NO", ""):
        assert getattr(load_config([], {var: value}), field) is False, value
    with pytest.raises(ConfigError, match=var):
        load_config([], {var: "maybe"})
    if flag is not None:
        assert getattr(load_config([flag], {var: "0"}), field) is True


def test_sentry_settings() -> None:
    config = load_config(
        [],
        {
            "SENTRY_DSN": "https://key@sentry.example/1",
            "SENTRY_TRACES_SAMPLE_RATE": "0.25",
            "SENTRY_PROFILES_SAMPLE_RATE": "1",
        },
    )
    assert config.sentry_dsn == "https://key@sentry.example/1"
    assert config.sentry_traces_sample_rate == 0.25
    assert config.sentry_profiles_sample_rate == 1.0
    with pytest.raises(ConfigError, match="SENTRY_TRACES_SAMPLE_RATE"):
        load_config([], {"SENTRY_TRACES_SAMPLE_RATE": "2"})
    with pytest.raises(ConfigError, match="SENTRY_PROFILES_SAMPLE_RATE"):
        load_config([], {"SENTRY_PROFILES_SAMPLE_RATE": "lots"})


def test_empty_env_value_means_unset() -> None:
    config = load_config([], {"PORT": "", "IMAP_PORT": " ", "SENTRY_DSN": ""})
    assert config.port == 993
    assert config.imap_port is None
    assert config.sentry_dsn is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORT": "abc"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"POP3_PORT": "-1"}, "POP3_PORT"),
        ({"IMAP_PORT": "1e3"}, "IMAP_PORT"),
        ({"ASIMAP_STORE": "maildir"}, "ASIMAP_STORE"),
        ({"WORKERS": "sometimes"}, "WORKERS"),
        ({"WORKER_LINGER": "-1"}, "WORKER_LINGER"),
        ({"WORKER_LINGER": "inf"}, "WORKER_LINGER"),
        ({"MAX_WORKERS": "0"}, "MAX_WORKERS"),
        ({"MAX_WORKERS": "many"}, "MAX_WORKERS"),
        ({"MAX_CONNECTIONS": "0"}, "MAX_CONNECTIONS"),
        ({"MAX_CONNECTIONS": "lots"}, "MAX_CONNECTIONS"),
        ({"QUOTA_STORAGE": "lots"}, "QUOTA_STORAGE"),
        ({"QUOTA_STORAGE": "-5"}, "QUOTA_STORAGE"),
        ({"QUOTA_STORAGE": "0"}, "QUOTA_STORAGE"),
        ({"QUOTA_STORAGE": "5X"}, "QUOTA_STORAGE"),
        ({"QUOTA_STORAGE": "1.5G"}, "QUOTA_STORAGE"),
        ({"QUOTA_MESSAGES": "0"}, "QUOTA_MESSAGES"),
        ({"WORKER_MEMORY_LIMIT": "lots"}, "WORKER_MEMORY_LIMIT"),
        ({"WORKER_MEMORY_LIMIT": "1.5G"}, "WORKER_MEMORY_LIMIT"),
        ({"WORKER_MEMORY_LIMIT": "10M"}, "WORKER_MEMORY_LIMIT"),
    ],
)
def test_bad_env_values(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config([], env)


@pytest.mark.parametrize(
    "argv",
    [
        ["--port=abc"],
        ["--port", "65536"],
        ["--store=maildir"],
        ["--workers=maybe"],
        ["--max-workers=0"],
        ["--max-connections=-1"],
        ["--bogus"],
        ["x"],
    ],
)
def test_bad_flags_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        load_config(argv, {})
    assert info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_main_reports_bad_env_with_status_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DEBUG", "perhaps")
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert "DEBUG" in err and "perhaps" in err


def test_main_reports_missing_log_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([f"--log-config={tmp_path / 'absent.json'}"]) == 2
    assert "absent.json" in capsys.readouterr().err


def test_main_sets_up_logging_then_runs_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """main hands the loaded config to asimap.imap.server.run."""
    import types

    seen: list[Config] = []
    fake_server = types.ModuleType("asimap.imap.server")

    def run(config: Config) -> int:
        seen.append(config)
        return 7

    fake_server.run = run  # type: ignore[attr-defined]
    import asimap.imap

    monkeypatch.setitem(sys.modules, "asimap.imap.server", fake_server)
    monkeypatch.setattr(asimap.imap, "server", fake_server, raising=False)
    log_config = tmp_path / "log.json"
    log_config.write_text('{"version": 1, "root": {"level": "WARNING"}}')
    assert cli.main(["--port=2993", f"--log-config={log_config}"]) == 7
    assert seen[0].port == 2993
    assert seen[0].log_config == log_config


def test_version_and_help_as_a_real_process(tmp_path: Path) -> None:
    version = subprocess.run(
        [sys.executable, "-m", "asimap.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert version.returncode == 0
    assert __version__ in version.stdout
    help_ = subprocess.run(
        [sys.executable, "-m", "asimap.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert help_.returncode == 0
    for flag in ("--address", "--pwfile", "--enable-pop3", "--imap-port", "PWFILE"):
        assert flag in help_.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "asimap.cli"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "ENABLE_POP3": "sometimes"},
    )
    assert bad.returncode == 2
    assert "ENABLE_POP3" in bad.stderr


@pytest.mark.parametrize(
    ("value", "expected"),
    [("on", True), ("OFF", False), ("1", True), ("no", False), ("", True)],
)
def test_workers_switch_spellings(value: str, expected: bool) -> None:
    """``on``/``off`` or a boolean; an empty WORKERS= means "not set"."""
    assert load_config([], {"WORKERS": value}).workers is expected
    if value:
        assert load_config([f"--workers={value}"], {}).workers is expected


@pytest.mark.parametrize(
    ("value", "octets"),
    [
        ("500000", 500000 * 1024),  # bare numbers are KiB, GETQUOTA's unit
        ("1", 1024),
        ("64K", 64 * 1024),
        ("500M", 500 * 1024**2),
        ("500m", 500 * 1024**2),
        (" 2G ", 2 * 1024**3),
        ("2GiB", 2 * 1024**3),
        ("2GB", 2 * 1024**3),
        ("1T", 1024**4),
    ],
)
def test_quota_storage_sizes(value: str, octets: int) -> None:
    assert load_config([], {"QUOTA_STORAGE": value}).quota_storage == octets


def test_empty_quota_means_no_limit() -> None:
    config = load_config([], {"QUOTA_STORAGE": "", "QUOTA_MESSAGES": " "})
    assert (config.quota_storage, config.quota_messages) == (None, None)
