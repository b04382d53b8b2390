"""Spot prices by date and the demand plan's 30-minute balance, in the project's SQLite store.

Prices are kept per (area, local delivery date, slot code 1-48) in yen/kWh, as JEPX publishes
them; an import replaces the prices of the dates it covers and keeps every other date. A slot's
balance is kept per (slot start, site) with ``site = "total"`` for the balancing group.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ems.store.sqlite import Store, from_ms, to_ms

SLOTS_PER_DAY = 48


def store_prices(
    store: Store, area: str, days: Mapping[dt.date, tuple[float, ...]], source: str, now: dt.datetime
) -> int:
    """Store (replace) the 48 prices of each date; returns the number of dates written."""
    rows = []
    for day, prices in days.items():
        if len(prices) != SLOTS_PER_DAY:
            raise ValueError(f"{area} {day}: {len(prices)} prices, needs {SLOTS_PER_DAY}")
        rows += [
            (area, day.isoformat(), code, float(price), source, to_ms(now))
            for code, price in enumerate(prices, start=1)
        ]
    with store._transaction() as db:
        db.executemany("INSERT OR REPLACE INTO prices VALUES (?, ?, ?, ?, ?, ?)", rows)
    return len(days)


def prices_between(store: Store, area: str, first: dt.date, last: dt.date) -> dict[dt.date, tuple[float, ...]]:
    """Every complete date of ``area`` from ``first`` to ``last`` (inclusive): 48 prices each."""
    with store._lock:
        rows = store._db.execute(
            "SELECT date, slot, price_yen_per_kwh FROM prices WHERE area=? AND date >= ? AND date <= ? "
            "ORDER BY date, slot",
            (area, first.isoformat(), last.isoformat()),
        ).fetchall()
    by_day: dict[dt.date, list[float]] = {}
    for date, _slot, price in rows:
        by_day.setdefault(dt.date.fromisoformat(date), []).append(price)
    return {day: tuple(prices) for day, prices in by_day.items() if len(prices) == SLOTS_PER_DAY}


def price_coverage(store: Store) -> list[tuple[str, dt.date, dt.date, int]]:
    """Per area: first date, last date and number of dates stored."""
    with store._lock:
        rows = store._db.execute(
            "SELECT area, MIN(date), MAX(date), COUNT(DISTINCT date) FROM prices GROUP BY area ORDER BY area"
        ).fetchall()
    return [(area, dt.date.fromisoformat(lo), dt.date.fromisoformat(hi), n) for area, lo, hi, n in rows]


@dataclass(frozen=True)
class SlotBalance:
    """One 30-minute slot of one site (or ``total``): the plan, the meter and the difference."""

    slot_start: dt.datetime
    site: str
    planned_kwh: float
    metered_kwh: float
    imbalance_yen: float
    following: bool

    @property
    def imbalance_kwh(self) -> float:
        """Metered minus planned net import [kWh]: positive when more was drawn than planned."""
        return self.metered_kwh - self.planned_kwh


def record_slot_balances(store: Store, balances: Iterable[SlotBalance]) -> None:
    rows = [
        (to_ms(b.slot_start), b.site, b.planned_kwh, b.metered_kwh, b.imbalance_kwh, b.imbalance_yen, int(b.following))
        for b in balances
    ]
    with store._transaction() as db:
        db.executemany("INSERT OR REPLACE INTO slot_balance VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


def slot_balances(
    store: Store, since: dt.datetime, until: dt.datetime | None = None, site: str | None = None
) -> list[SlotBalance]:
    """Recorded slots from ``since`` (slot start) in time order; ``site`` narrows to one site or ``total``."""
    query = (
        "SELECT slot_start_ms, site, planned_kwh, metered_kwh, imbalance_yen, following FROM slot_balance "
        "WHERE slot_start_ms >= ?"
    )
    params: list = [to_ms(since)]
    if until is not None:
        query, params = query + " AND slot_start_ms < ?", params + [to_ms(until)]
    if site is not None:
        query, params = query + " AND site = ?", params + [site]
    with store._lock:
        rows = store._db.execute(query + " ORDER BY slot_start_ms, site", params).fetchall()
    return [SlotBalance(from_ms(t), s, planned, metered, yen, bool(f)) for t, s, planned, metered, yen, f in rows]


def imbalance_summary(store: Store, since: dt.datetime, until: dt.datetime | None = None) -> dict:
    """The balancing group's (``total``) imbalance since ``since``: for ``ems status`` and reports."""
    rows = slot_balances(store, since, until, site="total")
    absolute = [abs(b.imbalance_kwh) for b in rows]
    return {
        "slots": len(rows),
        "planned_kwh": round(sum(b.planned_kwh for b in rows), 3),
        "metered_kwh": round(sum(b.metered_kwh for b in rows), 3),
        "imbalance_abs_kwh": round(sum(absolute), 3),
        "imbalance_max_kwh": round(max(absolute, default=0.0), 3),
        "imbalance_yen": round(sum(b.imbalance_yen for b in rows), 1),
        "last_slot": rows[-1].slot_start.isoformat() if rows else None,
    }
