"""Fuzzing campaign: `python benchmarks/fuzz.py --n N --seed S [--kind loss --kind program] [--jobs J]`.

Prints the counts per class (by kind), the findings grouped by oracle and message with the
shortest reproducers, and a summary in the last four lines. Exit code 1 if any case is wrong,
crashes or hangs.
"""
from __future__ import annotations

import argparse
import sys
import time

from matcalc import fuzz


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000, help="number of cases")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kind", action="append", choices=fuzz.ALL_KINDS, help="case kinds (repeat; default all)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes")
    p.add_argument("--full-every", type=int, default=10, help="expensive oracles on every k-th case (0: never)")
    p.add_argument("--verdict-every", type=int, default=50,
                   help="check() of G, 2G, -G, G' on the full cases whose index is a multiple of k")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per case (per stage for the sampled oracles)")
    p.add_argument("--examples", type=int, default=3, help="reproducers shown per group")
    p.add_argument("--in-process", action="store_true", help="no worker processes (a segfault ends the run)")
    p.add_argument("--show", default="hang,crash,wrong,contract,nopoint,unsupported",
                   help="classes whose groups are listed")
    p.add_argument("--markdown", metavar="FILE", help="also write the grouped findings as Markdown")
    args = p.parse_args(argv)
    kinds = tuple(args.kind or fuzz.KINDS)
    opt = fuzz.Options(timeout=args.timeout, full_every=args.full_every, verdict_every=args.verdict_every,
                       seed=args.seed)
    print(f"fuzz: {args.n} cases, seed {args.seed}, kinds {', '.join(kinds)}, full oracles every "
          f"{args.full_every}, verdicts every {args.verdict_every}, {args.jobs} job(s)", flush=True)
    t0 = time.perf_counter()

    def progress(done: int) -> None:
        if sys.stderr.isatty():
            print(f"\r{done}/{args.n}", end="", file=sys.stderr, flush=True)

    if args.in_process:
        fuzz.limit_memory(3.0)
    outcomes = fuzz.campaign(args.n, args.seed, kinds, opt, jobs=args.jobs, subprocess=not args.in_process,
                             progress=progress)
    lines = fuzz.report(outcomes, time.perf_counter() - t0, args.examples, tuple(args.show.split(",")))
    if args.markdown:
        title = f"{args.n} cases, seed {args.seed}, kinds {', '.join(kinds)}"
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write(fuzz.markdown(outcomes, title, args.examples))
    print("\n".join(lines))
    return 1 if any(o.cls in fuzz.FAILING for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
