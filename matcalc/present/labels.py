"""What each rule is called in a derivation, in English and Chinese (the notes' own terms)."""
from __future__ import annotations

from functools import cache

from ..calculus.rewrite import load_table
from ..core.registry import on_change

LANGS = ("en", "zh")

# the steps of a derivation that are no rule line (a rule line carries its own `label:`)
RULES: dict[str, tuple[str, str]] = {
    "scalar-trace": ("scalar equals its trace", "标量套上迹"),
    "chain": ("chain rule: the step's differential under its delta", "链式法则：代入中间变量的微分"),
    "collect": ("linearity (collect terms)", "迹的线性（合并同类项）"),
    "gradient-form": ("df = tr(G' dX): G is the gradient", "对照 df = tr(G' dX) 得到梯度"),
    "simplify": ("simplify", "化简"),
    "normal-form": ("written in normal form (powers of one base combined)", "整理（合并同底数的幂）"),
    "cut": ("the remaining steps at once (the derivation is cut short)", "其余步骤一并完成（推导过长，从略）"),
}
TABLES = ("differentials", "adjoints", "simplify")

# connecting words of the printed derivation
WORDS: dict[str, tuple[str, str]] = {
    "loss": ("loss", "损失"),
    "steps": ("steps", "中间变量"),
    "differential": ("differential", "微分"),
    "trace": ("trace tricks", "迹技巧"),
    "gradient": ("gradient", "梯度"),
    "check": ("check", "验证"),
    "layout": ("layout", "布局"),
    "where": ("where", "其中"),
    "result": ("result", "结果"),
}


@cache
def line_labels() -> dict[str, tuple[str, ...]]:
    """Rule name -> (English, Chinese), from the `label:` comments of the rule lines."""
    return {r.name: r.labels for t in TABLES for r in load_table(t) if r.labels}


def rule_label(rule: str, lang: str = "en") -> str:
    """The name a reader knows a rule by: its line's label; a simplification rule without one is
    named by its own name (in Chinese after 化简：)."""
    i = LANGS.index(lang)
    labels = line_labels().get(rule) or RULES.get(rule)
    if labels:
        return labels[i]
    words = rule.replace("-", " ")
    simplify = any(r.name == rule for r in load_table("simplify"))
    return words if lang == "en" or not simplify else f"{RULES['simplify'][1]}：{words}"


on_change(line_labels.cache_clear)


def word(key: str, lang: str = "en") -> str:
    return WORDS[key][LANGS.index(lang)]
