"""Read claims written in LaTeX (as in notes): `W^T`, `X^{-1}`, `X^{-T}`, `\\odot`, `\\frac{1}{m}`,
`\\operatorname{tr}`, `\\mathrm{d}X`, `W_{1}`, juxtaposed products. The LaTeX is translated into the
text syntax, which the grammar then parses; what cannot be read unambiguously is an error that
names it (never a guess).
"""
from __future__ import annotations

import re
from functools import cache

from ..core.registry import CONSTANT_NAMES, FUNCTION_NAMES, OPS, on_change
from ..errors import ParseError

_TOKEN = re.compile(r"\\[A-Za-z]+|\\[,;!: ]|\\\||[A-Za-z]|\d+(?:\.\d+)?|\S")
_FUNCS = FUNCTION_NAMES  # the registry's live set of function names
# notation that is no operator row's (the operators' own LaTeX is read from their rows: _notation)
_COMMANDS = {r"\odot": ".*", r"\circ": ".*", r"\oslash": "./", r"\cdot": "*", r"\times": "*",
             r"\lambda": "lam", r"\top": "T", r"\left": "", r"\right": "", r"\bigg": "", r"\big": "", r"\Big": "",
             r"\Bigg": "", r"\,": "", r"\;": "", r"\!": "", r"\:": "", r"\ ": ""}
_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "eta", "theta", "mu", "rho", "tau", "phi", "psi", "omega"}
_WRAPPERS = {r"\operatorname", r"\mathrm", r"\text", r"\mathbf", r"\boldsymbol", r"\mathit", r"\mathcal"}
_ARG = "\x01"  # where a row's LaTeX template puts the argument
_PREFIX = re.compile(r"((?:\\[A-Za-z]+(?:\{[A-Za-z_]+\})?)+)\\left\(" + _ARG + r"\\right\)")


@cache
def _notation() -> dict[str, dict[str, str]]:
    """The LaTeX reader of the call operators, derived from their rows' templates: "command"
    `\\tanh` -> tanh; "prefix" (several commands, rewritten to one `\\operatorname{..}` first)
    `\\log\\det` -> logdet; "bars" `|` -> abs, `1`/`2`/`F` (norm subscripts) -> norm1/norm2;
    "wrap" `\\sqrt` -> sqrt; "power" `-1` -> inv."""
    out: dict[str, dict[str, str]] = {k: {} for k in ("command", "prefix", "bars", "wrap", "power", "infix")}
    for row in OPS.values():
        if row.parse_name and row.public and row.arity == 2:  # `\left(A \otimes B\right)` -> kron
            if m := re.fullmatch(r"\\left\((\x01) (\\[A-Za-z]+) (\x01)\\right\)", row.latex.format(_ARG, _ARG)):
                out["infix"][m.group(2)] = row.parse_name
        if not (row.parse_name and row.public and row.arity == 1):
            continue
        for template in filter(None, (row.latex, row.latex_matrix)):
            _read_template(out, template.format(_ARG), row.parse_name)
    return out


def _read_template(out: dict[str, dict[str, str]], t: str, name: str) -> None:
    """Enter template `t` (its argument `_ARG`) of call operator `name` in the reader `out`."""
    if m := _PREFIX.fullmatch(t):
        kind = "command" if re.fullmatch(r"\\[A-Za-z]+", m.group(1)) else "prefix"
        if m.group(1) != rf"\operatorname{{{name}}}":
            out[kind][m.group(1)] = name
    elif m := re.fullmatch(r"\\left\\\|" + _ARG + r"\\right\\\|_\{?(\w)\}?", t):
        out["bars"][m.group(1)] = name
    elif t == rf"\left|{_ARG}\right|":
        out["bars"]["|"] = name
    elif m := re.fullmatch(r"(\\[A-Za-z]+)\{" + _ARG + r"\}", t):
        out["wrap"][m.group(1)] = name
    elif m := re.fullmatch(_ARG + r"\^\{(-\w+)\}", t):
        out["power"][m.group(1)] = name


on_change(_notation.cache_clear)


_DIFF = "\x00d"  # the differential operator d(...), told apart from a symbol named d
_SIZED = "\x03"  # before a constant written with its size, \operatorname{zeros}\left(m, n\right)


def latex_to_text(src: str, symbols: frozenset[str] | set[str] = frozenset()) -> str:
    """The text-syntax form of a LaTeX expression; ParseError for what it cannot read. `I` is
    the identity (`eye`) unless `symbols`, the names in play, has a symbol I."""
    text = src.strip().strip("$")
    text = re.sub(r"\\(?:mathrm|operatorname|text)\{d\}\s*(?=\\left|\\[bB]igg?|\()", r"\\differential ", text)
    for prefix, name in _notation()["prefix"].items():  # \log\det -> \operatorname{logdet}
        words = re.findall(r"\\[A-Za-z]+(?:\{[A-Za-z_]+\})?", prefix)
        text = re.sub(r"\s*".join(map(re.escape, words)) + "(?![A-Za-z])", rf"\\operatorname{{{name}}}", text)
    text = re.sub(r"\\mathrm\{d\}\s*([A-Za-z])(?:_\{?(\d+)\}?)?",
                  lambda m: r"\mathrm{d" + m.group(1) + (m.group(2) or "") + "}",
                  text)  # the differential dX (or dW_1) is one name
    text = _sized_constants(text, symbols)
    toks = _TOKEN.findall(text)
    out, _ = _expr(toks, 0, src, stop=None)
    text = _join(out)
    return text if "I" in symbols else re.sub(r"(?<![\w.])I(?![\w(])", "eye", text)


# a constant with its size (as printing.LatexPrinter writes it where the context does not give
# it): \mathbf{1}_{n}, \mathbf{0}_{m \times n}, I_{n}; the subscript may hold one level of braces
_SIZE = r"_\s*(?:\{(?P<sub>(?:[^{}]|\{[^{}]*\})*)\}|(?P<one>\w))"
_SIZED_CONSTANT = re.compile(r"(?:\\mathbf\{(?P<digit>[01])\}|(?<![\\\w])I)\s*" + _SIZE)


def _sized_constants(text: str, symbols: frozenset[str] | set[str]) -> str:
    r"""`\mathbf{1}_{n}` -> ones(n), `\mathbf{1}_{n}^{T}` -> ones(n)' (the script applies to the
    whole), `\mathbf{0}_{m \times n}` -> zeros(m, n), `I_{n}` -> eye(n), each as the sized form
    `\operatorname{ones}\left(n\right)` in braces, its dimensions read like any LaTeX (`m n` is
    m*n, `d_{1}` is d1). `I_{1}` stays the symbol I1 when `symbols` has it."""
    def sized(m: re.Match) -> str:
        sub = m.group("sub") if m.group("sub") is not None else m.group("one")
        if m.group("digit") is None and _subscripted("I", sub) in symbols:
            return m.group(0)
        name = {"1": "ones", "0": "zeros", None: "eye"}[m.group("digit")]
        dims = ", ".join(re.split(r"\\times(?![A-Za-z])", sub))
        return rf"{{\operatorname{{{name}}}\left({dims}\right)}}"
    return _SIZED_CONSTANT.sub(sized, text)


def _subscripted(base: str, sub: str) -> str:
    """The name `base_{sub}` reads as (printing.latex_name's inverse): W_{1} is W1, x_{i} is x_i."""
    sub = sub.replace(" ", "")
    return base + (sub if sub.isdigit() else "_" + sub.replace(",", "_"))


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
        if j >= len(toks):
            raise _fail(src, "a '{' is not closed")
        return ["(", *inner, ")"] if len(inner) > 1 else inner, j + 1
    inner, j = _expr(toks[i:i + 1], 0, src, stop=None)
    return inner, i + 1


def _raw(toks: list[str], i: int, src: str) -> tuple[str, int]:
    """The plain text of a `{...}` group (for names and scripts)."""
    if i >= len(toks):
        raise _fail(src, "something is missing at the end")
    if toks[i] != "{":
        return toks[i], i + 1
    depth = 0
    for j in range(i, len(toks)):
        depth += {"{": 1, "}": -1}.get(toks[j], 0)
        if depth == 0:
            return "".join(toks[i + 1:j]), j + 1
    raise _fail(src, "a '{' is not closed")


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
            constant = {"1": "ones", "0": "zeros"}.get(word) if t == r"\mathbf" else None
            if t == r"\operatorname" and word in CONSTANT_NAMES:  # \operatorname{zeros}\left(m, n\right): its size
                constant = _SIZED + word
            out.append([constant or word.replace("\\", "")])
            continue
        if t == r"\left" and i + 1 < len(toks) and toks[i + 1] in ("\\|", "|"):
            item, i = _bars(toks, i, src)
            out.append(item)
            continue
        if t in _notation()["wrap"]:  # \sqrt{x}
            inner, i = _group(toks, i + 1, src)
            out.append([_notation()["wrap"][t], "(", *inner, ")"])
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
        if t == r"\differential":
            out.append([_DIFF])
            i += 1
            continue
        if t in _COMMANDS or t in _notation()["command"]:
            word = _COMMANDS[t] if t in _COMMANDS else _notation()["command"][t]
            if word:
                out.append([word])
            i += 1
            continue
        if t in _notation()["infix"]:  # an infix operator (\otimes): split the group at it, below
            out.append([t])
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
    return _infix(out, src), i


def _infix(items: list[list[str]], src: str) -> list[str]:
    r"""The items of a group, with an infix operator of the registry (`A \otimes B`) read as the
    call `kron(A, B)` of the juxtaposed products on either side (left to right for several).
    Its operands may not be sums or argument lists: those must be in parentheses (no guessing)."""
    infix = _notation()["infix"]
    if not any(len(it) == 1 and it[0] in infix for it in items):
        return _juxtapose(items, src)
    segments: list[list[list[str]]] = [[]]
    ops: list[str] = []
    for it in items:
        if len(it) == 1 and it[0] in infix:
            segments.append([])
            ops.append(infix[it[0]])
        else:
            segments[-1].append(it)
    for seg in segments:
        if not seg or any(len(it) == 1 and it[0] in ("+", ",", "=") or (k and it == ["-"]) for k, it in enumerate(seg)):
            raise _fail(src, "an operand of \\otimes that is empty, a sum or a list (write it in parentheses)")
    out = _juxtapose(segments[0], src)
    for op, seg in zip(ops, segments[1:]):
        out = [op, "(", *out, ",", *_juxtapose(seg, src), ")"]
    return out


def _bars(toks: list[str], i: int, src: str) -> tuple[list[str], int]:
    """`\\left\\| X \\right\\|_{2}` (a norm: _2, _F or _1) or `\\left| x \\right|` (abs), at i."""
    bar = toks[i + 1]
    inner, j = _expr(toks, i + 2, src, stop=r"\right")
    if j + 1 >= len(toks) or toks[j + 1] != bar:
        raise _fail(src, f"a '\\left{bar}' is not closed by '\\right{bar}'")
    j += 2
    bars = _notation()["bars"]
    if bar == "|" and "|" in bars:
        return [bars["|"], "(", *inner, ")"], j
    sub, j = _raw(toks, j + 1, src) if j < len(toks) and toks[j] == "_" else ("", j)
    if sub.strip() not in bars or sub.strip() == "|":
        raise _fail(src, "a norm needs its kind: _{2}, _{F} or _{1}")
    return [bars[sub.strip()], "(", *inner, ")"], j


def _script(out: list[list[str]], toks: list[str], i: int, src: str) -> int:
    """Apply `^...` or `_...` to the atom just read."""
    kind = toks[i]
    text, j = _raw(toks, i + 1, src)
    text = text.replace(" ", "")
    if kind == "_":
        if len(out[-1]) != 1 or not re.fullmatch(r"\d+|[A-Za-z]|[A-Za-z]+\d+(,[A-Za-z0-9]+)*", text):
            raise _fail(src, f"the subscript _{{{text}}} (entries and indices are not supported)")
        # as matcalc prints names (printing.latex_name): W_{1} is W1, x_{i} is x_i, \delta_{h1} is delta_h1
        out[-1] = [_subscripted(out[-1][0], text)]
        return j
    base = out[-1] if len(out[-1]) == 1 else ["(", *out[-1], ")"]
    table = {"T": base + ["'"], "\\top": base + ["'"]}
    for power, name in _notation()["power"].items():  # ^{-1} -> inv, and ^{-T} its transpose
        table[power] = [name, "("] + base + [")"]
        if power == "-1":
            table["-T"] = table["-\\top"] = table[power] + ["'"]
    if text in table:
        out[-1] = table[text]
    elif (p := _exponent(text.removeprefix("\\circ"))) is not None:  # x^{2}, x^{\frac{1}{2}}, X^{\circ -1}
        out[-1] = ["(", *base, ")", ".^" if text.startswith("\\circ") else "^", "(", p, ")"]
    elif re.fullmatch(r"(?=.*[A-Za-z])-?[\w{}]+(?:[-+*][\w{}]+)*", text):  # X^{k}, X^{k - 1}, X^{2 k}: a symbolic power
        inner, _ = _group(toks, i + 1, src)
        out[-1] = ["(", *base, ")", "^", "(", *inner, ")"]
    else:
        raise _fail(src, f"the superscript ^{{{text}}} (write ^T, ^{{-1}}, ^{{-T}}, ^2 or ^{{\\circ 2}})")
    return j


def _exponent(text: str) -> str | None:
    """A numeric exponent as matcalc prints it (`2`, `-1.5`, `\\frac{1}{2}`, `-\\frac{3}{2}`), as
    text; None for anything else (`1/2` stays ambiguous)."""
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return text
    m = re.fullmatch(r"(-?)\\frac\{(\d+)\}\{(\d+)\}", text)
    return f"{m.group(1)}{m.group(2)}/{m.group(3)}" if m else None


def _juxtapose(items: list[list[str]], src: str) -> list[str]:
    """Adjacent atoms multiply (`A B` is `A*B`); a function name takes the atom after it."""
    ops = {"+", "-", "*", "/", ".*", "./", ",", "(", "="}
    out: list[str] = []
    prev_atom = False
    for k, item in enumerate(items):
        first = item[0]
        is_op = len(item) == 1 and first in ops
        func = len(item) == 1 and (first in _FUNCS or first == _DIFF or first.startswith(_SIZED))
        if not is_op and prev_atom and not (out and (out[-1] in _FUNCS or out[-1] == _DIFF
                                                     or out[-1].startswith(_SIZED))):
            out.append("*")
        out.extend(item)
        prev_atom = not is_op and not func
        if func and k + 1 < len(items) and items[k + 1][0] != "(":
            raise _fail(src, f"{first} needs its argument in parentheses")
    return out


def _join(tokens: list[str]) -> str:
    return " ".join(tokens).replace(_SIZED, "") \
        .replace(_DIFF + " (", "d(").replace(_DIFF, "d").replace("( ", "(").replace(" )", ")") \
        .replace(" '", "'").replace(" .^ ", ".^").replace(" ^ ", "^")
