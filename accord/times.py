"""Wire timestamps (D4): ISO-8601 UTC, second precision, `T` separator, no zone suffix.

Stored in the same text form, so SQL comparisons of timestamps are plain string comparisons.
"""

from __future__ import annotations

import datetime as dt

_FORMAT = "%Y-%m-%dT%H:%M:%S"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def format_ts(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime(_FORMAT)


def now_ts() -> str:
    return format_ts(utc_now())


def ts_after(seconds: float, *, start: dt.datetime | None = None) -> str:
    return format_ts((start or utc_now()) + dt.timedelta(seconds=seconds))


def parse_ts(text: str) -> dt.datetime | None:
    """Parse an ISO-8601 timestamp (with or without zone, `T` or space); None if it is not one."""
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)
