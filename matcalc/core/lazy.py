"""Modules imported on first use: SymPy costs more to import than the rest of matcalc, and only
the checks and interop need it (`matcalc grad --no-check` never loads it)."""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule(ModuleType):
    """Stands for the module `name`; the first attribute read imports it."""

    def __init__(self, name: str) -> None:
        super().__init__(name)

    def __getattr__(self, attr: str) -> Any:
        module = importlib.import_module(self.__name__)
        value = getattr(module, attr)
        setattr(self, attr, value)  # later reads skip __getattr__
        return value


sympy = LazyModule("sympy")
