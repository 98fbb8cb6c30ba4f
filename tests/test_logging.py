"""setup_logging: explicit file (JSON and INI), searched file, stdout, debug."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from asimap.config import Config
from asimap.ops.logging_setup import (
    LoggingSetupError,
    find_log_config,
    setup_logging,
)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """setup_logging reconfigures the root logger; put it back for the
    tests that run after us."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    probe = logging.getLogger("asimap.test_logging")
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
    for handler in list(probe.handlers):
        probe.removeHandler(handler)
        handler.close()
    probe.setLevel(logging.NOTSET)
    probe.propagate = True


def _json_config(log_file: Path, level: str = "INFO") -> dict[str, object]:
    return {
        "version": 1,
        "formatters": {"plain": {"format": "JSON %(levelname)s %(message)s"}},
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "filename": str(log_file),
                "formatter": "plain",
            }
        },
        "loggers": {
            "asimap.test_logging": {
                "handlers": ["file"],
                "level": level,
                "propagate": False,
            }
        },
    }


_INI = """\
[loggers]
keys=root,probe

[handlers]
keys=file

[formatters]
keys=plain

[logger_root]
level=WARNING
handlers=

[logger_probe]
level=INFO
handlers=file
qualname=asimap.test_logging
propagate=0

[handler_file]
class=FileHandler
formatter=plain
args=({log_file!r},)

[formatter_plain]
format=INI %(levelname)s %(message)s
"""


def _flush_all() -> None:
    for handler in logging.getLogger("asimap.test_logging").handlers:
        handler.flush()


def test_explicit_json_config(tmp_path: Path) -> None:
    log_file = tmp_path / "out.log"
    cfg = tmp_path / "custom.json"
    cfg.write_text(json.dumps(_json_config(log_file)))
    used = setup_logging(Config(log_config=cfg), search_dirs=[])
    assert used == cfg
    probe = logging.getLogger("asimap.test_logging")
    probe.info("hello json")
    probe.debug("hidden")
    _flush_all()
    assert log_file.read_text() == "JSON INFO hello json\n"


def test_explicit_ini_config(tmp_path: Path) -> None:
    log_file = tmp_path / "out.log"
    cfg = tmp_path / "custom.cfg"
    cfg.write_text(_INI.format(log_file=str(log_file)))
    assert setup_logging(Config(log_config=cfg), search_dirs=[]) == cfg
    logging.getLogger("asimap.test_logging").info("hello ini")
    _flush_all()
    assert log_file.read_text() == "INI INFO hello ini\n"


def test_search_path_order(tmp_path: Path) -> None:
    first, second = tmp_path / "opt", tmp_path / "etc"
    first.mkdir()
    second.mkdir()
    assert find_log_config([first, second]) is None
    (second / "asimapd_log.cfg").write_text("x")
    assert find_log_config([first, second]) == second / "asimapd_log.cfg"
    (first / "asimapd_log.json").write_text("{}")
    assert find_log_config([first, second]) == first / "asimapd_log.json"
    (first / "asimapd_log.cfg").write_text("x")
    assert find_log_config([first, second]) == first / "asimapd_log.cfg"


def test_searched_json_config_is_used(tmp_path: Path) -> None:
    log_file = tmp_path / "out.log"
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "asimapd_log.json").write_text(json.dumps(_json_config(log_file)))
    assert setup_logging(Config(), search_dirs=[tmp_path / "none", etc]) == (
        etc / "asimapd_log.json"
    )
    logging.getLogger("asimap.test_logging").warning("found it")
    _flush_all()
    assert "JSON WARNING found it" in log_file.read_text()


def test_stdout_default_and_no_duplicate_handlers() -> None:
    stream = io.StringIO()
    assert setup_logging(Config(), search_dirs=[], stream=stream) is None
    assert setup_logging(Config(), search_dirs=[], stream=stream) is None
    logger = logging.getLogger("asimap.test_logging")
    logger.info("to stdout")
    logger.debug("not at info level")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert "INFO" in lines[0] and "asimap.test_logging: to stdout" in lines[0]


def test_debug_flag_sets_debug_level() -> None:
    stream = io.StringIO()
    setup_logging(Config(debug=True), search_dirs=[], stream=stream)
    assert logging.getLogger().level == logging.DEBUG
    logging.getLogger("asimap.test_logging").debug("debug line")
    assert "DEBUG" in stream.getvalue() and "debug line" in stream.getvalue()


def test_debug_overrides_file_level(tmp_path: Path) -> None:
    cfg = tmp_path / "c.cfg"
    cfg.write_text(_INI.format(log_file=str(tmp_path / "out.log")))
    setup_logging(Config(log_config=cfg, debug=True), search_dirs=[])
    assert logging.getLogger().level == logging.DEBUG


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("absent.json", None),
        ("bad.json", "{not json"),
        ("list.json", "[1, 2]"),
        ("bad.json", '{"version": 1, "handlers": {"h": {"class": "no.Such"}}}'),
        ("bad.cfg", "[loggers]\nkeys=root\n"),
    ],
)
def test_invalid_config_is_a_clear_error(
    tmp_path: Path, name: str, content: str | None
) -> None:
    cfg = tmp_path / name
    if content is not None:
        cfg.write_text(content)
    with pytest.raises(LoggingSetupError, match=name):
        setup_logging(Config(log_config=cfg), search_dirs=[])
