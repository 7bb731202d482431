"""vtrade.core.jit: the first kernel call in a fresh process does not import SciPy, and Numba's
own BLAS-backed functions still work afterwards, exactly as they would have."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CHILD = """
import json, sys
from vtrade.market.l2book import L2Book

book = L2Book("T")
book.apply_levels(bids=[(100, 5)], asks=[(101, 3)])
first_call = {"scipy_linalg": "scipy.linalg" in sys.modules, "touch": list(book.touch())}

import numpy as np
import numba.np.arraymath
from numba import njit

@njit
def uses_blas(a, b):
    return np.dot(a, b), np.convolve(a[0], b[0])

m = np.arange(4.0).reshape(2, 2)
dot, conv = uses_blas(m, m)
print(json.dumps({**first_call, "have_blas": numba.np.arraymath._HAVE_BLAS, "dot": dot.tolist(),
                  "convolve": conv.tolist(), "scipy_after": "scipy.linalg" in sys.modules}))
"""


def test_first_kernel_call_leaves_scipy_out_and_blas_functions_still_work() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(_CHILD)], capture_output=True, text=True, env=env,
                          timeout=600, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.splitlines()[-1])
    assert got["touch"] == [100, 5, 101, 3]
    assert got["scipy_linalg"] is False  # the kernels ran without it
    # Numba's flag says what its own probe would have said (SciPy is a dependency of Numba's linalg).
    assert got["have_blas"] is True
    assert got["dot"] == [[2.0, 3.0], [6.0, 11.0]]
    assert got["convolve"] == [0.0, 0.0, 1.0]
    assert got["scipy_after"] is True  # np.dot imported it when it compiled, as Numba does
