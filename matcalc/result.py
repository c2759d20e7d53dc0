"""What `grad` returns: immutable results. A `Result` holds the gradients (each a `Gradient`), their
shared sub-expressions, the check's report and the notes; its step-by-step derivation is built on
first use and kept in a private cache, so reading it changes nothing a caller can see. Every
output form is written by `matcalc.present.formats`, one formatter per form."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable

from .calculus.steps import Log
from .core import limits
from .core.expr import Expr, Sym
from .errors import MatcalcError
from .present import formats as present
from .present.derivation import Line
from .present.labels import LANGS
from .verify.check import CheckReport


@dataclass(frozen=True)
class Gradient:
    """One gradient: `text` is in the input syntax and parses back to `expr`."""

    name: str
    expr: Expr
    text: str
    latex: str
    shape: str


@dataclass(frozen=True)
class Result:
    """The verified gradients of a loss, immutable. `gradients` maps each variable to its
    `Gradient` (in the order asked), `where` names the shared sub-expressions, in evaluation order
    (`where_text`, `where_latex`: as printed), `symbols` the loss's symbols with their shapes,
    `check` what the checks found (None with check=False), `notes` what the reader should know.
    `derive_lines` builds the derivation (`present.Derivation`) on first use."""

    loss: Expr
    loss_text: str
    layout: str
    gradients: Mapping[str, Gradient]
    where: Sequence[tuple[str, Expr]]
    where_text: Sequence[tuple[str, str]]
    where_latex: Sequence[tuple[str, str]]
    symbols: Mapping[str, Sym]
    check: CheckReport | None
    notes: Sequence[str] = ()
    log: Log = field(default_factory=Log, repr=False, compare=False)  # the engine's rewrite log
    derive_lines: Callable[[], present.Derivation] | None = field(default=None, repr=False, compare=False)
    _cache: dict[str, present.Derivation] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        freeze = {"gradients": MappingProxyType(dict(self.gradients)), "symbols": MappingProxyType(dict(self.symbols)),
                  "where": tuple(self.where), "where_text": tuple(self.where_text),
                  "where_latex": tuple(self.where_latex), "notes": tuple(self.notes),
                  "log": Log(list(self.log.steps))}  # a copy: the engine's log grows as the derivation is built
        for name, value in freeze.items():
            object.__setattr__(self, name, value)

    def __getitem__(self, name: str) -> Gradient:
        return self.gradients[name]

    @limits.with_recursion_room
    def derived(self) -> present.Derivation:
        """The derivation's lines, loss steps, names, loss name and line check, built on first use
        (then cached; the result itself does not change)."""
        if "derivation" not in self._cache:
            assert self.derive_lines is not None, "a Result built by grad() knows its derivation"
            self._cache["derivation"] = self.derive_lines()
        return self._cache["derivation"]

    def lines(self) -> tuple[tuple[Line, ...], tuple[tuple[str, str, str], ...], Mapping[Expr, str], str]:
        """(derivation lines, loss steps, names, loss name), built on first use."""
        d = self.derived()
        return d.lines, d.loss, d.names, d.loss_name

    def derivation(self, lang: str = "en", cite: bool = False, transpose: str = "T") -> list[dict]:
        """The step-by-step derivation: [{stage, rule, label, lhs, text, latex}], stages loss,
        differential, trace, gradient, check; every line follows from the one before (checked
        numerically when the result was checked: the check step's `notes` say so)."""
        if lang not in LANGS:
            raise MatcalcError(f"unknown language {lang!r} (use {' or '.join(LANGS)})")
        d = self.derived()
        return present.steps_data(d.lines, d.loss, d.names, d.loss_name, present.check_line(self), lang, cite,
                                  transpose, d.line_check)

    @property
    def steps(self) -> list[dict]:
        return self.derivation()

    @property
    def loss_name(self) -> str:
        return self.derived().loss_name

    def steps_text(self, lang: str = "en", cite: bool = False) -> str:
        return present.as_text(self.derivation(lang, cite), lang)

    def steps_latex(self, lang: str = "en", cite: bool = False, transpose: str = "T") -> str:
        return present.as_latex(self.derivation(lang, cite, transpose), lang)

    def steps_markdown(self, lang: str = "en", cite: bool = False, transpose: str = "T") -> str:
        """The derivation, then the result (with its named sub-expressions) and the layout."""
        return present.result_markdown(self, lang, cite, transpose)

    def to_dict(self, steps: bool = False, lang: str = "en") -> dict:
        """The result as JSON-ready data; the step-by-step derivation (`steps`) only when asked,
        since it costs more than the gradients themselves."""
        return present.result_json(self, steps, lang)

    def __str__(self) -> str:
        return present.result_text(self)

    def _repr_latex_(self) -> str:
        return present.result_repr_latex(self)

    def _repr_markdown_(self) -> str:
        return present.result_markdown(self)
