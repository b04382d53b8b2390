"""Demand-response event files: the format, its parser, and the events as optimiser input.

A file holds one event, laid out after an OpenADR 2.0b ``oadrEvent`` so that an OpenADR client
can later write the same structure: ``[event]`` is the event descriptor (id, modification
number, market context) plus the direction and prices, ``[active_period]`` the ``eiActivePeriod``
(start, duration), ``[[signal.intervals]]`` the ``eiEventSignal`` intervals (each a duration and
a payload: ``requested_kw`` below/above the baseline, or a ``target_kw`` for the net import),
and ``[targets]`` the ``eiTarget`` (sites). The full format is in ``docs/nightly.md``.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ems.optimise.problem import DrEventSpec, TimeGrid


class EventFileError(ValueError):
    """An event file is wrong; the message names the file and the key of every problem found
    (``key`` is the first)."""

    def __init__(self, path: str | Path, key: str, problem: str, more: list[tuple[str, str]] | None = None):
        self.path, self.key, self.problem = str(path), key, problem
        self.problems = [(key, problem), *(more or [])]
        super().__init__("invalid DR event file\n" + "\n".join(f"{path}: {k}: {p}" for k, p in self.problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventDescriptor(_Strict):
    event_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", description="OpenADR eventID")
    modification_number: int = Field(0, ge=0, description="OpenADR modificationNumber")
    market_context: str = Field("", description="OpenADR marketContext (programme name)")
    direction: Literal["down", "up"] = Field(description="down: cut net import; up: raise it (absorb)")
    price_yen_per_kwh: float = Field(ge=0, description="paid per kWh delivered")
    penalty_yen_per_kwh: float = Field(0.0, ge=0, description="charged per kWh short of the request")


class ActivePeriod(_Strict):
    start: str = Field(description="'HH:MM' local on the simulated day, or ISO 8601 with offset")
    duration_minutes: int = Field(gt=0, le=24 * 60, description="length of the event")

    @field_validator("start")
    @classmethod
    def _parseable(cls, value: str) -> str:
        if re.fullmatch(r"\d{2}:\d{2}", value):
            dt.time.fromisoformat(value)
            return value
        parsed = dt.datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("a full date-time needs a UTC offset, e.g. 2026-04-15T17:00:00+09:00")
        return value


class SignalInterval(_Strict):
    uid: int = Field(ge=0, description="OpenADR interval uid, in order")
    duration_minutes: int = Field(gt=0, description="length of the interval")
    requested_kw: float | None = Field(
        None, gt=0, description="power to shed (down) or absorb (up) against the baseline"
    )
    target_kw: float | None = Field(None, description="net import to stay below (down) or above (up)")

    @model_validator(mode="after")
    def _one_payload(self) -> SignalInterval:
        if (self.requested_kw is None) == (self.target_kw is None):
            raise ValueError("give exactly one of requested_kw or target_kw")
        return self


class Signal(_Strict):
    intervals: tuple[SignalInterval, ...] = Field(
        min_length=1, description="consecutive intervals covering the active period"
    )


class Targets(_Strict):
    site_ids: tuple[str, ...] = Field(min_length=1, description="sites whose summed net import is measured")


class DrEvent(_Strict):
    event: EventDescriptor
    active_period: ActivePeriod
    signal: Signal
    targets: Targets

    @property
    def id(self) -> str:
        return self.event.event_id

    def start_on(self, day_start: pd.Timestamp) -> pd.Timestamp:
        """The event's start for the simulated day beginning at ``day_start`` (local midnight)."""
        value = self.active_period.start
        if re.fullmatch(r"\d{2}:\d{2}", value):
            clock = dt.time.fromisoformat(value)
            return day_start + pd.Timedelta(hours=clock.hour, minutes=clock.minute)
        return pd.Timestamp(value).tz_convert(day_start.tz)

    def shifted(self, minutes: int, scale: float) -> DrEvent:
        """The same event moved by ``minutes`` and with every request scaled by ``scale``."""
        start = self.active_period.start
        if re.fullmatch(r"\d{2}:\d{2}", start):
            clock = dt.datetime.combine(dt.date(2000, 1, 1), dt.time.fromisoformat(start)) + dt.timedelta(
                minutes=minutes
            )
            start = clock.strftime("%H:%M")
        else:
            start = (dt.datetime.fromisoformat(start) + dt.timedelta(minutes=minutes)).isoformat()
        intervals = tuple(
            i.model_copy(update={"requested_kw": i.requested_kw * scale if i.requested_kw is not None else None})
            for i in self.signal.intervals
        )
        if minutes == 0 and scale == 1.0:
            return self
        suffix = f"{'+' if minutes >= 0 else '-'}{abs(minutes)}min-x{scale:g}"
        return self.model_copy(
            update={
                "event": self.event.model_copy(update={"event_id": f"{self.event.event_id}@{suffix}"}),
                "active_period": self.active_period.model_copy(update={"start": start}),
                "signal": Signal(intervals=intervals),
            }
        )


def _key(loc: tuple) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1] = f"{parts[-1]}[{item}]" if parts else f"[{item}]"
        else:
            parts.append(str(item))
    return ".".join(parts) or "(top)"


def parse_event(raw: dict, path: str | Path = "<memory>") -> DrEvent:
    try:
        event = DrEvent.model_validate(raw)
    except ValidationError as error:
        errors = error.errors()
        # a list whose items failed is also reported as too short: the item's error says it all
        locs = [e["loc"] for e in errors]
        errors = [
            e
            for e in errors
            if not (e["type"] == "too_short" and any(o[: len(e["loc"])] == e["loc"] and o != e["loc"] for o in locs))
        ]
        problems = [(_key(e["loc"]), e["msg"]) for e in errors]
        raise EventFileError(path, *problems[0], more=problems[1:]) from None
    total = sum(i.duration_minutes for i in event.signal.intervals)
    if total != event.active_period.duration_minutes:
        raise EventFileError(
            path,
            "signal.intervals",
            f"the intervals last {total} min but "
            f"active_period.duration_minutes is {event.active_period.duration_minutes}",
        )
    return event


def load_event(path: str | Path) -> DrEvent:
    """Read and validate one event file; raise :class:`EventFileError` naming the key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EventFileError(path, "(file)", "no such file") from None
    except tomllib.TOMLDecodeError as error:
        raise EventFileError(path, "(syntax)", str(error)) from None
    return parse_event(raw, path)


def check_event(event: DrEvent, sites: tuple[str, ...], grid: TimeGrid, source: str = "<event>") -> None:
    """Raise :class:`EventFileError` if the event names unknown sites or leaves the grid."""
    unknown = sorted(set(event.targets.site_ids) - set(sites))
    if unknown:
        raise EventFileError(source, "targets.site_ids", f"unknown sites {unknown}; known: {list(sites)}")
    start = event.start_on(grid.start.normalize())
    step = grid.step_minutes
    if ((start - grid.start) / pd.Timedelta(minutes=step)) % 1 != 0:
        raise EventFileError(source, "active_period.start", f"must fall on a {step}-minute step boundary")
    for k, interval in enumerate(event.signal.intervals):
        if interval.duration_minutes % step:
            raise EventFileError(source, f"signal.intervals[{k}].duration_minutes", f"must be a multiple of {step}")
    end = start + pd.Timedelta(minutes=event.active_period.duration_minutes)
    if start < grid.start or end > grid.end:
        raise EventFileError(
            source, "active_period", f"{start} to {end} is outside the planned day {grid.start} to {grid.end}"
        )


def interval_masks(event: DrEvent, grid: TimeGrid) -> list[tuple[SignalInterval, np.ndarray]]:
    """Per signal interval, the steps of ``grid`` it covers (bool mask)."""
    index = grid.index
    begin = event.start_on(grid.start.normalize())
    masks = []
    for interval in event.signal.intervals:
        end = begin + pd.Timedelta(minutes=interval.duration_minutes)
        masks.append((interval, np.asarray((index >= begin) & (index < end))))
        begin = end
    return masks


def active_mask(event: DrEvent, grid: TimeGrid) -> np.ndarray:
    return np.any([mask for _i, mask in interval_masks(event, grid)], axis=0)


def requested_kw(event: DrEvent, grid: TimeGrid, baseline_kw: np.ndarray) -> np.ndarray:
    """Power asked for in each step [kW] (0 outside the event); a target becomes its distance
    from the baseline (nothing asked where the baseline already meets it)."""
    request = np.zeros(grid.steps)
    for interval, mask in interval_masks(event, grid):
        if interval.requested_kw is not None:
            request[mask] = interval.requested_kw
        elif event.event.direction == "down":
            request[mask] = np.clip(baseline_kw[mask] - interval.target_kw, 0, None)
        else:
            request[mask] = np.clip(interval.target_kw - baseline_kw[mask], 0, None)
    return request


def dr_specs(event: DrEvent, grid: TimeGrid, baseline_kw: np.ndarray) -> tuple[DrEventSpec, ...]:
    """The event as optimiser input: one spec per run of steps asking the same power."""
    request = requested_kw(event, grid, baseline_kw)
    specs = []
    t = 0
    while t < grid.steps:
        if request[t] <= 0:
            t += 1
            continue
        end = t
        while end < grid.steps and request[end] == request[t]:
            end += 1
        active = np.zeros(grid.steps, dtype=bool)
        active[t:end] = True
        specs.append(
            DrEventSpec(
                id=f"{event.id}/{t}",
                direction=event.event.direction,
                sites=event.targets.site_ids,
                active=active,
                baseline_kw=np.asarray(baseline_kw, dtype=float),
                requested_kw=float(request[t]),
                price_yen_per_kwh=event.event.price_yen_per_kwh,
                penalty_yen_per_kwh=event.event.penalty_yen_per_kwh,
            )
        )
        t = end
    return tuple(specs)


def delivered(event: DrEvent, grid: TimeGrid, net_import_kw: np.ndarray, baseline_kw: np.ndarray) -> dict[str, float]:
    """Energy delivered against ``baseline_kw`` over the event [kWh]: the raw change in net import
    (``delivered_kwh``) and the part that counts, capped at the request (``settled_kwh``)."""
    mask = active_mask(event, grid)
    request = requested_kw(event, grid, baseline_kw)
    change = (baseline_kw - net_import_kw) if event.event.direction == "down" else (net_import_kw - baseline_kw)
    dt_h = grid.step_h
    settled = np.clip(change, 0, request)
    return {
        "requested_kwh": float(request[mask].sum() * dt_h),
        "delivered_kwh": float(change[mask].sum() * dt_h),
        "settled_kwh": float(settled[mask].sum() * dt_h),
        "shortfall_kwh": float((request - settled)[mask].sum() * dt_h),
        "mean_delivered_kw": float(change[mask].mean()),
    }
