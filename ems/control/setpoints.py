"""From a plan to the set-point each writable device should have now (pure functions).

Between plans, set-points follow the current plan's step. A re-plan does not make devices flap:
a device keeps its set-point unless the new target differs by more than a threshold.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ems.config.schema import Portfolio
from ems.optimise.registry import COMPONENTS, component_of


def plan_row(plan_power_kw: pd.DataFrame, now: dt.datetime) -> pd.Series | None:
    """The plan's powers of the step that holds ``now``; None outside the plan's span."""
    index = plan_power_kw.index
    position = index.searchsorted(pd.Timestamp(now), side="right") - 1
    inside = 0 <= position < len(index) and pd.Timestamp(now) < index[-1] + (
        index[1] - index[0] if len(index) > 1 else pd.Timedelta(0)
    )
    return plan_power_kw.iloc[position] if inside else None


def writable_devices(portfolio: Portfolio) -> set[str]:
    """Every device that takes a power set-point, of every asset kind (the optimiser's registry)."""
    return set().union(*(component.writable_devices(portfolio) for component in COMPONENTS))


def setpoint_targets(
    portfolio: Portfolio, plan_power_kw: pd.DataFrame, now: dt.datetime, plugged: dict[str, str | None], live: set[str]
) -> dict[str, float]:
    """Set-point at ``now`` of every writable device in ``live``, each kind mapping the plan to
    its devices (a battery its own power, a charger its plugged vehicle's, ...). Outside the
    plan's span every target is 0."""
    row = plan_row(plan_power_kw, now)
    targets: dict[str, float] = {}
    for component in COMPONENTS:
        targets |= component.setpoints_kw(row, component.writable_devices(portfolio) & live, plugged)
    return targets


def plan_targets(
    plan_power_kw: pd.DataFrame,
    now: dt.datetime,
    plugged: dict[str, str | None],
    batteries: set[str],
    chargers: set[str],
) -> dict[str, float]:
    """Battery set-points and charger set-points (the plugged vehicle's planned power) at ``now``.

    Outside the plan's span, or for a charger with no planned vehicle plugged, the target is 0.
    """
    row = plan_row(plan_power_kw, now)
    return component_of("battery").setpoints_kw(row, batteries, plugged) | component_of("ev").setpoints_kw(
        row, chargers, plugged
    )


def hold_small_changes(previous: dict[str, float], targets: dict[str, float], threshold_kw: float) -> dict[str, float]:
    """Keep the previous set-point where the new target moves less than ``threshold_kw``;
    a move to or from zero always goes through (start and stop are never held back)."""
    held: dict[str, float] = {}
    for device, target in targets.items():
        before = previous.get(device)
        keep = before is not None and abs(target - before) <= threshold_kw and (target == 0.0) == (before == 0.0)
        held[device] = before if keep and before is not None else target
    return held


def failsafe_setpoint_kw(portfolio: Portfolio, device: str) -> float:
    """The device's safe set-point, as its kind defines it: a battery its configured failsafe
    (default idle); a charger its configured failsafe, by default charge-only at
    ``control.charger_failsafe_kw`` or its rating if lower (never discharge); 0 for a device no
    kind claims."""
    for component in COMPONENTS:
        failsafe = component.failsafe_kw(portfolio, device)
        if failsafe is not None:
            return failsafe
    return 0.0
