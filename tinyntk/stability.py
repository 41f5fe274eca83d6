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
"""
from __future__ import annotations

import math

import numpy

from . import backend as B
from .linearized import jacobian_net


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
    factor = 8.0 if loss_name == "logistic" else 2.0
    return factor * n / lam, lam


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
