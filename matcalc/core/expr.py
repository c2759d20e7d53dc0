"""The expression tree: immutable, slotted, shape-checked nodes with tuple children.

Equality is structural (with a cached hash, so unequal trees are told apart at once); the
canonical ordering used to sort commutative operands is the separate `sort_key`.
Build nodes through `matcalc.core.algebra`, whose constructors keep trees canonical.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import AbstractSet, Any, Iterable, Iterator

from . import limits, properties
from .properties import PROPERTIES  # noqa: F401  (the declared properties, re-exported)
from .registry import OPS, SCALAR, Dim, Shape


class Expr:
    """Base class of all nodes: the values every node caches when built (set by `_finish`, never
    passed in), and structural equality. Subclasses define `shape`, `children` and `_fields`."""

    __slots__ = ("_hash", "_key", "syms", "tags", "height", "out_of_range")
    _hash: int
    _key: tuple
    syms: SymbolSet  # the names of the symbols inside
    tags: frozenset[int]  # the tags of the differentials inside (dX has tag 0; a second one, 1)
    height: int
    out_of_range: bool  # whether a constant outside `limits` (too_big) occurs inside

    @property
    def has_d(self) -> bool:
        """Whether a differential occurs inside."""
        return bool(self.tags)

    @property
    def has_pending(self) -> bool:
        """Whether a differential d(e) not yet expanded (`DiffOf`) occurs inside."""
        return isinstance(self, DiffOf) or any(k.has_pending for k in self.children if k.tags)

    @property
    def shape(self) -> Shape:
        raise NotImplementedError

    @property
    def children(self) -> tuple[Expr, ...]:
        return ()

    def _fields(self) -> tuple:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        return (type(self) is type(other) and isinstance(other, Expr) and self._hash == other._hash
                and self._fields() == other._fields())

    def __hash__(self) -> int:
        return self._hash

    def __ne__(self, other: object) -> bool:
        return not self == other

    @property
    def is_scalar(self) -> bool:
        return self.shape == SCALAR


def _finish(node: Expr, rank: int, *keyparts: object) -> None:
    """Cache hash, sort key, free symbols, whether a differential occurs, and height."""
    kids = node.children
    object.__setattr__(node, "_hash", hash((type(node).__name__,) + node._fields()))
    object.__setattr__(node, "_key", (rank,) + keyparts + tuple(k._key for k in kids))
    object.__setattr__(node, "syms", SymbolSet.union([k.syms for k in kids]))
    object.__setattr__(node, "tags", _union([k.tags for k in kids]))
    object.__setattr__(node, "height", 1 + max((k.height for k in kids), default=0))
    object.__setattr__(node, "out_of_range", any(k.out_of_range for k in kids))


_EMPTY: frozenset = frozenset()
_BIT: dict[str, int] = {}  # each symbol name ever seen -> its bit in a SymbolSet mask
_NAME: list[str] = []


class SymbolSet(AbstractSet[str]):
    """An immutable set of symbol names held as a bit mask over the names seen so far: a node's
    `syms` costs a few bytes per name however deep the tree (a frozenset per node would make the
    memory of a deep network quadratic in its depth). Reads as a set of names: `n in s`,
    iteration, `len`, `s & names` and `s | names` (a set of names, when the other is one)."""

    __slots__ = ("bits",)

    def __init__(self, bits: int) -> None:
        self.bits = bits

    @staticmethod
    def of(names: Iterable[str]) -> SymbolSet:
        bits = 0
        for n in names:
            if n not in _BIT:
                _BIT[n] = len(_NAME)
                _NAME.append(n)
            bits |= 1 << _BIT[n]
        return SymbolSet(bits)

    @staticmethod
    def union(sets: list[SymbolSet]) -> SymbolSet:
        """The union, sharing a child's object when it already holds all the others."""
        if len(sets) == 1:
            return sets[0]
        if not sets:
            return NO_SYMBOLS
        bits = 0
        for s in sets:
            bits |= s.bits
        for s in sets:
            if s.bits == bits:
                return s
        return SymbolSet(bits)

    def __contains__(self, name: object) -> bool:
        i = _BIT.get(name) if isinstance(name, str) else None
        return i is not None and bool(self.bits >> i & 1)

    def __iter__(self) -> Iterator[str]:
        bits, i = self.bits, 0
        while bits:
            if bits & 1:
                yield _NAME[i]
            bits, i = bits >> 1, i + 1

    def __len__(self) -> int:
        return bin(self.bits).count("1")

    def __bool__(self) -> bool:
        return self.bits != 0

    def __and__(self, other: object) -> Any:
        if isinstance(other, SymbolSet):
            return SymbolSet(self.bits & other.bits)
        if isinstance(other, (set, frozenset)):
            return type(other)(n for n in other if n in self)
        return NotImplemented

    __rand__ = __and__

    def __or__(self, other: object) -> Any:
        if isinstance(other, SymbolSet):
            return SymbolSet(self.bits | other.bits)
        if isinstance(other, (set, frozenset)):
            return type(other)(self) | other
        return NotImplemented

    __ror__ = __or__

    def __le__(self, other: object) -> bool:
        if isinstance(other, SymbolSet):
            return self.bits & ~other.bits == 0
        return all(n in other for n in self) if isinstance(other, (set, frozenset)) else NotImplemented

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SymbolSet):
            return self.bits == other.bits
        return isinstance(other, (set, frozenset)) and set(self) == other

    def __hash__(self) -> int:
        return hash(frozenset(self))

    def __repr__(self) -> str:
        return f"SymbolSet({sorted(self)})"

    @classmethod
    def _from_iterable(cls, names: Iterable[Any]) -> AbstractSet[Any]:  # what the Set mixins (-, ^) build
        return SymbolSet.of(names)

    def __reduce__(self) -> tuple:
        return (SymbolSet.of, (tuple(self),))  # bit positions are this process's own


NO_SYMBOLS = SymbolSet(0)


def _union(sets: list[frozenset]) -> frozenset:
    """The union of the children's sets, sharing the largest one when it holds all the others:
    a node's `syms` is then mostly its child's object, not a copy (a copy per node would make the
    memory of a deep network quadratic in its depth)."""
    if not sets:
        return _EMPTY
    out = max(sets, key=len)
    for s in sets:
        if s is not out and not s <= out:
            out = out | s
    return out


Cached = Expr  # the old name of the base that holds the cached values


@dataclass(frozen=True, slots=True, eq=False)
class Sym(Expr):
    """A named matrix, vector or scalar, with its declared properties."""

    name: str
    shape: Shape
    props: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        _finish(self, 1, self.name)
        object.__setattr__(self, "syms", SymbolSet.of([self.name]))

    def _fields(self) -> tuple:
        return (self.name, self.shape, self.props)

    def has(self, prop: str) -> bool:
        """Whether the symbol has `prop`: declared, or implied by a declared one (`properties`)."""
        return properties.has(self.props, prop)


@dataclass(frozen=True, slots=True, eq=False)
class Num(Expr):
    """A constant matrix whose entries all equal `value` (1 x 1 for a plain number)."""

    value: Fraction
    shape: Shape = SCALAR

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", Fraction(self.value))
        _finish(self, 0, self.value)
        object.__setattr__(self, "out_of_range", limits.too_big(self.value) is not None)

    def _fields(self) -> tuple:
        return (self.value, self.shape)


@dataclass(frozen=True, slots=True, eq=False)
class Eye(Expr):
    """The n x n identity matrix."""

    n: Dim

    def __post_init__(self) -> None:
        _finish(self, 2, str(self.n))

    @property
    def shape(self) -> Shape:
        return (self.n, self.n)

    def _fields(self) -> tuple:
        return (self.n,)


@dataclass(frozen=True, slots=True, eq=False)
class Dif(Expr):
    """The differential `dX` of a variable: the leaf a differential is linear in. Its `tag` tells
    independent differentials apart: in a second differential d(df), the dX of df (tag 0) is a
    fixed direction and the new one has tag 1, so d(dX) = 0 and each is linear on its own."""

    var: Sym
    tag: int = 0

    def __post_init__(self) -> None:
        _finish(self, 3, self.var.name, self.tag)
        object.__setattr__(self, "tags", frozenset({self.tag}))

    @property
    def shape(self) -> Shape:
        return self.var.shape

    def _fields(self) -> tuple:
        return (self.var, self.tag)


@dataclass(frozen=True, slots=True, eq=False)
class DiffOf(Expr):
    """`d(e)`: the differential (of `tag`) of a sub-expression not yet expanded: a part of a rule's
    right side that the engine expands next, and what a derivation's differential lines show."""

    expr: Expr
    tag: int = 0

    def __post_init__(self) -> None:
        _finish(self, 3, "d", self.tag)
        object.__setattr__(self, "tags", self.expr.tags | {self.tag})

    @property
    def shape(self) -> Shape:
        return self.expr.shape

    @property
    def children(self) -> tuple[Expr, ...]:
        return (self.expr,)

    def _fields(self) -> tuple:
        return (self.expr, self.tag)


# Sort rank of each operator: leaves first, then unary, then products, then sums.
_RANK = {"transpose": 4, "pow": 6, "hadamard": 7, "matmul": 8, "mul": 9, "add": 10}


@dataclass(frozen=True, slots=True, eq=False)
class Op(Expr):
    """An operator from the registry applied to `args`; the shape is computed and validated here."""

    op: str
    args: tuple[Expr, ...]
    shape: Shape = field(default=SCALAR, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        info = OPS[self.op]
        if info.arity is not None and len(self.args) != info.arity:
            raise TypeError(f"{self.op} takes {info.arity} arguments, got {len(self.args)}")
        object.__setattr__(self, "shape", info.shape(tuple(a.shape for a in self.args)))
        _finish(self, _RANK.get(self.op, 5), self.op)

    @property
    def children(self) -> tuple[Expr, ...]:
        return self.args

    def _fields(self) -> tuple:
        return (self.op, self.args)


def sort_key(e: Expr) -> tuple:
    """Canonical order for operands of commutative operators (leaves first, then by structure)."""
    return e._key


def walk(roots: list[Expr]) -> list[Expr]:
    """Every distinct node reachable from `roots`, children before parents (post-order)."""
    seen: set[Expr] = set()
    order: list[Expr] = []
    stack: list[tuple[Expr, bool]] = [(r, False) for r in reversed(roots)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if node in seen:
            continue
        seen.add(node)
        stack.append((node, True))
        stack.extend((c, False) for c in reversed(node.children))
    return order
