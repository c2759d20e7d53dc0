"""matcalc: closed-form, verified gradients of scalar losses written in matrix symbols.

    >>> import matcalc
    >>> matcalc.grad("tr(A*X*B)", wrt="X")["X"].text
    "A'*B'"
"""
from .api import Gradient, Result, grad, parse
from .api import load as load  # re-exported (matcalc.load), not in __all__
from .errors import CheckError, DomainError, LimitError, MatcalcError, ParseError, ShapeError, UnsupportedError
from .parser import parse_decls as parse_decls  # re-exported, not in __all__
from .symbols import (
    Matrix,
    Scalar,
    Term,
    Vector,
    abs,
    cos,
    det,
    diag,
    exp,
    eye,
    inv,
    log,
    logdet,
    norm1,
    norm2,
    ones,
    relu,
    sigmoid,
    sign,
    sin,
    sqrt,
    sum,
    tanh,
    tr,
)
from .verdict import Verdict, check

__all__ = ["grad", "check", "Verdict", "parse", "Result", "Gradient", "MatcalcError", "ParseError", "ShapeError",
           "UnsupportedError", "DomainError", "CheckError", "LimitError", "Matrix", "Vector", "Scalar", "Term",
           "eye", "ones", "diag", "tr", "det", "logdet", "inv", "norm1", "norm2", "exp", "log", "sqrt", "sin", "cos",
           "tanh", "sigmoid", "relu", "abs", "sign", "sum"]
__version__ = "0.1.0"
