"""Follow the 30-minute demand plan: within each slot, steer batteries and EV charging so the
slot's metered energy ends at the planned energy, and record each slot's balance.

The plan of a slot is fixed at its gate closure (``GATE_MINUTES`` before the slot starts, when
a retailer's plan can no longer change); until then every re-plan updates it. Within the slot,
at each poll, with ``metered_kwh`` the net import so far and ``remaining_h`` the time left::

    needed_kw = (planned_kwh - metered_kwh) / max(remaining_h, MIN_REMAINING_H)
    offset_kw = grid_now_kw + previous_offset_kw - needed_kw

``offset_kw`` is the power the site's batteries (then its plugged EVs) add to their plan
set-points (positive: discharge more or charge less), split in that order within each device's
rating. What they cannot give stays as imbalance. Energy is integrated from the grid meter's
power readings (each reading stands for the interval since the poll before).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from ems.config.schema import Portfolio
from ems.market.demand_plan import slot_energy_kwh
from ems.store.prices import SlotBalance, record_slot_balances

GATE_MINUTES = 60
SLOT = dt.timedelta(minutes=30)
MIN_REMAINING_H = 2 / 60  # near the slot's end, spread what is left over at least two minutes
DEADBAND_KWH = 0.02  # a slot heading within this of its plan needs no correction


@dataclass(frozen=True)
class Steerable:
    """A device the follower may move, with its plan set-point and the range it may take [kW]."""

    device: str
    target_kw: float
    lowest_kw: float
    highest_kw: float


def needed_grid_kw(planned_kwh: float, metered_kwh: float, remaining_h: float) -> float:
    """Mean net import over the rest of the slot that makes it end at the plan [kW]."""
    return (planned_kwh - metered_kwh) / max(remaining_h, MIN_REMAINING_H)


def distribute_offset(offset_kw: float, devices: list[Steerable]) -> tuple[dict[str, float], float]:
    """Add ``offset_kw`` to the devices' targets in order, each within its range; returns the
    new set-points and the part of the offset no device could take."""
    left, out = offset_kw, {}
    for d in devices:
        new = min(max(d.target_kw + left, d.lowest_kw), d.highest_kw)
        left -= new - d.target_kw
        out[d.device] = new
    return out, left


@dataclass
class _SiteMeter:
    slot_start: dt.datetime | None = None
    energy_kwh: float = 0.0
    last_time: dt.datetime | None = None
    offset_kw: float = 0.0
    complete: bool = False  # metered from the slot's start without a gap


@dataclass
class PlanFollower:
    """Per-site slot plans, meters and corrections; ``enabled=False`` only records (for comparison)."""

    portfolio: Portfolio
    imbalance_price_yen_per_kwh: float
    enabled: bool = True
    planned_kwh: dict[dt.datetime, dict[str, float]] = field(default_factory=dict)
    meters: dict[str, _SiteMeter] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.grid_site = {g.id: g.site for g in self.portfolio.grid_connections}
        self.meters = {site: _SiteMeter() for site in self.grid_site.values()}

    # --- the plan ------------------------------------------------------------------------------

    def update_plan(self, plan_power_kw: pd.DataFrame, step_minutes: int, now: dt.datetime) -> None:
        """Take a new plan's slot energies for every slot whose gate has not closed yet."""
        columns = {g: s for g, s in self.grid_site.items() if g in plan_power_kw.columns}
        if not columns:
            return
        grid_kw = plan_power_kw[list(columns)].rename(columns=columns)
        energy = slot_energy_kwh(grid_kw, step_minutes, "UTC")
        gate = now + dt.timedelta(minutes=GATE_MINUTES)
        for start, row in energy.iterrows():
            start = start.to_pydatetime()
            if start >= gate or start not in self.planned_kwh:
                self.planned_kwh[start] = {site: float(v) for site, v in row.items()}

    # --- metering --------------------------------------------------------------------------------

    def observe(self, now: dt.datetime, grid_power_kw: Mapping[str, float | None]) -> list[SlotBalance]:
        """Integrate each site's metered power up to ``now``; returns the balances of slots that
        ended. Set-points change right after a poll, so the reading at ``now`` stands for the
        interval since the last poll. A slot seen only in part (start-up, a meter that stopped
        answering) is not recorded."""
        slot_start = _slot_start(now)
        closed: list[SlotBalance] = []
        for site, meter in self.meters.items():
            power = grid_power_kw.get(site)
            if meter.slot_start is None:
                meter.energy_kwh, meter.complete = 0.0, now == slot_start
            elif slot_start != meter.slot_start:
                if power is not None and meter.last_time is not None:
                    meter.energy_kwh += power * _hours(meter.last_time, meter.slot_start + SLOT)
                    if meter.complete:
                        closed += self._close(site, meter)
                    meter.energy_kwh = power * _hours(slot_start, now)
                    meter.complete = slot_start - meter.slot_start == SLOT
                else:
                    meter.energy_kwh, meter.complete = 0.0, now == slot_start
                meter.offset_kw = 0.0
            elif power is not None and meter.last_time is not None:
                meter.energy_kwh += power * _hours(meter.last_time, now)
            else:
                meter.complete = False
            if power is None:
                meter.complete = False
            meter.slot_start, meter.last_time = slot_start, now
        return self._with_total(closed)

    def _close(self, site: str, meter: _SiteMeter) -> list[SlotBalance]:
        if meter.slot_start is None:
            return []
        plan = self.planned_kwh.get(meter.slot_start)
        if plan is None or site not in plan:
            return []
        gap = abs(meter.energy_kwh - plan[site])
        return [
            SlotBalance(
                meter.slot_start,
                site,
                plan[site],
                meter.energy_kwh,
                gap * self.imbalance_price_yen_per_kwh,
                self.enabled,
            )
        ]

    def _with_total(self, closed: list[SlotBalance]) -> list[SlotBalance]:
        by_slot: dict[dt.datetime, list[SlotBalance]] = {}
        for b in closed:
            by_slot.setdefault(b.slot_start, []).append(b)
        for start, rows in by_slot.items():
            planned, metered = sum(r.planned_kwh for r in rows), sum(r.metered_kwh for r in rows)
            closed.append(
                SlotBalance(
                    start,
                    "total",
                    planned,
                    metered,
                    abs(metered - planned) * self.imbalance_price_yen_per_kwh,
                    self.enabled,
                )
            )
        return closed

    # --- steering --------------------------------------------------------------------------------

    def correct(
        self, now: dt.datetime, grid_power_kw: Mapping[str, float | None], steerable: dict[str, list[Steerable]]
    ) -> dict[str, float]:
        """Set-points that bring each site's slot to its plan (only devices that change)."""
        if not self.enabled:
            return {}
        slot_start = _slot_start(now)
        plan = self.planned_kwh.get(slot_start, {})
        out: dict[str, float] = {}
        for site, meter in self.meters.items():
            grid_now = grid_power_kw.get(site)
            if site not in plan or grid_now is None or meter.slot_start != slot_start:
                continue
            remaining_h = (slot_start + SLOT - now).total_seconds() / 3600
            projected_kwh = meter.energy_kwh + grid_now * max(remaining_h, 0.0)
            if abs(projected_kwh - plan[site]) < DEADBAND_KWH:  # on course: leave the set-points alone
                offset = meter.offset_kw
            else:
                offset = grid_now + meter.offset_kw - needed_grid_kw(plan[site], meter.energy_kwh, remaining_h)
            setpoints, unmet = distribute_offset(offset, steerable.get(site, []))
            meter.offset_kw = offset - unmet
            out |= setpoints
        return out


def _hours(since: dt.datetime, until: dt.datetime) -> float:
    return max(0.0, (until - since).total_seconds() / 3600)


def _slot_start(now: dt.datetime) -> dt.datetime:
    """Start of the 30-minute slot holding ``now``, in UTC (slots align with local half hours in
    Japan and in every zone whose offset is a whole number of half hours)."""
    utc = now.astimezone(dt.UTC)
    return utc.replace(minute=30 * (utc.minute // 30), second=0, microsecond=0)


class ControllerFollowing:
    """The controller's hooks: meter and record after a poll, take a new plan, correct set-points."""

    def __init__(self, follower: PlanFollower):
        self.follower = follower

    def _grid_kw(self, controller) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for grid_id, site in self.follower.grid_site.items():
            reading = controller.state.reading(grid_id)
            out[site] = None if reading is None or grid_id in controller.state.missing() else reading.power_kw
        return out

    def after_poll(self, controller, now: dt.datetime) -> None:
        closed = self.follower.observe(now, self._grid_kw(controller))
        if closed:
            record_slot_balances(controller.store, closed)

    def after_plan(self, controller, now: dt.datetime) -> None:
        self.follower.update_plan(controller.plan_power_kw, controller.portfolio.planning.step_minutes, now)

    def adjust(self, controller, targets: dict[str, float], now: dt.datetime) -> dict[str, float]:
        portfolio = controller.portfolio
        ratings = {b.id: (b.site, -b.charge_power_kw, b.discharge_power_kw) for b in portfolio.batteries}
        vehicles = {v.id: v for v in portfolio.vehicles}
        for c in portfolio.chargers:
            plugged = [v for v, ch in controller.state.plugged().items() if ch == c.id]
            if plugged:
                v2g = c.bidirectional and vehicles[plugged[0]].v2g_allowed
                ratings[c.id] = (c.site, -c.charge_power_kw, c.discharge_power_kw if v2g else 0.0)
        steerable: dict[str, list[Steerable]] = {}
        for device, target in targets.items():  # batteries first: they were bought to do this
            if device in ratings:
                site, low, high = ratings[device]
                steerable.setdefault(site, []).append(Steerable(device, target, min(low, target), max(high, target)))
        for site in steerable:
            steerable[site].sort(key=lambda s: (s.device not in {b.id for b in portfolio.batteries}, s.device))
        return targets | self.follower.correct(now, self._grid_kw(controller), steerable)
