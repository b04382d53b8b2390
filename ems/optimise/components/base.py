"""What an asset kind is to the optimiser: one :class:`Component`, registered once in
``ems/optimise/registry.py`` (docs/adding-an-asset-kind.md).

A component owns, for its kind: the specs it takes from a portfolio and their checks, its
variables, constraints, bus entries and objective terms in the MILP, reading its power and
stored energy back from a solved model, its objective terms and figures recomputed from powers
alone (``evaluate``), its part in the rule-based fallback, its rows of the long-form schedule,
and the set-points and failsafe of its devices. Everything that builds, reads, prices, explains
or actuates a plan loops over the registry instead of naming kinds.

Every hook has a do-nothing default, so a kind implements only what it has.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from ems.config.schema import Portfolio
    from ems.optimise.build import ModelBuild
    from ems.optimise.problem import GridSpec, Problem, TimeGrid
    from ems.optimise.report import PlanReport

SeriesCheck = Callable[..., None]  # check_series(owner, name, values, nonnegative=False)


def var_values(var) -> dict:
    """A Pyomo indexed variable's solved values (0 where the solver left none): read from the
    solution vector HiGHS returned when the model was passed as matrices
    (``ems/optimise/highs_model.py``), else from the variables themselves."""
    solution = getattr(var.model(), "_ems_column_values", None)
    values = solution.of(var.name) if solution is not None else None
    if values is not None:
        return values
    return {key: (value if value is not None else 0.0) for key, value in var.extract_values().items()}


def var_array(var, shape: tuple[int, ...]) -> np.ndarray:
    """A Pyomo indexed variable's solved values in its index order, reshaped (a variable indexed
    by asset x step: one row per asset), from the solution vector when one is attached."""
    solution = getattr(var.model(), "_ems_column_values", None)
    values = solution.array_of(var.name) if solution is not None else None
    if values is None:
        values = np.fromiter(var_values(var).values(), float, len(var))
    return values.reshape(shape)


def frame_rows(frame: pd.DataFrame, ids: Iterable[str]) -> np.ndarray:
    """``frame``'s columns ``ids`` as rows of one array, the values as they are (a Series per
    column costs more than the whole row; ``get_loc`` per id is cheaper than ``get_indexer``
    on a string index). A missing id raises ``KeyError`` as ``frame[id]`` would."""
    positions = [frame.columns.get_loc(i) for i in ids]
    return np.ascontiguousarray(frame.to_numpy(dtype=float)[:, positions].T)


def largest_both_ways(first: Mapping, second: Mapping) -> float:
    """The largest min(first, second) over keys both have: a flow both ways in one step."""
    if len(first) == len(second) and list(first) == list(second):  # one index, one order: in numpy
        if not first:
            return 0.0
        both = np.minimum(
            np.fromiter(first.values(), float, len(first)), np.fromiter(second.values(), float, len(second))
        )
        return float(both.max())
    return float(max((min(first[k], second[k]) for k in first if k in second), default=0.0))


def storage_soc_kwh(
    initial_kwh: float,
    power_kw: np.ndarray,
    dt_h: float,
    eta_charge: float,
    eta_discharge: float,
    drive_kwh: np.ndarray | None = None,
    floor_kwh: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Energy at the end of each step from net power (positive = discharge), and the driving
    energy the battery could not supply (kept at ``floor_kwh``)."""
    charge = np.clip(-power_kw, 0, None)
    discharge = np.clip(power_kw, 0, None)
    delta = eta_charge * charge * dt_h - discharge / eta_discharge * dt_h
    drive = np.zeros_like(power_kw) if drive_kwh is None else drive_kwh
    # Without a shortfall the levels are one running sum, in the loop's order (so equal to it bit
    # for bit): initial, + delta[0], - drive[0], + delta[1], ...
    steps = len(power_kw)
    terms = np.empty(2 * steps + 1)
    terms[0], terms[1::2], terms[2::2] = initial_kwh, delta, -np.asarray(drive, dtype=float)
    levels = np.add.accumulate(terms)[2::2]
    if not np.any((np.asarray(drive) > 0) & (levels < floor_kwh - 1e-9)):
        return levels, np.zeros(steps)
    soc = np.empty(len(power_kw))
    short = np.zeros(len(power_kw))
    level = initial_kwh
    for t in range(len(power_kw)):
        level = level + delta[t] - drive[t]
        if drive[t] > 0 and level < floor_kwh - 1e-9:
            short[t] = min(drive[t], floor_kwh - level)
            level += short[t]
        soc[t] = level
    return soc, short


def storage_soc_rows(
    initial_kwh: np.ndarray,
    power_kw: np.ndarray,
    dt_h: float,
    eta_charge: np.ndarray,
    eta_discharge: np.ndarray,
    drive_kwh: np.ndarray,
    floor_kwh: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``storage_soc_kwh`` for many units at once: one row per unit (its parameters one per row),
    each row equal to ``storage_soc_kwh`` of that unit bit for bit."""
    units, steps = power_kw.shape
    charge = np.clip(-power_kw, 0, None)
    discharge = np.clip(power_kw, 0, None)
    delta = eta_charge[:, None] * charge * dt_h - discharge / eta_discharge[:, None] * dt_h
    terms = np.empty((units, 2 * steps + 1))
    terms[:, 0], terms[:, 1::2], terms[:, 2::2] = initial_kwh, delta, -drive_kwh
    levels = np.add.accumulate(terms, axis=1)[:, 2::2]
    short = np.zeros((units, steps))
    for i in np.nonzero(np.any((drive_kwh > 0) & (levels < floor_kwh[:, None] - 1e-9), axis=1))[0]:
        levels[i], short[i] = storage_soc_kwh(
            float(initial_kwh[i]),
            power_kw[i],
            dt_h,
            float(eta_charge[i]),
            float(eta_discharge[i]),
            drive_kwh[i],
            float(floor_kwh[i]),
        )
    return levels, short


@dataclass
class PortfolioInputs:
    """What a component needs to turn its section of a portfolio into specs on a time grid.

    ``series(asset_id, profile, scale)``: the forecast of the asset when there is one, else the
    named profile (48 half-hourly values) on the grid times ``scale``.
    """

    portfolio: Portfolio
    grid: TimeGrid
    timezone: str
    series: Callable[[str, str, float], np.ndarray]
    initial_soc_kwh: Mapping[str, float]
    unavailable: frozenset[str]


@dataclass
class Evaluation:
    """The ledger ``evaluate`` fills: objective terms [yen], the plan report, energy per storage asset."""

    terms: dict[str, float]
    report: PlanReport
    soc_kwh: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class RuleState:
    """The rule-based plan while it is made, step by step: power per asset (into the bus) and
    whatever a component carries from step to step (its energy, what it still owes)."""

    problem: Problem
    power: dict[str, np.ndarray]
    carry: dict[str, Any] = field(default_factory=dict)

    @property
    def dt_h(self) -> float:
        return self.problem.grid.step_h


@dataclass
class SiteStep:
    """One site in one step of the rule-based plan. ``deficit_kw``: what the site still needs
    from its grid (negative: a surplus to export)."""

    site: str
    t: int
    grid: GridSpec
    deficit_kw: float = 0.0


@dataclass(frozen=True)
class ScheduleRows:
    """One asset's rows of ``schedule.csv``: its kind, its site (one per step where it moves, as
    a vehicle does; "" while away) and its stored energy at the end of each step (None: stores nothing)."""

    asset_id: str
    kind: str
    site: str | list[str]
    soc_kwh: np.ndarray | None = None


class Component:
    """One asset kind (or a model part without assets, such as a demand-response event).

    ``kind``: its name in ``schedule.csv`` and the registry. ``objective_terms``: the names of
    the objective terms it books (declared so a misspelt term is an error).
    ``spec_type``: the spec class of further kinds, kept in ``Problem.assets``.
    """

    kind: ClassVar[str] = ""
    objective_terms: ClassVar[tuple[str, ...]] = ()
    spec_type: ClassVar[type | None] = None
    # order in which a rule-based plan relieves an import limit (lower first); None: never
    import_relief_rank: ClassVar[int | None] = None

    # --- problem side ---------------------------------------------------------------------

    def specs(self, problem: Problem) -> tuple:
        """This kind's assets in ``problem`` (further kinds: their specs in ``problem.assets``)."""
        if self.spec_type is None:
            return ()
        return tuple(spec for spec in problem.assets if isinstance(spec, self.spec_type))

    def specs_from_portfolio(self, inputs: PortfolioInputs) -> tuple:
        """Specs of this kind from the portfolio (built-in kinds are assembled in ``inputs.py``)."""
        return ()

    def validate(self, problem: Problem, check_series: SeriesCheck) -> None:
        """Raise ``ProblemError`` naming the asset and what is wrong."""

    # --- model --------------------------------------------------------------------------

    def build(self, build: ModelBuild) -> None:
        """Add variables and constraints, book power into the bus and costs into the objective."""

    # --- read-back ----------------------------------------------------------------------

    def read_power(self, build: ModelBuild) -> dict[str, np.ndarray]:
        """Per asset, power into its site's bus in each step [kW]."""
        return {}

    def read_soc(self, build: ModelBuild) -> dict[str, np.ndarray]:
        """Per storage asset, the energy held at the end of each step [kWh]."""
        return {}

    def simultaneous_flows_kw(self, build: ModelBuild) -> dict[str, float]:
        """Largest flow both ways at once, keyed by the report figure it feeds
        (``simultaneous_charge_discharge_kw`` or ``simultaneous_import_export_kw``)."""
        return {}

    def binary_count(self, build: ModelBuild) -> int:
        return 0

    # --- evaluation and fallback --------------------------------------------------------

    def evaluate(self, problem: Problem, power_kw: pd.DataFrame, ledger: Evaluation) -> None:
        """Recompute its objective terms and figures from powers alone, in numpy."""

    def rule_start(self, state: RuleState) -> None:
        """Before the first step: its assets' power rows and carried state."""

    def rule_begin_step(self, state: RuleState, t: int) -> None:
        """Before the sites of step ``t`` settle: what it would like to do in the step."""

    def rule_demand(self, state: RuleState, step: SiteStep) -> None:
        """What it takes from (or gives to) the site before storage and the grid answer."""

    def rule_balance(self, state: RuleState, step: SiteStep) -> None:
        """Storage answering the site's deficit or surplus."""

    def rule_relieve_import(self, state: RuleState, step: SiteStep, excess_kw: float) -> float:
        """Lower the site's draw by up to ``excess_kw`` (past the import limit); return the kW relieved."""
        return 0.0

    def rule_relieve_export(self, state: RuleState, step: SiteStep, excess_kw: float) -> float:
        """Lower the site's feed-in by up to ``excess_kw`` (past the export limit); return the kW relieved."""
        return 0.0

    def rule_end_step(self, state: RuleState, t: int) -> None:
        """After every site has settled step ``t``: write powers, move carried energy on."""

    # --- outputs ------------------------------------------------------------------------

    def schedule_rows(self, problem: Problem, soc_kwh: pd.DataFrame) -> Iterable[ScheduleRows]:
        return ()

    # --- devices ------------------------------------------------------------------------

    def writable_devices(self, portfolio: Portfolio) -> set[str]:
        """Ids of the devices of this kind that take a power set-point."""
        return set()

    def setpoints_kw(
        self, row: pd.Series | None, devices: set[str], plugged: Mapping[str, str | None]
    ) -> dict[str, float]:
        """Set-point per device in ``devices`` from the plan's row at now (None: outside the
        plan, every device to 0). ``plugged``: vehicle -> charger it is plugged into."""
        return {}

    def failsafe_kw(self, portfolio: Portfolio, device: str) -> float | None:
        """The device's safe set-point when the plan or the device is lost; None: not this kind's."""
        return None
