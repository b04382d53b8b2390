"""Vehicles as mobile batteries: where each one is in each rotation block, what it delivers,
and the drives between. A block is ``rotation_steps`` steps (default 4 h): a vehicle's place
is decided per block, the fleet's power at a shelter per step.

Per vehicle v, shelter s (only shelters with V2H points), grid-kept charging site c, block k
of length H_k hours:

    at[v,s,k] in {0,1}: plugged into a V2H point of s for the block
    arrive[v,s,k] >= at[v,s,k] - at[v,s,k-1],  arrive <= at           (``vehicle_arrive``; at[v,s,-1] = 0)
    leave[v,s,k]  >= at[v,s,k-1] - at[v,s,k],  leave <= at[v,s,k-1]   (``vehicle_leave``)
    charging[v,c,k] in [0,1]: share of the block spent charging at c

Time [h] (trips happen at the start of a block):

    H_k * (sum_s at + sum_c charging) + sum_s trip_back_h[v,s] * leave[v,s,k] <= H_k   (``vehicle_one_place``)
    delivered_kwh[v,s,k] <= v2h_discharge_kw[s] * (H_k * at - trip_to_h[v,s] * arrive)  (``vehicle_v2h_discharge``)
    shelter_charge_kwh[v,s,k] <= v2h_charge_kw[s] * (H_k * at - trip_to_h * arrive)     (``vehicle_v2h_charge``)
    grid_charge_kwh[v,c,k] <= charge_kw[c] * H_k * charging[v,c,k]                      (``vehicle_grid_charge``)

Shared capacity:

    sum_v at[v,s,k] <= v2h_points[s]                 (``shelter_v2h_points``)
    sum_v charging[v,c,k] <= chargers[c]             (``charging_site_capacity``)

Energy [kWh], at block boundaries:

    driven[v,k] = sum_s (trip_to_kwh[v,s] * arrive[v,s,k] + trip_back_kwh[v,s] * leave[v,s,k])
    soc[v,k+1] = soc[v,k] + eff_c * sum_c grid_charge + eff_s * sum_s shelter_charge
                 - sum_s delivered / eff_s - driven[v,k]                             (``vehicle_soc_balance``)
    soc[v,k] - driven[v,k] - delivered[v,s,k] / eff_s
        >= lowest + (soc_min_kwh + trip_back_kwh[v,s] - lowest) * at[v,s,k]
        (``vehicle_drive_back_reserve``: all discharge counted before any recharge in the block,
         so at no moment does a vehicle at a shelter hold less than its minimum plus the drive
         back; lowest = min(soc_min_kwh, initial energy) for a vehicle that starts below it)
    called[v] >= at[v,s,k]                                                           (``vehicle_called_if_used``)

The ride service. A vehicle not called (called[v] = 0) drives its duties and charges only while
off duty; a called one leaves the service for the whole outage and may charge at any time:

    0 <= service_kwh[v,k] <= duty_kwh[v,k] * (1 - called[v])                 (``vehicle_service_if_not_called``)
    charging[v,c,k] <= parked[v,k] + (1 - parked[v,k]) * called[v]          (``vehicle_charge_when_parked``)

duty_kwh[v,k]: energy its duties drive in block k; parked[v,k]: share of block k it is off duty.
service_kwh is taken from soc in ``vehicle_soc_balance`` and valued at ``service_weight_kwh``
per kWh (0.1: a kWh of critical load at the lowest priority is worth ten of ride service), so
the service runs on what the shelters do not need.

The grid-kept charging site's import limit: all its chargers together draw no more than the
headroom its grid connection leaves (import limit + its PV - its load - charging by taxis that
stay in service and cannot discharge):

    sum_v grid_charge_kwh[v,c,k] <= sum_{t in k} headroom_kw[c,t] * dt      (``charging_site_import``)

Terminal value: ``terminal_weight_kwh`` x soc[v,K] (energy on board at the outage's end).

The fleet's power into shelter s in step t (in block k):

    fleet_discharge_kw[s,t] <= v2h_discharge_kw[s] * sum_v at[v,s,k]    (bound via ``fleet_discharge_points``)
    sum_{t in k} fleet_discharge_kw[s,t] * dt = sum_v delivered_kwh[v,s,k]   (``fleet_discharge_block``)
    (the same for fleet_charge_kw and shelter_charge_kwh: ``fleet_charge_points``, ``fleet_charge_block``)
    fleet_discharge_kw - fleet_charge_kw enters shelter s's bus.

Costs (kWh-equivalent, small): per vehicle called away from the ride service, per kWh driven,
per vehicle-hour at a shelter.
"""

from __future__ import annotations

import pyomo.environ as pyo

from ems.bcp.build import BcpBuild
from ems.bcp.problem import BcpProblemError


def lowest_kwh(spec) -> float:
    """Lowest energy a vehicle may hold: its minimum, or less if it starts below it."""
    return min(spec.soc_min_kwh, spec.initial_soc_kwh)


def rotation_blocks(steps: int, per_block: int) -> list[list[int]]:
    return [list(range(k, min(k + per_block, steps))) for k in range(0, steps, per_block)]


def add_vehicle_constraints(build: BcpBuild) -> None:
    m, problem, dt_h = build.model, build.problem, build.step_h
    vehicles = {v.id: v for v in problem.vehicles}
    shelters = {s.id: s for s in problem.shelters if s.v2h_points > 0}  # no V2H point: never a vehicle
    sites = {c.site: c for c in problem.charging_sites}
    blocks = rotation_blocks(problem.steps, problem.rotation_steps)
    hours = [len(b) * dt_h for b in blocks]
    K = range(len(blocks))
    for v, spec in vehicles.items():
        for s in shelters:
            if spec.trip_to_h[s] > min(hours) or spec.trip_back_h[s] > min(hours):
                raise BcpProblemError(
                    f"vehicle {v}: the drive to or from shelter {s} takes longer than a rotation block"
                )
    vsk = [(v, s, k) for v in vehicles for s in shelters for k in K]
    vck = [(v, c, k) for v in vehicles for c in sites for k in K]
    vk = [(v, k) for v in vehicles for k in K]

    m.vehicle_at = pyo.Var(vsk, domain=pyo.Binary)
    m.vehicle_arrives = pyo.Var(vsk, bounds=(0.0, 1.0))
    m.vehicle_leaves = pyo.Var(vsk, bounds=(0.0, 1.0))
    m.vehicle_charging = pyo.Var(vck, bounds=(0.0, 1.0))
    m.vehicle_delivered_kwh = pyo.Var(vsk, bounds=(0.0, None))
    m.vehicle_shelter_charge_kwh = pyo.Var(vsk, bounds=(0.0, None))
    m.vehicle_grid_charge_kwh = pyo.Var(vck, bounds=(0.0, None))
    m.vehicle_called = pyo.Var(list(vehicles), bounds=(0.0, 1.0))
    duty_kwh = {(v, k): spec.service_kwh_in(blocks[k]) for v, spec in vehicles.items() for k in K}
    parked = {(v, k): spec.parked_share_in(blocks[k]) for v, spec in vehicles.items() for k in K}
    m.vehicle_service_kwh = pyo.Var(vk, bounds=lambda _m, v, k: (0.0, duty_kwh[v, k]))

    def soc_bounds(_m, v, k):
        spec = vehicles[v]
        return (min(spec.soc_min_kwh, spec.initial_soc_kwh), max(spec.soc_max_kwh, spec.initial_soc_kwh))

    m.vehicle_soc_kwh = pyo.Var([(v, k) for v in vehicles for k in range(len(blocks) + 1)], bounds=soc_bounds)
    for v, spec in vehicles.items():
        m.vehicle_soc_kwh[v, 0].fix(spec.initial_soc_kwh)

    def before(v, s, k):
        return m.vehicle_at[v, s, k - 1] if k > 0 else 0.0

    m.vehicle_arrive = pyo.Constraint(
        vsk,
        [0, 1],
        rule=lambda _m, v, s, k, i: (
            _m.vehicle_arrives[v, s, k] >= _m.vehicle_at[v, s, k] - before(v, s, k)
            if i == 0
            else _m.vehicle_arrives[v, s, k] <= _m.vehicle_at[v, s, k]
        ),
    )
    m.vehicle_leave = pyo.Constraint(
        vsk,
        [0, 1],
        rule=lambda _m, v, s, k, i: (
            _m.vehicle_leaves[v, s, k] >= before(v, s, k) - _m.vehicle_at[v, s, k]
            if i == 0
            else _m.vehicle_leaves[v, s, k] <= before(v, s, k)
        ),
    )
    m.vehicle_one_place = pyo.Constraint(
        vk,
        rule=lambda _m, v, k: (
            hours[k]
            * (
                pyo.quicksum(_m.vehicle_at[v, s, k] for s in shelters)
                + pyo.quicksum(_m.vehicle_charging[v, c, k] for c in sites)
            )
            + pyo.quicksum(vehicles[v].trip_back_h[s] * _m.vehicle_leaves[v, s, k] for s in shelters)
            <= hours[k]
        ),
    )

    def plugged_h(_m, v, s, k):
        return hours[k] * _m.vehicle_at[v, s, k] - vehicles[v].trip_to_h[s] * _m.vehicle_arrives[v, s, k]

    m.vehicle_v2h_discharge = pyo.Constraint(
        vsk,
        rule=lambda _m, v, s, k: (
            _m.vehicle_delivered_kwh[v, s, k] <= shelters[s].v2h_discharge_kw * plugged_h(_m, v, s, k)
        ),
    )
    m.vehicle_v2h_charge = pyo.Constraint(
        vsk,
        rule=lambda _m, v, s, k: (
            _m.vehicle_shelter_charge_kwh[v, s, k] <= shelters[s].v2h_charge_kw * plugged_h(_m, v, s, k)
        ),
    )
    m.vehicle_grid_charge = pyo.Constraint(
        vck,
        rule=lambda _m, v, c, k: (
            _m.vehicle_grid_charge_kwh[v, c, k] <= sites[c].charge_kw * hours[k] * _m.vehicle_charging[v, c, k]
        ),
    )
    m.shelter_v2h_points = pyo.Constraint(
        [(s, k) for s in shelters for k in K if vehicles],
        rule=lambda _m, s, k: pyo.quicksum(_m.vehicle_at[v, s, k] for v in vehicles) <= shelters[s].v2h_points,
    )
    m.charging_site_capacity = pyo.Constraint(
        [(c, k) for c in sites for k in K if vehicles],
        rule=lambda _m, c, k: pyo.quicksum(_m.vehicle_charging[v, c, k] for v in vehicles) <= sites[c].chargers,
    )

    def driven(_m, v, k):
        spec = vehicles[v]
        return pyo.quicksum(
            spec.trip_to_kwh[s] * _m.vehicle_arrives[v, s, k] + spec.trip_back_kwh[s] * _m.vehicle_leaves[v, s, k]
            for s in shelters
        )

    def soc_balance(_m, v, k):
        charged = pyo.quicksum(sites[c].efficiency * _m.vehicle_grid_charge_kwh[v, c, k] for c in sites) + pyo.quicksum(
            shelters[s].v2h_efficiency * _m.vehicle_shelter_charge_kwh[v, s, k] for s in shelters
        )
        delivered = pyo.quicksum(_m.vehicle_delivered_kwh[v, s, k] / shelters[s].v2h_efficiency for s in shelters)
        return (
            _m.vehicle_soc_kwh[v, k + 1]
            == _m.vehicle_soc_kwh[v, k] + charged - delivered - driven(_m, v, k) - _m.vehicle_service_kwh[v, k]
        )

    m.vehicle_soc_balance = pyo.Constraint(vk, rule=soc_balance)
    m.vehicle_drive_back_reserve = pyo.Constraint(
        vsk,
        rule=lambda _m, v, s, k: (
            _m.vehicle_soc_kwh[v, k] - driven(_m, v, k) - _m.vehicle_delivered_kwh[v, s, k] / shelters[s].v2h_efficiency
            >= lowest_kwh(vehicles[v])
            + (vehicles[v].soc_min_kwh + vehicles[v].trip_back_kwh[s] - lowest_kwh(vehicles[v]))
            * _m.vehicle_at[v, s, k]
        ),
    )
    m.vehicle_called_if_used = pyo.Constraint(
        vsk, rule=lambda _m, v, s, k: _m.vehicle_called[v] >= _m.vehicle_at[v, s, k]
    )
    m.vehicle_service_if_not_called = pyo.Constraint(
        vk, rule=lambda _m, v, k: _m.vehicle_service_kwh[v, k] <= duty_kwh[v, k] * (1 - _m.vehicle_called[v])
    )
    m.vehicle_charge_when_parked = pyo.Constraint(
        vck,
        rule=lambda _m, v, c, k: (
            _m.vehicle_charging[v, c, k] <= parked[v, k] + (1 - parked[v, k]) * _m.vehicle_called[v]
        ),
    )
    add_charging_site_import(build, blocks)

    add_fleet_power(build, shelters, blocks)
    weights = problem.settings
    for v, spec in vehicles.items():
        build.value("vehicle_call_cost", -weights.vehicle_call_weight_kwh, m.vehicle_called[v])
        for s in shelters:
            for k in K:
                build.value("drive_cost", -weights.drive_weight_kwh * spec.trip_to_kwh[s], m.vehicle_arrives[v, s, k])
                build.value("drive_cost", -weights.drive_weight_kwh * spec.trip_back_kwh[s], m.vehicle_leaves[v, s, k])
                build.value("dwell_cost", -weights.dwell_weight_kwh * hours[k], m.vehicle_at[v, s, k])
        for k in K:
            build.value("service_value", weights.service_weight_kwh, m.vehicle_service_kwh[v, k])
        build.value("terminal_value", weights.terminal_weight_kwh, m.vehicle_soc_kwh[v, len(blocks)])


def add_charging_site_import(build: BcpBuild, blocks: list[list[int]]) -> None:
    """The chargers of a grid-kept site draw no more than its connection's headroom, per block [kWh]."""
    m, dt_h = build.model, build.step_h
    vehicles = [v.id for v in build.problem.vehicles]
    sites = {c.site: c for c in build.problem.charging_sites if c.import_headroom_kw is not None}
    index = [(c, k) for c in sites for k in range(len(blocks)) if vehicles]
    m.charging_site_import = pyo.Constraint(
        index,
        rule=lambda _m, c, k: (
            pyo.quicksum(_m.vehicle_grid_charge_kwh[v, c, k] for v in vehicles)
            <= sum(sites[c].headroom_kw(t) for t in blocks[k]) * dt_h
        ),
    )


def add_fleet_power(build: BcpBuild, shelters: dict, blocks: list[list[int]]) -> None:
    """Per step, the fleet's power into and out of each shelter's bus, matching the block energies."""
    m, dt_h = build.model, build.step_h
    vehicles = [v.id for v in build.problem.vehicles]
    block_of = {t: k for k, block in enumerate(blocks) for t in block}
    st = [(s, t) for s in shelters for t in build.steps]
    sk = [(s, k) for s in shelters for k in range(len(blocks))]
    m.fleet_discharge_kw = pyo.Var(
        st, bounds=lambda _m, s, t: (0.0, shelters[s].v2h_points * shelters[s].v2h_discharge_kw)
    )
    m.fleet_charge_kw = pyo.Var(st, bounds=lambda _m, s, t: (0.0, shelters[s].v2h_points * shelters[s].v2h_charge_kw))
    present = lambda _m, s, t: pyo.quicksum(_m.vehicle_at[v, s, block_of[t]] for v in vehicles)  # noqa: E731
    m.fleet_discharge_points = pyo.Constraint(
        st, rule=lambda _m, s, t: _m.fleet_discharge_kw[s, t] <= shelters[s].v2h_discharge_kw * present(_m, s, t)
    )
    m.fleet_charge_points = pyo.Constraint(
        st, rule=lambda _m, s, t: _m.fleet_charge_kw[s, t] <= shelters[s].v2h_charge_kw * present(_m, s, t)
    )
    m.fleet_discharge_block = pyo.Constraint(
        sk,
        rule=lambda _m, s, k: (
            pyo.quicksum(_m.fleet_discharge_kw[s, t] * dt_h for t in blocks[k])
            == pyo.quicksum(_m.vehicle_delivered_kwh[v, s, k] for v in vehicles)
        ),
    )
    m.fleet_charge_block = pyo.Constraint(
        sk,
        rule=lambda _m, s, k: (
            pyo.quicksum(_m.fleet_charge_kw[s, t] * dt_h for t in blocks[k])
            == pyo.quicksum(_m.vehicle_shelter_charge_kwh[v, s, k] for v in vehicles)
        ),
    )
    for s, t in st:
        build.into_bus(s, t, 1.0, m.fleet_discharge_kw[s, t])
        build.into_bus(s, t, -1.0, m.fleet_charge_kw[s, t])
