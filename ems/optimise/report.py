"""The figures a plan reports beside its power: :class:`PlanReport` (``Schedule.report``).

Energy and emissions from the powers alone (``evaluate``), the shortfalls of the soft
constraints, and, for a solved plan, the solver's own figures. ``as_dict`` gives the flat
names ``summary.json`` has always used.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass
class PlanReport:
    co2_kg: float = 0.0
    grid_import_kwh: float = 0.0
    grid_export_kwh: float = 0.0
    peak_import_kw: float = 0.0
    pv_kwh: float = 0.0
    pv_curtailed_kwh: float = 0.0
    # shortfalls of the soft constraints
    ev_target_shortfall_kwh: float = 0.0
    drive_shortfall_kwh: float = 0.0
    bcp_shortfall_kwh_h: float = 0.0  # kWh below a BCP reserve, times the hours it lasted
    dr_shortfall_kwh: float = 0.0
    load_shed_total_kwh: float = 0.0
    # figures of further asset kinds, each under its own name (docs/adding-an-asset-kind.md)
    kind_figures: dict[str, float] = field(default_factory=dict)
    # the solver's figures: None for a rule-based schedule
    solver_objective_yen: float | None = None
    binary_count: int | None = None
    simultaneous_charge_discharge_kw: float | None = None  # both should be zero in every plan
    simultaneous_import_export_kw: float | None = None
    load_s: float | None = None  # model handed to HiGHS
    read_s: float | None = None  # values read back and checked
    model_reused: bool | None = None  # re-planner: the loaded model was updated (False: built and loaded)

    def add(self, name: str, value: float) -> None:
        """Add to a figure of a further kind (created at 0)."""
        self.kind_figures[name] = self.kind_figures.get(name, 0.0) + value

    def as_dict(self) -> dict[str, float]:
        """Every figure under its flat name (kind figures included), solver figures only when known."""
        flat: dict[str, float] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if item.name == "kind_figures":
                flat |= value
            elif value is not None:
                flat[item.name] = float(value)
        return flat
