r"""How large a step size gradient descent can take: the top eigenvalue of the empirical NTK.

For the square loss :math:`L = \frac1{2n}\|f(W) - Y\|^2` the Gauss–Newton part of the
Hessian is :math:`J^\top J / n` (``J`` the Jacobian of the ``n·k`` outputs with respect
to the trained weights), whose nonzero eigenvalues are those of the empirical NTK
:math:`\Theta = J J^\top`, for ``k = 1``

.. math::  \Theta = \sum_l (B_l B_l^\top) \odot (H_{l-1} H_{l-1}^\top)

(``B_l`` the signals backpropagated to layer ``l`` for a unit output error, ``H_{l-1}``
the layer's inputs).  Near a minimum, GD is stable only for
:math:`\eta < 2n / \lambda_{\max}(\Theta)`; for the logistic loss (:math:`\ell'' \le 1/4`)
the bound is four times larger.

:func:`ntk_lambda_max` finds :math:`\lambda_{\max}` by power iteration on
:math:`J^\top J` without forming Θ: ``J p`` is a forward-mode pass (:meth:`ReLUNet.jvp`, the
directional derivative of the outputs) and ``J^T u`` is the backward pass of :class:`ReLUNet` with
output error ``u``.  Memory is that of one training step; time is about
``2 · iterations`` steps.

:func:`auto_lr` is :func:`tinyntk.train`'s default step size (``lr="auto"``): half that
largest stable step, from the empirical NTK at the weights it is given.
"""
from __future__ import annotations

import math

import numpy

from . import backend as B
from . import checks, kernels
from .linearized import jacobian_net

# sup of the loss's second derivative in the output, l'': GD near a minimum is stable for
# lr < 2n / (l'' lambda_max(NTK)).  The logistic loss's l'' = s(1 - s) <= 1/4.
CURVATURE = {"square": 1.0, "logistic": 0.25}


def largest_stable_lr(n: int, lam: float, loss_name: str = "square") -> float:
    r""":math:`2n/(\ell''\,\lambda_{\max})`: the step size above which GD on the linearized
    dynamics no longer contracts along the NTK's top eigenvector (``2n/λ_max`` for the
    square loss, ``8n/λ_max`` for the logistic loss; a loss not in :data:`CURVATURE` is
    taken as square)."""
    return 2.0 * n / (CURVATURE.get(loss_name, 1.0) * lam)


def ntk_lambda_max(net, X, train_output: bool = False, iters: int = 50, tol: float = 1e-4,
                   seed=0) -> float:
    r""":math:`\lambda_{\max}` of the empirical NTK :math:`\Theta = J J^\top` of ``net`` on
    ``X`` (hidden layers, plus ``V`` if ``train_output``), by power iteration."""
    xp = B.get_backend().xp
    net = jacobian_net(net)             # a linearized model's Jacobian: its net's at W(0)
    _, cache = net.forward(X, cache=True, check=False)
    rng = numpy.random.default_rng(seed)
    P = net.zeros_like_weights()
    for a in list(P.W) + ([P.V] if train_output else []):
        a[...] = xp.asarray(rng.standard_normal(a.shape), dtype=a.dtype)

    def norm(G):
        parts = list(G.W) + ([G.V] if train_output else [])
        return math.sqrt(sum(float(xp.vdot(a, a)) for a in parts))

    scale = norm(P)
    for a in list(P.W) + [P.V]:
        a /= scale
    estimate = 0.0
    for _ in range(iters):
        U = net.jvp(cache, P.W, P.V if train_output else None)   # J p
        G = net.backward(cache, U, need_V=train_output)          # J^T J p
        lam = norm(G)                                            # ||J^T J p||, ||p|| = 1
        if not math.isfinite(lam) or lam == 0.0:
            return lam
        for a in list(G.W) + [G.V]:
            a /= lam
        P = G
        if abs(lam - estimate) <= tol * lam:
            return lam
        estimate = lam
    return estimate


def stability_bound(net, X, loss_name: str = "square", train_output: bool = False,
                    max_n: int = 2048, max_flops: float = 1e12, iters: int = 30):
    """``(bound, lambda_max)``: GD is stable for ``lr < bound`` near these weights;
    ``(None, None)`` when it would be costly (``n > max_n``, or more than ``max_flops``
    for ``iters`` power iterations: ~2 s for n = 2048, m = 1024, L = 2 on 2 CPU cores) or the estimate is not finite.
    A 1e-3 relative estimate is enough for a suggestion."""
    n = X.shape[0]
    per_iteration = 6.0 * n * net.m * (net.d + (net.L - 1) * net.m + net.k)
    if n > max_n or per_iteration * iters > max_flops:
        return None, None
    try:
        lam = ntk_lambda_max(net, X, train_output=train_output, iters=iters, tol=1e-3)
    except (ArithmeticError, ValueError, MemoryError):
        return None, None
    if not math.isfinite(lam) or lam <= 0:
        return None, None
    return largest_stable_lr(n, lam, loss_name), lam


def auto_lr(net, X, loss: str = "square", train_output: bool = False, batch_size=None,
            max_exact: int = 2048):
    r"""``(lr, lambda_max)``: :func:`tinyntk.train`'s default step size, half the largest
    step that is stable near these weights,

    .. math::  \eta = \tfrac12 \cdot \frac{2n}{\ell''\,\lambda_{\max}(\Theta_0)}
               = \frac{n}{\lambda_{\max}(\Theta_0)} \ \text{(square loss)},\quad
               \frac{4n}{\lambda_{\max}(\Theta_0)} \ \text{(logistic loss, } \ell'' \le 1/4).

    At this step the frozen-kernel dynamics :math:`f \leftarrow f - (\eta/n)\Theta_0(f - Y)`
    contract every eigendirection of :math:`\Theta_0` (the top one by
    :math:`1 - \eta\lambda_{\max}/n = 0` for the square loss), so training stays in the
    kernel regime the library studies.  Because :math:`\lambda_{\max}(\Theta_0)` grows
    like ``m/k``, this is Theorem 3.3's scale :math:`\eta = c\,k/(L^2 m)` with a ``c``
    (:func:`tinyntk.theory.paper_constant`) that hardly changes with the width: about
    10–30 for ``L = 1..4`` on :func:`tinyntk.data.sphere` data, for the square loss.

    For SGD with minibatches of ``batch_size`` = B, ``n`` above becomes ``B``:
    :math:`\eta = B/\lambda_{\max}(\Theta_0)`.  A step on a minibatch S moves
    :math:`f_S` by :math:`-(\eta/B)\Theta_{SS}(f_S - Y_S)`, and :math:`\lambda_{\max}` of
    the principal submatrix :math:`\Theta_{SS}` is at most that of :math:`\Theta_0`
    (Cauchy interlacing), so this step is half-stable for every minibatch; it grows with
    B as Theorem 3.8's :math:`\eta = kB\phi/(n^3 m\log m)` does.

    :math:`\Theta_0` is the empirical NTK of the weights that are trained: the hidden
    layers, plus ``V`` with ``train_output``; for ``k > 1`` the whole ``(n·k, n·k)``
    kernel (the hidden layers couple the outputs).  Its :math:`\lambda_{\max}` is exact
    (:func:`tinyntk.kernels.empirical_ntk` and one eigenvalue, cost about that of one
    GD step plus :math:`O((nk)^2)` memory) when ``n·k <= max_exact``; above, it is found
    by power iteration (:func:`ntk_lambda_max`, relative tolerance 1e-6, each iteration
    about two GD steps), whose estimate never exceeds :math:`\lambda_{\max}`.

    Raises ``ValueError`` for a loss other than ``"square"`` and ``"logistic"`` (its
    curvature is unknown: give ``lr``) and for a dead net (a zero NTK: no step size helps).
    """
    loss = getattr(loss, "name", loss)
    if loss not in CURVATURE:
        raise ValueError(f"lr='auto' knows the curvature of the losses {sorted(CURVATURE)}, "
                         f"not of {loss!r}: give the step size lr explicitly")
    X = net.check_input(X)
    n, k = X.shape[0], net.k
    per_step = n if batch_size is None else min(n, checks.positive_int("batch_size", batch_size))
    if n * k <= max_exact:
        K = kernels.empirical_ntk(net, X, train_output=bool(train_output),
                                  output="full" if k > 1 else "mean")
        lam = kernels.lambda_max(K.reshape(n * k, n * k))
    else:
        lam = ntk_lambda_max(net, X, train_output=bool(train_output), iters=200, tol=1e-6)
    if not (math.isfinite(lam) and lam > 0):
        raise ValueError(f"lr='auto': the empirical NTK at these weights is {lam} (largest "
                         f"eigenvalue): every ReLU is inactive on this data (a dead net); "
                         f"re-initialize with another seed or a larger width m")
    return 0.5 * largest_stable_lr(per_step, lam, loss), lam


def exact_norm_diff(A, A0):
    """``(‖A − A0‖₂, top right singular vector)`` from an SVD of the difference scaled to
    max entry 1: slow, but finite wherever the norm is (the power iteration of
    :func:`tinyntk.diagnostics.spectral_norm_diff` overflows for weights beyond ~1e150)."""
    xp = B.get_backend().xp
    D = A - A0
    s = float(xp.abs(D).max())
    if s == 0.0 or not math.isfinite(s):
        return (0.0 if s == 0.0 else float("inf")), None
    _, sv, Vt = xp.linalg.svd(D / s, full_matrices=False)
    return float(sv[0]) * s, Vt[0]
