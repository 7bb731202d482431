"""NYSE trading calendar, 2000-2030: full-day holidays and 13:00 early closes by rule.

Regular session 09:30-16:00 America/New_York; an early close ends it at 13:00. Rules
(NYSE Rule 7.2 and its published holiday calendars):

Full-day holidays
    New Year's Day (Jan 1; a Sunday moves to Monday; a Saturday is *not* observed, the
    preceding Friday Dec 31 trades, as in 2005, 2011 and 2022), Martin Luther King Jr. Day
    (3rd Monday of January), Washington's Birthday / Presidents' Day (3rd Monday of February),
    Good Friday (Easter Sunday minus two days, anonymous Gregorian computus), Memorial Day
    (last Monday of May), Juneteenth (June 19, from 2022), Independence Day (July 4), Labor
    Day (1st Monday of September), Thanksgiving (4th Thursday of November), Christmas
    (Dec 25). Juneteenth, Independence Day and Christmas falling on a Saturday are observed
    on the Friday before, on a Sunday on the Monday after.

Special closures (:data:`SPECIAL_CLOSURES`)
    2001-09-11..14 (September 11 attacks), 2004-06-11 (President Reagan's funeral),
    2007-01-02 (President Ford's day of mourning), 2012-10-29/30 (Hurricane Sandy),
    2018-12-05 (President G. H. W. Bush's day of mourning), 2025-01-09 (President Carter's
    day of mourning).

Early closes at 13:00
    - the day before Independence Day, July 3, when it is a Monday, Tuesday or Thursday;
      also when it is a Wednesday from 2013 on. Before 2013, when July 4 was a Thursday the
      early close was instead on Friday July 5 (2002);
    - the day after Thanksgiving;
    - Christmas Eve, Dec 24, when it is a Monday to Thursday;
    - and the ad-hoc 2003-12-26 (:data:`SPECIAL_EARLY_CLOSES`).

Dates outside 2000-2030 raise ValueError rather than guess: the rules above were checked
for that range only.

>>> from datetime import date
>>> is_trading_day(date(2016, 12, 26)), early_close(date(2013, 11, 29))
(False, True)
>>> session_bounds(date(2013, 11, 29))  # 09:30 and 13:00 EST in UTC ns
(1385735400000000000, 1385748000000000000)
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

__all__ = [
    "EARLY_CLOSE",
    "FIRST_YEAR",
    "LAST_YEAR",
    "REGULAR_CLOSE",
    "REGULAR_OPEN",
    "SPECIAL_CLOSURES",
    "SPECIAL_EARLY_CLOSES",
    "early_close",
    "early_closes",
    "easter_sunday",
    "holidays",
    "is_trading_day",
    "session_bounds",
]

FIRST_YEAR = 2000
LAST_YEAR = 2030
NEW_YORK = ZoneInfo("America/New_York")
REGULAR_OPEN = time(9, 30)
REGULAR_CLOSE = time(16, 0)
EARLY_CLOSE = time(13, 0)

#: Unscheduled full-day closures in the covered range, with why.
SPECIAL_CLOSURES: dict[date, str] = {
    date(2001, 9, 11): "September 11 attacks",
    date(2001, 9, 12): "September 11 attacks",
    date(2001, 9, 13): "September 11 attacks",
    date(2001, 9, 14): "September 11 attacks",
    date(2004, 6, 11): "National day of mourning for President Reagan",
    date(2007, 1, 2): "National day of mourning for President Ford",
    date(2012, 10, 29): "Hurricane Sandy",
    date(2012, 10, 30): "Hurricane Sandy",
    date(2018, 12, 5): "National day of mourning for President George H. W. Bush",
    date(2025, 1, 9): "National day of mourning for President Carter",
}

#: Early closes that no recurring rule produces.
SPECIAL_EARLY_CLOSES: dict[date, str] = {
    date(2003, 12, 26): "Day after Christmas",
}

_MON, _TUE, _WED, _THU, _FRI, _SAT, _SUN = range(7)


def easter_sunday(year: int) -> date:
    """Western (Gregorian) Easter Sunday by the anonymous Gregorian algorithm (Meeus/Jones/Butcher).

    >>> easter_sunday(2024), easter_sunday(2019)
    (datetime.date(2024, 3, 31), datetime.date(2019, 4, 21))
    """
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _nearest_workday(d: date) -> date:
    """Saturday -> Friday before, Sunday -> Monday after (the federal observance rule)."""
    if d.weekday() == _SAT:
        return d - timedelta(days=1)
    if d.weekday() == _SUN:
        return d + timedelta(days=1)
    return d


def _check_year(year: int) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(f"the NYSE calendar covers {FIRST_YEAR}-{LAST_YEAR}, not {year}")


@lru_cache(maxsize=64)
def holidays(year: int) -> dict[date, str]:
    """Every weekday the NYSE is closed in ``year``, with the holiday's name.

    >>> holidays(2022)[date(2022, 6, 20)]
    'Juneteenth'
    """
    _check_year(year)
    out: dict[date, str] = {}
    new_year = date(year, 1, 1)
    if new_year.weekday() == _SUN:
        out[new_year + timedelta(days=1)] = "New Year's Day"
    elif new_year.weekday() != _SAT:  # a Saturday New Year's Day is not observed on Dec 31
        out[new_year] = "New Year's Day"
    out[_nth_weekday(year, 1, _MON, 3)] = "Martin Luther King Jr. Day"
    out[_nth_weekday(year, 2, _MON, 3)] = "Washington's Birthday"
    out[easter_sunday(year) - timedelta(days=2)] = "Good Friday"
    out[_last_weekday(year, 5, _MON)] = "Memorial Day"
    if year >= 2022:
        out[_nearest_workday(date(year, 6, 19))] = "Juneteenth"
    out[_nearest_workday(date(year, 7, 4))] = "Independence Day"
    out[_nth_weekday(year, 9, _MON, 1)] = "Labor Day"
    out[_nth_weekday(year, 11, _THU, 4)] = "Thanksgiving Day"
    out[_nearest_workday(date(year, 12, 25))] = "Christmas Day"
    out.update((d, why) for d, why in SPECIAL_CLOSURES.items() if d.year == year)
    return dict(sorted(out.items()))


@lru_cache(maxsize=64)
def early_closes(year: int) -> dict[date, str]:
    """Every 13:00 early close in ``year``, with the reason.

    >>> sorted(early_closes(2019))
    [datetime.date(2019, 7, 3), datetime.date(2019, 11, 29), datetime.date(2019, 12, 24)]
    """
    _check_year(year)
    out: dict[date, str] = {}
    july3 = date(year, 7, 3)
    if july3.weekday() in (_MON, _TUE, _THU) or (july3.weekday() == _WED and year >= 2013):
        out[july3] = "Day before Independence Day"
    july5 = date(year, 7, 5)
    if july5.weekday() == _FRI and year < 2013:
        out[july5] = "Day after Independence Day"
    out[_nth_weekday(year, 11, _THU, 4) + timedelta(days=1)] = "Day after Thanksgiving"
    eve = date(year, 12, 24)
    if eve.weekday() <= _THU:
        out[eve] = "Christmas Eve"
    out.update((d, why) for d, why in SPECIAL_EARLY_CLOSES.items() if d.year == year)
    closed = holidays(year)
    return dict(sorted((d, why) for d, why in out.items() if d not in closed))


def is_trading_day(day: date) -> bool:
    """Whether the NYSE holds a session on ``day`` (a weekday that is not a holiday or closure).

    >>> is_trading_day(date(2012, 10, 30)), is_trading_day(date(2012, 10, 31))
    (False, True)
    """
    _check_year(day.year)
    return day.weekday() < _SAT and day not in holidays(day.year)


def early_close(day: date) -> bool:
    """Whether ``day`` is a trading day that closes at 13:00 New York time."""
    _check_year(day.year)
    return day in early_closes(day.year)


def session_bounds(day: date) -> tuple[int, int] | None:
    """``(open_ts_ns, close_ts_ns)`` of the regular session on ``day`` in UTC ns, or None if closed.

    The New York wall-clock times are converted with the tz database, so sessions on either
    side of a daylight-saving switch come out right.

    >>> session_bounds(date(2016, 12, 26)) is None
    True
    """
    if not is_trading_day(day):
        return None
    close = EARLY_CLOSE if day in early_closes(day.year) else REGULAR_CLOSE
    return _utc_ns(day, REGULAR_OPEN), _utc_ns(day, close)


def _utc_ns(day: date, at: time) -> int:
    local = datetime.combine(day, at, tzinfo=NEW_YORK)
    # Integer arithmetic on the UTC offset: exact, where timestamp() would go through a float.
    epoch_s = (local - datetime(1970, 1, 1, tzinfo=ZoneInfo("UTC"))) // timedelta(seconds=1)
    return epoch_s * 1_000_000_000
