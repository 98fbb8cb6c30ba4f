"""Import, in the zygote, everything a worker may ever import.

Two reasons.  Speed: a forked worker shares the zygote's imported modules,
so it starts in a few milliseconds instead of importing the server.  And
correctness: a worker runs as the owner of a mail root, who may not be
able to read the Python installation at all (an interpreter under
``/root``, for instance), so a module imported lazily after the privilege
drop -- a codec for a message in ``iso-8859-2``, the store's SQLite module
-- would fail there.  So the zygote imports every asimap module, every
codec of the ``encodings`` package, the ``email`` package, and the
standard modules our code imports inside functions.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil

log = logging.getLogger(__name__)

#: Standard modules used lazily by asimap or by the modules it calls.
EXTRA_MODULES = (
    "sqlite3",
    "uvloop",
    "json",
    "base64",
    "secrets",
    "pwd",
    "grp",
    "zoneinfo",
    "concurrent.futures.thread",
    "asyncio.unix_events",
    "email.mime.text",
    "html",
    "quopri",
    "unicodedata",
)

#: Packages whose every module is imported.
PACKAGES = ("asimap", "encodings", "email")

#: Modules never imported here: entry points that do work on import, and
#: platform codecs that do not exist on Linux.
SKIP = frozenset({"asimap.__main__", "encodings.mbcs", "encodings.oem"})


def preload() -> int:
    """Import everything listed above; returns how many modules loaded.

    A module that fails to import is logged and skipped: the worker may
    never need it, and the zygote must start regardless.
    """
    count = 0
    for name in EXTRA_MODULES:
        count += _try_import(name)
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        prefix = package_name + "."
        for info in pkgutil.walk_packages(package.__path__, prefix):
            if info.name in SKIP:
                continue
            count += _try_import(info.name)
    return count


def _try_import(name: str) -> int:
    try:
        importlib.import_module(name)
    except Exception as exc:  # ImportError, or a module failing at import
        log.debug("preload: %s not imported: %s", name, exc)
        return 0
    return 1
