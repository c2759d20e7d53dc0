"""Render LaTeX with KaTeX (the npm package, run with Node) from the tests.

`render(strings)` sends every string to ONE `node tools/katex_check.mjs` process and returns, for
each, None (KaTeX rendered it) or KaTeX's error message. Node and the katex package are required:
where either is missing the calling test FAILS (it is not skipped) with a message saying how to
install them. `extract_math(markdown)` pulls the math out of Markdown (`$$...$$` and `$...$`).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "katex_check.mjs"
KATEX_PACKAGE = ROOT / "node_modules" / "katex" / "package.json"
INSTALL = ("install Node.js 18 or newer with npm (Debian/Ubuntu: `apt-get install nodejs npm`; "
           "otherwise https://nodejs.org) and run `npm ci` in the repository root "
           f"({ROOT}) to install KaTeX from package-lock.json")


def _fail(why: str) -> None:
    pytest.fail(f"KaTeX check unavailable: {why}. To fix: {INSTALL}.", pytrace=False)


def node() -> str:
    """The `node` executable; fails the test when Node.js or the katex package is missing."""
    exe = shutil.which("node") or shutil.which("nodejs")  # Debian's old package named it nodejs
    if exe is None:
        _fail("`node` is not on PATH")
    if not KATEX_PACKAGE.is_file():
        _fail(f"the katex npm package is not installed ({KATEX_PACKAGE.relative_to(ROOT)} is missing)")
    return exe  # type: ignore[return-value]


def katex_version() -> str:
    node()
    return json.loads(KATEX_PACKAGE.read_text(encoding="utf-8"))["version"]


def render(strings: list[str], timeout: float = 120) -> list[str | None]:
    """KaTeX's verdict on each string (display mode, throwOnError, strict): None when it renders,
    else KaTeX's error message. One Node process for all the strings."""
    strings = list(strings)
    if not all(isinstance(s, str) for s in strings):
        raise TypeError("render() takes a list of strings")
    exe = node()
    try:
        proc = subprocess.run([exe, str(SCRIPT)], input=json.dumps(strings), capture_output=True,
                              text=True, encoding="utf-8", cwd=ROOT, timeout=timeout)
    except OSError as err:
        _fail(f"cannot run {exe}: {err}")
    if proc.returncode != 0:
        hint = f" ({INSTALL})" if "cannot load the katex package" in proc.stderr else ""
        pytest.fail(f"{SCRIPT.relative_to(ROOT)} exited with code {proc.returncode}{hint}:\n"
                    f"{proc.stderr.strip()}", pytrace=False)
    results = json.loads(proc.stdout)
    assert len(results) == len(strings), f"katex_check returned {len(results)} results for {len(strings)} strings"
    return [None if r["ok"] else r["error"] for r in results]


_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)   # fenced code blocks
_CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.S)    # `inline code`
_DISPLAY = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$", re.S)
# Inline math as in Pandoc: the opening `$` is followed by a non-space, the closing one is
# preceded by a non-space and not followed by a digit (so "$5 and $6" is no math).
_INLINE = re.compile(r"(?<![\\$])\$(?=[^\s$])((?:\\.|[^$\\])+?)(?<=[^\s\\])\$(?![\d$])", re.S)


def extract_math(markdown: str) -> list[str]:
    """The math of a Markdown text, in order of appearance: every `$$...$$` block and every
    inline `$...$`, without the dollars and stripped. Code (fenced blocks, `spans`) is skipped,
    so shell prompts like `$ matcalc ...` in examples are not taken for math."""
    text = _CODE_SPAN.sub(lambda m: " " * len(m.group(0)), _FENCE.sub(lambda m: " " * len(m.group(0)), markdown))
    found: list[tuple[int, str]] = []
    for m in _DISPLAY.finditer(text):
        found.append((m.start(), m.group(1).strip()))
    rest = _DISPLAY.sub(lambda m: " " * len(m.group(0)), text)  # keep offsets
    for m in _INLINE.finditer(rest):
        found.append((m.start(), m.group(1).strip()))
    return [s for _, s in sorted(found)]
