"""Clinical timestamps from the wire, always returned timezone-aware.

Facts from different messages are compared with each other, so a naive timestamp (HL7 TS
without offset, FHIR date-only) is read in the lab's zone (`CodeMaps.timezone`) rather than
left naive.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

_TS = re.compile(
    r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?([+-]\d{4})?$"
)


@lru_cache(maxsize=16)
def zone(name: str) -> tzinfo:
    return UTC if name in ("UTC", "") else ZoneInfo(name)


def aware(value: datetime, tz: tzinfo) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


def parse_hl7_ts(text: str, tz: tzinfo) -> datetime:
    """HL7 v2 TS/DTM (`YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+/-ZZZZ]`); ValueError if malformed."""
    m = _TS.match(text.strip())
    if m is None:
        raise ValueError(f"'{text}' is not an HL7 timestamp (YYYYMMDDHHMM[SS][+ZZZZ])")
    year, month, day, hour, minute, second, frac, offset = m.groups()
    micro = int((frac or "0").ljust(6, "0")) if frac else 0
    when_tz: tzinfo = tz
    if offset:
        sign = 1 if offset[0] == "+" else -1
        when_tz = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))
    return datetime(int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
                    int(second or 0), micro, tzinfo=when_tz)


def from_fhir(value: object, tz: tzinfo) -> datetime | None:
    """A fhir.resources date/dateTime/instant value (datetime, date or partial 'YYYY[-MM]')."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return aware(value, tz)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=tz)
    if isinstance(value, str):
        parts = value.split("-")
        return datetime(int(parts[0]), int(parts[1]) if len(parts) > 1 else 1, 1, tzinfo=tz)
    raise TypeError(f"unexpected FHIR date value {value!r}")
