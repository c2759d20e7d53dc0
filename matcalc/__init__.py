"""matcalc: closed-form, verified gradients of scalar losses written in matrix symbols.

    >>> import matcalc
    >>> matcalc.grad("tr(A*X*B)", wrt="X")["X"].text
    "A'*B'"
"""
from typing import Callable

from .api import Gradient, Result, grad, parse
from .api import load as load  # re-exported (matcalc.load), not in __all__
from .errors import CheckError, DomainError, LimitError, MatcalcError, ParseError, ShapeError, UnsupportedError
from .syntax.parser import parse_decls as parse_decls  # re-exported, not in __all__
from .syntax.symbols import Matrix, Scalar, Term, Vector, eye, ones
from .syntax.symbols import front_end_names as _front_end_names
from .syntax.symbols import function as _function
from .verdicts.verdict import Verdict, check

__all__ = ["grad", "check", "Verdict", "parse", "Result", "Gradient", "MatcalcError", "ParseError", "ShapeError",
           "UnsupportedError", "DomainError", "CheckError", "LimitError", "Matrix", "Vector", "Scalar", "Term",
           "eye", "ones", *_front_end_names()]
__version__ = "0.1.0"


def __getattr__(name: str) -> Callable[[Term], Term]:
    """`matcalc.tr`, `matcalc.softmax`, ...: the front-end functions of the registry's rows."""
    try:
        return _function(name)
    except AttributeError:
        raise AttributeError(f"module 'matcalc' has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted([*globals(), *_front_end_names()])
