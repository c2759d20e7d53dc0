"""Text -> syntax tree (`Syn`), with a lark grammar; never eval. Also reads declarations.

`Syn` is the untyped tree: the typer (`matcalc.typing`) turns it into a shaped `Expr`, and the
rule engine matches rule patterns written as `Syn` against `Expr` trees.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from typing import Any
from importlib import resources

import lark

from .errors import ParseError
from .expr import PROPERTIES
from .registry import Dim, Shape


@dataclass(frozen=True, slots=True)
class Syn:
    """Untyped syntax node: `kind` is a grammar rule name (`add`, `mul`, `call`, `name`, ...)."""

    kind: str
    value: Any = None  # the name (str), number (Fraction) or function name (str)
    args: tuple["Syn", ...] = ()
    span: tuple[int, int] = (0, 0)


@cache
def _lark(start: str) -> lark.Lark:
    grammar = resources.files("matcalc").joinpath("grammar.lark").read_text()
    return lark.Lark(grammar, start=start, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def _to_syn(tree: lark.Tree | lark.Token) -> Syn:
    if isinstance(tree, lark.Token):  # bare tokens only occur inside `call` and `cond`
        return Syn("name", str(tree), (), (tree.start_pos, tree.end_pos))
    span = (tree.meta.start_pos, tree.meta.end_pos) if not tree.meta.empty else (0, 0)
    kids = tree.children
    if tree.data == "number":
        return Syn("number", Fraction(str(kids[0])), (), span)
    if tree.data == "name":
        return Syn("name", str(kids[0]), (), span)
    if tree.data == "literal":  # a matrix written out: `[a, b; c, d]`, rows of scalar entries
        return Syn("literal", None, tuple(Syn("row", None, tuple(_to_syn(e) for e in r.children), span)
                                          for r in kids), span)
    if tree.data == "assign":
        return Syn("assign", str(kids[0]), (_to_syn(kids[1]),), span)
    if tree.data == "call":
        return Syn("call", str(kids[0]), tuple(_to_syn(k) for k in kids[1:] if k is not None), span)
    return Syn(str(tree.data), None, tuple(_to_syn(k) for k in kids), span)


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
    try:
        tree = _lark(start).parse(text)
    except lark.exceptions.LarkError as err:
        raise _fail(err, text) from None
    return _to_syn(tree)


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


_DIM = r"(?:[A-Za-z][A-Za-z0-9_]*|\d+)"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def _dim(tok: str) -> Dim:
    return int(tok) if tok.isdigit() else tok


def _shape(words: list[str], text: str) -> tuple[Shape | None, list[str]]:
    """Read the leading SHAPE words: `scalar`, `D`, `D x D`, `vector(D)`; returns the rest."""
    if not words or words[0] in PROPERTIES:
        return None, words
    w = words[0]
    if w == "scalar":
        return (1, 1), words[1:]
    m = re.fullmatch(rf"vector\(({_DIM})\)", w)
    if m:
        return (_dim(m.group(1)), 1), words[1:]
    if not re.fullmatch(_DIM, w):
        raise ParseError(f"bad shape {w!r} in declaration (use scalar, n, or m x n)", text, text.find(w))
    if len(words) == 2 and words[1] == "x":
        raise ParseError("incomplete shape: write rows x cols", text, len(text.rstrip()))
    if len(words) >= 3 and words[1] == "x":
        if not re.fullmatch(_DIM, words[2]):
            raise ParseError(f"bad dimension {words[2]!r} in declaration", text, text.find(words[2]))
        return (_dim(w), _dim(words[2])), words[3:]
    return (_dim(w), 1), words[1:]


def parse_decls(text: str) -> dict[str, Decl]:
    """`"A: n x n symmetric; x, y: n; lam: scalar"` -> {name: Decl}."""
    out: dict[str, Decl] = {}
    for part in filter(str.strip, text.split(";")):
        if ":" not in part:
            raise ParseError("a declaration reads NAME: SHAPE [PROPERTY ...]", text, text.find(part.strip()))
        names, spec = part.split(":", 1)
        spec_words = spec.replace("(", " (").replace(" (", "(").split()
        shape, rest = _shape(spec_words, text)
        for p in rest:
            if p not in PROPERTIES:
                raise ParseError(f"unknown property {p!r} (known: {', '.join(PROPERTIES)})", text, text.find(p))
        for name in (n.strip() for n in names.split(",")):
            if not _NAME.fullmatch(name):
                raise ParseError(f"bad name {name!r} in declaration", text, max(text.find(name), 0))
            out[name] = Decl(name, shape, frozenset(rest))
    return out
