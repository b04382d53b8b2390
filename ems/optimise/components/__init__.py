"""One module per asset kind: its constraint function and its Component (docs/adding-an-asset-kind.md)."""

from ems.optimise.components.balance import add_site_balance_constraints
from ems.optimise.components.battery import add_battery_constraints
from ems.optimise.components.demand_response import add_demand_response_constraints
from ems.optimise.components.ev import add_ev_constraints
from ems.optimise.components.grid import add_grid_constraints, add_grid_exchange_cuts
from ems.optimise.components.load import add_load_constraints
from ems.optimise.components.pv import add_pv_constraints

__all__ = [
    "add_battery_constraints",
    "add_demand_response_constraints",
    "add_ev_constraints",
    "add_grid_constraints",
    "add_grid_exchange_cuts",
    "add_load_constraints",
    "add_pv_constraints",
    "add_site_balance_constraints",
]
