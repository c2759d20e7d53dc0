"""Command line: `matcalc grad EXPR --wrt X [--wrt Y] [--let DECLS] [--format text|latex|json]`.

Errors print one line (parse errors add the caret lines) and exit with code 2; a failed check is
an error too.
"""
from __future__ import annotations

import argparse
import json
import sys

from .api import LAYOUTS, Result, grad
from .labels import LANGS
from .notes import fill
from .verdict import Verdict, chain_lines, check, check_chain, check_differential, check_file, table
from .errors import MatcalcError
from .printing import latex_name


def _latex(r: Result) -> str:
    rows = [rf"{latex_name(n)} &= {t}" for n, t in r.where_latex]
    rows += [rf"\frac{{\partial f}}{{\partial {latex_name(g.name)}}} &= {g.latex}" for g in r.gradients.values()]
    body = " \\\\\n".join(rows)
    return f"\\begin{{align*}}\n{body}\n\\end{{align*}}\n% layout: {r.layout}; " + (
        r.check.summary() if r.check else "not verified")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="matcalc", description="Closed-form, verified gradients of matrix expressions.")
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
    c.add_argument("--chain", metavar="FILE", help="a hand derivation: `= ...` lines, or a note's align block")
    c.add_argument("--file", metavar="CLAIMS", help="check many claims: a TOML file of [[claim]] tables, or JSON")
    c.add_argument("--claim-differential", dest="claim_differential",
                   help="a claimed differential, e.g. \"df = tr(A*dX*B)\"")
    c.add_argument("--let", default="", help="declarations")
    c.add_argument("--format", choices=("text", "json"), default="text")
    n = sub.add_parser("notes", help="fill the ```matcalc blocks of a Markdown note with their derivations")
    n.add_argument("input", help="the note (Markdown)")
    n.add_argument("-o", "--output", help="where to write the filled note (default: standard output)")
    return p


def _check(args: argparse.Namespace) -> int:
    try:
        if args.file:
            results = check_file(args.file)
            print(table(results))
            return 0 if all(isinstance(v, Verdict) and v.correct for _, v in results) else 1
        loss = args.expr if args.expr is not None else args.loss
        if loss is None:
            raise MatcalcError("give the loss as an argument")
        if args.chain is not None:
            with open(args.chain, encoding="utf-8") as fh:
                v = check_chain(loss, chain_lines(fh.read()), args.let)
        elif args.claim_differential is not None:
            v = check_differential(loss, args.claim_differential, args.let)
        elif args.claim is None or args.wrt is None:
            raise MatcalcError("give --wrt X --claim G, or --claim-differential \"df = ...\"")
        else:
            v = check(loss, args.wrt, args.claim, args.let)
    except OSError as err:
        print(f"matcalc: MatcalcError: cannot read {err.filename}: {err.strerror}", file=sys.stderr)
        return 2
    except MatcalcError as err:
        print(f"matcalc: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    print(json.dumps(v.to_dict(), indent=2, ensure_ascii=False) if args.format == "json" else v)
    return 0 if v.correct else 1


def _notes(args: argparse.Namespace) -> int:
    try:
        with open(args.input, encoding="utf-8") as fh:
            text = fill(fh.read())
    except OSError as err:
        raise MatcalcError(f"cannot read the note: {err.strerror}: {args.input}") from None
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _loss_text(args: argparse.Namespace) -> str:
    if (args.expr is None) == (args.program is None):
        raise MatcalcError("give the loss either as an argument or with --program FILE (not both)")
    if args.program is None:
        return args.expr
    if args.program == "-":
        return sys.stdin.read()
    try:
        with open(args.program, encoding="utf-8") as fh:
            return fh.read()
    except OSError as err:
        raise MatcalcError(f"cannot read the program: {err.strerror}: {args.program}") from None


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
    args = _parser().parse_args(_protect_negative_loss(sys.argv[1:] if argv is None else argv))
    if args.command == "check":
        return _check(args)
    if args.command == "notes":
        try:
            return _notes(args)
        except MatcalcError as err:
            print(f"matcalc: {type(err).__name__}: {err}", file=sys.stderr)
            return 2
    if args.command == "grad" and args.loss is not None:
        if args.expr is not None:
            print("matcalc: MatcalcError: two losses given", file=sys.stderr)
            return 2
        args.expr = args.loss
    try:
        r = grad(_loss_text(args), args.wrt, args.let, layout=args.layout, check=not args.no_check, seed=args.seed)
    except MatcalcError as err:
        print(f"matcalc: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    except RecursionError:
        print("matcalc: UnsupportedError: expression too deeply nested", file=sys.stderr)
        return 2
    try:
        print(_render(r, args))
    except MatcalcError as err:
        print(f"matcalc: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    return 0


def _render(r: Result, args: argparse.Namespace) -> str:
    if args.format == "json":
        return json.dumps(r.to_dict(), indent=2, ensure_ascii=False)
    if args.format == "markdown":
        return r.steps_markdown(args.lang, args.cite, args.transpose)
    if args.format == "latex":
        return r.steps_latex(args.lang, args.cite, args.transpose) if args.steps else _latex(r)
    return f"{r.steps_text(args.lang, args.cite)}\n\n{r}" if args.steps else str(r)


if __name__ == "__main__":
    sys.exit(main())
