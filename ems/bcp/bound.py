"""Upper bounds on the hours shelters can stay up, binding on energy.

Step by step from the start of the outage, for a set of shelters (one shelter alone, or all of
them together), an optimistic supply is drawn down; the bound is the number of hours until the
first step in which it cannot cover the critical load of every shelter in the set. No plan can
keep them up longer, because every energy it counts is at least what any plan can have:

* **each shelter's PV** [kW] goes to its load first; a surplus is stored in its batteries
  (x charge efficiency, up to their room) or in the fleet (x V2H efficiency, at most points x
  point charging power); a shelter outside the set serves nothing, so all its PV and its
  batteries' energy can go to the fleet;
* **each shelter's batteries**: their energy above the minimum, delivered x discharge efficiency,
  at most their discharge power;
* **the fleet**: the energy on board of every vehicle offered to the plan above what it must
  keep, its minimum plus the drives to the shelter and back (a vehicle with less brings nothing
  from home), delivered x the V2H efficiency, at most points x point power per shelter;
* **what the chargers put back**: per step, at every grid-kept charging site, at most the
  charging power of the chargers not taken by vehicles that are at a shelter in that step (a
  vehicle plugged in at a shelter cannot charge), and never more than the headroom its grid
  connection leaves (import limit + site PV - site load - taxis that stay in service), x the
  charging efficiency; the fleet holds at most its room (maximum - minimum - the drives).

Optimistic on purpose: driving takes no time, energy charged in a step can be delivered in the
same step, vehicles are shared perfectly between shelters and the ride service gives way. The
pooled stores are drawn as late as possible only through the order "PV, battery, fleet"; with no
losses between them that order never loses hours.

Worked example (tests/test_bcp_bound.py): 2 kW for 48 h, no PV or battery, one vehicle with 20 kWh
above its floor, a depot whose connection leaves 1 kW: in t hours the shelter needs 2 t kWh and
can have 20 + t kWh, so it stays up 20 h (the old bound, with the depot's chargers at full power,
said 48 h).
"""

from __future__ import annotations

from ems.bcp.problem import BcpProblem, ShelterSpec

TOLERANCE_KWH = 1e-9


def _fleet_floor_kwh(vehicle, shelters: list[ShelterSpec]) -> float:
    """Energy a vehicle keeps on board in any visit to one of ``shelters``: minimum + drives."""
    return vehicle.soc_min_kwh + min(vehicle.trip_to_kwh[s.id] + vehicle.trip_back_kwh[s.id] for s in shelters)


def hours_up_bound(problem: BcpProblem, shelter_ids: list[str]) -> float:
    """Hours from the start until the first step the shelters in ``shelter_ids`` cannot all be up.

    Shelters not in ``shelter_ids`` serve nothing but still lend their PV and batteries to the
    fleet through their V2H points (a vehicle plugged in there can charge from them).
    """
    dt_h = problem.step_h
    served = set(shelter_ids)
    fed = [s for s in problem.shelters if s.v2h_points > 0 and s.v2h_discharge_kw > 0]
    fed_ids = {s.id for s in fed}
    vehicles = list(problem.vehicles) if served & fed_ids else []
    floors = {v.id: _fleet_floor_kwh(v, fed) for v in vehicles}
    fleet_kwh = sum(max(0.0, v.initial_soc_kwh - floors[v.id]) for v in vehicles)
    fleet_room_kwh = sum(max(0.0, v.soc_max_kwh - floors[v.id]) for v in vehicles)
    batteries = {s.id: [b for b in problem.batteries if b.shelter_id == s.id] for s in problem.shelters}
    battery_kwh = {s: sum(max(0.0, b.initial_soc_kwh - b.soc_min_kwh) for b in bs) for s, bs in batteries.items()}
    battery_room_kwh = {s: sum(b.soc_max_kwh - b.soc_min_kwh for b in bs) for s, bs in batteries.items()}
    battery_kw = {s: sum(b.discharge_max_kw for b in bs) for s, bs in batteries.items()}
    eta_out = {s: min((b.discharge_efficiency for b in bs), default=1.0) for s, bs in batteries.items()}
    eta_in = {s: min((b.charge_efficiency for b in bs), default=1.0) for s, bs in batteries.items()}
    if vehicles:  # a battery at a shelter served by nobody can only go to the fleet
        for s in fed:
            if s.id not in served and s.v2h_charge_kw > 0:
                fleet_kwh += battery_kwh[s.id] * eta_out[s.id] * s.v2h_efficiency
                battery_kwh[s.id] = 0.0
    fleet_kwh = min(fleet_kwh, fleet_room_kwh)
    hours = 0.0
    for t in range(problem.steps):
        from_fleet_kwh, plugged, to_fleet_kwh = 0.0, 0.0, 0.0
        for s in problem.shelters:
            demand_kw = s.demand_kw[t] if s.id in served else 0.0
            need_kwh = max(0.0, demand_kw - s.pv_kw[t]) * dt_h
            surplus_kwh = max(0.0, s.pv_kw[t] - demand_kw) * dt_h
            from_battery = min(need_kwh, battery_kwh[s.id] * eta_out[s.id], battery_kw[s.id] * dt_h)
            battery_kwh[s.id] -= from_battery / eta_out[s.id]
            stored = min(surplus_kwh * eta_in[s.id], battery_room_kwh[s.id] - battery_kwh[s.id])
            battery_kwh[s.id] += stored
            rest = need_kwh - from_battery
            if rest > TOLERANCE_KWH:
                if s.id not in fed_ids or rest > s.v2h_points * s.v2h_discharge_kw * dt_h + TOLERANCE_KWH:
                    return hours
                from_fleet_kwh += rest / s.v2h_efficiency
                plugged += rest / (s.v2h_discharge_kw * dt_h)
            if s.id in fed_ids and vehicles:
                to_fleet_kwh += (
                    min(surplus_kwh - stored / eta_in[s.id], s.v2h_points * s.v2h_charge_kw * dt_h) * s.v2h_efficiency
                )
        free = max(0.0, len(vehicles) - plugged)  # vehicles not needed at a shelter in this step may charge
        recharge_kwh = 0.0
        for site in problem.charging_sites:
            charging = min(free, site.chargers)
            free -= charging
            recharge_kwh += min(site.headroom_kw(t), charging * site.charge_kw) * site.efficiency * dt_h
        if from_fleet_kwh > fleet_kwh + recharge_kwh + TOLERANCE_KWH:
            return hours
        fleet_kwh = min(fleet_room_kwh, fleet_kwh + recharge_kwh - from_fleet_kwh + to_fleet_kwh)
        hours += dt_h
    return hours


def upper_bound_hours(problem: BcpProblem) -> dict[str, float]:
    """Per shelter, as if it had the fleet, the chargers and every shelter's PV and batteries to itself."""
    return {s.id: hours_up_bound(problem, [s.id]) for s in problem.shelters}


def joint_upper_bound_hours(problem: BcpProblem) -> float:
    """Hours all shelters that lose the grid can stay up together (they share the fleet)."""
    return (
        hours_up_bound(problem, [s.id for s in problem.shelters])
        if problem.shelters
        else problem.steps * problem.step_h
    )
