r"""Data on the sphere, as Assumptions 3.1 and 3.2 of the paper require.

Assumption 3.1: :math:`\|x_i\|_2 = 1` and :math:`(x_i)_d = \mu` for a constant
:math:`\mu > 0`.  Assumption 3.2: :math:`\|x_i - x_j\|_2 \ge \phi > 0` for :math:`i \ne j`.

Everything is drawn on the host from ``numpy.random.default_rng(seed)`` and moved to the
active backend once, so a seed gives the same data on the CPU and the GPU.
"""
from __future__ import annotations

import numpy

from . import backend as B
from . import checks

TARGETS = ("gaussian", "teacher", "sign")


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, numpy.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def sphere_points(n: int, d: int, mu: float = 0.5, rng=None) -> numpy.ndarray:
    r"""``n`` host points with :math:`\|x\| = 1` and last coordinate exactly ``mu``.

    :math:`x = (\sqrt{1-\mu^2}\, u, \mu)` with ``u`` uniform on the unit sphere of
    :math:`\mathbb{R}^{d-1}`.
    """
    n, d = _positive_int("n", n), _positive_int("d", d)
    if d < 2 or not 0.0 < checks.positive_float("mu", mu) < 1.0:
        raise ValueError(f"sphere_points needs d >= 2 and mu in (0, 1), got d = {d}, mu = {mu!r}")
    rng = numpy.random.default_rng(checks.seed("rng", rng))
    u = rng.standard_normal((n, d - 1))
    u /= numpy.linalg.norm(u, axis=1, keepdims=True)
    X = numpy.empty((n, d))
    X[:, :-1] = numpy.sqrt(1.0 - mu * mu) * u
    X[:, -1] = mu
    return X


def sphere(n: int = 64, d: int = 16, k: int = 1, mu: float = 0.5, seed=0, target="gaussian",
           dtype="float64", teacher_width: int = 64):
    r"""Inputs satisfying Assumption 3.1 and targets, as backend arrays ``(X, Y)``.

    Parameters
    ----------
    n, d, k : int
        Examples, input dimension (``d >= 2``), outputs.
    mu : float
        The last coordinate of every :math:`x_i`, ``0 < mu < 1``.
    target : str
        ``"gaussian"``: :math:`y_i \sim N(0, I_k)` (random labels, the paper's setting:
        no structure is needed to fit them); ``"teacher"``: the outputs of a fixed random
        one-hidden-layer ReLU net of width ``teacher_width``, scaled to unit variance;
        ``"sign"``: ±1 labels, the sign of such a teacher (``k`` must be 1; for the
        logistic loss).
    """
    n, d, k = _positive_int("n", n), _positive_int("d", d), _positive_int("k", k)
    if d < 2:
        raise ValueError(f"d must be at least 2 (the last coordinate is fixed to mu), got {d}")
    mu = checks.positive_float("mu", mu)
    if not 0.0 < mu < 1.0:
        raise ValueError(f"mu must lie in (0, 1) so that ||x|| = 1 with x[-1] = mu, got {mu}")
    if not isinstance(target, str) or target not in TARGETS:
        raise ValueError(f"unknown target {target!r}: expected one of {', '.join(TARGETS)}")
    from .network import _float_dtype
    dtype = _float_dtype(dtype)
    teacher_width = checks.positive_int("teacher_width", teacher_width)
    seed = checks.seed("seed", seed)
    if target == "sign" and k != 1:
        raise ValueError(f"target='sign' gives ±1 labels for k = 1, got k = {k}")
    rng = numpy.random.default_rng(seed)
    X = sphere_points(n, d, mu, rng)
    if target == "gaussian":
        Y = rng.standard_normal((n, k))
    else:
        A = rng.standard_normal((teacher_width, d)) * numpy.sqrt(2.0 / teacher_width)
        a = rng.standard_normal((k, teacher_width))
        Y = numpy.maximum(X @ A.T, 0.0) @ a.T
        Y = Y / (Y.std() + 1e-12)
        if target == "sign":
            Y = numpy.where(Y >= numpy.median(Y), 1.0, -1.0)
    return B.asarray(X, dtype=dtype), B.asarray(Y, dtype=dtype)


def separation(X, chunk: int | None = None) -> float:
    r""":math:`\phi = \min_{i \ne j} \|x_i - x_j\|_2` (Assumption 3.2).

    Computed in blocks of ``chunk`` rows, so memory stays ``O(chunk · n)``; by default
    ``chunk`` is the most rows that fit :func:`tinyntk.checks.memory_budget_bytes`
    (a :class:`~tinyntk.checks.MemoryBudgetError` says how much one row needs if none
    does).  Squared
    distances come from :math:`\|a\|^2 + \|b\|^2 - 2 a^\top b` and the closest pair is then
    measured directly, so the result has full precision even for near-duplicates.
    Returns 0.0 for duplicate points.
    """
    xp = B.get_backend().xp
    X = checks.real_array(X, "X")
    X = B.asarray(X, dtype=X.dtype if X.dtype.kind == "f" else "float64")
    if X.ndim != 2 or X.shape[0] < 2 or X.shape[1] < 1:
        raise ValueError(f"separation needs a 2-D array X of at least 2 points, got shape {tuple(X.shape)}")
    if not checks.all_finite(X):
        raise ValueError("X contains NaN or inf")
    n = X.shape[0]
    big = float(xp.abs(X).max())
    if big > 2.0 ** 500 or 0.0 < big < 2.0 ** -500:   # avoid overflow/underflow in ||.||^2:
        scale = 2.0 ** int(numpy.floor(numpy.log2(big)))  # a power of 2 scales exactly
        phi = separation(X / scale, chunk) * scale
        if not numpy.isfinite(phi):
            raise ValueError(f"separation of X overflows {X.dtype} (largest |x| entry {big:.3g}); rescale X")
        return phi
    if chunk is None:   # D, the X @ X.T block and one temporary live at once
        chunk = checks.chunk_rows(n, X.dtype.itemsize, arrays=3, n_rows=n,
                                  what=f"separation of n = {n} points")
    chunk = checks.positive_int("chunk", chunk)
    sq = (X * X).sum(axis=1)
    best, pair = numpy.inf, (0, 1)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        D = sq[start:stop, None] + sq[None, :] - 2.0 * (X[start:stop] @ X.T)
        rows = xp.arange(start, stop)
        D[rows - start, rows] = xp.inf                    # exclude i == j
        j = int(xp.argmin(D))
        i, j = divmod(j, n)
        if float(D[i, j]) < best:
            best, pair = float(D[i, j]), (start + i, j)
    i, j = pair
    return float(xp.linalg.norm(X[i] - X[j]))
