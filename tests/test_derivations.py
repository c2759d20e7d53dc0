"""Issue 4: step-by-step derivations. Golden files (text, LaTeX, Markdown; English and Chinese)
for the derivations our users write up; every line of each checked numerically; every LaTeX
string rendered with KaTeX; notes files filled idempotently.

Regenerate the golden files after an intended change with MATCALC_UPDATE_GOLDEN=1.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from katex import extract_math, render

import matcalc
from matcalc.calculus.engine import run
from matcalc.calculus.steps import Log
from matcalc.cli import main
from matcalc.present.derivation import check_lines, derivation
from matcalc.present.notes import BEGIN, END, fill

GOLDEN = Path(__file__).parent / "golden"
CASES = {
    "trace_axb": ("tr(A*X*B)", ["X"], ""),
    "quadratic_form": ("x'*A*x", ["x"], ""),
    "log_det": ("log(det(X))", ["X"], ""),
    "inverse_form": ("a'*inv(X)*b", ["X"], "a, b: n"),
    "softmax_ce": ("-y'*log(softmax(z))", ["z"], "y: probability"),
    "two_layer": ("a1 = W1*x; h1 = sigmoid(a1); a2 = W2*h1; L = -y'*log(softmax(a2))", ["W1", "W2"],
                  "y: probability"),
    "batch_bias": ("Z = W*X + b*ones(m)'; A = sigmoid(Z); E = sum((A - Y).^2)/(2*m)", ["W", "b"],
                   "X: 3 x m; W: 2 x 3; b: 2; Y: 2 x m"),
}
FORMATS = {"txt": "steps_text", "tex": "steps_latex", "md": "steps_markdown"}


def _result(case: str, check: bool = False) -> matcalc.Result:
    loss, wrt, let = CASES[case]
    return matcalc.grad(loss, wrt, let, check=check)


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str, fmt: str, lang: str) -> None:
    got = getattr(_result(case), FORMATS[fmt])(lang=lang) + "\n"
    path = GOLDEN / f"{case}.{lang}.{fmt}"
    if os.environ.get("MATCALC_UPDATE_GOLDEN"):
        path.write_text(got, encoding="utf-8")
    assert path.is_file(), f"missing golden file {path.name}: run with MATCALC_UPDATE_GOLDEN=1"
    assert got == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_line_follows_from_the_one_before(case: str) -> None:
    """Checked as users get it (a checked result checks its derivation: a false line raises),
    and, for plain losses, directly at a second point too."""
    loss, wrt, let = CASES[case]
    for seed in (0, 1):
        r = matcalc.grad(loss, wrt, let, seed=seed)
        assert len(r.steps) >= 5
        assert any("lines checked numerically" in n for n in r.steps[-1]["notes"])
    prog = matcalc.load(loss, matcalc.parse_decls(let))
    if not prog.intermediates:
        lines = derivation(run(prog.loss, frozenset(wrt)), wrt)
        assert check_lines(lines, prog.loss, frozenset(wrt), 2) < 1e-6


def test_program_derivation_goes_step_by_step() -> None:
    """The network is derived as the notes do: dL in terms of da2, then each step's differential
    under its delta, giving delta1 from delta2 and the weight gradients from the deltas."""
    text = _result("two_layer").steps_text()
    for line in ("da2 = d(W2*h1)", "dL/dh1 = W2'*delta2", "dL/da1 = delta_h1.*h1.*(1 - h1)", "dL/dW1 = delta1*x'",
                 "dL/dW2 = delta2*h1'", "dL/da2 = softmax(a2).*(ones(p,p)*y - y./softmax(a2))"):
        assert line in text, line


def test_a_false_line_is_caught() -> None:
    """The line checker can fail: replace one line by a wrong expression."""
    f = matcalc.parse("tr(A*X*B)")
    lines = derivation(run(f, frozenset({"X"})), ["X"])
    bad = lines[-1].__class__(lines[-1].stage, "bogus", lines[-1].lhs, matcalc.parse("2*A'*B'"))
    with pytest.raises(matcalc.CheckError):
        check_lines(lines + [bad], f, frozenset({"X"}))


def test_stages_and_rule_names() -> None:
    steps = _result("log_det").steps
    assert [s["stage"] for s in steps][:2] == ["loss", "differential"]
    assert {"determinant rule", "scalar equals its trace"} <= {s["label"] for s in steps}
    assert steps[-1]["stage"] == "check"
    zh = {s["label"] for s in _result("trace_axb").derivation(lang="zh")}
    assert {"迹的循环性质", "乘法法则"} <= zh
    cited = {s["label"] for s in _result("trace_axb").derivation(cite=True)}
    assert "product rule [Matrix Cookbook (37)]" in cited


def test_checked_result_reports_the_line_check() -> None:
    r = _result("quadratic_form", check=True)
    check = r.steps[-1]
    assert check["stage"] == "check" and any("lines checked numerically" in n for n in check["notes"])
    assert not any("lines checked" in n for n in r.check.notes)  # the derivation's own, not the result's


def test_json_carries_the_steps(capsys: pytest.CaptureFixture) -> None:
    assert main(["grad", "tr(A*X*B)", "--wrt", "X", "--format", "json"]) == 0
    assert "steps" not in json.loads(capsys.readouterr().out)  # only when asked: they cost more
    assert main(["grad", "tr(A*X*B)", "--wrt", "X", "--format", "json", "--steps"]) == 0
    steps = json.loads(capsys.readouterr().out)["steps"]
    assert all(set(s) == {"stage", "rule", "text", "latex"} for s in steps)
    assert matcalc.parse(steps[0]["text"]) == matcalc.parse("tr(A*X*B)")


def test_transpose_notation() -> None:
    tex = _result("trace_axb").steps_latex(transpose="top")
    assert r"A^{\top}" in tex and "^{T}" not in tex


def test_all_derivation_latex_renders_with_katex() -> None:
    strings = []
    for case in CASES:
        r = _result(case)
        for lang in ("en", "zh"):
            strings.append(r.steps_latex(lang=lang))
            strings += extract_math(r.steps_markdown(lang=lang))
        strings.append(r._repr_latex_().strip("$"))
    errors = [(s, e) for s, e in zip(strings, render(strings)) if e]
    assert not errors, errors[:3]


NOTE = """# Notes

Text before.

```matcalc
loss: tr(A*X*B)
wrt: X
```

```matcalc
program:
  a1 = W1*x
  h1 = sigmoid(a1)
  L = sum(h1)
wrt: W1
lang: zh
```
Text after.
"""


def test_notes_are_filled_once_and_idempotently(tmp_path: Path) -> None:
    once = fill(NOTE)
    assert once.count(BEGIN) == 2 and once.count(END) == 2
    assert once.startswith("# Notes\n\nText before.") and once.rstrip().endswith("Text after.")
    assert fill(once) == once
    assert "迹的循环性质" in once or "标量套上迹" in once
    assert not [e for e in render(extract_math(once)) if e]
    src, out = tmp_path / "in.md", tmp_path / "out.md"
    src.write_text(NOTE, encoding="utf-8")
    assert main(["notes", str(src), "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == once


def test_jupyter_reprs() -> None:
    r = _result("trace_axb")
    assert r._repr_latex_().startswith("$") and "A^{T} B^{T}" in r._repr_latex_()
    assert "$$" in r._repr_markdown_()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_example_note_renders(lang: str, tmp_path: Path) -> None:
    import importlib.util
    spec = importlib.util.spec_from_file_location("derivation_note", Path(__file__).parent.parent / "examples" /
                                                  "derivation_note.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "note.md"
    text = module.main([str(out), "--lang", lang])["markdown"]
    assert out.read_text(encoding="utf-8") == text
    assert "softmax" in text and ("delta" in text or r"\delta" in text or "W_{2}" in text)
    math = extract_math(text)
    assert len(math) >= 10
    assert not [e for e in render(math) if e]


def test_layer_superscripts_where_the_user_named_them_so() -> None:
    r = matcalc.grad("Z__1 = W__1*x + b__1; A__1 = tanh(Z__1); L = sum(A__1)", ["W__1", "b__1"], "b__1: n",
                     check=False)
    tex = r.steps_latex()
    assert "W^{[1]}" in tex and "b^{[1]}" in tex and r"\partial W^{[1]}" in tex
    assert not [e for e in render([tex]) if e]


def _mlp(layers: int) -> str:
    e = "x"
    for k in range(1, layers + 1):
        e = f"tanh(W{k}*{e})"
    return f"0.5*norm2({e} - y)^2"


def test_deep_flat_loss_is_derived_by_named_steps_linearly() -> None:
    """A deep flat loss is derived as a program (s1 = W1*x, ...): size linear in the depth."""
    sizes = {}
    for layers in (8, 16, 32):
        r = matcalc.grad(_mlp(layers), [f"W{k}" for k in range(1, layers + 1)], check=False)
        sizes[layers] = len(r.steps_text())
    assert sizes[32] < 2.3 * sizes[16] < 2.3 ** 2 * sizes[8]
    r = matcalc.grad(_mlp(5), ["W1", "W5"])
    text = r.steps_text()
    assert "s1 = W1*x" in text and any("all" in n and "lines checked numerically" in n for n in r.steps[-1]["notes"])


@pytest.mark.parametrize("loss, wrt, let", [
    ("tr(A*X*B)", ["X"], ""),
    ("log(det(X)) + tr(inv(X)*A)", ["X", "A"], ""),
    ("sum((sigmoid(W*x + b) - y).^2)", ["W", "b", "x"], ""),
    ("-y'*log_softmax(W*x)", ["W", "x"], "y: probability"),
    ("norm2(A*X - B)^2 + lam*norm2(X)^2", ["X", "A", "lam"], "lam: scalar"),
])
def test_the_derivation_renders_the_engines_run(loss: str, wrt: list[str], let: str) -> None:
    """Every line shows a step the engine took in its run (a rule its log recorded before the
    derivation was drawn), the last differential line is the engine's df and each variable's last
    line its simplified gradient, as trees; nothing is cut or re-normalised on these."""
    f = matcalc.parse(loss, let)
    log = Log()
    engine = run(f, frozenset(wrt), log=log)
    simplified = {n: engine.simp(engine.raw[n]) for n in wrt}
    stages = ("differential", "adjoint", "simplify")
    taken = {stage: {s.rule for s in log.steps if s.stage == stage} for stage in stages}
    lines = derivation(engine, wrt)
    for ln in lines[1:]:
        allowed = {"differential": taken["differential"], "trace": taken["adjoint"] | {"scalar-trace", "collect"},
                   "gradient": taken["simplify"] | {""}}[ln.stage]
        assert ln.rule in allowed, (ln.stage, ln.rule)
    assert [ln.expr for ln in lines if ln.stage == "differential"][-1] == engine.df
    last = {ln.lhs: ln.expr for ln in lines if ln.stage == "gradient"}
    assert last == simplified
    r = matcalc.grad(loss, wrt, let, check=False)
    assert {n: r[n].expr for n in wrt} == simplified


def test_a_long_derivation_is_cut_short_and_still_ends_on_the_result() -> None:
    """A sum of 260 terms needs more lines than a stage may have: the stage ends with one line
    saying so, which is the engine's result, and the lines still check numerically."""
    loss = " + ".join(f"sin(a{i}*x)" for i in range(260))
    r = matcalc.grad(loss, "x", "x: scalar")
    lines = r.lines()[0]
    cut = [ln for ln in lines if ln.rule == "cut"]
    assert cut and all(ln.stage in ("differential", "trace", "gradient") for ln in cut)
    assert lines[-1].expr == r["x"].expr
    assert "cut short" in r.steps_text() and any("lines checked numerically" in n for n in r.steps[-1]["notes"])


def test_powers_folded_across_steps_are_combined() -> None:
    """log((a^-1)^0.5): a power of a power folds into a power of a, which must then combine with
    the other powers of a (the engine's df was -a*da/2/a^2 beside the lines' -da/2/a)."""
    f = matcalc.parse("log((a^-1)^0.5)")
    engine = run(f, frozenset({"a"}))
    lines = derivation(engine, ["a"])
    assert [ln.expr for ln in lines if ln.stage == "differential"][-1] == engine.df
    assert all(ln.rule != "normal-form" for ln in lines)
