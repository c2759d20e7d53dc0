"""Dimension expressions (m*n), vec(X), its inverse reshape, and kron(A, B) (issue 9, item 3):
shapes, gradients verified by the checks, the identities of rules/identities.rules checked
numerically, text and LaTeX read back, and shape errors for mismatches."""
from __future__ import annotations

import numpy as np
import pytest

import matcalc
from matcalc.calculus.rewrite import first_match, instantiate, load_table, predicates
from matcalc.core.registry import DimProd, dim_mul, dim_names, dim_size, fmt_shape
from matcalc.errors import MatcalcError, ParseError, ShapeError, UnsupportedError
from matcalc.syntax.latex_in import latex_to_text
from matcalc.syntax.parser import parse_decls, parse_syn
from matcalc.syntax.printing import to_latex, to_text
from matcalc.syntax.typer import to_expr
from matcalc.verify.evaluate import numeric

# ---- dimension expressions -----------------------------------------------------------------------


def test_dim_mul_folds_and_compares_without_order() -> None:
    assert dim_mul(2, 3) == 6 and dim_mul(1, "n") == "n" and dim_mul("n", 1) == "n"
    mn = dim_mul("m", "n")
    assert isinstance(mn, DimProd) and str(mn) == "m*n"
    assert mn == dim_mul("n", "m") and hash(mn) == hash(dim_mul("n", "m"))
    assert mn != "m" and mn != dim_mul("m", "p") and dim_mul(mn, "p") == dim_mul("m", dim_mul("n", "p"))
    assert str(dim_mul(2, "n", 3)) == "6*n"
    assert dim_size(dim_mul("m", "n"), {"m": 2, "n": 3}) == 6 and dim_names(dim_mul("m", "n", 2)) == ["m", "n"]
    assert fmt_shape((mn, 1)) == "m*n x 1"


def test_declared_product_dimension() -> None:
    decls = parse_decls("v: m*n; K: m*n x 3; X: m x n")
    assert decls["v"].shape == (dim_mul("m", "n"), 1) and decls["K"].shape == (dim_mul("m", "n"), 3)
    r = matcalc.grad("v'*A*v", wrt="v", let="v: m*n")
    assert r["v"].text == "(A + A')*v"
    assert r.to_dict()["gradients"]["v"]["shape"] == "m*n x 1"
    assert r.check.summary().startswith("verified")


def test_product_dimension_unifies_with_vec() -> None:
    e = matcalc.parse("v'*vec(X)", "v: m*n; X: n x m")  # m*n is n*m
    assert e.shape == (1, 1)
    with pytest.raises(ShapeError):
        matcalc.parse("v'*vec(X)", "v: m*n; X: m x p")
    assert matcalc.parse("v'*vec(X)", "v: 6; X: 2 x 3").shape == (1, 1)  # integers fold: 2*3 = 6
    # sizes left open are decided factor by factor: B gets A's shape
    e = matcalc.parse("vec(A)'*vec(B)", "A: m x n")
    b = next(s for s in _symbols(e) if s.name == "B")
    assert b.shape == ("m", "n")


def test_constant_of_product_size_reads_back() -> None:
    e = matcalc.parse("ones(m*n)'*vec(X)", "X: m x n")
    assert matcalc.parse(to_text(e), "X: m x n") == e


# ---- vec -------------------------------------------------------------------------------------------

def test_vec_shape_and_values() -> None:
    e = matcalc.parse("vec(X)", "X: m x n")
    assert e.shape == (dim_mul("m", "n"), 1)
    x = np.arange(6.0).reshape(2, 3)
    (got,) = numeric([e], {"X": x}, {"m": 2, "n": 3})
    assert np.array_equal(got[:, 0], [0.0, 3.0, 1.0, 4.0, 2.0, 5.0])  # columns stacked


def test_grad_of_squared_norm_of_vec() -> None:
    r = matcalc.grad("norm2(vec(X))^2", wrt="X")
    assert r["X"].text == "2*X"
    assert r.check.summary().startswith("verified")


@pytest.mark.parametrize("loss,wrt,text", [
    ("vec(X)'*kron(B', A)*vec(X)", "X", "A*X*B + A'*X*B'"),  # kron-vec, vec-sum, reshape-vec
    ("vec(X)'*kron(B, A)*vec(X)", "X", "A*X*B' + A'*X*B"),
    ("norm2(vec(X) - vec(Y))^2", "X", "2*(X - Y)"),
])
def test_kronecker_forms_simplify_to_matrix_forms(loss: str, wrt: str, text: str) -> None:
    r = matcalc.grad(loss, wrt=wrt)
    assert r[wrt].text == text
    assert r.check.summary().startswith("verified")


def test_grad_of_inner_product_of_vecs() -> None:
    r = matcalc.grad("vec(A)'*vec(X)", wrt="X")
    assert r["X"].text == "A"
    assert r.check.summary().startswith("verified")


@pytest.mark.parametrize("loss,wrt,claim", [
    ("vec(X)'*kron(B', A)*vec(X)", "X", "A*X*B + A'*X*B'"),
    ("vec(X)'*kron(B, A)*vec(X)", "X", "A*X*B' + A'*X*B"),
    ("norm2(kron(B', A)*vec(X) - y)^2", "X", None),
    ("y'*kron(A, B)*vec(X)", "X", None),
    ("sum(exp(vec(W*X)))", "W", None),
])
def test_kron_vec_losses_verified(loss: str, wrt: str, claim: str | None) -> None:
    r = matcalc.grad(loss, wrt=wrt)
    assert r.check.summary().startswith("verified"), r.check.summary()
    e = r[wrt].expr
    let = "; ".join(f"{s.name}: {s.shape[0]} x {s.shape[1]}" for s in _symbols(matcalc.parse(loss)))
    assert matcalc.parse(to_text(e), let) == e == matcalc.parse(latex_to_text(to_latex(e)), let)  # reads back
    if claim is not None:  # the Kronecker form agrees with the closed form vec(A*X*B) = kron(B', A)*vec(X)
        assert matcalc.check(loss, wrt, claim)


@pytest.mark.parametrize("loss,wrt", [
    ("sum(kron(A, B) .* C)", "A"),
    ("sum(kron(A, B) .* C)", "B"),
    ("x'*kron(A, B)*y", "A,B"),
    ("norm2(kron(A, B))^2", "A,B"),
    ("tr(kron(X, X))", "X"),
    ("logdet(kron(X, Y))", "X,Y"),
])
def test_grad_with_respect_to_kron_factors(loss: str, wrt: str) -> None:
    """kron's adjoint (rules kron-left, kron-right) goes through the rearrangement R(G) with
    tr(G'*kron(A, B)) = vec(A)'*R(G)*vec(B); both checks verify it."""
    r = matcalc.grad(loss, wrt=wrt)
    assert r.check.summary().startswith("verified"), r.check.summary()
    let = "; ".join(f"{s.name}: {s.shape[0]} x {s.shape[1]}" for s in _symbols(matcalc.parse(loss)))
    for name in wrt.split(","):  # written out whole (without the shared `where` names), it reads back
        e = r[name].expr
        assert matcalc.parse(to_text(e), let) == e == matcalc.parse(latex_to_text(to_latex(e)), let)


def test_second_differential_of_kron_is_unsupported_not_wrong() -> None:
    """rearrange has a differential rule but no trace trick: its adjoint would need the inverse
    rearrangement. A construct without a rule is an UnsupportedError, never a silent zero."""
    with pytest.raises(UnsupportedError, match="rearrange"):
        matcalc.grad("sum(rearrange(G, A, B))", wrt="G", let="G: m*p x n*q; A: m x n; B: p x q")


# ---- the identities --------------------------------------------------------------------------------

IDENTITY_DECLS = {
    "kron-vec": "A: m x n; X: n x p; B: q x p",
    "vec-inner": "A: m x n; B: m x n",
}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("rule", load_table("identities"), ids=lambda r: r.name)
def test_identity_rules_hold(rule, seed: int) -> None:
    """Each identity of rules/identities.rules: the engine's matcher finds it on conforming
    operands, and both sides agree numerically (rectangular sizes, so a stray transpose shows)."""
    decls = parse_decls(IDENTITY_DECLS[rule.name])
    assert rule.lhs is not None
    lhs = to_expr(rule.text, rule.lhs, decls)
    found = first_match([rule], lhs, predicates(frozenset()))
    assert found is not None, f"{rule.name} does not match its own left side"
    rhs = instantiate(rule, rule.rhs, found[1], lhs.shape)
    sizes = {"m": 2 + seed, "n": 3, "p": 4, "q": 5}
    rng = np.random.default_rng(seed)
    env = {s.name: rng.standard_normal((dim_size(s.shape[0], sizes), dim_size(s.shape[1], sizes)))
           for s in _symbols(lhs)}
    want, got = numeric([lhs, rhs], env, sizes)
    assert np.allclose(got, want, rtol=1e-12, atol=1e-12), (rule.name, got, want)


def test_vec_of_product_numerically() -> None:
    """vec(A*X*B) = kron(B', A)*vec(X) (Matrix Cookbook 520), tr(A'*B) = vec(A)'*vec(B) (521)."""
    let = "A: m x n; X: n x p; B: p x q; C: m x n"
    left, right, tr, inner = (matcalc.parse(t, let) for t in ("vec(A*X*B)", "kron(B', A)*vec(X)", "tr(A'*C)",
                                                                "vec(A)'*vec(C)"))
    rng = np.random.default_rng(3)
    sizes = {"m": 2, "n": 3, "p": 4, "q": 5}
    env = {"A": rng.standard_normal((2, 3)), "X": rng.standard_normal((3, 4)), "B": rng.standard_normal((4, 5)),
           "C": rng.standard_normal((2, 3))}
    a, b, c, d = numeric([left, right, tr, inner], env, sizes)
    assert np.allclose(a, b) and np.allclose(c, d)


# ---- kron ------------------------------------------------------------------------------------------

def test_kron_shape_and_values() -> None:
    e = matcalc.parse("kron(A, B)", "A: m x n; B: p x q")
    assert e.shape == (dim_mul("m", "p"), dim_mul("n", "q"))
    a, b = np.arange(1.0, 7.0).reshape(2, 3), np.arange(1.0, 5.0).reshape(2, 2)
    (got,) = numeric([e], {"A": a, "B": b}, {"m": 2, "n": 3, "p": 2, "q": 2})
    assert np.array_equal(got, np.kron(a, b))


def test_python_front_end() -> None:
    from matcalc import Matrix
    A, B = Matrix("A", "m", "n"), Matrix("B", "p", "q")
    assert matcalc.kron(A, B).expr == matcalc.parse("kron(A, B)", "A: m x n; B: p x q")
    assert matcalc.vec(A).expr == matcalc.parse("vec(A)", "A: m x n")
    with pytest.raises(MatcalcError):
        matcalc.kron(A)


# ---- text and LaTeX ---------------------------------------------------------------------------------

ROUND_TRIPS = [
    ("vec(X)", "X: m x n"),
    ("kron(A, B)", "A: m x n; B: p x q"),
    ("kron(A + C, B')*vec(X)", "A: m x n; C: m x n; B: q x p; X: q x n"),
    ("kron(kron(A, B), C)", "A: 2 x 3; B: m x n; C: n x 4"),
    ("vec(A*X*B)'*kron(B', A)", "A: m x n; X: n x p; B: p x q"),
    ("reshape(v, X)", "v: m*n; X: m x n"),
    ("x'*reshape(2*v, X)*y", "v: m*n; X: m x n"),
    ("rearrange(G, A, B)", "G: m*p x n*q; A: m x n; B: p x q"),
    ("reshape(rearrange(C, A, B)'*vec(A), B)", "C: 2*p x 3*q; A: 2 x 3; B: p x q"),
]


@pytest.mark.parametrize("text,let", ROUND_TRIPS)
def test_text_and_latex_read_back(text: str, let: str) -> None:
    e = matcalc.parse(text, let)
    assert matcalc.parse(to_text(e), let) == e
    latex = to_latex(e)
    assert matcalc.parse(latex_to_text(latex), let) == e, latex


def test_latex_forms() -> None:
    e = matcalc.parse("kron(B', A)*vec(X)", "A: m x n; X: n x p; B: p x q")
    latex = to_latex(e)
    assert r"\otimes" in latex and r"\operatorname{vec}" in latex
    let = "A: m x n; X: n x p; B: p x q"
    assert matcalc.parse(latex_to_text(r"\left(B^{T} \otimes A\right) \operatorname{vec}\left(X\right)"), let) == e
    three = matcalc.parse(latex_to_text(r"(A \otimes B^T \otimes X)"), let)
    assert three == matcalc.parse("kron(kron(A, B'), X)", let)
    with pytest.raises(ParseError, match="otimes"):
        latex_to_text(r"A + B \otimes C")  # a sum as an operand of \otimes is not guessed


def test_gradients_read_back_in_both_forms() -> None:
    r = matcalc.grad("vec(X)'*kron(B', A)*vec(X)", wrt="X", let="A: m x m; B: n x n; X: m x n")
    let = "A: m x m; B: n x n; X: m x n"
    e = r["X"].expr
    assert matcalc.parse(to_text(e), let) == e == matcalc.parse(latex_to_text(to_latex(e)), let)


# ---- shape errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,let", [
    ("kron(A, B) + A", "A: 2 x 3; B: 2 x 2"),
    ("vec(X) + x", "X: 2 x 3; x: 5"),
    ("reshape(v, X)", "v: 5; X: 2 x 3"),
    ("reshape(V, X)", "V: 6 x 2; X: 2 x 3"),
    ("kron(A, B)*vec(X)", "A: 2 x 2; B: 3 x 3; X: 2 x 2"),
    ("v'*vec(X)", "v: m*n; X: m x p"),
])
def test_shape_errors(text: str, let: str) -> None:
    with pytest.raises(ShapeError):
        matcalc.parse(text, let)


@pytest.mark.parametrize("text", ["kron(A)", "kron(A, B, C)", "vec(A, B)"])
def test_arity_errors(text: str) -> None:
    with pytest.raises(ParseError):
        matcalc.parse(text)


def test_ones_of_product_dimension_in_rules_syntax() -> None:
    assert parse_syn("ones(m*n)").kind == "call"


def _symbols(e) -> list:
    from matcalc.core.expr import Sym, walk
    return [n for n in walk([e]) if isinstance(n, Sym)]
