"""Input limits (README, "Limits"): every input gets a result or a one-line `MatcalcError`, fast;
the CLI exits 2 for each, handles non-UTF-8 input, broken pipes and Ctrl-C; no library call
changes the recursion limit for good."""
import contextlib
import io
import os
import subprocess
import sys

import pytest

import matcalc
from matcalc import MatcalcError, ParseError, cli
from matcalc.core.limits import (
    MAX_DEPTH,
    MAX_DIM,
    MAX_EXPONENT,
    MAX_INPUT_CHARS,
    MAX_MATRIX_POWER,
    MAX_STATEMENTS,
    check_tree,
    recursion_room,
)
from matcalc.errors import LimitError


def grad(text, wrt, let=""):
    return matcalc.grad(text, wrt, let, check=False)


def run(capsys, *argv):
    """`matcalc ARGV` in-process: (exit code, stdout, stderr)."""
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(capsys, *argv, kind="LimitError"):
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    assert out == ""
    assert err.startswith(f"matcalc: {kind}: "), err
    assert "Traceback" not in err
    if kind == "LimitError":
        assert err.count("\n") == 1, err
    return err


# ---- nesting depth ------------------------------------------------------------------------------

DEEP = [
    "(" * 1000 + "a" + ")" * 1000,                        # parentheses
    "sum(" + "exp(" * 200 + "x" + ")" * 200 + ")",        # calls
    "-" * 200 + "a",                                      # signs
    "sum(x" + "'" * 200 + ")",                            # transposes
    "a" + "^1" * 200,                                     # powers
    "(" * 100 + "a" + "*b+c)" * 100,                      # sums inside products inside sums ...
    "[" * 200 + "a" + "]" * 200,                          # brackets
]


@pytest.mark.parametrize("text", DEEP)
def test_deep_nesting_is_a_limit_error(text):
    with pytest.raises(LimitError, match="too deeply nested"):
        grad(text, "a" if "a" in text else "x")


@pytest.mark.parametrize("text", [DEEP[0], DEEP[1], DEEP[3], DEEP[5]])
def test_deep_nesting_in_the_cli(capsys, text):
    err = one_line_error(capsys, "grad", text, "--wrt", "x")
    assert f"more than {MAX_DEPTH} levels" in err


def test_nesting_up_to_the_limit_is_derived():
    d = MAX_DEPTH - 3  # x'*A*( A*( ... (x))): d + 3 levels
    r = grad("x'*A*(" + "A*(" * d + "x" + ")" * (d + 1), "x")
    assert r["x"].shape == "n x 1"
    grad("(" * (MAX_DEPTH - 1) + "a" + ")" * (MAX_DEPTH - 1), "a")
    assert grad("sum(x" + "'" * (MAX_DEPTH - 2) + ")", "x")["x"].text == "ones(n)"


def test_a_64_layer_network_is_within_the_limit():
    e = "x"
    for k in range(1, 65):
        e = f"tanh(W{k}*{e})"
    r = grad(f"0.5*norm2({e} - y)^2", ["W1", "W64"])
    assert set(r.gradients) == {"W1", "W64"}


@pytest.mark.parametrize("op", ["+", "-", "*", "/", ".*"])
def test_long_chains_are_one_level(op):
    """`a + b + ...` is a deep syntax tree but one level of nesting: no RecursionError, and the
    recursion limit is what it was."""
    with default_recursion_limit():
        e = matcalc.parse(op.join(["a"] * 5000))
        assert e.shape == (1, 1)
        assert sys.getrecursionlimit() == 1000


@contextlib.contextmanager
def default_recursion_limit():
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def test_python_trees_are_limited_too():
    x = matcalc.Vector("x", "n")
    e = x
    for _ in range(MAX_DEPTH + 5):
        e = matcalc.tanh(e)
    with pytest.raises(LimitError, match="too deeply nested"):
        check_tree(e.expr)
    check_tree(matcalc.tanh(matcalc.tanh(x)).expr)


def test_python_trees_through_grad():
    """Needs `limits.check_tree` in `api.load` for trees."""
    e = matcalc.Vector("x", "n")
    for _ in range(MAX_DEPTH + 5):
        e = matcalc.tanh(e)
    with pytest.raises(LimitError, match="too deeply nested"):
        matcalc.grad(matcalc.sum(e), "x", check=False)


# ---- recursion limit ----------------------------------------------------------------------------

def test_recursion_room_is_scoped():
    before = sys.getrecursionlimit()
    with recursion_room(before + 5000):
        assert sys.getrecursionlimit() == before + 5000
        with recursion_room(before + 5000):  # nested: the outer one restores
            pass
        assert sys.getrecursionlimit() == before + 5000
    assert sys.getrecursionlimit() == before


def test_recursion_room_turns_recursion_errors_into_limit_errors():
    def deep(n):
        return deep(n + 1)
    before = sys.getrecursionlimit()
    with pytest.raises(LimitError, match="too deeply nested"), recursion_room(before + 100):
        deep(0)
    assert sys.getrecursionlimit() == before


def test_grad_leaves_the_recursion_limit_alone():
    """Needs `api.grad` to use `limits.recursion_room` instead of `sys.setrecursionlimit`."""
    with default_recursion_limit():
        grad("x'*A*x", "x")
        grad("+".join(["a"] * 3000), "a")
        assert sys.getrecursionlimit() == 1000


# ---- input length, program length -----------------------------------------------------------------

def test_input_length():
    text = "+".join(["a"] * (MAX_INPUT_CHARS // 2 + 1))
    with pytest.raises(LimitError, match=f"too long: {len(text)} characters \\(at most {MAX_INPUT_CHARS}\\)"):
        grad(text, "a")


def test_input_length_in_the_cli(capsys):
    err = one_line_error(capsys, "grad", "x'*x" + " + x'*x" * 4000, "--wrt", "x")
    assert "too long" in err


def test_declarations_length():
    with pytest.raises(LimitError, match="declaration text is too long"):
        matcalc.parse_decls("; ".join(f"x{i}: n" for i in range(MAX_INPUT_CHARS // 5)))


def test_program_length(capsys):
    program = "\n".join(f"s{i} = x" for i in range(MAX_STATEMENTS)) + "\nL = x'*x"
    with pytest.raises(LimitError, match=f"program too long: {MAX_STATEMENTS + 1} statements"):
        grad(program, "x")
    assert len(grad("\n".join(f"s{i} = x" for i in range(10)) + "\nL = x'*s9", "x").gradients) == 1


def test_a_bare_statement_must_be_last(capsys):
    with pytest.raises(ParseError, match="not the last statement, so it must name its value"):
        grad("x'*x; L = tr(A)", "A")
    err = one_line_error(capsys, "grad", "x'*x; L = tr(A)", "--wrt", "A", kind="ParseError")
    assert "write 'name = ...'" in err.splitlines()[0]


# ---- numbers and exponents ------------------------------------------------------------------------

@pytest.mark.parametrize("text,fragment", [
    ("a^1e999999", "'1e999999' at position 2 is out of range"),
    ("x'*x*1e308", "'1e308' at position 5 is larger than 1e300"),
    ("a*1e-301", "smaller than 1e-300"),
    ("a*" + "7" * 101, "more than 100 digits"),
    ("a*0." + "0" * 200 + "1", "more than 100 digits"),
    ("x'*x*1e200*1e200", "constant about 10^400 is larger than 1e300"),   # folded
    ("2^2^2^2^2^2*a", "constant 2^65536 is too large"),
    ("2^1000*a", "constant 2^1000 = 1.07e+301 is larger than 1e300"),
    ("0.5^100000*a", "too large"),
    (f"a^{MAX_EXPONENT + 1}", f"exponent in 'a^{MAX_EXPONENT + 1}': {MAX_EXPONENT + 1} is too large"),
    (f"x.^-{MAX_EXPONENT + 1}", "is too large"),
    ("(a^1000)^1000", "1000000 is too large"),
])
def test_numbers_and_exponents(text, fragment):
    with pytest.raises(LimitError) as info:
        grad(text, "x" if "x" in text else "a")
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_numbers_within_the_limits():
    assert grad("1e300*a + 1e-300*a^2 + 0e99999*a", "a")["a"].text
    assert grad(f"a^{MAX_EXPONENT}", "a")["a"].text == f"{MAX_EXPONENT}*a^{MAX_EXPONENT - 1}"
    assert grad("2^2^2^2*a", "a")["a"].text == "65536"


@pytest.mark.parametrize("text", ["x'*x*1e308*1e308", "a^1e999999", "2^2^2^2^2^2*a"])
def test_numbers_in_the_cli(capsys, text):
    one_line_error(capsys, "grad", text, "--wrt", "a" if "a" in text else "x")


@pytest.mark.parametrize("k", ["100000000000000000000", "-1000", str(MAX_MATRIX_POWER + 1),
                               str(-MAX_MATRIX_POWER - 1)])
def test_matrix_powers(capsys, k):
    with pytest.raises(LimitError, match=f"matrix power .* is too large: .* at most {MAX_MATRIX_POWER}"):
        grad(f"tr(X^{k})", "X")
    one_line_error(capsys, "grad", f"tr(X^{k})", "--wrt", "X", "--no-check")


def test_matrix_power_at_the_limit():
    assert grad(f"tr(X^{MAX_MATRIX_POWER})", "X")["X"].shape == "n x n"
    assert grad(f"tr(X^-{MAX_MATRIX_POWER})", "X")["X"].shape == "n x n"


# ---- dimensions and variables ----------------------------------------------------------------------

@pytest.mark.parametrize("let", ["x: 0", "x: vector(0)", f"X: 3 x {MAX_DIM + 1}", "X: 99999999999999999999 x 2"])
def test_dimensions(capsys, let):
    with pytest.raises(LimitError, match=f"is out of range \\(an integer dimension is 1 .. {MAX_DIM}\\)"):
        grad("sum(x) + tr(X'*X)", "x", let)
    one_line_error(capsys, "grad", "sum(x) + tr(X'*X)", "--wrt", "x", "--let", let)


def test_empty_variable_name(capsys):
    with pytest.raises(MatcalcError):
        grad("x'*x", [""])
    code, _, err = run(capsys, "grad", "x'*x", "--wrt", "")
    assert code == 2 and err.startswith("matcalc: ") and "Traceback" not in err


# ---- declarations ----------------------------------------------------------------------------------

@pytest.mark.parametrize("let,message", [
    ("X: n x m symmetric", ("in 'X: n x m symmetric': a symmetric matrix must be square, but the shape is n x m "
                            "(write n x n)")),
    ("S: 3 x 4 spd", "an spd matrix must be square"),
    ("x: n invertible", "an invertible matrix must be square"),
    ("A: symetric", "unknown property 'symetric' (did you mean symmetric?)"),
    ("A: n x n symetric", "unknown property 'symetric' (did you mean symmetric?)"),
    ("A: n x n Symmetric", "unknown property 'Symmetric' (did you mean symmetric?)"),
    ("y: probabilty", "unknown property 'probabilty' (did you mean probability?)"),
    ("A: n x n positiv", "did you mean positive?"),
    ("A: n x n frobnicated", "unknown property 'frobnicated' (known: symmetric, spd"),
    ("A: n x n; A: m x m", "'A' is declared twice"),
    ("A: n x n symmetric; A: spd", "'A' is declared twice"),
    ("A, A: n x n", "'A' is declared twice"),
])
def test_declaration_errors(capsys, let, message):
    with pytest.raises(ParseError) as info:
        matcalc.parse_decls(let)
    assert message in str(info.value).splitlines()[0]
    err = one_line_error(capsys, "grad", "tr(X) + sum(x)", "--wrt", "x", "--let", let, kind="ParseError")
    assert message in err.splitlines()[0]


def test_declarations_that_stay_valid():
    d = matcalc.parse_decls("A: n x n symmetric; x: n; lam: scalar spd; S: spd; y: probability; "
                            "X: n x m positive; B: 3 x 3 diagonal; p: sdp")
    assert d["A"].props == {"symmetric"} and d["lam"].shape == (1, 1)
    assert d["p"].shape == ("sdp", 1)  # not close enough to a property: a dimension name
    assert d["B"].shape == (3, 3)


# ---- CLI input and output -------------------------------------------------------------------------

def test_non_utf8_program_file(capsys, tmp_path):
    prog = tmp_path / "net.prog"
    prog.write_bytes(b"a1 = W1*x\n\xff\xfe\nL = sum(a1)\n")
    err = one_line_error(capsys, "grad", "--program", str(prog), "--wrt", "W1", kind="MatcalcError")
    assert "is not UTF-8 text (byte 0xff at offset 10)" in err
    assert err.count("\n") == 1


def test_non_utf8_stdin(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"L = sum(\xe9x)")))
    err = one_line_error(capsys, "grad", "--program", "-", "--wrt", "x", kind="MatcalcError")
    assert "standard input is not UTF-8 text" in err


def test_utf8_stdin(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("# ü\nL = x'*x".encode())))
    code, out, _ = run(capsys, "grad", "--program", "-", "--wrt", "x", "--no-check")
    assert code == 0 and "d/dx = 2*x" in out


def test_ctrl_c(capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "grad", interrupted)
    code, _, err = run(capsys, "grad", "x'*x", "--wrt", "x")
    assert code == 130
    assert err == "matcalc: interrupted\n"


def test_broken_pipe_in_process(capsys, monkeypatch):
    class Closed(io.StringIO):
        def write(self, s):
            raise BrokenPipeError(32, "Broken pipe")
    monkeypatch.setattr(sys, "stdout", Closed())
    code = cli.main(["grad", "x'*x", "--wrt", "x", "--no-check"])
    assert code == 141
    assert capsys.readouterr().err == ""


def _command(*argv):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(matcalc.__file__)))
    return [sys.executable, "-m", "matcalc.cli", *argv], env


def test_broken_pipe_subprocess():
    """`matcalc grad ... | head -1`: the reader has gone before matcalc writes; no traceback."""
    cmd, env = _command("grad", "0.5*norm2(W2*tanh(W1*x) - y)^2", "--wrt", "W1", "--steps", "--no-check")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    p.stdout.close()
    err = p.stderr.read().decode()
    p.stderr.close()
    assert p.wait(timeout=120) == 141
    assert err == ""


def test_non_utf8_stdin_subprocess():
    cmd, env = _command("grad", "--program", "-", "--wrt", "x")
    p = subprocess.run(cmd, check=False, input=b"L = x'*x \xff", capture_output=True, env=env, timeout=120)
    assert p.returncode == 2
    assert p.stderr.decode().startswith("matcalc: MatcalcError: cannot read the program: standard input is not UTF-8")
    assert p.stderr.decode().count("\n") == 1


def test_negative_seed(capsys):
    err = one_line_error(capsys, "grad", "x'*x", "--wrt", "x", "--seed", "-1", kind="MatcalcError")
    assert "--seed must be a nonnegative integer" in err


@pytest.mark.parametrize("argv,fragment", [
    (["grad", "x'*x", "--wrt", "x", "--seed", "_"], "argument --seed: invalid int value: '_'"),
    (["grad", "x'*x"], "the following arguments are required: --wrt"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["grad", "x'*x", "--wrt", "x", "--format", "pdf"], "argument --format: invalid choice: 'pdf'"),
])
def test_usage_errors_are_one_line(capsys, argv, fragment):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("matcalc: usage error: ") and fragment in err and err.count("\n") == 1, err
