"""Gradients from The Matrix Cookbook (Petersen & Pedersen, version of November 15, 2012).

Each case is one Cookbook identity: (equation number, loss, wrt, let, Cookbook formula, text).

* `grad` runs with both checks on (SymPy elementwise and numeric); a wrong gradient raises.
* `cookbook` is the Cookbook's own right-hand side, transcribed into our syntax. It is compared
  with our gradient numerically at a random point, so an equivalent form passes.
* `text`, when given, is the exact canonical text we expect to print (the readable closed form
  is the point of those cases); `where` is the expected list of shared sub-expressions.

Layout: ours is the denominator layout (the gradient has the shape of the variable), which is
the layout of the Cookbook's d/dX in its determinant, inverse, trace and norm sections, so the
Cookbook's formulas are used as printed. Every symbol is declared with explicit dimensions so
the loss and the Cookbook formula are typed identically.

Equation numbers: (33)-(46) agree with the Lean formalisation of the Cookbook, (61)-(127) with
SymPy's matrix-derivative tests; the others follow from counting in the 2012 edition.
The Cookbook has no line for elementwise functions; those cases cite the Hadamard-product rule
(38), d(X.*Y) = dX.*Y + X.*dY, from which they follow by the scalar chain rule.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest

import matcalc
from matcalc.syntax.printing import to_text
from matcalc.verify.check import _np, assign_sizes, find_point
from matcalc.verify.evaluate import numeric


class Case(NamedTuple):
    eq: str                     # Cookbook equation number(s)
    loss: str
    wrt: str | tuple[str, ...]
    let: str
    cookbook: dict[str, str]    # variable -> Cookbook formula in our syntax
    text: dict[str, str] | None = None       # variable -> exact expected text
    where: tuple[tuple[str, str], ...] = ()  # expected shared sub-expressions, with `text`


def case(eq, loss, wrt, let, cookbook, text=None, where=()):
    """A case; a plain string for `cookbook`/`text` means the single variable `wrt`."""
    if isinstance(cookbook, str):
        cookbook = {wrt: cookbook}
    if isinstance(text, str):
        text = {wrt: text}
    return Case(eq, loss, wrt, let, cookbook, text, where)


SQ = "X: n x n"

CASES = [
    # --- 2.5.1 traces, first order -------------------------------------------------------
    case("99", "tr(X)", "X", SQ, "eye(n)", "eye(n)"),
    case("100", "tr(X*A)", "X", "X: m x n; A: n x m", "A'", "A'"),
    case("100", "tr(A*X)", "X", "A: n x m; X: m x n", "A'", "A'"),
    case("101", "tr(A*X*B)", "X", "A: p x m; X: m x n; B: n x p", "A'*B'", "A'*B'"),
    case("102", "tr(A*X'*B)", "X", "A: p x n; X: m x n; B: m x p", "B*A", "B*A"),
    case("103", "tr(X'*A)", "X", "X: m x n; A: m x n", "A", "A"),
    case("104", "tr(A*X')", "X", "A: m x n; X: m x n", "A", "A"),
    # --- 2.5.2 traces, second order ------------------------------------------------------
    case("106", "tr(X^2)", "X", SQ, "2*X'", "2*X'"),
    case("106", "tr(X*X)", "X", SQ, "2*X'", "2*X'"),
    case("107", "tr(X^2*B)", "X", "X: n x n; B: n x n", "(X*B + B*X)'"),
    case("108", "tr(X'*B*X)", "X", "X: m x n; B: m x m", "B*X + B'*X", "(B + B')*X"),
    case("109", "tr(B*X*X')", "X", "X: m x n; B: m x m", "B*X + B'*X", "(B + B')*X"),
    case("110", "tr(X*X'*B)", "X", "X: m x n; B: m x m", "B*X + B'*X", "(B + B')*X"),
    case("111", "tr(X*B*X')", "X", "X: m x n; B: n x n", "X*B' + X*B", "X*(B + B')"),
    case("112", "tr(B*X'*X)", "X", "X: m x n; B: n x n", "X*B' + X*B", "X*(B + B')"),
    case("113", "tr(X'*X*B)", "X", "X: m x n; B: n x n", "X*B' + X*B", "X*(B + B')"),
    case("114", "tr(A*X*B*X)", "X", "A: n x m; X: m x n; B: n x m",
      "A'*X'*B' + B'*X'*A'", "A'*X'*B' + B'*X'*A'"),
    case("115", "tr(X'*X)", "X", "X: m x n", "2*X", "2*X"),
    case("115", "tr(X*X')", "X", "X: m x n", "2*X", "2*X"),
    case("116", "tr(B'*X'*C*X*B)", "X", "B: n x p; X: m x n; C: m x m",
      "C'*X*B*B' + C*X*B*B'", "(C + C')*X*B*B'"),
    case("117", "tr(X'*B*X*C)", "X", "X: m x n; B: m x m; C: n x n",
      "B*X*C + B'*X*C'", "B*X*C + B'*X*C'"),
    case("118", "tr(A*X*B*X'*C)", "X", "A: p x m; X: m x n; B: n x n; C: m x p",
      "A'*C'*X*B' + C*A*X*B", "C*A*X*B + A'*C'*X*B'"),
    case("119", "tr((A*X*B + C)*(A*X*B + C)')", "X", "A: p x m; X: m x n; B: n x q; C: p x q",
      "2*A'*(A*X*B + C)*B'", "2*A'*(A*X*B + C)*B'"),
    case("120", "tr(X)*tr(X)", "X", SQ, "2*tr(X)*eye(n)", "2*tr(X)*eye(n)"),
    # --- 2.5.3 traces, higher order ------------------------------------------------------
    case("121", "tr(X^3)", "X", SQ, "3*(X^2)'"),
    case("121", "tr(X^4)", "X", SQ, "4*(X^3)'"),
    case("122", "tr(A*X^3)", "X", "A: n x n; X: n x n", "(A*X^2)' + (X*A*X)' + (X^2*A)'"),
    case("123", "tr(B'*X'*C*X*X'*C*X*B)", "X", "B: n x p; X: m x n; C: m x m",
      "C*X*X'*C*X*B*B' + C'*X*B*B'*X'*C'*X + C*X*B*B'*X'*C*X + C'*X*X'*C'*X*B*B'"),
    # --- 2.5.4 traces, other -------------------------------------------------------------
    case("124", "tr(A*inv(X)*B)", "X", "A: p x n; X: n x n; B: n x p",
      "-inv(X)'*A'*B'*inv(X)'", "-inv(X)'*A'*B'*inv(X)'"),
    # (125)-(126) need X'*C*X invertible, i.e. X tall (m > n).
    case("125", "tr(inv(X'*C*X)*A)", "X", "X: m x n; C: m x m symmetric; A: n x n",
      "-(C*X*inv(X'*C*X))*(A + A')*inv(X'*C*X)"),
    case("126", "tr(inv(X'*C*X)*(X'*B*X))", "X", "X: m x n; C: m x m symmetric; B: m x m symmetric",
      "-2*C*X*inv(X'*C*X)*X'*B*X*inv(X'*C*X) + 2*B*X*inv(X'*C*X)"),
    case("127", "tr(inv(A + X'*C*X)*(X'*B*X))", "X",
      "X: m x n; A: n x n symmetric; C: m x m symmetric; B: m x m symmetric",
      "-2*C*X*inv(A + X'*C*X)*X'*B*X*inv(A + X'*C*X) + 2*B*X*inv(A + X'*C*X)"),
    # --- 2.2 derivatives of an inverse -----------------------------------------------------
    case("61", "a'*inv(X)*b", "X", "a: n; X: n x n; b: n",
      "-inv(X)'*a*b'*inv(X)'", "-inv(X)'*a*b'*inv(X)'"),
    case("62", "det(inv(X))", "X", SQ, "-det(inv(X))*inv(X)'", "-det(inv(X))*inv(X)'"),
    case("63", "tr(A*inv(X)*B)", "X", "A: p x n; X: n x n; B: n x p", "-(inv(X)*B*A*inv(X))'"),
    case("64", "tr(inv(X + A))", "X", "X: n x n; A: n x n", "-(inv(X + A)*inv(X + A))'"),
    case("64", "tr(inv(X))", "X", SQ, "-(inv(X)*inv(X))'", "-inv(X)'^2"),  # A = 0
    # --- 2.1 derivatives of a determinant ------------------------------------------------
    case("49", "det(X)", "X", SQ, "det(X)*inv(X)'", "det(X)*inv(X)'"),
    case("51", "det(A*X*B)", "X", "A: n x n; X: n x n; B: n x n", "det(A*X*B)*inv(X)'"),
    case("52", "det(X'*A*X)", "X", "X: n x n; A: n x n", "2*det(X'*A*X)*inv(X)'"),
    case("53", "det(X'*A*X)", "X", "X: m x n; A: m x m symmetric",
      "2*det(X'*A*X)*A*X*inv(X'*A*X)"),
    case("54", "det(X'*A*X)", "X", "X: m x n; A: m x m",
      "det(X'*A*X)*(A*X*inv(X'*A*X) + A'*X*inv(X'*A'*X))"),
    # (55): 2*(X^+)' with X^+ = inv(X'*X)*X' for a tall X of full column rank.
    case("55", "log(det(X'*X))", "X", "X: m x n", "2*X*inv(X'*X)", "2*X*inv(X'*X)"),
    case("57", "log(abs(det(X)))", "X", SQ, "inv(X)'", "inv(X)'"),
    case("57", "log(det(X))", "X", SQ, "inv(X)'", "inv(X)'"),
    case("57", "logdet(X)", "X", SQ, "inv(X)'", "inv(X)'"),
    # (57) for an SPD argument: inv(S)' = inv(S). (The Cookbook's (141), 2*inv(S) - inv(S).*I,
    # is the derivative over the independent entries of S, a different convention.)
    case("57", "logdet(S)", "S", "S: n x n spd", "inv(S)", "inv(S)"),
    case("58", "det(X^2)", "X", SQ, "2*det(X^2)*inv(X)'"),
    case("58", "det(X^3)", "X", SQ, "3*det(X^3)*inv(X)'"),
    # --- 2.4.1 first-order forms -----------------------------------------------------------
    case("69", "x'*a", "x", "x: n; a: n", "a", "a"),
    case("69", "a'*x", "x", "x: n; a: n", "a", "a"),
    case("70", "a'*X*b", "X", "a: m; X: m x n; b: n", "a*b'", "a*b'"),
    case("71", "a'*X'*b", "X", "a: n; X: m x n; b: m", "b*a'", "b*a'"),
    case("72", "a'*X*a", "X", "a: n; X: n x n", "a*a'", "a*a'"),
    case("72", "a'*X'*a", "X", "a: n; X: n x n", "a*a'", "a*a'"),
    # --- 2.4.2 second-order forms ----------------------------------------------------------
    case("77", "b'*X'*X*c", "X", "b: n; X: m x n; c: n", "X*(b*c' + c*b')", "X*(b*c' + c*b')"),
    case("78", "(B*x + b)'*C*(D*x + d)", "x", "B: m x n; x: n; b: m; C: m x p; D: p x n; d: p",
      "B'*C*(D*x + d) + D'*C'*(B*x + b)", "B'*C*(D*x + d) + D'*C'*(B*x + b)"),
    case("81", "x'*B*x", "x", "x: n; B: n x n", "(B + B')*x", "(B + B')*x"),
    case("81", "x'*B*x", "x", "x: n; B: n x n symmetric", "2*B*x", "2*B*x"),
    case("82", "b'*X'*D*X*c", "X", "b: n; X: m x n; D: m x m; c: n",
      "D'*X*b*c' + D*X*c*b'", "D*X*c*b' + D'*X*b*c'"),
    case("83", "(X*b + c)'*D*(X*b + c)", "X", "X: m x n; b: n; c: m; D: m x m",
      "(D + D')*(X*b + c)*b'", "(D + D')*(X*b + c)*b'"),
    case("84", "(x - A*s)'*W*(x - A*s)", "s", "x: m; A: m x n; s: n; W: m x m symmetric",
      "-2*A'*W*(x - A*s)", "-2*A'*W*(x - A*s)"),
    case("85", "(x - s)'*W*(x - s)", "x", "x: n; s: n; W: n x n symmetric",
      "2*W*(x - s)", "2*W*(x - s)"),
    case("86", "(x - s)'*W*(x - s)", "s", "x: n; s: n; W: n x n symmetric",
      "-2*W*(x - s)", "-2*W*(x - s)"),
    case("87", "(x - A*s)'*W*(x - A*s)", "x", "x: m; A: m x n; s: n; W: m x m symmetric",
      "2*W*(x - A*s)", "2*W*(x - A*s)"),
    case("88", "(x - A*s)'*W*(x - A*s)", "A", "x: m; A: m x n; s: n; W: m x m symmetric",
      "-2*W*(x - A*s)*s'", "-2*W*(x - A*s)*s'"),
    case("84,87,88", "(x - A*s)'*W*(x - A*s)", ("x", "A", "s"),
      "x: m; A: m x n; s: n; W: m x m symmetric",
      {"x": "2*W*(x - A*s)", "A": "-2*W*(x - A*s)*s'", "s": "-2*A'*W*(x - A*s)"},
      {"x": "2*W*t1", "A": "-2*W*t1*s'", "s": "-2*A'*W*t1"}, (("t1", "x - A*s"),)),
    # --- 2.4.3 higher-order and non-linear forms -------------------------------------------
    case("91", "a'*X^3*b", "X", "a: n; X: n x n; b: n",
      "a*b'*(X^2)' + X'*a*b'*X' + (X^2)'*a*b'"),
    # (92), n = 2. As printed, the first term of the Cookbook's sum is transposed
    # (X^(n-1-r)*a*b'*(X^n)'*X^r); the gradient is sum_r (X^r)'*X^n*(a*b' + b*a')*(X^(n-1-r))'.
    case("92", "a'*(X^2)'*X^2*b", "X", "a: n; X: n x n; b: n",
      "X^2*(a*b' + b*a')*X' + X'*X^2*(a*b' + b*a')"),
    case("94", "x'*A'*A*x/(x'*B'*B*x)", "x", "A: m x n; x: n; B: p x n",
      "2*A'*A*x/(x'*B'*B*x) - 2*(x'*A'*A*x)*B'*B*x/(x'*B'*B*x)^2"),
    case("94", "(A*x)'*(A*x)/((B*x)'*(B*x))", "x", "A: m x n; x: n; B: p x n",
      "2*A'*A*x/(x'*B'*B*x) - 2*(x'*A'*A*x)*B'*B*x/(x'*B'*B*x)^2"),
    # 2.4.4 gradient of f = x'*A*x + b'*x
    case("2.4.4", "x'*A*x + b'*x", "x", "x: n; A: n x n; b: n", "(A + A')*x + b", "(A + A')*x + b"),
    # --- 2.6 / 2.7 norms -------------------------------------------------------------------
    case("129", "norm2(x - a)", "x", "x: n; a: n", "(x - a)/norm2(x - a)"),
    case("131", "norm2(x)^2", "x", "x: n", "2*x", "2*x"),
    case("131", "x'*x", "x", "x: n", "2*x", "2*x"),
    case("132", "norm2(X)^2", "X", "X: m x n", "2*X", "2*X"),
    # Least squares: (84) and (88) with W = I.
    case("84", "norm2(X*w - y)^2", "w", "X: m x n; w: n; y: m", "2*X'*(X*w - y)", "2*X'*(X*w - y)"),
    case("84,88", "norm2(X*w - y)^2", ("X", "w"), "X: m x n; w: n; y: m",
      {"X": "2*(X*w - y)*w'", "w": "2*X'*(X*w - y)"},
      {"X": "2*t1*w'", "w": "2*X'*t1"}, (("t1", "X*w - y"),)),
    # --- several variables at once -----------------------------------------------------------
    case("69,70", "a'*X*b", ("a", "X", "b"), "a: m; X: m x n; b: n",
      {"a": "X*b", "X": "a*b'", "b": "X'*a"}),
    case("81,72", "x'*A*x", ("x", "A"), "x: n; A: n x n",
      {"x": "(A + A')*x", "A": "x*x'"}, {"x": "(A + A')*x", "A": "x*x'"}),
    case("100,101", "tr(A*X*B)", ("A", "X", "B"), "A: p x m; X: m x n; B: n x p",
      {"A": "(X*B)'", "X": "A'*B'", "B": "(A*X)'"}),
    case("49,57", "log(det(X)) + det(Y)", ("X", "Y"), "X: n x n; Y: m x m",
      {"X": "inv(X)'", "Y": "det(Y)*inv(Y)'"}, {"X": "inv(X)'", "Y": "det(Y)*inv(Y)'"}),
    # --- elementwise (Hadamard) ----------------------------------------------------------------
    case("38", "sum(exp(x))", "x", "x: n", "exp(x)", "exp(x)"),
    case("38", "sum(exp(X))", "X", "X: m x n", "exp(X)", "exp(X)"),
    case("38", "sum(log(x))", "x", "x: n", "1./x"),
    case("38", "x'*(y.*z)", ("x", "y", "z"), "x: n; y: n; z: n",
      {"x": "y.*z", "y": "x.*z", "z": "x.*y"}, {"x": "y.*z", "y": "x.*z", "z": "x.*y"}),
    case("38,103", "sum(X.*Y)", "X", "X: m x n; Y: m x n", "Y", "Y"),
    case("38", "a'*(x.*x)", "x", "a: n; x: n", "2*a.*x"),
]


def _id(c: Case) -> str:
    wrt = c.wrt if isinstance(c.wrt, str) else ",".join(c.wrt)
    return f"({c.eq}) d/d{wrt} {c.loss} [{c.let}]"


def assert_matches_cookbook(r, c: Case) -> None:
    """Our gradients equal the Cookbook's formulas (parsed with the same `let`) at a point."""
    ours = {v: r[v].expr for v in c.cookbook}
    theirs = {v: matcalc.parse(text, c.let) for v, text in c.cookbook.items()}
    for v in c.cookbook:
        assert ours[v].shape == theirs[v].shape, f"{v}: shapes {ours[v].shape} vs {theirs[v].shape}"
    roots = [*ours.values(), *theirs.values()]
    dims = assign_sizes([r.loss, *roots]) | r.check.dims  # the sizes the check found usable
    named = {f"ours {v}": e for v, e in ours.items()} | {f"cookbook {v}": e for v, e in theirs.items()}
    point = _np(find_point(r.loss, named, dims, seed=7))
    values = numeric(roots, point, dims)
    k = len(ours)
    for v, a, b in zip(c.cookbook, values[:k], values[k:]):
        assert np.allclose(a, b, rtol=1e-9, atol=1e-9), f"d/d{v}: ours\n{a}\nCookbook\n{b}"


@pytest.mark.parametrize("c", CASES, ids=_id)
def test_cookbook(c: Case) -> None:
    r = matcalc.grad(c.loss, wrt=list(c.wrt) if isinstance(c.wrt, tuple) else c.wrt, let=c.let)
    assert r.check.sympy_entries > 0
    assert r.check.numeric_max_rel_err < 1e-6
    for v in r.gradients:  # the printed form, shared names inlined, reads back as the gradient
        printed = to_text(r[v].expr)
        same = matcalc.parse(printed, c.let) == r[v].expr
        assert same, f"d/d{v}: the printed gradient {printed!r} parses to a different expression"
    assert_matches_cookbook(r, c)
    if c.text is not None:
        assert {v: r[v].text for v in c.text} == c.text
        assert list(r.where_text) == list(c.where)


def test_catalogue_size() -> None:
    assert len(CASES) >= 45
    assert len({_id(c) for c in CASES}) == len(CASES)
