"""Gradients with respect to a program's named steps: dL/d(step) is the program's own meaning
(the step's value perturbed, the later steps recomputed), never a silent zero."""
from __future__ import annotations

import numpy as np
import pytest

import matcalc
from matcalc.api import load, parse
from matcalc.verify.evaluate import numeric


def evaluate_numpy(e, env: dict, dims: dict) -> np.ndarray:
    """The float value of one tree at the point `env`."""
    return numeric([e], env, dims)[0]


def _program_derivative(prog_text: str, step: str, let: str, point: dict, direction: np.ndarray) -> float:
    """Central difference of the loss along `direction` in the value of `step`, by evaluating the
    program statement by statement (each statement parsed with the earlier ones as symbols)."""
    def loss(t: float) -> float:
        env = dict(point)
        decls = let
        for stmt in prog_text.split(";"):
            name, _, rhs = stmt.partition("=")
            e = parse(rhs.strip(), decls)
            value = np.asarray(evaluate_numpy(e, env, {}), dtype=float)
            if name.strip() == step:
                value = value + t * direction
            env[name.strip()] = value
            rows, cols = value.shape
            decls = f"{decls}; {name.strip()}: {rows} x {cols}" if decls else f"{name.strip()}: {rows} x {cols}"
        return float(value[0, 0])
    h = 1e-5
    return (loss(h) - loss(-h)) / (2 * h)


CASES = [
    ("s1 = exp(a); L = log(s1)", "s1", "a: scalar", {"a": np.array([[0.3]])}),
    ("s1 = inv(S); L = det(s1)", "s1", "S: 3 x 3",
     {"S": np.array([[2.0, 0.3, 0.1], [0.2, 1.5, 0.4], [0.1, 0.3, 1.8]])}),
    ("h1 = -4; h2 = h1/2; L = h2/a", "h1", "a: scalar", {"a": np.array([[0.7]])}),
    ("u = x.^2; v = u.^3; L = sum(v) + sum(u)", "u", "x: 3", {"x": np.array([[0.5], [-0.4], [1.1]])}),
    ("t = x'; L = t*x + sum(exp(x))", "t", "x: 2", {"x": np.array([[0.5], [-0.4]])}),
]


@pytest.mark.parametrize("prog, step, let, point", CASES)
def test_step_gradient_matches_the_program(prog: str, step: str, let: str, point: dict) -> None:
    wrt = [step] + sorted(point)
    r = matcalc.grad(prog, wrt, let)
    assert r.check is not None and r.check.summary().startswith("verified")
    program = load(prog, matcalc.api._decls(let))
    env = dict(point)
    for name, e in program.intermediates.items():
        env[name] = np.asarray(evaluate_numpy(e, env, {}), dtype=float)
    g = np.asarray(evaluate_numpy(r[step].expr, env, {}), dtype=float)
    assert np.any(g != 0), "a step's gradient must not be a silent zero here"
    rng = np.random.default_rng(1)
    v = rng.standard_normal(g.shape)
    fd = _program_derivative(prog, step, let, point, v)
    assert abs(fd - float(np.sum(g * v))) <= 1e-6 * max(1.0, abs(fd))


def test_issue_examples_read_as_expected() -> None:
    assert matcalc.grad("s1 = exp(a); L = log(s1)", ["a", "s1"])["s1"].text in ("s1^-1", "1/s1")
    assert matcalc.grad("s1 = inv(S); L = det(s1)", ["S", "s1"])["s1"].text == "det(s1)*S'"
    assert matcalc.grad("h1 = -4; h2 = h1/2; L = h2/a", ["a", "h1"])["h1"].text != "0"


def test_unused_step_has_zero_gradient_with_a_note() -> None:
    r = matcalc.grad("s = exp(a); L = a^2", ["a", "s"])
    assert r["s"].text == "0"
    assert any("s is not used" in n for n in r.notes)


def test_a_step_that_is_a_number_is_a_scalar_where_used() -> None:
    r = matcalc.grad("z3 = exp(0.5); E = 2*z3^0.5/z3 + a", ["z3", "a"])
    assert r["z3"].text == "-1/z3^1.5"


def test_names_made_for_the_result_never_reuse_the_programs_names() -> None:
    prog = "t1 = W*x; z3 = tanh(t1); f = sum(exp(z3)) + sum(exp(z3).*z3)"
    r = matcalc.grad(prog, ["W", "t1"])
    names = [n for n, _ in r.where_text]
    assert len(names) == len(set(names)) and names.count("t1") == 1
    assert dict(r.where_text)["t1"] == "W*x" and any(n.startswith("t") and n != "t1" for n in names)
