"""Parser: round trips (parse(text(e)) == e), shape inference, and one-line errors with carets."""
import pytest

import matcalc
from matcalc import ParseError, ShapeError, UnsupportedError
from matcalc.syntax.printing import to_text

ROUND_TRIP = [
    ("x'*A*x", ""), ("tr(A*X*B)", ""), ("log(det(X))", ""), ("a'*inv(X)*b", "a, b: n"),
    ("norm2(X*w - y)^2 + lam*norm2(w)^2", "lam: scalar"), ("sum(exp(x))", ""), ("1 - tanh(x).^2", ""),
    ("2./x + x/2 - 3*x", ""), ("diag(x) + diag(diag(A))", ""), ("X^3 + X^-1 - eye(n)", ""),
    ("x.^0.5 + x.^(1/3)", ""), ("-inv(X)'*a*b'*inv(X)'", "a, b: n"), ("(A + A')*x", ""),
    ("sigmoid(W*x).*(1 - sigmoid(W*x))", ""), ("A*ones(n) + ones(m)", "A: m x n"),
    ("exp(x)/sum(exp(x))", ""), ("det(X)*inv(X)'", ""), ("a*b/c - d^2", ""), ("2*(A.*B)*x", "A, B: n x n"),
    ("relu(x) + abs(y) - sign(x).*sqrt(z)", ""), ("norm1(X) + logdet(S)", "S: spd"), ("zeros(m,n) + A", "A: m x n"),
]


@pytest.mark.parametrize("text,let", ROUND_TRIP)
def test_round_trip(text: str, let: str) -> None:
    e = matcalc.parse(text, let)
    printed = to_text(e)
    assert matcalc.parse(printed, let) == e, printed


def test_gradient_text_parses_back_to_the_gradient() -> None:
    r = matcalc.grad("norm2(X*w - y)^2 + lam*norm2(w)^2", wrt="w", let="lam: scalar; X: m x n")
    assert matcalc.parse(r["w"].text, "lam: scalar; X: m x n") == r["w"].expr


def test_default_kinds_and_unification() -> None:
    e = matcalc.parse("x'*A*x")
    a = next(n for n in _symbols(e) if n.name == "A")
    assert a.shape[0] == a.shape[1]  # x'*A*x forces A square
    assert matcalc.parse("a*b").shape == (1, 1)
    assert matcalc.parse("X*w").shape[1] == 1


def test_declared_shapes_are_used() -> None:
    e = matcalc.parse("x*W", "x: 1 x D; W: D x K")
    assert e.shape == (1, "K")
    assert matcalc.parse("b", "b: vector(5)").shape == (5, 1)


def _symbols(e):
    from matcalc.core.expr import Sym, walk
    return [n for n in walk([e]) if isinstance(n, Sym)]


@pytest.mark.parametrize("text,fragment", [
    ("A*+", "unexpected end of input"), ("tr(A*X", "unexpected end of input"), ("A ** B", "unexpected '*'"),
    ("x $ y", "unexpected character '$'"), ("f(x,)", "unexpected ')'"), ("", "empty expression"),
    ("tr", "'tr' is a function"),
])
def test_parse_errors_have_a_caret(text: str, fragment: str) -> None:
    with pytest.raises(ParseError) as info:
        matcalc.parse(text)
    msg = str(info.value)
    assert fragment in msg
    if text:
        lines = msg.splitlines()
        assert lines[1].strip() == text.strip() and lines[2].strip() == "^"
        assert lines[2].index("^") - 2 <= len(text)


@pytest.mark.parametrize("text,let,fragment", [
    ("A*x", "A: 3 x 4; x: 5", "in 'A*x'"),
    ("A + B", "A: m x n; B: n x m", "in 'A + B'"),
    ("x/y", "", "use ./ for elementwise division"),
    ("tr(A)", "A: m x n", "tr needs a square matrix"),
    ("x .* y", "x: 3; y: 4", "elementwise operands need equal shapes"),
])
def test_shape_errors_name_the_subexpression_and_shapes(text: str, let: str, fragment: str) -> None:
    with pytest.raises(ShapeError) as info:
        matcalc.parse(text, let)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_function_is_named() -> None:
    with pytest.raises(UnsupportedError, match="unknown function 'foo'"):
        matcalc.parse("foo(x)")


def test_non_constant_exponent_is_unsupported() -> None:
    with pytest.raises(UnsupportedError, match="not a constant"):
        matcalc.parse("x.^a")


@pytest.mark.parametrize("let,fragment", [
    ("A n x n", "NAME: SHAPE"), ("A: n x n shiny", "unknown property 'shiny'"), ("A: n x", "incomplete shape"),
])
def test_declaration_errors(let: str, fragment: str) -> None:
    with pytest.raises(ParseError, match=fragment):
        matcalc.parse("A", let)


def test_negative_numbers_scale_like_numbers() -> None:
    let = "C: m x m; X: m x n"
    assert to_text(matcalc.parse("-2*C*X", let)) == "-2*C*X"
    assert matcalc.parse("-2*C*X", let) == matcalc.parse("-(2*C*X)", let)
    assert to_text(matcalc.parse("(-1/2)*X + X/-2", let)) == "-X"
