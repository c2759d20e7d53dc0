"""Command line: `matcalc grad EXPR --wrt X [--wrt Y] [--let DECLS] [--format text|latex|json]`.

Errors print one line (parse errors add the caret lines) and exit with code 2; a failed check is
an error too.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import NoReturn

import numpy as np

from .api import LAYOUTS, Result, grad
from .core import limits
from .errors import MatcalcError
from .present import formats as present
from .present.labels import LANGS
from .present.notes import fill
from .verdicts.verdict import Verdict, as_json, check, check_chain, check_differential, check_file, table


class _UsageError(Exception):
    """Arguments argparse cannot read: one line, exit 2 (see `main`)."""


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one `matcalc: usage error: ...` line (its sub-parsers too)."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"matcalc: usage error: {message} (see '{self.prog} --help')")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="matcalc", description="Closed-form, verified gradients of matrix expressions.")
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grad", help="derive the gradient of a scalar loss")
    g.add_argument("expr", nargs="?", help="the loss, e.g. \"tr(A*X*B)\", or a program \"a = W*x; L = sum(a)\"")
    g.add_argument("--loss", dest="loss", help=argparse.SUPPRESS)  # a loss that starts with '-'
    g.add_argument("--program", metavar="FILE", help="read the loss as a program of `name = expr` steps "
                   "(one per line or separated by ';') from FILE, or from standard input with -")
    g.add_argument("--wrt", action="append", required=True, help="a variable (repeat for several)")
    g.add_argument("--let", default="", help='declarations, e.g. "A: n x n symmetric; lam: scalar"')
    g.add_argument("--format", choices=("text", "latex", "markdown", "json"), default="text")
    g.add_argument("--steps", action="store_true", help="show the derivation step by step, each step naming its rule")
    g.add_argument("--lang", choices=LANGS, default="en", help="language of rule names and headings")
    g.add_argument("--cite", action="store_true", help="show the reference a rule carries (Matrix Cookbook eq.)")
    g.add_argument("--transpose", choices=("T", "top"), default="T", help="LaTeX transpose: ^T or ^\\top")
    g.add_argument("--layout", choices=LAYOUTS, default="denominator")
    g.add_argument("--no-check", action="store_true", help="skip the numeric and SymPy checks")
    g.add_argument("--seed", type=int, default=0, help="seed of the random check points")
    c = sub.add_parser("check", help="check a hand-derived gradient: exit 0 if correct, 1 if wrong")
    c.add_argument("expr", nargs="?", help="the loss")
    c.add_argument("--loss", dest="loss", help=argparse.SUPPRESS)
    c.add_argument("--wrt", help="the variable (for --claim)")
    c.add_argument("--claim", help="the claimed gradient, in the same syntax")
    c.add_argument("--chain", metavar="FILE", help="a derivation (`-`: standard input): `lhs = ...` and `= ...` "
                   "lines, or LaTeX align blocks, e.g. the output of `matcalc grad --steps` in any format")
    c.add_argument("--file", metavar="CLAIMS", help="check many claims: a TOML file of [[claim]] tables, or JSON "
                   "(with --format json: a JSON list, one object per claim)")
    c.add_argument("--claim-differential", dest="claim_differential",
                   help="a claimed differential, e.g. \"df = tr(A*dX*B)\"")
    c.add_argument("--let", default="", help="declarations")
    c.add_argument("--format", choices=("text", "json"), default="text")
    n = sub.add_parser("notes", help="fill the ```matcalc blocks of a Markdown note with their derivations")
    n.add_argument("input", help="the note (Markdown)")
    n.add_argument("-o", "--output", help="where to write the filled note (default: standard output)")
    return p


def _check(args: argparse.Namespace) -> int:
    """`matcalc check`: exit 0 when correct, 1 when wrong, 2 for input that cannot be checked."""
    try:
        if args.file:
            results = check_file(args.file)
            print(json.dumps(as_json(results), indent=2, ensure_ascii=False) if args.format == "json"
                  else table(results))
            return 0 if all(isinstance(v, Verdict) and v.correct for _, v in results) else 1
        v = _check_one(args)
    except MatcalcError as err:
        print(f"matcalc: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    except RecursionError:
        print("matcalc: UnsupportedError: expression too deeply nested", file=sys.stderr)
        return 2
    print(json.dumps(v.to_dict(), indent=2, ensure_ascii=False) if args.format == "json" else v)
    return 0 if v.correct else 1


def _check_one(args: argparse.Namespace) -> Verdict:
    """The verdict on the one claim, differential or chain the arguments give."""
    if args.expr is not None and args.loss is not None:
        raise MatcalcError("two losses given")
    loss = args.expr if args.expr is not None else args.loss
    if loss is None:
        raise MatcalcError("give the loss as an argument")
    if args.chain is not None:
        return check_chain(loss, _read_text(args.chain, "the derivation"), args.let)
    if args.claim_differential is not None:
        return check_differential(loss, args.claim_differential, args.let)
    if args.claim is None or args.wrt is None:
        raise MatcalcError("give --wrt X --claim G, --claim-differential \"df = ...\", --chain FILE or --file CLAIMS")
    return check(loss, args.wrt, args.claim, args.let)


def _read_text(path: str, what: str) -> str:
    """A UTF-8 text file (`-`: standard input), or a MatcalcError saying why it cannot be read."""
    try:
        if path == "-":
            stdin = getattr(sys.stdin, "buffer", None)  # bytes, to say which byte is not UTF-8
            return stdin.read().decode("utf-8") if stdin is not None else sys.stdin.read()
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8")
    except OSError as err:
        raise MatcalcError(f"cannot read {what}: {err.strerror}: {path}") from None
    except UnicodeDecodeError as err:
        where = "standard input" if path == "-" else path
        raise MatcalcError(f"cannot read {what}: {where} is not UTF-8 text "
                           f"(byte 0x{err.object[err.start]:02x} at offset {err.start})") from None


def _notes(args: argparse.Namespace) -> int:
    text = fill(_read_text(args.input, "the note"))
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as err:
            raise MatcalcError(f"cannot write the note: {err.strerror}: {args.output}") from None
    else:
        sys.stdout.write(text)
    return 0


def _loss_text(args: argparse.Namespace) -> str:
    if (args.expr is None) == (args.program is None):
        raise MatcalcError("give the loss either as an argument or with --program FILE (not both)")
    if args.program is None:
        return args.expr
    return _read_text(args.program, "the program")


def _protect_negative_loss(argv: list[str]) -> list[str]:
    """`matcalc grad "-y'*log(p)"` is a loss, not an option: every option here is long (--x).
    A value starting with '-' is glued to its option (`--claim=-A'*B'`)."""
    if not argv or argv[0] not in ("grad", "check"):
        return argv
    out: list[str] = []
    for a in argv:
        if not (a.startswith("-") and not a.startswith("--") and a not in ("-h", "-")):
            out.append(a)
        elif out and out[-1] in VALUE_OPTIONS:
            out[-1] = f"{out[-1]}={a}"
        else:
            out.append(f"--loss={a}")
    return out


VALUE_OPTIONS = ("--claim", "--claim-differential", "--let", "--wrt", "--seed")


def main(argv: list[str] | None = None) -> int:
    """The `matcalc` command. Exit codes: 0 done (check: correct), 1 check: wrong, 2 bad input
    (one line on standard error), 130 interrupted (Ctrl-C), 141 output pipe closed (`| head`)."""
    try:
        with np.errstate(all="ignore"):  # an overflow is told by its value (inf), never by a warning
            code = _run(argv)
        sys.stdout.flush()  # a closed pipe is noticed here, inside main, not at exit
        return code
    except _UsageError as err:
        _error(str(err))
        return 2
    except KeyboardInterrupt:
        _error("matcalc: interrupted")
        return 130
    except BrokenPipeError:  # the reader went away (`matcalc ... | head -1`): stop quietly
        _silence_stdout()
        return 141


def _run(argv: list[str] | None) -> int:
    args = _parser().parse_args(_protect_negative_loss(sys.argv[1:] if argv is None else argv))
    if args.command == "check":
        return _check(args)
    try:
        if args.command == "notes":
            return _notes(args)
        if args.loss is not None:
            if args.expr is not None:
                raise MatcalcError("two losses given")
            args.expr = args.loss
        if args.seed < 0:
            raise MatcalcError(f"--seed must be a nonnegative integer, got {args.seed}")
        r = grad(_loss_text(args), args.wrt, args.let, layout=args.layout, check=not args.no_check, seed=args.seed)
        out = _render(r, args)
    except MatcalcError as err:
        _error(f"matcalc: {type(err).__name__}: {err}")
        return 2
    except RecursionError:
        _error(f"matcalc: LimitError: expression too deeply nested (at most {limits.MAX_DEPTH} levels)")
        return 2
    print(out)
    return 0


def _error(line: str) -> None:
    try:
        print(line, file=sys.stderr)
    except (OSError, ValueError):
        pass


def _silence_stdout() -> None:
    """After a broken pipe, point standard output at /dev/null so that flushing it at exit
    prints no second error (the recipe of the Python documentation on SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (e.g. captured in tests)
        pass


def _render(r: Result, args: argparse.Namespace) -> str:
    """The result in the output form asked for (`matcalc.present.formats`: one formatter per form)."""
    return present.render(r, args.format, args.steps, args.lang, args.cite, args.transpose)


if __name__ == "__main__":
    sys.exit(main())
