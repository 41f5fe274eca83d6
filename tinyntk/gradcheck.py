r"""A central-difference gradient checker for any net, loss and data.

For every weight entry :math:`\theta`, the hand-written gradient is compared with

.. math::  \frac{L(\theta + \varepsilon) - L(\theta - \varepsilon)}{2\varepsilon},

and the error of an entry is :math:`|g_{fd} - g_{bp}| / \max(|g_{fd}|, |g_{bp}|, s)`
where the floor :math:`s = 10^{-3}\max_j |g_{bp,j}|` keeps entries that are (nearly) zero
in both from dividing by zero.  Why this floor: in float64 the central difference carries
a rounding error of about :math:`10^{-16} L/\varepsilon` (:math:`10^{-12}L` at the default
:math:`\varepsilon = 10^{-4}`), so relative errors of entries smaller than
:math:`10^{-3}` of the largest would measure rounding, not the backward pass.

**Kinks.**  While no activation changes, the net is a polynomial in any single weight and
the central difference is exact up to its :math:`O(\varepsilon^2)` truncation error.  When
a pre-activation lies within the stencil, :math:`\theta \pm \varepsilon` sit on two
sides of a ReLU kink and the difference quotient averages two slopes: the "error" is then
that of the finite difference, not of the backward pass (ReLU has no derivative at 0).  So
every perturbation's masks σ′ are compared with those at :math:`\theta`; an entry whose
:math:`+\varepsilon` or :math:`-\varepsilon` flips one is reported as a :class:`Kink`, apart,
and does not count towards ``max_error`` or the verdict.  (With the masks unchanged at
both ends, every pre-activation is linear in :math:`\theta` along the stencil, layer by
layer, so none can cross zero and cross back in between: the test is exact.)  A smaller
``eps`` moves most kinks out of the stencil.

**Verdict.**  ``passed`` means ``max_error < rtol`` over the non-kink entries.  The default
``rtol = 1e-6`` leaves room for the truncation error :math:`\varepsilon^2
\ell^{(3)}/(6\ell')`, about :math:`10^{-8}`-:math:`10^{-7}` relative at
:math:`\varepsilon = 10^{-4}` for weights of order one, and for the rounding error above;
a wrong backward pass (a dropped mask, a missing factor) shows errors of order one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy

from . import backend as B
from . import checks
from . import losses
from .linearized import jacobian_net
from .losses import loss_and_grad


@dataclass
class Kink:
    """An entry whose ±eps perturbation flips a ReLU mask: its difference quotient
    straddles a kink, so its error says nothing about the backward pass."""

    where: tuple              # (parameter name, index), e.g. ("W[0]", (3, 1))
    numeric: float            # the central difference there
    analytic: float           # the hand-written gradient there
    error: float              # their relative error (not counted in max_error)


@dataclass
class GradCheckResult:
    max_error: float          # worst relative error over the checked entries that are not kinks
    where: tuple              # (parameter name, index) of that entry
    numeric: float            # the central difference there
    analytic: float           # the hand-written gradient there
    checked: int              # number of entries compared, kinks included
    min_abs_preactivation: float   # distance of the nearest pre-activation to the kink
    kinks: list = field(default_factory=list)   # the Kink entries, apart
    rtol: float = 1e-6        # the tolerance of the verdict

    @property
    def passed(self) -> bool:
        """The verdict: every entry compared away from a kink is within ``rtol``."""
        return self.max_error < self.rtol

    def __str__(self):
        text = (f"{'passed' if self.passed else 'FAILED'}: max relative error "
                f"{self.max_error:.3e} (rtol {self.rtol:.0e}) at {self.where[0]}"
                f"{list(self.where[1])} (numeric {self.numeric:.6e}, analytic "
                f"{self.analytic:.6e}); {self.checked} entries; "
                f"min |pre-activation| {self.min_abs_preactivation:.3e}")
        if self.kinks:
            worst = max(self.kinks, key=lambda kink: kink.error)
            text += (f"; {len(self.kinks)} entries at a ReLU kink, not counted (their ±eps "
                     f"flips a mask; worst {worst.where[0]}{list(worst.where[1])}, "
                     f"error {worst.error:.2e}): not errors of the backward pass, "
                     f"a smaller eps checks them")
        return text


def _masks_at_weights(net, X):
    """``(cache, masks, min_pre)``: a forward cache (for the perturbed passes to reuse),
    copies of the masks σ′ at the current weights and the distance of the nearest
    pre-activation to the kink; ``(None, None, inf)`` for a model whose masks do not move
    with its weights (a linearized model: frozen at W(0))."""
    if jacobian_net(net) is not net:
        return None, None, math.inf
    xp = B.get_backend().xp
    _, cache = net.forward(X, cache=True, check=False)
    masks = [mask.copy() for mask in cache.masks]
    pre = [xp.abs(cache.h[l - 1] @ W.T).min() for l, W in enumerate(net.W, start=1)]
    return cache, masks, float(min(B.to_numpy(p) for p in pre))


def check_gradients(net, X, Y, loss="square", eps: float = 1e-4, max_entries: int | None = None,
                    seed=0, rtol: float = 1e-6) -> GradCheckResult:
    """Compare the backward pass of ``net`` with central differences, entry by entry.

    ``max_entries`` checks a random subset of that many entries per parameter (drawn from
    ``seed``) instead of all of them.  Entries whose ±``eps`` flips a ReLU mask are
    returned apart, in ``result.kinks``, and ``result.passed`` is the verdict on the others
    at ``rtol`` (see the module docstring).  The net is left unchanged.
    """
    loss = losses.get(loss)
    X = net.check_input(X)
    Y = net.check_targets(Y, X.shape[0])
    loss.check_targets(Y)
    eps = checks.positive_float("eps", eps)
    rtol = checks.positive_float("rtol", rtol)
    if max_entries is not None:
        max_entries = checks.positive_int("max_entries", max_entries)
    seed = checks.seed("seed", seed)
    _, grads = loss_and_grad(net, X, Y, loss)
    cache, masks, min_pre = _masks_at_weights(net, X)
    xp = B.get_backend().xp
    rng = numpy.random.default_rng(seed)

    analytic = {f"W[{l}]": B.to_numpy(g) for l, g in enumerate(grads.W)}
    analytic["V"] = B.to_numpy(grads.V)
    scale = max(float(numpy.abs(a).max()) for a in analytic.values())
    floor = max(1e-3 * scale, numpy.finfo(float).tiny)

    def value():
        """The loss at the current weights, and whether some mask differs from W's."""
        if masks is None:
            return float(loss.value(net.forward(X, check=False), Y)), False
        out, _ = net.forward(X, cache=cache, check=False)
        flipped = any(bool(xp.any(now != then)) for now, then in zip(cache.masks, masks))
        return float(loss.value(out, Y)), flipped

    # V lies after the last ReLU: its entries never flip a mask, so `where` is always set.
    result = GradCheckResult(0.0, None, math.nan, math.nan, 0, min_pre, rtol=rtol)
    params = [(f"W[{l}]", W_l) for l, W_l in enumerate(net.W)] + [("V", net.V)]
    for name, A in params:
        host = B.to_numpy(A).copy()
        indices = list(numpy.ndindex(host.shape))
        if max_entries is not None and len(indices) > max_entries:
            pick = rng.choice(len(indices), size=max_entries, replace=False)
            indices = [indices[i] for i in pick]
        for idx in indices:
            original = host[idx]
            A[idx] = original + eps
            plus, flipped_plus = value()
            A[idx] = original - eps
            minus, flipped_minus = value()
            A[idx] = original
            numeric = (plus - minus) / (2 * eps)
            exact = float(analytic[name][idx])
            err = abs(numeric - exact) / max(abs(numeric), abs(exact), floor)
            result.checked += 1
            if flipped_plus or flipped_minus:
                result.kinks.append(Kink((name, idx), numeric, exact, err))
            elif err > result.max_error or result.where is None:
                result.max_error, result.where = err, (name, idx)
                result.numeric, result.analytic = numeric, exact
    return result
