"""numba kernels: pure functions over arrays, no validation, no Python objects.

Every kernel takes C-contiguous float64 arrays (training data, queries) and writes into
outputs allocated by its caller.  Importing this package compiles nothing: kernels are
compiled on first call and cached on disk (``cache=True``).
"""
