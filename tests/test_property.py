"""Property tests: random well-typed scalar losses must get gradients that pass the checks.

A typed generator builds loss TEXT bottom-up from a fixed symbol set with non-square shapes,
combining only conformable shapes, so every generated case is a valid input. Domain-sensitive
operators only see safe arguments:

* log, sqrt, ./ (denominator) and .^0.5 take `pos` expressions (exp(.), 1 + E.^2, sigmoid(.), ...);
* inv, det and logdet take `wc` matrices: products of matrices whose symmetric part is positive
  definite (S, S + E*E', eye + E'*E, eye + tanh(E)/4, X and C, which the checker samples near n*I
  when they occur under inv/det/logdet, their inverses and transposes). Such a matrix is
  invertible with a positive determinant, and the non-symmetric ones keep a missing transpose
  in an inv/det rule from hiding behind symmetry;
* exp, sin, cos, tanh and sigmoid take shallow or bounded arguments, so that the loss stays of
  moderate size and the float64 finite differences behind the numeric check stay meaningful.

Every case must derive without error (a DomainError, no point where the loss is finite, rejects
the example but is counted: more than 10% fails the test), pass the numeric check, and print
gradients whose text parses back to the same tree.
"""
from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

import matcalc

# grad() raises the recursion limit for deep trees; hypothesis warns that it cannot restore it.
pytestmark = pytest.mark.filterwarnings("ignore:The recursion limit will not be reset")

LET = "A: m x n; B: n x m; C: n x n; S: n x n spd; X: n x n; W: m x n; x: n; y: m; a: scalar"
SYMBOLS = ("A", "B", "C", "S", "X", "W", "x", "y", "a")
DIMS = ("m", "n", "1")
Shape = tuple[str, str]

LEAVES: dict[Shape, list[str]] = {
    ("m", "n"): ["A", "W", "B'"],
    ("n", "m"): ["B", "A'", "W'"],
    ("n", "n"): ["C", "X", "S", "X'", "C'"],
    ("m", "m"): ["A*B", "W*A'", "y*y'"],
    ("n", "1"): ["x", "B*y", "ones(n)"],
    ("m", "1"): ["y", "A*x", "ones(m)"],
    ("1", "n"): ["x'", "y'*W"],
    ("1", "m"): ["y'", "x'*B"],
    ("1", "1"): ["a", "2", "0.5", "x'*x"],
}
SMOOTH = ("sin", "cos", "tanh", "sigmoid")
PIECEWISE = ("relu", "abs", "sign")
SATURATING = ("tanh", "sigmoid")
_ATOM = re.compile(r"^([A-Za-z]\w*'?|\d+(\.\d+)?|[A-Za-z]\w*\([^()]*\)'?)$")


def par(text: str) -> str:
    """`text` as an operand: parenthesized unless it is a name, number or simple call."""
    return text if _ATOM.match(text) else f"({text})"


def square(shape: Shape) -> bool:
    return shape[0] == shape[1] and shape[0] != "1"


@st.composite
def leaf(draw, shape: Shape) -> str:
    return draw(st.sampled_from(LEAVES[shape]))


@st.composite
def mat(draw, shape: Shape, depth: int) -> str:
    """Any expression of `shape`."""
    if depth <= 0 or draw(st.integers(0, 5)) == 5:  # (not == 0: hypothesis favours 0 when drawing)
        return draw(leaf(shape))
    kinds = ["add", "scale", "matmul", "matmul", "hadamard", "transpose", "elementwise", "elementwise",
             "neg", "chain", "power"]
    if square(shape):
        kinds += ["inv", "inv", "inv", "wc", "wc", "diagm", "matpow"]
    if shape[1] == "1" and shape[0] != "1":
        kinds += ["diagv", "diagv"]
    if shape == ("1", "1"):
        kinds += ["scalar"] * 5
    kind = draw(st.sampled_from(kinds))
    return draw(_BUILD[kind](shape, depth - 1))


@st.composite
def b_add(draw, shape: Shape, d: int) -> str:
    op = draw(st.sampled_from([" + ", " - "]))
    return par(draw(mat(shape, d))) + op + par(draw(mat(shape, d)))


@st.composite
def b_scale(draw, shape: Shape, d: int) -> str:
    e = par(draw(mat(shape, d)))
    form = draw(st.integers(0, 4))
    if form == 0:
        return f"{draw(st.sampled_from(['2', '3', '0.5']))}*{e}"
    if form == 1:
        return f"{e}/{draw(st.sampled_from(['2', '4']))}"
    if form == 2:
        return f"{par(draw(mat(('1', '1'), d)))}*{e}"
    if form == 3:
        return f"{e}*{par(draw(mat(('1', '1'), d)))}"
    return f"{e}/{par(draw(pos(('1', '1'), d)))}"


@st.composite
def b_matmul(draw, shape: Shape, d: int) -> str:
    k = draw(st.sampled_from(DIMS))
    return par(draw(mat((shape[0], k), d))) + "*" + par(draw(mat((k, shape[1]), d)))


@st.composite
def b_chain(draw, shape: Shape, d: int) -> str:
    """A product of three or four factors (each shallow)."""
    ks = draw(st.lists(st.sampled_from(DIMS), min_size=2, max_size=3))
    dims = [shape[0], *ks, shape[1]]
    return "*".join(par(draw(mat((dims[i], dims[i + 1]), min(d, 1)))) for i in range(len(dims) - 1))


@st.composite
def b_hadamard(draw, shape: Shape, d: int) -> str:
    if draw(st.booleans()):
        return par(draw(mat(shape, d))) + " .* " + par(draw(mat(shape, d)))
    return par(draw(mat(shape, d))) + " ./ " + par(draw(pos(shape, d)))


@st.composite
def b_transpose(draw, shape: Shape, d: int) -> str:
    return par(draw(mat((shape[1], shape[0]), d))) + "'"


@st.composite
def b_elementwise(draw, shape: Shape, d: int) -> str:
    form = draw(st.integers(-1, 3))
    if form == -1:
        return f"{draw(st.sampled_from(PIECEWISE))}({draw(mat(shape, min(d, 2)))})"
    if form == 0:
        return f"{draw(st.sampled_from(SMOOTH))}({draw(tame(shape, d))})"
    if form == 1:
        return f"exp({draw(tame(shape, d))})"
    if form == 2:
        return f"{draw(st.sampled_from(['log', 'sqrt']))}({draw(pos(shape, d))})"
    return f"{par(draw(pos(shape, d)))}.^{draw(st.sampled_from(['0.5', '-1', '2']))}"


@st.composite
def b_power(draw, shape: Shape, d: int) -> str:
    e = par(draw(mat(shape, min(d, 2))))
    if shape == ("1", "1") and draw(st.booleans()):
        return f"{e}^2"
    return f"{e}.^{draw(st.sampled_from(['2', '3']))}"


@st.composite
def b_neg(draw, shape: Shape, d: int) -> str:
    return "-" + par(draw(mat(shape, d)))


@st.composite
def b_inv(draw, shape: Shape, d: int) -> str:
    return f"inv({draw(wc(shape[0], d))})"


@st.composite
def b_wc(draw, shape: Shape, d: int) -> str:
    return draw(wc(shape[0], d))


@st.composite
def b_diagm(draw, shape: Shape, d: int) -> str:
    return f"diag({draw(mat((shape[0], '1'), d))})"


@st.composite
def b_diagv(draw, shape: Shape, d: int) -> str:
    return f"diag({draw(mat((shape[0], shape[0]), d))})"


@st.composite
def b_matpow(draw, shape: Shape, d: int) -> str:
    return par(draw(mat(shape, min(d, 1)))) + "^2"


@st.composite
def b_scalar(draw, shape: Shape, d: int) -> str:
    """Scalar-valued reductions of matrices."""
    k = draw(st.sampled_from(["m", "n"]))
    r, c = draw(st.sampled_from(DIMS)), draw(st.sampled_from(DIMS))
    form = draw(st.integers(0, 8))
    if form == 0:
        return f"tr({draw(mat((k, k), d))})"
    if form == 1:
        return f"sum({draw(mat((r, c), d))})"
    if form == 2:
        return f"norm2({draw(mat((r, c), d))})"
    if form == 3:
        return f"norm1({draw(mat((r, c), d))})"
    if form == 4:
        return f"det({draw(wc(k, d))})"
    if form == 5:
        return f"logdet({draw(wc(k, d))})"
    if form == 6:
        return f"{par(draw(mat(('1', r), d)))}*{par(draw(mat((r, c), d)))}*{par(draw(mat((c, '1'), d)))}"
    if form == 7:
        v = par(draw(mat((k, "1"), d)))
        return f"{v}'*{par(draw(mat((k, k), d)))}*{v}"
    return f"norm2({draw(mat((r, c), d))})^2"


_BUILD = {"add": b_add, "scale": b_scale, "matmul": b_matmul, "chain": b_chain, "hadamard": b_hadamard,
          "transpose": b_transpose, "elementwise": b_elementwise, "power": b_power, "neg": b_neg,
          "inv": b_inv, "wc": b_wc, "diagm": b_diagm, "diagv": b_diagv, "matpow": b_matpow,
          "scalar": b_scalar}


@st.composite
def tame(draw, shape: Shape, depth: int) -> str:
    """A moderate-sized argument for exp, sin, cos, ...: a leaf, or tanh/sigmoid of a shallow one.

    Deep arguments reach 1e3 and more: sin or cos of those oscillate faster than float64 central
    differences with h = 1e-3 can follow, and tanh of those is flat to 1e-9, below the round-off
    of a difference of values near 1. The numeric check would then fail on the finite differences
    rather than on a wrong gradient."""
    if draw(st.booleans()):
        return draw(leaf(shape))
    return f"{draw(st.sampled_from(SATURATING))}({draw(mat(shape, min(depth, 1)))})"


@st.composite
def pos(draw, shape: Shape, depth: int) -> str:
    """An expression of `shape` whose entries are all positive."""
    if depth <= 0:
        return draw(st.sampled_from([f"exp({draw(leaf(shape))})", f"1 + {par(draw(leaf(shape)))}.^2"]))
    d = depth - 1
    form = draw(st.integers(0, 9 if shape == ("1", "1") else 7))
    if form == 0:
        return f"exp({draw(tame(shape, d))})"
    if form == 1:
        return f"1 + {par(draw(mat(shape, d)))}.^2"
    if form == 2:
        return f"sigmoid({draw(mat(shape, d))})"
    if form == 3:
        return f"{par(draw(pos(shape, d)))} + {par(draw(pos(shape, d)))}"
    if form == 4:
        return f"{par(draw(pos(shape, d)))} .* {par(draw(pos(shape, d)))}"
    if form == 5:
        return f"{par(draw(pos(shape, d)))} ./ {par(draw(pos(shape, d)))}"
    if form == 6:
        return f"sqrt({draw(pos(shape, d))})"
    if form == 7:
        return f"{par(draw(pos(('1', '1'), d)))}*{par(draw(pos(shape, d)))}"
    if form == 8:
        return f"det({draw(wc(draw(st.sampled_from(['m', 'n'])), d))})"
    return f"1 + {par(draw(mat(shape, d)))}^2"


@st.composite
def pdsym(draw, k: str, depth: int) -> str:
    """A k x k matrix with a positive definite symmetric part (so: invertible, det > 0)."""
    if depth <= 0:
        return draw(st.sampled_from(["S", "X", "C", "S + C*C'", "X'*X + eye"] if k == "n"
                                    else ["y*y' + eye", "A*A' + eye"]))
    d = depth - 1
    j = draw(st.sampled_from(DIMS))
    form = draw(st.integers(0 if k == "n" else 2, 7))
    if form == 0:
        return draw(st.sampled_from(["S", "X", "C", "X'", "C'"]))
    if form == 1:
        return f"S + {par(e := draw(mat((k, j), d)))}*{par(e)}'"
    if form == 2:
        return f"eye + {par(e := draw(mat((j, k), d)))}'*{par(e)}"
    if form == 3:
        return f"eye + tanh({draw(mat((k, k), d))})/4"
    if form == 4:
        return f"inv({draw(pdsym(k, d))})"
    if form == 5:
        return f"{par(draw(pdsym(k, d)))} + {par(draw(pdsym(k, d)))}"
    if form == 6:
        return f"{par(draw(pos(('1', '1'), d)))}*{par(draw(pdsym(k, d)))}"
    return par(draw(pdsym(k, d))) + "'"


@st.composite
def wc(draw, k: str, depth: int) -> str:
    """A well-conditioned invertible k x k matrix with det > 0: a product of `pdsym` factors."""
    if depth <= 0 or draw(st.booleans()):
        return draw(pdsym(k, depth))
    form = draw(st.integers(0, 2))
    if form == 0:
        return par(draw(pdsym(k, depth - 1))) + "*" + par(draw(pdsym(k, depth - 1)))
    if form == 1:
        return f"inv({draw(wc(k, depth - 1))})"
    return par(draw(wc(k, depth - 1))) + "'"


def occurring(text: str) -> list[str]:
    return [s for s in SYMBOLS if re.search(rf"(?<![A-Za-z0-9_]){s}(?![A-Za-z0-9_(])", text)]


@st.composite
def case(draw, depth: int = 4) -> tuple[str, list[str]]:
    """(loss text, wrt): a scalar loss and one or two of the symbols in it."""
    kind = draw(st.sampled_from(["scalar", "scalar", "add", "scale", "matmul", "chain", "hadamard",
                                 "elementwise", "power"]))
    text = draw(_BUILD[kind](("1", "1"), depth - 1))
    syms = occurring(text)
    assume(syms)
    size = 2 if len(syms) > 1 and draw(st.booleans()) else 1
    wrt = draw(st.lists(st.sampled_from(syms), min_size=size, max_size=size, unique=True))
    return text, wrt


def inline(text: str, where: list[tuple[str, str]]) -> str:
    """`text` with the named common sub-expressions written out (latest names first)."""
    for name, body in reversed(where):
        text = re.sub(rf"\b{name}\b", f"({body})", text)
    return text


# The explain phase re-runs every failing example many times to annotate lines; the shrunk
# example is what a reproducer needs, and the time budget is better spent on more examples.
SHRINK_NO_EXPLAIN = [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]


def run_cases(examples: int, sympy_check: bool, depth: int, shrink: bool = True) -> dict[str, int]:
    """Derive and check `examples` generated cases; returns counts (total, domain rejects)."""
    stats = {"total": 0, "domain": 0}
    phases = SHRINK_NO_EXPLAIN if shrink else SHRINK_NO_EXPLAIN[:3]

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None, phases=phases,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                     HealthCheck.data_too_large])
    @given(case(depth))
    def prop(c: tuple[str, list[str]]) -> None:
        text, wrt = c
        stats["total"] += 1
        try:
            r = matcalc.grad(text, wrt=wrt, let=LET, check=True, sympy_check=sympy_check)
        except matcalc.DomainError:
            stats["domain"] += 1
            assume(False)
        assert r.check is not None and r.check.numeric_max_rel_err is not None
        assert r.check.numeric_max_rel_err < 1e-6

    prop()
    return stats


def test_random_losses_pass_numeric_check() -> None:
    stats = run_cases(300, sympy_check=False, depth=5)
    assert stats["domain"] <= 0.1 * stats["total"], stats


def test_random_losses_pass_sympy_check() -> None:
    # No shrinking: each candidate runs the exact check, and hypothesis would spend its whole
    # five-minute shrinking budget; a failure here is reported as generated (depth 4 keeps it short).
    stats = run_cases(40, sympy_check=True, depth=4, shrink=False)
    assert stats["domain"] <= 0.1 * stats["total"], stats


@settings(max_examples=300, deadline=None, derandomize=True, database=None, phases=SHRINK_NO_EXPLAIN,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
@given(case())
def test_printed_gradients_parse_back(c: tuple[str, list[str]]) -> None:
    """Each printed gradient parses back to its tree; the shared sub-expressions that the text
    names (t1 = ...) are written back in first."""
    text, wrt = c
    r = matcalc.grad(text, wrt=wrt, let=LET, check=False)
    for v in wrt:
        printed = inline(r[v].text, r.where_text)
        assert matcalc.parse(printed, LET) == r[v].expr, (printed, r[v].expr)
