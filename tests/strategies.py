"""Hypothesis strategies for tinyntk's tests (in the style of minitorch's tests/strategies.py).

Everything here draws *host* NumPy float64 arrays; a test turns them into a
:class:`tinyntk.ReLUNet` on whatever backend is active with :meth:`Problem.net`.

The ReLU kink
-------------
tinyntk's convention, written down once: ``σ(z) = max(0, z)`` and **σ′(0) = 0** (the masks
are ``z > 0``).  The loss is not differentiable where a pre-activation that depends on the
weights crosses 0, and a central difference taken across the kink returns the average of
the two one-sided slopes, which agrees with *no* mask convention (neither σ′(0) = 0 nor
σ′(0) = 1).  Hypothesis does draw exact zeros (0.0 is one of its favourite floats), so the
gradient-check strategy :func:`kink_free_problems` keeps every pre-activation that the
weights can move at least ``margin`` away from 0 (``assume``), and additionally checks that
no ±``eps`` perturbation of any single weight flips any mask: then the loss is, on the
segment the central difference samples, a smooth function of that weight (a quadratic for
the square loss) and the finite difference measures the hand-written gradient.

One exception is harmless and kept: if an example's input row to layer ``l`` is exactly 0
(all units of layer ``l - 1`` dead, or a zero input row), its pre-activations in layer ``l``
are exactly 0 *for every perturbation* that keeps the lower masks, so the loss does not
depend on them near the drawn weights and σ′(0) = 0 is the right derivative.  Those entries
are excluded from the margin and covered by the mask-stability check.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from hypothesis import HealthCheck, assume, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinyntk as tn

#: Smallest |pre-activation| (among those the weights can move) in gradient checks.
MARGIN = 1e-3
#: Step of the central differences in the gradient tests (see test_gradients.py).
EPS = 1e-4

dims = st.integers(min_value=1, max_value=4)


def fixture_settings(max_examples: int) -> settings:
    """``@settings`` for a ``@given`` test that also takes the ``backend`` fixture.

    The fixture only selects the backend (the same for every example), so Hypothesis's
    warning about function-scoped fixtures not being reset between examples is moot;
    ``too_slow`` is suppressed because the kink filter makes drawing deliberately costly.
    """
    return settings(max_examples=max_examples,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


#: Nonzero magnitudes below this are flushed to 0 by :func:`bounded_floats`.
TINY = 1e-8


def _flush_tiny(x: float) -> float:
    return 0.0 if abs(x) < TINY else x


def bounded_floats(bound: float = 1.0):
    """Finite float64 in ``[-bound, bound]``: no NaN, no inf; 0 or at least ``TINY`` in size.

    Hypothesis likes extreme floats such as 7e-199.  A loss built from a handful of such
    factors underflows float64 (a square of 1e-199 is 0), and then a central difference
    measures underflow, not the backward pass.  Flushing ``|x| < 1e-8`` to 0 keeps every
    product of the at most ~12 factors in a depth-4 net's squared loss above 1e-200.
    Exact zeros are kept: they are the interesting edge case (dead units, zero rows).
    """
    return st.floats(min_value=-bound, max_value=bound, allow_nan=False,
                     allow_infinity=False, allow_subnormal=False, width=64).map(_flush_tiny)


def matrices(rows: int, cols: int, bound: float = 1.0):
    """A ``(rows, cols)`` float64 array of :func:`bounded_floats`."""
    return hnp.arrays(np.float64, (rows, cols), elements=bounded_floats(bound))


def pm1_labels(n: int):
    """``(n, 1)`` labels in {-1, +1} (for the logistic loss)."""
    return hnp.arrays(np.float64, (n, 1), elements=st.sampled_from([-1.0, 1.0]))


@dataclass(frozen=True)
class Shape:
    n: int   # examples
    d: int   # input dimension
    m: int   # width
    k: int   # outputs
    L: int   # hidden layers


@st.composite
def shapes(draw, k=None):
    """Small shapes: n, d, m, k, L each from 1 to 4 (``k`` fixed if given)."""
    return Shape(n=draw(dims), d=draw(dims), m=draw(dims),
                 k=k if k is not None else draw(dims), L=draw(dims))


@dataclass
class Problem:
    """A net (host arrays), a batch and targets, for one loss."""

    W: list
    V: np.ndarray
    X: np.ndarray
    Y: np.ndarray
    loss: str = "square"
    shape: Shape = field(default=None)

    def net(self, dtype="float64") -> tn.ReLUNet:
        """A ReLUNet on the active backend (a copy of the drawn arrays)."""
        return tn.ReLUNet(W=self.W, V=self.V, dtype=dtype)

    def __repr__(self):   # what Hypothesis prints for a falsifying example
        return (f"Problem(loss={self.loss!r}, shape={self.shape},\n W={self.W!r},\n V={self.V!r},"
                f"\n X={self.X!r},\n Y={self.Y!r})")


@st.composite
def weights(draw, shape: Shape, bound: float = 1.0):
    """``(W, V)`` float64 host arrays with the shapes of ``shape``.

    Hidden layers are drawn in ``[-bound, bound]`` and scaled by ``sqrt(2/fan_in)``, the
    scale of Algorithm 1 (up to the fan-in of ``W_1``), so activations stay O(1) at depth 4
    instead of growing like ``m^L``; V is drawn in ``[-bound, bound]``.
    """
    fan_in = [shape.d] + [shape.m] * (shape.L - 1)
    W = [draw(matrices(shape.m, f, bound)) * np.sqrt(2.0 / f) for f in fan_in]
    V = draw(matrices(shape.k, shape.m, bound))
    return W, V


@st.composite
def problems(draw, loss: str = "square", shape: Shape | None = None):
    """A (net, X, Y) :class:`Problem` without any kink condition (forward-pass tests)."""
    if shape is None:
        shape = draw(shapes(k=1 if loss == "logistic" else None))
    W, V = draw(weights(shape))
    X = draw(matrices(shape.n, shape.d))
    Y = draw(pm1_labels(shape.n)) if loss == "logistic" else draw(matrices(shape.n, shape.k))
    return Problem(W=W, V=V, X=X, Y=Y, loss=loss, shape=shape)


def preactivations(W, X):
    """``[z_1, ..., z_L]`` and the inputs ``[x_0, ..., x_{L-1}]`` of each layer (NumPy)."""
    h, zs, ins = X, [], []
    for W_l in W:
        ins.append(h)
        z = h @ W_l.T
        zs.append(z)
        h = np.maximum(z, 0.0)
    return zs, ins


def movable_min_abs_preactivation(W, X) -> float:
    """min |z| over the pre-activations whose input row is not exactly zero (inf if none)."""
    zs, ins = preactivations(W, X)
    best = np.inf
    for z, x in zip(zs, ins):
        live = np.any(x != 0.0, axis=1)
        if live.any():
            best = min(best, float(np.abs(z[live]).min()))
    return best


def masks_stable(W, X, eps: float) -> bool:
    """True if no ±eps change of any single hidden weight flips any ReLU mask."""
    ref = [z > 0 for z in preactivations(W, X)[0]]
    for l, W_l in enumerate(W):
        for idx in np.ndindex(W_l.shape):
            for sign in (1.0, -1.0):
                Wp = [w.copy() for w in W]
                Wp[l][idx] += sign * eps
                for a, b in zip(ref, preactivations(Wp, X)[0]):
                    if not np.array_equal(a, b > 0):
                        return False
    return True


@st.composite
def kink_free_problems(draw, loss: str = "square", margin: float = MARGIN, eps: float = EPS):
    """A :class:`Problem` whose pre-activations stay away from the ReLU kink.

    ``assume(min |pre-activation| > margin)`` over the pre-activations the weights can
    move, and ``assume`` that no ±``eps`` single-weight perturbation flips a mask (see the
    module docstring).  Use this for every finite-difference comparison.
    """
    p = draw(problems(loss=loss))
    assume(movable_min_abs_preactivation(p.W, p.X) > margin)
    assume(masks_stable(p.W, p.X, eps))
    return p
