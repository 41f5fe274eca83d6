r"""Kernel-regime predictions: what GD on the square loss does when the kernel is frozen.

A wide net trained by GD on the square loss of eq. (2.1),
:math:`L(W) = \frac1{2n}\sum_i \|f_W(x_i) - y_i\|^2`, moves its outputs by

.. math::  f \leftarrow f - \frac{\eta}{n}\,\Theta_t\,(f - Y),

where :math:`\Theta_t` is the empirical NTK at the current weights.  In the kernel (lazy)
regime :math:`\Theta_t \approx \Theta_0`, and with the kernel frozen at ``K`` the dynamics
are linear and solvable in closed form (Lee et al., 2019, *Wide neural networks of any
depth evolve as linear models under gradient descent*, section 2.2).  With
:math:`K = U\,\mathrm{diag}(\lambda)\,U^\top` and :math:`a = \eta/n`:

.. math::

    f(t) - Y &= U\,\mathrm{diag}\big((1 - a\lambda)^t\big)\,U^\top (f_0 - Y)
        \qquad\text{(GD, } t \text{ steps)}\\
    f_{\rm test}(t) &= f_{0,\rm test} - K_{\rm test,train}\,U\,
        \mathrm{diag}\big(g_t(\lambda)\big)\,U^\top (f_0 - Y),
        \qquad g_t(\lambda) = \frac{1 - (1 - a\lambda)^t}{\lambda}
        = a\sum_{s<t}(1 - a\lambda)^s,

and for gradient flow :math:`e^{-a\lambda t}` and
:math:`g_t(\lambda) = (1 - e^{-a\lambda t})/\lambda` instead.  Both gains tend to
:math:`a t` as :math:`\lambda \to 0` and are evaluated with ``expm1``/``log1p``, so a zero
or tiny eigenvalue never divides by ~0.

Functions
---------
:func:`gd_mse`
    the outputs on training and test points after ``t`` GD steps (or at time ``t`` of
    gradient flow); ``t = inf`` is the kernel-regression limit.
:func:`kernel_regression`
    :math:`K_{\rm test,train}(K + \text{diag\_reg}\,I)^{-1} Y`.
:func:`gp_posterior`
    the Gaussian-process posterior mean and covariance (with :func:`tinyntk.kernels.nngp`,
    the NNGP posterior).
:func:`eigh`, :func:`decay`
    the eigendecomposition of a checked kernel and the per-eigendirection factor
    :math:`(1 - \eta\lambda_i/n)^t`: the pieces :mod:`tinyntk.spectrum` builds on.

Kernels
-------
``K`` is ``(n, n)``, the same kernel for each of the ``k`` outputs (``empirical_ntk(net,
X)``, ``ntk(X, L=L) * m / k``), or ``(n, k, n, k)``, a kernel that couples the outputs
(``empirical_ntk(net, X, output="full")``; exact for the linearized net when ``k > 1``).
Test kernels are ``(n_test, n)`` or ``(n_test, k, n, k)`` accordingly.  Inputs may come
from either backend and in any real dtype; the work is done in float64 on the active
backend, and the results are float64 arrays of the active backend.

Rounding
--------
Kernels computed in floating point are symmetric and positive semi-definite (PSD) only to
rounding.  With ``N`` the kernel's side, :math:`k_{\max} = \max_{ij}|K_{ij}|`, and the
rounding level of the kernel's dtype :math:`r = \min(10^{-3}, \max(10^{-10}, 100\epsilon))`
(:math:`10^{-10}` for float64 and integers, :math:`1.2\cdot10^{-5}` for float32):

* ``K`` is *symmetric* if :math:`\max|K - K^\top| \le r\,k_{\max}`; it is then replaced by
  :math:`(K + K^\top)/2`.  A larger asymmetry raises ``ValueError``.
* an eigenvalue below :math:`-r N k_{\max}` (an upper bound of what entrywise rounding of
  relative size ``r`` can do to an eigenvalue) means ``K`` is not a kernel matrix:
  ``ValueError`` with the most negative eigenvalue.  The recursion path of :func:`gd_mse`
  computes no eigenvalues and makes no such check.
* once in float64, the matrix given is taken as exact: eigenvalues
  :math:`\le N\epsilon_{64}\lambda_{\max}` (SciPy's ``pinvh`` cutoff), small negatives
  included, are *treated as 0*: float64 does not resolve them, and GD does not move the
  residual along them.  A float32 kernel gives the same predictions as the same numbers
  in float64.

Algorithms
----------
:func:`gd_mse` computes in one of two ways (``method=``):

* ``"recursion"`` (discrete GD with finite ``t`` only): iterate the recursion with matrix
  products, keeping the requested steps.  Costs :math:`2\max(t)\,N^2 c` flops (``N`` the
  kernel's side, ``c`` its number of right-hand sides: ``k`` for an ``(n, n)`` kernel, 1
  for ``(n, k, n, k)``), needs no eigenvalues and no PSD check (it is exact for any
  symmetric ``K``); for the step-size warning it estimates :math:`\lambda_{\max}` with a
  few matrix-vector products (Lanczos).
* ``"eigh"``: one symmetric eigendecomposition (float64), then two matrix products for
  all times together.
* ``"auto"``: ``"recursion"`` when it applies and :math:`\max(t)\,c \le N/2`, else
  ``"eigh"``.  By flops alone the recursion would pay up to :math:`\max(t)\,c \approx
  4N`, but its matrix-vector products stream ``K`` from memory while the
  eigendecomposition runs near GEMM speed: on a 2-core EPYC VM (one thread) the two cost
  the same at :math:`t \approx 0.5N` (N = 2048) to :math:`0.6N` (N = 4096) for ``c = 1``
  (``bench/predict.py``, last section).  For ``c > 1`` the rule is conservative (a
  product with ``c`` columns streams ``K`` once too).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy

from . import backend as B
from . import checks

METHODS = ("auto", "eigh", "recursion")


def _method(method, p, times, flow) -> str:
    """``"recursion"`` or ``"eigh"``: ``method`` checked, ``"auto"`` resolved (module docstring)."""
    method = checks.one_of("method", method, METHODS)
    iterable = not flow and bool(numpy.isfinite(times).all())
    if method == "recursion" and not iterable:
        raise ValueError("method='recursion' takes discrete GD with finite t; use "
                         "method='eigh' (or 'auto') for flow=True or t=inf")
    if method == "auto":
        cheap = times.size == 0 or times.max() * p.R0.shape[1] <= p.K.shape[0] / 2
        method = "recursion" if iterable and cheap else "eigh"
    return method


# ----- the three predictions ----------------------------------------------------------
def gd_mse(K_train, Y, lr, t, f0_train=None, K_test_train=None, f0_test=None, flow=False, *,
           method="auto"):
    r"""Outputs of GD (or gradient flow) on the square loss with the kernel frozen at ``K``.

    Discrete GD, ``t`` steps of

    .. math::  f \leftarrow f - \tfrac{\eta}{n} K (f - Y), \qquad
               f_{\rm test} \leftarrow f_{\rm test} - \tfrac{\eta}{n} K_{\rm test,train}(f - Y),

    or gradient flow :math:`\dot f = -\tfrac{\eta}{n} K (f - Y)` up to time ``t``
    (``flow=True``); the closed forms are in the module docstring.  ``t = numpy.inf`` is
    the limit: kernel regression on the range of ``K`` (the residual's component in the
    null space of ``K`` stays where it started).

    Parameters
    ----------
    K_train : array ``(n, n)`` or ``(n, k, n, k)``
        The frozen kernel on the training points, symmetric PSD (see "Rounding" in the
        module docstring).  For a net, ``empirical_ntk(net, X)``.
    Y : array ``(n, k)`` (``(n,)`` is read as ``(n, 1)``)
        Targets.
    lr : float > 0
        The step size :math:`\eta` (the rate of the flow).  Above :math:`2n/\lambda_{\max}`
        discrete GD diverges: a ``RuntimeWarning`` says so and gives the stable limit.
    t : int >= 0, or a 1-D array of them
        Numbers of GD steps (whole numbers or ``numpy.inf``); with ``flow=True`` any times
        ``>= 0``.  One factorization serves every time.
    f0_train : array ``(n, k)``, optional
        Outputs at initialization, ``net(X)``; ``None`` means zeros.
    K_test_train : array ``(n_test, n)`` or ``(n_test, k, n, k)``, optional
        Kernel between test and training points; ``None``: no test outputs.
    f0_test : array ``(n_test, k)``, optional
        Test outputs at initialization; ``None`` means zeros.
    flow : bool
        Gradient flow instead of discrete GD.
    method : {"auto", "eigh", "recursion"}
        How to compute (both exact up to rounding; they agree to ~1e-12): see
        "Algorithms" in the module docstring.

    Returns
    -------
    f_train : array ``(n, k)``, or ``(len(t), n, k)`` for an array ``t``
    f_test : array ``(n_test, k)`` or ``(len(t), n_test, k)``; ``None`` without
        ``K_test_train``

    Raises
    ------
    ValueError, TypeError
        A non-square, non-symmetric, non-PSD or non-finite kernel, mismatched shapes,
        ``lr <= 0``, a negative or non-integer ``t`` (for GD), ``t`` not 0-D or 1-D, or
        ``t = inf`` for GD with ``lr >= 2n/λ_max`` (no limit).  Each message names the
        argument.

    Examples
    --------
    >>> import tinyntk as tn
    >>> X, Y = tn.data.sphere(n=32, d=8, k=1, seed=0)
    >>> net = tn.ReLUNet.init(d=8, m=512, k=1, L=2, seed=0)
    >>> K = tn.kernels.empirical_ntk(net, X)
    >>> f, _ = tn.predict.gd_mse(K, Y, lr=0.01, t=[0, 100, 1000], f0_train=net(X))
    >>> f.shape
    (3, 32, 1)
    """
    p = _problem(K_train, Y, f0_train, K_test_train, f0_test)
    a = checks.positive_float("lr", lr) / p.n
    if not isinstance(flow, (bool, numpy.bool_)):
        raise checks.ArgumentTypeError(f"flow must be True or False, got {flow!r}")
    times, scalar = _times(t, flow)
    if _method(method, p, times, flow) == "recursion":
        R, S = _recursion(p, a, times)
    else:
        R, S = _spectral(p, a, times, flow)
    return p.outputs(R, S, scalar)


def kernel_regression(K_train, Y, K_test_train, diag_reg=0.0):
    r"""Kernel regression, :math:`K_{\rm test,train}\,(K + \text{diag\_reg}\,I)^{-1}\,Y`.

    The limit ``t → inf`` of :func:`gd_mse` with ``f0 = 0`` (for a nonsingular ``K``).
    Solved by a Cholesky factorization; where ``K + diag_reg·I`` is singular to rounding
    (a Cholesky pivot :math:`L_{ii} \le (N\epsilon_{64}\max_i K_{ii})^{1/2}`, e.g. duplicate
    training points), by the pseudo-inverse on the range of ``K`` (an eigendecomposition,
    eigenvalues :math:`\le N\epsilon_{64}\lambda_{\max}` dropped).  The result is never NaN for finite
    input.

    Parameters
    ----------
    K_train : array ``(n, n)`` or ``(n, k, n, k)``, symmetric PSD
    Y : array ``(n, k)``
    K_test_train : array ``(n_test, n)`` or ``(n_test, k, n, k)``
    diag_reg : float >= 0
        Added to the diagonal of ``K`` (absolute, not scaled by the trace).

    Returns
    -------
    array ``(n_test, k)``
    """
    p = _problem(K_train, Y, None, K_test_train, None, need_test=True)
    inverse = _PseudoInverse(p, checks.positive_float("diag_reg", diag_reg, allow_zero=True))
    mean = p.K_tx @ inverse.solve(p.Y)
    return mean.reshape(p.test_shape)


def gp_posterior(K_train, Y, K_test_train, K_test_test, diag_reg=0.0):
    r"""The Gaussian-process posterior at the test points, ``(mean, cov)``.

    .. math::

        \mu = K_{\rm test,train}(K + \text{diag\_reg}\,I)^{-1} Y, \qquad
        \Sigma = K_{\rm test,test} - K_{\rm test,train}(K + \text{diag\_reg}\,I)^{-1}
                 K_{\rm train,test}.

    With ``tn.kernels.nngp`` as the kernel this is the NNGP posterior (exact Bayesian
    inference with the infinitely wide net as the prior; neural-tangents' ``gp_inference``).
    ``diag_reg`` is the observation-noise variance.  Factorized as in
    :func:`kernel_regression`, as :math:`(K + \text{diag\_reg}\,I)^{+} = ZZ^\top`, so that
    :math:`\Sigma = K_{\rm test,test} - (K_{\rm test,train}Z)(K_{\rm test,train}Z)^\top`
    is symmetric (exactly) and PSD to rounding.

    Parameters
    ----------
    K_train : array ``(n, n)`` or ``(n, k, n, k)``, symmetric PSD
    Y : array ``(n, k)``
    K_test_train : array ``(n_test, n)`` or ``(n_test, k, n, k)``
    K_test_test : array ``(n_test, n_test)`` or ``(n_test, k, n_test, k)``, symmetric
    diag_reg : float >= 0

    Returns
    -------
    mean : array ``(n_test, k)``
    cov : array ``(n_test, n_test)`` (shared by the ``k`` outputs), or
        ``(n_test, k, n_test, k)`` for a 4-D kernel
    """
    p = _problem(K_train, Y, None, K_test_train, None, need_test=True)
    K_tt, r_tt = _kernel_matrix(K_test_test, "K_test_test", p.blocks)
    _square(K_tt, tuple(numpy.shape(K_test_test)), "K_test_test")
    if K_tt.shape[0] != p.K_tx.shape[0]:
        raise ValueError(f"K_test_test must be the kernel of the {p.test_shape[0]} test points "
                         f"of K_test_train, got shape {tuple(numpy.shape(K_test_test))}")
    K_tt, _ = _symmetric(K_tt, "K_test_test", r_tt)
    inverse = _PseudoInverse(p, checks.positive_float("diag_reg", diag_reg, allow_zero=True))
    V = inverse.half_solve(p.K_tx.T)                    # Z^T K_train,test, (rank, N_test)
    mean = V.T @ inverse.half_solve(p.Y)                # (K_test,train Z)(Z^T Y)
    cov = K_tt - V.T @ V
    cov = 0.5 * (cov + cov.T)         # exactly symmetric (a new array: CuPy's += does not
                                      # guard against its output overlapping an input)
    N_test = K_tt.shape[0]
    return mean.reshape(p.test_shape), cov.reshape(_kernel_shape(N_test, p.blocks))


# ----- the spectral building blocks (public: tinyntk.spectrum is built on them) --------
def eigh(K):
    r"""``(lam, U)``: the eigendecomposition :math:`K = U\,\mathrm{diag}(\lambda)\,U^\top`
    that :func:`gd_mse` uses, eigenvalues ascending (as ``numpy.linalg.eigh``).

    ``K`` is checked as ``K_train`` is (square, finite, symmetric and PSD to its rounding
    level; see "Rounding" in the module docstring), a 4-D ``(n, k, n, k)`` kernel becomes
    the ``(n·k, n·k)`` matrix (row ``i·k + a`` is example ``i``, output ``a``), and
    eigenvalues float64 does not resolve (:math:`\le N\epsilon_{64}\lambda_{\max}`)
    are exactly 0.  float64 arrays of the active backend.
    """
    K2, r = _kernel_matrix(K, "K", either=True)
    _square(K2, tuple(numpy.shape(K)), "K")
    K2, k_max = _symmetric(K2, "K", r)
    lam, U = B.get_backend().xp.linalg.eigh(K2)
    return _checked_spectrum(lam, r * k_max, "K"), U


def decay(lam, lr, n, t, flow=False):
    r"""The factor :math:`(1 - \eta\lambda_i/n)^t` by which GD with the kernel frozen
    multiplies the residual's component along an eigenvector of eigenvalue
    :math:`\lambda_i` in ``t`` steps (:math:`e^{-\eta\lambda_i t/n}` for the flow).

    ``lam`` is a 1-D array of eigenvalues (e.g. from :func:`eigh`), ``n`` the number of
    training examples (the :math:`1/n` of eq. (2.1)), ``t`` as in :func:`gd_mse`.
    Returns ``(N,)`` for a scalar ``t``, ``(len(t), N)`` for an array: float64 of the
    active backend.  Computed with ``log1p``, so a factor near 1 is not rounded to 1,
    and exactly (signs included) where :math:`\eta\lambda_i/n \ge 1`.
    """
    xp = B.get_backend().xp
    lam = B.asarray(checks.real_array(lam, "lam"), dtype=numpy.float64)
    if lam.ndim != 1 or not checks.all_finite(lam):
        raise ValueError(f"lam must be a 1-D array of finite eigenvalues, got shape "
                         f"{tuple(lam.shape)}")
    a = checks.positive_float("lr", lr) / checks.positive_int("n", n)
    times, scalar = _times(t, bool(flow))
    factors, _ = _filters(xp.maximum(lam, 0.0), a, times, bool(flow))
    return factors[0] if scalar else factors


# ----- checked inputs -----------------------------------------------------------------
@dataclass
class _Problem:
    """The checked inputs as matrices: ``K (N, N)``, ``Y, R0 = f0 - Y (N, c)``,
    ``K_tx (N_test, N)``, ``F0_test (N_test, c)``; ``N = n`` and ``c = k`` for an
    ``(n, n)`` kernel, ``N = n·k`` and ``c = 1`` for an ``(n, k, n, k)`` one."""
    K: object
    Y: object
    R0: object
    K_tx: object
    F0_test: object
    n: int                 # training examples (the 1/n of eq. (2.1))
    blocks: int | None     # k of an (n, k, n, k) kernel, None for (n, n)
    r: float               # rounding level of K's dtype (module docstring)
    k_max: float           # max |K_ij|
    train_shape: tuple
    test_shape: tuple | None

    def outputs(self, R, S, scalar):
        """``f_train = Y + R`` and ``f_test = F0_test - K_tx S``, each ``(T, N, c)`` stacked
        over times, in the caller's shapes."""
        T = R.shape[0]
        f_train = R + self.Y
        f_test = None
        if self.K_tx is not None:
            N, c = S.shape[1], S.shape[2]
            KS = self.K_tx @ S.transpose(1, 0, 2).reshape(N, T * c)   # one product for all t
            f_test = self.F0_test - KS.reshape(KS.shape[0], T, c).transpose(1, 0, 2)
            f_test = f_test.reshape((T,) + self.test_shape)
        f_train = f_train.reshape((T,) + self.train_shape)
        if scalar:
            return f_train[0], (None if f_test is None else f_test[0])
        return f_train, f_test


def _problem(K_train, Y, f0_train, K_test_train, f0_test, need_test=False) -> _Problem:
    K, r = _kernel_matrix(K_train, "K_train", either=True)
    shape = tuple(numpy.shape(K_train))
    blocks = shape[1] if len(shape) == 4 else None
    _square(K, shape, "K_train")
    K, k_max = _symmetric(K, "K_train", r)
    n = shape[0]
    Y = _outputs(Y, "Y", n, blocks)
    train_shape = tuple(Y.shape)
    R0 = -Y if f0_train is None else _outputs(f0_train, "f0_train", n, blocks, Y.shape) - Y
    K_tx = F0_test = test_shape = None
    if K_test_train is None:
        if need_test:
            raise TypeError("K_test_train is required: the (n_test, n) kernel between test "
                            "and training points")
        if f0_test is not None:
            raise ValueError("f0_test was given without K_test_train: pass the (n_test, n) "
                             "kernel between test and training points too")
    else:
        K_tx, _ = _kernel_matrix(K_test_train, "K_test_train", blocks)
        if K_tx.shape[1] != K.shape[0]:
            raise ValueError(f"K_test_train must be {_shape_name(blocks, 'n_test')} with "
                             f"n = {n}{'' if blocks is None else f', k = {blocks}'} (the "
                             f"training points of K_train), got shape "
                             f"{tuple(numpy.shape(K_test_train))}")
        n_test = numpy.shape(K_test_train)[0]
        test_shape = (n_test, train_shape[1])
        F0_test = (B.get_backend().xp.zeros(test_shape) if f0_test is None else
                   _outputs(f0_test, "f0_test", n_test, blocks, test_shape))
        F0_test = F0_test.reshape(K_tx.shape[0], -1)
    c = 1 if blocks is not None else train_shape[1]
    return _Problem(K, Y.reshape(-1, c), R0.reshape(-1, c), K_tx, F0_test, n, blocks, r,
                    k_max, train_shape, test_shape)


def _shape_name(blocks, rows="n") -> str:
    return f"({rows}, n)" if blocks is None else f"({rows}, k, n, k)"


def _kernel_shape(N, blocks) -> tuple:
    return (N, N) if blocks is None else (N // blocks, blocks, N // blocks, blocks)


def _kernel_matrix(K, name, blocks=None, either=False):
    """``K`` as a finite float64 matrix of the active backend, ``(rows, cols)``, and the
    rounding level of its dtype (:func:`_rounding`).  A 4-D kernel ``(a, k, b, k)`` becomes ``(a·k, b·k)``.
    ``either``: 2-D or 4-D (the training kernel); else the kind ``K_train`` fixed, 2-D for
    ``blocks=None`` and 4-D with ``k = blocks`` outputs otherwise."""
    K = checks.real_array(K, name)
    shape = tuple(K.shape)
    if either:
        ok = len(shape) == 2 or (len(shape) == 4 and shape[1] == shape[3])
        expected = "a 2-D (n, n) kernel, or a 4-D (n, k, n, k) one from " \
                   "empirical_ntk(..., output='full')"
    elif blocks is None:
        ok, expected = len(shape) == 2, "2-D, as K_train is"
    else:
        ok = len(shape) == 4 and shape[1] == shape[3] == blocks
        expected = f"4-D (rows, {blocks}, cols, {blocks}), as K_train is"
    if not ok or K.size == 0:
        raise ValueError(f"{name} must be {expected} (non-empty), got shape {shape}")
    if not checks.all_finite(K):
        raise ValueError(f"{name} contains NaN or inf")
    kind = numpy.dtype(K.dtype)
    eps = float(numpy.finfo(kind if kind.kind == "f" else numpy.float64).eps)
    rows = shape[0] * (1 if len(shape) == 2 else shape[1])
    return B.asarray(K, dtype=numpy.float64).reshape(rows, -1), _rounding(eps)


def _square(K, shape, name):
    """``ValueError`` unless the kernel of ``shape`` (as given) is square."""
    if K.shape[0] != K.shape[1] or (len(shape) == 4 and shape[:2] != shape[2:]):
        raise ValueError(f"{name} must be square, (n, n) or (n, k, n, k), got shape {shape}")


EPS64 = float(numpy.finfo(numpy.float64).eps)


def _rounding(eps) -> float:
    """The relative rounding level ``r`` of a dtype with machine epsilon ``eps``."""
    return min(1e-3, max(1e-10, 100.0 * eps))


def _symmetric(K, name, r, block=64):
    """``(K, max|K_ij|)``: ``K`` if it is exactly symmetric, ``(K + K^T)/2`` if it is to the
    rounding level ``r``, else an error.

    The upper triangle is compared with the lower one in blocks of ``block`` rows: half the
    work of ``K - K.T``, a small temporary, and ~2.5x faster at N = 2048 (fewer cache misses
    on the transposed side)."""
    xp = B.get_backend().xp
    N = K.shape[0]
    gap = 0.0
    for s in range(0, N, block):
        D = K[s:s + block, s:] - K[s:, s:s + block].T
        gap = max(gap, float(xp.abs(D).max()))
    scale = max(float(K.max()), -float(K.min()))
    if gap == 0.0:
        return K, scale
    if gap > r * scale:
        raise ValueError(f"{name} is not symmetric: max|K - K^T| = {gap:.3g} against max|K| = "
                         f"{scale:.3g}; a kernel matrix is symmetric (pass (K + K.T) / 2 if "
                         "the asymmetry is rounding from a lower precision)")
    S = K + K.T
    S *= 0.5
    return S, scale


def _outputs(A, name, n, blocks, shape=None):
    """``A`` as a finite float64 ``(n, k)`` array of the active backend (``(n,)`` is read as
    ``(n, 1)``), of the given ``shape`` if one is given."""
    A = checks.real_array(A, name)
    given = tuple(A.shape)
    if A.ndim == 1:
        A = A.reshape(-1, 1)
    expected = shape or (n, blocks if blocks is not None else (A.shape[1] if A.ndim == 2 else "k"))
    if A.ndim != 2 or tuple(A.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {tuple(expected)} (n, k) to match the "
                         f"kernels, got {given}")
    if not checks.all_finite(A):
        raise ValueError(f"{name} contains NaN or inf")
    return B.asarray(A, dtype=numpy.float64)


def _times(t, flow):
    """``(times, scalar)``: ``t`` as a 1-D float64 host array, and whether it was a scalar."""
    if isinstance(t, (bool, numpy.bool_)) or isinstance(t, (str, bytes)):
        raise checks.ArgumentTypeError(f"t must be a number of steps or a 1-D array of them, "
                                       f"got {t!r}")
    try:
        times = B.to_numpy(t) if hasattr(t, "dtype") else numpy.asarray(t)
        if times.dtype.kind == "O":                # e.g. 10**30, beyond int64
            times = times.astype(numpy.float64)
    except (ValueError, TypeError, OverflowError) as exc:
        raise TypeError(f"t must be a number or a 1-D array of numbers, got {t!r} ({exc})") \
            from None
    if times.dtype.kind not in "fiu":
        raise TypeError(f"t must be real numbers (steps or times), got dtype {times.dtype}")
    if times.ndim > 1:
        raise ValueError(f"t must be a scalar or a 1-D array of times, got shape {times.shape}")
    scalar = times.ndim == 0
    times = times.astype(numpy.float64).reshape(-1)
    if numpy.isnan(times).any():
        raise ValueError("t contains NaN")
    if (times < 0).any():
        raise ValueError(f"t must be >= 0, got {times.min():g}")
    if not flow and (numpy.isfinite(times) & (times != numpy.floor(times))).any():
        bad = times[numpy.isfinite(times) & (times != numpy.floor(times))][0]
        raise ValueError(f"t counts GD steps and must be whole numbers (or numpy.inf), got "
                         f"{bad:g}; use flow=True for the continuous-time gradient flow")
    return times, scalar


# ----- the eigendecomposition path ----------------------------------------------------
def _spectral(p: _Problem, a, times, flow):
    """``(R, S)`` at every time from one eigendecomposition ``K = U diag(lam) U^T``:
    the residual ``R(t) = U diag(decay_t) U^T R0`` and ``S(t) = U diag(gain_t) U^T R0``
    (so that ``f_test = f0_test - K_tx S``), each ``(T, N, c)``."""
    xp = B.get_backend().xp
    lam, U = xp.linalg.eigh(p.K)
    lam = _checked_spectrum(lam, p.r * p.k_max, "K_train")
    lam_max = float(lam[-1])
    if not flow and a * lam_max >= 2.0:
        if numpy.isinf(times).any():
            raise ValueError(f"t = inf: GD with lr = {a * p.n:.4g} >= 2n/λ_max = "
                             f"{2.0 / lam_max * p.n:.4g} has no limit (it oscillates or diverges "
                             "along K's top eigendirection); take a smaller lr")
        _warn_step(a, lam_max, p.n)
    decay, gain = _filters(lam, a, times, flow)          # (T, N) each
    C = U.T @ p.R0                                                     # (N, c)
    N, c, T = C.shape[0], C.shape[1], times.size
    R = U @ (decay.T[:, :, None] * C[:, None, :]).reshape(N, T * c)
    R = R.reshape(N, T, c).transpose(1, 0, 2)
    S = None
    if p.K_tx is not None:
        S = U @ (gain.T[:, :, None] * C[:, None, :]).reshape(N, T * c)
        S = S.reshape(N, T, c).transpose(1, 0, 2)
    return R, S


def _filters(lam, a, times, flow):
    r"""``(decay, gain)``, ``(T, N)``: :math:`(1-a\lambda)^t` and
    :math:`(1 - (1-a\lambda)^t)/\lambda` for GD, :math:`e^{-a\lambda t}` and
    :math:`(1 - e^{-a\lambda t})/\lambda` for the flow; at :math:`\lambda = 0` they are 1
    and :math:`a t` (0 at ``t = inf``: the null space is not fitted)."""
    xp = B.get_backend().xp
    t = xp.asarray(times)[:, None]
    finite = xp.isfinite(t)
    t0 = xp.where(finite, t, 0.0)                  # inf handled below, by its limit
    positive = lam > 0
    lam1 = xp.where(positive, lam, 1.0)            # no division by 0
    if flow:
        log_q = -a * lam                           # decay = exp(t log q)
    else:
        # 1 - a lam in (-inf, 1]: log1p where it is positive, the power itself elsewhere
        small = a * lam < 1.0
        log_q = xp.log1p(-a * xp.where(small, lam, 0.0))
    decay = xp.exp(t0 * log_q)
    one_minus = -xp.expm1(t0 * log_q)              # 1 - q^t without cancellation
    if not flow:
        q = 1.0 - a * lam
        power = xp.sign(q) ** (t0 % 2) * xp.abs(q) ** t0
        decay = xp.where(small, decay, power)
        one_minus = xp.where(small, one_minus, 1.0 - power)
    gain = xp.where(positive, one_minus / lam1, a * t0)
    decay = xp.where(finite, decay, xp.where(positive, 0.0, 1.0))
    gain = xp.where(finite, gain, xp.where(positive, 1.0 / lam1, 0.0))
    return decay, gain


def _checked_spectrum(lam, rounding, name):
    """The eigenvalues with those float64 does not resolve set to 0; ``ValueError`` for a
    non-PSD kernel (an eigenvalue below ``-N · rounding``, ``rounding = r · max|K_ij|``)."""
    xp = B.get_backend().xp
    N = lam.shape[0]
    scale = float(xp.abs(lam).max())
    lowest = float(lam[0])
    if lowest < -N * rounding:
        raise ValueError(
            f"{name} is not positive semi-definite: its smallest eigenvalue is {lowest:.4g} "
            f"({lowest / scale:.3g} of its largest |eigenvalue| {scale:.4g}), below the rounding "
            f"level -{N * rounding:.3g} (N·r·max|K_ij| for N = {N} in its dtype). A kernel "
            "(NTK, NNGP, Gram) matrix is PSD: check how it was computed (in float64 if it "
            "came out of float32 rounding), or regularize it with a small multiple of the "
            "identity (K + c·I; diag_reg= in kernel_regression and gp_posterior)")
    return xp.where(lam > N * EPS64 * scale, lam, 0.0)


def _warn_step(a, lam_max, n):
    warnings.warn(
        f"lr = {a * n:.4g} is not below 2n/λ_max(K) = {2.0 * n / lam_max:.4g} (λ_max = "
        f"{lam_max:.4g}, n = {n}): GD on this kernel does not converge (it oscillates or "
        f"diverges) along its top eigendirection; "
        f"take lr < {2.0 * n / lam_max:.4g}, e.g. n/λ_max = {n / lam_max:.4g}",
        RuntimeWarning, stacklevel=4)


# ----- the recursion path -------------------------------------------------------------
def _recursion(p: _Problem, a, times):
    """``(R, S)`` at the requested steps by iterating ``R <- R - a K R`` and summing
    ``S <- S + a R`` (so ``f_test = f0_test - K_tx S``); ``(T, N, c)`` each."""
    xp = B.get_backend().xp
    lam_max = _lambda_max(p.K)
    if a * lam_max >= 2.0:
        _warn_step(a, lam_max, p.n)
    N, c = p.R0.shape
    steps = times.astype(numpy.int64)
    R_out = xp.empty((steps.size, N, c))
    S_out = xp.empty((steps.size, N, c)) if p.K_tx is not None else None
    order = numpy.argsort(steps, kind="stable")
    R, KR = p.R0.copy(), xp.empty((N, c))
    S = xp.zeros((N, c)) if S_out is not None else None
    done = 0
    for i in order:
        for _ in range(done, int(steps[i])):
            if S is not None:
                S += a * R                         # a Σ_{s<t} r_s
            xp.matmul(p.K, R, out=KR)
            KR *= a
            R -= KR                                # r_{s+1} = (I - a K) r_s
        done = int(steps[i])
        R_out[i] = R
        if S_out is not None:
            S_out[i] = S
    return R_out, S_out


def _lambda_max(K) -> float:
    """The largest eigenvalue of the symmetric ``K`` from matrix-vector products only:
    Lanczos (SciPy's ``eigsh``) on NumPy, power iteration where ``eigsh`` fails (a zero
    ``K``) and on CuPy (whose released ``eigsh`` returns NaN for matrices of rank below its
    Lanczos basis, cupy/cupy#5001); dense ``eigvalsh`` for ``N <= 64``."""
    xp = B.get_backend().xp
    N = K.shape[0]
    if N <= 64:
        return float(xp.linalg.eigvalsh(K)[-1])
    if xp is numpy:
        from scipy.sparse.linalg import ArpackError, eigsh
        v0 = numpy.random.default_rng(0).standard_normal(N)
        try:
            return float(eigsh(K, k=1, which="LA", tol=1e-6, v0=v0,
                               return_eigenvectors=False)[0])
        except ArpackError:
            pass
    return _power_lambda_max(K)


def _power_lambda_max(K, iters=300, tol=1e-6) -> float:
    """Power iteration with a fixed start: the Rayleigh quotient of the dominant
    eigenvector (λ_max for a PSD ``K``), to relative ``tol``; 0 for a zero ``K``."""
    xp = B.get_backend().xp
    v = xp.asarray(numpy.random.default_rng(0).standard_normal(K.shape[0]))
    v /= xp.linalg.norm(v)
    lam = 0.0
    for _ in range(iters):
        w = K @ v
        norm = float(xp.linalg.norm(w))
        if norm == 0.0:
            return 0.0
        new = float(v @ w)
        v = w / norm
        if abs(new - lam) <= tol * abs(new):
            return new
        lam = new
    return lam


# ----- solves -------------------------------------------------------------------------
class _PseudoInverse:
    r""":math:`(K + \rho I)^{+} = Z Z^\top`: ``Z = L^{-T}`` from a Cholesky factorization, or
    :math:`U_r \Lambda_r^{-1/2}` on the numerical range of ``K`` when ``K`` is singular."""

    def __init__(self, p: _Problem, diag_reg):
        xp = B.get_backend().xp
        N = p.K.shape[0]
        A = p.K + diag_reg * xp.eye(N) if diag_reg else p.K
        self.L = _cholesky(A)
        if self.L is None:
            lam, U = xp.linalg.eigh(A)
            lam = _checked_spectrum(lam, p.r * (p.k_max + diag_reg), "K_train + diag_reg·I")
            keep = lam > 0
            self.U, self.scale = U[:, keep], 1.0 / xp.sqrt(lam[keep])

    def half_solve(self, M):
        """``Z^T M``."""
        if self.L is not None:
            return _solve_triangular(self.L, M, trans=False)
        return (self.U.T @ M) * self.scale[:, None]

    def solve(self, M):
        """``Z Z^T M``."""
        H = self.half_solve(M)
        if self.L is not None:
            return _solve_triangular(self.L, H, trans=True)
        return self.U @ (H * self.scale[:, None])


def _cholesky(A):
    r"""The lower Cholesky factor of ``A``, or ``None`` when ``A`` is not positive definite
    to float64 rounding: the factorization fails, or a pivot
    :math:`L_{ii} \le (N\epsilon_{64}\max_i A_{ii})^{1/2}`.  The diagonal itself is
    tested (not its square): CuPy does not raise on a failed factorization, it returns
    the partial factor, whose failed pivot is non-positive (LAPACK ``potrf``)."""
    xp = B.get_backend().xp
    try:
        L = xp.linalg.cholesky(A)
    except numpy.linalg.LinAlgError:
        return None
    pivots = xp.diagonal(L)
    if not checks.all_finite(pivots):
        return None
    if float(pivots.min()) <= math.sqrt(A.shape[0] * EPS64 * float(xp.diagonal(A).max())):
        return None
    return L


def _solve_triangular(L, M, trans):
    """``L^{-1} M`` (``trans=False``) or ``L^{-T} M``, for the lower triangular ``L``."""
    if B.get_backend().xp is numpy:
        from scipy.linalg import solve_triangular
    else:  # pragma: no cover - needs a GPU
        from cupyx.scipy.linalg import solve_triangular
    return solve_triangular(L, M, lower=True, trans=1 if trans else 0, check_finite=False)
