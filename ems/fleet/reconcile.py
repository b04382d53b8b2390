"""Bring a vehicle's expected charging windows in line with what the charger reports now.

A vehicle that came back early, left early or arrives late is re-planned at the next cycle,
not treated as an error (docs/architecture.md, Contracts):

- plugged in now, inside a window: that window, with the charger it is really on;
- plugged in now, outside any window (back early): the next window starts now;
- plugged in now, either way: the window starts no later than the start of the plan's step in
  progress (``step_start``), so the plan has the vehicle plugged in its first step, the one the
  controller writes set-points from (a plan counts a vehicle plugged only for whole steps, and a
  window starting a few minutes into the step in progress would leave it idle until the next);
- not plugged in, inside a window: in its first half the vehicle is late (the window starts one
  step later); in its second half it has left early (the window ends now).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from ems.fleet import VehiclePlan, VehicleState, VehicleStatus


def reconcile_plan(
    plan: VehiclePlan,
    now: dt.datetime,
    plugged_charger: str | None,
    step: dt.timedelta,
    step_start: dt.datetime | None = None,
) -> VehiclePlan:
    windows = list(plan.windows)
    current = next((i for i, w in enumerate(windows) if w.plug_in <= now < w.plug_out), None)
    if plugged_charger is not None:
        plugged_from = min(now, step_start) if step_start is not None else now
        if current is not None:
            plug_in = min(windows[current].plug_in, plugged_from)
            windows[current] = windows[current].model_copy(update={"plug_in": plug_in, "charger_id": plugged_charger})
        else:
            upcoming = next((i for i, w in enumerate(windows) if w.plug_in > now), None)
            if upcoming is not None:
                windows[upcoming] = windows[upcoming].model_copy(
                    update={"plug_in": plugged_from, "charger_id": plugged_charger}
                )
    elif current is not None:
        window = windows[current]
        if now - window.plug_in < (window.plug_out - window.plug_in) / 2:
            late = now + step
            if late < window.plug_out:
                windows[current] = window.model_copy(update={"plug_in": late})
            else:
                del windows[current]
        else:
            windows[current] = window.model_copy(update={"plug_out": now})
    return plan.model_copy(update={"windows": tuple(windows)})


ON_THE_ROAD = (VehicleStatus.ON_TRIP, VehicleStatus.TO_CHARGER, VehicleStatus.IDLE, VehicleStatus.RESERVED_FOR_SHELTER)


def reconcile_fleet(
    plans: Mapping[str, VehiclePlan],
    states: Mapping[str, VehicleState],
    now: dt.datetime,
    plugged: dict[str, str | None],
    step: dt.timedelta,
    max_state_age: dt.timedelta,
    step_start: dt.datetime | None = None,
) -> tuple[dict[str, VehiclePlan], dict[str, float]]:
    """The fleet as the energy manager plans it at ``now``: each plan reconciled with where the
    vehicle really is, and the state of charge of each vehicle the dispatcher reported lately.

    Where the vehicle is comes from its charger's telemetry (``plugged``: vehicle -> charger, or
    None when known to be unplugged) and, for a vehicle no charger reports, from the
    dispatcher's state if it is fresh (at most ``max_state_age`` old): plugged at its
    ``charger_id`` when charging, on the road otherwise. A vehicle that is late, left early,
    unplugged or elsewhere than its plan says is re-planned by :func:`reconcile_plan`; one of
    which nothing fresh is known keeps its plan. A stale state's SoC is not used. ``step_start``
    is the start of the plan's step in progress (default ``now``): a vehicle plugged in now counts
    as plugged from then.
    """
    fresh = {v: s for v, s in states.items() if now - s.time <= max_state_age}
    reconciled = {}
    for vehicle_id, plan in plans.items():
        if vehicle_id in plugged:
            where: str | None = plugged[vehicle_id]
        elif vehicle_id in fresh:
            state = fresh[vehicle_id]
            where = state.charger_id if state.status is VehicleStatus.CHARGING else None
        else:
            reconciled[vehicle_id] = plan
            continue
        reconciled[vehicle_id] = reconcile_plan(plan, now, where, step, step_start)
    return reconciled, {v: s.soc_kwh for v, s in fresh.items()}
