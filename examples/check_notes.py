"""Check the main formulas of the seed notes with `matcalc.check`, including their mistakes.

    python examples/check_notes.py

Note 003 derives the first layer's dE/dX of its three-layer network with the second layer's
weight matrix: matcalc says why that cannot be right (the product does not conform) and gives
the correct formula. Its element-by-element matrix for dE/dW (one layer, u = dE/dy) has x3
where x2 belongs in entry (1,2): matcalc names the misplaced entry.
"""
from __future__ import annotations

from batched_network import NETWORK, NETWORK_LET

import matcalc

CLAIMS = [
    # (note, what, loss, wrt, claim, let)
    ("000", "dL/dW, row vectors", "y = x*W; L = y*c", "W", "x'*c'", "x: 1 x D; W: D x K; c: K"),
    ("000", "dL/dx, row vectors", "y = x*W; L = y*c", "x", "c'*W'", "x: 1 x D; W: D x K; c: K"),
    ("001", "softmax cross-entropy, y general", "-y'*log(softmax(a))", "a", "softmax(a) - y", "a: n"),
    ("001", "softmax cross-entropy, y a probability", "-y'*log(softmax(a))", "a", "softmax(a) - y",
     "a: n; y: probability"),
    ("003", "one layer, dE/dW", "y = W*x + b; E = u'*y", "W", "u*x'", "b: n; u: n"),
    ("003", "one layer, dE/dW entry by entry as the note has it", "y = W*x + b; E = u'*y", "W",
     "[u(1)*x(1), u(1)*x(3), u(1)*x(3); u(2)*x(1), u(2)*x(2), u(2)*x(3)]", "W: 2 x 3; b: 2; u: 2; x: 3"),
    ("003", "one layer, dE/dW entry by entry corrected", "y = W*x + b; E = u'*y", "W",
     "[u(1)*x(1), u(1)*x(2), u(1)*x(3); u(2)*x(1), u(2)*x(2), u(2)*x(3)]", "W: 2 x 3; b: 2; u: 2; x: 3"),
    ("003", "batch, dE/db", "y = W*X + b*ones(m)'; E = sum(U.*y)/m", "b", "U*ones(m)/m", "X: k x m; b: n; U: n x m"),
    ("003", "three layers, dE/dX as the note has it", NETWORK, "X", "W2'*delta1/m", NETWORK_LET),
    ("003", "three layers, dE/dX corrected", NETWORK, "X", "W1'*delta1/m", NETWORK_LET),
    ("004", "quadratic model, dloss/dw1", "(w1*x^2 + w2*x + b - y)^2", "w1", "2*x^2*(w1*x^2 + w2*x + b - y)",
     "w1, w2, x, y: scalar"),
]


def main() -> dict[str, matcalc.Verdict]:
    out = {}
    for note, what, loss, wrt, claim, let in CLAIMS:
        v = matcalc.check(loss, wrt, claim, let)
        out[f"{note}: {what}"] = v
        print(f"[{note}] {what}: d/d{wrt} = {claim}  ->  {v.verdict}")
        for d in v.diagnoses:
            print(f"      {d['kind']}: {d['detail']}")
        if not v.correct:
            print(f"      the gradient is {v.gradient}")
    return out


if __name__ == "__main__":
    main()
