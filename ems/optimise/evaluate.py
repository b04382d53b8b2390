"""Recompute a schedule's objective terms from its powers alone, in numpy.

This is the independent physics and cost check: the solver's objective must equal what this
module computes from the solved powers, and the rule-based baseline is priced by the same code,
so plan and baseline are compared on one basis. Each asset kind prices its own part
(``Component.evaluate``).
"""

from __future__ import annotations

import pandas as pd

from ems.optimise.components.base import Evaluation, storage_soc_kwh
from ems.optimise.components.load import load_shed_kw
from ems.optimise.problem import Problem
from ems.optimise.registry import COMPONENTS, OBJECTIVE_TERMS
from ems.optimise.report import PlanReport

__all__ = ["evaluate", "evaluate_ledger", "load_shed_kw", "storage_soc_kwh"]


def evaluate(problem: Problem, power_kw: pd.DataFrame) -> tuple[dict[str, float], PlanReport, pd.DataFrame]:
    """(objective terms [yen], the plan report's figures, recomputed SoC at the end of each step)."""
    ledger = evaluate_ledger(problem, power_kw)
    return ledger.terms, ledger.report, pd.DataFrame(ledger.soc_kwh, index=power_kw.index)


def evaluate_ledger(problem: Problem, power_kw: pd.DataFrame) -> Evaluation:
    """``evaluate``'s figures as the ledger, the SoC left as arrays (a solved plan reads its own)."""
    ledger = Evaluation(terms=dict.fromkeys(OBJECTIVE_TERMS, 0.0), report=PlanReport())
    for component in COMPONENTS:
        component.evaluate(problem, power_kw, ledger)
    return ledger
