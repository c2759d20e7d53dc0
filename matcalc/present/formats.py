"""Every output form of a result, one formatter each, shared by `Result`, the CLI, `matcalc notes`
and Jupyter:

* text: `result_text` (`str(result)`, the CLI's default; with the steps, `--steps`),
* LaTeX: `result_latex` (`--format latex`: the result block as `align*` and a `%` comment line;
  with the steps, the derivation),
* Markdown: `result_markdown` (`--format markdown`, `steps_markdown()`, `_repr_markdown_`,
  `matcalc notes`: the derivation, then the result block),
* JSON: `result_json` (`to_dict()`; `render` prints it for `--format json`),
* Jupyter's inline math: `result_repr_latex` (`_repr_latex_`).

The LaTeX result block (the `where` rows, then one `\\frac{\\partial f}{\\partial X}` row per
gradient) is written by `latex_block` alone, for all of them. The step-by-step derivation is data
(`steps_data`), written as plain text (`as_text`), LaTeX (`as_latex`, one align*) and Markdown
(`as_markdown`, $$ blocks); each line names its rule (in English or Chinese) and `cite` adds the
reference a rule line carries.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from ..calculus.rewrite import load_table
from ..core.expr import Expr
from ..core.registry import fmt_shape
from ..syntax.printing import LatexPrinter, TextPrinter, latex_name
from .derivation import Line
from .labels import rule_label, word

if TYPE_CHECKING:
    from ..result import Result

STAGES = ("loss", "differential", "trace", "gradient", "check")
FORMATS = ("text", "latex", "markdown", "json")


@dataclass(frozen=True)
class Derivation:
    """What a result's step-by-step derivation is drawn from, built once, on first use: its lines
    (each follows from the one before), the loss's steps as (name, text, latex), the names the
    lines print sub-expressions by, the loss's name, and the derivation's own check: one line
    saying how its lines were checked ("" when they were not)."""

    lines: tuple[Line, ...]
    loss: tuple[tuple[str, str, str], ...]
    names: Mapping[Expr, str] = field(default_factory=dict)
    loss_name: str = "f"
    line_check: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "lines", tuple(self.lines))
        object.__setattr__(self, "loss", tuple(tuple(step) for step in self.loss))
        object.__setattr__(self, "names", MappingProxyType(dict(self.names)))


def citations() -> dict[str, str]:
    return {r.name: r.cite for t in ("differentials", "adjoints", "simplify") for r in load_table(t) if r.cite}


def steps_data(lines: Sequence[Line], loss: Sequence[tuple[str, str, str]], names: Mapping[Expr, str],
               loss_name: str, summary: str, lang: str = "en", cite: bool = False, transpose: str = "T",
               line_check: str = "") -> list[dict]:
    """[{stage, rule, label, lhs, text, latex}]: `loss` holds (name, text, latex) of the steps; the
    last step (stage check) has the check's `summary` as its text and, as `notes`, the
    derivation's own check of its lines (`line_check`, when there is one)."""
    refs = citations() if cite else {}
    text, tex = TextPrinter(dict(names)), LatexPrinter(dict(names), transpose)
    out: list[dict[str, object]] = [{"stage": "loss", "rule": "", "label": "", "lhs": n, "text": t, "latex": lt}
                                    for n, t, lt in loss]
    for ln in lines:
        label = rule_label(ln.rule, lang) if ln.rule else ""
        if refs.get(ln.rule):
            label += f" [{refs[ln.rule]}]"
        grad = ln.stage == "gradient"
        of = loss_name if ln.lhs == "df" else ln.lhs[1:]  # dL, or d(step) in a program's step
        out.append({"stage": ln.stage, "rule": ln.rule, "label": label,
                    "lhs": f"d{loss_name}/d{ln.lhs}" if grad else f"d{of}",
                    "lhs_latex": (rf"\frac{{\partial {latex_name(loss_name)}}}{{\partial {latex_name(ln.lhs)}}}" if grad
                                  else rf"\mathrm{{d}}{latex_name(of)}"),
                    "text": text(ln.expr), "latex": tex(ln.expr)})
    out.append({"stage": "check", "rule": "", "label": "", "lhs": "", "text": summary, "latex": "",
                "notes": [line_check] if line_check else []})
    return [st for i, st in enumerate(out)  # a step whose effect does not show in print is left out
            if i == 0 or (st["stage"], st["lhs"], st["text"]) != (out[i - 1]["stage"], out[i - 1]["lhs"],
                                                                  out[i - 1]["text"])]


def as_text(steps: list[dict], lang: str = "en") -> str:
    """Plain text for the terminal: stage headings, `lhs = expr`, continuation lines `= expr`,
    each with its rule on the right."""
    rows: list[str] = []
    for i, st in enumerate(steps):
        if i == 0 or st["stage"] != steps[i - 1]["stage"]:
            rows.append(f"{word(st['stage'], lang) if st['stage'] != 'loss' else word('loss', lang)}:")
        if st["stage"] == "check":
            rows.append(f"  {st['text']}")
            continue
        same = i > 0 and steps[i - 1]["stage"] == st["stage"] and steps[i - 1]["lhs"] == st["lhs"]
        head = " " * len(st["lhs"]) if same else st["lhs"]
        line = f"  {head} = {st['text']}"
        rows.append(f"{line:<72} {st['label']}".rstrip() if st["label"] else line)
    return "\n".join(rows)


def as_latex(steps: list[dict], lang: str = "en") -> str:
    """One `align*` environment, one step per line, the rule as a `\\text{...}` annotation."""
    rows = []
    for i, st in enumerate(steps):
        if st["stage"] == "check":
            continue
        same = i > 0 and steps[i - 1]["stage"] == st["stage"] and steps[i - 1]["lhs"] == st["lhs"]
        lhs = "" if same else st.get("lhs_latex", latex_name(st["lhs"]))
        note = rf" && \text{{{_tex_escape(st['label'])}}}" if st["label"] else ""
        rows.append(f"{lhs} &= {st['latex']}{note}")
    return "\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}"


def as_markdown(steps: list[dict], lang: str = "en") -> str:
    """Markdown with one `$$` block per stage (renders in KaTeX and MathJax)."""
    parts: list[str] = []
    stages = [s for s in STAGES if any(st["stage"] == s for st in steps)]
    for stage in stages:
        chunk = [st for st in steps if st["stage"] == stage]
        parts.append(f"**{word(stage, lang)}**")
        if stage == "check":
            parts.append(chunk[0]["text"])
            continue
        body = as_latex(chunk, lang).replace("\\begin{align*}", "\\begin{aligned}").replace("\\end{align*}",
                                                                                           "\\end{aligned}")
        parts.append(f"$$\n{body}\n$$")
    return "\n\n".join(parts) + "\n"


def _tex_escape(s: str) -> str:
    return s.replace("\\", r"\textbackslash ").replace("_", r"\_").replace("&", r"\&").replace("%", r"\%")


def latex_block(r: Result, env: str = "align*", loss_name: str = "f", compact: bool = False) -> str:
    """The LaTeX result block: a row `name &= ...` for each `where` definition, then
    `\\frac{\\partial f}{\\partial X} &= G` for each gradient, in the environment `env`; `compact`
    puts it on one line (for inline math)."""
    rows = [rf"{latex_name(n)} &= {t}" for n, t in r.where_latex]
    rows += [rf"\frac{{\partial {latex_name(loss_name)}}}{{\partial {latex_name(g.name)}}} &= {g.latex}"
             for g in r.gradients.values()]
    if compact:
        body = r" \\ ".join(rows)
        return rf"\begin{{{env}}}{body}\end{{{env}}}"
    body = " \\\\\n".join(rows)
    return f"\\begin{{{env}}}\n{body}\n\\end{{{env}}}"


def check_line(r: Result) -> str:
    """What the checks found, in one line."""
    return r.check.summary() if r.check else "not verified"


def result_text(r: Result, steps: bool = False, lang: str = "en", cite: bool = False) -> str:
    """The text form: the loss, the shapes, the layout, the `where` definitions, one `d/dX = G
    (shape)` line per gradient, the notes and the check; with `steps`, the derivation first."""
    shapes = ", ".join(f"{s.name}: {fmt_shape(s.shape)}" for s in r.symbols.values())
    what = "each gradient has its variable's shape" if r.layout == "denominator" else "transposed gradients"
    lines = [f"loss    {r.loss_text}", f"shapes  {shapes}", f"layout  {r.layout} ({what})", ""]
    lines += [f"{'where' if i == 0 else '':8}{n} = {t}" for i, (n, t) in enumerate(r.where_text)]
    lines += [f"d/d{n} = {g.text}    ({g.shape})" for n, g in r.gradients.items()]
    lines += ["", *r.notes, r.check.summary() if r.check else "not verified (--no-check)"]
    block = "\n".join(lines)
    return f"{as_text(r.derivation(lang, cite), lang)}\n\n{block}" if steps else block


def result_latex(r: Result, steps: bool = False, lang: str = "en", cite: bool = False,
                 transpose: str = "T") -> str:
    """The LaTeX form: the result block as one `align*` environment and a comment line with the
    layout and the check; with `steps`, the derivation (one `align*`) instead."""
    if steps:
        return as_latex(r.derivation(lang, cite, transpose), lang)
    return f"{latex_block(r)}\n% layout: {r.layout}; {check_line(r)}"


def result_markdown(r: Result, lang: str = "en", cite: bool = False, transpose: str = "T") -> str:
    """The Markdown form: the derivation ($$ blocks), then the result (its `where` definitions and
    gradients, by the loss's name) and the layout."""
    steps = r.derivation(lang, cite, transpose)
    head = f"**{word('result', lang)}** ({word('layout', lang)}: {r.layout})"
    block = latex_block(r, "aligned", r.loss_name)
    return f"{as_markdown(steps, lang)}\n{head}\n\n$$\n{block}\n$$\n"


def result_json(r: Result, steps: bool = False, lang: str = "en") -> dict:
    """The JSON form, as data: {loss, layout, gradients: {name: {text, latex, shape}}, where,
    check, notes}, and the derivation's steps [{stage, rule, text, latex}] with `steps` (the
    check then reports the derivation's check of its lines among its notes)."""
    check = r.check.to_dict() if r.check else None
    out: dict[str, object] = {
        "loss": r.loss_text,
        "layout": r.layout,
        "gradients": {n: {"text": g.text, "latex": g.latex, "shape": g.shape} for n, g in r.gradients.items()},
        "where": [[n, t] for n, t in r.where_text],
        "check": check,
        "notes": list(r.notes),
    }
    if steps:
        data = r.derivation(lang)
        out["steps"] = [{k: st[k] for k in ("stage", "rule", "text", "latex")} for st in data]
        if check is not None:
            check["notes"] = [*check["notes"], *data[-1]["notes"]]
    return out


def result_repr_latex(r: Result) -> str:
    """Jupyter's inline math for a result: the result block on one line, between `$`."""
    return f"${latex_block(r, 'aligned', compact=True)}$"


def render(r: Result, fmt: str = "text", steps: bool = False, lang: str = "en", cite: bool = False,
           transpose: str = "T") -> str:
    """The result in the output form `fmt` (text, latex, markdown or json), as the CLI prints it."""
    if fmt == "json":
        return json.dumps(result_json(r, steps, lang), indent=2, ensure_ascii=False)
    if fmt == "markdown":
        return result_markdown(r, lang, cite, transpose)
    if fmt == "latex":
        return result_latex(r, steps, lang, cite, transpose)
    if fmt == "text":
        return result_text(r, steps, lang, cite)
    raise ValueError(f"unknown output form {fmt!r} (use {', '.join(FORMATS)})")
