"""Rolling re-optimisation of the riders not yet picked up (pure: no I/O, no clock, no globals).

After a batch's assignment, every rider promised a vehicle and not yet picked up (the rolling
window) may move: a local search over the fleet's routes tries

- relocate: take one waiting rider out of its vehicle and put it, by cheapest insertion, into
  any vehicle (its own included, which reorders the route);
- exchange: swap two waiting riders between two vehicles;

and keeps a move only when it lowers the fleet's cost, the batch objective summed over all
routes: driving time of every route plus ``wait_weight`` x the wait of every waiting rider. Each
route is re-driven by ``dispatch.routes.evaluate``, so every rider keeps the pickup limit and
ride time it was promised, seats, hours and the energy floor hold. It stops when no move pays or
after ``max_moves``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dispatch.model import Reason, Request, Stop, StopKind, VehicleView
from dispatch.routes import Failure, RouteContext, RoutePlan, best_insertion, evaluate

IMPROVEMENT_S = 1e-3  # a move must save more than this [s of cost] (no cycling on rounding)


@dataclass(frozen=True)
class Improvement:
    routes: dict[str, tuple[Stop, ...]]  # the vehicles whose route changed -> their new route
    moved: dict[str, str]  # rider -> the vehicle it moved to (only riders that changed vehicle)
    saved_cost: float
    moves: int


def improve(
    vehicles: Mapping[str, VehicleView],
    routes: Mapping[str, tuple[Stop, ...]],
    waiting: Mapping[str, Request],
    ctx: RouteContext,
    wait_weight: float,
    max_moves: int = 50,
) -> Improvement:
    """Local search over ``routes`` (vehicle -> its stops, every vehicle that may take riders)
    moving the riders of ``waiting`` (not yet picked up, with their request times)."""
    search = _Search(vehicles, ctx, waiting, wait_weight)
    current = {v: tuple(routes.get(v, vehicles[v].stops)) for v in vehicles}
    plans: dict[str, RoutePlan] = {}
    for vehicle_id, stops in current.items():
        plan = evaluate(vehicles[vehicle_id], stops, ctx)
        if isinstance(plan, Failure):  # a route that went wrong is left alone, with its riders
            continue
        plans[vehicle_id] = plan
    start_holder = _holders(current, waiting)
    saved, moves = 0.0, 0
    while moves < max_moves:
        move = search.best_relocate(plans) or search.best_exchange(plans)
        if move is None:
            break
        gain, changed = move
        plans.update(changed)
        saved += gain
        moves += 1
    new_routes = {v: p.stops for v, p in plans.items() if p.stops != current[v]}
    end_holder = _holders({v: p.stops for v, p in plans.items()}, waiting)
    moved = {r: v for r, v in end_holder.items() if start_holder.get(r) != v}
    return Improvement(new_routes, moved, saved, moves)


def _holders(routes: Mapping[str, tuple[Stop, ...]], waiting: Mapping[str, Request]) -> dict[str, str]:
    return {
        s.request_id: v
        for v, stops in routes.items()
        for s in stops
        if s.kind is StopKind.PICKUP and s.request_id in waiting
    }


class _Search:
    def __init__(self, vehicles, ctx: RouteContext, waiting: Mapping[str, Request], wait_weight: float):
        self.vehicles = vehicles
        self.ctx = ctx
        self.waiting = waiting
        self.wait_weight = wait_weight

    def cost(self, vehicle_id: str, plan: RoutePlan) -> float:
        start_s = self.vehicles[vehicle_id].start_s
        waits = sum(t - self.waiting[r].time_s for r, t in plan.pickup_s.items() if r in self.waiting)
        return (plan.end_s - start_s if plan.stops else 0.0) + self.wait_weight * waits

    def _without(self, vehicle_id: str, plan: RoutePlan, rider: str) -> RoutePlan | None:
        stops = tuple(
            s for s in plan.stops if s.request_id != rider or s.kind not in (StopKind.PICKUP, StopKind.DROPOFF)
        )
        result = evaluate(self.vehicles[vehicle_id], stops, self.ctx)
        return None if isinstance(result, Failure) else result

    def _with(self, vehicle_id: str, plan: RoutePlan, rider: str, stops_of: tuple[Stop, Stop]) -> RoutePlan | None:
        vehicle = self.vehicles[vehicle_id]
        if not vehicle.available:
            return None
        pickup, dropoff = stops_of
        ids = frozenset(r for r in plan.pickup_s if r in self.waiting) | {rider}
        found = best_insertion(
            vehicle, plan.stops, pickup, dropoff, self.ctx, ids, self.wait_weight, self.waiting[rider].time_s
        )
        return None if isinstance(found, Reason) else found.plan

    def _riders(self, plans: Mapping[str, RoutePlan]):
        """(rider, its vehicle, its pickup and drop-off stops) of every waiting rider."""
        for vehicle_id, plan in plans.items():
            for stop in plan.stops:
                if stop.kind is StopKind.PICKUP and stop.request_id in self.waiting:
                    dropoff = next(
                        s for s in plan.stops if s.kind is StopKind.DROPOFF and s.request_id == stop.request_id
                    )
                    yield stop.request_id, vehicle_id, (stop, dropoff)

    def best_relocate(self, plans: Mapping[str, RoutePlan]):
        best = None
        for rider, home, stops_of in self._riders(plans):
            left = self._without(home, plans[home], rider)
            if left is None:
                continue
            home_gain = self.cost(home, plans[home]) - self.cost(home, left)
            for target, plan in plans.items():
                base = left if target == home else plan
                placed = self._with(target, base, rider, stops_of)
                if placed is None:
                    continue
                if target == home:
                    gain = self.cost(home, plans[home]) - self.cost(home, placed)
                    changed = {home: placed}
                else:
                    gain = home_gain + self.cost(target, plan) - self.cost(target, placed)
                    changed = {home: left, target: placed}
                if gain > IMPROVEMENT_S and (best is None or gain > best[0]):
                    best = (gain, changed)
        return best

    def best_exchange(self, plans: Mapping[str, RoutePlan]):
        riders = list(self._riders(plans))
        best = None
        for i, (a, va, stops_a) in enumerate(riders):
            for b, vb, stops_b in riders[i + 1 :]:
                if va == vb:
                    continue
                a_left, b_left = self._without(va, plans[va], a), self._without(vb, plans[vb], b)
                if a_left is None or b_left is None:
                    continue
                new_a = self._with(va, a_left, b, stops_b)
                new_b = self._with(vb, b_left, a, stops_a) if new_a is not None else None
                if new_a is None or new_b is None:
                    continue
                gain = self.cost(va, plans[va]) + self.cost(vb, plans[vb]) - self.cost(va, new_a) - self.cost(vb, new_b)
                if gain > IMPROVEMENT_S and (best is None or gain > best[0]):
                    best = (gain, {va: new_a, vb: new_b})
        return best
