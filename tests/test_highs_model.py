"""The matrix hand-over: a Pyomo model compiled to matrices gives HiGHS the model APPSI gives it."""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
import pytest

from ems.optimise.components.base import var_values
from ems.optimise.highs_model import INF, ColumnValues, attach_solution, compile_model, load
from ems.optimise.model import build_model
from ems.optimise.solve import _highs
from tests.optimise_fixtures import reference_problem


def small_model() -> pyo.ConcreteModel:
    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(0, 8))
    m.y = pyo.Var([1, 2], domain=pyo.NonNegativeReals, bounds=lambda _m, i: (None, 5 * i))
    m.on = pyo.Var(domain=pyo.Binary)
    m.w = pyo.Var()
    m.w.fix(4.0)
    m.cost = pyo.Expression(expr=3 * m.x + 2 * (m.y[1] - 1) + m.y[2] / 4)
    m.objective = pyo.Objective(expr=m.cost + 7, sense=pyo.minimize)
    m.upper = pyo.Constraint(expr=2 * m.x + 3 * m.y[1] <= 10)
    m.lower = pyo.Constraint(expr=m.x - m.y[2] >= 1)  # Pyomo keeps it as 1 <= ...: a lower bound
    m.both = pyo.Constraint(expr=m.x == 2 * (m.y[1] + 1) - m.w / 2)  # variables both sides: lhs - rhs
    m.ranged = pyo.Constraint(expr=pyo.inequality(0, m.x + m.y[1] + m.y[1], 5))  # a repeated variable
    m.switch = pyo.Constraint(expr=m.y[2] <= 10 * m.on)
    return m


def test_every_linear_shape_becomes_its_row():
    m = small_model()
    c = compile_model(m)
    col = {
        name: c.col_of[id(var)] for name, var in (("x", m.x), ("y1", m.y[1]), ("y2", m.y[2]), ("on", m.on), ("w", m.w))
    }
    np.testing.assert_allclose(c.col_lower[[col["x"], col["y1"], col["y2"], col["on"], col["w"]]], [0, 0, 0, 0, 4])
    np.testing.assert_allclose(c.col_upper[[col["x"], col["y1"], col["y2"], col["on"], col["w"]]], [8, 5, 10, 1, 4])
    assert c.integer[col["on"]] and not c.integer[col["x"]]
    assert c.col_cost[col["x"]] == 3 and c.col_cost[col["y1"]] == 2 and c.col_cost[col["y2"]] == 0.25
    assert c.offset == pytest.approx(5.0)  # 7 - 2
    dense = c.matrix.toarray()

    def row(name):
        r = c.row_of[id(getattr(m, name))]
        return dense[r], c.row_lower[r], c.row_upper[r]

    coefs, lo, hi = row("upper")
    assert (coefs[col["x"]], coefs[col["y1"]], lo, hi) == (2, 3, -INF, 10)
    coefs, lo, hi = row("lower")
    assert (coefs[col["x"]], coefs[col["y2"]], lo, hi) == (1, -1, 1, INF)
    coefs, lo, hi = row("both")  # x - 2 y1 + w/2 == 2
    assert (coefs[col["x"]], coefs[col["y1"]], coefs[col["w"]], lo, hi) == (1, -2, 0.5, 2, 2)
    coefs, lo, hi = row("ranged")
    assert (coefs[col["x"]], coefs[col["y1"]], lo, hi) == (1, 2, 0, 5)
    coefs, lo, hi = row("switch")
    assert (coefs[col["y2"]], coefs[col["on"]], lo, hi) == (1, -10, -INF, 0)


def test_a_nonlinear_model_is_refused_by_name():
    m = small_model()
    m.product = pyo.Constraint(expr=m.x * m.y[1] <= 1)
    with pytest.raises(ValueError, match="not linear"):
        compile_model(m)


def test_the_reference_model_solves_as_through_appsi_and_reads_back_from_the_vector():
    problem = reference_problem()
    build = build_model(problem)
    loaded = load(compile_model(build.model))
    loaded.highs.run()
    ours = loaded.highs.getInfo().objective_function_value
    other = build_model(problem)
    solver = _highs(problem.settings)
    results = solver.solve(other.model)
    assert ours == pytest.approx(results.best_feasible_objective, rel=1e-9)
    # the same bounds and costs column for column
    lp, theirs = solver._solver_model.getLp(), solver._pyomo_var_to_solver_var_map
    cost, lower, upper = np.array(lp.col_cost_), np.array(lp.col_lower_), np.array(lp.col_upper_)
    compiled = loaded.compiled
    for var, twin in zip(
        build.model.component_data_objects(pyo.Var), other.model.component_data_objects(pyo.Var), strict=True
    ):
        if id(twin) in theirs and not twin.fixed:  # APPSI folds a fixed variable into the constant
            ours_col, their_col = compiled.col_of[id(var)], theirs[id(twin)]
            assert (
                compiled.col_cost[ours_col],
                compiled.col_lower[ours_col],
                compiled.col_upper[ours_col],
            ) == pytest.approx((cost[their_col], lower[their_col], upper[their_col])), var.name
    # read-back: from the solution vector while it is attached, from Pyomo's values after
    values = np.asarray(loaded.highs.getSolution().col_value)
    attach_solution(build.model, ColumnValues(values, compiled.var_columns))
    imports = var_values(build.model.grid_import_kw)
    key = max(imports, key=imports.__getitem__)
    assert imports[key] > 0 and imports[key] == values[compiled.col_of[id(build.model.grid_import_kw[key])]]
    attach_solution(build.model, None)
    assert var_values(build.model.grid_import_kw)[key] == 0.0  # Pyomo's variables were never loaded
