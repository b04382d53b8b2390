"""One control cycle: snapshot telemetry, update the problem's initial state, re-solve the
rolling horizon, pass set-points through the write guard, write them, record everything.

The clock is injected (``clock.now()``), so the same cycle runs live or on a simulated clock.
The solve runs in a worker thread so telemetry keeps flowing while HiGHS works.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from drivers.api import DeviceUnavailable, NotWritable, Reading
from ems.config.load import profile_values
from ems.config.schema import Portfolio
from ems.control.collaborators import Bcp, Devices, Fleet
from ems.control.foreign import find_foreign_writes, watched_devices
from ems.control.setpoints import failsafe_setpoint_kw, hold_small_changes, setpoint_targets, writable_devices
from ems.control.state import LiveState
from ems.fleet import Reservation, plans_from_duties
from ems.fleet.reconcile import reconcile_fleet
from ems.guard import SetpointRefused
from ems.optimise.inputs import shelter_critical_kw
from ems.optimise.problem import LoadSpec, Problem
from ems.planning import plan_inputs
from ems.store import Store

if TYPE_CHECKING:
    from ems.control.following import ControllerFollowing
    from ems.optimise.replanner import Replanner

log = logging.getLogger(__name__)

TELEMETRY_FIELDS = ("power_kw", "energy_kwh", "soc_fraction", "setpoint_kw")
FLEET_STATE_MAX_AGE = dt.timedelta(minutes=15)  # an older dispatcher state no longer says where a vehicle is


@dataclass
class CycleFigures:
    """What the last cycle did, for the status line and the benchmarks."""

    time: dt.datetime | None = None
    poll_s: float = 0.0
    plan_s: float = 0.0
    write_s: float = 0.0
    plan_status: str = ""
    plan_cost_yen: float | None = None
    solve_s: float = 0.0
    written: int = 0
    failsafe: list[str] = field(default_factory=list)


@dataclass
class ReplanHealth:
    """Whether re-planning works; kept in the store (state ``replan``) for ``ems status``."""

    failing_since: dt.datetime | None = None
    reason: str = ""
    failures: int = 0  # re-plans without a plan since the last good one

    def as_state(self) -> dict:
        since = self.failing_since.isoformat() if self.failing_since else None
        return {"failing_since": since, "reason": self.reason, "failures": self.failures}


class Controller:
    def __init__(
        self,
        portfolio: Portfolio,
        config_path: str | Path,
        devices: Devices,
        store: Store,
        clock: Callable[[], dt.datetime],
        *,
        inputs: str = "forecast",
        horizon_hours: int | None = None,
        fleet: Fleet | None = None,
        bcp: Bcp | None = None,
    ):
        self.portfolio = portfolio
        self.config_path = Path(config_path)
        self.devices = devices  # ems.devices.DeviceSet live
        self.store = store
        self.clock = clock
        self.inputs = inputs
        self.horizon_hours = horizon_hours
        self.state = LiveState(portfolio)
        self.batteries = {b.id for b in portfolio.batteries}
        self.chargers = {c.id for c in portfolio.chargers}
        self.v2h_points = {c.id for c in portfolio.chargers if c.v2h}  # shelters' V2H chargers
        self.device_site = {a.id: a.site for a in (*portfolio.batteries, *portfolio.chargers)}
        self.writable = writable_devices(portfolio)  # every kind's set-point devices (the optimiser's registry)
        self.plan_power_kw: pd.DataFrame | None = None
        self.plan_id: int | None = None
        self.setpoints_kw: dict[str, float] = {}  # what the plan asked for (held against small changes)
        self.written_kw: dict[str, float] = {}  # what the guard let through and the device took
        # writes started per device, and those still waiting for their answer: a poll judges a
        # device's set-point only when no write to it began or was under way while it read
        self.writes_started: dict[str, int] = {}
        self.writes_in_flight: dict[str, int] = {}
        self.figures = CycleFigures()
        self.step = dt.timedelta(minutes=portfolio.planning.step_minutes)
        self.history_kw: dict[str, pd.Series] = {}
        self.fleet = fleet  # ems.control.fleetbus.FleetBus: the dispatcher's states and plans, when live
        self.reservation = Reservation(issued=clock())  # energy vehicles must keep; shelter calls (BCP)
        self.bcp = bcp  # the operator's BCP switch and the BCP planner, handed in by the command line
        self.bcp_since: dt.datetime | None = None
        self.bcp_sites: frozenset[str] = frozenset()
        self.bcp_outage_span: tuple[dt.datetime, dt.datetime] | None = None  # when the outage's sites are islanded
        self.planned_arrivals: frozenset[str] = frozenset()  # called vehicles the last plan had plugged in at a shelter
        self.health = ReplanHealth()
        self._bcp_fault = ""
        self._fleet_rejections_seen = 0
        self._plan_notes: set[tuple[str, str, str]] = set()  # fleet-plan problems already recorded as events
        self.following: ControllerFollowing | None = None  # steer each slot to the demand plan
        self.replanner: Replanner | None = None  # made at the first re-plan: keeps the model loaded in HiGHS

    # --- restart ---------------------------------------------------------------------------------

    def resume(self) -> bool:
        """Pick up the last stored plan and set-points; True if there was one."""
        plan_id = self.store.get_state("last_plan_id")
        self.setpoints_kw = {k: float(v) for k, v in (self.store.get_state("setpoints_kw") or {}).items()}
        if plan_id is None:
            return False
        points = self.store.plan_points(plan_id)
        frame = pd.DataFrame(points, columns=["time", "asset", "power_kw", "soc_kwh"])
        self.plan_power_kw = frame.pivot(index="time", columns="asset", values="power_kw").sort_index()
        self.plan_id = plan_id
        self.store.record_event(self.clock(), "resume", f"resumed from stored plan {plan_id}", {"plan_id": plan_id})
        return True

    # --- the cycle ---------------------------------------------------------------------------------

    async def poll(self) -> list[Reading]:
        started = time.perf_counter()
        now = self.clock()
        expected_kw = dict(self.written_kw)  # before reading: a write during the poll is not foreign
        started_before = dict(self.writes_started)
        readings = await self.devices.read_all()
        lost, back = self.state.update(readings, now)
        rows = [
            (now, r.device, name, _finite(getattr(r, name)), r.quality.value)
            for r in readings
            for name in TELEMETRY_FIELDS
            if getattr(r, name) is not None
        ]
        rows += [(now, r.device, "missing", 1.0, r.quality.value) for r in readings if r.power_kw is None]
        await asyncio.to_thread(self.store.record_telemetry, rows)
        if self.following is not None:
            self.following.after_poll(self, now)
        for device in lost:
            last = self.state.reading(device)
            reason = (last.error if last is not None else None) or "no answer"
            self.store.record_event(
                now,
                "device-lost",
                f"{device} stopped answering ({reason}); failsafe set-point, left out of plans",
                {"device": device},
            )
            if device in self.writable:
                await self._write(device, failsafe_setpoint_kw(self.portfolio, device), now, "failsafe")
                self.figures.failsafe.append(device)
        for device in back:
            self.store.record_event(
                now, "device-back", f"{device} answers again; back in the next plan", {"device": device}
            )
        ratings = {b.id: max(b.charge_power_kw, b.discharge_power_kw) for b in self.portfolio.batteries}
        settled_kw = {
            d: v
            for d, v in expected_kw.items()
            if self.writes_started.get(d, 0) == started_before.get(d, 0) and not self.writes_in_flight.get(d)
        }
        for seen in find_foreign_writes(readings, settled_kw, self.written_kw, watched_devices(self.devices, ratings)):
            self.store.record_event(now, "foreign_write", seen.message(), seen.details())
            await self._write(seen.device, self.setpoints_kw.get(seen.device, seen.expected_kw), now, "reassert")
        self.figures.poll_s = time.perf_counter() - started
        return readings

    def check_bcp_mode(self) -> bool:
        """Follow the operator's BCP switch; True while BCP mode is active.

        In BCP mode the batteries at the outage's sites charge up and hold their energy, the BCP
        plan's reservation (energy to keep, vehicles called to shelters) constrains the vehicles
        and goes to the dispatcher; back in normal mode both are lifted.
        """
        if self.bcp is None:
            return False
        now = self.clock()
        mode = self.bcp.current()
        if mode is not None and mode.active and mode.since != self.bcp_since:
            if mode.outage is None:  # only a hand-made record lacks it: unreadable, the known mode stays
                raise ValueError(f"the BCP mode record since {mode.since.isoformat()} names no outage")
            socs = self.state.battery_soc_kwh() | self.state.vehicle_soc_kwh()
            self.reservation = self.bcp.reservation(mode.outage, socs, now)
            self.bcp_since, self.bcp_sites = mode.since, frozenset(mode.outage.sites)
            self.bcp_outage_span = (mode.outage.start, mode.outage.end)
            calls = ", ".join(f"{c.vehicle_id}->{c.shelter_id}" for c in self.reservation.shelter_calls) or "none"
            self.store.record_event(
                now,
                "bcp-mode",
                f"BCP mode on (operator {mode.operator}, since {mode.since.isoformat()}); shelter calls: {calls}",
                {"outage": mode.outage.model_dump(mode="json")},
            )
        elif (mode is None or not mode.active) and self.bcp_since is not None:
            self.reservation = Reservation(issued=now)
            self.bcp_since, self.bcp_sites, self.bcp_outage_span = None, frozenset(), None
            self.store.record_event(now, "bcp-mode", "BCP mode off: normal operation")
        return self.bcp_since is not None

    def _follow_bcp_mode(self, now: dt.datetime) -> None:
        """Follow the BCP switch; an unreadable switch keeps the mode in force and is recorded."""
        try:
            self.check_bcp_mode()
        except Exception as error:  # the operator's record is unreadable: the known mode stays
            reason = f"{type(error).__name__}: {error}"
            if reason != self._bcp_fault:
                mode = "on" if self.bcp_since else "off"
                self.store.record_event(
                    now,
                    "bcp-mode-unreadable",
                    f"BCP mode switch unreadable ({reason}); BCP mode stays {mode}",
                    {"reason": reason},
                )
            self._bcp_fault = reason
        else:
            self._bcp_fault = ""

    def _record_fleet_rejections(self, now: dt.datetime) -> None:
        """Fleet messages rejected since the last re-plan become events (the bus only logs them)."""
        if self.fleet is None:
            return
        total, new = self.fleet.rejections_since(self._fleet_rejections_seen)
        for topic, reason in new:
            self.store.record_event(
                now,
                "fleet-rejected",
                f"fleet message on {topic} rejected: {reason}",
                {"topic": topic, "reason": reason},
            )
        self._fleet_rejections_seen = total

    def _planning_portfolio(self) -> Portfolio:
        """In BCP mode, batteries at the outage's sites keep all they can hold."""
        if not self.bcp_sites:
            return self.portfolio
        batteries = tuple(
            b.model_copy(update={"bcp_reserve_kwh": b.capacity_kwh * b.soc_max_fraction})
            if b.site in self.bcp_sites
            else b
            for b in self.portfolio.batteries
        )
        return self.portfolio.model_copy(update={"batteries": batteries})

    def _problem(self, start: pd.Timestamp, inputs: str | None = None, use_fleet: bool = True):
        now = self.clock()
        plugged = self.state.plugged()
        hours = self.horizon_hours or self.portfolio.planning.horizon_hours
        plans = plans_from_duties(
            self.portfolio, start.to_pydatetime(), (start + pd.Timedelta(hours=hours)).to_pydatetime()
        )
        fleet = self.fleet if use_fleet else None
        if fleet is not None:  # the dispatcher's word on where each vehicle will be wins over duties
            plans |= fleet.plans
        # late, unplugged or off-plan vehicles re-planned around; a stale dispatcher state's SoC left out;
        # one plugged in now counts as plugged from the step in progress, whose set-points this plan writes
        states = fleet.states if fleet is not None else {}
        plans, fleet_socs = reconcile_fleet(
            plans, states, now, plugged, self.step, FLEET_STATE_MAX_AGE, step_start=start.to_pydatetime()
        )
        plans = self._usable_plans(plans, now)
        initial = self.state.battery_soc_kwh() | fleet_socs | self.state.vehicle_soc_kwh()
        problem = plan_inputs(
            self.config_path,
            start,
            horizon_hours=hours,
            inputs=inputs or self.inputs,
            plans=plans,
            portfolio=self._planning_portfolio(),
            history=self.history_kw or None,
            initial_soc_kwh=initial,
            unavailable=frozenset(self.state.missing()),
            reservation=self._reservation_for_plan(plugged, now),
            store=self.store,
        ).problem
        return self._islanded(problem, start)

    def _arrived_at_shelters(self, plugged: dict[str, str | None], now: dt.datetime) -> frozenset[str]:
        """Vehicles called to a shelter whose call has begun and that are plugged in at a V2H point."""
        return frozenset(
            call.vehicle_id
            for call in self.reservation.shelter_calls
            if call.from_time <= now and plugged.get(call.vehicle_id) in self.v2h_points
        )

    def shelter_arrival_unplanned(self) -> bool:
        """True when a called vehicle has plugged in at its shelter (its call begun) since the last
        plan was made: the scheduler then re-plans at once, so the shelter is fed within a poll and
        a re-plan of the taxi plugging in rather than at the next periodic re-plan."""
        return bool(self._arrived_at_shelters(self.state.plugged(), self.clock()) - self.planned_arrivals)

    def _reservation_for_plan(self, plugged: dict[str, str | None], now: dt.datetime) -> Reservation:
        """The reservation as the plan should see it: a vehicle called to a shelter keeps its
        energy until it is there; once it is plugged in at a shelter's V2H point that energy is
        the shelter's, so its keep-energy floor is lifted and the plan may discharge it."""
        arrived = self.planned_arrivals = self._arrived_at_shelters(plugged, now)
        if not arrived:
            return self.reservation
        keep = {vehicle: kwh for vehicle, kwh in self.reservation.keep_energy_kwh.items() if vehicle not in arrived}
        return self.reservation.model_copy(update={"keep_energy_kwh": keep})

    def _islanded(self, problem: Problem, start: pd.Timestamp) -> Problem:
        """In BCP mode, while the outage lasts, its sites plan without the grid: their loads are
        served from the batteries and the vehicles plugged in at their V2H points, as they are
        in the outage. The whole horizon is planned islanded (a grid spec has one availability),
        so the plan holds energy back until the operator switches BCP mode off."""
        islanded = self._islanded_sites(start.to_pydatetime() + self.step)
        if not islanded:
            return problem
        grids = tuple(dataclasses.replace(g, available=False) if g.site in islanded else g for g in problem.grids)
        return dataclasses.replace(problem, grids=grids, loads=self._outage_loads(problem, islanded))

    def _outage_loads(self, problem: Problem, islanded: frozenset[str]) -> tuple[LoadSpec, ...]:
        """An islanded shelter's site carries only the shelter's critical load, the circuits its
        battery and V2H points keep alive in an outage (as a BCP drill plans it); the rest of the
        site's load is switched off. Planning the whole site load would spend the visiting taxis
        on circuits nobody serves in an outage and shed the critical load with it."""
        shelters = [s for s in self.portfolio.shelters if s.site in islanded]
        if not shelters:
            return problem.loads
        zone = self.portfolio.portfolio.timezone
        critical = tuple(
            LoadSpec(
                id=f"{s.id}_critical",
                site=s.site,
                kind="shelter_load",
                demand_kw=shelter_critical_kw(
                    s, profile_values(self.portfolio.profiles[s.profile], self.config_path), problem.grid, zone
                ),
            )
            for s in shelters
        )
        shelter_sites = {s.site for s in shelters}
        return tuple(ld for ld in problem.loads if ld.site not in shelter_sites) + critical

    def _islanded_sites(self, by: dt.datetime) -> frozenset[str]:
        """The outage's sites when BCP mode is on and its outage has begun before ``by`` and not ended."""
        span = self.bcp_outage_span
        if span is None or not (span[0] < by and self.clock() < span[1]):
            return frozenset()
        return self.bcp_sites

    def _usable_plans(self, plans: dict, now: dt.datetime) -> dict:
        """Drop charging windows at chargers that are unknown or not answering: the vehicle is
        planned as away for them, every other asset as usual. Each new case is recorded once."""
        missing = self.state.missing()
        usable = {}
        for vehicle, plan in plans.items():
            kept = []
            for window in plan.windows:
                reason = (
                    "unknown charger"
                    if window.charger_id not in self.chargers
                    else "charger not answering"
                    if window.charger_id in missing
                    else ""
                )
                if not reason:
                    kept.append(window)
                elif (vehicle, window.charger_id, reason) not in self._plan_notes:
                    self._plan_notes.add((vehicle, window.charger_id, reason))
                    self.store.record_event(
                        now,
                        "plan-input",
                        f"{vehicle}: charging window at {window.charger_id} left out ({reason})",
                        {"vehicle": vehicle, "charger": window.charger_id, "reason": reason},
                    )
            usable[vehicle] = (
                plan if len(kept) == len(plan.windows) else plan.model_copy(update={"windows": tuple(kept)})
            )
        # a charger that answers again is noted anew if it fails again
        self._plan_notes = {note for note in self._plan_notes if note[1] in missing or note[1] not in self.chargers}
        return usable

    async def refresh_history(self, days: int = 14) -> None:
        """Measured PV output and load of the last ``days`` for the forecasters (magnitudes, kW)."""
        since = self.clock() - dt.timedelta(days=days)
        history = {}
        for asset in [p.id for p in self.portfolio.pv_arrays] + [ld.id for ld in self.portfolio.loads]:
            rows = await asyncio.to_thread(self.store.series, asset, "power_kw", since)
            if len(rows) >= 2:
                times, values = zip(*rows)
                history[asset] = (
                    pd.Series([abs(v) for v in values], index=pd.DatetimeIndex(times)).resample("5min").mean().dropna()
                )
        self.history_kw = history

    async def replan(self):
        """Re-solve from the start of the current step with the latest state; store the plan.

        Never raises: when the problem cannot be built from the live inputs it is built again
        from the configured duties and profiles (the dispatcher's plans and the forecasters left
        out); when that fails too, the failure is recorded, the last plan's set-points stay,
        and ``None`` is returned.
        """
        started = time.perf_counter()
        now = self.clock()
        zone = self.portfolio.portfolio.timezone
        start = pd.Timestamp(now).tz_convert(zone).floor(f"{self.portfolio.planning.step_minutes}min")
        try:
            await asyncio.to_thread(self._follow_bcp_mode, now)
            await asyncio.to_thread(self._record_fleet_rejections, now)
            schedule, problem = await self._solve_degrading(start, now)
        except Exception as error:  # any fault in planning: recorded, never the end of the process
            await asyncio.to_thread(self._replan_failed, now, f"{type(error).__name__}: {error}")
            if self.plan_power_kw is None:  # no plan to follow at all: every writable device to its failsafe
                await asyncio.gather(
                    *(
                        self._write(d, failsafe_setpoint_kw(self.portfolio, d), now, "failsafe")
                        for d in sorted(self.writable)
                        if d not in self.state.missing()
                    )
                )
            self.figures.plan_s = time.perf_counter() - started
            return None
        if schedule.status == "fallback":
            self.store.record_event(
                now,
                "fallback",
                f"solver gave no plan ({schedule.message}); rule-based set-points",
                {"reason": schedule.message},
            )
        self.plan_power_kw = schedule.power_kw
        if self.following is not None:
            self.following.after_plan(self, now)
        points = [
            (t.to_pydatetime(), asset, float(v), None)
            for asset in schedule.power_kw.columns
            for t, v in schedule.power_kw[asset].items()
        ]
        summary = schedule.summary()
        self.plan_id = await asyncio.to_thread(
            self.store.record_plan,
            now,
            start.to_pydatetime(),
            problem.grid.step_minutes,
            "intraday",
            schedule.status,
            summary,
            points,
        )
        if self.health.failing_since is not None:
            self.store.record_event(
                now, "replan-recovered", f"re-planning works again after {self.health.failures} failed re-plan(s)"
            )
        self.health = ReplanHealth()
        self.store.set_state("replan", self.health.as_state(), now)
        if self.fleet is not None:
            self.reservation = self.reservation.model_copy(update={"issued": now})
            self.fleet.publish_reservation(self.reservation)
        self.figures.plan_s = time.perf_counter() - started
        self.figures.plan_status, self.figures.plan_cost_yen, self.figures.solve_s = (
            schedule.status,
            schedule.cost_yen,
            schedule.solve_s,
        )
        return schedule

    async def _solve_degrading(self, start: pd.Timestamp, now: dt.datetime):
        """(schedule, problem) from the live inputs, else from the config's duties and profiles."""
        from ems.optimise.replanner import Replanner

        replanner = self.replanner = self.replanner or Replanner()
        try:
            problem = await asyncio.to_thread(self._problem, start, self.inputs)
        except Exception as error:  # a bad input of any kind: plan again on the configured ones
            reason = f"{type(error).__name__}: {error}"
            log.warning("re-plan inputs rejected (%s); planning on the configured duties and profiles", reason)
            self.store.record_event(
                now,
                "replan-degraded",
                f"live plan inputs rejected ({reason}); planned on configured duties and profiles",
                {"reason": reason},
            )
            problem = await asyncio.to_thread(self._problem, start, "profiles", False)
        return await asyncio.to_thread(replanner.solve, problem), problem

    def _replan_failed(self, now: dt.datetime, reason: str) -> None:
        log.error("re-plan failed: %s; the last plan's set-points stay", reason)
        if self.health.failing_since is None:
            self.health.failing_since = now
        self.health.reason, self.health.failures = reason, self.health.failures + 1
        self.store.record_event(
            now, "replan-failed", f"re-plan failed ({reason}); the last plan's set-points stay", {"reason": reason}
        )
        self.store.set_state("replan", self.health.as_state(), now)
        self.figures.plan_status = "failed"

    async def apply(self) -> dict[str, float]:
        """Write the current plan step's set-points (held against small changes) through the guard."""
        started = time.perf_counter()
        now = self.clock()
        if self.plan_power_kw is None:
            return {}
        live = {d for d in self.writable if d in self.devices.drivers} - self.state.missing()
        targets = setpoint_targets(self.portfolio, self.plan_power_kw, now, self.state.plugged(), live)
        targets = hold_small_changes(self.setpoints_kw, targets, self.portfolio.control.hold_threshold_kw)
        if self.following is not None:  # sites islanded in BCP mode have no grid to follow the demand plan with
            islanded = self._islanded_sites(now)
            own = {d: t for d, t in targets.items() if self.device_site.get(d) in islanded}
            targets = self.following.adjust(self, {d: t for d, t in targets.items() if d not in own}, now) | own
        changed = [
            (d, t)
            for d, t in sorted(targets.items())
            if not (self.setpoints_kw.get(d) == t and self._device_follows(d, self.written_kw.get(d, t)))
        ]
        # devices answer independently: write them all at once, not one round trip after another
        written = sum(await asyncio.gather(*(self._write(d, t, now, "plan") for d, t in changed)))
        self.store.set_state("setpoints_kw", self.setpoints_kw, now)
        self.figures.written, self.figures.write_s = written, time.perf_counter() - started
        return targets

    def _device_follows(self, device: str, target: float) -> bool:
        reading = self.state.reading(device)
        return reading is not None and reading.setpoint_kw is not None and abs(reading.setpoint_kw - target) < 1e-3

    async def _write(self, device: str, requested_kw: float, now: dt.datetime, why: str) -> int:
        driver = self.devices.drivers.get(device)
        if driver is None:
            return 0
        try:
            decision = self.devices.guard.check(device, requested_kw, self.state.reading(device))
        except SetpointRefused as refused:
            self.store.record_setpoint(now, device, requested_kw, None, "refused", refused.reason)
            return 0
        self.writes_started[device] = self.writes_started.get(device, 0) + 1
        self.writes_in_flight[device] = self.writes_in_flight.get(device, 0) + 1
        try:
            ack = await driver.write(decision.allowed_kw)
        except (DeviceUnavailable, NotWritable) as error:
            self.store.record_setpoint(now, device, requested_kw, None, "failed", str(error))
            return 0
        finally:
            self.writes_in_flight[device] -= 1
        status = "clamped" if decision.clamped else why
        self.store.record_setpoint(now, device, requested_kw, ack.applied_kw, status, "; ".join(decision.reasons))
        self.setpoints_kw[device] = requested_kw
        self.written_kw[device] = decision.allowed_kw
        return 1

    async def cycle(self, replan: bool = True) -> CycleFigures:
        """One full cycle: poll, (re-plan), apply."""
        self.figures = CycleFigures(time=self.clock())
        await self.poll()
        if replan or self.plan_power_kw is None:
            await self.replan()
        await self.apply()
        return self.figures

    async def shutdown(self) -> None:
        """Leave every writable device in its safe state before the process ends."""
        now = self.clock()
        for device in sorted(self.writable):
            await self._write(device, failsafe_setpoint_kw(self.portfolio, device), now, "shutdown")
        self.store.record_event(now, "shutdown", "controller stopped; devices left at their failsafe set-points")


def _finite(value: float) -> float | None:
    """A reading's value as stored: a non-finite one (NaN, inf) is never written as a value."""
    value = float(value)
    return value if math.isfinite(value) else None
