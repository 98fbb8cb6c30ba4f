"""The Date: header as a calendar date, for SENTBEFORE/SENTON/SENTSINCE.

RFC 3501 section 6.4.4 compares "disregarding time and timezone": the date
as written in the header, in the sender's own zone.  Real headers are often
sloppy, so after the strict RFC 5322 parser we try a few looser readings
before giving up (a message without a usable Date never matches SENT*).
"""

from __future__ import annotations

import re
from datetime import date
from email.utils import parsedate_tz

_MONTH_NAMES: tuple[str, ...] = ("jan", "feb", "mar", "apr", "may", "jun")
_MONTH_NAMES += ("jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, start=1)}
_LOOSE = re.compile(r"(\d{1,2})[\s-]+([A-Za-z]{3})[A-Za-z]*[\s-]+(\d{2,4})")
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def _make(year: int, month: int, day: int) -> date | None:
    if year < 100:  # RFC 5322 4.3: two-digit years
        year += 2000 if year < 50 else 1900
    try:
        return date(year, month, day)
    except ValueError:
        return None


def parse_sent_date(value: str | None) -> date | None:
    """The date part of a Date: header value, or None if unusable."""
    if not value:
        return None
    try:
        parsed = parsedate_tz(value)
    except Exception:
        parsed = None
    if parsed is not None:
        result = _make(parsed[0], parsed[1], parsed[2])
        if result is not None:
            return result
    loose = _LOOSE.search(value)
    if loose:
        month = _MONTHS.get(loose.group(2).lower())
        if month is not None:
            return _make(int(loose.group(3)), month, int(loose.group(1)))
    iso = _ISO.search(value)
    if iso:
        return _make(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
    return None
