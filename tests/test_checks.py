"""The checks: fast paths that stay exact, points where the loss is defined, no false alarm on
large values, and every check still catches a wrong gradient (a check that cannot fail is
worthless). No test here asserts a time; benchmarks/derive.py measures them."""
from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import pytest

import matcalc
from matcalc.core import algebra as al
from matcalc.core.expr import Sym, walk
from matcalc.errors import CheckError
from matcalc.syntax.printing import to_text
from matcalc.verify.check import verify
from matcalc.verify.exact import Evaluator, Rationals

TALL_WIDE = ["log(det(X'*X))", "det(X'*A*X)", "tr(inv(X'*C*X)*A)"]


def _parts(loss: str, wrt: list[str], let: str = ""):
    r = matcalc.grad(loss, wrt, let)
    syms = {n.name: n for n in walk([r.loss]) if isinstance(n, Sym)}
    return r, syms, {n: r[n].expr for n in wrt}


def _wrongs(g):
    """A wrong factor, a wrong sign, a transpose (for a square non-symmetric G), a missing term."""
    out = {"double": al.mul(al.num(2), g), "negated": al.mul(al.num(-1), g),
           "tiny extra": al.add(g, al.mul(al.num(Fraction(1, 10**9)), al.transpose(al.transpose(g))))}
    if g.shape[0] == g.shape[1] and not g.is_scalar:
        out["transpose"] = al.transpose(g)
    return out


@pytest.mark.parametrize("loss", TALL_WIDE)
def test_sampler_finds_a_tall_x(loss: str) -> None:
    r = matcalc.grad(loss, "X", "X: m x n", check=True)
    assert r.check.summary().startswith("verified: SymPy elementwise") and r.check.sympy_exact
    d = r.to_dict()
    assert d["check"]["summary"].startswith("verified")
    assert r.steps[-1]["notes"][-1].startswith("derivation: all")


def test_sampler_cases_through_check_command() -> None:
    assert matcalc.check("log(det(X'*X))", "X", "2*X*inv(X'*X)", "X: m x n").verdict == "correct"


@pytest.mark.parametrize("loss,wrt,let", [
    ("exp(tr(a*S)^2)^0.5", "S", ""),
    ("exp(tr(3*a*S)^2)^0.5", "S", "S: 3 x 3"),
    ("exp(tr(4*a*S)^2)^0.5", "S", "S: 3 x 3"),
    ("cos(1000*tr(A*X))", "X", ""),
    ("sin(100*x'*x)", "x", ""),
])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_large_values_are_verified(loss: str, wrt: str, let: str, seed: int) -> None:
    r = matcalc.grad(loss, wrt, let, seed=seed)
    assert r.check.summary().startswith("verified: SymPy elementwise")
    assert r.steps[-1]["notes"][-1].startswith("derivation: all")  # the derivation's line checks agree too


@pytest.mark.parametrize("loss,wrt,let,exact", [
    ("tr(inv(X)*A)", ["X"], "X: 12 x 12; A: 12 x 12", True),  # exact linear algebra, 16 entries
    ("log(det(X'*X))", ["X"], "X: m x n", True),  # log's value is never needed: still exact
    ("norm2(X*w - y)^2", ["X", "w"], "X: m x n; w: n; y: m", True),
    ("exp(tr(a*S)^2)^0.5", ["S"], "", False),  # 25 digits computing with 40
    ("cos(1000*tr(A*X))", ["X"], "", False),  # float64 differences cannot resolve it: 40 digits
    ("1e-30*sum(exp(x))", ["x"], "", False),  # tiny values: tolerances are relative
    ("0.5*norm2(W2*tanh(W1*x) - y)^2", ["W1", "W2"], "", False),  # several variables per pass
    ("x'*A*x", ["x"], "A: n x n symmetric", True),
    ("sum(relu(W*x))", ["W"], "", True),
])
def test_each_check_catches_a_wrong_gradient(loss: str, wrt: list[str], let: str, exact: bool) -> None:
    r, syms, grads = _parts(loss, wrt, let)
    assert r.check.sympy_exact == exact
    for name in wrt:
        for kind, bad in _wrongs(grads[name]).items():
            if kind == "transpose" and verify_passes(r.loss, {**grads, name: bad}, syms, True, True):
                continue  # G' = G here (a symmetric gradient): not a wrong gradient
            wrong = {**grads, name: bad}
            with pytest.raises(CheckError, match=name):
                verify(r.loss, wrong, syms, use_sympy=True, use_numeric=False)
            if kind != "tiny extra":  # below the numeric check's resolution by design
                with pytest.raises(CheckError, match=name):
                    verify(r.loss, wrong, syms, use_sympy=False, use_numeric=True)


def verify_passes(f, grads, syms, use_sympy: bool, use_numeric: bool) -> bool:
    try:
        verify(f, grads, syms, use_sympy=use_sympy, use_numeric=use_numeric)
        return True
    except CheckError:
        return False


def test_wrong_gradient_of_one_variable_among_many_is_named() -> None:
    text = "z1 = W1*x + b1; h1 = tanh(z1); z2 = W2*h1 + b2; h2 = tanh(z2); z3 = W3*h2 + b3; L = -y'*log(softmax(z3))"
    wrt = ["W1", "b1", "W2", "b2", "W3", "b3"]
    let = "x: n; y: n; W1, W2, W3: n x n; b1, b2, b3: n"
    r, syms, grads = _parts(text, wrt, let)
    grads = {n: r[n].expr for n in wrt}
    f = r.loss
    for name in ("W1", "b3"):
        with pytest.raises(CheckError, match=f"for {name}"):
            verify(f, {**grads, name: al.mul(al.num(Fraction(1000001, 1000000)), grads[name])}, syms,
                   use_numeric=False)


def test_exact_forward_mode_matches_textbook_derivatives() -> None:
    """d det(X) along E_11 is the cofactor C_11; d inv(X) = -inv(X)*dX*inv(X)."""
    X = Sym("X", (2, 2))
    F = Rationals()
    point = {"X": [[Fraction(2), Fraction(1)], [Fraction(3), Fraction(5)]]}
    ev = Evaluator(F, point, {})
    one, zero = F.num(Fraction(1)), F.num(Fraction(0))
    e11 = [[one, zero], [zero, zero]]
    assert ev.value(_op("det", X))[0][0] == 7
    assert ev.tangent(_op("det", X), {"X": e11})[0][0] == 5  # cofactor of entry (1,1)
    d_inv = ev.tangent(_op("inv", X), {"X": e11})
    assert d_inv == [[F.num(Fraction(-25, 49)), F.num(Fraction(5, 49))],
                     [F.num(Fraction(15, 49)), F.num(Fraction(-3, 49))]]


def _op(name, *args):
    from matcalc.core.expr import Op
    return Op(name, args)


def test_grad_without_check_does_not_import_sympy() -> None:
    code = ("import sys, matcalc; r = matcalc.grad('tr(A*X*B)', 'X', check=False); print(r['X'].text); "
            "assert 'sympy' not in sys.modules, 'sympy imported'")
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "A'*B'"


def _program(layers: int) -> tuple[str, str]:
    """An L-layer tanh network with a softmax cross-entropy loss, as a program, and its let."""
    steps, h = [], "x"
    for k in range(1, layers + 1):
        steps.append(f"z{k} = W{k}*{h} + b{k}")
        if k < layers:
            steps.append(f"h{k} = tanh(z{k})")
            h = f"h{k}"
    steps.append(f"L = -y'*log(softmax(z{layers}))")
    let = "x: n; y: n; " + "; ".join(f"W{k}: n x n; b{k}: n" for k in range(1, layers + 1))
    return "; ".join(steps), let


def test_l_layer_program_is_checked_with_sympy() -> None:
    L = 8
    prog, let = _program(L)
    wrt = [f"W{k}" for k in range(1, L + 1)] + [f"b{k}" for k in range(1, L + 1)]
    r = matcalc.grad(prog, wrt, let)
    assert r.check.sympy_entries >= 2 * len(wrt) and r.check.numeric_max_rel_err < 1e-6


def test_operator_without_exact_rule_falls_back_to_sympy(monkeypatch) -> None:
    """An operator matcalc.verify.exact has no rule for is checked by SymPy's symbolic derivative, which
    still catches a wrong gradient."""
    import matcalc.verify.exact as ex
    monkeypatch.delitem(ex._VALUE, "tr")
    r, syms, grads = _parts("tr(inv(X)*A)", ["X"], "X: 3 x 3; A: 3 x 3")
    assert r.check.sympy_exact and r.check.sympy_entries == 9
    with pytest.raises(CheckError, match="SymPy check failed for X"):
        verify(r.loss, {"X": al.transpose(grads["X"])}, syms, use_numeric=False)


def test_vanishing_gradient_is_resolved_in_high_precision() -> None:
    """Deep in a 32-layer network dL/dW1 is below float64's resolution of L: the numeric check
    says so and uses high-precision differences instead of raising a false alarm."""
    prog, let = _program(32)
    r = matcalc.grad(prog, ["W1", "W32"], let, sympy_check=False)
    assert any(n.startswith("W1: float64 differences could not resolve") for n in r.check.notes)
    syms = {n.name: n for n in walk([r.loss]) if isinstance(n, Sym)}
    with pytest.raises(CheckError, match="W1"):
        verify(r.loss, {"W1": al.mul(al.num(2), r["W1"].expr), "W32": r["W32"].expr}, syms, use_sympy=False)


def test_a_zero_claimed_for_a_vanishing_gradient_is_not_verified() -> None:
    """G = 0 claimed for W1 of a 24-layer tanh network, whose true gradient is ~1e-15: the float64
    differences are rounding noise, so the high-precision differences must decide (numeric check
    alone, as where SymPy is skipped)."""
    prog, let = _program(24)
    r = matcalc.grad(prog, ["W1"], let, check=False)
    zero = al.zero(r["W1"].expr.shape)
    with pytest.raises(CheckError):
        verify(r.loss, {"W1": zero}, dict(r.symbols), use_sympy=False)


SATURATED = ("sigmoid(det((A/a)^(k + 1)))", "a: scalar positive; A: D x D spd; k: scalar integer")


def test_a_gradient_that_vanishes_wherever_sampled_is_not_called_verified() -> None:
    """sigmoid of a large det saturates: its gradient is 0.0 at every point tried, where G, 2*G
    and 0 all agree with the differences. The result says which gradients are not verified, and
    a verdict on a claim cannot be 'correct' (it says it cannot decide)."""
    loss, let = SATURATED
    r = matcalc.grad(loss, ["a"], let)
    assert r.check is not None and "a" in r.check.unverified
    assert r.check.summary().startswith("not verified: a")
    twice = f"2*({to_text(r['a'].expr)})"  # written out (its text names parts t1, t2)
    with pytest.raises(matcalc.DomainError, match="cannot decide"):
        matcalc.check(loss, "a", twice, let)
