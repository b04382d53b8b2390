"""The BCP plan: per shelter and step what is served and from where, per vehicle where it is
and what it holds, the visits it makes, and the figures of the drill report (docs/bcp.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from ems.bcp.problem import BcpProblem
from ems.fleet import ChargeCall, Reservation, ShelterCall

RECHARGE_FIRST_KWH = 0.01  # a plan that adds less than this before a vehicle leaves asks for no charge call


@dataclass(frozen=True)
class Visit:
    """One stay of a vehicle at a shelter's V2H point."""

    vehicle_id: str
    shelter_id: str
    arrive: pd.Timestamp
    leave: pd.Timestamp  # end of the last step there
    delivered_kwh: float  # into the shelter's bus
    lowest_soc_kwh: float  # lowest planned energy on board while there
    drive_back_floor_kwh: float  # minimum + energy to drive back to a charger


@dataclass
class BcpPlan:
    problem: BcpProblem
    status: str  # optimal, time_limit
    mip_gap: float | None
    build_s: float
    solve_s: float
    objective: float
    demand_kw: pd.DataFrame  # time x shelter
    served_kw: pd.DataFrame
    pv_kw: pd.DataFrame  # PV used at the shelter
    battery_kw: pd.DataFrame  # stationary batteries, net into the shelter bus
    vehicle_kw: pd.DataFrame  # vehicles, net into the shelter bus
    up: pd.DataFrame  # bool: fully served and up since the start
    vehicle_location: pd.DataFrame  # time x vehicle: shelter id, "at charger" or "" (ride service or driving)
    vehicle_soc_kwh: pd.DataFrame  # step boundaries x vehicle
    battery_soc_kwh: pd.DataFrame  # step boundaries x battery
    vehicle_delivered_kwh: dict[str, float]
    vehicle_km: dict[str, float]
    visits: tuple[Visit, ...]
    upper_bound_hours: dict[str, float]
    objective_terms: dict[str, float] = field(default_factory=dict)
    joint_upper_bound_hours: float | None = None  # all shelters that lose the grid, up together
    vehicle_charge_site: pd.DataFrame | None = None  # block starts x vehicle: site it charges at, or ""
    grid_charge_kwh: pd.DataFrame | None = None  # block starts x charging site: energy drawn by its chargers
    service_kwh: dict[str, float] = field(default_factory=dict)  # vehicle -> energy driven in the ride service

    @property
    def step_h(self) -> float:
        return self.problem.step_h

    @property
    def duration_h(self) -> float:
        return self.problem.steps * self.problem.step_h

    def shelter_hours(self) -> dict[str, float]:
        """Hours each shelter stays fully up from the start (shelters that keep the grid: all)."""
        hours = {s: float(self.up[s].sum() * self.step_h) for s in self.up.columns}
        hours |= {s: self.duration_h for s in self.problem.sheltered_with_grid}
        return hours

    def vehicles_assigned(self) -> list[str]:
        return sorted({v.vehicle_id for v in self.visits})

    def delivered_per_usable_battery(self) -> dict[str, float]:
        """Energy each called vehicle delivers to shelters / its usable battery (max - min)."""
        specs = {v.id: v for v in self.problem.vehicles}
        return {
            v: self.vehicle_delivered_kwh[v] / (specs[v].soc_max_kwh - specs[v].soc_min_kwh)
            for v in self.vehicles_assigned()
        }

    def reservation(self, issued: pd.Timestamp) -> Reservation:
        """What the energy manager would publish on ``ems/reservations`` for this plan: each
        visit as a shelter call from its arrival; for each called vehicle the energy it must keep,
        never more than it holds at the start of the plan; and where the plan charges it before
        it first leaves for a shelter, a charge call (site, from, until, energy to hold)."""
        calls = tuple(
            ShelterCall(vehicle_id=v.vehicle_id, shelter_id=v.shelter_id, from_time=v.arrive.to_pydatetime())
            for v in self.visits
        )
        keep, charges = {}, []
        for visit in self.visits:
            vehicle = visit.vehicle_id
            if vehicle in keep:
                continue
            on_board_kwh = float(self.vehicle_soc_kwh[vehicle].iloc[0])
            leave_kwh = float(self.vehicle_soc_kwh[vehicle].asof(visit.arrive))
            keep[vehicle] = (
                math.floor(min(on_board_kwh, leave_kwh) * 100) / 100
            )  # rounded down: never above what it has
            if leave_kwh > on_board_kwh + RECHARGE_FIRST_KWH:
                charges += self._charge_call(vehicle, visit.arrive, leave_kwh)
        return Reservation(
            issued=issued.to_pydatetime(), keep_energy_kwh=keep, shelter_calls=calls, charge_calls=tuple(charges)
        )

    def _charge_call(self, vehicle: str, leave: pd.Timestamp, target_kwh: float) -> list[ChargeCall]:
        """The charging the plan does before ``leave``: at the site of most of it, from its first block."""
        if self.vehicle_charge_site is None:
            return []
        sites = self.vehicle_charge_site[vehicle]
        before = sites[(sites.index < leave) & (sites != "")]
        if before.empty:
            return []
        return [
            ChargeCall(
                vehicle_id=vehicle,
                site_id=str(before.value_counts().idxmax()),
                from_time=before.index[0].to_pydatetime(),
                until_time=leave.to_pydatetime(),
                target_kwh=math.floor(target_kwh * 100) / 100,
            )
        ]

    def bound_shares(self) -> dict[str, float]:
        """Hours up / upper bound per shelter (1.0 where the bound is 0 h)."""
        hours, bound = self.shelter_hours(), self.all_upper_bound_hours()
        return {s: round(hours[s] / bound[s], 4) if bound[s] > 0 else 1.0 for s in hours}

    def all_upper_bound_hours(self) -> dict[str, float]:
        return self.upper_bound_hours | {s: self.duration_h for s in self.problem.sheltered_with_grid}

    def hours_all_up(self) -> float:
        """Hours every shelter that loses the grid is up, from the start."""
        hours = [h for s, h in self.shelter_hours().items() if s not in self.problem.sheltered_with_grid]
        return min(hours, default=self.duration_h)

    def summary(self) -> dict:
        demand_kwh = float(self.demand_kw.to_numpy().sum() * self.step_h)
        served_kwh = float(self.served_kw.to_numpy().sum() * self.step_h)
        assigned = self.vehicles_assigned()
        return {
            "start": self.problem.start.isoformat(),
            "duration_hours": self.duration_h,
            "step_minutes": self.problem.step_minutes,
            "shelter_names": {s.id: s.name for s in self.problem.shelters},
            "shelter_hours": self.shelter_hours(),
            "upper_bound_hours": self.all_upper_bound_hours(),
            "hours_share_of_bound": self.bound_shares(),
            "hours_all_up": self.hours_all_up(),
            "joint_upper_bound_hours": self.joint_upper_bound_hours
            if self.joint_upper_bound_hours is not None
            else self.duration_h,
            "critical_energy_demand_kwh": round(demand_kwh, 3),
            "critical_energy_served_kwh": round(served_kwh, 3),
            "served_share": round(served_kwh / demand_kwh, 4) if demand_kwh > 0 else 1.0,
            "served_kwh_by_shelter": {
                s: round(float(self.served_kw[s].sum() * self.step_h), 3) for s in self.served_kw.columns
            },
            "vehicles_assigned": assigned,
            "vehicles_in_ride_service": sorted(set(self.vehicle_soc_kwh.columns) - set(assigned))
            + sorted(self.problem.excluded_vehicles),
            "vehicles_excluded": dict(self.problem.excluded_vehicles),
            "vehicle_km": round(sum(self.vehicle_km.values()), 2),
            "vehicle_km_by_vehicle": {v: round(km, 2) for v, km in self.vehicle_km.items() if km > 0},
            "vehicle_delivered_kwh": {v: round(self.vehicle_delivered_kwh[v], 2) for v in assigned},
            "vehicle_delivered_per_usable_battery": {
                v: round(x, 3) for v, x in self.delivered_per_usable_battery().items()
            },
            "battery_delivered_kwh": {
                s: round(float(self.battery_kw[s].clip(lower=0).sum() * self.step_h), 2)
                for s in self.battery_kw.columns
            },
            "ride_service_kwh": round(sum(self.service_kwh.values()), 2),
            "ride_service_duty_kwh": round(
                sum(v.service_kwh_in(list(range(self.problem.steps))) for v in self.problem.vehicles), 2
            ),
            "recharged_kwh_by_site": (
                {c: round(float(self.grid_charge_kwh[c].sum()), 2) for c in self.grid_charge_kwh.columns}
                if self.grid_charge_kwh is not None
                else {}
            ),
            "pv_used_kwh": {s: round(float(self.pv_kw[s].sum() * self.step_h), 2) for s in self.pv_kw.columns},
            "visits": [
                {
                    "vehicle": v.vehicle_id,
                    "shelter": v.shelter_id,
                    "arrive": v.arrive.isoformat(),
                    "leave": v.leave.isoformat(),
                    "delivered_kwh": round(v.delivered_kwh, 2),
                    "lowest_soc_kwh": round(v.lowest_soc_kwh, 2),
                    "drive_back_floor_kwh": round(v.drive_back_floor_kwh, 2),
                }
                for v in self.visits
            ],
            "solver_status": self.status,
            "mip_gap": self.mip_gap,
            "build_s": round(self.build_s, 3),
            "solve_s": round(self.solve_s, 3),
        }
