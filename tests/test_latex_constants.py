"""Constant matrices in LaTeX: `\\mathbf{1}`, `\\mathbf{0}` and `I` print bare only where the
context gives their size, else with it (`\\mathbf{1}_{n}`, `\\mathbf{1}_{n}^{T}`,
`\\mathbf{0}_{m \\times n}`, `I_{n}`), and the LaTeX reader reads those forms. Every gradient and
`where` line of the fuzz findings below reads back to an equal value (the fuzz oracle `latex`).
"""
from __future__ import annotations

import numpy as np
import pytest

import matcalc
from matcalc import fuzz
from matcalc.syntax.latex_in import latex_to_text
from matcalc.syntax.printing import to_latex

FINDINGS = [  # (program, wrt, let): fuzz findings whose LaTeX had a constant of unknown size
    ("softplus(sum(softmax(r).^0.5))", ["r"], "r: 1 x p"),
    ("a + step(softmax(r))*log_softmax(0.5 - x)", ["x"], "r: 1 x k; a: scalar; x: k"),
    ("A1 = A/a; L = a^2 + sum(A1)", ["A", "a", "A1"], "A: m x m probability; a: scalar positive"),
    ("sigmoid(vec(softmax(r)))'*(x'*y*vec(r))", ["y", "r"], "r: 1 x n; y: vector(n); x: n"),
    ("vec(softmax(r))'*softplus(A).^1.5*vec(softmax(r))", ["r", "A"], "A: n x n invertible; r: 1 x n"),
    ("z1 = log_softmax(A).^2; A2 = -B'; a3 = diag(C'); t4 = W*a3; L = -norm1(0.1) + sum(t4)",
     ["W", "B", "C", "t4"], "B: k x D; A: D x k; C: k x k positive"),
    ("tanh(log_softmax(r))*sin(4 - x)/det(diag(x))", ["x", "r"], "x: vector(D) positive; r: 1 x D"),
    ("vec(-softmax(r))'*(y'*B*y*(A^(k2 + 1)@x))", ["x"],
     "k2: scalar integer; x: k; B: p x p invertible; r: 1 x k; y: p"),
]


def _case(text: str, wrt: list[str], let: str) -> fuzz.Case:
    """The fuzz case of a program `a = ...; L = ...` (steps split as the fuzzer writes them)."""
    steps = [fuzz._assignment(p.strip()) for p in text.split(";")]
    return fuzz.Case("program" if len(steps) > 1 else "loss", text, wrt, let, steps)


@pytest.mark.parametrize("text, wrt, let", FINDINGS, ids=[f[0][:40] for f in FINDINGS])
def test_every_latex_gradient_and_where_line_reads_back(text: str, wrt: list[str], let: str) -> None:
    case = _case(text, wrt, let)
    r = matcalc.grad(text, wrt, let, check=False)
    for seed in (0, 1):
        model = fuzz._model(case, r, np.random.default_rng(seed))
        findings = fuzz.oracle_latex(case, r, model)
        assert not findings, "\n".join(f.message for f in findings)


def test_a_constant_in_a_function_argument_has_its_size() -> None:
    g = matcalc.grad(*FINDINGS[5]).gradients["C"]
    assert g.latex == r"\operatorname{diag}\left(W^{T} \mathbf{1}_{n}\right)"
    g = matcalc.grad(*FINDINGS[1]).gradients["x"]
    assert r"\operatorname{step}\left(\mathbf{1}_{k}^{T}\right)" in g.latex
    g = matcalc.grad(*FINDINGS[2]).gradients["a"]
    assert g.latex == r"2 a + \operatorname{tr}\left(-\frac{\mathbf{1}_{m \times m}}{a^{2}}\right)"


@pytest.mark.parametrize("text, let, latex", [
    ("W*X + b*ones(m)'", "X: k x m; W: n x k; b: n", r"W X + b \mathbf{1}"),  # a term next to W X
    ("A*ones(n)*x'", "A: n x n; x: n", r"A \mathbf{1} x^{T}"),  # between two factors
    ("tr(ones(n,n)*A)", "A: n x n", r"\operatorname{tr}\left(\mathbf{1} A\right)"),  # tr's argument is square
    ("inv(eye(n) + A)", "A: n x n", r"{\left(A + I\right)}^{-1}"),
    ("exp(ones(n)) - x", "x: n", r"\exp\left(\mathbf{1}_{n}\right) - x"),  # a function's argument
    ("exp(ones(1, n))*x", "x: n", r"\exp\left(\mathbf{1}_{n}^{T}\right) x"),
    ("sum(softplus(zeros(m*n, k)))", "",
     r"\operatorname{sum}\left(\operatorname{softplus}\left(\mathbf{0}_{m n \times k}\right)\right)"),
    ("kron(eye(n), A)", "A: m x m", r"\left(I_{n} \otimes A\right)"),
    ("sum(exp(ones(3)))", "", r"\operatorname{sum}\left(\exp\left(\mathbf{1}_{3}\right)\right)"),
])
def test_bare_where_the_context_gives_the_size_else_sized(text: str, let: str, latex: str) -> None:
    e = matcalc.parse(text, let)
    assert to_latex(e) == latex
    assert matcalc.parse(latex_to_text(latex), let) == e  # no expected shape needed


def test_the_root_is_bare_unless_it_defines_a_name() -> None:
    """The left side of a gradient gives its shape; a definition (`where`, a step) gives none."""
    e = matcalc.parse("ones(n, m)")
    assert to_latex(e) == r"\mathbf{1}" and to_latex(e, expand=True) == r"\mathbf{1}_{n \times m}"
    assert to_latex(matcalc.parse("eye(n)"), expand=True) == "I_{n}"


@pytest.mark.parametrize("latex, text", [
    (r"\mathbf{1}_{n}", "ones(n)"),
    (r"\mathbf{1}_{n}^{T}", "ones(n)'"),
    (r"\mathbf{1}_n^T", "ones(n)'"),
    (r"\mathbf{0}_{m \times n}", "zeros(m, n)"),
    (r"\mathbf{1}_{m n \times k}", "ones(m*n, k)"),
    (r"\mathbf{1}_{2 k}", "ones(2*k)"),
    (r"\mathbf{1}_{3}", "ones(3)"),
    (r"\mathbf{1}_{d_{1}}", "ones(d1)"),
    (r"\mathbf{1}_{\mathrm{batch}}", "ones(batch)"),
    (r"I_{n}", "eye(n)"),
    (r"\frac{I_{3}}{a}", "eye(3)/a"),
    (r"{\mathbf{1}_{p}^{T}}^{\circ 2}", "ones(p)'.^2"),
])
def test_the_reader_reads_the_sized_forms(latex: str, text: str) -> None:
    let = "a: scalar"
    assert matcalc.parse(latex_to_text(latex), let) == matcalc.parse(text, let)


def test_bare_constants_still_read_in_context() -> None:
    """As notes write them: `\\mathbf{1}^T \\exp(a)`, `\\delta \\mathbf{1}`."""
    assert latex_to_text(r"\mathbf{1}^T \exp(a)") == "ones' * exp (a)"
    assert latex_to_text(r"\delta \mathbf{1}") == "delta * ones"
    assert latex_to_text(r"A + I") == "A + eye"


def test_a_symbol_named_like_a_sized_identity_stays_a_symbol() -> None:
    assert latex_to_text(r"W_{1} I_{1}", {"W1", "I1"}) == "W1 * I1"
    assert "eye" in latex_to_text(r"W_{1} I_{1}", {"W1"})
    assert latex_to_text(r"\mathrm{d}I_{1}") == "dI1"
