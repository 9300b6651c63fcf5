"""Compiled (numba) array-level paths of the ladder pipeline; the Python objects stay the reference."""
