"""Symbolic integer powers X^k (issue 9): one registry row (`matpow`), one property row
(`integer`), two differential rules (Matrix Cookbook 58/122 and 121)."""
from __future__ import annotations

import numpy as np
import pytest

import matcalc
from matcalc.core import properties
from matcalc.syntax.latex_in import latex_to_text
from matcalc.syntax.printing import to_latex, to_text

LET = "k: scalar integer"


def test_trace_of_a_power():
    r = matcalc.grad("tr(X^k)", "X", LET)
    g = r["X"]
    assert g.text == "k*(X^(k - 1))'"
    assert r.check.summary().startswith("verified") and "SymPy" in r.check.summary()
    assert matcalc.check("tr(X^k)", "X", "k*(X')^(k-1)", let=LET), "an equal form passes"
    assert not matcalc.check("tr(X^k)", "X", "k*X^(k-1)", let=LET), "the missing transpose is caught"
    assert "Matrix Cookbook (121)" in r.steps_text(cite=True)
    assert "trace of a matrix power" in r.steps_text() and "矩阵幂的迹" in r.steps_text(lang="zh")


def test_determinant_of_a_power():
    r = matcalc.grad("det(X^k)", "X", LET)
    assert r["X"].text == "k*det(X^k)*inv(X)'"
    assert r.check.summary().startswith("verified")
    assert matcalc.check("det(X^k)", "X", "k*det(X^k)*inv(X')", let=LET)
    assert not matcalc.check("det(X^k)", "X", "det(X^k)*inv(X')", let=LET), "the missing factor k is caught"
    assert "Matrix Cookbook (122)" in r.steps_text(cite=True)
    assert "行列式" in r.steps_text(lang="zh")


def test_power_inside_a_loss():
    r = matcalc.grad("tr(A*X)^2 + log(det((X'*X)^k))", "X", LET + "; X: 3 x 3")
    assert r.check.summary().startswith("verified")
    r = matcalc.grad("tr((A*X)^(k + 1))", "X", LET)
    assert r["X"].text == "(1 + k)*A'*((A*X)^k)'" and r.check.summary().startswith("verified")


@pytest.mark.parametrize("text", ["X^k", "X^(k - 1)", "(A*B)^k*X", "X^k'*X", "tr(X^(2*k))", "inv(X)^k",
                                  "(X^k)'"])
def test_text_and_latex_read_back(text):
    e = matcalc.parse(text, LET)
    assert any(getattr(n, "op", None) == "matpow" for n in _nodes(e))
    assert matcalc.parse(to_text(e), LET) == e
    latex = to_latex(e)
    assert matcalc.parse(latex_to_text(latex), LET) == e, (latex, latex_to_text(latex))


def test_printed_forms():
    e = matcalc.parse("X^k*Y^(k - 1)", LET)
    assert to_text(e) == "X^k*Y^(k - 1)"
    assert to_latex(e) == "X^{k} Y^{k - 1}"


def test_number_powers_stay_products():
    assert matcalc.parse("X^3") == matcalc.parse("X*X*X")
    assert matcalc.parse("matpow(X, 2)") == matcalc.parse("X*X")


@pytest.mark.parametrize("text, let, match", [
    ("X^k", "", "k is a column vector"),  # by default (h-z): declare it
    ("X^k", "k: scalar", "declare it: 'k: scalar integer'"),
    ("X^c", "", "declare it: 'c: scalar integer'"),
    ("X^c", "c: scalar positive", "integer constant"),
    ("X^(k/2)", LET, "integer constant"),
    ("X^(0.5)", "", "non-integer"),
    ("X^k", "k: 3 x 3 integer", "scalar"),
    ("matpow(X, c)", "", "integer constant"),
])
def test_non_integer_exponent_is_a_clear_error(text, let, match):
    with pytest.raises(matcalc.MatcalcError, match=match):
        matcalc.grad(f"tr({text})", "X", let)


def test_an_integer_is_never_a_variable():
    with pytest.raises(matcalc.UnsupportedError, match="'k' is declared integer: a constant, never a variable"):
        matcalc.grad("tr(X^k)", "k", LET)
    with pytest.raises(matcalc.UnsupportedError, match="'k' is declared integer"):
        matcalc.grad("k*tr(X)", "k", LET)
    assert matcalc.parse("k", "k: integer").shape == (1, 1), "declared without a shape it is a scalar"


def test_general_differential_is_unsupported_not_zero():
    with pytest.raises(matcalc.UnsupportedError, match="no differential rule for 'matpow' in 'X\\^k'.*no closed form"):
        matcalc.grad("sum(X^k)", "X", LET)


def test_evaluators_and_samples():
    from matcalc.verify.evaluate import numeric
    e = matcalc.parse("X^k", LET + "; X: 2 x 2")
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert np.allclose(numeric([e], {"X": x, "k": np.array([[3.0]])}, {})[0], x @ x @ x)
    with pytest.raises(matcalc.DomainError):
        numeric([e], {"X": x, "k": np.array([[0.5]])}, {})
    for seed in range(5):
        v = properties.sample_float(frozenset({"integer"}), 1, 1, np.random.default_rng(seed))
        assert v[0, 0] in (3.0, 4.0, 5.0)


def _nodes(e):
    yield e
    for c in e.children:
        yield from _nodes(c)
