r"""Diagnostics: the quantities the proofs reason about, measured on a real net.

A *probe* is a small object with a ``name``, an optional ``start(state)`` called once
before training, and ``__call__(state)`` returning a host value (a float or a list of
floats) that :func:`tinyntk.train` appends to ``history[name]`` at every recorded step.
``state`` is a :class:`TrainState`.  Every probe can also be used on its own, and each
has a plain function twin that works on any net.

On a linearized model (:func:`tinyntk.linearize`) every probe measures that model:
``Distance``, ``DistanceFro`` and ``InBall`` its weights, ``GradNorms`` and
``Lemma41Ratio`` its gradient (the transposed Jacobian of W(0) applied to its own
residual), ``NTKDrift`` its kernel (which never moves: 0).  ``ActivationFlips`` and :func:`activation_flips` raise ``TypeError``: the
model's σ′ masks are frozen at W(0) by construction.

Measured cost of one probe call, in GD steps (n = 256, m = 4096, L = 2, NumPy on a
shared 2-core CPU; median of 4 interleaved step/probe pairs):

================  =====================  ======================  ======================
probe             name                   one call                at ``record_every=10``
================  =====================  ======================  ======================
GradNorms         ``grad_norm``          1.2 steps (fwd + bwd)   +12%
Lemma41Ratio      ``lemma41_ratio``      shared with GradNorms   +12% (+0% if both)
Distance          ``distance``           0.24 steps              +2%
DistanceFro       ``distance_fro``       0.27 steps              +3%
InBall            ``in_ball``            0.21 steps              +2%
ActivationFlips   ``flips``              0.30 steps (forward)    +3%
NTKDrift          ``ntk_drift``          1.05 steps (n_s = 256)  +11%
EigenProjections  ``eigen_projections``  below timing noise      +0% (start: 0.8 steps)
================  =====================  ======================  ======================

(EigenProjections: 3 directions, a ``3 × n`` matrix-vector product on the outputs the loop
already has; its ``start`` is one empirical NTK and one ``n × n`` eigendecomposition.
Measured with the median of 4 interleaved runs of 20 steps, CPU time.)

The gradient and NTK probes cost about one step each: record them every 50 steps (or
give :class:`NTKDrift` a smaller ``max_examples``) to stay within a few percent.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy

from . import backend as B
from . import checks
from . import stability
from .linearized import LinearizedNet, jacobian_net


@dataclass
class TrainState:
    """What a probe may look at: the net now, its initial weights, the data, the step."""

    net: object
    X: object
    Y: object
    W0: list
    V0: object
    loss: object          # the loss object in use
    step: int = 0
    loss_value: float = float("nan")   # L(W^{(t)}) on the whole training set
    outputs: object = None    # f(X) on the whole training set at this step (read-only), or None


def spectral_norm_diff(A, A0, v=None, tol: float = 1e-6, max_iter: int = 100):
    r""":math:`\|A - A_0\|_2` by power iteration on :math:`(A-A_0)^\top (A-A_0)`.

    Each iteration applies :math:`(A-A_0)^\top (A-A_0)` to ``v`` with
    :func:`_apply_gram_of_difference`, which never forms the whole difference.  ``v``
    warm-starts the iteration (pass the vector returned by the previous call: along a
    training run the top singular vector moves slowly and two to four iterations suffice).
    Stops when the estimate changes by less than ``tol`` relative.  Returns ``(norm, v)``;
    ``norm`` is a Python float and a lower bound that converges to the spectral norm.
    """
    xp = B.get_backend().xp
    if v is None:
        v = xp.asarray(numpy.random.default_rng(0).standard_normal(A.shape[1]), dtype=A.dtype)
    v = v / xp.linalg.norm(v)
    estimate = 0.0
    for _ in range(max_iter):
        w = _apply_gram_of_difference(A, A0, v)   # (A - A0)^T (A - A0) v
        norm_w = float(xp.linalg.norm(w))
        new = float(numpy.sqrt(norm_w))     # ||(A-A0)^T(A-A0) v|| -> sigma_max^2
        if norm_w == 0.0:
            return 0.0, v
        v = w / norm_w
        if abs(new - estimate) <= tol * new:
            estimate = new
            break
        estimate = new
    return estimate, v


def _apply_gram_of_difference(A, A0, v):
    r"""``(A - A0)^T (A - A0) v``, reading ``A`` and ``A0`` once each.

    On the CPU the difference is formed a block of rows at a time, in a scratch block
    small enough (512 KiB) to stay in cache:
    :math:`\sum_b D_b^\top (D_b v)` with :math:`D_b = A_b - A_{0,b}`.  Reading the
    weights twice instead of four times (``A @ v``, ``A0 @ v``, ``A.T @ u``, ``A0.T @ u``)
    makes an iteration, which is bound by memory traffic, 1.3-2.5x cheaper (measured at
    m = 4096, bench/step.py).  On a GPU, where one big kernel beats many small ones, the
    block is the whole matrix (one weight-sized temporary per call there).
    """
    xp = B.get_backend().xp
    rows = max(1, (1 << 19) // (A.shape[1] * A.itemsize)) if xp is numpy else A.shape[0]
    D = xp.empty((min(rows, A.shape[0]), A.shape[1]), dtype=A.dtype)
    w = xp.zeros_like(v)
    for i in range(0, A.shape[0], rows):
        D_b = D[: min(rows, A.shape[0] - i)]
        xp.subtract(A[i:i + rows], A0[i:i + rows], out=D_b)     # rows i.. of A - A0
        w += D_b.T @ (D_b @ v)
    return w


class Distance:
    r"""Trajectory length :math:`\|W_l^{(t)} - W_l^{(0)}\|_2` for every hidden layer
    (Lemma 4.2), by warm-started power iteration (:func:`spectral_norm_diff`)."""

    name = "distance"

    def __init__(self, tol: float = 1e-6, max_iter: int = 100):
        self.tol, self.max_iter = tol, max_iter
        self._v = None

    def start(self, state: TrainState) -> None:
        self._v = [None] * state.net.L

    def state_dict(self) -> dict:
        """The warm-start vectors, ``{"v<l>": host array}`` (what a checkpoint keeps, so a
        resumed run records the same values)."""
        return {f"v{l}": B.to_numpy(v) for l, v in enumerate(self._v or []) if v is not None}

    def load_state_dict(self, state: dict) -> None:
        for key, v in state.items():
            self._v[int(key[1:])] = B.asarray(v)

    def __call__(self, state: TrainState) -> list:
        if self._v is None:
            self.start(state)
        out = []
        for l, (W, W0) in enumerate(zip(state.net.W, state.W0)):
            norm, self._v[l] = spectral_norm_diff(W, W0, self._v[l], self.tol, self.max_iter)
            if not numpy.isfinite(norm):        # overflow (huge weights): never record NaN
                norm, self._v[l] = stability.exact_norm_diff(W, W0)
            out.append(norm)
        return out


# ----- helpers shared by the probes ----------------------------------------------------
def _hidden_grads(state: TrainState):
    """``(L(W), grads)`` of the hidden layers at the current weights, computed once per
    recorded step and shared by every probe that needs it (cached on ``state``).  The
    forward cache and the gradient arrays are allocated once per run and reused."""
    from .losses import get

    memo = getattr(state, "_grad_memo", None)
    if memo is not None and memo[0] == state.step and memo[1] is state.net:
        return memo[2], memo[3]
    net, loss = state.net, get(state.loss)
    buffers = getattr(state, "_grad_buffers", None)
    if buffers is None or buffers[1].W[0].dtype != net.dtype:
        buffers = (True, net.zeros_like_weights(), None)
    out, cache = net.forward(state.X, cache=buffers[0], check=False)
    E = loss.grad(out, state.Y, out_array=buffers[2])
    grads = net.backward(cache, E, grads=buffers[1], need_V=False)
    value = float(loss.value(out, state.Y))
    state._grad_buffers = (cache, grads, E)
    state._grad_memo = (state.step, net, value, grads)
    return value, grads


def _fro(A) -> float:
    xp = B.get_backend().xp
    return float(xp.linalg.norm(A))


def _masks(W, X) -> list:
    """σ′ of every hidden layer for weights ``W`` (list of arrays): boolean ``(n, m)`` each."""
    xp = B.get_backend().xp
    h, masks = X, []
    for W_l in W:
        z = h @ W_l.T
        masks.append(z > 0)
        h = xp.maximum(z, 0, out=z)
    return masks


# ----- gradient norms, Lemma 4.1 --------------------------------------------------------
def grad_norms(net, X, Y, loss="square") -> list:
    r"""Per hidden layer, :math:`\|\nabla_{W_l} L(W)\|_F` (host floats, ``l = 1..L``).

    One forward and one backward pass over all of ``X`` (the cost of one GD step).
    """
    from .losses import loss_and_grad

    _, grads = loss_and_grad(net, X, Y, loss=loss, need_V=False)
    return [_fro(g) for g in grads.W]


class GradNorms:
    r"""Probe ``"grad_norm"``: :math:`\|\nabla_{W_l} L(W^{(t)})\|_F` for every hidden layer.

    Cost: one full-batch forward + backward pass per call, measured 1.2 GD steps
    (+12% when recorded every 10 steps; see the module docstring); shared with
    :class:`Lemma41Ratio` when both are used (computed once per recorded step).
    """

    name = "grad_norm"

    def __call__(self, state: TrainState) -> list:
        _, grads = _hidden_grads(state)
        return [_fro(g) for g in grads.W]


def lemma41_ratio(net, X, Y, phi: float, loss="square") -> float:
    r"""Lemma 4.1's gradient lower bound as a measured ratio,

    .. math::  \frac{\|\nabla L(W)\|_F^2}{m\,\phi\,L(W)/(k n^2)},

    with :math:`\|\nabla L(W)\|_F^2 = \sum_{l=1}^L \|\nabla_{W_l} L(W)\|_F^2` (hidden layers).
    The lemma says this is bounded below by an absolute constant inside
    :math:`B(W^{(0)}, \tau)` (with high probability); the constant is set to 1 here, so
    the ratio *is* the constant the net achieves.  ``nan`` when :math:`L(W) = 0`.
    """
    from .losses import loss_and_grad

    value, grads = loss_and_grad(net, X, Y, loss=loss, need_V=False)
    return _lemma41(value, grads, net, X.shape[0], phi)


def _lemma41(value, grads, net, n, phi) -> float:
    sq = sum(_fro(g) ** 2 for g in grads.W)
    denom = net.m * float(phi) * float(value) / (net.k * n * n)
    return sq / denom if denom > 0 else float("nan")


class Lemma41Ratio:
    r"""Probe ``"lemma41_ratio"``: :func:`lemma41_ratio` along training,
    :math:`\|\nabla L(W^{(t)})\|_F^2 / (m\phi L(W^{(t)})/(kn^2))` (constant set to 1).

    Cost: one forward + backward pass (shared with :class:`GradNorms`).
    """

    name = "lemma41_ratio"

    def __init__(self, phi: float):
        self.phi = float(phi)
        if not self.phi > 0:
            raise ValueError(f"phi must be positive (Assumption 3.2), got {phi!r}")

    def __call__(self, state: TrainState) -> float:
        value, grads = _hidden_grads(state)
        return _lemma41(value, grads, state.net, state.X.shape[0], self.phi)


# ----- trajectory length, Lemma 4.2 ----------------------------------------------------
def distance_fro(net, W0) -> list:
    r""":math:`\|W_l - W_l^{(0)}\|_F` for every hidden layer (host floats)."""
    out = []
    for W, W_init in zip(net.W, W0):
        total = 0.0
        for r in range(0, W.shape[0], 1024):              # row blocks: no m x m temporary
            D = W[r:r + 1024] - W_init[r:r + 1024]
            total += float((D * D).sum())
        out.append(float(numpy.sqrt(total)))
    return out


class DistanceFro:
    r"""Probe ``"distance_fro"``: :math:`\|W_l^{(t)} - W_l^{(0)}\|_F` per hidden layer.

    Cost: one pass over the weights and their initial values, :math:`O(Lm^2)`
    memory-bound: measured 0.27 of a GD step at n = 256, m = 4096."""

    name = "distance_fro"

    def __call__(self, state: TrainState) -> list:
        return distance_fro(state.net, state.W0)


def distance(net, W0, tol: float = 1e-6, max_iter: int = 100) -> list:
    r""":math:`\|W_l - W_l^{(0)}\|_2` (spectral) for every hidden layer, by power iteration."""
    return [spectral_norm_diff(W, W_init, None, tol, max_iter)[0] for W, W_init in zip(net.W, W0)]


def lemma_4_2_bound(n: int, m: int, phi: float, k: int = 1, loss0: float | None = None) -> float:
    r"""Lemma 4.2's bound on the trajectory length,
    :math:`\|W_l^{(t)} - W_l^{(0)}\|_2 \le \sqrt{k n^2 \log(n) / (m\phi)}`, with the
    :math:`O(\cdot)` constant set to 1.

    Which of the paper's two forms: section 4.1 telescopes (4.1) into
    :math:`\sqrt{C k n^2 L(W^{(0)}) / (m\phi)}`, and Lemma 4.2 states it with
    :math:`\log n` in place of :math:`L(W^{(0)})`, because Lemma 4.3 bounds the initial
    loss by :math:`\tilde O(1)` with probability :math:`1 - O(n^{-1})`.  By default this
    follows the lemma as stated (``log n``), so it does not depend on the run; pass the
    run's initial loss as ``loss0`` for the telescoped form, which is the sharper one for a
    given initialization (``loss0 = log n`` gives the lemma's value).
    """
    if loss0 is None:
        loss0 = numpy.log(n)
    else:
        loss0 = checks.positive_float("loss0", loss0, allow_zero=True)
    return float(numpy.sqrt(k * n * n * loss0 / (m * float(phi))))


def in_ball(net, W0, tau: float, tol: float = 1e-6) -> bool:
    r"""Whether :math:`W \in B(W^{(0)}, \tau)`, section 4.1's perturbation region:
    :math:`\max_l \|W_l - W_l^{(0)}\|_2 \le \tau`."""
    return max(distance(net, W0, tol)) <= float(tau)


class InBall:
    r"""Probe ``"in_ball"``: 1.0 while :math:`\max_l \|W_l^{(t)} - W_l^{(0)}\|_2 \le \tau`
    (section 4.1's :math:`B(W^{(0)}, \tau)`), else 0.0.

    Cost: warm-started power iterations, matrix-vector products with the weights:
    measured 0.21 of a GD step at n = 256, m = 4096 (+2% at ``record_every=10``).  The spectral norm is a converging lower bound (see
    :func:`spectral_norm_diff`), so a point within ``tol`` relative of the boundary may
    read as inside."""

    name = "in_ball"

    def __init__(self, tau: float, tol: float = 1e-6):
        self.tau = float(tau)
        self._distance = Distance(tol=tol)

    def start(self, state: TrainState) -> None:
        self._distance.start(state)

    def __call__(self, state: TrainState) -> float:
        return 1.0 if max(self._distance(state)) <= self.tau else 0.0


# ----- activation patterns ---------------------------------------------------------------
def activation_flips(net, W0, X) -> list:
    r"""Per hidden layer, the fraction of (example, neuron) pairs whose ReLU pattern
    :math:`\sigma'(W_l x_{l-1,i})` differs between ``net`` and the weights ``W0``."""
    _refuse_frozen_masks(net)
    X = net.check_input(X)
    now, then = _masks(net.W, X), _masks(W0, X)
    return [_flip_fraction(a, b) for a, b in zip(now, then)]


def _flip_fraction(a, b) -> float:
    xp = B.get_backend().xp
    return float(xp.count_nonzero(a != b)) / a.size


def _refuse_frozen_masks(model) -> None:
    if isinstance(model, LinearizedNet):
        raise TypeError(
            "activation flips do not apply to a linearized model: its sigma' masks are frozen "
            "at W(0) by construction (0 flips). For the patterns a ReLU net with its weights "
            "would have, measure tinyntk.ReLUNet(W=lin.W, V=lin.V) against lin.net0.W")


class ActivationFlips:
    r"""Probe ``"flips"``: per hidden layer, the fraction of σ′ entries on the training
    set that differ from those at initialization (the masks of step 0 are stored by
    ``start``, ``L`` boolean ``(n, m)`` arrays).

    Cost: one forward pass into reused buffers, measured 0.3 of a GD step (+3% at
    ``record_every=10``)."""

    name = "flips"

    def __init__(self):
        self._masks0, self._cache = None, True

    def start(self, state: TrainState) -> None:
        _refuse_frozen_masks(state.net)
        self._masks0 = _masks(state.W0, state.X)
        self._cache = True

    def __call__(self, state: TrainState) -> list:
        if self._masks0 is None:
            self.start(state)
        _, self._cache = state.net.forward(state.X, cache=self._cache, check=False)   # buffers reused
        return [_flip_fraction(a, b) for a, b in zip(self._cache.masks, self._masks0)]


# ----- kernel drift ----------------------------------------------------------------------
def ntk_drift(net, net0, X, Theta0=None) -> float:
    r""":math:`\|\Theta_t - \Theta_0\|_F / \|\Theta_0\|_F` with the empirical NTK
    (:func:`tinyntk.kernels.empirical_ntk`) of ``net`` and ``net0`` on ``X``.
    ``Theta0`` may be given instead of recomputing it from ``net0``."""
    from .kernels import empirical_ntk

    if Theta0 is None:
        Theta0 = empirical_ntk(net0, X)
    Theta = empirical_ntk(net, X)
    return _fro(Theta - Theta0) / _fro(Theta0)


class NTKDrift:
    r"""Probe ``"ntk_drift"``: :math:`\|\Theta_t - \Theta_0\|_F/\|\Theta_0\|_F`, the
    empirical NTK on the training set (or its first ``max_examples`` rows), with
    :math:`\Theta_0` computed in ``start``.

    Cost: a forward pass, ``L`` backpropagated signal layers and ``2L`` Grams on the
    subset, :math:`O(n_s L m^2 + n_s^2 L m)`: measured 1.05 GD steps per call at
    :math:`n_s = n = 256`, m = 4096 (+11% at ``record_every=10``); with ``max_examples``
    well below ``n`` it is proportionally less."""

    name = "ntk_drift"

    def __init__(self, max_examples: int | None = 256):
        self.max_examples = max_examples
        self._theta0 = None

    def _X(self, state):
        return state.X if self.max_examples is None else state.X[: self.max_examples]

    def start(self, state: TrainState) -> None:
        from .kernels import empirical_ntk

        net0 = jacobian_net(state.net, state.W0, state.V0)
        self._theta0 = empirical_ntk(net0, self._X(state))     # (a linearized model's: constant)

    def __call__(self, state: TrainState) -> float:
        if self._theta0 is None:
            self.start(state)
        return ntk_drift(state.net, None, self._X(state), Theta0=self._theta0)


class EigenProjections:
    r"""Probe ``"eigen_projections"``: the residual's projections
    :math:`u_i^\top (f_{W(t)}(X) - Y)` on chosen eigenvectors of the empirical NTK at
    :math:`W(0)` (:func:`tinyntk.spectrum.empirical`; ``which`` indexes its eigenvalues,
    0 = the largest), a list of ``len(which)`` floats per record.

    In the kernel regime they follow :math:`(1 - \eta\lambda_i/n)^t\,u_i^\top r(0)`
    (:meth:`tinyntk.spectrum.Spectrum.predicted_projections` of ``probe.spectrum``).
    ``spectrum`` may be given (e.g. of :math:`\Theta_\infty`, or one computed once for
    several runs); else ``start`` computes it from ``W(0)``, with ``V`` when
    ``train_output`` (as the run trains).  ``which=None`` records every direction.

    Cost: one eigendecomposition of the ``(n·k)²`` kernel before training, and one
    ``(len(which) × n·k)`` matrix-vector product per record on the outputs the loop has
    just computed (``state.outputs``; a forward pass only where the loop has none).
    """

    name = "eigen_projections"

    def __init__(self, which=(0,), train_output: bool = False, spectrum=None):
        self.which = which
        self.train_output = bool(train_output)
        self.spectrum = spectrum
        self._U = None

    def start(self, state: TrainState) -> None:
        from . import spectrum as spectra

        if self.spectrum is None:
            net0 = jacobian_net(state.net, state.W0, state.V0)
            self.spectrum = spectra.empirical(net0, state.X, train_output=self.train_output)
        idx = self.spectrum.indices(self.which)
        self._U = self.spectrum.vectors[:, idx].T                # (p, N)

    def __call__(self, state: TrainState) -> list:
        if self._U is None:
            self.start(state)
        out = state.outputs
        if out is None:
            out = state.net.forward(state.X, check=False)
        R = (out - state.Y).reshape(self._U.shape[1], -1)        # (N, c)
        return B.to_numpy(self._U @ R).ravel().tolist()


# ----- rates -----------------------------------------------------------------------------
def linear_rate(losses, steps=None, floor=None) -> float:
    r"""The fitted per-step contraction factor :math:`q` of a loss curve,
    :math:`L_t \approx C q^t`: least squares of :math:`\log L_t` against the step :math:`t`,
    over the points with :math:`L_t >` ``floor`` (default :math:`10^{-10} L_0`, where
    round-off takes over), and :math:`q = e^{\text{slope}}`.  ``steps`` are the recorded
    steps (default ``0, 1, 2, ...``).  ``nan`` with fewer than two usable points."""
    losses = numpy.asarray([float(v) for v in losses])
    steps = numpy.arange(len(losses)) if steps is None else numpy.asarray(steps, dtype=float)
    if floor is None:
        floor = 1e-10 * losses[0] if len(losses) else 0.0
    keep = numpy.isfinite(losses) & (losses > floor)
    if keep.sum() < 2:
        return float("nan")
    slope = numpy.polyfit(steps[keep], numpy.log(losses[keep]), 1)[0]
    return float(numpy.exp(slope))


def kernel_predicted_rate(lr: float, Theta0, n: int) -> float:
    r"""The per-step loss contraction GD would have on the linearized model,
    :math:`(1 - \eta\,\lambda_{\min}(\Theta_0)/n)^2`.

    With the square loss of eq. (2.1), :math:`L = \frac1{2n}\|r\|^2` and
    :math:`\nabla_W L = \frac1n J^\top r`, so one GD step on the linearized model gives
    :math:`r \leftarrow (I - \eta\Theta_0/n)\, r` with :math:`\Theta_0 = JJ^\top` the
    *unscaled* empirical NTK at initialization (:func:`~tinyntk.kernels.empirical_ntk`,
    hidden layers, ``k = 1``).  The residual then shrinks per step by at most
    :math:`1 - \eta\lambda_{\min}/n` and the loss, its square, by the square of that —
    provided :math:`\eta\lambda_{\max}(\Theta_0)/n \le 1`, so that no eigen-direction
    overshoots.  Compare with :func:`linear_rate` of a run (a measured factor at or
    below this bound means the kernel regime explains the speed).

    ``Theta0`` is the kernel matrix ``(n, n)``, or directly its smallest eigenvalue (a
    number).
    """
    from .kernels import lambda_min

    if numpy.ndim(Theta0) == 0:              # reads .ndim, so no host copy of a CuPy array
        lam = float(Theta0)
    else:
        lam = lambda_min(B.asarray(Theta0))
    return float((1.0 - float(lr) * lam / int(n)) ** 2)
