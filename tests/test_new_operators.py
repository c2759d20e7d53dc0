"""Operators users asked for (issue 9), each one registry row plus rule lines: `mean(x)`, the
adjugate `adj(X)` with the adjugate form of the determinant differential (valid for singular X),
and scalar-vector broadcasting of symbols in a sum (`x - c`, `x - logsumexp(x)`)."""
from __future__ import annotations

import numpy as np
import pytest
import sympy

import matcalc
from matcalc.core.registry import OPS
from matcalc.syntax.latex_in import latex_to_text
from matcalc.syntax.printing import to_latex, to_text


def verified(r) -> bool:
    return r.check.summary().startswith("verified")


def reads_back(text: str, let: str = "") -> None:
    """`text` parses, prints and reads back (text and LaTeX) to the same tree."""
    e = matcalc.parse(text, let)
    assert matcalc.parse(to_text(e), let) == e
    assert matcalc.parse(latex_to_text(to_latex(e)), let) == e


# ---- mean ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("loss, wrt, let, want", [
    ("mean(x)", "x", "", "ones(n)/n"),
    ("mean(X)", "X", "X: 3 x 4", "(1/12)*ones(3,4)"),
    ("mean(X)", "X", "", "ones(n,m)/m/n"),
    ("mean(A*x)^2", "x", "", "2*mean(A*x)*A'*ones(n)/n"),
])
def test_mean_gradient_is_verified(loss: str, wrt: str, let: str, want: str) -> None:
    r = matcalc.grad(loss, wrt, let)
    assert r[wrt].text == want and verified(r)


def test_mean_gradient_matches_numbers() -> None:
    """d/dX mean(X) is 1/(rows*cols) in every entry, the dimension names used as numbers."""
    g = matcalc.grad("mean(X)", "X", "X: n x m")["X"]
    from matcalc.verify.evaluate import numeric
    value = numeric([g.expr], {"X": np.zeros((3, 5))}, {"n": 3, "m": 5})[0]
    np.testing.assert_allclose(value, np.full((3, 5), 1 / 15))


def test_mean_prints_and_reads_back() -> None:
    reads_back("mean(X)")
    reads_back("mean(x - y)^2")
    assert to_latex(matcalc.parse("mean(X)")) == r"\operatorname{mean}\left(X\right)"
    assert matcalc.mean(matcalc.Vector("x", "n")).expr == matcalc.parse("mean(x)")


def test_mean_evaluators() -> None:
    a = np.arange(12.0).reshape(3, 4)
    assert OPS["mean"].numpy(a)[0, 0] == pytest.approx(5.5)
    assert OPS["mean"].sympy(sympy.Matrix(a.tolist()))[0, 0] == pytest.approx(5.5)


@pytest.mark.parametrize("lang, labels", [("en", ("mean is linear", "mean as a trace")),
                                          ("zh", ("均值是线性的", "均值写成迹"))])
def test_mean_labels(lang: str, labels: tuple[str, ...]) -> None:
    steps = matcalc.grad("mean(A*x)", "x").steps_text(lang=lang)
    for label in labels:
        assert label in steps


# ---- adjugate and the determinant ----------------------------------------------------------------

def test_adjugate_evaluators_agree_and_hold_at_singular_matrices() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 4):
        x = rng.standard_normal((n, n))
        x[:, -1] = x[:, 0] if n > 1 else 0.0  # singular
        adj = OPS["adj"].numpy(x)
        np.testing.assert_allclose(adj @ x, np.linalg.det(x) * np.eye(n), atol=1e-12)
        np.testing.assert_allclose(x @ adj, np.zeros((n, n)), atol=1e-12)
        exact = OPS["adj"].sympy(sympy.Matrix(x.tolist()))
        np.testing.assert_allclose(np.array(exact.tolist(), dtype=float), adj, atol=1e-12)
        y = x + 3 * np.eye(n)  # invertible: adj = det * inv
        np.testing.assert_allclose(OPS["adj"].numpy(y), np.linalg.det(y) * np.linalg.inv(y), atol=1e-10)


@pytest.mark.parametrize("loss, let, want", [
    ("det(X)", "", "det(X)*inv(X)'"),
    ("log(det(X))", "", "inv(X)'"),
    ("det(X)", "X: n x n", "det(X)*inv(X)'"),
    ("det(x*x' + A)", "A: n x n", None),
    ("det(X)", "X: invertible", "det(X)*inv(X)'"),
])
def test_invertible_results_do_not_change(loss: str, let: str, want: str | None) -> None:
    wrt = "X" if "X" in loss else "A"
    r = matcalc.grad(loss, wrt, let)
    assert (want is None or r[wrt].text == want) and "adj" not in r[wrt].text and verified(r)


@pytest.mark.parametrize("loss, wrt, want", [
    ("det(x*x')", "x", "2*adj(x*x')*x"),  # adj of a symmetric matrix is symmetric
    ("det(x*y')", "x", "adj(x*y')'*y"),
    ("det(x*y')", "y", "adj(x*y')*x"),
])
def test_singular_determinant_gradient_is_the_adjugate(loss: str, wrt: str, want: str) -> None:
    """det(x*y') is 0 everywhere, inv(x*y') exists nowhere: the adjugate form is the one that holds."""
    r = matcalc.grad(loss, wrt)
    assert r[wrt].text == want and verified(r)


def test_determinant_differential_at_a_singular_matrix_numerically() -> None:
    """d det(X) = tr(adj(X)*dX) at singular X (Matrix Cookbook (46) in adjugate form): central
    differences of det along random directions against sum(adj(X)' .* V), for X of rank n - 1
    and for the outer product x*y' the engine derives (whose det is 0 everywhere)."""
    from matcalc.verify.evaluate import numeric
    rng = np.random.default_rng(3)
    adj_t = matcalc.parse("adj(X)'", "X: n x n")
    for n in (2, 3, 4):
        x = rng.standard_normal((n, n))
        x[:, -1] = 2 * x[:, 0]
        assert abs(np.linalg.det(x)) < 1e-12
        gv = numeric([adj_t], {"X": x}, {"n": n})[0]
        assert np.any(np.abs(gv) > 1e-3)
        for _ in range(3):
            v = rng.standard_normal((n, n))
            h = 1e-5
            fd = (np.linalg.det(x + h * v) - np.linalg.det(x - h * v)) / (2 * h)
            assert fd == pytest.approx(float(np.sum(gv * v)), rel=1e-6, abs=1e-9)
    g = matcalc.grad("det(x*y')", "x", "x: 2; y: 2")["x"]
    x, y, v = (rng.standard_normal((2, 1)) for _ in range(3))
    gv = numeric([g.expr], {"x": x, "y": y}, {})[0]
    h = 1e-5
    fd = (np.linalg.det((x + h * v) @ y.T) - np.linalg.det((x - h * v) @ y.T)) / (2 * h)
    assert fd == pytest.approx(float(np.sum(gv * v)), abs=1e-9)  # det(x*y') = 0 for every 2-vector x


def test_adjugate_of_an_invertible_matrix_simplifies() -> None:
    r = matcalc.grad("tr(adj(X)*A)", "X", "X: invertible")
    assert "adj" not in r["X"].text and verified(r)
    r = matcalc.grad("tr(adj(X)*A)", "X")  # a square variable is invertible almost everywhere
    assert verified(r) and "inv(X)" in r["X"].text
    with pytest.raises(matcalc.UnsupportedError, match="adj"):  # A*B with A tall is singular everywhere
        matcalc.grad("tr(adj(A*B))", "A", "A: n x k; B: k x n")


@pytest.mark.parametrize("loss,let,note", [
    ("mean(adj(A + matrix(1)))", "A: n x n", True),  # det(A + C) has det(A) as its leading part
    ("tr(adj(B'*B + eye))", "B: k x n", False),  # positive definite: invertible everywhere, no note
    ("tr(adj(2*(B*B' + eye + 0.5)))", "B: n x k", False),  # 0.5*ones is semidefinite (rank one)
    ("tr(adj(A*C + D))", "A: n x n; C: n x n; D: n x n", True),  # a product of square ones plus a free D
])
def test_adjugate_of_a_matrix_invertible_by_its_structure(loss: str, let: str, note: bool) -> None:
    """generic (invertible at almost every value) and invertible everywhere (definite by
    structure) are inferred; the gradient notes where it holds only where that is not everywhere."""
    wrt = "A" if "A" in let else "B"
    r = matcalc.grad(loss, wrt, let)
    assert verified(r)
    assert any("holds where" in n for n in r.notes) == note


def test_adjugate_of_a_semidefinite_matrix_is_unsupported() -> None:
    with pytest.raises(matcalc.UnsupportedError, match="adj"):  # B*B' + 0.5*ones is singular when k < n - 1
        matcalc.grad("sum(adj(2*(B*B' + 0.5)))", "B", "B: n x k")


def test_adjugate_of_a_scalar_is_one() -> None:
    r = matcalc.grad("x'*x*adj(x'*A*x)", "x")
    assert r["x"].text == "2*x" and verified(r)


def test_adjugate_prints_and_reads_back() -> None:
    reads_back("adj(X)")
    reads_back("tr(adj(X)*A)")
    assert to_latex(matcalc.parse("adj(X)")) == r"\operatorname{adj}\left(X\right)"
    with pytest.raises(matcalc.ShapeError, match="adj needs a square matrix"):
        matcalc.parse("adj(A)", "A: 2 x 3")


@pytest.mark.parametrize("lang, label", [("en", "determinant rule (adjugate form)"),
                                         ("zh", "行列式法则（伴随矩阵形式）")])
def test_adjugate_form_labels(lang: str, label: str) -> None:
    r = matcalc.grad("det(x*y')", "x")
    assert label in r.steps_text(lang=lang)
    assert "Matrix Cookbook (46)" in r.steps_text(lang=lang, cite=True)


# ---- scalar-vector broadcasting ------------------------------------------------------------------

def test_scalar_symbol_is_broadcast_in_a_sum() -> None:
    e = matcalc.parse("x - c")
    assert e.shape == ("n", 1) and to_text(e) == "x - c*ones(n)"
    reads_back("x - c")
    reads_back("A + c", "A: 2 x 3")


@pytest.mark.parametrize("loss, wrt, let", [
    ("norm2(x - c)^2", ["x", "c"], ""),
    ("sum(exp(x - logsumexp(x))).^2", ["x"], ""),  # sum(softmax(x)) is 1: its square's gradient is 0
    ("sum(exp(x - logsumexp(x)).^2)", ["x"], ""),
    ("norm2(x - sum(x)/n)^2", ["x"], "x: n"),
    ("sum((A - c).^2)", ["A", "c"], ""),
    ("c + x'*x", ["x", "c"], ""),
])
def test_broadcast_gradients_are_verified(loss: str, wrt: list, let: str) -> None:
    r = matcalc.grad(loss, wrt, let)
    if loss.endswith(".^2"):  # constant in x: G is 0 up to rounding, where no check tells G from 2*G
        assert r.check is not None and r.check.unverified == ("x",)
        assert r.check.summary().startswith("not verified: x")
        return
    assert verified(r)


def test_gradient_of_the_broadcast_scalar_is_the_sum() -> None:
    """d/dc norm2(x - c)^2 = -2*sum(x - c), checked at numbers."""
    from matcalc.verify.evaluate import numeric
    g = matcalc.grad("norm2(x - c)^2", ["c"], "x: n")["c"]
    x, c = np.array([[1.0], [2.0], [4.0]]), np.array([[0.5]])
    assert numeric([g.expr], {"x": x, "c": c}, {"n": 3})[0][0, 0] == pytest.approx(-2 * float(np.sum(x - c)))


def test_a_loss_made_a_vector_by_broadcasting_is_still_a_shape_error() -> None:
    with pytest.raises(matcalc.ShapeError, match="lam is a column vector"):
        matcalc.grad("norm2(U*V - Y)^2 + lam*norm2(U)^2", "U")
    with pytest.raises(matcalc.ShapeError):
        matcalc.grad("x - c", "x")
