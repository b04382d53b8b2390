"""The optimiser's input: a :class:`Problem` on a time grid, checked before any solve.

All series are numpy arrays of length ``grid.steps`` (one value per step, the step starting at
``grid.index[t]``). Powers are kW averaged over the step, energies kWh. The problem is pure data:
building and solving it reads no clock, file or global.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd


class ProblemError(ValueError):
    """The problem is inconsistent; the message names the asset and what is wrong."""


@dataclass(frozen=True)
class TimeGrid:
    start: pd.Timestamp
    step_minutes: int
    steps: int

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ProblemError("time grid: start must be timezone-aware")
        if self.steps < 1:
            raise ProblemError("time grid: needs at least one step")

    @property
    def step_h(self) -> float:
        return self.step_minutes / 60.0

    @property
    def index(self) -> pd.DatetimeIndex:
        return pd.date_range(self.start, periods=self.steps, freq=f"{self.step_minutes}min")

    @property
    def end(self) -> pd.Timestamp:
        return self.start + pd.Timedelta(minutes=self.step_minutes * self.steps)


@dataclass(frozen=True)
class GridSpec:
    id: str
    site: str
    import_limit_kw: float
    export_limit_kw: float
    exclusive_import_export: bool
    import_price_yen_per_kwh: np.ndarray
    export_price_yen_per_kwh: np.ndarray
    co2_kg_per_kwh: np.ndarray
    carbon_price_yen_per_kg: float = 0.0
    contract_demand_kw: float | None = None
    demand_charge_yen_per_kw: float = 0.0  # for a new peak above contract demand (months included)
    available: bool = True  # False during an outage: no import or export

    @property
    def effective_import_yen_per_kwh(self) -> np.ndarray:
        return self.import_price_yen_per_kwh + self.co2_kg_per_kwh * self.carbon_price_yen_per_kg


@dataclass(frozen=True)
class PvSpec:
    id: str
    site: str
    available_kw: np.ndarray
    curtailable: bool = True


@dataclass(frozen=True)
class LoadSpec:
    id: str
    site: str
    demand_kw: np.ndarray
    kind: Literal["load", "shelter_load"] = "load"


@dataclass(frozen=True)
class BatterySpec:
    id: str
    site: str
    capacity_kwh: float
    soc_min_kwh: float
    soc_max_kwh: float
    charge_max_kw: float
    discharge_max_kw: float
    charge_efficiency: float
    discharge_efficiency: float
    initial_soc_kwh: float
    degradation_yen_per_kwh: float = 0.0
    reserve_kwh: float = 0.0


@dataclass(frozen=True)
class EvSpec:
    """One vehicle over the horizon.

    ``charger_site[t]`` is the site of the charger it is plugged into during step t (``None``
    when away). Charge and discharge limits are zero when away; discharge is zero where the
    vehicle or the charger forbids V2G. ``drive_kwh[t]`` is the energy driving uses in step t.
    ``departure_targets`` are (t, kWh): the energy on board at the start of step t (when it
    leaves) must reach kWh.
    """

    id: str
    capacity_kwh: float
    soc_min_kwh: float
    soc_max_kwh: float
    initial_soc_kwh: float
    charger_id: tuple[str | None, ...]
    charger_site: tuple[str | None, ...]
    charge_max_kw: np.ndarray
    discharge_max_kw: np.ndarray
    charge_efficiency: float
    discharge_efficiency: float
    drive_kwh: np.ndarray
    departure_targets: tuple[tuple[int, float], ...] = ()
    keep_energy_kwh: float = 0.0  # the energy manager's reservation (e.g. for a shelter)


@dataclass(frozen=True)
class DrEventSpec:
    """A demand-response event on the net import of ``sites`` during the steps where ``active``.

    ``down``: net import <= baseline - requested; ``up``: net import >= baseline + requested.
    Delivered energy earns ``price``; energy short of the request pays ``penalty``.
    """

    id: str
    direction: Literal["down", "up"]
    sites: tuple[str, ...]
    active: np.ndarray  # bool per step
    baseline_kw: np.ndarray
    requested_kw: float
    price_yen_per_kwh: float
    penalty_yen_per_kwh: float


@dataclass(frozen=True)
class SolverSettings:
    time_limit_s: float = 30.0
    mip_gap: float = 0.005
    ev_shortfall_penalty_yen_per_kwh: float = 500.0
    bcp_shortfall_penalty_yen_per_kwh: float = 200.0
    drive_shortfall_penalty_yen_per_kwh: float = 5000.0
    terminal_value_yen_per_kwh: float = 0.0
    # Load left unserved where the grid cannot carry it (import limit, outage): the last resort.
    unserved_load_yen_per_kwh: float = 10_000.0
    # A tiny cost on storage throughput: it breaks ties so the LP never charges and
    # discharges at once when that is free (zero prices); far below any real price.
    throughput_epsilon_yen_per_kwh: float = 1e-3


@dataclass(frozen=True)
class Problem:
    grid: TimeGrid
    sites: tuple[str, ...]
    grids: tuple[GridSpec, ...]
    pvs: tuple[PvSpec, ...] = ()
    loads: tuple[LoadSpec, ...] = ()
    batteries: tuple[BatterySpec, ...] = ()
    evs: tuple[EvSpec, ...] = ()
    dr_events: tuple[DrEventSpec, ...] = ()
    settings: SolverSettings = field(default_factory=SolverSettings)

    def validate(self) -> Problem:
        """Raise :class:`ProblemError` naming the first inconsistency found."""
        steps = self.grid.steps
        if not 0 < self.settings.unserved_load_yen_per_kwh < float("inf"):
            raise ProblemError("settings: unserved_load_yen_per_kwh must be a positive finite price")
        ids = [a.id for group in (self.grids, self.pvs, self.loads, self.batteries, self.evs) for a in group]
        if len(set(ids)) != len(ids):
            raise ProblemError(f"duplicate asset ids: {sorted({i for i in ids if ids.count(i) > 1})}")
        for site in self.sites:
            if sum(g.site == site for g in self.grids) != 1:
                raise ProblemError(f"site {site!r}: needs exactly one grid connection")

        def check_series(owner: str, name: str, values: np.ndarray, nonnegative: bool = False) -> None:
            if values.shape != (steps,):
                raise ProblemError(f"{owner}: {name} has shape {values.shape}, expected ({steps},)")
            if not np.all(np.isfinite(values)):
                raise ProblemError(f"{owner}: {name} has missing or infinite values")
            if nonnegative and np.any(values < 0):
                raise ProblemError(f"{owner}: {name} must not be negative")

        for g in self.grids:
            check_series(g.id, "import_price_yen_per_kwh", g.import_price_yen_per_kwh)
            check_series(g.id, "export_price_yen_per_kwh", g.export_price_yen_per_kwh)
            check_series(g.id, "co2_kg_per_kwh", g.co2_kg_per_kwh, nonnegative=True)
        located: tuple[PvSpec | LoadSpec | BatterySpec, ...] = (*self.pvs, *self.loads, *self.batteries)
        for asset in located:
            if asset.site not in self.sites:
                raise ProblemError(f"{asset.id}: site {asset.site!r} is not in the problem")
        for pv in self.pvs:
            check_series(pv.id, "available_kw", pv.available_kw, nonnegative=True)
        for load in self.loads:
            check_series(load.id, "demand_kw", load.demand_kw, nonnegative=True)
        for b in self.batteries:
            if not 0 <= b.soc_min_kwh < b.soc_max_kwh <= b.capacity_kwh:
                raise ProblemError(f"{b.id}: needs 0 <= soc_min_kwh < soc_max_kwh <= capacity_kwh")
            if not 0 <= b.initial_soc_kwh <= b.capacity_kwh:
                raise ProblemError(f"{b.id}: initial_soc_kwh {b.initial_soc_kwh} outside 0..{b.capacity_kwh}")
        for ev in self.evs:
            self._validate_ev(ev, check_series)
        for event in self.dr_events:
            check_series(event.id, "baseline_kw", event.baseline_kw)
            if event.active.shape != (steps,):
                raise ProblemError(f"{event.id}: active mask has the wrong length")
            unknown = set(event.sites) - set(self.sites)
            if unknown:
                raise ProblemError(f"{event.id}: unknown sites {sorted(unknown)}")
        return self

    def _validate_ev(self, ev: EvSpec, check_series) -> None:
        steps = self.grid.steps
        if len(ev.charger_site) != steps or len(ev.charger_id) != steps:
            raise ProblemError(f"{ev.id}: charger_site/charger_id need one entry per step")
        check_series(ev.id, "charge_max_kw", ev.charge_max_kw, nonnegative=True)
        check_series(ev.id, "discharge_max_kw", ev.discharge_max_kw, nonnegative=True)
        check_series(ev.id, "drive_kwh", ev.drive_kwh, nonnegative=True)
        if not 0 <= ev.soc_min_kwh < ev.soc_max_kwh <= ev.capacity_kwh:
            raise ProblemError(f"{ev.id}: needs 0 <= soc_min_kwh < soc_max_kwh <= capacity_kwh")
        if not 0 <= ev.initial_soc_kwh <= ev.capacity_kwh:
            raise ProblemError(f"{ev.id}: initial_soc_kwh {ev.initial_soc_kwh} outside 0..{ev.capacity_kwh}")
        for t, site in enumerate(ev.charger_site):
            if site is None and (ev.charge_max_kw[t] > 0 or ev.discharge_max_kw[t] > 0):
                raise ProblemError(f"{ev.id}: step {t} has charger power but no charger")
            if site is not None and site not in self.sites:
                raise ProblemError(f"{ev.id}: charger site {site!r} is not in the problem")
            if site is not None and ev.drive_kwh[t] > 0:
                raise ProblemError(f"{ev.id}: step {t} is both plugged in and driving")
        for t, energy in ev.departure_targets:
            if not 0 <= t <= steps:
                raise ProblemError(f"{ev.id}: departure step {t} outside the horizon")
            if energy > ev.capacity_kwh:
                raise ProblemError(f"{ev.id}: departure target {energy} kWh exceeds the battery")
