"""Dates of SEARCH (``date``) and APPEND (``date-time``), RFC 3501 section 9."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

from asimap.imap.parser.tokens import Reader, fail

MONTHS = {
    b"JAN": 1,
    b"FEB": 2,
    b"MAR": 3,
    b"APR": 4,
    b"MAY": 5,
    b"JUN": 6,
    b"JUL": 7,
    b"AUG": 8,
    b"SEP": 9,
    b"OCT": 10,
    b"NOV": 11,
    b"DEC": 12,
}

# date = date-text / DQUOTE date-text DQUOTE;
# date-text = date-day "-" date-month "-" date-year; date-day = 1*2DIGIT.
_DATE_RE = re.compile(rb'("?)([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})\1')

# date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP
# zone DQUOTE; date-day-fixed = (SP DIGIT) / 2DIGIT; zone = ("+"/"-") 4DIGIT.
_DATE_TIME_RE = re.compile(
    rb'"([ 0-9][0-9])-([A-Za-z]{3})-([0-9]{4}) '
    rb'([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"'
)


def _month(raw: bytes) -> int:
    month = MONTHS.get(raw.upper())
    if month is None:
        fail("Invalid date: unknown month")
    return month


def parse_date(reader: Reader) -> date:
    m = _DATE_RE.match(reader.line, reader.pos)
    if m is None:
        if reader.at_end():
            fail("Missing argument")
        fail("Invalid date")
    try:
        value = date(int(m.group(4)), _month(m.group(3)), int(m.group(2)))
    except ValueError:
        fail("Invalid date")
    reader.pos = m.end()
    return value


def parse_date_time(reader: Reader) -> datetime:
    m = _DATE_TIME_RE.match(reader.line, reader.pos)
    if m is None:
        fail("Invalid date-time")
    day, mon, year, hh, mm, ss, sign, zh, zm = m.groups()
    zone_minutes = int(zh) * 60 + int(zm)
    if int(zm) > 59 or zone_minutes >= 24 * 60:
        fail("Invalid date-time: bad zone")
    offset = timedelta(minutes=zone_minutes if sign == b"+" else -zone_minutes)
    try:
        value = datetime(
            int(year),
            _month(mon),
            int(day.strip()),
            int(hh),
            int(mm),
            int(ss),
            tzinfo=timezone(offset),
        )
    except ValueError:
        fail("Invalid date-time")
    reader.pos = m.end()
    return value
