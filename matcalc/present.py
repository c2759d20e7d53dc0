"""A derivation for the reader: as data, plain text, LaTeX (align*) and Markdown ($$ blocks).

Each line names its rule (in English or Chinese); `cite` adds the reference a rule line carries.
"""
from __future__ import annotations

from .derivation import Line
from .expr import Expr
from .labels import rule_label, word
from .printing import LatexPrinter, TextPrinter, latex_name
from .rewrite import load_table

STAGES = ("loss", "differential", "trace", "gradient", "check")


def citations() -> dict[str, str]:
    return {r.name: r.cite for t in ("differentials", "adjoints", "simplify") for r in load_table(t) if r.cite}


def steps_data(lines: list[Line], loss: list[tuple[str, str, str]], names: dict[Expr, str], loss_name: str,
               summary: str, lang: str = "en", cite: bool = False, transpose: str = "T") -> list[dict]:
    """[{stage, rule, label, lhs, text, latex}]: `loss` holds (name, text, latex) of the steps."""
    refs = citations() if cite else {}
    text, tex = TextPrinter(names), LatexPrinter(names, transpose)
    out = [{"stage": "loss", "rule": "", "label": "", "lhs": n, "text": t, "latex": lt} for n, t, lt in loss]
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
    out.append({"stage": "check", "rule": "", "label": "", "lhs": "", "text": summary, "latex": ""})
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
