"""Write a complete Markdown note: the softmax cross-entropy and the two-layer network, derived
step by step (differential rules, then trace tricks), as in seed note 001.

    python examples/derivation_note.py [OUT.md] [--lang zh]

The note renders in KaTeX and MathJax (Hexo, Jekyll, Obsidian, Jupyter).
"""
from __future__ import annotations

import sys

import matcalc

INTRO = {
    "en": ("# Backpropagation by the differential method\n\n"
           "Each derivation takes the differential of the loss rule by rule, then uses the trace tricks "
           "to bring it to the form df = tr(G' dX); G is the gradient. Every step below was derived and "
           "checked by matcalc.\n"),
    "zh": ("# 用微分法推导反向传播\n\n"
           "先按微分法则逐条求出损失的微分，再用迹技巧把它整理成 df = tr(G' dX) 的形式，G 即为梯度。"
           "下面每一步都由 matcalc 推导并验证。\n"),
}
SECTIONS = [
    ({"en": "## Softmax cross-entropy", "zh": "## 交叉熵函数"},
     "-y'*log(softmax(a))", ["a"], "a: m; y: probability"),
    ({"en": "## A two-layer network", "zh": "## 两层神经网络"},
     "a1 = W1*x; h1 = sigmoid(a1); a2 = W2*h1; l = -y'*log(softmax(a2))", ["W1", "W2"], "y: probability"),
]


def note(lang: str = "en") -> str:
    """The whole note as Markdown."""
    parts = [INTRO[lang]]
    for titles, loss, wrt, let in SECTIONS:
        r = matcalc.grad(loss, wrt, let)
        parts += [titles[lang], f"`{loss}`  (`{let}`)", r.steps_markdown(lang=lang)]
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    lang = "zh" if "--lang" in argv and argv[argv.index("--lang") + 1] == "zh" else "en"
    out = next((a for a in argv if a.endswith(".md")), None)
    text = note(lang)
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(text)
        print(f"wrote {out} ({len(text.splitlines())} lines)")
    else:
        print(text)
    return {"markdown": text, "lang": lang}


if __name__ == "__main__":
    main()
