"""One regression test per class of defect the fuzz harness found (benchmarks/fuzz.py)."""
from __future__ import annotations

import numpy as np
import pytest

import matcalc
from matcalc import fuzz
from matcalc.cli import main


def _cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_symbol_that_cancels_has_a_zero_gradient_not_an_error() -> None:
    r = matcalc.grad("norm2(A - A)", "A")
    assert r["A"].text == "zeros(n,m)" and any("does not occur in the loss once" in n for n in r.notes)


def test_symbols_of_unused_steps_get_values_in_every_check(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = _cli(capsys, "check", "s1 = 1 + a^2; L = sum(0.1*r)", "--wrt", "a", "--claim", "2*a",
                        "--let", "r: 1 x D; a: scalar")
    assert code == 1 and out.startswith("wrong") and "the gradient is 0" in out
    code, out, _ = _cli(capsys, "grad", "a1 = -A; L = norm1(B)", "--wrt", "A", "--wrt", "a1", "--steps",
                        "--format", "markdown")
    assert code == 0 and r"\frac{\partial L}{\partial A} &= \mathbf{0}" in out
    code, out, _ = _cli(capsys, "check", "delta1 = 3*tanh(x); loss = step(abs(a))", "--claim-differential", "df = 0")
    assert code == 0 and out.startswith("correct")


def test_a_dimension_used_as_a_number_has_a_size_in_the_checks() -> None:
    r = matcalc.grad("h1 = r - r; delta2 = x; f = a/k", ["x", "a"], "a: scalar; r: 1 x k; x: k")
    assert r.check is not None and r.check.summary().startswith("verified") and r["a"].text in ("1/k", "k^-1")


def test_claims_may_use_the_dimension_names_of_the_loss() -> None:
    assert matcalc.check("tr(log_softmax(A))", "A", "eye(n) - softmax(A)", "A: invertible")


def test_verdicts_compare_where_the_true_gradient_is_defined() -> None:
    assert matcalc.check("delta1 = diag(a + b); delta2 = abs(A); E = tr(norm2(delta1))", "a",
                         "diag(diag(a + b)/norm2(diag(a + b)))", "A: n x n spd; a, b: scalar")


def test_softmax_of_one_row_is_one_and_its_loss_has_a_finite_gradient() -> None:
    r = matcalc.grad("z1 = x; f = norm2(log(softmax(r))) + sum(z1)", ["r", "x"], "x: vector(p); r: 1 x q")
    assert r["r"].text == "zeros(1,q)" and r.check is not None and r.check.summary().startswith("verified")


def test_a_number_alone_in_a_call_is_a_scalar() -> None:
    r = matcalc.grad("sigmoid(abs(diag(2)))^0.5 + sum(x)", "x", "x: 2")
    assert r["x"].text == "ones(2)"
    r = matcalc.grad("diag(exp(diag(1.5))/sum(x))", "x", "x: k positive")
    back = matcalc.parse(r["x"].text, "x: k positive")
    assert back == r["x"].expr


def test_a_zero_derivative_is_confirmed_within_rounding() -> None:
    for seed in range(8):
        r = matcalc.grad("tr(a) + x'*A*x - a", ["a", "A"], "a: scalar; x: m probability; A: m x m diagonal",
                         seed=seed)
        assert r["a"].text == "0" and r.check is not None and r.check.summary().startswith("verified")


def test_a_parse_error_shows_only_the_offending_line(capsys: pytest.CaptureFixture) -> None:
    code, _, err = _cli(capsys, "check", "x'*x", "--wrt", "x", "--claim", "2*x\n+ (")
    assert code == 2 and err.startswith("matcalc: ParseError:") and "(line 1)" in err and "+ (" not in err


def test_declared_sizes_too_large_to_check_are_not_called_verified() -> None:
    r = matcalc.grad("tr(X)", "X", "X: 1000000 x 1000000")
    assert r.check is not None and r.check.summary().startswith("not verified (a declared size 1000000")
    r = matcalc.grad("tr(inv(X)*A)", "X", "X: 30 x 30")
    assert r.check is not None and r.check.summary().startswith("verified: numeric")
    assert "SymPy" not in r.check.summary()


def test_a_doubled_gradient_is_wrong_even_where_float64_saturates() -> None:
    """tanh(det(X)) saturates in float64 for a large det: G and 2*G both evaluate to 0.0 there.
    The verdict must still say wrong (the checks run the claim, and points are also sampled small)."""
    g = "3*det(X)*tanh(det(X))^2*(1 - tanh(det(X))^2)*inv(X)'"
    assert matcalc.check("tanh(det(X))^3", "X", g, "X: p x p spd")
    assert not matcalc.check("tanh(det(X))^3", "X", f"2*{g}", "X: p x p spd")


def test_softmax_identities_make_constant_losses_zero_gradients() -> None:
    r = matcalc.grad("logsumexp(log_softmax(x))", "x", "x: m")
    assert r["x"].text == "zeros(m)" and r.check is not None and r.check.summary().startswith("verified")
    assert matcalc.grad("log(sum(softmax(x)))", "x", "x: p")["x"].text == "zeros(p)"


def test_powers_the_engine_prints_read_back() -> None:
    let = "x: D positive; A: q x q spd"
    r = matcalc.grad("x'*x*cos(-2) + norm2((A^3)^3)", ["A", "x"], let, check=False)
    assert "A^17" in r["A"].text and matcalc.parse(r["A"].text, let) == r["A"].expr
    with pytest.raises(matcalc.LimitError, match="at most 128"):
        matcalc.grad("tr((X^64)^3)", "X")


def test_a_claim_is_judged_even_when_another_variable_has_no_gradient() -> None:
    """A symbolic power X^k of an unrelated symbol must not make the verdict on `a` fail."""
    assert matcalc.check("e4 = diag(Y^k2); E = a^3 + sum(e4)", "a", "3*a^2", "k2: scalar integer; a: scalar; Y: q x q")


def test_an_inverse_in_the_loss_is_never_sampled_singular() -> None:
    r = matcalc.grad("delta1 = inv(A) + (A'*A + eye); Z2 = inv(B'*B); loss = inv(x'*x + eye) + sum(Z2)",
                     ["x", "Z2"], "A: q x q spd; x: q")
    assert r.check is not None and r.check.summary().startswith("verified")


# ---- seed 2032 (100,000 cases) ----------------------------------------------------------------------

def test_a_program_derivation_differentiates_only_the_steps_that_depend_on_a_variable() -> None:
    """s3 = adj(a2./B) depends on no variable asked for: the engine never differentiated it, and the
    derivation by steps must not try (it had no rule for adj(a2./B) and --steps failed)."""
    r = matcalc.grad("e1 = 0.5*x; a2 = inv(A); s3 = adj(a2./B); loss = (r*s3 + s*C)*y", ["s", "e1"],
                     "r: 1 x p; A: spd; y: p probability; s: 1 x D; B: p x p positive; x: D")
    text = r.steps_text()
    assert "dloss/ds" in text and "adj" not in text.split("differential:")[-1]


def test_the_harness_counts_cannot_decide_as_no_point() -> None:
    """A verdict that cannot decide (the gradient 0 wherever sampled) is a documented refusal,
    like 'could not find a point': not a crash of the tool."""
    assert fuzz._no_point("cannot decide: the gradient is 0 to working precision at every point tried")
    assert fuzz._no_point("could not find a point where the loss and its gradient are defined")
    assert not fuzz._no_point("KeyError: 'B'")


# ---- seed 2033 (100,000 cases) ----------------------------------------------------------------------

def test_a_symbolic_matrix_power_with_a_huge_offset_is_an_input_limit() -> None:
    """X^(k - 9e91) hung the checks (X raised to that power exactly): it is refused as any
    matrix power over the limit is."""
    with pytest.raises(matcalc.LimitError, match="matrix power"):
        matcalc.grad("det(A^(k2 - 9e91))", "A", "A: k x k invertible; k2: scalar integer")


def _fd_verdicts(loss: str, wrt: list[str], let: str, seeds: range) -> list[dict]:
    case = fuzz.Case("loss", loss, wrt, let, [(None, loss)])
    r = matcalc.grad(loss, wrt, let, check=False)
    return [fuzz.oracle_fd(case, r, fuzz._model(case, r, np.random.default_rng(s)))[1] for s in seeds]


def test_the_harness_does_not_judge_a_gradient_through_a_float_overflow() -> None:
    """exp(-exp(det(X^4))): exp(det) is inf inside a loss that is 0, and the gradient inf*0 = NaN;
    central differences of the finite loss cannot judge that: inconclusive, never wrong."""
    verdicts = _fd_verdicts("exp(0.1*a^3 - exp(det(A^(k2 + 1))))", ["A", "a"],
                            "k2: scalar integer; a: scalar; A: k x k invertible", range(6))
    assert all(v["A"] in ("ok", "inconclusive") for v in verdicts)
    assert any(v["A"] == "inconclusive" for v in verdicts)


def test_the_harness_weighs_the_gradients_own_rounding() -> None:
    """A gradient exactly 0 in exact arithmetic may be 1e-7 in float64 (a det of a singular
    product times a large adjugate): the harness estimates that rounding and does not call the
    gradient wrong because of it; a doubled gradient is still wrong."""
    case = fuzz.Case("loss", "sum(A*x)", ["x"], "", [(None, "sum(A*x)")])
    r = matcalc.grad("sum(A*x)", ["x"], check=False)
    model = fuzz._model(case, r, np.random.default_rng(0))
    env = model.point()
    base = model.run(env)
    spread = fuzz.gradient_spread(model, env, base, r["x"].expr)
    assert 0 <= spread < 1e-10  # a plain product: rounding only
    doubled = 2 * fuzz.eval_grad(model, env, base, r["x"].expr)
    assert fuzz.fd_compare(model, env, base, "x", doubled, spread)[0] == "wrong"


def test_a_step_that_is_singular_everywhere_gets_no_inverse_formula() -> None:
    """Z1 = A - A is 0: as the symbol of dL/dZ1 it must not count as a generic square matrix (the
    adjugate's inv(Z1) form was NaN at the program's point); the engine says it has no rule."""
    with pytest.raises(matcalc.UnsupportedError, match="adj"):
        matcalc.grad("Z1 = A - A; A2 = adj(Z1); z3 = A2; f = tanh(a) + sum(z3)", ["A", "a", "Z1", "z3"],
                     "A: m x m; a: scalar")
    r = matcalc.grad("S = X; L = tr(adj(S))", ["S"], "X: n x n")  # a square variable's step stays generic
    assert "inv(X)" in r["S"].text and r.check is not None and r.check.summary().startswith("verified")


# ---- seed 2034 (100,000 cases) ----------------------------------------------------------------------

def test_a_verdict_names_deltas_only_for_steps_with_a_gradient() -> None:
    """Z4 = adj(-A3) with A3 a diagonal step: dL/dA3 has no rule; the verdict's names for the
    derivation's deltas skip it instead of failing the check of another variable."""
    v = matcalc.check("z1 = a*A; h2 = B*z1 + 3*C; A3 = diag(1 + x.^2); Z4 = adj(-A3); f = b + 0.5*(b - a) + sum(Z4)",
                      "A", "zeros(q,3)", "C: m x 3; A: q x 3; x: 3; B: m x q; a, b: scalar")
    assert v.correct


def test_the_line_check_moves_to_a_point_where_every_line_is_defined(capsys) -> None:
    """norm2(step(r)) has a line tr(step(r)'*d(step(r)))/norm2(step(r)), undefined where step(r)
    is 0: the line check takes another point (no error, no warning on stderr)."""
    args = ["grad", "s1 = 1 + (-A).^2; E = norm2(step(r)) + sum(s1)", "--wrt", "A", "--wrt", "r", "--wrt", "s1",
            "--let", "A: q x q; r: 1 x q", "--format", "markdown"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert err == "" and "\\partial E" in out
    r = matcalc.grad(args[1], ["A", "r", "s1"], args[-3])
    assert any("lines checked numerically" in n for n in r.steps[-1]["notes"])



# ---- seed 2036 (100,000 cases) ----------------------------------------------------------------------

def test_the_high_precision_differences_survive_a_loss_beyond_float64(capsys) -> None:
    """exp(k*tr(A^(k+1))) overflows float64 at the point: the high-precision differences sized
    their step and digits from inf (an OverflowError traceback, exit 1), then from a cap of 1e300
    (too few digits for a loss of 1e434: a CheckError on a correct gradient). Their digits now
    come from the largest value computed in high precision; a doubled claim is still wrong."""
    loss, let = "exp(k2*tr(A^(k2 + 1))) + -tanh(r)*diag(B/0.5)", "A: k x k spd; r: 1 x p; k2: scalar integer"
    for seed in range(4):
        code = main(["grad", loss, "--wrt", "r", "--wrt", "B", "--let", let, "--seed", str(seed)])
        out, err = capsys.readouterr()
        assert code == 0 and err == "" and "verified: SymPy elementwise" in out, (seed, err)
    assert matcalc.check(loss, "r", "-2*diag(2*B)'.*(1 - tanh(r).^2)", let).verdict == "wrong"
