"""An optimistic bound on the hours each shelter can stay up.

For shelter s, step by step from the start of the outage, as if s had for itself alone:
its own batteries (usable energy above their minimum, at full efficiency and power), its PV
(surplus stored in its batteries, the rest in the fleet), and the whole fleet's usable energy above the vehicles'
minimum, delivered with no travel and no losses but no faster than its V2H points allow
(points x point power), with the fleet topped up at the grid-kept chargers at their full
power while they keep the grid. It is up in a step when that covers the demand; the bound is
the number of hours until the first step it cannot. No plan can keep it up longer.
"""

from __future__ import annotations

from ems.bcp.problem import BcpProblem


def upper_bound_hours(problem: BcpProblem) -> dict[str, float]:
    dt_h = problem.step_h
    fleet_room_kwh = sum(max(0.0, v.soc_max_kwh - v.soc_min_kwh) for v in problem.vehicles)
    fleet_start_kwh = sum(max(0.0, v.initial_soc_kwh - v.soc_min_kwh) for v in problem.vehicles)
    recharge_kw = sum(c.chargers * c.charge_kw for c in problem.charging_sites) if problem.vehicles else 0.0
    bounds = {}
    for shelter in problem.shelters:
        batteries = [b for b in problem.batteries if b.shelter_id == shelter.id]
        battery_kwh = sum(max(0.0, b.initial_soc_kwh - b.soc_min_kwh) for b in batteries)
        battery_room_kwh = sum(b.soc_max_kwh - b.soc_min_kwh for b in batteries)
        battery_kw = sum(b.discharge_max_kw for b in batteries)
        v2h_kw = shelter.v2h_points * shelter.v2h_discharge_kw if problem.vehicles else 0.0
        fleet_kwh = fleet_start_kwh if v2h_kw > 0 else 0.0
        hours = 0.0
        for t in range(problem.steps):
            need_kwh = max(0.0, shelter.demand_kw[t] - shelter.pv_kw[t]) * dt_h
            surplus_kwh = max(0.0, shelter.pv_kw[t] - shelter.demand_kw[t]) * dt_h
            from_battery = min(need_kwh, battery_kwh, battery_kw * dt_h)
            from_fleet = min(need_kwh - from_battery, fleet_kwh, v2h_kw * dt_h)
            if from_battery + from_fleet < need_kwh - 1e-9:
                break
            stored_kwh = min(surplus_kwh, battery_room_kwh - (battery_kwh - from_battery))
            battery_kwh = battery_kwh - from_battery + stored_kwh
            if v2h_kw > 0:  # vehicles at the shelter may also soak up the rest of the PV surplus
                fleet_kwh = min(fleet_room_kwh, fleet_kwh - from_fleet + recharge_kw * dt_h + surplus_kwh - stored_kwh)
            hours += dt_h
        bounds[shelter.id] = hours
    return bounds
