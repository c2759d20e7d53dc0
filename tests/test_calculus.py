"""The calculus core beyond first-order gradients: tagged differentials (d(dX) = 0, second
differentials), and the adjoint with any seed (vector-Jacobian products)."""
from __future__ import annotations

import numpy as np
import pytest

import matcalc
from matcalc.calculus.adjoint import gradients
from matcalc.calculus.differentiate import Differentiator
from matcalc.calculus.simplify import Simplifier
from matcalc.core import algebra as al
from matcalc.core.expr import Dif, Sym
from matcalc.verify.evaluate import numeric


def test_the_differential_of_a_differential_is_zero() -> None:
    X = Sym("X", ("n", "n"))
    assert Differentiator(frozenset({"X"}))(Dif(X)) == al.zero(("n", "n"))


def test_a_matrix_seed_gives_the_vector_jacobian_product() -> None:
    """tr(S' d(A*X*B)) = tr((A'*S*B')' dX): the VJP of X -> A*X*B is S -> A'*S*B'."""
    A, X, B, S = Sym("A", ("m", "n")), Sym("X", ("n", "p")), Sym("B", ("p", "q")), Sym("S", ("m", "q"))
    wrt = frozenset({"X"})
    dF = Differentiator(wrt)(al.matmul(A, X, B))
    vjp, _ = gradients(dF, wrt, seed=S)
    assert Simplifier(wrt)(vjp["X"]) == al.matmul(al.transpose(A), S, al.transpose(B))
    with pytest.raises(matcalc.ShapeError, match="seed"):
        gradients(dF, wrt, seed=X)


def test_second_differential_gives_the_hessian_times_a_direction() -> None:
    """f = x'*A*x: d(df) along a second direction d1x, with dx fixed, has gradient (A + A')*dx."""
    x, A = Sym("x", ("n", 1)), Sym("A", ("n", "n"))
    wrt = frozenset({"x"})
    f = al.matmul(al.transpose(x), A, x)
    df = Differentiator(wrt)(f)
    d2f = Differentiator(wrt, tag=1)(df)
    assert d2f.tags == frozenset({0, 1})
    first, _ = gradients(d2f, wrt)  # tag 0: d1x fixed
    hv, _ = gradients(d2f, wrt, tag=1)
    rng = np.random.default_rng(0)
    env = {"x": rng.standard_normal((3, 1)), "A": rng.standard_normal((3, 3))}
    v, w = rng.standard_normal((3, 1)), rng.standard_normal((3, 1))
    known = {Dif(x): v, Dif(x, 1): w}
    got, other = numeric([hv["x"], first["x"]], env, {"n": 3}, known)
    H = env["A"] + env["A"].T
    assert np.allclose(got, H @ v) and np.allclose(other, H @ w)


def test_tagged_differentials_print_apart() -> None:
    x = Sym("x", ("n", 1))
    assert matcalc.syntax.printing.to_text(al.add(Dif(x), Dif(x, 1))) in ("dx + d1x", "d1x + dx")
