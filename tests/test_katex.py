"""Every LaTeX string matcalc emits in the tests and examples renders with KaTeX.

The strings come from a broad set of derivations: every Cookbook case (tests/test_cookbook.py),
the network programs of tests/test_networks.py, every derivation the five examples' main() make,
losses that use every function of the registry (test_every_function_is_covered keeps it so), odd
names and numbers, both layouts, and random losses from the property-test generator. For each
derivation we take every gradient's `latex`, every `where_latex` row, `Result._repr_latex_()`
(the notebook form, without its `$`), the output of `matcalc grad ... --format latex` (without
its trailing `% ...` comment line), and the step-by-step derivation (`steps_latex()` in English
and Chinese, with ^T and ^\\top, and the `$$` blocks of its Markdown form, also from the CLI's
`--steps`); the LaTeX shown in README.md is rendered too.

All of it goes to KaTeX (tests/katex.py, tools/katex_check.mjs) in a single Node process, in
display mode with throwOnError and strict: "error"; any KaTeX error fails the test and is
reported with the offending string and where it came from. KaTeX accepts `X^12` (and shows
X to the 1, then 2), so unbraced multi-character scripts are rejected by a separate test.

Node.js and the katex npm package are required: without them these tests FAIL, saying how to
install them (`.ci/run` runs `npm ci` first).
"""
from __future__ import annotations

import contextlib
import importlib
import io
import re
import sys
from typing import NamedTuple

import katex
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from katex import ROOT, extract_math, katex_version, render
from test_cookbook import CASES
from test_networks import BATCH, BATCH_LET, TWO_LAYER

import matcalc
from matcalc.cli import main as cli_main
from matcalc.core.registry import FUNCTION_NAMES
from matcalc.errors import MatcalcError

pytestmark = pytest.mark.filterwarnings("ignore:The recursion limit will not be reset")

EXAMPLES = ROOT / "examples"
EXAMPLE_NAMES = ("matrix_product", "softmax_cross_entropy", "deep_network", "batched_network", "scalar_graph")
RANDOM_LOSSES = 60  # from the property-test generator, derandomized (the same ones every run)


class Derivation(NamedTuple):
    label: str
    loss: str
    wrt: list[str]
    let: str = ""
    layout: str = "denominator"


def _wrt(w: str | tuple[str, ...] | list[str]) -> list[str]:
    return [w] if isinstance(w, str) else list(w)


# Losses that, with the Cookbook and network cases, use every function of the registry, every
# operator, numbers of every printed kind and names of every printed kind.
EXTRA = [
    Derivation("softmax cross-entropy", "-y'*log(softmax(z))", ["z"], "y: probability"),
    Derivation("softmax cross-entropy, general y", "-y'*log(softmax(z))", ["z"]),
    Derivation("batched softmax", "-sum(Y .* log(softmax(A)))", ["A"]),
    Derivation("log_softmax", "-y'*log_softmax(z)", ["z"], "y: probability"),
    Derivation("logsumexp", "sum(logsumexp(A))", ["A"]),
    Derivation("softplus", "sum(softplus(x))", ["x"]),
    Derivation("relu", "sum(relu(W*x))", ["W", "x"]),
    Derivation("step, sign, abs", "sum(step(x) .* sign(x) .* abs(x))", ["x"]),
    Derivation("norm1", "norm1(A*x - b)", ["x"], "A: m x n; x: n; b: m"),
    Derivation("Frobenius norm", "norm2(A - B)", ["A"], "A: m x n; B: m x n"),
    Derivation("sqrt, sin, cos", "sum(sqrt(exp(x)) + sin(x) .* cos(x))", ["x"]),
    Derivation("tanh", "sum(tanh(W*x + b))", ["W", "b"], "W: m x n; x: n; b: m"),
    Derivation("diag of a vector", "tr(A*diag(v))", ["v"], "A: n x n; v: n"),
    Derivation("diag of a matrix", "sum(diag(X) .* v)", ["X"], "X: n x n; v: n"),
    Derivation("logdet", "logdet(X'*X + eye)", ["X"], "X: m x n"),
    Derivation("element-wise division and powers", "sum(x ./ (1 + y.^2)) + sum(x.^3)/3", ["x", "y"]),
    Derivation("fractional numbers", "0.25*x'*x + (1/3)*sum(x) - 1.5*a^0.5", ["x", "a"], "a: scalar"),
    Derivation("ones and zeros", "ones(n)'*X*ones(n) + sum(zeros(n) + x)", ["X", "x"], "X: n x n; x: n"),
    Derivation("names", "lam*norm2(W_1)^2 + alpha*sum(x_hat) + theta0*sum(weights*x_hat) + eps*beta_2",
               ["W_1", "x_hat", "weights", "beta_2"],
               "lam, alpha, theta0, eps, beta_2: scalar; W_1: m x n; x_hat: n; weights: n x n"),
    Derivation("program with Greek and subscripted step names",
               "z_1 = W1*x; sigma1 = sigmoid(z_1); L = sum(sigma1)", ["W1", "z_1"]),
    Derivation("two-digit matrix powers", "y'*X^12*x", ["x", "y"], "X: n x n; x: n; y: n"),
    Derivation("vec and kron", "vec(X)'*kron(B', A)*vec(X) + norm2(vec(X))^2", ["X"]),
    Derivation("kron factors (rearrange, reshape)", "sum(kron(A, B) .* C)", ["A"]),
    Derivation("reshape and rearrange", "norm2(reshape(v, X))^2 + sum(rearrange(C, A, B) .* D)", ["v", "D"]),
    Derivation("adjugate", "det(x*x') + sum(adj(X))", ["x"], "x: n; X: n x n"),
    Derivation("mean", "mean(exp(x)) + mean(X)", ["x", "X"]),
    Derivation("symbolic matrix powers", "tr(matpow(X, k)) + det(X^k)", ["X"], "X: n x n; k: scalar integer"),
    Derivation("names with two underscores", "sum(x_1_2 .* w_a_b)", ["x_1_2"], "x_1_2: n; w_a_b: n"),
    Derivation("numerator layout", "a'*X*b", ["a", "X", "b"], "a: m; X: m x n; b: n", "numerator"),
    Derivation("numerator layout, program", TWO_LAYER, ["W1", "W2"], "y: probability", "numerator"),
]


def derivations() -> list[Derivation]:
    out = []
    for c in CASES:
        out.append(Derivation(f"cookbook ({c.eq})", c.loss, _wrt(c.wrt), c.let))
    out += [
        Derivation("networks: TWO_LAYER", TWO_LAYER, ["W1", "W2"], "y: probability"),
        Derivation("networks: TWO_LAYER, general y", TWO_LAYER, ["W1", "W2"]),
        Derivation("networks: TWO_LAYER, with an intermediate", TWO_LAYER, ["W1", "W2", "h1"], "y: probability"),
        Derivation("networks: BATCH", BATCH, ["W1", "b1", "W2", "b2", "X"], BATCH_LET),
    ]
    return out + EXTRA


def example_results() -> list[tuple[str, matcalc.Result]]:
    """Every Result the five examples' main() derive (recorded by wrapping matcalc.grad)."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    real = matcalc.grad
    out: list[tuple[str, matcalc.Result]] = []
    try:
        for name in EXAMPLE_NAMES:
            def recording(*args, _name=name, **kwargs):
                r = real(*args, **kwargs)
                out.append((f"examples/{_name}.py: {r.loss_text}", r))
                return r
            matcalc.grad = recording
            with contextlib.redirect_stdout(io.StringIO()):
                importlib.import_module(name).main(sympy=False)
    finally:
        matcalc.grad = real
    assert {label.split(":")[0] for label, _ in out} == {f"examples/{n}.py" for n in EXAMPLE_NAMES}
    return out


def random_derivations(n: int = RANDOM_LOSSES) -> list[Derivation]:
    """`n` losses from tests/test_property.py's generator; the same ones on every run."""
    from test_property import case

    drawn: list[tuple[str, list[str]]] = []

    @settings(max_examples=n, derandomize=True, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(case())
    def draw(c: tuple[str, list[str]]) -> None:
        drawn.append(c)

    draw()
    from test_property import LET
    return [Derivation(f"random loss {i}", loss, wrt, LET) for i, (loss, wrt) in enumerate(drawn)]


def result_latex(label: str, r: matcalc.Result) -> list[tuple[str, str]]:
    """(where it comes from, LaTeX) for everything a Result prints as LaTeX."""
    out = [(f"{label}: d/d{n} latex", g.latex) for n, g in r.gradients.items()]
    out += [(f"{label}: where {n}", tex) for n, tex in r.where_latex]
    note = r._repr_latex_()
    assert note.startswith("$") and note.endswith("$") and not note.startswith("$$"), note
    out.append((f"{label}: _repr_latex_()", note[1:-1]))
    return out


def cli_output(d: Derivation, *options: str) -> str:
    """The standard output of `matcalc grad` for `d` with `options`."""
    args = ["grad", d.loss, *(a for w in d.wrt for a in ("--wrt", w)), "--let", d.let, "--layout", d.layout, *options]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(args)
    assert code == 0, f"{d.label}: matcalc {' '.join(args)} failed: {err.getvalue()}"
    return out.getvalue()


def cli_latex(d: Derivation, check: bool = False) -> str:
    """`matcalc grad ... --format latex` for `d`, without its trailing `% layout ...` line."""
    out = cli_output(d, "--format", "latex", *([] if check else ["--no-check"]))
    body, comment = out.rstrip("\n").rsplit("\n", 1)
    assert comment.startswith("% layout: "), out
    return body


def steps_latex(label: str, r: matcalc.Result, variants: bool = False) -> list[tuple[str, str]]:
    """The step-by-step derivation as LaTeX; with `variants` also in Chinese, with ^\\top and
    citations, and the math of its Markdown form (what notebooks show)."""
    out = [(f"{label}: steps_latex()", r.steps_latex())]
    if variants:
        out.append((f"{label}: steps_latex('zh', cite=True, transpose='top')", r.steps_latex("zh", True, "top")))
        out += [(f"{label}: _repr_markdown_() math", m) for m in extract_math(r._repr_markdown_())]
    return out


def readme_latex() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = [m.group(0) for m in re.finditer(r"\\begin\{(align\*?|aligned|equation\*?)\}.*?\\end\{\1\}", text, re.S)]
    assert found, "README.md shows no LaTeX output any more; update readme_latex()"
    return [("README.md: LaTeX block", s) for s in found] + [("README.md: math", s) for s in extract_math(text)]


def describe(d: Derivation) -> str:
    layout = "" if d.layout == "denominator" else f", {d.layout} layout"
    return f"{d.label}: d/d{','.join(d.wrt)} {d.loss!r} [{d.let}]{layout}"


def collect() -> list[tuple[str, str]]:
    """(where it comes from, LaTeX) for everything collected; see the module docstring."""
    items: list[tuple[str, str]] = []
    for i, d in enumerate(derivations()):
        r = matcalc.grad(d.loss, wrt=d.wrt, let=d.let, layout=d.layout, check=False)
        # the step variants (Chinese, ^\top, citations, Markdown) differ only in labels and the
        # transpose sign: for every 4th Cookbook case and every other derivation (rendering all
        # of them would double the time)
        variants = i % 4 == 0 or not d.label.startswith("cookbook")
        items += result_latex(describe(d), r) + steps_latex(describe(d), r, variants)
        items.append((f"{describe(d)}: CLI --format latex", cli_latex(d)))
    # the README's CLI example, with its checks (the comment line then reports them)
    readme = Derivation("CLI, checked", "log(det(X))", ["X"])
    items.append((f"{describe(readme)}: CLI --format latex", cli_latex(readme, check=True)))
    for d in (readme, Derivation("CLI steps", TWO_LAYER, ["W1", "W2"], "y: probability"),
              Derivation("CLI steps", BATCH, ["W1", "b1", "W2", "b2", "X"], BATCH_LET)):
        items.append((f"{describe(d)}: CLI --steps --format latex",
                      cli_output(d, "--steps", "--format", "latex", "--no-check")))
        markdown = cli_output(d, "--steps", "--format", "markdown", "--lang", "zh", "--cite", "--transpose", "top",
                              "--no-check")
        items += [(f"{describe(d)}: CLI --steps --format markdown --lang zh --cite --transpose top", m)
                  for m in extract_math(markdown)]
    for label, r in example_results():
        items += result_latex(label, r)
    for d in random_derivations():
        try:
            r = matcalc.grad(d.loss, wrt=d.wrt, let=d.let, check=False)
        except MatcalcError:
            continue
        items += result_latex(describe(d), r)
    items += readme_latex()
    return items


@pytest.fixture(scope="module")
def emitted() -> list[tuple[str, str]]:
    return collect()


def test_every_function_is_covered() -> None:
    """A new function in the registry needs a loss here, so that its LaTeX gets rendered."""
    losses = " ".join(d.loss for d in derivations())
    missing = sorted(f for f in FUNCTION_NAMES - {"group"} if not re.search(rf"\b{f}\(", losses))
    assert not missing, f"no derivation in tests/test_katex.py uses {missing}; add one to EXTRA"


def test_all_emitted_latex_renders_with_katex(emitted: list[tuple[str, str]]) -> None:
    assert len(emitted) > 500
    unique = list(dict.fromkeys(tex for _, tex in emitted))
    errors = dict(zip(unique, render(unique)))  # one Node process for everything
    failures = [(label, tex, errors[tex]) for label, tex in emitted if errors[tex] is not None]
    report = "\n\n".join(f"{label}\n  LaTeX: {tex!r}\n  KaTeX: {err}" for label, tex, err in failures)
    bad = len({tex for _, tex, _ in failures})
    assert not failures, (f"{len(failures)} of {len(emitted)} LaTeX strings ({bad} of {len(unique)} distinct) "
                          f"fail to render with KaTeX {katex_version()}:\n\n{report}")


# `X^12` is valid LaTeX that KaTeX renders without complaint, as X to the 1, then a 2: a script of
# more than one character needs braces.
UNBRACED_SCRIPT = re.compile(r"[\^_](?:[0-9]{2,}|[0-9][A-Za-z]|[A-Za-z]{2,})")


def test_no_unbraced_multi_character_scripts(emitted: list[tuple[str, str]]) -> None:
    def math(tex: str) -> str:  # without control words, escaped characters and \text{...}
        return re.sub(r"\\text\{[^{}]*\}|\\[A-Za-z]+|\\.", " ", tex)

    bad = [(label, tex) for label, tex in emitted if UNBRACED_SCRIPT.search(math(tex))]
    report = "\n\n".join(f"{label}\n  LaTeX: {tex!r}" for label, tex in bad)
    assert not bad, f"{len(bad)} LaTeX strings have a multi-character super- or subscript without braces:\n\n{report}"


# ---- the checker itself -------------------------------------------------------------------------

def test_checker_reports_katex_errors() -> None:
    good_align = "\\begin{align*}\na &= b \\\\\nc &= d\n\\end{align*}"
    got = render([r"\frac{a", r"A^{T} B^{T}", good_align, r"\frac{\partial f}{\partial X} &= X^{-T}",
                  r"x_1_2", r"\notacommand{x}", "é"])
    assert got[1] is None and got[2] is None
    for i in (0, 3, 4, 5, 6):
        assert got[i] is not None and "KaTeX parse error" in got[i], (i, got[i])
    assert "end of input" in got[0]
    assert render([]) == []


def test_missing_node_fails_with_install_instructions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(katex.shutil, "which", lambda name: None)
    with pytest.raises(pytest.fail.Exception, match=r"(?s)`node` is not on PATH.*apt-get install nodejs npm.*npm ci"):
        render([r"x"])


def test_missing_katex_package_fails_with_install_instructions(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(katex, "KATEX_PACKAGE", tmp_path / "node_modules" / "katex" / "package.json")
    monkeypatch.setattr(katex, "ROOT", tmp_path)
    with pytest.raises(pytest.fail.Exception, match=r"(?s)katex npm package is not installed.*npm ci"):
        render([r"x"])


def test_extract_math() -> None:
    md = ("Inline $a^{T} b$ and $$\n\\frac{1}{2}\n$$ then $x$, a price of $5 and $6, "
          "`$not math$` and\n\n```\n$ matcalc grad \"x'*x\" --wrt x\n```\nand \\$ escaped $y_1$.")
    assert extract_math(md) == ["a^{T} b", "\\frac{1}{2}", "x", "y_1"]
