r"""Data on the sphere, as Assumptions 3.1 and 3.2 of the paper require.

Assumption 3.1: :math:`\|x_i\|_2 = 1` and :math:`(x_i)_d = \mu` for a constant
:math:`\mu > 0`.  Assumption 3.2: :math:`\|x_i - x_j\|_2 \ge \phi > 0` for :math:`i \ne j`.

Everything is drawn on the host from ``numpy.random.default_rng(seed)`` and moved to the
active backend once, so a seed gives the same data on the CPU and the GPU.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy

from . import backend as B
from . import checks

TARGETS = ("gaussian", "teacher", "sign")


def sphere_points(n: int, d: int, mu: float = 0.5, rng=None) -> numpy.ndarray:
    r"""``n`` host points with :math:`\|x\| = 1` and last coordinate exactly ``mu``.

    :math:`x = (\sqrt{1-\mu^2}\, u, \mu)` with ``u`` uniform on the unit sphere of
    :math:`\mathbb{R}^{d-1}`.
    """
    n, d = checks.positive_int("n", n), checks.positive_int("d", d)
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
           dtype="float64", teacher_width: int = 64, min_separation=None, max_tries=None):
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
    min_separation : float, optional
        Guarantee Assumption 3.2 with :math:`\phi \ge` ``min_separation``: points are
        drawn one at a time and a point closer than that to an accepted one is redrawn
        (random sequential addition, :func:`separated_sphere_points`).  A request above
        the packing bound (:func:`max_separation`) raises ``ValueError`` at once; one
        that is not met within ``max_tries`` draws (default ``200 n + 10000``) raises
        ``ValueError`` saying how far it got.  ``None`` (default) draws exactly as
        without the option, so existing seeds give the same data.
    """
    n, d, k = checks.positive_int("n", n), checks.positive_int("d", d), checks.positive_int("k", k)
    if d < 2:
        raise ValueError(f"d must be at least 2 (the last coordinate is fixed to mu), got {d}")
    mu = checks.positive_float("mu", mu)
    if not 0.0 < mu < 1.0:
        raise ValueError(f"mu must lie in (0, 1) so that ||x|| = 1 with x[-1] = mu, got {mu}")
    if not isinstance(target, str) or target not in TARGETS:
        raise ValueError(f"unknown target {target!r}: expected one of {', '.join(TARGETS)}")
    dtype = checks.float_dtype(dtype)
    teacher_width = checks.positive_int("teacher_width", teacher_width)
    seed = checks.seed("seed", seed)
    if target == "sign" and k != 1:
        raise ValueError(f"target='sign' gives ±1 labels for k = 1, got k = {k}")
    rng = numpy.random.default_rng(seed)
    if min_separation is None:
        X = sphere_points(n, d, mu, rng)
    else:
        X = separated_sphere_points(n, d, mu, min_separation, rng, max_tries)
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
    # D carries a rounding error of up to ~(d + 2) ulp of max ||a||^2 + ||b||^2, which swamps
    # the squared distance of near-duplicates: every pair within that slack of the block's
    # minimum is a candidate, and the candidates are measured directly.
    ulp = numpy.finfo(X.dtype).eps          # X is float here (converted above)
    sq_max = float(sq.max())
    best, pair = numpy.inf, (0, 1)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        D = sq[start:stop, None] + sq[None, :] - 2.0 * (X[start:stop] @ X.T)
        rows = xp.arange(start, stop)
        D[rows - start, rows] = xp.inf                    # exclude i == j
        slack = 4.0 * (X.shape[1] + 2) * ulp * (float(sq[start:stop].max()) + sq_max)
        row_min = D.min(axis=1)                           # one pass over D
        limit = float(row_min.min()) + slack
        rows_near = xp.nonzero(row_min <= limit)[0]
        ii, jj = xp.nonzero(D[rows_near] <= limit)
        ii = rows_near[ii]
        dist = xp.linalg.norm(X[start + ii] - X[jj], axis=1)
        c = int(xp.argmin(dist))
        if float(dist[c]) < best:
            best, pair = float(dist[c]), (start + int(ii[c]), int(jj[c]))
    i, j = pair
    return float(xp.linalg.norm(X[i] - X[j]))


# ----- Assumption 3.2 by construction ------------------------------------------------------
def max_separation(n: int, d: int, mu: float = 0.5) -> float:
    r"""An upper bound on the separation :math:`\phi` that ``n`` points satisfying
    Assumption 3.1 can have.

    Such points lie on a sphere :math:`S^{d-2}` of radius :math:`r = \sqrt{1-\mu^2}` (in
    the first ``d - 1`` coordinates).  Two bounds, the smaller is returned:

    * *simplex (Rankin) bound*: :math:`\sum_{i<j}\|x_i-x_j\|^2 \le n^2 r^2`, so
      :math:`\phi^2 \le 2r^2 n/(n-1)`;
    * *cap packing*: points :math:`\phi` apart have disjoint caps of angular radius
      :math:`\beta = \arcsin(\phi/(2r))`, so :math:`n\cdot\mathrm{cap}(\beta) \le 1`, where a
      cap's fraction of :math:`S^{D}` (``D = d - 2``) is
      :math:`\tfrac12 I_{\sin^2\beta}(D/2, 1/2)`; solved for :math:`\phi` by bisection.

    For ``d = 2`` the "sphere" is two points: at most ``n = 2`` distinct points, ``2 r`` apart.
    """
    n, d = checks.positive_int("n", n), checks.positive_int("d", d)
    r = float(numpy.sqrt(1.0 - float(mu) ** 2))
    if n == 1:
        return float("inf")
    if d == 2:
        return 2 * r if n == 2 else 0.0
    simplex = r * float(numpy.sqrt(2.0 * n / (n - 1)))
    from scipy.special import betainc

    D = d - 2

    def cap(phi):   # fraction of S^D covered by a cap of angular radius arcsin(phi / 2r)
        s = min(phi / (2 * r), 1.0)
        return 0.5 * float(betainc(D / 2.0, 0.5, s * s))

    lo, hi = 0.0, 2 * r
    if n * cap(hi) <= 1.0:
        return min(simplex, hi)
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if n * cap(mid) <= 1.0 else (lo, mid)
    return min(simplex, hi)


def separated_sphere_points(n: int, d: int, mu: float, min_separation: float, rng=None,
                            max_tries=None) -> numpy.ndarray:
    r"""``n`` host points satisfying Assumption 3.1 with pairwise distances
    :math:`\ge` ``min_separation`` (Assumption 3.2), by random sequential addition.

    Candidates come from :func:`sphere_points` in batches; a candidate is kept if it is at
    least ``min_separation`` from every point kept so far.  Raises ``ValueError`` when the
    request exceeds :func:`max_separation` (impossible) or when ``max_tries`` candidates
    (default ``200 n + 10000``) have not produced ``n`` points (hopeless for random
    addition: sequential addition jams well below the packing bound in low dimension).
    """
    rng = numpy.random.default_rng(rng)
    phi = float(min_separation)
    if not phi >= 0:
        raise ValueError(f"min_separation must be a non-negative number, got {min_separation!r}")
    bound = max_separation(n, d, mu)
    if phi > bound:
        raise ValueError(
            f"min_separation = {phi:g} is impossible for n = {n} points with d = {d}, mu = {mu:g}: "
            f"they lie on a sphere of dimension {d - 2} and radius sqrt(1 - mu^2) = "
            f"{numpy.sqrt(1 - mu * mu):.4g}, where n points can be at most about {bound:.4g} apart "
            "(packing bound). Ask for less separation, fewer points or a larger d.")
    max_tries = 200 * n + 10000 if max_tries is None else int(max_tries)
    kept = numpy.empty((n, d))
    count, tries, phi2 = 0, 0, phi * phi
    while count < n and tries < max_tries:
        batch = sphere_points(min(max(n, 64), max_tries - tries), d, mu, rng)
        tries += batch.shape[0]
        if count:
            # a quick filter (rounding may drop a candidate right at the margin: harmless)
            batch = batch[(_sq_dists(batch, kept[:count]) >= phi2).all(axis=1)]
        for x in batch:                                   # exact check of the survivors
            if count and ((kept[:count] - x) ** 2).sum(axis=1).min() < phi2:
                continue
            kept[count] = x
            count += 1
            if count == n:
                break
    if count < n:
        raise ValueError(
            f"could not place n = {n} points with separation >= {phi:g} (d = {d}, mu = {mu:g}) "
            f"in {max_tries} random draws: only {count} fit. The packing bound is about "
            f"{bound:.4g}; random sequential addition typically reaches well below it. Ask "
            "for less separation, fewer points, a larger d, or pass a larger max_tries.")
    return kept


def _sq_dists(A, Bm):
    return numpy.maximum((A * A).sum(1)[:, None] + (Bm * Bm).sum(1)[None, :] - 2 * A @ Bm.T, 0.0)


# ----- a real data set ------------------------------------------------------------------------
def digits(classes=None, mu: float = 0.5, one_hot: bool = True, dtype="float64",
           test_fraction: float = 0.0, seed=0):
    r"""scikit-learn's bundled 8×8 digits (1797 images, no download), mapped onto
    Assumption 3.1.

    Each image's 64 pixels are centred (the per-pixel mean of the *training* rows is
    subtracted), scaled to norm :math:`\sqrt{1-\mu^2}`, and :math:`\mu` is appended, so
    :math:`\|x_i\| = 1` (up to rounding) and :math:`(x_i)_d = \mu` exactly, ``d = 65``.

    Parameters
    ----------
    classes : None or (a, b)
        ``None``: all ten digits, ``Y`` one-hot ``(n, 10)`` (``one_hot=False``: the digit
        as a float, ``(n, 1)``).  A pair ``(a, b)``: only those two digits, ``Y`` is
        ``+1`` for ``a`` and ``-1`` for ``b``, ``(n, 1)`` (k = 1; fits the logistic loss).
    test_fraction : float
        Fraction of the examples held out (shuffled with ``seed``).
    Returns
    -------
    ``(X, Y)``, or ``(X, Y, X_test, Y_test)`` when ``test_fraction > 0``; backend arrays.

    Needs scikit-learn (``pip install tinyntk[data]``).
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("tinyntk.data.digits needs scikit-learn, which is not installed: "
                          "install it with `pip install tinyntk[data]` "
                          "(or `pip install scikit-learn`)") from None
    mu = float(mu)
    if not 0.0 < mu < 1.0:
        raise ValueError(f"mu must lie in (0, 1), got {mu}")
    if not 0.0 <= float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must lie in [0, 1), got {test_fraction}")
    raw = load_digits()
    pixels, labels = raw.data.astype(numpy.float64), raw.target
    if classes is None:
        Y = numpy.eye(10)[labels] if one_hot else labels[:, None].astype(numpy.float64)
    else:
        a, b = (int(c) for c in classes)
        if a == b or not {a, b} <= set(range(10)):
            raise ValueError(f"classes must be two different digits 0..9, got {classes!r}")
        keep = (labels == a) | (labels == b)
        pixels, labels = pixels[keep], labels[keep]
        Y = numpy.where(labels == a, 1.0, -1.0)[:, None]
    order = numpy.random.default_rng(seed).permutation(len(pixels))
    n_test = int(round(float(test_fraction) * len(pixels)))
    test, train = order[:n_test], order[n_test:]
    mean = pixels[train].mean(axis=0)

    def embed(P):
        P = P - mean
        norms = numpy.linalg.norm(P, axis=1, keepdims=True)
        X = numpy.empty((P.shape[0], P.shape[1] + 1))
        X[:, :-1] = P * (numpy.sqrt(1.0 - mu * mu) / numpy.where(norms > 0, norms, 1.0))
        X[:, -1] = mu
        return B.asarray(X, dtype=dtype)

    out = (embed(pixels[train]), B.asarray(Y[train], dtype=dtype))
    if n_test:
        out += (embed(pixels[test]), B.asarray(Y[test], dtype=dtype))
    return out


# ----- checking the assumptions ----------------------------------------------------------------
@dataclass
class AssumptionReport:
    """How far a data set is from Assumptions 3.1 and 3.2 (see :func:`check_assumptions`)."""

    n: int
    d: int
    mu: float                 # the mu checked against (given, or the mean last coordinate)
    norm_error: float         # max_i | ||x_i|| - 1 |
    mu_error: float           # max_i | x_id - mu |
    phi: float                # separation, min_{i != j} ||x_i - x_j||
    tol: float
    holds_3_1: bool
    holds_3_2: bool

    def __str__(self) -> str:
        def verdict(ok):
            return "holds" if ok else "FAILS"
        return (f"Assumption 3.1 {verdict(self.holds_3_1)}: max | ||x_i|| - 1 | = {self.norm_error:.3g}, "
                f"max |x_id - mu| = {self.mu_error:.3g} (mu = {self.mu:.6g}, tol = {self.tol:g})\n"
                f"Assumption 3.2 {verdict(self.holds_3_2)}: phi = {self.phi:.6g} (n = {self.n}, d = {self.d})")


def check_assumptions(X, mu=None, tol: float = 1e-8) -> AssumptionReport:
    r"""Check Assumption 3.1 (:math:`\|x_i\| = 1`, :math:`(x_i)_d = \mu > 0`) and 3.2
    (:math:`\phi > 0`) on ``X`` and say by how much each fails.

    ``mu=None`` checks the last coordinates against their mean (so the report says
    whether they are all equal).  3.1 holds when both errors are at most ``tol`` and
    :math:`\mu > 0`; 3.2 holds when :math:`\phi >` ``tol`` (no duplicates).  The
    separation is computed in memory-safe chunks (:func:`separation`).
    """
    xp = B.get_backend().xp
    X = B.asarray(X)
    if X.ndim != 2 or X.shape[0] < 2:
        raise ValueError(f"X must be a 2-D batch of at least 2 points, got shape {tuple(X.shape)}")
    n, d = X.shape
    norms = xp.sqrt((X * X).sum(axis=1))
    last = X[:, -1]
    mu = float(last.mean()) if mu is None else float(mu)
    norm_error = float(xp.abs(norms - 1.0).max())
    mu_error = float(xp.abs(last - mu).max())
    phi = separation(X)
    return AssumptionReport(n=n, d=d, mu=mu, norm_error=norm_error, mu_error=mu_error, phi=phi,
                            tol=float(tol),
                            holds_3_1=norm_error <= tol and mu_error <= tol and mu > 0,
                            holds_3_2=phi > tol)
