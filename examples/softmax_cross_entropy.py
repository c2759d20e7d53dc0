"""Softmax cross-entropy by the differential method, as in seed note 001 (神经网络的反向传播实例).

Example 1 of the note: l = -y^T log softmax(a), a: m x 1. Taking differentials and trace tricks it
finds dl/da = softmax(a) - y. That step uses 1^T y = 1 (y a probability vector); in general

    dl/da = sum(y)*softmax(a) - y

which is what matcalc derives unless `y: probability` is declared. At a y that does not sum to 1
the note's formula misses (sum(y) - 1)*softmax(a); this script shows it numerically.

Example 2: the two-layer network l = -y^T log softmax(W2 sigma(W1 x)) written as the note's steps
a1 = W1 x, h1 = sigma(a1), a2 = W2 h1. The note finds

    dl/da2 = softmax(a2) - y          dl/dW2 = dl/da2 h1^T
    dl/dh1 = W2^T dl/da2              dl/da1 = dl/dh1 .* sigma'(a1)      dl/dW1 = dl/da1 x^T

matcalc names dl/da2 `delta2` and dl/da1 `delta1`, and writes sigma'(a1) = h1 .* (1 - h1).

Run: python examples/softmax_cross_entropy.py   (add --no-sympy to skip the SymPy entry check)
"""
from __future__ import annotations

import sys

import numpy as np
from _helpers import banner, close, random_point, show, summary, values

import matcalc

LOSS = "l = -y'*log(softmax(a))"
NETWORK = "a1 = W1*x; h1 = sigmoid(a1); a2 = W2*h1; l = -y'*log(softmax(a2))"


def softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max())
    return e / e.sum()


def note_formula_error(r: matcalc.Result) -> dict:
    """At a y with sum(y) = 1.4, compare the derived gradient and the note's softmax(a) - y with a
    central difference of the loss; the relative errors, and that derived - note = 0.4*softmax(a)."""
    dims = {"m": 3}
    env = random_point(r, dims, seed=3, given={"y": [0.5, 0.8, 0.1]})
    v = values(r, env, dims)
    fd = np.zeros((3, 1))
    for i in range(3):
        step = np.zeros((3, 1))
        step[i] = 1e-6
        lp = values(r, {**env, "a": env["a"] + step}, dims)["loss"]
        lm = values(r, {**env, "a": env["a"] - step}, dims)["loss"]
        fd[i] = (lp - lm)[0, 0] / 2e-6
    note = softmax(env["a"]) - env["y"]
    return {"derived_vs_fd": close(v["d/da"], fd, 1e-7),
            "note_vs_fd": float(np.max(np.abs(note - fd))),
            "derived_minus_note": close(v["d/da"] - note, 0.4 * softmax(env["a"]))}


def main(sympy: bool = True) -> dict:
    banner("Seed note 001, example 1: l = -y'*log(softmax(a))")
    out: dict = {}
    general = matcalc.grad(LOSS, "a", "a: m", sympy_check=sympy)
    show("y arbitrary: dl/da = sum(y)*softmax(a) - y", general)
    prob = matcalc.grad(LOSS, "a", "a: m; y: probability", sympy_check=sympy)
    show("y: probability (sum(y) = 1), as the note assumes: dl/da = softmax(a) - y", prob)
    out["a_general"], out["a_probability"] = summary(general), summary(prob)
    out["note_check"] = errs = note_formula_error(general)
    print(f"\nat y = (0.5, 0.8, 0.1)': derived gradient vs central difference: rel. err {errs['derived_vs_fd']:.0e};"
          f"\n  the note's softmax(a) - y is off by up to {errs['note_vs_fd']:.2f}:"
          " it misses exactly (sum(y) - 1)*softmax(a)")

    banner("Seed note 001, example 2: l = -y'*log(softmax(W2*sigmoid(W1*x)))")
    net = matcalc.grad(NETWORK, ["W1", "W2"], "y: probability", sympy_check=sympy)
    show("the note's steps, y: probability", net)
    out["network"] = summary(net)
    h1 = matcalc.grad(NETWORK, ["W1", "W2", "h1"], "y: probability", sympy_check=False)
    show("also asking for dl/dh1 = W2'*dl/da2 (numeric check only)", h1)
    out["network_h1"] = summary(h1)
    anyy = matcalc.grad(NETWORK, ["W1", "W2"], sympy_check=sympy)
    show("y arbitrary: delta2 = sum(y)*softmax(a2) - y", anyy)
    out["network_general"] = summary(anyy)
    return out


if __name__ == "__main__":
    main(sympy="--no-sympy" not in sys.argv)
