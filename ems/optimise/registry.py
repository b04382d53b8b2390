"""The asset kinds the optimiser knows, in order: one :class:`Component` each.

Building the model, reading a solve back, ``evaluate``, the rule-based fallback, the long-form
schedule and the set-points all loop over ``COMPONENTS``. The order matters where one part
uses another's variables (demand response reads the grid's) and gives the order of the rows
in ``schedule.csv``. A new kind is one module and one line here
(docs/adding-an-asset-kind.md).
"""

from __future__ import annotations

from ems.optimise.components.base import Component
from ems.optimise.components.battery import BatteryComponent
from ems.optimise.components.demand_response import DemandResponseComponent
from ems.optimise.components.ev import EvComponent
from ems.optimise.components.flexible_load import FlexibleLoadComponent
from ems.optimise.components.grid import GridComponent
from ems.optimise.components.load import LoadComponent
from ems.optimise.components.pv import PvComponent

COMPONENTS: tuple[Component, ...] = (
    GridComponent(),
    PvComponent(),
    LoadComponent(),
    BatteryComponent(),
    EvComponent(),
    DemandResponseComponent(),
    FlexibleLoadComponent(),
)

# Every objective term, each once, in the order the components declare them.
OBJECTIVE_TERMS: tuple[str, ...] = tuple(dict.fromkeys(term for c in COMPONENTS for term in c.objective_terms))


def component_of(kind: str) -> Component:
    """The registered component of ``kind``; KeyError names the kinds there are."""
    for component in COMPONENTS:
        if component.kind == kind:
            return component
    raise KeyError(f"no asset kind {kind!r} (known: {', '.join(c.kind for c in COMPONENTS)})")
