"""The VEN service: the OpenADR client (drivers/openadr) wired to the portfolio. Each event is
checked against the flexibility the portfolio has now (opt in or out), an accepted event
becomes an event file and a term of the live plan, and the sites' grid power goes back to the
VTN as telemetry reports. Used by ``ems dr ven`` and inside ``ems run``."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from drivers.openadr.ven import ReceivedEvent, Ven
from ems.config.schema import Portfolio
from ems.control.ven import horizon_hours_for, interval_steps, read_request, record_accepted, request_kw, withdraw
from ems.store import Store

log = logging.getLogger(__name__)


def events_dir(portfolio: Portfolio) -> Path:
    if portfolio.openadr is None:
        raise ValueError("the portfolio has no [openadr] section")
    return Path(portfolio.openadr.events_dir)


class VenService:
    def __init__(
        self,
        portfolio: Portfolio,
        config_path: str | Path,
        store: Store,
        clock: Callable[[], dt.datetime],
        *,
        inputs: str = "forecast",
        grid_power_kw: Callable[[str], float | None] | None = None,
    ):
        if portfolio.openadr is None:
            raise ValueError("the portfolio has no [openadr] section")
        self.portfolio, self.config_path, self.store, self.clock, self.inputs = (
            portfolio,
            Path(config_path),
            store,
            clock,
            inputs,
        )
        self.settings = settings = portfolio.openadr
        read = grid_power_kw or self._stored_grid_power_kw
        telemetry: dict[str, Callable[[], float | None]] = {
            s.id: functools.partial(read, s.id) for s in portfolio.sites
        }
        self.ven = Ven(
            settings.ven_name,
            settings.vtn_url,
            self.on_event,
            telemetry,
            settings.report_interval_s,
            settings.cert_file,
            settings.key_file,
            settings.vtn_fingerprint,
            clock=clock,
        )
        self.decisions: dict[str, dict] = {}

    async def start(self) -> None:
        await self.ven.start()
        self.store.record_event(
            self.clock(),
            "openadr",
            f"VEN {self.settings.ven_name!r} registered with {self.settings.vtn_url} (ven id {self.ven.ven_id})",
        )

    async def stop(self) -> None:
        await self.ven.stop()

    async def on_event(self, event: ReceivedEvent) -> bool:
        started = time.perf_counter()
        if event.status in ("cancelled", "completed"):
            withdraw(events_dir(self.portfolio), event.event_id)
            self.store.record_event(
                self.clock(), "openadr", f"event {event.event_id} {event.status}: withdrawn from the plan"
            )
            return False
        opt_in, reason, path = await asyncio.to_thread(self.decide, event)
        self.decisions[event.event_id] = {
            "opt_in": opt_in,
            "reason": reason,
            "file": str(path) if path else None,
            "decided": self.clock().isoformat(),
            "decide_s": time.perf_counter() - started,
        }
        self.store.record_event(
            self.clock(),
            "openadr",
            f"event {event.event_id}: {'opt in' if opt_in else 'opt out'} ({reason})",
            {"event_id": event.event_id, "opt_in": opt_in, "file": str(path) if path else None},
        )
        return opt_in

    def decide(self, event: ReceivedEvent) -> tuple[bool, str, Path | None]:
        """(opt in?, why, the event file written)."""
        from ems.optimise import solve
        from ems.optimise.flexibility import solve_flexibility
        from ems.planning import plan_inputs

        settings = self.settings
        request = read_request(event, self.portfolio)
        if request.problem:
            withdraw(events_dir(self.portfolio), event.event_id)
            return False, request.problem, None
        zone = self.portfolio.portfolio.timezone
        start = pd.Timestamp(self.clock()).tz_convert(zone).floor(f"{self.portfolio.planning.step_minutes}min")
        if request.starts[0] < start:
            return False, f"starts {request.starts[0].isoformat()}, before the current step", None
        # the event's own earlier version must not shape the reference it is measured against
        withdraw(events_dir(self.portfolio), event.event_id)
        problem = plan_inputs(
            self.config_path,
            start,
            horizon_hours=horizon_hours_for(start, request),
            inputs=self.inputs,
            portfolio=self.portfolio,
            store=self.store,
        ).problem
        reference = solve(problem)
        net_all = sum(reference.power_kw[g.id].to_numpy() for g in problem.grids)
        net_sites = sum(reference.power_kw[g.id].to_numpy() for g in problem.grids if g.site in request.sites)
        steps = interval_steps(request, problem.grid)
        asked = request_kw(request, np.asarray(net_sites), steps)
        window = np.concatenate(steps)
        most = float(asked[window].max()) if len(window) else 0.0
        if most <= 0:
            return False, "asks for nothing the plan does not already do", None
        flex = solve_flexibility(problem, cast("Sequence[int]", window), request.direction, np.asarray(net_all))
        if flex.flex_kw + 1e-6 < settings.opt_in_fraction * most:
            shortfall = (
                f"flexibility {flex.flex_kw:.1f} kW {request.direction} < "
                f"{settings.opt_in_fraction:.0%} of {most:.1f} kW asked"
            )
            return False, shortfall, None
        path = record_accepted(
            events_dir(self.portfolio),
            event,
            request,
            np.asarray(net_sites),
            asked,
            problem.grid,
            settings.price_yen_per_kwh,
            settings.penalty_yen_per_kwh,
        )
        return True, f"flexibility {flex.flex_kw:.1f} kW {request.direction} covers {most:.1f} kW asked", path

    def _stored_grid_power_kw(self, site: str) -> float | None:
        """The site's last good grid power in the store (what ``ems run`` recorded) [kW]."""
        grid = next(g.id for g in self.portfolio.grid_connections if g.site == site)
        rows = self.store.series(grid, "power_kw", self.clock() - dt.timedelta(minutes=5))
        return rows[-1][1] if rows else None
