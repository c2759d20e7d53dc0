"""`matcalc notes IN.md -o OUT.md`: fill each ```matcalc block of a Markdown note with its
derivation, leaving the rest of the note as it is. Running it again on its output changes nothing:
the generated text sits between markers and is replaced, never appended.

A block holds `key: value` lines: `loss:` (or `program:` followed by one step per line), `wrt:`
(names separated by commas or spaces), and optionally `let:`, `lang: zh`, `cite: true`,
`transpose: top`, `check: false`.
"""
from __future__ import annotations

import re

from ..api import grad
from ..errors import MatcalcError
from .formats import result_markdown

BEGIN, END = "<!-- matcalc:begin -->", "<!-- matcalc:end -->"
_BLOCK = re.compile(r"^```matcalc[ \t]*\n(.*?)^```[ \t]*\n(?:\n*" + re.escape(BEGIN) + r".*?" + re.escape(END) +
                    r"[ \t]*\n)?", re.S | re.M)
KEYS = ("loss", "program", "wrt", "let", "lang", "cite", "transpose", "check")


def parse_block(body: str) -> dict[str, str]:
    """The block's settings; the lines after `program:` (until the next key) are the program."""
    out: dict[str, str] = {}
    key = None
    for line in body.splitlines():
        m = re.match(r"^\s*([a-z]+)\s*:\s*(.*)$", line)
        if m and m.group(1) in KEYS:
            key, value = m.group(1), m.group(2).strip()
            out[key] = value
        elif key == "program" and line.strip():
            out["program"] = (out["program"] + "\n" + line.strip()).strip()
        elif line.strip():
            raise MatcalcError(f"matcalc block: cannot read {line.strip()!r} (keys: {', '.join(KEYS)})")
    if not (out.get("loss") or out.get("program")) or not out.get("wrt"):
        raise MatcalcError("matcalc block: needs `loss:` (or `program:`) and `wrt:`")
    return out


def render_block(body: str) -> str:
    """The generated Markdown for one block: the derivation and the result."""
    opt = parse_block(body)
    r = grad(opt.get("program") or opt["loss"], re.split(r"[,\s]+", opt["wrt"].strip()), opt.get("let", ""),
             check=opt.get("check", "true").lower() != "false")
    md = result_markdown(r, opt.get("lang", "en"), opt.get("cite", "false").lower() == "true",
                         opt.get("transpose", "T"))
    return f"{BEGIN}\n{md.rstrip()}\n{END}\n"


def fill(text: str) -> str:
    """`text` with every matcalc block followed by its (re)generated derivation."""
    def one(m: re.Match) -> str:
        return f"```matcalc\n{m.group(1)}```\n\n{render_block(m.group(1))}"

    return _BLOCK.sub(one, text)
