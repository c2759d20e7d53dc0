"""Every rule line is verified by tests generated from its table (DESIGN.md section 3).

For each rule the pattern is typed with the rule's own conventions (a one-letter lowercase name is
1 x 1, any other name any shape), so unification leaves every dimension the rule does not tie
together distinct: those get distinct sizes 2, 3, 4, ..., which makes a missing transpose a shape
error or a wrong number. Random values honour the conditions and the operators' domains, and:

* differential rules `d(P) => RHS` are compared with a central difference of P (Richardson);
* adjoint rules `tr(G'*P) => sum tr(G2'*Z)` are identities between linear forms in the
  differentials: for random G and differentials, tr(G'*P) = sum tr(G2'*Z);
* simplify rules `L => R` are identities: L and R are equal at random points;
* Python rules are run on hand-built inputs: equal value, smaller tree.

A new rule line gets its tests automatically; a new condition or Python rule needs a sampler or
cases here, and its test fails until it has them.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

import numpy as np
import pytest

from matcalc.calculus.adjoint import targets
from matcalc.calculus.rewrite import (
    PYTHON_RULES,
    Rule,
    first_match,
    instantiate,
    is_scalar_var,
    load_table,
    parse_rule,
    predicates,
)
from matcalc.core import algebra as al
from matcalc.core import properties
from matcalc.core.expr import PROPERTIES, Dif, Expr, Op, Sym, walk
from matcalc.core.registry import dim_names, dim_size
from matcalc.errors import MatcalcError
from matcalc.syntax.parser import Syn, parse_decls, parse_syn
from matcalc.syntax.printing import to_text
from matcalc.syntax.typer import CONSTRUCTORS, to_expr
from matcalc.verify.evaluate import numeric

SEEDS = (0, 1, 2)
EXPONENTS = (Fraction(3), Fraction(1, 2), Fraction(-1))  # for `number(p)`: one per seed
DIFF_RTOL = 1e-6
IDENTITY_RTOL = 1e-10
# Conditions that only say which part holds the differential; the sampler handles them by role.
ROLE_CONDITIONS = {"linear", "fixed", "constant", "variable", "differential", "number", "simple", "compound"}
SHAPE_CONDITIONS = {"scalar", "vector", "square", "onerow", "generic"}  # declared; generic: a square symbol


def rules_of(table: str, python: bool = False) -> list:
    rules = [r for r in load_table(table) if (r.fn is not None) == python]
    return [pytest.param(r, id=r.name) for r in rules]


# ---- building an instance of a pattern -----------------------------------------------------------

@dataclass
class Instance:
    """A pattern typed with fresh symbols, sizes for its dimensions, and a random point."""

    expr: Expr
    sizes: dict[str, int]
    values: dict[str, np.ndarray]
    directions: dict[str, np.ndarray]


def syn_names(s: Syn) -> list[str]:
    """The pattern variables of a Syn tree, in order of appearance."""
    out: list[str] = []
    if s.kind == "name" and s.value not in CONSTRUCTORS:
        out.append(s.value)
    for a in s.args:
        out += [n for n in syn_names(a) if n not in out]
    return out


def syn_replace(s: Syn, new: dict[str, Syn]) -> Syn:
    if s.kind == "name" and s.value in new:
        return new[s.value]
    return Syn(s.kind, s.value, tuple(syn_replace(a, new) for a in s.args), s.span)


def conditions(rule: Rule) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for pred, var in rule.conds:
        if pred not in ROLE_CONDITIONS | SHAPE_CONDITIONS | set(PROPERTIES):
            pytest.fail(f"rule {rule.name}: no sampler for condition {pred}({var}); teach tests/test_rules.py")
        out.setdefault(var, set()).add(pred)
    return out


def is_scalar_name(name: str, conds: dict[str, set[str]]) -> bool:
    return is_scalar_var(name) or "scalar" in conds.get(name, ())


def typed_pattern(rule: Rule, exponent: Fraction, vectors: frozenset[str] = frozenset()) -> tuple[Expr, dict]:
    """The rule's pattern as an Expr, and the symbol standing for each pattern variable. Scalar
    names are declared 1 x 1; other names become `X_<name>` (capital first letter: any shape) or,
    if in `vectors` or under `vector(.)`, `v_<name>` (a column vector of unknown length);
    property conditions are declared; `number(p)` variables are replaced by `exponent`."""
    conds, new, decls, names = conditions(rule), {}, [], {}
    for name in syn_names(rule.pattern):
        c = conds.get(name, set())
        props = " ".join(sorted(c & set(PROPERTIES)))
        if "number" in c:
            new[name] = Syn("number", exponent)
            continue
        if is_scalar_name(name, conds):
            names[name] = name
            decls.append(f"{name}: scalar {props}")
            continue
        names[name] = f"v_{name}" if name in vectors or "vector" in c else f"X_{name}"
        new[name] = Syn("name", names[name])
        if "compound" in c:  # a compound operand: the sum of two symbols
            new[name] = Syn("add", None, (new[name], Syn("name", names[name] + "_2")))
        if "square" in c or "generic" in c:
            decls.append(f"{names[name]}: s_{name} x s_{name} {props}")
        elif "onerow" in c:
            decls.append(f"{names[name]}: 1 x c_{name} {props}")
        elif props:
            decls.append(f"{names[name]}: {props}")
    new["ones"] = Syn("name", "O_ones")  # a constant whose size only the match can tell: type it as a
    new["eye"] = Syn("name", "I_eye")  # matrix of unknown size (square for eye), then make it the constant
    syn = syn_replace(rule.pattern, new)
    e = to_expr(rule.text, syn, parse_decls("; ".join(decls + ["I_eye: s_eye x s_eye"])))
    e = replace_symbol(e, "I_eye", lambda sym: al.eye(sym.shape[0]))
    return replace_symbol(e, "O_ones", lambda sym: al.Num(Fraction(1), sym.shape)), names


def replace_symbol(e: Expr, name: str, make: Callable[[Sym], Expr]) -> Expr:
    if isinstance(e, Sym):
        return make(e) if e.name == name else e
    if isinstance(e, Op):
        return al.build_op(e.op, tuple(replace_symbol(a, name, make) for a in e.args))
    return e


def op_names(e: Expr) -> frozenset[str]:
    return frozenset(n.op for n in walk([e]) if isinstance(n, Op))


def variants(rule: Rule, exponent: Fraction) -> list[tuple[Expr, dict]]:
    """The typed pattern, plus each variant with one variable a column vector that brings in an
    operator the general one lacks (`diag` of a vector besides `diag` of a matrix)."""
    out = [typed_pattern(rule, exponent)]
    conds = conditions(rule)
    for name in syn_names(rule.pattern):
        if is_scalar_name(name, conds) or conds.get(name, set()) - ROLE_CONDITIONS:  # shape or property fixed
            continue
        try:
            e, names = typed_pattern(rule, exponent, frozenset({name}))
        except MatcalcError:
            continue
        if all(op_names(e) != op_names(o) for o, _ in out):
            out.append((e, names))
    return out


def domains(e: Expr, flags: frozenset[str] = frozenset(), out: dict[str, set[str]] | None = None) -> dict:
    """What each symbol's values must satisfy, from the operators above it: `positive` under
    log, sqrt and a fractional power, `conditioned` (square, well-conditioned) under inv/det/logdet."""
    out = {} if out is None else out
    if isinstance(e, Sym):
        out.setdefault(e.name, set()).update(flags)
    for i, a in enumerate(e.children):
        f = flags
        if isinstance(e, Op) and e.op in ("log", "sqrt"):
            f = f | {"positive"}
        if isinstance(e, Op) and e.op == "pow" and i == 0 and e.args[1].value.denominator != 1:
            f = f | {"positive"}
        if isinstance(e, Op) and e.op in ("inv", "det", "logdet"):
            f = f | {"conditioned"}
        domains(a, f, out)
    return out


def sample(rng: np.random.Generator, shape: tuple[int, int], need: set[str], props: frozenset[str]) -> np.ndarray:
    """A value away from zero and from every kink; honours `need` and the declared properties."""
    r, c = shape
    square = r == c
    if properties.constant(props):  # a constant (the integer k of X^k): the property table's draw
        return properties.sample_float(props, r, c, rng)
    if "spd" in props and square:
        b = rng.standard_normal((r, r))
        return b @ b.T + r * np.eye(r)
    positive = "positive" in need or "positive" in props
    if square and ("conditioned" in need or "invertible" in props):
        noise = rng.uniform(0.05, 0.3, shape) if positive else 0.3 * away_from_zero(rng, shape)
        x = r * np.eye(r) + noise  # diagonally dominant with positive diagonal: det > 0
    else:
        x = rng.uniform(0.5, 2.0, shape) if positive else away_from_zero(rng, shape)
    if "symmetric" in props and square:
        x = (x + x.T) / 2
    if "diagonal" in props and square:
        x = np.diag(np.diag(x))
    if "probability" in props:  # nonnegative columns summing to 1
        x = rng.uniform(0.1, 1.0, shape)
        x = x / x.sum(axis=0, keepdims=True)
    return x


def away_from_zero(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.3, 1.5, shape)


def direction(rng: np.random.Generator, shape: tuple[int, int], props: frozenset[str]) -> np.ndarray:
    v = rng.standard_normal(shape)
    if props & {"symmetric", "spd"}:
        v = (v + v.T) / 2
    if "diagonal" in props:
        v = np.diag(np.diag(v))
    return v


def symbols(e: Expr) -> list[Sym]:
    return [n for n in walk([e]) if isinstance(n, Sym)]


def size_of(d, sizes: dict[str, int]) -> int:
    return dim_size(d, sizes)  # a name, an integer or a product of them (m*n)


def make_instance(e: Expr, seed: int, frozen: set[str] = frozenset()) -> Instance:
    """Distinct sizes for the distinct dimensions (2, 3, 4, ... for seed 0, 3, 4, 5, ... for seed
    1, ...: square operands are seen at several sizes); a random point and direction per symbol
    (direction zero for the symbols in `frozen`)."""
    sizes: dict[str, int] = {}
    for s in walk([e]):  # every node: constants such as ones(n,n) have sizes too
        for d in (n for dim in s.shape for n in dim_names(dim)):
            if d not in sizes:
                sizes[d] = 2 + seed % 3 + len(sizes)
    rng = np.random.default_rng(seed)
    need = domains(e)
    values, dirs = {}, {}
    for s in symbols(e):
        shape = (size_of(s.shape[0], sizes), size_of(s.shape[1], sizes))
        props = frozenset(p for p in PROPERTIES if s.has(p))
        values[s.name] = sample(rng, shape, need.get(s.name, set()), props)
        dirs[s.name] = np.zeros(shape) if s.name in frozen else direction(rng, shape, props)
    return Instance(e, sizes, values, dirs)


def matching(rule: Rule, e: Expr, preds: dict, seed_binds: dict | None = None) -> dict:
    """The engine's own matcher must find the rule on its own pattern with its conditions holding."""
    found = first_match([rule], e, preds, seed_binds)
    assert found is not None, f"rule {rule.name} does not match its own pattern instance {to_text(e)}"
    return found[1]


def close(got: np.ndarray, want: np.ndarray, rtol: float, what: str) -> None:
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert np.all(np.isfinite(want)), f"{what}: reference not finite (sampling outside the domain)"
    err = float(np.max(np.abs(got - want), initial=0.0))
    scale = max(float(np.max(np.abs(want), initial=0.0)), float(np.max(np.abs(got), initial=0.0)), 1.0)
    assert err <= rtol * scale, f"{what}: max error {err:.3g} (scale {scale:.3g})\n got  {got}\n want {want}"


# ---- differential rules --------------------------------------------------------------------------

def richardson(f: Callable[[float], np.ndarray], h: float = 1e-3) -> np.ndarray:
    """f'(0) by central differences with one Richardson step: error O(h^4)."""
    def central(k: float) -> np.ndarray:
        return (f(k) - f(-k)) / (2 * k)
    return (4 * central(h / 2) - central(h)) / 3


def dname(name: str) -> str:
    return f"d:{name}"


def check_differential(rule: Rule, seed: int) -> None:
    conds = conditions(rule)
    for e, names in variants(rule, EXPONENTS[seed % len(EXPONENTS)]):
        frozen = {names[v] for v, c in conds.items() if "constant" in c}
        inst = make_instance(e, seed, frozen)
        wrt = frozenset(inst.values) - frozen
        b = matching(rule, e, predicates(wrt))

        def differential_of(name: str, b: dict = b, wrt: frozenset = wrt) -> Expr | None:
            if not (name.startswith("d") and name[1:] in b):
                return None
            part = b[name[1:]]
            if not part.syms & wrt:
                return al.zero(part.shape)
            assert isinstance(part, Sym), f"{name[1:]} bound to a compound {to_text(part)}: test needs a Sym"
            return Sym(dname(part.name), part.shape)

        rhs = instantiate(rule, rule.rhs, b, e.shape, differential_of)
        env = {**inst.values, **{dname(k): v for k, v in inst.directions.items()}}
        got = numeric([rhs], env, inst.sizes)[0]

        def along(t: float, e: Expr = e, inst: Instance = inst) -> np.ndarray:
            moved = {k: v + t * inst.directions[k] for k, v in inst.values.items()}
            return numeric([e], moved, inst.sizes)[0]

        want = richardson(along)
        close(got, want, DIFF_RTOL, f"{rule.name} on {to_text(e)} (sizes {inst.sizes}, seed {seed})")


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"s{s}")
@pytest.mark.parametrize("rule", rules_of("differentials"))
def test_differential_rule(rule: Rule, seed: int) -> None:
    check_differential(rule, seed)


# ---- adjoint rules -------------------------------------------------------------------------------

def substitute(e: Expr, new: dict[Expr, Expr]) -> Expr:
    if e in new:
        return new[e]
    if isinstance(e, Op):
        return al.build_op(e.op, tuple(substitute(a, new) for a in e.args))
    return e


def trace_sum(pairs: list[tuple[Expr, Expr]], inst: Instance, g_value: np.ndarray, scale: float) -> float:
    """sum tr(L'*Z) over the pairs, each differential dX set to scale*V_X."""
    plain = {n: Sym(dname(n.var.name), n.shape) for p in pairs for n in walk(list(p)) if isinstance(n, Dif)}
    env = {**inst.values, "G": g_value, **{dname(k): scale * v for k, v in inst.directions.items()}}
    total = 0.0
    for left, z in pairs:
        lv, zv = numeric([substitute(left, plain), substitute(z, plain)], env, inst.sizes)
        assert lv.shape == zv.shape, f"left factor {lv.shape} vs part {zv.shape}"
        total += float(np.sum(lv * zv))
    return total


def check_adjoint(rule: Rule, seed: int) -> None:
    conds = conditions(rule)
    # The differential sits in the parts said to be linear, and in the parts that receive a left
    # factor (unless a condition says they are fixed: then the rule is wrong and the check says so).
    receiving = {z for z, _ in targets(rule) if "fixed" not in conds.get(z, ())}
    linear = {v for v, c in conds.items() if c & {"linear", "differential"}} | receiving
    for e, names in variants(rule, EXPONENTS[seed % len(EXPONENTS)]):
        inst = make_instance(e, seed)
        lin = {names[v] for v in linear}
        node = substitute(e, {s: Dif(s) for s in symbols(e) if s.name in lin})  # P, linear in its dX
        g_value = away_from_zero(np.random.default_rng(1000 + seed), tuple(size_of(d, inst.sizes) for d in e.shape))
        g = Sym("G", e.shape)
        b = matching(rule, node, predicates(frozenset(lin)), {"G": g})
        before = [(g, node)]
        after = [(instantiate(rule, gsyn, b, b[part].shape), b[part]) for part, gsyn in targets(rule)]
        # Identity of linear forms: a fixed summand of a linear form is zero, so only the part
        # that changes with the differentials is compared (this matters for linearity-one).
        lhs = trace_sum(before, inst, g_value, 1.0) - trace_sum(before, inst, g_value, 0.0)
        rhs = trace_sum(after, inst, g_value, 1.0)
        where = f"{rule.name} on tr(G'*({to_text(node)})) (sizes {inst.sizes}, seed {seed})"
        close(np.array([[rhs]]), np.array([[lhs]]), IDENTITY_RTOL, where)
        assert trace_sum(after, inst, g_value, 0.0) == 0.0, f"{where}: right side not linear in the differentials"


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"s{s}")
@pytest.mark.parametrize("rule", rules_of("adjoints"))
def test_adjoint_rule(rule: Rule, seed: int) -> None:
    check_adjoint(rule, seed)


# ---- simplify rules ------------------------------------------------------------------------------

def check_simplify(rule: Rule, seed: int) -> None:
    conds = conditions(rule)
    for e, names in variants(rule, EXPONENTS[seed % len(EXPONENTS)]):
        frozen = {names[v] for v, c in conds.items() if "constant" in c}
        inst = make_instance(e, seed, frozen)
        b = matching(rule, e, predicates(frozenset(inst.values) - frozen))
        rhs = instantiate(rule, rule.rhs, b, e.shape)
        want, got = numeric([e, rhs], inst.values, inst.sizes)
        where = f"{rule.name}: {to_text(e)} => {to_text(rhs)} (sizes {inst.sizes}, seed {seed})"
        close(got, want, IDENTITY_RTOL, where)


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"s{s}")
@pytest.mark.parametrize("rule", rules_of("simplify"))
def test_simplify_rule(rule: Rule, seed: int) -> None:
    check_simplify(rule, seed)


# ---- Python rules --------------------------------------------------------------------------------

# Hand-built inputs per Python rule: (declarations, expression, whether the rule must fire).
PYTHON_CASES: dict[str, list[tuple[str, str, bool]]] = {
    "factor_common": [
        ("", "A*C + B*C", True),
        ("", "C*A + 2*C*B", True),
        ("", "A*x + B*x", True),
        ("", "a*A*B*C + D*C + E", True),
        ("", "x'*A*y + x'*B*z", True),
        ("", "C*A*D + C*B*D + C*E", True),
        ("", "A*B + C*D", False),
        ("", "A*x + x", False),
    ],
    "elementwise_transpose": [
        ("", "exp(x')'", True),
        ("", "tanh(A')'", True),
        ("", "exp(x)'", False),
        ("", "inv(A')'", False),
    ],
    "distribute_cancelling": [
        ("", "x.*(y + z./x)", True),
        ("", "a*(x/a + y)", True),
        ("", "x.*(1 - x)", False),
        ("", "a*(x + y)", False),
    ],
    "expand_if_shorter": [
        ("", "x.*(1 - y) - y.*(1 - x)", True),
        ("a: scalar", "a*(x + y) - a*x", True),
        ("", "x.*(1 - y) + y", False),
        ("", "x.*(y + z)", False),
    ],
    "factor_scalar": [
        ("m: scalar", "x/m - y/m", True),
        ("a: scalar", "2*a*x + a*y", True),
        ("a: scalar", "a*x + y", False),
        ("", "2*x + 2*y", False),
    ],
    "kron_vec": [  # issue 9: vec(A*X*B) = kron(B', A)*vec(X), applied where the shapes conform
        ("A: m x n; X: n x p; B: p x q", "kron(B', A)*vec(X)", True),
        ("A: m x n; X: n x p; B: p x q; C: m x n; D: p x q", "(kron(B', A) + 2*kron(D', C))*vec(X)", True),
        ("A: m x n; X: n x p; B: p x q; y: m*q", "y'*kron(B', A)*vec(X)", True),
        ("A: 2 x 2; B: 3 x 3; X: 3 x 2", "kron(B, A)*vec(X)", False),  # 6 = 6 entries, but A*X does not conform
        ("A: m x n; B: p x q; v: q*n", "kron(A, B)*v", False),
    ],
    "negate_sum": [
        ("", "-A - B", True),
        ("", "-A*x - 2*B*x - y", True),
        ("", "-A + B", False),
        ("", "A + B", False),
    ],
}


def tree_size(e: Expr) -> int:
    """Leaves of the tree written out (shared sub-trees counted each time): products are n-ary,
    so the number of operands, not of nodes, says whether a factor was pulled out."""
    return sum(tree_size(c) for c in e.children) if e.children else 1


def check_python_rule(fn: Callable[[Expr], Expr | None], decls: str, text: str, fires: bool, seed: int) -> None:
    e = to_expr(text, parse_syn(text), parse_decls(decls))
    out = fn(e)
    if not fires:
        assert out is None or out == e, f"{text}: expected no rewrite, got {to_text(out)}"
        return
    assert out is not None and out != e, f"{text}: expected a rewrite"
    assert out.shape == e.shape, f"{text}: shape {e.shape} became {out.shape}"
    smaller = tree_size(out) < tree_size(e) or len(walk([out])) < len(walk([e]))  # fewer operands or nodes
    assert smaller, f"{text} => {to_text(out)} is not smaller"
    inst = make_instance(e, seed)
    want, got = numeric([e, out], inst.values, inst.sizes)
    close(got, want, IDENTITY_RTOL, f"{text} => {to_text(out)}")


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"s{s}")
@pytest.mark.parametrize("rule", rules_of("differentials", True) + rules_of("adjoints", True)
                         + rules_of("simplify", True))
def test_python_rule(rule: Rule, seed: int) -> None:
    cases = PYTHON_CASES.get(rule.fn)
    assert cases, f"Python rule {rule.fn} has no hand-built cases in tests/test_rules.py"
    assert any(fires for *_, fires in cases) and not all(fires for *_, fires in cases)
    for decls, text, fires in cases:
        check_python_rule(PYTHON_RULES[rule.fn], decls, text, fires, seed)


# ---- the checkers catch wrong rules ---------------------------------------------------------------

@pytest.mark.parametrize("line", [
    "bad : d(A*B) => dA*B",                          # a term missing
    "bad : d(inv(A)) => -inv(A)*dA'*inv(A)",         # a stray transpose (square: only numbers show it)
    "bad : d(A.^p) => A.^(p - 1) .* dA  if number(p)",  # a factor missing
    "bad : d(sqrt(A)) => dA ./ sqrt(A)",
])
def test_wrong_differential_rule_is_caught(line: str) -> None:
    with pytest.raises(AssertionError):
        check_differential(parse_rule(line), 0)


@pytest.mark.parametrize("line", [
    "bad : tr(G'*(a*Z)) => tr((2*a*G)'*Z)  if fixed(a) and linear(Z)",
    "bad : tr(G'*(Z + W)) => tr(G'*Z) + tr(G'*W)  if linear(Z) and fixed(W)",
    "bad : tr(G'*(C .* Z)) => tr((G .* C .* C)'*Z)  if fixed(C) and linear(Z)",
])
def test_wrong_adjoint_rule_is_caught(line: str) -> None:
    with pytest.raises(AssertionError):
        check_adjoint(parse_rule(line), 0)


def test_transpose_mistake_is_caught_by_rectangular_shapes() -> None:
    # (A*B)' = A'*B' would pass with square matrices of equal size; rectangular ones refuse it.
    with pytest.raises(MatcalcError):
        check_simplify(parse_rule("bad : (A*B)' => A'*B'"), 0)
    with pytest.raises(MatcalcError):
        check_simplify(parse_rule("bad : A' => A"), 0)


@pytest.mark.parametrize("line", ["bad : inv(A') => inv(A)", "bad : det(2*A) => 2*det(A)", "bad : tr(a) => 2*a"])
def test_wrong_simplify_rule_is_caught(line: str) -> None:
    with pytest.raises(AssertionError):
        check_simplify(parse_rule(line), 0)


def test_wrong_python_rule_is_caught() -> None:
    def drop_a_term(e: Expr) -> Expr | None:
        return al.matmul(e.args[0].args[0], e.args[0].args[-1])  # A*C + B*C => A*C
    with pytest.raises(AssertionError):
        check_python_rule(drop_a_term, "", "A*C + B*C", True, 0)
