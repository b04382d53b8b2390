"""Demand-response baselines after Japan's ERAB guideline, and measured history.

The rules (docs/nightly.md cites the guideline's sections and says which rule comes from where):

* **like days**: the most recent days before the event day of the same class (weekdays; or
  weekends and Japanese public holidays together), past DR days left out;
* **down events**: High 4 of 5 on weekdays, High 2 of 3 on weekends and holidays: of the like
  days, drop *low days* (mean over the event's slots below 25 % of the like days' mean there),
  rank the rest by that mean, average the highest 4 (2) slot by slot;
* **up events**: the mirror, Low 4 of 5 / Low 2 of 3 (the lowest days are kept): down events fall
  on high-demand days, up events on surplus days, so the like days nearest the event day's
  conditions are the lowest ones;
* **same-day adjustment**: the mean of the event day's metered values minus the like-day average
  over the 3 hours ending 1 hour before the event (4 h to 1 h before; before midnight for an
  event starting before 04:00, read from the previous days), capped at +-20 % of the like-day
  average over the event's slots, added to every slot.

Each customer (site) gets its own baseline; an event's baseline is the sum over its sites.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import holidays
import numpy as np
import pandas as pd

SLOTS_PER_DAY = 48
ADJUSTMENT_FROM_H = 4  # the adjustment window starts 4 h before the event ...
ADJUSTMENT_TO_H = 1  # ... and ends 1 h before it
LOW_DAY_SHARE = 0.25  # a like day below this share of the like days' mean (event slots) is left out
ADJUSTMENT_CAP_SHARE = 0.20  # the adjustment is at most this share of the unadjusted baseline (event slots)
SEARCH_DAYS = 60  # how far back like days are looked for


class HistoryError(ValueError):
    """Measured history is unusable; the message names the file and row."""


@dataclass(frozen=True)
class Rule:
    name: str  # e.g. "High 4 of 5"
    days: int  # like days looked at
    keep: int  # of which averaged
    highest: bool  # keep the highest (down events) or the lowest (up events)


def is_holiday_like(day: dt.date) -> bool:
    """Weekends and Japanese public holidays form one class of like days, weekdays the other."""
    return day.weekday() >= 5 or day in holidays.Japan(years=day.year)


def rule_for(day: dt.date, direction: str) -> Rule:
    """The baseline rule for an event on ``day`` in ``direction`` ("down" or "up")."""
    days, keep = (3, 2) if is_holiday_like(day) else (5, 4)
    highest = direction == "down"
    return Rule(f"{'High' if highest else 'Low'} {keep} of {days}", days, keep, highest)


def like_days(
    day: dt.date, count: int = 5, exclude: frozenset[dt.date] = frozenset(), search_days: int = SEARCH_DAYS
) -> list[dt.date]:
    """The ``count`` most recent days before ``day`` of the same class, newest first, skipping
    ``exclude`` (past DR days, days without data)."""
    found = []
    candidate = day
    for _ in range(search_days):
        candidate -= dt.timedelta(days=1)
        if candidate in exclude or is_holiday_like(candidate) != is_holiday_like(day):
            continue
        found.append(candidate)
        if len(found) == count:
            return found
    raise HistoryError(
        f"fewer than {count} like days of {day} in the {search_days} days before it "
        f"(left out: {len(exclude)} DR or missing days)"
    )


def adjustment_slots(event_slots: np.ndarray) -> np.ndarray:
    """Slot numbers of the adjustment window relative to the event day's midnight: 4 h to 1 h
    before the event's first slot; negative numbers are slots of the previous day."""
    first = int(np.argmax(event_slots))
    per_hour = len(event_slots) // 24
    return np.arange(first - ADJUSTMENT_FROM_H * per_hour, first - ADJUSTMENT_TO_H * per_hour)


def window_values(day: dt.date, slots: np.ndarray, series_of: Mapping[dt.date, np.ndarray], what: str) -> np.ndarray:
    """Values of ``slots`` (relative to ``day``'s midnight, negative: the day before) from ``series_of``."""
    values = []
    for slot in slots:
        source = day if slot >= 0 else day - dt.timedelta(days=1)
        if source not in series_of:
            raise HistoryError(f"{what}: no values for {source}, needed by the same-day adjustment window")
        values.append(series_of[source][slot % SLOTS_PER_DAY])
    return np.asarray(values, dtype=float)


@dataclass(frozen=True)
class Baseline:
    rule: str
    baseline_kw: np.ndarray  # per slot of the event day, adjusted
    unadjusted_kw: np.ndarray
    adjustment_kw: float  # after the cap
    raw_adjustment_kw: float  # before it
    cap_kw: float
    like_days: tuple[dt.date, ...]  # looked at, newest first
    low_days: tuple[dt.date, ...]  # left out as below 25 % of the mean
    chosen_days: tuple[dt.date, ...]  # averaged, ranked first to last


def select_days(
    history_kw: Mapping[dt.date, np.ndarray], candidates: list[dt.date], event_slots: np.ndarray, rule: Rule
) -> tuple[tuple[dt.date, ...], tuple[dt.date, ...]]:
    """(chosen, low): the low-day exclusion, then the ``keep`` highest (or lowest) of the rest."""
    means = {day: float(np.mean(history_kw[day][event_slots])) for day in candidates}
    overall = float(np.mean(list(means.values())))
    low = tuple(day for day in candidates if overall > 0 and means[day] < LOW_DAY_SHARE * overall)
    rest = [day for day in candidates if day not in low]
    ranked = sorted(rest, key=lambda day: (means[day], day), reverse=rule.highest)
    return tuple(ranked[: rule.keep]), low


def dr_baseline(
    history_kw: Mapping[dt.date, np.ndarray],
    day: dt.date,
    event_slots: np.ndarray,
    direction: str,
    metered_kw: Mapping[dt.date, np.ndarray] | None,
    exclude: frozenset[dt.date] = frozenset(),
) -> Baseline:
    """One customer's baseline for an event on ``day``.

    ``history_kw``: that customer's metered net import, 48 half-hour values per day (the like days
    and, for an early event, the days before them). ``metered_kw``: the event day's own metered
    values (and the day before it for an early event); None: no adjustment. ``exclude``: past DR days.
    """
    rule = rule_for(day, direction)
    missing = frozenset(
        d for d in (day - dt.timedelta(days=k) for k in range(1, SEARCH_DAYS + 1)) if d not in history_kw
    )
    candidates = like_days(day, rule.days, exclude | missing)
    chosen, low = select_days(history_kw, candidates, event_slots, rule)
    if not chosen:
        raise HistoryError(f"{rule.name} for {day}: every like day is a low day")
    average = np.mean([history_kw[d] for d in chosen], axis=0)
    raw, cap = 0.0, ADJUSTMENT_CAP_SHARE * abs(float(np.mean(average[event_slots])))
    if metered_kw is not None:
        slots = adjustment_slots(event_slots)
        like_window = np.mean([window_values(d, slots, history_kw, "like-day history") for d in chosen], axis=0)
        raw = float(np.mean(window_values(day, slots, metered_kw, "event day")) - np.mean(like_window))
    adjustment = float(np.clip(raw, -cap, cap))
    return Baseline(rule.name, average + adjustment, average, adjustment, raw, cap, tuple(candidates), low, chosen)


def read_history_csv(
    path: str | Path, timezone: str
) -> tuple[dict[str, dict[dt.date, np.ndarray]], frozenset[dt.date]]:
    """Measured net import [kW] at any regular interval up to 30 min, as 48 half-hour means per
    complete local day and per site: ``({site: {day: values}}, past DR days)``.

    Columns: ``time`` (with offset), ``value`` [kW]; optional ``site`` (one meter per site; without
    it the file is the event sites' meter, site ``"*"``) and ``dr_event`` (1 on readings during a
    past DR event: that day is no like day).
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise HistoryError(f"{path}: no such file") from None
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise HistoryError(f"{path}: not a readable CSV ({type(error).__name__})") from None
    missing = {"time", "value"} - set(frame.columns)
    if missing:
        raise HistoryError(f"{path}: missing column(s) {sorted(missing)}; expected time,value[,site][,dr_event]")
    times = pd.to_datetime(frame["time"], errors="coerce", utc=True)
    values = pd.to_numeric(frame["value"], errors="coerce")
    flags = (
        pd.to_numeric(frame["dr_event"], errors="coerce") if "dr_event" in frame else pd.Series(0, index=frame.index)
    )
    for name, bad in (
        ("time", times.isna()),
        ("value", values.isna()),
        ("dr_event", flags.isna() | ~flags.isin([0, 1])),
    ):
        if bad.any():
            row = int(np.argmax(bad.to_numpy())) + 2  # header is line 1
            raise HistoryError(f"{path}: line {row}: unreadable {name} {frame[name].iloc[row - 2]!r}")
    local = times.dt.tz_convert(timezone)
    dr_days = frozenset(local[flags.to_numpy() == 1].dt.date)
    sites = frame["site"].astype(str) if "site" in frame else pd.Series("*", index=frame.index)
    measured = {}
    for site in sorted(sites.unique()):
        mine = (sites == site).to_numpy()
        series = pd.Series(values.to_numpy()[mine], index=pd.DatetimeIndex(local[mine])).sort_index()
        slots = series.resample("30min").mean()
        measured[site] = {
            day: group.to_numpy(dtype=float)
            for day, group in slots.groupby(slots.index.date)
            if len(group) == SLOTS_PER_DAY and group.notna().all()
        }
    return measured, dr_days
