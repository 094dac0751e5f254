"""Compiled numeric building blocks shared by the engine's kernels.

* `CACHE`: whether numba can cache compiled code on disk here (see `api.engine.jit`).
* `pairwise_sum`: numpy's own pairwise summation order, so statistics computed
  in a kernel are bit-identical to ``ndarray.sum``/``mean``/``std``.

Plain float arithmetic in a fixed order, no fastmath. Callers pass
C-contiguous, aligned, writable float64 arrays (`as_kernel_array`) so every
kernel is compiled for one array type only.
"""

import warnings

import numpy as np
from numba import njit


def _probe() -> int:
    return 0


def _disk_cache_available() -> bool:
    """Whether numba can cache this file's functions on disk.

    numba raises at decoration time ("cannot cache function ...: no locator
    available") when neither the package's __pycache__, NUMBA_CACHE_DIR nor
    the per-user cache directory is writable.
    """
    try:
        njit(cache=True)(_probe)
    except RuntimeError:
        return False
    return True


CACHE = _disk_cache_available()
if not CACHE:
    warnings.warn(
        "numba cannot write a disk cache for api.engine (read-only package "
        "and no writable NUMBA_CACHE_DIR or home cache); kernels compile in every "
        "process. Set NUMBA_CACHE_DIR to a writable directory.",
        RuntimeWarning,
        stacklevel=2,
    )

# numpy's pairwise-summation block size (PW_BLOCKSIZE in loops_utils.h).
_PW_BLOCKSIZE = 128


@njit(cache=CACHE, nogil=True)
def _block_sum(a, start, n):
    """numpy's pairwise_sum leaf (n <= 128): 8 interleaved accumulators."""
    # Indexing a view with range() indices lets LLVM drop numba's
    # negative-index handling and vectorise the accumulators.
    b = a[start:start + n]
    if n < 8:
        res = -0.0
        for i in range(n):
            res += b[i]
        return res
    r0 = b[0]
    r1 = b[1]
    r2 = b[2]
    r3 = b[3]
    r4 = b[4]
    r5 = b[5]
    r6 = b[6]
    r7 = b[7]
    m = n - n % 8
    for i in range(8, m, 8):
        r0 += b[i]
        r1 += b[i + 1]
        r2 += b[i + 2]
        r3 += b[i + 3]
        r4 += b[i + 4]
        r5 += b[i + 5]
        r6 += b[i + 6]
        r7 += b[i + 7]
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for i in range(m, n):
        res += b[i]
    return res


_PW_STACK = 64  # frames of the split-tree walk: enough for 128 * 2**31 values


@njit(cache=CACHE, nogil=True)
def pairwise_sum(a, start, n):
    """Sum of a[start:start+n] exactly as numpy's float64 ``add.reduce`` does.

    numpy sums contiguous float64 data with 8 interleaved accumulators in
    blocks of at most 128 values and splits longer runs in two (the first
    part a multiple of 8 near half), adding the two partial sums. Reproducing
    that order makes ``0.0 + pairwise_sum(a, s, n)`` bit-identical to
    ``a[s:s+n].sum()`` (numpy adds its 0.0 identity first).
    """
    if n <= _PW_BLOCKSIZE:
        return _block_sum(a, start, n)
    return _pairwise_sum_into(
        a, start, n, np.empty((3, _PW_STACK), dtype=np.int64), np.empty(_PW_STACK)
    )


@njit(cache=CACHE, nogil=True)
def _pairwise_sum_into(a, start, n, frames, values):
    """`pairwise_sum` using caller-provided stacks (shapes (3, 64) and (64,)).

    numpy recurses; this walks the same split tree with explicit stacks,
    because numba's on-disk cache cannot hold recursive functions
    (numba issue 6061: loading them segfaults).
    """
    if n <= _PW_BLOCKSIZE:
        return _block_sum(a, start, n)
    # Depth-first walk. Each frame is a run still to be summed (start, size,
    # stage); stage 0 = split it, 1 = its two sums are on top of `values`.
    top = 0
    nvals = 0
    frames[0, 0] = start
    frames[1, 0] = n
    frames[2, 0] = 0
    while top >= 0:
        s = frames[0, top]
        m = frames[1, top]
        if m <= _PW_BLOCKSIZE:
            values[nvals] = _block_sum(a, s, m)
            nvals += 1
            top -= 1
        elif frames[2, top] == 0:
            frames[2, top] = 1
            m2 = m // 2
            m2 -= m2 % 8
            # push the right half first so the left one is summed first
            frames[0, top + 1] = s + m2
            frames[1, top + 1] = m - m2
            frames[2, top + 1] = 0
            frames[0, top + 2] = s
            frames[1, top + 2] = m2
            frames[2, top + 2] = 0
            top += 2
        else:
            nvals -= 1
            values[nvals - 1] = values[nvals - 1] + values[nvals]
            top -= 1
    return values[0]


def as_kernel_array(values: object) -> np.ndarray:
    """`values` as a C-contiguous, aligned, writable float64 array (copied only if needed).

    One array type per kernel argument keeps numba to one specialisation each,
    which halves what a cold start compiles.
    """
    if type(values) is np.ndarray and values.dtype == _F8:
        flags = values.flags  # the common case, an array already fit: ~10x cheaper than np.require
        if flags.c_contiguous and flags.aligned and flags.writeable:
            return values
    return np.require(values, dtype=np.float64, requirements=("C", "A", "W"))


_F8 = np.dtype(np.float64)
