"""BCP mode: keep shelters' critical loads up through an outage with stationary batteries and the
taxi fleet as mobile batteries. ``plan_bcp(problem) -> BcpPlan`` is pure (docs/bcp.md)."""

from ems.bcp.inputs import bcp_problem_from_portfolio
from ems.bcp.outage import Outage, OutageError, load_outage
from ems.bcp.plan import BcpPlan, Visit
from ems.bcp.problem import BcpProblem, BcpProblemError
from ems.bcp.solve import BcpSolveError, plan_bcp

__all__ = [
    "BcpPlan",
    "BcpProblem",
    "BcpProblemError",
    "BcpSolveError",
    "Outage",
    "OutageError",
    "Visit",
    "bcp_problem_from_portfolio",
    "load_outage",
    "plan_bcp",
]
