"""From a plan to the set-point each writable device should have now (pure functions).

Between plans, set-points follow the current plan's step. A re-plan does not make devices flap:
a device keeps its set-point unless the new target differs by more than a threshold.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ems.config.schema import Portfolio


def plan_targets(plan_power_kw: pd.DataFrame, now: dt.datetime, plugged: dict[str, str | None],
                 batteries: set[str], chargers: set[str]) -> dict[str, float]:
    """Battery set-points and charger set-points (the plugged vehicle's planned power) at ``now``.

    Outside the plan's span, or for a charger with no planned vehicle plugged, the target is 0.
    """
    index = plan_power_kw.index
    position = index.searchsorted(pd.Timestamp(now), side="right") - 1
    inside = 0 <= position < len(index) and pd.Timestamp(now) < index[-1] + (index[1] - index[0] if len(index) > 1 else pd.Timedelta(0))
    row = plan_power_kw.iloc[position] if inside else None
    targets = {b: (float(row[b]) if row is not None and b in row else 0.0) for b in batteries}
    for charger in chargers:
        targets[charger] = 0.0
    for vehicle, charger in plugged.items():
        if charger in chargers and row is not None and vehicle in row:
            targets[charger] = float(row[vehicle])
    return targets


def hold_small_changes(previous: dict[str, float], targets: dict[str, float], threshold_kw: float) -> dict[str, float]:
    """Keep the previous set-point where the new target moves less than ``threshold_kw``;
    a move to or from zero always goes through (start and stop are never held back)."""
    held = {}
    for device, target in targets.items():
        before = previous.get(device)
        keep = before is not None and abs(target - before) <= threshold_kw and (target == 0.0) == (before == 0.0)
        held[device] = before if keep else target
    return held


def failsafe_setpoint_kw(portfolio: Portfolio, device: str) -> float:
    """Battery: its configured failsafe (default idle). Charger: its configured failsafe, by
    default charge-only at the safe power of 3 kW or its rating if lower (never discharge)."""
    for battery in portfolio.batteries:
        if battery.id == device:
            return battery.failsafe_kw
    for charger in portfolio.chargers:
        if charger.id == device:
            if charger.failsafe_kw is not None:
                return charger.failsafe_kw
            return -min(3.0, charger.charge_power_kw)
    return 0.0
