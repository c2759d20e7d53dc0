"""matcalc: closed-form, verified gradients of scalar losses written in matrix symbols.

    >>> import matcalc
    >>> matcalc.grad("tr(A*X*B)", wrt="X")["X"].text
    "A'*B'"
"""
from .api import Gradient, Result, grad, parse
from .errors import CheckError, DomainError, MatcalcError, ParseError, ShapeError, UnsupportedError

__all__ = ["grad", "parse", "Result", "Gradient", "MatcalcError", "ParseError", "ShapeError",
           "UnsupportedError", "DomainError", "CheckError"]
__version__ = "0.1.0"
