"""Bring a vehicle's expected charging windows in line with what the charger reports now.

A vehicle that came back early, left early or arrives late is re-planned at the next cycle,
not treated as an error (docs/architecture.md, Contracts):

- plugged in now, inside a window: that window, with the charger it is really on;
- plugged in now, outside any window (back early): the next window starts now;
- not plugged in, inside a window: in its first half the vehicle is late (the window starts one
  step later); in its second half it has left early (the window ends now).
"""

from __future__ import annotations

import datetime as dt

from ems.fleet import VehiclePlan


def reconcile_plan(plan: VehiclePlan, now: dt.datetime, plugged_charger: str | None, step: dt.timedelta) -> VehiclePlan:
    windows = list(plan.windows)
    current = next((i for i, w in enumerate(windows) if w.plug_in <= now < w.plug_out), None)
    if plugged_charger is not None:
        if current is not None:
            windows[current] = windows[current].model_copy(update={"charger_id": plugged_charger})
        else:
            upcoming = next((i for i, w in enumerate(windows) if w.plug_in > now), None)
            if upcoming is not None:
                windows[upcoming] = windows[upcoming].model_copy(update={"plug_in": now, "charger_id": plugged_charger})
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
