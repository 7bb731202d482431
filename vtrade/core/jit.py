"""vtrade's way into Numba: ``from vtrade.core.jit import njit`` instead of ``from numba import njit``.

Importing this module keeps SciPy off the first kernel call. Numba decides whether a BLAS is
there when it first loads its array-math implementations (``numba/np/arraymath.py``,
``_HAVE_BLAS = _check_blas()``, on the first compile or cache load in a process), by importing
``scipy.linalg``: 0.2 s (``scipy.linalg`` pulls in ``numpy.f2py`` and SciPy's array-API layer),
10-15 % of ``vtrade book``'s wall time, for a flag that only ``np.convolve`` and ``np.correlate``
read and that none of vtrade's kernels need. Here that module is loaded with the probe failing
fast, and the flag is then set to what the probe would have found (SciPy installed or not), so
Numba behaves as before for everyone's code; functions that do use BLAS (``np.dot``,
``np.linalg``) still import SciPy when they compile, as Numba's linalg does on its own.

>>> from vtrade.core.jit import njit
>>> @njit(nogil=True)  # vtrade's kernels also pass cache=True (not possible in a doctest)
... def twice(x: int) -> int:
...     return 2 * x
>>> twice(21)
42
"""

from __future__ import annotations

import importlib.util
import sys

from numba import njit

__all__ = ["njit"]


def _load_array_math_without_scipy() -> None:
    if "numba.np.arraymath" in sys.modules or "scipy.linalg" in sys.modules:
        return  # already decided, or SciPy already paid for: nothing to save
    import numba.np.linalg as linalg

    probe = getattr(linalg, "ensure_blas", None)
    if probe is None:
        return  # a Numba that probes differently: leave it alone

    def _deferred() -> None:
        raise ImportError("BLAS probe deferred by vtrade.core.jit")

    # arraymath binds ``from numba.np.linalg import ensure_blas`` when it is imported.
    linalg.ensure_blas = _deferred
    try:
        import numba.np.arraymath as arraymath
    finally:
        linalg.ensure_blas = probe
    if getattr(arraymath, "ensure_blas", None) is _deferred:
        arraymath.ensure_blas = probe
    if hasattr(arraymath, "_HAVE_BLAS"):
        arraymath._HAVE_BLAS = importlib.util.find_spec("scipy") is not None


_load_array_math_without_scipy()
