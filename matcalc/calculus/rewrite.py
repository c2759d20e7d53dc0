"""Rule tables: loading, matching against trees, conditions, and instantiating right-hand sides.

A rule line reads `name : LHS => RHS [if pred(V) and ...]`, parsed by the expression grammar.
In patterns, a one-letter lowercase name matches a 1 x 1 expression, any other name any
expression; `A*B` (two matrices) matches a matrix product split anywhere, `a*B` a scalar multiple,
and `A + B`, `A .* B` match a sum or an elementwise product with `A` any one operand.
A line `name : @function` names a Python rule registered in `PYTHON_RULES` (for identities that
need counting, like collecting common factors).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cache, cached_property
from importlib import resources
from typing import Callable, Iterator

from ..core import algebra as al
from ..core import properties
from ..core.expr import Dif, Expr, Eye, Num, Op, Sym, SymbolSet
from ..core.registry import OPS, extra_rules, on_change
from ..errors import MatcalcError
from ..syntax.parser import Syn, parse_syn
from ..syntax.typer import to_expr

Binds = dict[str, Expr]
PYTHON_RULES: dict[str, Callable[[Expr], Expr | None]] = {}


def python_rule(fn: Callable[[Expr], Expr | None]) -> Callable[[Expr], Expr | None]:
    """Register a rule written in Python under its function name (referenced as `@name`)."""
    PYTHON_RULES[fn.__name__] = fn
    return fn


@dataclass(frozen=True, eq=False)
class Rule:
    name: str
    text: str  # the whole line, for messages and citations
    lhs: Syn | None
    rhs: Syn | None
    conds: tuple[tuple[str, str], ...] = ()
    fn: str | None = None  # a Python rule
    cite: str = ""  # a reference given in the line's comment, e.g. "Matrix Cookbook (37)"
    labels: tuple[str, ...] = ()  # what a derivation calls the rule, (English, Chinese): `# label: EN | ZH`

    @cached_property
    def pattern(self) -> Syn | None:
        """The part of the left side matched against a node: `P` in `d(P)` and in `tr(G'*P)`."""
        p = self.lhs
        if p is not None and p.kind == "call" and p.value == "d":
            return p.args[0]
        if p is not None and p.kind == "call" and p.value == "tr" and p.args[0].kind == "mul":
            first, inner = p.args[0].args
            if first.kind == "transpose" and first.args[0] == Syn("name", "G", (), first.args[0].span):
                return inner
        return p

    @cached_property
    def inverts(self) -> frozenset[str]:
        """The pattern names whose inverse the right side writes and the left side does not
        (A in d(det(A)) => det(A)*tr(inv(A)*dA)): the formula holds where A is invertible, a
        narrower domain than the left side's where A can be singular (A'*A with A wide)."""
        def inverted(p: Syn | None) -> set[str]:
            if p is None:
                return set()
            here = {p.args[0].value} if p.kind == "call" and p.value == "inv" and p.args[0].kind == "name" else set()
            return here.union(*(inverted(a) for a in p.args))
        return frozenset(inverted(self.rhs) - inverted(self.lhs))

    @cached_property
    def heads(self) -> frozenset[str] | None:
        """Operators the pattern can match at its root (None: anything)."""
        return pattern_heads(self.pattern) if self.pattern is not None else None


def pattern_heads(p: Syn) -> frozenset[str] | None:
    kind_to_op = {"add": "add", "hadamard": "hadamard", "transpose": "transpose", "pow": "pow", "epow": "pow"}
    if p.kind == "call":
        return frozenset(n for n, r in OPS.items() if r.parse_name == p.value)
    if p.kind in ("mul", "matmul"):
        return frozenset({"mul" if is_scale_pattern(p) else "matmul"})
    if p.kind == "name":
        return None if p.value not in ("eye",) else frozenset({"eye"})
    return frozenset({kind_to_op[p.kind]}) if p.kind in kind_to_op else frozenset()


def is_scale_pattern(p: Syn) -> bool:
    return any(a.kind == "number" or (a.kind == "name" and is_scalar_var(a.value)) for a in p.args)


def is_scalar_var(name: str) -> bool:
    return len(name) == 1 and name.islower()


_PY_RULE = re.compile(r"^([A-Za-z][\w-]*)\s*:\s*@(\w+)\s*$")


def parse_rule(line: str) -> Rule:
    m = _PY_RULE.match(line)
    if m:
        if m.group(2) not in PYTHON_RULES:
            raise MatcalcError(f"rule {m.group(1)}: no Python rule named {m.group(2)!r}")
        return Rule(m.group(1), line, None, None, fn=m.group(2))
    syn = parse_syn(line, start="rule")
    name, lhs, rhs, *conds = syn.args
    return Rule(name.value, line, lhs, rhs, tuple((c.args[0].value, c.args[1].value) for c in conds))


_LABEL = re.compile(r"(?:^|\s)label:\s*([^|]*?)\s*\|\s*(.*?)\s*$")


@cache
def load_table(name: str) -> tuple[Rule, ...]:
    """The rules of `rules/<name>.rules` in file order (earlier rules win), then the lines of
    operators added with `registry.register`. A line's comment may start with a Cookbook equation
    number `(37)` and end with its labels `label: product rule | 乘法法则`."""
    text = resources.files("matcalc.rules").joinpath(f"{name}.rules").read_text(encoding="utf-8")
    rules = []
    for raw in [*text.splitlines(), *extra_rules(name)]:
        code, _, comment = raw.partition("#")
        if code.strip():
            cite, label = re.match(r"\s*\((\d+)\)", comment), _LABEL.search(comment)
            rule = parse_rule(code.strip())
            rule = replace(rule, cite=f"Matrix Cookbook ({cite.group(1)})") if cite else rule
            rules.append(replace(rule, labels=label.groups()) if label else rule)
    return tuple(rules)


@cache
def index(table: str) -> Callable[[Expr], list[Rule]]:
    """A lookup of the rules of a table that could match a node, in table order."""
    rules = load_table(table)
    by_head: dict[str, list[Rule]] = {}
    anywhere = [r for r in rules if r.heads is None]
    for r in rules:
        for h in r.heads or ():
            by_head.setdefault(h, []).append(r)
    order = {id(r): i for i, r in enumerate(rules)}
    cache_: dict[str, list[Rule]] = {}

    def candidates(e: Expr) -> list[Rule]:
        head = e.op if isinstance(e, Op) else "eye" if isinstance(e, Eye) else "leaf"
        if head not in cache_:
            cache_[head] = sorted(by_head.get(head, []) + anywhere, key=lambda r: order[id(r)])
        return cache_[head]

    return candidates


on_change(load_table.cache_clear)
on_change(index.cache_clear)


# ---- matching -----------------------------------------------------------------------------------

def match(p: Syn, e: Expr, b: Binds) -> Iterator[Binds]:
    """All ways `e` matches pattern `p`, extending bindings `b`."""
    k = p.kind
    if k == "name":
        yield from _match_name(p.value, e, b)
    elif k == "number":
        if isinstance(e, Num) and e.value == p.value:
            yield b
    elif k == "transpose":
        if isinstance(e, Op) and e.op == "transpose":
            yield from match(p.args[0], e.args[0], b)
    elif k == "call":
        if isinstance(e, Op) and OPS[e.op].parse_name == p.value and len(e.args) == len(p.args):
            yield from _match_args(p.args, e.args, b)
    elif k in ("pow", "epow"):
        if isinstance(e, Op) and e.op == "pow":
            for b2 in match(p.args[0], e.args[0], b):
                yield from match(p.args[1], e.args[1], b2)
    elif k in ("add", "hadamard"):
        yield from _match_commutative(p, e, b, k)
    elif k in ("mul", "matmul"):
        if is_scale_pattern(p):
            yield from _match_commutative(p, e, b, "mul")
        elif isinstance(e, Op) and e.op == "matmul":
            yield from _match_splits(p, e, b)
    else:
        raise MatcalcError(f"'{k}' cannot be used in a rule pattern")


def _match_args(ps: tuple[Syn, ...], es: tuple[Expr, ...], b: Binds) -> Iterator[Binds]:
    """The arguments of a call matched in order (kron(A, B))."""
    if not ps:
        yield b
        return
    for b2 in match(ps[0], es[0], b):
        yield from _match_args(ps[1:], es[1:], b2)


def _match_name(name: str, e: Expr, b: Binds) -> Iterator[Binds]:
    if name == "eye":
        if isinstance(e, Eye):
            yield b
        return
    if name == "ones":
        if isinstance(e, Num) and e.value == 1:
            yield b
        return
    if is_scalar_var(name) and not e.is_scalar:
        return
    if name in b:
        if b[name] == e:
            yield b
        return
    yield {**b, name: e}


def _may_be_product(p: Syn) -> bool:
    """Whether pattern `p` can match a product of several factors (a name can match anything)."""
    heads = pattern_heads(p)
    return heads is None or bool(heads & {"matmul", "mul"})


def could_match(p: Syn, e: Expr) -> bool:
    """A quick necessary condition for `match(p, e)`: e's operator is one p can match at its root."""
    if p.kind == "name":
        return next(_match_name(p.value, e, {}), None) is not None
    if p.kind == "number":
        return isinstance(e, Num)
    heads = pattern_heads(p)
    return heads is None or (isinstance(e, Op) and e.op in heads) or (isinstance(e, Eye) and "eye" in heads)


def _match_commutative(p: Syn, e: Expr, b: Binds, op: str) -> Iterator[Binds]:
    if not (isinstance(e, Op) and e.op == op):
        return
    build = {"add": al.add, "hadamard": al.hadamard, "mul": al.mul}[op]
    items = e.args
    for i, item in enumerate(items):
        if not (could_match(p.args[0], item) or could_match(p.args[1], item)):
            continue  # a sum of 260 terms: no O(n) rest built for an operand that cannot take part
        rest = build(*(items[:i] + items[i + 1:]))
        for first, second in ((item, rest), (rest, item)):
            for b2 in match(p.args[0], first, b):
                yield from match(p.args[1], second, b2)


def _match_splits(p: Syn, e: Op, b: Binds) -> Iterator[Binds]:
    """`P*Q` against a product f1*...*fn: every split into a left and a right part. A side whose
    pattern can only match one factor (`inv(A)`, `A'`) is tried with one factor only, so a long
    product costs O(n) splits, not O(n) products of O(n) factors each."""
    f = e.args
    splits = range(1, len(f))
    if not _may_be_product(p.args[0]):
        splits = range(1, 2)
    elif not _may_be_product(p.args[1]):
        splits = range(len(f) - 1, len(f))
    for i in splits:
        for b2 in match(p.args[0], al.matmul(*f[:i]), b):
            yield from match(p.args[1], al.matmul(*f[i:]), b2)


# ---- conditions ---------------------------------------------------------------------------------

def is_symmetric(e: Expr) -> bool:
    """Known symmetric: declared, identity, constant square, or built from symmetric parts."""
    if isinstance(e, Sym):
        return e.has("symmetric")
    if isinstance(e, (Eye,)) or (isinstance(e, Num) and e.shape[0] == e.shape[1]):
        return True
    if isinstance(e, Op) and properties.has(OPS[e.op].value_props, "symmetric") and e.shape[0] == e.shape[1]:
        return True  # diag(x)
    if isinstance(e, Op) and e.op == "matmul":  # A*S*A' with S symmetric: a palindrome up to '
        f = e.args
        half = len(f) // 2
        mirrored = all(al.transpose(f[i]) == f[-1 - i] or _transposes(f[i], f[-1 - i]) for i in range(half))
        return mirrored and (len(f) % 2 == 0 or is_symmetric(f[half]))
    if isinstance(e, Op) and e.op == "add" and _pairs_with_transposes(e.args):
        return True
    if isinstance(e, Op) and OPS[e.op].keeps_symmetry:
        return all(is_symmetric(a) or a.is_scalar for a in e.args) and e.shape[0] == e.shape[1]
    if isinstance(e, Op) and e.op in OPS and OPS[e.op].elementwise:
        return is_symmetric(e.args[0])
    return False


def _pairs_with_transposes(terms: tuple[Expr, ...]) -> bool:
    """A + A' (each term's transpose also a term, or the term symmetric)."""
    return all(is_symmetric(t) or any(_transposes(t, u) for u in terms) for t in terms)


def _transposes(a: Expr, b: Expr) -> bool:
    """b == a' written with the transpose on either side."""
    return (isinstance(a, Op) and a.op == "transpose" and a.args[0] == b) or (
        isinstance(b, Op) and b.op == "transpose" and b.args[0] == a)


def predicates(wrt: frozenset[str], tag: int = 0,
               opaque: frozenset[str] = frozenset()) -> dict[str, Callable[[Expr], bool]]:
    """The condition predicates; `constant` is relative to the variables being differentiated,
    `linear` and `fixed` to the differentials of `tag` (those of other tags are fixed directions);
    the symbols in `opaque` stand for values that may be singular everywhere (a program's step
    A*B, as a symbol): never `generic`."""
    variables = SymbolSet.of(wrt).bits
    return {
        "constant": lambda e: not (e.syms.bits & variables),  # a differential dX is constant: d(dX) = 0
        "linear": lambda e: tag in e.tags,
        "fixed": lambda e: tag not in e.tags,
        "scalar": lambda e: e.is_scalar,
        "vector": lambda e: e.shape[1] == 1 and not e.is_scalar,
        "onerow": lambda e: e.shape[0] == 1,
        "square": lambda e: e.shape[0] == e.shape[1],
        "simple": lambda e: isinstance(e, Sym) or (isinstance(e, Op) and e.op == "group"),
        "compound": lambda e: not isinstance(e, Sym) and not (isinstance(e, Op) and e.op == "group"),
        "number": lambda e: isinstance(e, Num),
        **{p: _has_property(p) for p in properties.PROPERTIES},  # declared, implied, or by construction
        "symmetric": is_symmetric,  # declared, or known from the structure (A*A', A + A', diag(x), ...)
        "variable": lambda e: isinstance(e, Sym) and e.name in wrt,
        "differential": lambda e: isinstance(e, Dif),
        "generic": lambda e: _generic(e) and not (e.syms & opaque and not _has_property("invertible")(e)),
    }


def _generic(e: Expr) -> bool:
    """Invertible at almost every value of its symbols: declared (or built) invertible; positive
    definite by its structure (`_definite`); a square symbol; a transpose, inverse, matrix power or
    scalar multiple of a generic matrix; a product of generic square matrices (its det is theirs);
    X + C with X (or X') a square symbol that C does not hold (det(X + C) is a polynomial in X's
    entries whose leading part is det(X): not 0). A product A*B with A tall is singular
    everywhere, as is A - A: neither is generic unless declared invertible."""
    base = al.split_scalars(e)[1]
    if invertible_everywhere(base):
        return True
    if isinstance(base, Sym):
        return base.shape[0] == base.shape[1]
    if not isinstance(base, Op) or base.shape[0] != base.shape[1]:
        return False
    if base.op in ("transpose", "inv", "group", "matpow"):
        return _generic(base.args[0])
    if base.op == "matmul":
        return all(f.shape[0] == f.shape[1] and _generic(f) for f in base.args)
    if base.op == "add":
        return any(_free_square_symbol(t, [u for u in base.args if u is not t]) for t in base.args)
    return False


def invertible_everywhere(e: Expr) -> bool:
    """Declared (or built) invertible, or positive definite by its structure, or a nonzero
    scalar multiple, transpose or inverse of one of these."""
    base = al.split_scalars(e)[1]
    if isinstance(base, Op) and base.op in ("transpose", "inv", "group"):
        return invertible_everywhere(base.args[0])
    return _has_property("invertible")(base) or _definite(base, strict=True)


def _free_square_symbol(t: Expr, others: list[Expr]) -> bool:
    """t is a square symbol (or its transpose, or a scalar multiple) that no term in `others` holds."""
    base = al.split_scalars(t)[1]
    base = base.args[0] if isinstance(base, Op) and base.op == "transpose" else base
    return isinstance(base, Sym) and base.shape[0] == base.shape[1] and not any(base.name in u.syms for u in others)


def _definite(e: Expr, strict: bool) -> bool:
    """Positive semidefinite by structure (positive definite with `strict`): eye or a declared spd
    symbol (definite), M*M' or M'*M and M*S*M' with S semidefinite, a constant matrix c*ones with
    c >= 0 (rank one), a positive multiple of one of these, and a sum of semidefinite terms one of
    which is definite (B'*B + eye)."""
    scalars, base = al.split_scalars(e)
    if not all(isinstance(c, Num) and c.value > 0 for c in scalars):
        return False
    if isinstance(base, Eye) or (isinstance(base, Sym) and base.has("spd")):
        return True
    if isinstance(base, Op) and base.op == "add":
        return all(_definite(t, False) for t in base.args) and (not strict or any(_definite(t, True)
                                                                                   for t in base.args))
    if strict:
        return False
    if isinstance(base, Num):
        return base.value >= 0
    if isinstance(base, Op) and base.op == "matmul" and len(base.args) in (2, 3):
        f = base.args
        outer = al.transpose(f[0]) == f[-1] or _transposes(f[0], f[-1])
        return outer and (len(f) == 2 or _definite(f[1], False))
    return False


def _has_property(prop: str) -> Callable[[Expr], bool]:
    """The rule condition `prop`: a symbol declared with it (or with a property implying it), or
    an operator whose value always has it (its row's `value_props`: softmax's columns sum to 1)."""
    declared = properties.predicate(prop)
    return lambda e: declared(e) or (isinstance(e, Op) and properties.has(OPS[e.op].value_props, prop))


def holds(rule: Rule, b: Binds, preds: dict[str, Callable[[Expr], bool]]) -> bool:
    for pred, var in rule.conds:
        if pred not in preds:
            raise MatcalcError(f"rule {rule.name}: unknown condition {pred!r}")
        if not preds[pred](b[var]):
            return False
    return True


def instantiate(rule: Rule, rhs: Syn | None, b: Binds, expect: tuple | None,
                extra: Callable[[str], Expr | None] | None = None) -> Expr:
    """Build a right side with the bound sub-expressions; `extra` supplies other names (`dA`)."""
    assert rhs is not None, f"rule {rule.name} has no right side"
    def lookup(name: str) -> Expr | None:
        if name in b:
            return b[name]
        return extra(name) if extra else None

    return to_expr(rule.text, rhs, bound=lookup, closed=True, expect=expect)


def first_match(rules: list[Rule], e: Expr, preds: dict, seed: Binds | None = None) -> tuple[Rule, Binds] | None:
    """The first rule (in table order) whose pattern matches `e` with its conditions holding."""
    for rule in rules:
        if rule.pattern is None:
            continue
        for b in match(rule.pattern, e, dict(seed or {})):
            if holds(rule, b, preds):
                return rule, b
    return None
