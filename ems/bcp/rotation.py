"""A rule-based rotation: the starting point of the MILP search, and the plan of last resort.

Block by block, shelters in priority order: the shelter's battery covers what PV leaves
uncovered as far as it can; the vehicles already plugged in stay while they still hold more than
the minimum plus the drive back; when they cannot cover the rest, the fullest vehicles waiting
at a charger come (while V2H points are free); a vehicle with nothing left to give drives back
and charges, unless the shelter has PV to spare in the block: then it stays plugged in and
stores the surplus for the night (with no grid-kept charger, the shelters' PV is all the fleet
can get). Every step it takes satisfies the MILP's constraints, so fixing the MILP's placements
to it always gives a feasible plan.
"""

from __future__ import annotations

from ems.bcp.components.vehicle import rotation_blocks
from ems.bcp.problem import BcpProblem

MIN_USEFUL_KWH = 1.0  # a vehicle that can give less than this is not worth a trip


def rule_based_rotation(problem: BcpProblem) -> dict[tuple[str, str, int], int]:
    """``(vehicle, shelter, block) -> 1`` where the rule places a vehicle (absent keys: 0)."""
    dt_h = problem.step_h
    blocks = rotation_blocks(problem.steps, problem.rotation_steps)
    shelters = sorted((s for s in problem.shelters if s.v2h_points > 0), key=lambda s: s.priority)
    vehicles = {v.id: v for v in problem.vehicles}
    soc = {v.id: v.initial_soc_kwh for v in problem.vehicles}
    where: dict[str, str | None] = {v: None for v in vehicles}
    battery_kwh = {
        s.id: sum(
            max(0.0, b.initial_soc_kwh - b.soc_min_kwh) * b.discharge_efficiency
            for b in problem.batteries
            if b.shelter_id == s.id
        )
        for s in problem.shelters
    }
    battery_kw = {
        s.id: sum(b.discharge_max_kw for b in problem.batteries if b.shelter_id == s.id) for s in problem.shelters
    }
    chargers = sum(c.chargers for c in problem.charging_sites)
    charge_kw = min((c.charge_kw for c in problem.charging_sites), default=0.0)
    charge_efficiency = min((c.efficiency for c in problem.charging_sites), default=1.0)
    uncovered = {
        s.id: [sum(max(0.0, s.demand_kw[t] - s.pv_kw[t]) for t in block) * dt_h for block in blocks] for s in shelters
    }
    surplus_kwh = {
        s.id: [max(0.0, float(s.pv_kw[t] - s.demand_kw[t])) * dt_h for t in range(problem.steps)] for s in shelters
    }
    surplus = {
        s.id: [sum(min(surplus_kwh[s.id][t], s.v2h_points * s.v2h_charge_kw * dt_h) for t in block) for block in blocks]
        for s in shelters
    }
    placed: dict[tuple[str, str, int], int] = {}
    for k, block in enumerate(blocks):
        hours = len(block) * dt_h
        moved: dict[str, str] = {}  # vehicle -> "arrived" or "left" in this block
        for shelter in shelters:
            need = uncovered[shelter.id][k]
            from_battery = min(need, battery_kwh[shelter.id], battery_kw[shelter.id] * hours)
            battery_kwh[shelter.id] -= from_battery
            rest = min(
                need - from_battery,
                _spare_for(shelter, k, shelters, uncovered, surplus, battery_kwh, soc, vehicles, problem, blocks),
            )
            to_store = {
                t: surplus_kwh[shelter.id][t] for t in block
            }  # PV the vehicles plugged in here may take, per step
            eff = shelter.v2h_efficiency

            def can_give(v: str, arriving: bool) -> float:
                spec = vehicles[v]
                trip = spec.trip_to_kwh[shelter.id] if arriving else 0.0
                floor = spec.soc_min_kwh + spec.trip_back_kwh[shelter.id]
                plugged_h = hours - (spec.trip_to_h[shelter.id] if arriving else 0.0)
                return max(0.0, min((soc[v] - trip - floor) * eff, shelter.v2h_discharge_kw * plugged_h))

            def can_store(v: str) -> bool:
                return surplus[shelter.id][k] >= MIN_USEFUL_KWH and soc[v] + MIN_USEFUL_KWH < vehicles[v].soc_max_kwh

            present = [v for v in vehicles if where[v] == shelter.id]
            for v in list(present):
                if (rest <= 0 or can_give(v, False) < MIN_USEFUL_KWH) and not can_store(v):
                    present.remove(v)
                    where[v], moved[v] = None, "left"
                    soc[v] -= vehicles[v].trip_back_kwh[shelter.id]
            waiting = sorted((v for v in vehicles if where[v] is None and v not in moved), key=lambda v: -soc[v])
            # points full and short of energy: swap the emptiest plugged vehicle for a fuller one
            short = sum(can_give(p, False) for p in present) < rest
            if short and len(present) >= shelter.v2h_points and waiting:
                weakest = min(present, key=lambda p: can_give(p, False))
                if can_give(waiting[0], True) > can_give(weakest, False) + MIN_USEFUL_KWH:
                    present.remove(weakest)
                    where[weakest], moved[weakest] = None, "left"
                    soc[weakest] -= vehicles[weakest].trip_back_kwh[shelter.id]
            for v in waiting:
                if (
                    sum(can_give(p, moved.get(p) == "arrived") for p in present) >= rest
                    or len(present) >= shelter.v2h_points
                ):
                    break
                if can_give(v, True) >= MIN_USEFUL_KWH:
                    present.append(v)
                    where[v], moved[v] = shelter.id, "arrived"
                    soc[v] -= vehicles[v].trip_to_kwh[shelter.id]
            for v in present:
                given = min(can_give(v, False), rest)
                if moved.get(v) == "arrived":  # its trip energy is already paid; only the plugged time is shorter
                    given = min(given, shelter.v2h_discharge_kw * (hours - vehicles[v].trip_to_h[shelter.id]))
                soc[v] -= given / eff
                rest -= given
                placed[(v, shelter.id, k)] = 1
                if moved.get(v) != "arrived":  # an arriving vehicle is counted as storing nothing (safe side)
                    for t in block:
                        stored = min(
                            to_store[t], shelter.v2h_charge_kw * dt_h, (vehicles[v].soc_max_kwh - soc[v]) / eff
                        )
                        if stored > 0:
                            soc[v] += stored * eff
                            to_store[t] -= stored
        at_charger = sorted((v for v in vehicles if where[v] is None), key=lambda v: soc[v])[:chargers]
        budget_kwh = (
            sum(c.headroom_kw(t) for c in problem.charging_sites for t in block) * dt_h
        )  # the import limit, grid side
        for v in at_charger:
            share = 1.0
            if moved.get(v) == "left":
                share -= max(vehicles[v].trip_back_h.values()) / hours
            drawn = min(
                charge_kw * hours * max(0.0, share), budget_kwh, (vehicles[v].soc_max_kwh - soc[v]) / charge_efficiency
            )
            budget_kwh -= max(0.0, drawn)
            soc[v] += max(0.0, drawn) * charge_efficiency
    return placed


def _spare_for(shelter, k, shelters, uncovered, surplus, battery_kwh, soc, vehicles, problem, blocks) -> float:
    """Fleet energy a shelter may take in block k without starving shelters of higher priority
    later: what the fleet holds and can still charge (at chargers and from the shelters' PV),
    less their remaining uncovered need."""
    higher = [s for s in shelters if s.priority < shelter.priority]
    if not higher:
        return float("inf")
    recharge = (
        sum(c.headroom_kw(t) * c.efficiency for c in problem.charging_sites for block in blocks[k:] for t in block)
        * problem.step_h
    )
    from_pv = sum(sum(surplus[s.id][k:]) * s.v2h_efficiency for s in shelters)
    fleet = sum(max(0.0, soc[v] - spec.soc_min_kwh) for v, spec in vehicles.items()) + recharge + from_pv
    owed = sum(max(0.0, sum(uncovered[s.id][k:]) - battery_kwh[s.id]) for s in higher)
    return max(0.0, fleet - owed)
