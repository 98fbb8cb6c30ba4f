"""Logging configuration for ``asimapd``, as asimap 2.x users know it.

design.md section 2: ``--log-config``/``LOG_CONFIG`` names a logging
configuration file; without one, the standard places (``/opt/asimap``,
``/etc``, ``/usr/local/etc``, ``/opt/local/etc``) are searched for
``asimapd_log.cfg`` or ``asimapd_log.json``; without any, logs go to
stdout, which is what a service manager (systemd, a container runtime)
collects.  A ``.json`` file is a ``logging.config.dictConfig`` dictionary;
anything else is the older ``fileConfig`` INI format.  ``--debug`` turns the
root logger to DEBUG whatever the file says, so debugging never requires
editing the logging configuration.
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from asimap.config import Config

#: Where asimap 2.x looked for a logging configuration, in order.
SEARCH_DIRS: tuple[Path, ...] = (
    Path("/opt/asimap"),
    Path("/etc"),
    Path("/usr/local/etc"),
    Path("/opt/local/etc"),
)
#: File names looked for in each directory, in order.
CONFIG_NAMES = ("asimapd_log.cfg", "asimapd_log.json")

DEFAULT_FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"

#: Marks the stdout handler we install, so a second call replaces it
#: instead of duplicating every line (and other handlers are left alone).
_OUR_HANDLER_ATTR = "_asimap_default_handler"


class LoggingSetupError(RuntimeError):
    """The logging configuration named on the command line cannot be used."""


def find_log_config(search_dirs: Sequence[Path] = SEARCH_DIRS) -> Path | None:
    """The first ``asimapd_log.cfg``/``.json`` in ``search_dirs``, if any."""
    for directory in search_dirs:
        for name in CONFIG_NAMES:
            candidate = directory / name
            if candidate.is_file():
                return candidate
    return None


def setup_logging(
    config: Config,
    *,
    search_dirs: Sequence[Path] = SEARCH_DIRS,
    stream: TextIO | None = None,
) -> Path | None:
    """Configure logging for the process; returns the file used, if any.

    ``search_dirs`` and ``stream`` (default: ``sys.stdout``) are injectable
    for tests.  Raises :class:`LoggingSetupError` if the configuration file
    (given or found) is missing or invalid: silently logging nowhere would
    be worse than refusing to start.
    """
    path = config.log_config or find_log_config(search_dirs)
    if path is None:
        _log_to_stream(stream if stream is not None else sys.stdout)
    else:
        _apply_file(path)
    logging.captureWarnings(True)
    if config.debug:
        logging.getLogger().setLevel(logging.DEBUG)
    logging.getLogger(__name__).debug("logging configured from %s", path or "defaults")
    return path


def _apply_file(path: Path) -> None:
    if not path.is_file():
        raise LoggingSetupError(f"logging configuration not found: {path}")
    try:
        if path.suffix.lower() == ".json":
            with path.open(encoding="utf-8") as f:
                settings = json.load(f)
            if not isinstance(settings, dict):
                raise LoggingSetupError(f"{path}: expected a JSON object")
            settings.setdefault("version", 1)
            settings.setdefault("disable_existing_loggers", False)
            logging.config.dictConfig(settings)
        else:
            logging.config.fileConfig(path, disable_existing_loggers=False)
    except LoggingSetupError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        # dictConfig/fileConfig report bad content with these.
        raise LoggingSetupError(
            f"{path}: invalid logging configuration: {exc}"
        ) from exc


def _log_to_stream(stream: TextIO) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _OUR_HANDLER_ATTR, False):
            root.removeHandler(handler)
            handler.close()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(DEFAULT_FORMAT))
    setattr(handler, _OUR_HANDLER_ATTR, True)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
