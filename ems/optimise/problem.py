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

from ems.config.schema import Planning


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


def _planning_default(key: str):
    """The default of ``[planning] key``: the config schema is the one place a default is set."""
    return Planning.model_fields[key].default


@dataclass(frozen=True)
class SolverSettings:
    """The solver's settings and the prices of the soft constraints (docs/config.md, ``[planning]``)."""

    time_limit_s: float = _planning_default("time_limit_s")
    mip_gap: float = _planning_default("mip_gap")
    ev_shortfall_penalty_yen_per_kwh: float = _planning_default("ev_shortfall_penalty_yen_per_kwh")
    bcp_shortfall_penalty_yen_per_kwh: float = _planning_default("bcp_shortfall_penalty_yen_per_kwh")
    drive_shortfall_penalty_yen_per_kwh: float = _planning_default("drive_shortfall_penalty_yen_per_kwh")
    # the config's default (none) means 90 % of the mean import price, which needs prices: 0 here
    terminal_value_yen_per_kwh: float = 0.0
    # Load left unserved where the grid cannot carry it (import limit, outage): the last resort.
    unserved_load_yen_per_kwh: float = _planning_default("unserved_load_yen_per_kwh")
    # A tiny cost on storage throughput: it breaks ties so the LP never charges and
    # discharges at once when that is free (zero prices); far below any real price.
    throughput_epsilon_yen_per_kwh: float = _planning_default("throughput_epsilon_yen_per_kwh")


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
    # specs of further asset kinds, each taken by the registered component of its spec type
    assets: tuple[object, ...] = ()

    def validate(self) -> Problem:
        """Raise :class:`ProblemError` naming the first inconsistency found; each asset kind
        checks its own specs (``Component.validate``)."""
        # imported here: the registry's components import this module
        from ems.optimise.registry import COMPONENTS

        steps = self.grid.steps
        if not 0 < self.settings.unserved_load_yen_per_kwh < float("inf"):
            raise ProblemError("settings: unserved_load_yen_per_kwh must be a positive finite price")
        claimed = [spec for c in COMPONENTS if c.spec_type is not None for spec in c.specs(self)]
        unclaimed = [spec for spec in self.assets if not any(spec is other for other in claimed)]
        if unclaimed:
            raise ProblemError(
                f"{getattr(unclaimed[0], 'id', unclaimed[0])!r}: no registered asset kind takes "
                f"a {type(unclaimed[0]).__name__}"
            )
        ids = [a.id for c in COMPONENTS for a in c.specs(self)]
        if len(set(ids)) != len(ids):
            raise ProblemError(f"duplicate asset ids: {sorted({i for i in ids if ids.count(i) > 1})}")
        for site in self.sites:
            if sum(g.site == site for g in self.grids) != 1:
                raise ProblemError(f"site {site!r}: needs exactly one grid connection")

        # A series' shape is checked at once, its values all together at the end (one numpy pass
        # instead of one per series); any fault raised before that first looks at the values
        # checked so far, so the first fault in checking order is the one reported, as if each
        # series had been checked on the spot.
        pending: list[tuple[str, str, np.ndarray, bool]] = []

        def check_series(owner: str, name: str, values: np.ndarray, nonnegative: bool = False) -> None:
            if values.shape != (steps,):
                _raise_first_value_fault(pending)
                raise ProblemError(f"{owner}: {name} has shape {values.shape}, expected ({steps},)")
            pending.append((owner, name, values, nonnegative))

        try:
            for component in COMPONENTS:
                component.validate(self, check_series)
        except Exception:
            _raise_first_value_fault(pending)
            raise
        _raise_first_value_fault(pending)
        return self


def _raise_first_value_fault(series: list[tuple[str, str, np.ndarray, bool]]) -> None:
    """Raise for the first of ``series`` (owner, name, values of one shape, nonnegative) with a
    missing or infinite value, or a negative one where that is not allowed; checked as one array."""
    if not series:
        return
    values = np.array([item[2] for item in series])
    if values.dtype.kind in "biuf":  # else (an object array, say) one by one, as numpy treats each
        nonnegative = np.array([item[3] for item in series])
        faulty = ~np.isfinite(values).all(axis=1) | (nonnegative & (values < 0).any(axis=1))
        if not faulty.any():
            return
        series = series[int(np.argmax(faulty)) :]
    for owner, name, single, nonnegative_only in series:
        if not np.all(np.isfinite(single)):
            raise ProblemError(f"{owner}: {name} has missing or infinite values") from None
        if nonnegative_only and np.any(single < 0):
            raise ProblemError(f"{owner}: {name} must not be negative") from None
