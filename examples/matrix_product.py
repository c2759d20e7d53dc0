"""Gradients through a matrix product, as in seed note 000 (神经网络的正向和反向传播).

The note works with row vectors, `y = x W` (x: 1 x D, W: D x H), and finds, for any scalar loss L,

    dL/dx = dL/dy W^T        dL/dW = x^T dL/dy

first for a scalar output (H = 1, dL/dy = -1, so dL/dx = -W^T and dL/dW = -x^T), then for a
vector output, then for a matrix output Y = X W ("exactly the same formula"). With column vectors,
`y = W x`, the same reasoning gives

    dL/dW = dL/dy x^T        dL/dx = W^T dL/dy

matcalc derives each case from a program `y = x*W; L = ...`; the error dL/dy is printed as
`delta_y` when it is not a plain symbol. Each result is verified by matcalc's own check (SymPy
entry by entry and a numeric directional derivative), and the vector case is also compared with
the note's entry-by-entry sums (dL/dx_i = sum_j dL/dy_j W_ij, dL/dW_ij = dL/dy_j x_i).

Run: python examples/matrix_product.py
"""
from __future__ import annotations

import numpy as np
from _helpers import banner, close, random_point, show, summary, values

import matcalc

CASES = {
    # name: (program, wrt, declarations)
    "scalar_output": ("y = x*W; L = -y", ["x", "W", "y"], "x: 1 x D; W: D x 1"),
    "rows": ("y = x*W; L = y*c", ["x", "W", "y"], "x: 1 x D; W: D x H; c: H"),
    "rows_any_loss": ("y = x*W; L = 0.5*norm2(y - t)^2", ["x", "W"], "x: 1 x D; W: D x H; t: 1 x H"),
    "matrix_output": ("Y = X*W; L = 0.5*norm2(Y - T)^2", ["X", "W"], "X: N x D; W: D x H; T: N x H"),
    "columns": ("y = W*x; L = c'*y", ["x", "W", "y"], "x: D; W: H x D; c: H"),
    "columns_any_loss": ("y = W*x; L = 0.5*norm2(y - t)^2", ["x", "W"], "x: D; W: H x D; t: H"),
}

TITLES = {
    "scalar_output": "row vector, scalar output (H = 1): dL/dy = -1, dL/dx = -W', dL/dW = -x'",
    "rows": "row vectors, vector output: dL/dx = dL/dy*W', dL/dW = x'*dL/dy (here dL/dy = c')",
    "rows_any_loss": "row vectors, any loss: the same formulas with dL/dy = delta_y",
    "matrix_output": "matrix output Y = X*W: dL/dX = dL/dY*W', dL/dW = X'*dL/dY",
    "columns": "column vectors y = W*x: dL/dW = dL/dy*x', dL/dx = W'*dL/dy (here dL/dy = c)",
    "columns_any_loss": "column vectors, any loss: the same with dL/dy = delta_y",
}


def note_sums(x: np.ndarray, W: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The note's entry-by-entry chain rule for y = x W (x: 1 x D, W: D x H, g = dL/dy: 1 x H)."""
    D, H = W.shape
    dx = np.array([[sum(g[0, j] * W[i, j] for j in range(H)) for i in range(D)]])
    dW = np.array([[g[0, j] * x[0, i] for j in range(H)] for i in range(D)])
    return dx, dW


def entrywise_check(r: matcalc.Result) -> float:
    """Compare the derived dL/dx and dL/dW of the `rows` case with the note's sums, at the note's
    sizes D = 4, H = 2 and a random point."""
    dims = {"D": 4, "H": 2}
    env = random_point(r, dims, seed=1)
    v = values(r, env, dims)
    dx, dW = note_sums(env["x"], env["W"], v["d/dy"])
    return max(close(v["d/dx"], dx), close(v["d/dW"], dW))


def main(sympy: bool = True) -> dict:
    banner("Seed note 000: y = x*W (rows) and y = W*x (columns)")
    out: dict = {}
    for name, (program, wrt, let) in CASES.items():
        r = matcalc.grad(program, wrt, let, sympy_check=sympy)
        show(TITLES[name], r)
        out[name] = summary(r)
        if name == "rows":
            out["rows_entrywise_err"] = entrywise_check(r)
            print(f"note's entry-by-entry sums (D=4, H=2) agree: rel. err {out['rows_entrywise_err']:.0e}")
    return out


if __name__ == "__main__":
    main()
