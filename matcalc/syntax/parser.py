"""Text -> syntax tree (`Syn`), with a lark grammar; never eval. Also reads declarations.

`Syn` is the untyped tree: the typer (`matcalc.syntax.typer`) turns it into a shaped `Expr`, and the
rule engine matches rule patterns written as `Syn` against `Expr` trees.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from importlib import resources
from typing import Any

import lark

from ..core import limits
from ..core.properties import PROPERTIES, constant, square_property
from ..core.registry import Dim, Shape, dim_mul
from ..errors import LimitError, ParseError


@dataclass(frozen=True, slots=True)
class Syn:
    """Untyped syntax node: `kind` is a grammar rule name (`add`, `mul`, `call`, `name`, ...)."""

    kind: str
    value: Any = None  # the name (str), number (Fraction) or function name (str)
    args: tuple["Syn", ...] = ()
    span: tuple[int, int] = (0, 0)


@cache
def _lark(start: str) -> lark.Lark:
    grammar = resources.files("matcalc.syntax").joinpath("grammar.lark").read_text()
    return lark.Lark(grammar, start=start, parser="lalr", propagate_positions=True, maybe_placeholders=False)


CHAINS = {"add": "sum", "sub": "sum", "mul": "product", "matmul": "product", "div": "product",
          "hadamard": "product", "ediv": "product"}
FLAT = ("program", "assign", "row")  # containers: no level of nesting of their own


def _number(word: str, pos: int) -> Fraction:
    """A number as written, within the limits: at most MAX_NUMBER_DIGITS digits, and (unless 0)
    between 1e-300 and 1e300 in magnitude; decided before the exact value is built."""
    mantissa, _, exp = word.lower().partition("e")
    digits = mantissa.replace(".", "").lstrip("0")
    shown = word if len(word) <= 30 else word[:27] + "..."
    where = f"'{shown}' at position {pos}"
    if len(mantissa) - ("." in mantissa) > limits.MAX_NUMBER_DIGITS:
        raise LimitError(f"number {where} has more than {limits.MAX_NUMBER_DIGITS} digits")
    if not digits:
        return Fraction(0)
    if exp and len(exp.lstrip("+-").lstrip("0")) > 4:
        raise LimitError(f"number {where} is out of range (constants are limited to 1e-300 .. 1e300)")
    value = Fraction(word)
    if limits.too_big(value):
        raise LimitError(f"number {where} {limits.too_big(value)} (constants are limited to 1e-300 .. 1e300)")
    return value


def _to_syn(root: lark.Tree | lark.Token, text: str = "") -> Syn:
    """The lark tree as a `Syn` tree, iteratively (a long chain `a + b + ... ` is a deep tree),
    refusing nesting deeper than `MAX_DEPTH`: a level is an operator, call or literal inside
    another, except that the terms of one chain of sums or of products are one level."""
    done: dict[int, tuple[Syn, int]] = {}  # id(tree) -> (Syn, depth)
    stack: list[tuple[lark.Tree | lark.Token, bool]] = [(root, False)]
    while stack:
        tree, expanded = stack.pop()
        if isinstance(tree, lark.Tree) and not expanded and tree.data not in ("number", "name"):
            stack.append((tree, True))
            stack.extend((k, False) for k in tree.children if isinstance(k, lark.Tree))
            continue
        done[id(tree)] = _node(tree, done, text)
    return done[id(root)][0]


def _node(tree: lark.Tree | lark.Token, done: dict[int, tuple[Syn, int]], text: str) -> tuple[Syn, int]:
    if isinstance(tree, lark.Token):  # bare tokens only occur inside `call` and `cond`
        return Syn("name", str(tree), (), (tree.start_pos or 0, tree.end_pos or 0)), 1
    span = (tree.meta.start_pos, tree.meta.end_pos) if not tree.meta.empty else (0, 0)
    kids = tree.children
    if tree.data == "number":
        return Syn("number", _number(str(kids[0]), span[0]), (), span), 1
    if tree.data == "name":
        return Syn("name", str(kids[0]), (), span), 1

    def sub(k: lark.Tree | lark.Token) -> Syn:
        return done[id(k)][0] if isinstance(k, lark.Tree) else _node(k, done, text)[0]

    depth = 1
    family = CHAINS.get(str(tree.data))
    for i, k in enumerate(kids):
        if isinstance(k, lark.Tree):
            d = done[id(k)][1]
            same_chain = i == 0 and family is not None and CHAINS.get(str(k.data)) == family
            depth = max(depth, d if same_chain or tree.data in FLAT else d + 1)
    if depth > limits.MAX_DEPTH:
        raise LimitError(f"expression too deeply nested: more than {limits.MAX_DEPTH} levels "
                         f"of operators and calls inside each other at position {span[0]}")
    if tree.data == "literal":  # a matrix written out: `[a, b; c, d]`, rows of scalar entries
        syn = Syn("literal", None, tuple(Syn("row", None, tuple(sub(e) for e in r.children), span) for r in kids), span)
    elif tree.data == "assign":
        syn = Syn("assign", str(kids[0]), (sub(kids[1]),), span)
    elif tree.data == "call":
        syn = Syn("call", str(kids[0]), tuple(sub(k) for k in kids[1:] if k is not None), span)
    else:
        syn = Syn(str(tree.data), None, tuple(sub(k) for k in kids), span)
    return syn, depth


def _fail(err: lark.exceptions.LarkError, text: str) -> ParseError:
    pos = getattr(err, "pos_in_stream", None)
    if pos is None:
        pos = getattr(getattr(err, "token", None), "start_pos", None)
    if isinstance(err, lark.exceptions.UnexpectedEOF) or pos is None:
        return ParseError("unexpected end of input", text, len(text))
    token = getattr(err, "token", None)
    if token is not None and token.type == "$END":
        return ParseError("unexpected end of input", text, len(text))
    if token is not None:
        what = f"unexpected {str(token)!r}"
    else:
        what = f"unexpected character {text[pos]!r}" if pos < len(text) else "unexpected end of input"
    return ParseError(f"parse error: {what}", text, pos)


def parse_syn(text: str, start: str = "start") -> Syn:
    """Parse an expression (or, with start='rule', a rule line) into a `Syn` tree."""
    if not text.strip():
        raise ParseError("empty expression", text, 0)
    limits.check_length(text, "the program" if start == "program" else "the expression")
    _check_brackets(text)
    try:
        tree = _lark(start).parse(text)
    except lark.exceptions.LarkError as err:
        raise _fail(err, text) from None
    syn = _to_syn(tree, text)
    if start == "program":
        _check_program(syn, text)
    return syn


def _check_brackets(text: str) -> None:
    """Parentheses and brackets nested deeper than MAX_DEPTH (comments skipped)."""
    depth, comment = 0, False
    for i, ch in enumerate(text):
        if comment:
            comment = ch != "\n"
        elif ch == "#":
            comment = True
        elif ch in "([":
            depth += 1
            if depth > limits.MAX_DEPTH:
                raise LimitError(f"expression too deeply nested: more than {limits.MAX_DEPTH} levels "
                                 f"of parentheses at position {i}")
        elif ch in ")]":
            depth -= 1


def _check_program(syn: Syn, text: str) -> None:
    """At most MAX_STATEMENTS statements; every statement but the last names its step."""
    if len(syn.args) > limits.MAX_STATEMENTS:
        raise LimitError(f"program too long: {len(syn.args)} statements (at most {limits.MAX_STATEMENTS})")
    for stmt in syn.args[:-1]:
        if stmt.kind != "assign":
            raise ParseError(f"'{snippet(text, stmt)}' is not the last statement, so it must name its "
                             "value: write 'name = ...' (only the loss, last, may be a bare expression)",
                             text, stmt.span[0])


def snippet(text: str, syn: Syn) -> str:
    """The source text of a sub-expression (for error messages)."""
    a, b = syn.span
    return text[a:b] if b > a else "?"


# ---- declarations -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Decl:
    """A declared symbol: `shape` is None when only properties were given."""

    name: str
    shape: Shape | None
    props: frozenset[str]


_DIM = r"(?:[A-Za-z][A-Za-z0-9_]*|\d+)(?:\*(?:[A-Za-z][A-Za-z0-9_]*|\d+))*"  # a product: m*n
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def _dim(tok: str, text: str = "") -> Dim:
    if "*" in tok:  # a dimension expression: m*n
        return dim_mul(*(_dim(t, text) for t in tok.split("*")))
    if not tok.isdigit():
        return tok
    if len(tok) > 7 or not 1 <= int(tok) <= limits.MAX_DIM:
        raise LimitError(f"dimension {tok if len(tok) <= 20 else tok[:17] + '...'} in declaration "
                         f"'{text.strip()[:60]}' is out of range (an integer dimension is 1 .. {limits.MAX_DIM})")
    return int(tok)


def _property_typo(word: str) -> str | None:
    """The property a misspelt word most likely means (`symetric` -> `symmetric`), or None."""
    low = word.lower()
    if low in PROPERTIES:
        return low
    close = difflib.get_close_matches(low, PROPERTIES, n=1, cutoff=0.75)
    return close[0] if close and len(word) >= 4 else None


def _unknown_property(word: str, text: str) -> ParseError:
    close = _property_typo(word) or next(iter(difflib.get_close_matches(word.lower(), PROPERTIES, n=1, cutoff=0.5)),
                                         None)
    hint = f"did you mean {close}?" if close else f"known: {', '.join(PROPERTIES)}"
    return ParseError(f"unknown property {word!r} ({hint})", text, text.find(word))


def _shape(words: list[str], text: str) -> tuple[Shape | None, list[str]]:
    """Read the leading SHAPE words: `scalar`, `D`, `D x D`, `vector(D)`; returns the rest."""
    if not words or words[0] in PROPERTIES:
        return None, words
    w = words[0]
    if w == "scalar":
        return (1, 1), words[1:]
    m = re.fullmatch(rf"vector\(({_DIM})\)", w)
    if m:
        return (_dim(m.group(1), text), 1), words[1:]
    if not re.fullmatch(_DIM, w):
        raise ParseError(f"bad shape {w!r} in declaration (use scalar, n, or m x n)", text, text.find(w))
    if _property_typo(w) and not (len(words) >= 3 and words[1] == "x"):  # `A: symetric` is no dimension name
        raise _unknown_property(w, text)
    if len(words) == 2 and words[1] == "x":
        raise ParseError("incomplete shape: write rows x cols", text, len(text.rstrip()))
    if len(words) >= 3 and words[1] == "x":
        if not re.fullmatch(_DIM, words[2]):
            raise ParseError(f"bad dimension {words[2]!r} in declaration", text, text.find(words[2]))
        return (_dim(w, text), _dim(words[2], text)), words[3:]
    return (_dim(w, text), 1), words[1:]


def parse_decls(text: str) -> dict[str, Decl]:
    """`"A: n x n symmetric; x, y: n; lam: scalar"` -> {name: Decl}. A name is declared once;
    properties are those of the property table (a misspelt one is an error with a suggestion); a
    symbol with a property of square matrices only (`properties.square_property`) is square."""
    limits.check_length(text, "the declaration text")
    out: dict[str, Decl] = {}
    for part in filter(str.strip, text.split(";")):
        if ":" not in part:
            raise ParseError("a declaration reads NAME: SHAPE [PROPERTY ...]", text, text.find(part.strip()))
        names, spec = part.split(":", 1)
        spec_words = spec.replace("(", " (").replace(" (", "(").split()
        shape, rest = _shape(spec_words, text)
        for p in rest:
            if p not in PROPERTIES:
                raise _unknown_property(p, text)
        square = square_property(rest)
        if shape is not None and square and shape[0] != shape[1]:
            rows, cols = shape
            article = "an" if square[0] in "aeiou" or square == "spd" else "a"
            raise ParseError(f"in '{part.strip()}': {article} {square} matrix must be square, but the shape is "
                             f"{rows} x {cols} (write {rows} x {rows})", text, text.find(part.strip()))
        fixed = constant(rest)  # an integer constant (the k of X^k) is a scalar
        if fixed and shape is not None and shape != (1, 1):
            raise ParseError(f"in '{part.strip()}': an {fixed} is a scalar constant, but the shape is "
                             f"{shape[0]} x {shape[1]} (write 'scalar {fixed}')", text, text.find(part.strip()))
        shape = (1, 1) if fixed else shape
        for name in (n.strip() for n in names.split(",")):
            if not _NAME.fullmatch(name):
                raise ParseError(f"bad name {name!r} in declaration", text, max(text.find(name), 0))
            if name in out:
                raise ParseError(f"'{name}' is declared twice (declare each name once, with all its properties: "
                                 f"'{name}: SHAPE PROPERTY ...')", text, text.find(part.strip()))
            out[name] = Decl(name, shape, frozenset(rest))
    return out
