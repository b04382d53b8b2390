"""Hand a Pyomo model to HiGHS as matrices, and read its solution back as arrays.

The model stays written as Pyomo components; this compiles it once into column bounds, costs,
integrality and a sparse row matrix (``compile_model``) and passes them to ``highspy`` in one
call (``load``). Per-constraint loading through Pyomo's APPSI interface cost more than HiGHS
itself on the city-scale problem.

Layout: one column per variable, in the model's component order (a fixed variable is a column
with equal bounds, so a re-plan can move it), one row per active constraint in the model's
order (a ranged constraint keeps one row with both bounds). ``LoadedModel`` keeps where each
variable and constraint sits, so the re-planner can write into HiGHS and the read-back can take
the solution vector as numpy (:class:`ColumnValues`).
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from numbers import Number

import highspy
import numpy as np
import pyomo.environ as pyo
import scipy.sparse as sp
from pyomo.core.expr import numeric_expr, relational_expr
from pyomo.core.expr.numvalue import native_numeric_types
from pyomo.repn.standard_repn import generate_standard_repn

INF = highspy.kHighsInf
SOLUTION_ATTRIBUTE = "_ems_column_values"  # where a loaded solution hangs on the Pyomo model (see ColumnValues)


@dataclass
class CompiledModel:
    """The matrices of a Pyomo model, and where its variables and constraints sit in them. Once
    loaded, the re-planner keeps the costs and bounds equal to what HiGHS holds (it writes only
    those that differ); the matrix stays as compiled."""

    col_lower: np.ndarray
    col_upper: np.ndarray
    col_cost: np.ndarray
    integer: np.ndarray  # bool per column
    row_lower: np.ndarray
    row_upper: np.ndarray
    matrix: sp.csr_array  # rows x columns, by row
    offset: float
    sense: int  # 1 minimise, -1 maximise (HiGHS's ObjSense)
    col_of: dict  # id(VarData) -> column
    row_of: dict  # id(ConstraintData) -> row
    var_columns: dict  # Var component name -> (index keys, columns), in the component's order


@dataclass
class LoadedModel:
    """A model handed to HiGHS: the ``highspy`` object and the layout it was given."""

    highs: highspy.Highs
    compiled: CompiledModel
    integer: bool = field(init=False)

    def __post_init__(self) -> None:
        self.integer = bool(self.compiled.integer.any())


class ColumnValues:
    """A solution vector, read per Var component as ``{index: value}`` (``components.base.var_values``),
    each component built once with C-level ``dict(zip(...))`` instead of a Pyomo call per variable."""

    def __init__(self, values: np.ndarray, var_columns: dict) -> None:
        self.values = values
        self._var_columns = var_columns
        self._cache: dict[str, dict] = {}

    def of(self, name: str) -> dict | None:
        if name not in self._cache:
            if name not in self._var_columns:
                return None
            keys, cols = self._var_columns[name]
            self._cache[name] = dict(zip(keys, self.values[cols].tolist(), strict=True))
        return self._cache[name]

    def array_of(self, name: str) -> np.ndarray | None:
        """A Var component's values in its index order, as numpy (None: not in the vector)."""
        if name not in self._var_columns:
            return None
        return self.values[self._var_columns[name][1]]


def attach_solution(model: pyo.ConcreteModel, values: ColumnValues | None) -> None:
    """Make ``values`` what ``var_values`` reads for ``model``'s variables (None: Pyomo's own values again)."""
    object.__setattr__(model, SOLUTION_ATTRIBUTE, values)


def solution_values(model: pyo.ConcreteModel) -> np.ndarray | None:
    """The solution vector last attached to ``model`` (None: none)."""
    values = getattr(model, SOLUTION_ATTRIBUTE, None)
    return None if values is None else values.values


def compile_model(model: pyo.ConcreteModel) -> CompiledModel:
    """Columns, rows and objective of ``model`` (linear; one active objective)."""
    collecting = gc.isenabled()
    gc.disable()  # the walk makes many small lists; collecting them midway only costs time
    try:
        return _compile(model)
    finally:
        if collecting:
            gc.enable()


def _compile(model: pyo.ConcreteModel) -> CompiledModel:
    col_of: dict[int, int] = {}
    var_columns: dict[str, tuple[list, np.ndarray]] = {}
    bounds: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    first = 0
    for component in model.component_objects(pyo.Var, active=True, descend_into=True):
        keys, data = list(component.keys()), list(component.values())
        count = len(data)
        col_of.update(zip(map(id, data), range(first, first + count), strict=True))
        var_columns[component.name] = (keys, np.arange(first, first + count, dtype=np.int64))
        bounds.append(_column_bounds(data))
        first += count
    lower = np.concatenate([b[0] for b in bounds]) if bounds else np.zeros(0)
    upper = np.concatenate([b[1] for b in bounds]) if bounds else np.zeros(0)
    integer = np.concatenate([b[2] for b in bounds]) if bounds else np.zeros(0, dtype=bool)
    columns = len(lower)

    objectives = list(model.component_data_objects(pyo.Objective, active=True, descend_into=True))
    if len(objectives) != 1:
        raise ValueError(f"model {model.name!r} has {len(objectives)} active objectives; HiGHS takes one")
    objective = objectives[0]
    cost_cols: list[int] = []
    cost_vals: list[float] = []
    offset = _collect(objective.expr, 1.0, col_of, cost_cols, cost_vals)
    cost = np.zeros(columns)
    np.add.at(cost, np.asarray(cost_cols, dtype=np.int64), np.asarray(cost_vals, dtype=float))

    row_of: dict[int, int] = {}
    row_lower: list[float] = []
    row_upper: list[float] = []
    entry_rows: list[int] = []
    entry_cols: list[int] = []
    entry_vals: list[float] = []
    for con in model.component_data_objects(pyo.Constraint, active=True, descend_into=True):
        row = len(row_lower)
        before = len(entry_cols)
        lo, hi = _row(con, col_of, entry_cols, entry_vals)
        entry_rows.extend([row] * (len(entry_cols) - before))
        row_of[id(con)] = row
        row_lower.append(lo)
        row_upper.append(hi)
    matrix = sp.coo_array(
        (
            np.asarray(entry_vals, dtype=float),
            (np.asarray(entry_rows, dtype=np.int64), np.asarray(entry_cols, dtype=np.int64)),
        ),
        shape=(len(row_lower), columns),
    ).tocsr()  # duplicates summed
    matrix.eliminate_zeros()
    return CompiledModel(
        col_lower=lower,
        col_upper=upper,
        col_cost=cost,
        integer=integer,
        row_lower=np.asarray(row_lower),
        row_upper=np.asarray(row_upper),
        matrix=matrix,
        offset=float(offset),
        sense=1 if objective.sense == pyo.minimize else -1,
        col_of=col_of,
        row_of=row_of,
        var_columns=var_columns,
    )


def load(compiled: CompiledModel) -> LoadedModel:
    """Pass the compiled model to a new HiGHS in one call."""
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    m = compiled.matrix.tocsc()  # HiGHS keeps its matrix by column: given by row, its first change would convert it
    integrality = np.where(compiled.integer, int(highspy.HighsVarType.kInteger), int(highspy.HighsVarType.kContinuous))
    status = h.passModel(
        m.shape[1],
        m.shape[0],
        int(m.nnz),
        int(highspy.MatrixFormat.kColwise),
        compiled.sense,
        compiled.offset,
        compiled.col_cost,
        compiled.col_lower,
        compiled.col_upper,
        compiled.row_lower,
        compiled.row_upper,
        m.indptr.astype(np.int32),
        m.indices.astype(np.int32),
        m.data.astype(float),
        integrality.astype(np.int32),
    )
    if status == highspy.HighsStatus.kError:
        raise RuntimeError("HiGHS rejected the model (passModel)")
    return LoadedModel(highs=h, compiled=compiled)


def _column_bounds(data: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower and upper bounds and integrality of a Var component's data, in numpy where the
    bounds are plain numbers (a fixed variable: both bounds at its value)."""
    count = len(data)
    domains = {id(v._domain): v._domain for v in data}
    if len(domains) == 1:
        lo, hi, is_integer = _domain(next(iter(domains.values())))
        lower, upper, integer = np.full(count, lo), np.full(count, hi), np.full(count, is_integer)
    else:
        each = [_domain(v._domain) for v in data]
        lower = np.array([d[0] for d in each], dtype=float)
        upper = np.array([d[1] for d in each], dtype=float)
        integer = np.array([d[2] for d in each], dtype=bool)
    for attribute, array, pick in (("_lb", lower, np.fmax), ("_ub", upper, np.fmin)):
        given = [getattr(v, attribute) for v in data]
        plain = all(type(b) in _PLAIN for b in given)
        values = np.array(given if plain else [None if b is None else _number(b) for b in given], dtype=float)
        array[:] = pick(array, values)  # nan (no bound) leaves the domain's
    fixed = np.array([v._fixed for v in data], dtype=bool)
    if fixed.any():
        at = np.array([float(pyo.value(v.value)) for v, f in zip(data, fixed, strict=True) if f])
        lower[fixed] = at
        upper[fixed] = at
    return lower, upper, integer


_PLAIN = {type(None), *native_numeric_types}


def _domain(domain) -> tuple[float, float, bool]:
    lo, hi, step = domain.get_interval()
    if step not in (0, 1):
        raise ValueError(f"variable domain {domain} has step {step}; HiGHS takes continuous or integer columns")
    return (-INF if lo is None else float(lo), INF if hi is None else float(hi), step == 1)


def _number(value) -> float:
    return float(value) if type(value) in native_numeric_types else float(pyo.value(value))


def _row(con, col_of: dict, cols: list, vals: list) -> tuple[float, float]:
    """Append the row's terms; return its bounds with the constant moved into them. The body is
    the side with variables (``lhs - rhs`` when both have some), as Pyomo's own
    ``to_bounded_expression`` gives it: the re-planner writes bounds and coefficients in that form."""
    expr = con.expr
    kind = type(expr)
    if kind is relational_expr.EqualityExpression or kind is relational_expr.InequalityExpression:
        lhs, rhs = expr.args
        if not _variable(lhs):
            constant = _collect(rhs, 1.0, col_of, cols, vals)
            bound = _number(lhs) - constant
            return (bound, bound) if kind is relational_expr.EqualityExpression else (bound, INF)
        if _variable(rhs):
            constant = _collect(lhs, 1.0, col_of, cols, vals) + _collect(rhs, -1.0, col_of, cols, vals)
            bound = -constant
        else:
            bound = _number(rhs) - _collect(lhs, 1.0, col_of, cols, vals)
        return (bound, bound) if kind is relational_expr.EqualityExpression else (-INF, bound)
    lb, body, ub = con.to_bounded_expression()
    constant = _collect(body, 1.0, col_of, cols, vals)
    return (-INF if lb is None else _number(lb) - constant), (INF if ub is None else _number(ub) - constant)


# node type -> how _collect treats it; filled as types are met
_MONOMIAL = numeric_expr.MonomialTermExpression
_KIND: dict[type, str] = {}


def _kind(node) -> str:
    kind = _KIND.get(type(node))
    if kind is None:
        if type(node) in native_numeric_types or isinstance(node, Number):
            kind = "number"
        elif isinstance(node, numeric_expr.NPV_Mixin):  # no variables: its value
            kind = "constant"
        elif getattr(node, "is_variable_type", lambda: False)():
            kind = "var"
        elif isinstance(node, numeric_expr.MonomialTermExpression):
            kind = "monomial"
        elif isinstance(node, numeric_expr.SumExpression):  # LinearExpression too
            kind = "sum"
        elif isinstance(node, numeric_expr.NegationExpression):
            kind = "negation"
        elif isinstance(node, numeric_expr.ProductExpression):
            kind = "product"
        elif isinstance(node, numeric_expr.DivisionExpression):
            kind = "division"
        elif getattr(node, "is_named_expression_type", lambda: False)():
            kind = "named"
        else:
            kind = "other"
        _KIND[type(node)] = kind
    return kind


def _collect(node, scale: float, col_of: dict, cols: list, vals: list) -> float:
    """Append ``scale * node``'s linear terms as (column, coefficient); return its constant.

    The common shapes of a linear model (sums of coefficient-times-variable, named expressions)
    are walked here without building new expressions, a sum's plain terms inline; anything else
    goes through Pyomo's ``generate_standard_repn``, which also rejects what is not linear."""
    kind = _KIND.get(type(node)) or _kind(node)
    if kind == "sum":
        constant = 0.0
        add_col, add_val = cols.append, vals.append
        for arg in node.args:
            arg_type = type(arg)
            if arg_type is _MONOMIAL:  # the common term, first
                coef, var = arg._args_
                add_col(col_of[id(var)])
                add_val(scale * (coef if type(coef) in native_numeric_types else pyo.value(coef)))
                continue
            arg_kind = _KIND.get(arg_type) or _kind(arg)
            if arg_kind == "var":
                add_col(col_of[id(arg)])
                add_val(scale)
            elif arg_kind == "number":
                constant += scale * arg
            else:
                constant += _collect(arg, scale, col_of, cols, vals)
        return constant
    if kind == "monomial":
        coef, var = node.args
        cols.append(col_of[id(var)])
        vals.append(scale * (coef if type(coef) in native_numeric_types else pyo.value(coef)))
        return 0.0
    if kind == "var":
        cols.append(col_of[id(node)])
        vals.append(scale)
        return 0.0
    if kind == "number":
        return scale * node
    if not node.is_potentially_variable():
        return scale * pyo.value(node)
    if kind == "negation":
        return _collect(node.args[0], -scale, col_of, cols, vals)
    if kind == "named":
        return _collect(node.expr, scale, col_of, cols, vals)
    if kind == "product":
        first, second = node.args
        if not _variable(first):
            return _collect(second, scale * pyo.value(first), col_of, cols, vals)
        if not _variable(second):
            return _collect(first, scale * pyo.value(second), col_of, cols, vals)
    if kind == "division" and not _variable(node.args[1]):
        return _collect(node.args[0], scale / pyo.value(node.args[1]), col_of, cols, vals)
    repn = generate_standard_repn(node, quadratic=False)
    if repn.nonlinear_expr is not None:
        raise ValueError(f"expression {node} is not linear; HiGHS takes a linear model")
    for var, coef in zip(repn.linear_vars, repn.linear_coefs, strict=True):
        cols.append(col_of[id(var)])
        vals.append(scale * pyo.value(coef))
    return scale * pyo.value(repn.constant)


def _variable(node) -> bool:
    return type(node) not in native_numeric_types and node.is_potentially_variable()
