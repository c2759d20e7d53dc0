"""Read claims written in LaTeX (as in notes): `W^T`, `X^{-1}`, `X^{-T}`, `\\odot`, `\\frac{1}{m}`,
`\\operatorname{tr}`, `\\mathrm{d}X`, `W_{1}`, juxtaposed products. The LaTeX is translated into the
text syntax, which the grammar then parses; what cannot be read unambiguously is an error that
names it (never a guess).
"""
from __future__ import annotations

import re

from .errors import ParseError

_TOKEN = re.compile(r"\\[A-Za-z]+|\\[,;!: ]|\\\||[A-Za-z]|\d+(?:\.\d+)?|\S")
_FUNCS = {"tr", "det", "logdet", "inv", "diag", "sum", "exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid",
          "relu", "softmax", "log_softmax", "logsumexp", "softplus", "abs", "sign", "norm1", "norm2"}
_COMMANDS = {r"\odot": ".*", r"\circ": ".*", r"\oslash": "./", r"\cdot": "*", r"\times": "*", r"\sigma": "sigmoid",
             r"\tanh": "tanh", r"\exp": "exp", r"\log": "log", r"\det": "det", r"\sin": "sin", r"\cos": "cos",
             r"\lambda": "lam", r"\top": "T", r"\left": "", r"\right": "", r"\bigg": "", r"\big": "", r"\Big": "",
             r"\Bigg": "", r"\,": "", r"\;": "", r"\!": "", r"\:": "", r"\ ": ""}
_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "eta", "theta", "mu", "rho", "tau", "phi", "psi", "omega"}
_WRAPPERS = {r"\operatorname", r"\mathrm", r"\text", r"\mathbf", r"\boldsymbol", r"\mathit"}


def latex_to_text(src: str) -> str:
    """The text-syntax form of a LaTeX expression; ParseError for what it cannot read."""
    text = re.sub(r"\\mathrm\{d\}\s*([A-Za-z])(?:_\{?(\d+)\}?)?", lambda m: r"\mathrm{d" + m.group(1) + (m.group(2) or "") + "}",
                  src.strip().strip("$"))  # the differential dX (or dW_1) is one name
    toks = _TOKEN.findall(text)
    out, _ = _expr(toks, 0, src, stop=None)
    return _join(out)


def looks_like_latex(s: str) -> bool:
    return "\\" in s or "^{" in s or "_{" in s or "^T" in s


def _fail(src: str, what: str) -> ParseError:
    return ParseError(f"cannot read this LaTeX: {what}", src, 0)


def _group(toks: list[str], i: int, src: str) -> tuple[list[str], int]:
    """A `{...}` group (or a single token) starting at i, translated, as one parenthesised atom."""
    if i >= len(toks):
        raise _fail(src, "something is missing at the end")
    if toks[i] == "{":
        inner, j = _expr(toks, i + 1, src, stop="}")
        return ["(", *inner, ")"] if len(inner) > 1 else inner, j + 1
    inner, j = _expr(toks[i:i + 1], 0, src, stop=None)
    return inner, i + 1


def _raw(toks: list[str], i: int, src: str) -> tuple[str, int]:
    """The plain text of a `{...}` group (for names and scripts)."""
    if toks[i] != "{":
        return toks[i], i + 1
    j = toks.index("}", i)
    return "".join(toks[i + 1:j]), j + 1


def _expr(toks: list[str], i: int, src: str, stop: str | None) -> tuple[list[str], int]:
    out: list[list[str]] = []  # atoms and operators, each a list of text tokens
    while i < len(toks) and toks[i] != stop:
        t = toks[i]
        if t in ("^", "_"):
            if not out:
                raise _fail(src, f"'{t}' with nothing before it")
            i = _script(out, toks, i, src)
            continue
        if t == r"\frac":
            num, i = _group(toks, i + 1, src)
            den, i = _group(toks, i, src)
            out.append(["(", *num, ")", "/", "(", *den, ")"])
            continue
        if t in _WRAPPERS:
            word, i = _raw(toks, i + 1, src)
            out.append(["ones"] if t == r"\mathbf" and word == "1" else [word.replace("\\", "")])
            continue
        if t == "{":
            inner, i = _group(toks, i, src)
            out.append(inner)
            continue
        if t == "(":  # a parenthesised group is one atom: (A^T B^T)^T
            inner, j = _expr(toks, i + 1, src, stop=")")
            if j >= len(toks):
                raise _fail(src, "a '(' is not closed")
            out.append(["(", *inner, ")"])
            i = j + 1
            continue
        if t in ("\\|", "|") and "|" in t:
            raise _fail(src, "norms written with bars (use norm2(...))")
        if t in _COMMANDS:
            word = _COMMANDS[t]
            if word:
                out.append([word])
            i += 1
            continue
        if t.startswith("\\") and t[1:] in _GREEK:
            out.append([t[1:]])
            i += 1
            continue
        if t.startswith("\\"):
            raise _fail(src, f"the command {t}")
        out.append([t])
        i += 1
    return _juxtapose(out, src), i


def _script(out: list[list[str]], toks: list[str], i: int, src: str) -> int:
    """Apply `^...` or `_...` to the atom just read."""
    kind = toks[i]
    text, j = _raw(toks, i + 1, src)
    text = text.replace(" ", "")
    if kind == "_":
        if not re.fullmatch(r"\d+|[A-Za-z]", text) or len(out[-1]) != 1:
            raise _fail(src, f"the subscript _{{{text}}} (entries and indices are not supported)")
        out[-1] = [out[-1][0] + text]
        return j
    base = out[-1] if len(out[-1]) == 1 else ["(", *out[-1], ")"]
    table = {"T": base + ["'"], "\\top": base + ["'"], "-1": ["inv", "("] + base + [")"],
             "-T": ["inv", "("] + base + [")", "'"], "-\\top": ["inv", "("] + base + [")", "'"]}
    if text in table:
        out[-1] = table[text]
    elif re.fullmatch(r"\\circ-?\d+", text):
        out[-1] = ["(", *base, ")", ".^", text[5:]]
    elif re.fullmatch(r"\d+", text):
        out[-1] = ["(", *base, ")", "^", text]
    else:
        raise _fail(src, f"the superscript ^{{{text}}} (write ^T, ^{{-1}}, ^{{-T}}, ^2 or ^{{\\circ 2}})")
    return j


def _juxtapose(items: list[list[str]], src: str) -> list[str]:
    """Adjacent atoms multiply (`A B` is `A*B`); a function name takes the atom after it."""
    ops = {"+", "-", "*", "/", ".*", "./", ",", "(", "="}
    out: list[str] = []
    prev_atom = False
    for k, item in enumerate(items):
        first = item[0]
        is_op = len(item) == 1 and first in ops
        if not is_op and prev_atom and not (out and out[-1] in _FUNCS):
            out.append("*")
        out.extend(item)
        prev_atom = not is_op and not (len(item) == 1 and first in _FUNCS)
        if first in _FUNCS and len(item) == 1 and k + 1 < len(items) and items[k + 1][0] != "(":
            raise _fail(src, f"{first} needs its argument in parentheses")
    return out


def _join(tokens: list[str]) -> str:
    return " ".join(tokens).replace("( ", "(").replace(" )", ")").replace(" '", "'").replace(" .^ ", ".^") \
        .replace(" ^ ", "^")
