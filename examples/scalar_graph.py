"""Scalar computational graphs and a tiny training loop, as in seed note 004 (3 反向传播).

The note's graphs (all scalars): y_hat = x*w, r = y_hat - y, loss = r^2, so
dloss/dw = 2*r*x = 2*x*(x*w - y); with a bias y_hat = x*w + b; and the quadratic model
y_hat = w1*x^2 + w2*x + b. Its worked numbers:

    x = 2, w = 1, y = 4:                  loss = 4,  dloss/dw = -8
    x = 1, w = 1, b = 2, y = 2:           loss = 1,  dloss/dw = 2,  dloss/db = 2
    x = 2, w1 = 2, w2 = 2, b = 1, y = 9:  loss = 16, dloss/dw1 = 32, dloss/dw2 = 16, dloss/db = 8

Every number below comes from evaluating matcalc's derived expressions (matcalc.verify.evaluate.numeric).
Then the note's PyTorch loop (fit w in y = 2x on x = (1, 2, 3), learning rate 0.01, 100 epochs)
is redone with the derived gradient of loss = norm2(x*w - y)^2 (x, y: vectors of 3, w: scalar),
by full-batch gradient descent: w -> 2.

Run: python examples/scalar_graph.py
"""
from __future__ import annotations

import numpy as np
from _helpers import banner, show, summary, values

import matcalc

SCALARS = "x, w, w1, w2, b, y: scalar"
WORKED = {
    # name: (loss, wrt, point)
    "linear": ("y_hat = x*w; r = y_hat - y; loss = r^2", ["w", "r"], {"x": 2, "w": 1, "y": 4}),
    "bias": ("loss = (x*w + b - y)^2", ["w", "b"], {"x": 1, "w": 1, "b": 2, "y": 2}),
    "quadratic": ("loss = (w1*x^2 + w2*x + b - y)^2", ["w1", "w2", "b"], {"x": 2, "w1": 2, "w2": 2, "b": 1, "y": 9}),
}
FIT = ("loss = norm2(x*w - y)^2", "w", "w: scalar; x, y: 3")


def at(r: matcalc.Result, point: dict[str, float]) -> dict[str, float]:
    """The loss and every derived gradient of a scalar program, evaluated at `point`."""
    v = values(r, {n: np.array([[float(point[n])]]) for n in r.symbols}, {})
    return {k: float(a[0, 0]) for k, a in v.items() if k == "loss" or k.startswith("d/d")}


def fit(lr: float = 0.01, epochs: int = 100, w0: float = 1.0) -> tuple[matcalc.Result, list[float]]:
    """Gradient descent on w with the derived gradient; returns the result and w after each epoch."""
    r = matcalc.grad(*FIT)
    x, y = np.array([[1.0], [2.0], [3.0]]), np.array([[2.0], [4.0], [6.0]])
    ws = [w0]
    for _ in range(epochs):
        g = values(r, {"x": x, "y": y, "w": np.array([[ws[-1]]])}, {})["d/dw"]
        ws.append(ws[-1] - lr * float(g[0, 0]))
    return r, ws


def main(sympy: bool = True) -> dict:
    banner("Seed note 004: scalar computational graphs")
    out: dict = {}
    for name, (loss, wrt, point) in WORKED.items():
        r = matcalc.grad(loss, wrt, SCALARS, sympy_check=sympy)
        show(name, r)
        out[name] = {**summary(r), "values": at(r, point)}
        shown = ", ".join(f"{k} = {v:g}" for k, v in out[name]["values"].items())
        print(f"at {', '.join(f'{k}={v}' for k, v in point.items())}:  {shown}")

    banner("Seed note 004: fitting w in y = 2x with the derived gradient")
    r, ws = fit()
    show("loss over the three samples", r)
    for epoch in (0, 1, 2, 5, 10, 100):
        print(f"epoch {epoch:3d}: w = {ws[epoch]:.10f}")
    print(f"predict (after training) x = 4: {4 * ws[-1]:.6f}")
    out["fit"] = {**summary(r), "w": ws}
    return out


if __name__ == "__main__":
    main()
