"""Registry completeness (DESIGN.md section 4): every operator row is whole, its two evaluators
agree, its calculus is in `rules/`, no text name is registered twice, and every table line parses."""
from __future__ import annotations

import re
from collections import Counter
from importlib import resources

import numpy as np
import pytest
import sympy

from matcalc.calculus.rewrite import load_table, parse_rule
from matcalc.core.registry import FUNCTION_NAMES, OPS, OpInfo
from matcalc.errors import ShapeError

TABLES = ("differentials", "adjoints", "simplify")
# Operators that can occur around dX in a differential, besides those flagged `linear`.
ADJOINT_STRUCTURAL = ("add", "matmul", "mul", "hadamard", "transpose")
# Text names deliberately shared: diag(vector) builds a matrix, diag(matrix) takes its diagonal.
SHARED_PARSE_NAMES = {"diag": {"diag", "diagvec"}}
# Argument shapes tried in order; the first one the row's shape rule accepts is used.
UNARY_SHAPES = [((3, 4),), ((3, 3),), ((3, 1),)]
NARY_SHAPES = [((3, 4), (1, 1)), ((3, 4), (3, 4)), ((3, 4), (4, 2)),
               ((8, 1), (4, 2)),  # a column of 8 entries reshaped to 4 x 2 (reshape)
               ((6, 8), (2, 4), (3, 2)),  # a 6 x 8 matrix in blocks of 3 x 2 (rearrange)
               ((3, 3), (1, 1))]  # a square matrix and a scalar (matpow: X^k)


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
        if row.name == "matpow":  # an integer exponent (its `integer` declaration)
            args[1] = np.array([[rng.choice([3.0, 2.0, -1.0])]])
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
    if OPS[name].no_differential:  # no general rule (said why): rules for the forms around it instead
        assert not heads, f"operator {name!r} has a differential rule and says it has none"
        inside = [r.name for r in load_table("differentials") if r.lhs is not None
                  and f"{OPS[name].parse_name}(" in r.text.split("=>")[0]]
        assert inside, f"operator {name!r} has no differential rule at all (not even inside another operator)"
        return
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
    from matcalc.syntax.printing import to_latex, to_text
    from matcalc.verify.evaluate import numeric, symbolic
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


# ---- one row is the whole operator ---------------------------------------------------------------

SAMPLE_NAMES = ("A", "B", "C")  # C: the third argument of rearrange


def sample_expr(row: OpInfo):
    """(a tree with `row` at its root, the declarations of its symbols, the root's arguments):
    the first argument shapes its shape rule accepts, 1 x 1 arguments the number 2."""
    from matcalc.core import algebra as al
    from matcalc.core.expr import Num, Sym
    for shapes in (UNARY_SHAPES if row.arity == 1 else NARY_SHAPES):
        try:
            row.shape(shapes)
        except ShapeError:
            continue
        names = iter(SAMPLE_NAMES)
        args = tuple(al.num(2) if s == (1, 1) else Sym(next(names), s) for s in shapes)
        let = "; ".join(f"{a.name}: {a.shape[0]} x {a.shape[1]}" for a in args if not isinstance(a, Num))
        return al.build_op(row.name, args), let, args
    return None


def rule_lines(name: str) -> list:
    """The differential and adjoint rule lines whose pattern has operator `name` at its root."""
    return [r for t in ("differentials", "adjoints") for r in load_table(t) if r.heads and name in r.heads]


def missing_parts(row: OpInfo) -> list[str]:
    """What calculus row `row` lacks (empty when whole): a differential rule, an adjoint rule when
    it can hold dX, NumPy and SymPy evaluators, text and LaTeX forms that read back, a Python
    front-end function (call operators), English and Chinese labels on each of its rule lines."""
    import matcalc
    from matcalc.present.labels import RULES
    from matcalc.syntax.latex_in import latex_to_text
    from matcalc.syntax.printing import to_latex, to_text
    from matcalc.syntax.symbols import Term, front_end_names
    out = []
    if not any(r.name.startswith("d") for r in rule_lines(row.name) if r in load_table("differentials")) \
            and not row.no_differential:  # an operator without a general rule says why (matpow)
        out.append("differential rule")
    if (row.linear or row.name in ADJOINT_STRUCTURAL) and not [r for r in rule_lines(row.name)
                                                               if r in load_table("adjoints")]:
        out.append("adjoint rule")
    out += [f"{k} evaluator" for k, fn in (("NumPy", row.numpy), ("SymPy", row.sympy)) if not callable(fn)]
    for r in rule_lines(row.name):
        if len(r.labels) != 2 or not all(r.labels) or set(r.labels) & set(RULES["simplify"]):
            out.append(f"English and Chinese labels of {r.name}")
    sample = sample_expr(row)
    if sample is None:
        return [*out, "an argument shape its shape rule accepts"]
    e, let, args = sample
    if not row.public:
        return out  # an internal operator: never written by users, so no text, LaTeX or function
    for form, text in (("text", lambda: to_text(e)), ("LaTeX", lambda: latex_to_text(to_latex(e)))):
        try:
            if matcalc.parse(text(), let) != e:
                out.append(f"{form} form that reads back")
        except matcalc.MatcalcError:
            out.append(f"{form} form that reads back")
    if row.parse_name is not None:
        fn = getattr(matcalc, row.parse_name, None) if row.parse_name in front_end_names() else None
        if fn is None or fn(*(Term(a) for a in args)).expr != e:
            out.append("Python front-end function")
    return out


@pytest.mark.parametrize("row", op_ids())
def test_calculus_row_is_whole(row: OpInfo) -> None:
    assert missing_parts(row) == [], f"operator {row.name!r} is missing parts"


@pytest.fixture
def added_ops():
    """`add(row, rules)` registers a throwaway operator; afterwards the registry, the function
    names and the rule tables are exactly as before."""
    from matcalc.core import registry
    before = (dict(OPS), set(FUNCTION_NAMES), {t: load_table(t) for t in TABLES})
    added: list[str] = []

    def add(row: OpInfo, rules: dict[str, list[str]] | None = None) -> None:
        registry.register(row, rules)
        added.append(row.name)

    yield add
    for name in reversed(added):
        registry.unregister(name)
    assert (dict(OPS), set(FUNCTION_NAMES)) == before[:2]
    assert {t: [r.text for r in load_table(t)] for t in TABLES} == {t: [r.text for r in v]
                                                                    for t, v in before[2].items()}


def cube_row(**changes) -> OpInfo:
    """cube(A) = A.^3 entry by entry: a throwaway operator."""
    from dataclasses import replace
    row = OpInfo("cube", 1, lambda shapes: shapes[0], lambda a: a ** 3, lambda a: a.applyfunc(lambda e: e ** 3),
                 r"\operatorname{{cube}}\left({0}\right)", elementwise=True, parse_name="cube")
    return replace(row, **changes)


CUBE_RULES = {"differentials": ["d-cube : d(cube(A)) => 3*A.^2 .* dA        # label: cube rule | 立方法则"]}


def test_throwaway_operator_from_one_row_and_its_rule_lines(added_ops) -> None:
    """One row and one rule line: derived, printed (text and LaTeX read back), checked, explained."""
    import matcalc
    from matcalc.syntax.latex_in import latex_to_text
    added_ops(cube_row(), CUBE_RULES)
    assert missing_parts(OPS["cube"]) == []
    r = matcalc.grad("sum(cube(x))", "x")
    assert r["x"].text == "3*x.^2" and r.check.summary().startswith("verified")
    for lang, label in (("en", "cube rule"), ("zh", "立方法则")):
        assert label in r.steps_text(lang=lang)
    r = matcalc.grad("sum(cube(x))^2", "x")  # the gradient itself holds cube
    g = r["x"]
    assert "cube(x)" in g.text and r.check.summary().startswith("verified")
    assert matcalc.parse(g.text) == g.expr == matcalc.parse(latex_to_text(g.latex))
    x = matcalc.Vector("x", "n")
    assert matcalc.grad(matcalc.sum(matcalc.cube(x)), "x")["x"].text == "3*x.^2"


@pytest.mark.parametrize("changes, rules, missing", [
    ({}, {}, "differential rule"),
    ({}, {"differentials": ["d-cube : d(cube(A)) => 3*A.^2 .* dA"]}, "English and Chinese labels of d-cube"),
    ({"linear": True}, CUBE_RULES, "adjoint rule"),
    ({"latex": r"\left\lfloor{0}\right\rfloor"}, CUBE_RULES, "LaTeX form that reads back"),
    ({"latex": r"\mathcal{{Q}}\left({0}\right)"}, CUBE_RULES, None),  # the LaTeX reader comes from the row
    ({"public": False, "latex": "{0}"}, CUBE_RULES, None),
    ({"numpy": None}, CUBE_RULES, "NumPy evaluator"),
], ids=["no-rule", "no-label", "linear-no-adjoint", "latex-unreadable", "latex-own-command", "internal", "no-numpy"])
def test_completeness_fails_on_a_missing_part(added_ops, changes: dict, rules: dict, missing: str | None) -> None:
    added_ops(cube_row(**changes), rules)
    assert missing_parts(OPS["cube"]) == ([missing] if missing else [])


def test_square_argument_constraint_comes_from_the_row(added_ops) -> None:
    """A square-argument operator needs no list in the typer: its row's `arg_shape` is enough."""
    import matcalc
    from matcalc.core.registry import SCALAR
    added_ops(OpInfo("trsq", 1, lambda shapes: SCALAR, lambda a: np.array([[np.trace(a @ a)]]),
                     lambda a: sympy.Matrix([[(a * a).trace()]]), r"\operatorname{{trsq}}\left({0}\right)",
                     parse_name="trsq", arg_shape="square"),
              {"differentials": ["d-trsq : d(trsq(A)) => 2*tr(A*dA)        # label: trace of a square | 平方的迹"]})
    assert matcalc.parse("trsq(X*Y)").args[0].shape[0] == matcalc.parse("trsq(X*Y)").args[0].shape[1]
    with pytest.raises(ShapeError, match="trsq needs a square matrix"):
        matcalc.parse("trsq(A)", "A: 2 x 3")
    r = matcalc.grad("trsq(X)", "X")
    assert r["X"].text == "2*X'" and r.check.summary().startswith("verified")
