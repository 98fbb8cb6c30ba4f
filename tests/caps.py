"""Running a block of a test without root's right to ignore file modes.

The suite runs as root in CI, and root opens any file whatever its mode: a
test about a file the server may not read or write drops
``CAP_DAC_OVERRIDE`` and ``CAP_DAC_READ_SEARCH`` from the calling thread's
effective set for the duration (they stay permitted, so they come back).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator

IS_ROOT = os.geteuid() == 0

_CAP_DAC_OVERRIDE = 1
_CAP_DAC_READ_SEARCH = 2
_CAP_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


@contextlib.contextmanager
def without_file_override() -> Iterator[None]:
    """This thread (and threads it starts meanwhile) without root's right
    to ignore file permissions; restored afterwards (still permitted)."""
    if not IS_ROOT:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    header = _CapHeader(_CAP_VERSION_3, 0)
    data = (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    saved = data[0].effective
    data[0].effective &= ~((1 << _CAP_DAC_OVERRIDE) | (1 << _CAP_DAC_READ_SEARCH))
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")
    try:
        yield
    finally:
        data[0].effective = saved
        libc.capset(ctypes.byref(header), data)
