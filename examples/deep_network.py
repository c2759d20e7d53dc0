"""The error-term recursion of an L-layer network, as in seed note 002 (前向传播、反向传播和计算图).

Forward pass (note 002): z_l = W_l a_{l-1} + b_l, a_l = f_l(z_l), a_0 = x, o = a_L; objective
J = l(o, y) + lambda/2 (||W_1||_F^2 + ... + ||W_L||_F^2). The note keeps f_l generic; here every
f_l is instantiated as the sigmoid (so f'(z_l) = a_l .* (1 - a_l)) and l(o, y) = 0.5*||o - y||^2.
The note's results:

    delta_l = dJ/dz_l = f'(z_l) .* (W_{l+1}^T delta_{l+1})
    dJ/dW_l = delta_l a_{l-1}^T  (+ lambda W_l from the regulariser)        dJ/db_l = delta_l

The program is `z1 = W1*x + b1; a1 = sigmoid(z1); ...; J = 0.5*norm2(aL - y)^2 + lam/2*(...)`;
matcalc names dJ/dz_l `delta<l>`. The script reads the recursion off the printed texts, then
evaluates every delta_l at a random point (matcalc.verify.evaluate.numeric) and checks the recursion
with an independent NumPy sigmoid.

Run: python examples/deep_network.py [--sympy]   (the SymPy entry check takes about 30 s
for L = 3; the numeric check always runs)
"""
from __future__ import annotations

import sys

import numpy as np
from _helpers import banner, close, random_point, show, summary, values

import matcalc

SIZES = (4, 5, 3, 2)  # M0 (input), M1, M2, M3 (output): sizes for the numeric evaluation


def program(L: int) -> str:
    lines, prev = [], "x"
    for l in range(1, L + 1):
        lines.append(f"z{l} = W{l}*{prev} + b{l}; a{l} = sigmoid(z{l})")
        prev = f"a{l}"
    reg = " + ".join(f"norm2(W{l})^2" for l in range(1, L + 1))
    return "\n".join(lines + [f"J = 0.5*norm2(a{L} - y)^2 + lam/2*({reg})"])


def declarations(L: int) -> str:
    layers = "; ".join(f"W{l}: M{l} x M{l - 1}; b{l}: M{l}" for l in range(1, L + 1))
    return f"lam: scalar positive; x: M0; {layers}; y: M{L}"


def expected_texts(L: int) -> dict[str, str]:
    """The note's formulas in matcalc's syntax (sigmoid instantiated)."""
    out = {f"delta{L}": f"a{L}.*(1 - a{L}).*(a{L} - y)"}
    for l in range(1, L):
        out[f"delta{l}"] = f"a{l}.*(W{l + 1}'*delta{l + 1}).*(1 - a{l})"
    for l in range(1, L + 1):
        prev = "x" if l == 1 else f"a{l - 1}"
        out[f"d/dW{l}"] = f"delta{l}*{prev}' + lam*W{l}"
        out[f"d/db{l}"] = f"delta{l}"
    return out


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def recursion_errors(r: matcalc.Result, L: int, seed: int = 0) -> dict[str, float]:
    """At a random point: delta_L = f'(z_L) .* (a_L - y), delta_l = f'(z_l) .* (W_{l+1}' delta_{l+1}),
    dJ/dW_l = delta_l a_{l-1}' + lam W_l and dJ/db_l = delta_l, with f' from NumPy's own sigmoid."""
    dims = {f"M{i}": n for i, n in enumerate(SIZES[: L + 1])}
    env = random_point(r, dims, seed)
    v = values(r, env, dims)
    fprime = {l: sigmoid(v[f"z{l}"]) * (1 - sigmoid(v[f"z{l}"])) for l in range(1, L + 1)}
    errs = {f"delta{L}": close(v[f"delta{L}"], fprime[L] * (v[f"a{L}"] - env["y"]))}
    for l in range(1, L):
        errs[f"delta{l}"] = close(v[f"delta{l}"], fprime[l] * (env[f"W{l + 1}"].T @ v[f"delta{l + 1}"]))
    for l in range(1, L + 1):
        prev = env["x"] if l == 1 else v[f"a{l - 1}"]
        errs[f"dW{l}"] = close(v[f"d/dW{l}"], v[f"delta{l}"] @ prev.T + env["lam"] * env[f"W{l}"])
        errs[f"db{l}"] = close(v[f"d/db{l}"], v[f"delta{l}"])
    return errs


def main(L: int = 3, sympy: bool = False) -> dict:
    banner(f"Seed note 002: a {L}-layer network, sigmoid activations, L2-regularised squared error")
    wrt = [f"{p}{l}" for l in range(1, L + 1) for p in "Wb"]
    r = matcalc.grad(program(L), wrt, declarations(L), sympy_check=sympy)
    show("gradients of J (delta_l = dJ/dz_l)", r)
    where, grads = dict(r.where_text), {f"d/d{n}": g.text for n, g in r.gradients.items()}
    print("\nthe note's formulas, read off the result:")
    for l in range(L, 0, -1):
        print(f"  delta{l} = {where[f'delta{l}']}")
    for l in range(1, L + 1):
        print(f"  dJ/dW{l} = {grads[f'd/dW{l}']}    dJ/db{l} = {grads[f'd/db{l}']}")
    errs = recursion_errors(r, L)
    print(f"\nrecursion checked numerically at a random point (sizes {SIZES[:L + 1]}): "
          f"max rel. err {max(errs.values()):.0e}")
    return {**summary(r), "expected": expected_texts(L), "recursion_errors": errs}


if __name__ == "__main__":
    main(sympy="--sympy" in sys.argv)
