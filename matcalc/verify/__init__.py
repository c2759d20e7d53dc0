"""Verification: NumPy evaluation (`evaluate`), exact series over the rationals (`exact`) and the
two independent checks of a gradient (`check`: numeric and SymPy elementwise)."""
