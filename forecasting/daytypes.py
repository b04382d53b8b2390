"""Day types: weekday, Saturday, and Sunday or public holiday (holidays are treated as Sundays).

Public holidays come from the maintained ``holidays`` package (Japan by default, including
substitute holidays), so no holiday list is kept in this code base.
"""

from __future__ import annotations

from functools import lru_cache

import holidays
import numpy as np
import pandas as pd

WEEKDAY, SATURDAY, SUNDAY_HOLIDAY = 0, 1, 2
DAY_TYPE_NAMES = ("weekday", "saturday", "sunday_holiday")


@lru_cache(maxsize=32)
def _holiday_dates(country: str, subdivision: str | None, first_year: int, last_year: int) -> frozenset:
    try:
        calendar = holidays.country_holidays(country, subdiv=subdivision, years=range(first_year, last_year + 1))
    except NotImplementedError:
        raise ValueError(f"unknown holiday country {country!r} (an ISO 3166 code such as 'JP')") from None
    return frozenset(calendar.keys())


def day_types(index: pd.DatetimeIndex, country: str | None = "JP", subdivision: str | None = None) -> np.ndarray:
    """Day type code (WEEKDAY, SATURDAY, SUNDAY_HOLIDAY) of each time, by its local date.

    ``index`` must be tz-aware in the zone whose calendar applies (the site's zone).
    """
    if index.tz is None:
        raise ValueError("day types need a timezone-aware index in the site's zone")
    weekday = index.day_of_week.to_numpy()
    codes = np.where(weekday == 5, SATURDAY, np.where(weekday == 6, SUNDAY_HOLIDAY, WEEKDAY))
    if country and len(index):
        dates = index.date
        holiday_set = _holiday_dates(country, subdivision, int(index.year.min()), int(index.year.max()))
        is_holiday = np.fromiter((d in holiday_set for d in dates), dtype=bool, count=len(dates))
        codes = np.where(is_holiday, SUNDAY_HOLIDAY, codes)
    return codes
