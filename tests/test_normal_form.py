"""The constructors' normal form: flattening, ordering and number folding, found by fuzzing where
a result printed differently from the same tree read back."""
from __future__ import annotations

from fractions import Fraction

import matcalc
from matcalc.core import algebra as al
from matcalc.core.expr import Num, Op, Sym, walk


def _nested(e, op: str) -> bool:
    return any(isinstance(n, Op) and n.op == op and any(isinstance(a, Op) and a.op == op for a in n.args)
               for n in walk([e]))


def test_a_sum_with_coefficient_one_is_flattened() -> None:
    """-(-(1 + a + b)) + (1 + a + b) is 2 + 2*a + 2*b, never a sum inside a sum."""
    a, b, c = Sym("a", (1, 1)), Sym("b", (1, 1)), Sym("c", (1, 1))
    s = al.add(a, b)
    e = al.add(al.mul(al.num(2), s), al.mul(al.num(-1), s), c)  # 2*s - s + c: s with coefficient 1
    assert not _nested(e, "add") and e == al.add(a, b, c)
    r = matcalc.grad("(-(a + b) - softmax(0.5*a))^2", "a", "b: scalar; a: scalar")
    assert r["a"].text == "2 + 2*a + 2*b"


def test_ones_times_ones_folds_inside_a_scaled_product() -> None:
    """ones(D,D) * (c * ones(D,D) * X) = c*D*ones(D,D)*X: the scaled product's factors join."""
    ones = Num(1, ("D", "D"))
    x = Sym("X", ("D", "D"))
    e = al.matmul(ones, al.mul(al.num(3), al.matmul(ones, x)))
    assert not any(isinstance(n, Op) and n.op == "matmul" and sum(isinstance(a, Num) for a in n.args) > 1
                   for n in walk([e]))
    r = matcalc.grad("sum((log_softmax(A) + eye)@(sign(A)/3))", "A", "A: D x D positive")
    assert "ones(D,D)^2" not in r["A"].text and "ones(D,D)*ones" not in r["A"].text


def test_powers_of_one_base_combine_after_a_power_folds() -> None:
    """((a^-1)^(1/2))^2 folds to a^-1, which must then meet a^2 in the same product."""
    a = Sym("a", (1, 1))
    half = al.power(al.power(a, -1), Fraction(1, 2))
    assert al.mul(half, half, al.power(a, 2)) == a
