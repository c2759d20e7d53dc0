"""Registry completeness (DESIGN.md section 4): every operator row is whole, its two evaluators
agree, its calculus is in `rules/`, no text name is registered twice, and every table line parses."""
from __future__ import annotations

import re
from collections import Counter
from importlib import resources

import numpy as np
import pytest
import sympy

from matcalc.errors import ShapeError
from matcalc.registry import FUNCTION_NAMES, OPS, OpInfo
from matcalc.rewrite import load_table, parse_rule

TABLES = ("differentials", "adjoints", "simplify")
# Operators that can occur around dX in a differential, besides those flagged `linear`.
ADJOINT_STRUCTURAL = ("add", "matmul", "mul", "hadamard", "transpose")
# Text names deliberately shared: diag(vector) builds a matrix, diag(matrix) takes its diagonal.
SHARED_PARSE_NAMES = {"diag": {"diag", "diagvec"}}
# Argument shapes tried in order; the first one the row's shape rule accepts is used.
UNARY_SHAPES = [((3, 4),), ((3, 3),), ((3, 1),)]
NARY_SHAPES = [((3, 4), (1, 1)), ((3, 4), (3, 4)), ((3, 4), (4, 2))]


def op_ids() -> list:
    return [pytest.param(row, id=name) for name, row in OPS.items() if row.calculus]


def table_lines() -> list:
    """Every rule line of every table shipped in `matcalc.rules`, comments stripped."""
    out = []
    for path in sorted(resources.files("matcalc.rules").iterdir(), key=lambda p: p.name):
        if not path.name.endswith(".rules"):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0].strip()
            if code:
                out.append(pytest.param(code, id=f"{path.name}:{number}"))
    return out


# ---- the rows ------------------------------------------------------------------------------------

@pytest.mark.parametrize("row", op_ids())
def test_row_is_complete(row: OpInfo) -> None:
    assert callable(row.numpy), f"{row.name}: no NumPy evaluator"
    assert callable(row.sympy), f"{row.name}: no SymPy evaluator"
    assert isinstance(row.latex, str) and row.latex.strip(), f"{row.name}: no LaTeX template"
    arity = row.arity if row.arity is not None else 2
    for i in range(arity):
        assert f"{{{i}}}" in row.latex, f"{row.name}: LaTeX template {row.latex!r} never prints argument {i}"
    row.latex.format(*["x"] * (arity + 1))  # a valid template (norm2 takes an extra subscript)
    if row.parse_name is not None:
        assert row.parse_name in FUNCTION_NAMES


def argument_shapes(row: OpInfo) -> tuple:
    for shapes in (UNARY_SHAPES if row.arity == 1 else NARY_SHAPES):
        try:
            row.shape(shapes)
        except ShapeError:
            continue
        return shapes
    pytest.fail(f"{row.name}: no test shape accepted by its shape rule")


def random_argument(rng: np.random.Generator, shape: tuple[int, int], positive: bool) -> np.ndarray:
    """Mixed signs away from zero; square ones diagonally dominant (invertible, det > 0)."""
    if positive:
        x = rng.uniform(0.5, 2.0, shape)
    else:
        x = rng.choice([-1.0, 1.0], shape) * rng.uniform(0.3, 1.5, shape)
    if shape[0] == shape[1] and shape != (1, 1):
        x = 0.2 * x + shape[0] * np.eye(shape[0])
    return x


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("row", op_ids())
def test_evaluators_agree(row: OpInfo, seed: int) -> None:
    """NumPy and SymPy give the same numbers, at mixed signs when the operator allows them
    (so abs, sign, relu, step see both sides), else at positive entries (log, sqrt)."""
    rng = np.random.default_rng(seed)
    shapes = argument_shapes(row)
    for positive in (False, True):
        args = [random_argument(rng, s, positive) for s in shapes]
        if row.name == "pow":
            args[1] = np.array([[rng.choice([3.0, 0.5, -1.0])]])
        want = np.asarray(row.numpy(*args), dtype=float)
        if np.all(np.isfinite(want)):
            break
    assert np.all(np.isfinite(want)), f"{row.name}: no finite value at positive diagonally dominant inputs"
    assert want.ndim == 2 and want.shape == row.shape(shapes), f"{row.name}: NumPy value has shape {want.shape}"
    got = row.sympy(*(sympy.Matrix(a.tolist()) for a in args))
    got = np.array(sympy.Matrix(got).evalf(30).tolist(), dtype=float)
    assert got.shape == want.shape, f"{row.name}: SymPy shape {got.shape}, NumPy {want.shape}"
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=f"{row.name} at {args}")


# ---- the calculus lives in rules/ ----------------------------------------------------------------

@pytest.mark.parametrize("name", [n for n, r in OPS.items() if r.calculus])
def test_operator_has_differential_rule(name: str) -> None:
    heads = [r.name for r in load_table("differentials") if r.heads is not None and name in r.heads]
    assert heads, f"operator {name!r} has no rule d(...) in rules/differentials.rules whose pattern head is it"


@pytest.mark.parametrize("name", sorted({n for n, r in OPS.items() if r.linear} | set(ADJOINT_STRUCTURAL)))
def test_linear_operator_has_adjoint_rule(name: str) -> None:
    heads = [r.name for r in load_table("adjoints") if r.heads is not None and name in r.heads]
    assert heads, f"operator {name!r} can hold dX but has no trace trick in rules/adjoints.rules"


def test_no_parse_name_registered_twice() -> None:
    count = Counter(r.parse_name for r in OPS.values() if r.parse_name is not None)
    for parse_name, n in count.items():
        if n > 1:
            sharing = {name for name, r in OPS.items() if r.parse_name == parse_name}
            assert sharing == SHARED_PARSE_NAMES.get(parse_name), f"text name {parse_name!r} used by {sharing}"
    for parse_name, rows in SHARED_PARSE_NAMES.items():
        assert {name for name, r in OPS.items() if r.parse_name == parse_name} == rows


def test_row_names_match_keys() -> None:
    assert all(name == row.name for name, row in OPS.items())


# ---- the tables ----------------------------------------------------------------------------------

def test_all_tables_are_shipped() -> None:
    shipped = {p.name for p in resources.files("matcalc.rules").iterdir()}
    assert {f"{t}.rules" for t in TABLES} <= shipped


@pytest.mark.parametrize("line", table_lines())
def test_rule_line_parses(line: str) -> None:
    rule = parse_rule(line)
    assert rule.name == re.match(r"\s*([A-Za-z][\w-]*)", line).group(1)
    assert rule.fn is not None or (rule.lhs is not None and rule.rhs is not None)


@pytest.mark.parametrize("table", TABLES)
def test_rule_names_unique(table: str) -> None:
    names = Counter(r.name for r in load_table(table))
    assert not [n for n, c in names.items() if c > 1], f"duplicate rule names in {table}: {names.most_common(3)}"


@pytest.mark.parametrize("table", TABLES)
def test_every_line_is_loaded(table: str) -> None:
    text = resources.files("matcalc.rules").joinpath(f"{table}.rules").read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln.split("#", 1)[0].strip()]
    assert len(load_table(table)) == len(lines)


CLAIM_ONLY = {"literal", "entry"}


def test_claim_only_rows_are_the_known_ones() -> None:
    """Rows without calculus exist only to read and evaluate claims written entry by entry."""
    assert {n for n, r in OPS.items() if not r.calculus} == CLAIM_ONLY


def test_claim_only_rows_evaluate_alike_and_print_back() -> None:
    import numpy as np
    import sympy

    import matcalc
    from matcalc.evaluate import numeric, symbolic
    from matcalc.printing import to_latex, to_text
    let = "u: 2; x: 3; W: 2 x 3"
    e = matcalc.parse("[u(1)*x(2), W(2,3); x(1)^2, 1/u(2)]", let)
    assert e.shape == (2, 2) and matcalc.parse(to_text(e), let) == e
    assert r"\begin{bmatrix}" in to_latex(e)
    env = {"u": np.array([[2.0], [4.0]]), "x": np.array([[1.0], [3.0], [5.0]]), "W": np.arange(6.0).reshape(2, 3)}
    got = numeric([e], env, {})[0]
    assert got.tolist() == [[6.0, 5.0], [1.0, 0.25]]
    exact = symbolic([e], {k: sympy.Matrix(v.tolist()) for k, v in env.items()}, {})[0]
    assert [[float(v) for v in row] for row in exact.tolist()] == got.tolist()
    with pytest.raises(matcalc.UnsupportedError, match="no differential rule for 'literal'"):
        matcalc.grad("sum([u(1), u(2)])", "u", "u: 2")
