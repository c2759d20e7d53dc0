"""The wheel works on its own: build it, install it into a fresh venv, use it from elsewhere.

Steps (once per module, ~10-20 s):
1. copy the source tree (no .git, build/, *.egg-info, caches) to a temp dir and build a wheel
   there with `pip wheel --no-deps --no-build-isolation` -- offline, with this interpreter's
   setuptools and wheel; building from a copy keeps a stale build/lib out of the wheel and
   leaves the work tree untouched;
2. create a fresh venv and `pip install --no-deps` the wheel into it, offline;
3. make the runtime dependencies (lark, numpy, sympy, mpmath) importable in the venv without a
   network by a .pth file listing the directories this interpreter finds them in. A .pth line
   only adds a directory to sys.path: the .pth files inside it (such as the editable matcalc
   install's finder hook) are not run, so the outer matcalc stays invisible;
4. from an unrelated temp dir, run the venv's python and its `matcalc` console script.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPS = ("lark", "numpy", "sympy", "mpmath")  # runtime requirements, and sympy's own
IGNORE = shutil.ignore_patterns(".git", "node_modules", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
                                ".pytest_cache", ".hypothesis", ".venv", "venv", ".mypy_cache", ".ruff_cache")
TIMEOUT = 120


def _build_tools_missing() -> str | None:
    """Why an offline, no-isolation wheel build cannot work here, or None."""
    if importlib.util.find_spec("setuptools") is None:
        return "setuptools is not importable"
    import setuptools

    major, minor = (int(p) for p in re.findall(r"\d+", setuptools.__version__)[:2])
    # bdist_wheel moved into setuptools in 70.1; before that it comes from the `wheel` package
    if (major, minor) < (70, 1) and importlib.util.find_spec("wheel") is None:
        return (f"setuptools {setuptools.__version__} needs the `wheel` package for bdist_wheel, and it is not "
                "importable (pip install wheel, or setuptools>=70.1)")
    return None


def _env() -> dict[str, str]:
    """The environment for every subprocess: offline pip, no leaking of the outer paths."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONSAFEPATH")}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PYTHONNOUSERSITE="1")
    return env


def _run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run([str(c) for c in cmd], cwd=cwd, env=_env(), capture_output=True, text=True,
                       timeout=TIMEOUT)
    if check and p.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {p.returncode}\n--- stdout\n{p.stdout[-4000:]}\n"
                    f"--- stderr\n{p.stderr[-4000:]}")
    return p


def _dep_dirs() -> list[str]:
    """The sys.path entries this interpreter imports each dependency from."""
    dirs = []
    for name in DEPS:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin, f"{name} is not importable in the outer environment"
        origin = Path(spec.origin).resolve()
        top = origin.parent.parent if origin.name == "__init__.py" else origin.parent
        if str(top) not in dirs:
            dirs.append(str(top))
    return dirs


class Installed:
    def __init__(self, src: Path, wheel: Path, venv: Path, python: Path, script: Path, site: Path,
                 elsewhere: Path):
        self.src, self.wheel, self.venv, self.python, self.script = src, wheel, venv, python, script
        self.site, self.elsewhere = site, elsewhere


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    missing = _build_tools_missing()
    if missing:
        pytest.skip(f"cannot build a wheel offline: {missing}")
    tmp = tmp_path_factory.mktemp("packaging")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=IGNORE, symlinks=True)

    dist = tmp / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "-w", dist, src], cwd=tmp)
    wheels = sorted(dist.glob("*.whl"))
    assert len(wheels) == 1, f"expected one wheel, got {[w.name for w in wheels]}"

    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=tmp)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / ("python.exe" if os.name == "nt" else "python")
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", wheels[0]], cwd=tmp)

    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=tmp).stdout.strip())
    assert site.is_dir() and venv.resolve() in site.resolve().parents, site
    (site / "_outer_deps.pth").write_text("\n".join(_dep_dirs()) + "\n")

    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    script = bindir / ("matcalc.exe" if os.name == "nt" else "matcalc")
    return Installed(src, wheels[0], venv, python, script, site, elsewhere)


def test_wheel_contents(installed):
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    src = installed.src  # the tree the wheel was built from
    want = {f"matcalc/{p.name}" for p in (src / "matcalc").glob("*.py")}
    want |= {f"matcalc/rules/{p.name}" for p in (src / "rules").glob("*.py")}
    want |= {f"matcalc/rules/{p.name}" for p in (src / "rules").glob("*.rules")}
    want |= {"matcalc/syntax/grammar.lark", "matcalc/py.typed"}
    missing = sorted(want - names)
    assert not missing, f"the wheel lacks {missing}"
    stray = sorted(n for n in names if n.startswith(("rules/", "tests/", "benchmarks/", "examples/")))
    assert not stray, f"the wheel ships top-level {stray}"


def test_metadata_and_dependencies(installed):
    with zipfile.ZipFile(installed.wheel) as z:
        meta = next(z.read(n).decode() for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        entry = next(z.read(n).decode() for n in z.namelist() if n.endswith(".dist-info/entry_points.txt"))
    assert re.search(r"^Name: matcalc-derive$", meta, re.M), meta
    assert re.search(r"^matcalc\s*=\s*matcalc\.cli:main$", entry, re.M), entry
    required = {re.split(r"[\s<>=!~;\[(]", line.split(":", 1)[1].strip())[0].lower()
                for line in meta.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line
                and ("python_version" not in line or sys.version_info < (3, 11))}  # tomli: only for 3.10
    # every runtime requirement must be among what this test makes importable in the venv
    assert required <= set(DEPS), f"runtime requirements {sorted(required - set(DEPS))} not provided to the venv"


def test_installed_package_has_rule_tables(installed):
    pkg = installed.site / "matcalc"
    assert (pkg / "syntax" / "grammar.lark").is_file()
    rules = sorted(p.name for p in (pkg / "rules").glob("*.rules"))
    assert rules, f"no *.rules in {pkg / 'rules'}"
    src_rules = sorted(p.name for p in (installed.src / "rules").glob("*.rules"))
    assert rules == src_rules
    assert (pkg / "py.typed").is_file()


def test_import_and_derive_from_elsewhere(installed):
    code = textwrap.dedent("""
        import json, os, sys
        import matcalc, matcalc.rules
        r = matcalc.grad("tr(A*X*B)", wrt="X")
        print(json.dumps({"file": matcalc.__file__, "rules": list(matcalc.rules.__path__),
                          "text": r["X"].text, "check": r.check.summary() if r.check else None,
                          "path": sys.path, "cwd": os.getcwd(),
                          "editable": [m for m in sys.modules if m.startswith("__editable__")]}))
    """)
    p = _run([installed.python, "-c", code], cwd=installed.elsewhere)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    venv = str(installed.venv.resolve())
    assert str(Path(out["file"]).resolve()).startswith(venv), f"matcalc imported from {out['file']}, not the venv"
    assert all(str(Path(d).resolve()).startswith(venv) for d in out["rules"]), out["rules"]
    assert str(ROOT) not in [str(Path(d).resolve()) for d in out["path"] if d], "the repo is on the venv's sys.path"
    assert not out["editable"], f"an editable-install finder is active in the venv: {out['editable']}"
    assert out["text"] == "A'*B'"
    assert out["check"] and out["check"].startswith("verified"), out["check"]


def test_console_script(installed):
    assert installed.script.is_file(), f"no console script at {installed.script}"
    p = _run([installed.script, "grad", "log(det(X))", "--wrt", "X"], cwd=installed.elsewhere)
    assert "inv(X)'" in p.stdout, p.stdout
    assert "verified" in p.stdout, p.stdout
    bad = _run([installed.script, "grad", "tr(A*X", "--wrt", "X"], cwd=installed.elsewhere, check=False)
    assert bad.returncode == 2 and "ParseError" in bad.stderr, (bad.returncode, bad.stderr)
