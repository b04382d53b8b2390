"""Demand-response baselines: Japan's "High 4 of 5" and the plan without the event.

High 4 of 5 (the Japanese negawatt guideline's standard baseline, after the ERAB guideline of
METI): take the last 5 *like days* before the event day (weekdays for a weekday; weekends and
Japanese public holidays for those days; days that had an event are left out), rank them by
their mean net import over the event's slots, keep the 4 highest, and average them slot by
slot. Then the *same-day adjustment*: the mean difference between the event day and that
average over the 3 hours ending 1 hour before the event starts (6 slots) is added to every
slot of the baseline.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import holidays
import numpy as np
import pandas as pd

SLOTS_PER_DAY = 48
ADJUSTMENT_FROM_H = 4  # the adjustment window starts 4 h before the event ...
ADJUSTMENT_TO_H = 1  # ... and ends 1 h before it


class HistoryError(ValueError):
    """Measured history is unusable; the message names the file and row."""


def is_holiday_like(day: dt.date) -> bool:
    """Weekends and Japanese public holidays form one class of like days, weekdays the other."""
    return day.weekday() >= 5 or day in holidays.Japan(years=day.year)


def like_days(day: dt.date, count: int = 5, exclude: frozenset[dt.date] = frozenset(), search_days: int = 60) -> list[dt.date]:
    """The ``count`` most recent days before ``day`` of the same class, newest first."""
    found = []
    candidate = day
    for _ in range(search_days):
        candidate -= dt.timedelta(days=1)
        if candidate in exclude or is_holiday_like(candidate) != is_holiday_like(day):
            continue
        found.append(candidate)
        if len(found) == count:
            return found
    raise HistoryError(f"fewer than {count} like days in the {search_days} days before {day}")


@dataclass(frozen=True)
class HighXofY:
    baseline_kw: np.ndarray  # per slot of the event day, adjusted
    unadjusted_kw: np.ndarray
    adjustment_kw: float
    chosen_days: tuple[dt.date, ...]  # the days averaged, highest first


def high_4_of_5(history_kw: dict[dt.date, np.ndarray], event_slots: np.ndarray, same_day_kw: np.ndarray | None,
                keep: int = 4) -> HighXofY:
    """High 4 of 5 from ``history_kw`` (the like days: 48 slot values of net import each).

    ``event_slots``: bool per slot, the event's slots. ``same_day_kw``: the event day's own net
    import (measured, or planned without the event); only the adjustment window is read.
    Without it, no adjustment is made.
    """
    if len(history_kw) < keep:
        raise HistoryError(f"High {keep} of {len(history_kw)}: needs at least {keep} like days")
    ranked = sorted(history_kw, key=lambda day: (float(np.mean(history_kw[day][event_slots])), day), reverse=True)
    chosen = ranked[:keep]
    average = np.mean([history_kw[day] for day in chosen], axis=0)
    adjustment = 0.0
    if same_day_kw is not None:
        window = adjustment_window(event_slots)
        if window.any():
            adjustment = float(np.mean(same_day_kw[window]) - np.mean(average[window]))
    return HighXofY(baseline_kw=average + adjustment, unadjusted_kw=average, adjustment_kw=adjustment, chosen_days=tuple(chosen))


def adjustment_window(event_slots: np.ndarray) -> np.ndarray:
    """The slots from 4 h to 1 h before the event's first slot (clipped at midnight)."""
    first = int(np.argmax(event_slots))
    per_hour = len(event_slots) // 24
    window = np.zeros(len(event_slots), dtype=bool)
    window[max(0, first - ADJUSTMENT_FROM_H * per_hour): max(0, first - ADJUSTMENT_TO_H * per_hour)] = True
    return window


def read_history_csv(path: str | Path, timezone: str) -> dict[dt.date, np.ndarray]:
    """Measured net import (``time,value`` in kW, any regular interval up to 30 min) as 48
    half-hour means per complete day (local)."""
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise HistoryError(f"{path}: no such file") from None
    missing = {"time", "value"} - set(frame.columns)
    if missing:
        raise HistoryError(f"{path}: missing column(s) {sorted(missing)}; expected time,value")
    times = pd.to_datetime(frame["time"], errors="coerce", utc=True)
    values = pd.to_numeric(frame["value"], errors="coerce")
    for name, bad in (("time", times.isna()), ("value", values.isna())):
        if bad.any():
            row = int(np.argmax(bad.to_numpy())) + 2  # header is line 1
            raise HistoryError(f"{path}: line {row}: unreadable {name} {frame[name].iloc[row - 2]!r}")
    series = pd.Series(values.to_numpy(), index=times.dt.tz_convert(timezone)).sort_index()
    slots = series.resample("30min").mean()
    days = {}
    for day, group in slots.groupby(slots.index.date):
        if len(group) == SLOTS_PER_DAY and group.notna().all():
            days[day] = group.to_numpy(dtype=float)
    return days
