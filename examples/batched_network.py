"""One layer and a three-layer network over a batch of m samples, as in seed note 003 (深度学习的反向传播).

Note 003 uses y for a layer's pre-activation and a for its activation: y = W X + b, a = g(y).
Its one-layer formulas, for an upstream error dE/dy, are

    single sample:  dE/dX = W^T dE/dy      dE/dW = dE/dy X^T        dE/db = dE/dy
    batch of m:     dE/dX = W^T dE/dy      dE/dW = dE/dy X^T / m    dE/db = sum(dE/dy, axis=1) / m

and its three-layer network is X: 3 x m -> 5 units (g) -> 3 units (g) -> 2 units (sigma) -> E.
The note leaves g and E open. Here g = tanh, and E is the mean binary cross-entropy
E = -sum(T .* log(a3) + (1 - T) .* log(1 - a3)) / m with T (the note's y^true): 2 x m.

What matcalc derives (delta_l = the per-sample error at y_l, so the 1/m of the mean stays outside):

    delta3 = a3 - T      delta2 = (W3'*delta3).*(1 - a2.^2)      delta1 = (W2'*delta2).*(1 - a1.^2)
    dE/dW_l = delta_l*a_{l-1}'/m      dE/db_l = delta_l*ones(m)/m      dE/dX = W1'*delta1/m

The note's mistakes, shown below:
  * its dE/dX for the first layer is (W^[2])^T dE/dy^[1]: W^[2]' is 5 x 3 and dE/dy^[1] is 5 x m,
    so it cannot even be formed; the right factor is W^[1]' (matcalc: W1'*delta1/m);
  * its element-by-element dE/dW matrix has dE/dy_1 x_3 in position (1,2), where dE/dy_1 x_2 belongs
    (its final dE/dy X^T is right);
  * with dE/dy the per-sample error (as its /m in dE/dW and dE/db assumes), dE/dX also needs the /m.

Run: python examples/batched_network.py [--sympy]   (the SymPy entry check of the three-layer
network takes over a minute; the numeric check always runs)
"""
from __future__ import annotations

import sys

from _helpers import banner, random_point, show, summary, values

import matcalc

LAYER = ("y = W*x + b; E = u'*y", ["x", "W", "b", "y"], "x: 3; W: 2 x 3; b: 2; u: 2")
BATCH_LAYER = ("y = W*X + b*ones(m)'; E = sum(U.*y)/m", ["X", "W", "b", "y"], "X: 3 x m; W: 2 x 3; b: 2; U: 2 x m")

NETWORK = """y1 = W1*X + b1*ones(m)'; a1 = tanh(y1)
y2 = W2*a1 + b2*ones(m)'; a2 = tanh(y2)
y3 = W3*a2 + b3*ones(m)'; a3 = sigmoid(y3)
E = -sum(T.*log(a3) + (1 - T).*log(1 - a3))/m"""
NETWORK_WRT = ["W1", "b1", "W2", "b2", "W3", "b3", "X"]
NETWORK_LET = "X: 3 x m; W1: 5 x 3; b1: 5; W2: 3 x 5; b2: 3; W3: 2 x 3; b3: 2; T: 2 x m"


def element_matrix_mistake(r: matcalc.Result) -> dict[str, float]:
    """Entry (1,2) of the derived dE/dW against dE/dy_1 x_2 (right) and the note's dE/dy_1 x_3."""
    env = random_point(r, {}, seed=2)
    dW, u, x = values(r, env, {})["d/dW"], env["u"], env["x"]
    return {"dW12": float(dW[0, 1]), "dEdy1_x2": float(u[0, 0] * x[1, 0]), "note_dEdy1_x3": float(u[0, 0] * x[2, 0])}


def first_layer_dX_mistake() -> str:
    """The note's dE/dX = (W^[2])^T dE/dy^[1] in matcalc: a ShapeError."""
    try:
        matcalc.parse("W2'*D1", "W2: 3 x 5; D1: 5 x m")
    except matcalc.MatcalcError as e:
        return f"{type(e).__name__}: {e}"
    return "no error"


def main(sympy: bool = False) -> dict:
    banner("Seed note 003: one layer y = W*x + b with upstream error dE/dy = u")
    out: dict = {}
    layer = matcalc.grad(*LAYER)
    show("single sample", layer)
    out["layer"], out["element_matrix"] = summary(layer), element_matrix_mistake(layer)
    em = out["element_matrix"]
    print(f"\nentry (1,2) of dE/dW at a random point: {em['dW12']:.6f} = dE/dy1*x2 = {em['dEdy1_x2']:.6f};"
          f" the note's dE/dy1*x3 = {em['note_dEdy1_x3']:.6f} is wrong")
    batch = matcalc.grad(*BATCH_LAYER)
    show("batch of m, E the mean over the samples, U = the per-sample errors (E = sum(U.*y)/m)", batch)
    out["batch_layer"] = summary(batch)
    print("\n/m placement: dE/dW = U*X'/m and dE/db = U*ones(m)/m as in the note, and also dE/dX = W'*U/m")

    banner("Seed note 003: three layers (5 tanh, 3 tanh, 2 sigmoid), mean cross-entropy over m samples")
    net = matcalc.grad(NETWORK, NETWORK_WRT, NETWORK_LET, sympy_check=sympy)
    show("the network", net)
    out["network"] = summary(net)
    out["note_dX"] = first_layer_dX_mistake()
    print(f"\nthe note's first-layer dE/dX = (W^[2])^T dE/dy^[1] as W2'*D1:\n  {out['note_dX']}"
          f"\nmatcalc: dE/dX = {net['X'].text} (W1, not W2; and the /m of the mean)")
    return out


if __name__ == "__main__":
    main(sympy="--sympy" in sys.argv)
