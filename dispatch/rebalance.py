"""Rebalancing as a small transport problem on forecast demand (``rebalance_method = "transport"``).

Each call places the idle vehicles that may move so that the requests forecast over the next
``rebalance_window_s`` are met from as near as possible, counting the km of every move. It is a
capacitated facility-location problem; its LP relaxation is solved on HiGHS:

- sites: the forecast hotspots; every movable vehicle may also stay where it is (or keep
  driving to the hotspot it is heading to);
- coverers that do not move: vehicles idle too briefly to move, and vehicles on a trip that
  will be free within the window, at their last stop (their share of the window only);
- demand: ``d_k`` requests expected at hotspot ``k`` in the window; each coverer takes at most
  ``vehicle_rides_per_h`` x its hours of the window of it, and what no coverer takes is met
  from afar (the mean distance to it from where the movable vehicles stand now);
- price: a pickup km is priced as the batch assignment prices it, one km driven plus
  ``wait_weight`` km-equivalents of the rider's wait (``1 + wait_weight``), and a km of moving
  costs one km; so a move is made only when the pickup km it saves pays for its own km.

A move the vehicle could not come back from (reach the charger nearest its target with its
floor kept, ``dispatch.fleet.can_come_back``) is not offered to the solver.

    minimise  sum_ij move_km_ij x_ij + (1 + w) sum_ck d_k km_ck a_ck + (1 + w) sum_k d_k far_km o_k
    s.t.      sum_j x_ij = 1                         every movable vehicle i (stay is a site)
              sum_c a_ck + o_k = 1                   every hotspot k
              sum_k d_k a_jk <= cap_j sum_i x_ij     every site j (a site serves only if taken)
              sum_k d_k a_fk <= cap_f                every fixed coverer f
              x, a, o in [0, 1]   (the LP relaxation; each vehicle goes where most of it is)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import highspy
import numpy as np

from dispatch.model import Point, Stop, StopKind

ARRIVED_KM = 0.3  # a target this close to where the vehicle is means staying
MAX_HOTSPOTS = 40  # the hotspots with most demand; the rest are met from afar
SOLVE_TIME_LIMIT_S = 0.5


@dataclass(frozen=True)
class Mover:
    """An idle vehicle the rebalancer may move."""

    vehicle_id: str
    position: Point
    anchor: Point  # where it covers if it does not change course (its position, or its target)
    can_reach: Callable[[Point], bool]  # the energy check of a move to this point


@dataclass(frozen=True)
class Coverer:
    """A vehicle that covers demand where it is (or will be) but is not moved now."""

    point: Point
    hours: float  # of the window it will be there, free


def transport_moves(
    movers: Sequence[Mover],
    coverers: Sequence[Coverer],
    hotspots: Sequence[tuple[Point, float]],
    requests_expected: float,
    window_h: float,
    rides_per_vehicle_h: float,
    wait_weight: float,
    leg_km: Callable[[Point, Point], float],
) -> dict[str, Stop]:
    """Rebalancing moves: vehicle id -> a ``REBALANCE`` stop (vehicles left out stay or keep going)."""
    hotspots = [h for h in sorted(hotspots, key=lambda h: -h[1]) if h[1] > 0][:MAX_HOTSPOTS]
    if not movers or not hotspots or requests_expected <= 0:
        return {}
    points = [p for p, _ in hotspots]
    weights = np.array([w for _, w in hotspots])
    demand = requests_expected * weights / weights.sum()
    # demand no coverer takes is met by a vehicle from where the idle ones stand now, on average
    far_km = np.array([np.mean([leg_km(m.position, p) for m in movers]) for p in points])
    pickup_price = 1.0 + wait_weight
    capacity_one = rides_per_vehicle_h * window_h

    # sites: the hotspots, then one "stay" site per mover (at its anchor, for it alone)
    n_hot, n_mov, n_fix = len(points), len(movers), len(coverers)
    site_points = points + [m.anchor for m in movers]
    n_site = len(site_points)
    site_km = np.array([[leg_km(s, p) for p in points] for s in site_points])  # site -> hotspot
    fixed_km = np.array([[leg_km(c.point, p) for p in points] for c in coverers]).reshape(n_fix, n_hot)

    columns: list[tuple[float, float, list[tuple[int, float]], bool]] = []  # cost, upper, rows, is a placement
    row = 0
    mover_row = {i: row + i for i in range(n_mov)}
    row += n_mov
    hot_row = {k: row + k for k in range(n_hot)}
    row += n_hot
    site_row = {j: row + j for j in range(n_site)}
    row += n_site
    fixed_row = {f: row + f for f in range(n_fix)}
    row += n_fix
    x_index: list[tuple[int, int]] = []
    for i, mover in enumerate(movers):
        for j, target in enumerate(site_points):
            stay = j == n_hot + i
            if j >= n_hot and not stay:
                continue
            if not stay and not mover.can_reach(target):
                continue
            move_km = leg_km(mover.position, target)
            columns.append((move_km, 1.0, [(mover_row[i], 1.0), (site_row[j], -capacity_one)], True))
            x_index.append((i, j))
    for j in range(n_site):
        for k in range(n_hot):
            cost = pickup_price * demand[k] * site_km[j, k]
            columns.append((cost, 1.0, [(hot_row[k], 1.0), (site_row[j], demand[k])], False))
    for f in range(n_fix):
        for k in range(n_hot):
            cost = pickup_price * demand[k] * fixed_km[f, k]
            columns.append((cost, 1.0, [(hot_row[k], 1.0), (fixed_row[f], demand[k])], False))
    for k in range(n_hot):
        columns.append((pickup_price * demand[k] * far_km[k], 1.0, [(hot_row[k], 1.0)], False))

    lower = [1.0] * n_mov + [1.0] * n_hot + [-highspy.kHighsInf] * n_site + [-highspy.kHighsInf] * n_fix
    upper = [1.0] * n_mov + [1.0] * n_hot + [0.0] * n_site + [c.hours * rides_per_vehicle_h for c in coverers]
    chosen = _solve(columns, lower, upper)
    if chosen is None:
        return {}
    # the LP relaxation: each vehicle goes where most of it is placed (mostly integral already)
    best: dict[int, tuple[float, int]] = {}
    for (i, j), value in zip(x_index, chosen):
        if i not in best or value > best[i][0] + 1e-9:
            best[i] = (value, j)
    moves: dict[str, Stop] = {}
    for i, (_, j) in best.items():
        if j >= n_hot:
            continue
        mover = movers[i]
        target = site_points[j]
        if leg_km(mover.anchor, target) <= ARRIVED_KM:
            continue  # already there, or already heading there
        moves[mover.vehicle_id] = Stop(StopKind.REBALANCE, target, place_id="hotspot")
    return moves


def _solve(columns, row_lower, row_upper) -> list[float] | None:
    """The values of the placement columns (flagged True), in order, at the LP optimum; None without one."""
    starts, index, value = [0], [], []
    for _, _, entries, _ in columns:
        for r, v in entries:
            index.append(r)
            value.append(v)
        starts.append(len(index))
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = len(columns), len(row_lower)
    lp.col_cost_ = np.array([c[0] for c in columns])
    lp.col_lower_ = np.zeros(len(columns))
    lp.col_upper_ = np.array([c[1] for c in columns])
    lp.row_lower_ = np.array(row_lower)
    lp.row_upper_ = np.array(row_upper)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.array(starts, dtype=np.int32)
    lp.a_matrix_.index_ = np.array(index, dtype=np.int32)
    lp.a_matrix_.value_ = np.array(value)
    solver = highspy.Highs()
    solver.setOptionValue("output_flag", False)
    solver.setOptionValue("time_limit", SOLVE_TIME_LIMIT_S)
    solver.passModel(lp)
    solver.run()
    if solver.getInfo().primal_solution_status != 2:
        return None
    values = solver.getSolution().col_value
    return [values[n] for n, c in enumerate(columns) if c[3]]


def weighted_k_median(
    points: Sequence[Point],
    weights: Sequence[float],
    k: int,
    leg_km: Callable[[Point, Point], float],
    iterations: int = 20,
) -> list[int]:
    """Indices of ``k`` of ``points`` that minimise the weighted road km from every point to its
    nearest chosen one: greedy start, then swaps while one lowers the total (PAM)."""
    n = len(points)
    k = min(k, n)
    if k <= 0:
        return []
    km = np.array([[leg_km(a, b) for b in points] for a in points])
    w = np.asarray(weights, dtype=float)
    chosen: list[int] = []
    nearest = np.full(n, np.inf)
    for _ in range(k):
        totals = np.minimum(nearest[None, :], km) @ w
        totals[chosen] = np.inf
        best = int(np.argmin(totals))
        chosen.append(best)
        nearest = np.minimum(nearest, km[best])
    cost = float(nearest @ w)
    for _ in range(iterations):
        improved = False
        for slot in range(k):
            rest = [c for s, c in enumerate(chosen) if s != slot]
            base = km[rest].min(axis=0) if rest else np.full(n, np.inf)
            totals = np.minimum(base[None, :], km) @ w
            totals[rest] = np.inf
            best = int(np.argmin(totals))
            if totals[best] < cost - 1e-9:
                chosen[slot], cost, improved = best, float(totals[best]), True
        if not improved:
            break
    return chosen


def station_moves(
    movers: Sequence[Mover],
    stations: Sequence[Point],
    held: Sequence[Point],
    leg_km: Callable[[Point, Point], float],
    value_km: Sequence[float] | None = None,
    one_per_station: bool = False,
) -> dict[str, Stop]:
    """Idle vehicles to the free stations: the assignment (a transport LP, at most one vehicle per
    station) that costs least, a move costing its km less the value of the station it fills
    (``value_km``, in km; without it every vehicle is placed, with least km in total). So a move
    is made only when it pays for itself. A station is held by a vehicle standing within
    ``ARRIVED_KM`` of it or driving to it (``held``); a vehicle already at a station stays, so a
    vehicle moves at most once per idle spell, as the placement bound assumes.

    With ``one_per_station`` a station holds one vehicle: ``held`` are then only the points of
    vehicles that are not ``movers`` (idle too briefly to move, or driving to a station), and of
    several movers standing at one station all but one count as away from every station."""
    values = [BIG_KM] * len(stations) if value_km is None else list(value_km)
    held_by = (
        set()
        if one_per_station
        else {j for j, s in enumerate(stations) if any(leg_km(h, s) <= ARRIVED_KM for h in held)}
    )
    away = []
    for m in movers:
        at = [j for j, s in enumerate(stations) if leg_km(m.position, s) <= ARRIVED_KM]
        if not one_per_station:
            if not at:
                away.append(m)
            continue
        # one vehicle holds a station; a second one standing there (two drop-offs at the hospital)
        # is as free to move as one standing nowhere
        mine = next(
            (j for j in at if j not in held_by and all(leg_km(h, stations[j]) > ARRIVED_KM for h in held)), None
        )
        if mine is None:
            away.append(m)
        else:
            held_by.add(mine)
    if one_per_station:
        held_by |= {j for j, s in enumerate(stations) if any(leg_km(h, s) <= ARRIVED_KM for h in held)}
    free = [j for j in range(len(stations)) if j not in held_by]
    free_stations = [stations[j] for j in free]
    if not away or not free_stations:
        return {}
    n_mov, n_st = len(away), len(free_stations)
    columns, x_index = [], []
    for i, mover in enumerate(away):
        for j, station in enumerate(free_stations):
            cost = leg_km(mover.position, station) - values[free[j]]
            if cost >= 0 or not mover.can_reach(station):
                continue  # a move that does not pay, or one the vehicle could not come back from
            columns.append((cost, 1.0, [(i, 1.0), (n_mov + j, 1.0)], True))
            x_index.append((i, j))
    if not columns:
        return {}
    chosen = _solve(columns, [-highspy.kHighsInf] * (n_mov + n_st), [1.0] * (n_mov + n_st))
    if chosen is None:
        return {}
    return {
        away[i].vehicle_id: Stop(StopKind.REBALANCE, free_stations[j], place_id="station")
        for (i, j), value in zip(x_index, chosen)
        if value > 0.5
    }


BIG_KM = 1000.0  # reward for placing a vehicle at all: more than any drive between two stations
