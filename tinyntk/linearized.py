r"""The linearized network: the first-order Taylor model of a :class:`ReLUNet` at :math:`W(0)`.

.. math::

    f^{\rm lin}_W(x) = f_{W(0)}(x)
        + \sum_{l=1}^L \Big\langle \frac{\partial f(x)}{\partial W_l}\Big|_{W(0)},\;
                                   W_l - W_l(0) \Big\rangle
        + \Big\langle \frac{\partial f(x)}{\partial V}\Big|_{W(0)},\; V - V(0) \Big\rangle

(Lee et al., 2019, section 2.2).  Its Jacobian is the net's at :math:`W(0)` whatever ``W``
is, so its NTK is frozen at :math:`\Theta_0` and GD on its square loss follows
:func:`tinyntk.predict.gd_mse` exactly, with ``K = empirical_ntk(net, X)`` for ``k = 1``
(``train_output=True`` adding the ``V`` term) and ``empirical_ntk(net, X, output="full")``
for ``k > 1``, whose outputs the hidden layers couple.  Trained by the
same :func:`tinyntk.train`, it separates what the kernel regime explains from what the
real net does beyond it.

Forward pass: :math:`f(W(0))` plus the JVP along :math:`\Delta W = W - W(0)`, with the
σ′ masks :math:`D_l` and hidden outputs ``h0[l]`` of the net **at** :math:`W(0)` (the
*primal* pass)::

    h0[l], D_l = the net's forward pass at W(0)                    # x_{l,i}(W(0)); D_l = masks[l-1]
    dh_1 = D_1 * (X @ dW_1.T)                                      # dh_1 = D_1 (dW_1 x)
    dh_l = D_l * (h0[l-1] @ dW_l.T + dh_{l-1} @ W_l(0).T)          # dh_l = D_l (dW_l h_{l-1} + W_l(0) dh_{l-1})
    out  = h0[L] @ V.T + dh_L @ V(0).T                             # f(W(0)) + dV h_L + V(0) dh_L

(Indices as in :mod:`tinyntk.network`: ``h0`` has ``L+1`` entries with ``h0[0] = X``;
a subscript ``_l`` is the paper's layer ``l``, held at list index ``l-1`` in the code.)

(``h0[L] @ V.T`` is :math:`V(0) h_L + \Delta V h_L`, i.e. :math:`f(W(0)) + \Delta V h_L`.)
This is :meth:`ReLUNet.jvp` of the net at :math:`W(0)`.

Backward pass: :math:`f^{\rm lin}` is linear in ``W``, so its gradient is the net's
gradient at :math:`W(0)` for the same output error ``E``: the backward pass of
:class:`ReLUNet` on the primal cache, with :math:`W(0)`'s weights and masks.
:func:`tinyntk.loss_and_grad` is therefore exact for this model too.

Cost and memory: the primal pass is one forward pass of the net; the cache keeps it
(``L`` arrays ``(n, m)`` and the masks, O(n·m·L)) with a copy of its batch, and a later
forward pass on an equal batch (compared entry by entry, O(n·d)) reuses it, as full-batch
training does at every step.  The tangent then costs two products per layer where the net
has one: about two forward passes of the net (``bench/step.py``, section "linearized").
The backward pass costs what the net's does.  ``W - W(0)`` is formed one layer at a time
in one reused buffer.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import backend as B
from .network import Cache, Grads, ReLUNet, check_output


@dataclass
class LinearizedCache(Cache):
    """A :class:`~tinyntk.network.Cache` of the primal pass at :math:`W(0)` (``h``,
    ``masks``), the model's outputs ``out``, the signals' scratch ``delta``, plus
    ``scratch`` (one more ``(n, m)`` array for the tangent), ``X0``, a copy of the batch
    the primal pass was computed for (``None`` before the first), and ``center``, the net
    it was computed with."""

    scratch: object = None
    X0: object = None
    center: object = None

    def holds_primal_of(self, X, center) -> bool:
        """Whether ``h`` and ``masks`` are the primal pass of ``center`` (the net at W(0))
        on a batch equal to ``X``.  On CuPy the comparison costs one device-to-host sync
        (the training loop syncs once per step for its loss anyway)."""
        if self.center is not center or self.X0 is None or self.X0.shape != X.shape:
            return False
        return bool(B.get_backend().xp.array_equal(self.X0, X))

    def remember(self, X, center) -> None:
        """Keep a copy of the batch whose primal pass ``h`` and ``masks`` now hold, and
        point ``h[0]`` at it: the caller may change ``X`` afterwards."""
        if self.X0 is None or self.X0.shape != X.shape:
            self.X0 = X.copy()
        else:
            B.get_backend().xp.copyto(self.X0, X)
        self.h[0], self.center = self.X0, center


class LinearizedNet:
    """The first-order Taylor model of a net at its current weights (module docstring).

    Made by :func:`linearize`.  It has the attributes of a :class:`ReLUNet` (``W``,
    ``V``, ``d``, ``m``, ``k``, ``L``, ``dtype``, ``__call__``, ``forward``, ``backward``,
    ...: the protocol :data:`tinyntk.network.MODEL_PROTOCOL`), so :func:`tinyntk.train`,
    the optimizers, the probes and checkpoints take it as they take a net.  ``W`` and
    ``V`` are the trained weights, starting as copies of the net's; ``net0`` is a frozen
    copy of the net, the point :math:`W(0)` of the expansion.  The net given is never
    changed.
    """

    def __init__(self, net: ReLUNet):
        if not isinstance(net, ReLUNet):
            raise TypeError(f"linearize takes a tinyntk.ReLUNet, got {type(net).__name__}")
        self.net0 = net.copy()                      # W(0), V(0): never trained
        self.W = [w.copy() for w in self.net0.W]
        self.V = self.net0.V.copy()
        self._dW = None                             # one buffer for W_l - W_l(0), any layer

    # ----- sizes, as a net's -------------------------------------------------------------
    d = property(lambda self: self.net0.d)
    m = property(lambda self: self.net0.m)
    k = property(lambda self: self.net0.k)
    L = property(lambda self: self.net0.L)
    dtype = property(lambda self: self.net0.dtype)

    def __repr__(self) -> str:
        return (f"LinearizedNet(d={self.d}, m={self.m}, k={self.k}, L={self.L}, "
                f"dtype={self.dtype.name}, backend={B.get_backend().name!r})")

    def copy(self) -> "LinearizedNet":
        """An independent copy: the same expansion point and the current weights."""
        other = LinearizedNet(self.net0)
        for mine, theirs in zip(self.W + [self.V], other.W + [other.V]):
            theirs[...] = mine
        return other

    # ----- forward: f(W(0)) + J (W - W(0)) -------------------------------------------------
    def __call__(self, X):
        """:math:`f^{\\rm lin}_W(X)`, ``(n, k)``."""
        return self.forward(X)

    def forward(self, X, cache=False, check=True):
        """The forward pass of the module docstring; with ``cache=True`` also the
        :class:`LinearizedCache`, which may be passed back to reuse its arrays and, for an
        equal batch, its primal pass.  ``check=False`` skips the input checks."""
        if check:
            X = self.check_input(X)
        n = X.shape[0]
        c = cache if isinstance(cache, LinearizedCache) and cache.n == n else self.new_cache(n)
        if not c.holds_primal_of(X, self.net0):
            c.center = None                              # (until the pass below is complete)
            self.net0.forward(X, cache=c, check=False)   # h_l(W(0)) and D_l(W(0)) of this batch
            c.remember(X, self.net0)
        out = self.net0.jvp(c, self._minus_center(), out=c.out, scratch=c.scratch)  # V(0) dh_L
        out += c.h[self.L] @ self.V.T                    # + V h_L = f(W(0)) + dV h_L
        if check:
            self.check_output(out, X)
        return (out, c) if cache is not False else out

    def _minus_center(self):
        """Yields ``W_l - W_l(0)`` for l = 1..L, each in the same reused buffer."""
        xp = B.get_backend().xp
        size = max(w.size for w in self.W)
        if self._dW is None or self._dW.size < size or self._dW.dtype != self.dtype:
            self._dW = xp.empty(size, dtype=self.dtype)
        for W_l, W0_l in zip(self.W, self.net0.W):
            yield xp.subtract(W_l, W0_l, out=self._dW[:W_l.size].reshape(W_l.shape))

    def new_cache(self, n: int) -> LinearizedCache:
        """Empty arrays for a forward/backward pass over ``n`` examples."""
        c = self.net0.new_cache(n)
        xp = B.get_backend().xp
        scratch = xp.empty((n, self.m), dtype=self.dtype) if self.L > 1 else None
        return LinearizedCache(h=c.h, masks=c.masks, out=c.out, delta=c.delta, scratch=scratch)

    # ----- backward: the net's at W(0) ----------------------------------------------------
    def backward(self, cache: LinearizedCache, E, grads: Grads | None = None,
                 need_V: bool = True) -> Grads:
        """Gradients of a loss with ``dL/d out = E``: the net's at :math:`W(0)` (module
        docstring), arguments as :meth:`ReLUNet.backward`."""
        return self.net0.backward(cache, E, grads=grads, need_V=need_V)

    def backward_signals(self, cache: LinearizedCache, E):
        """As :meth:`ReLUNet.backward_signals`, at :math:`W(0)`: the consumer may change
        ``W_l`` in place at once (the signals read :math:`W(0)` only)."""
        return self.net0.backward_signals(cache, E)

    def zeros_like_weights(self) -> Grads:
        return self.net0.zeros_like_weights()

    def save(self, path) -> None:
        """Refused: a linearized model has no file of its own (the error says what to do)."""
        raise TypeError("a linearized model has no net file of its own: save its run with "
                        "tinyntk.train(..., checkpoint=path) (resumable), or the net it was "
                        "made from with lin.net0.save(path)")

    # ----- checks, as a net's ---------------------------------------------------------------
    def check_input(self, X):
        return self.net0.check_input(X)

    def check_targets(self, Y, n: int):
        return self.net0.check_targets(Y, n)

    def check_output(self, out, X) -> None:
        """Never return NaN silently: name the weights or the overflow that caused it."""
        check_output(self, out, X, "the linearized model's")


def linearize(net: ReLUNet) -> LinearizedNet:
    """The first-order Taylor model of ``net`` at its current weights (``net`` unchanged).

    >>> import tinyntk as tn
    >>> X, Y = tn.data.sphere(n=16, d=8, seed=0)
    >>> net = tn.ReLUNet.init(d=8, m=256, L=2, seed=0)
    >>> lin = tn.linearize(net)
    >>> bool(abs(lin(X) - net(X)).max() == 0)          # equal at W(0)
    True
    >>> hist = tn.train(lin, X, Y, steps=10, lr=0.01)  # the same loop as for a net
    """
    return LinearizedNet(net)


def jacobian_net(model, W=None, V=None) -> ReLUNet:
    """The :class:`ReLUNet` whose Jacobian is ``model``'s: a linearized model's expansion
    point ``net0`` (its NTK never moves); for a net, the net itself, or, given weights
    ``W``, ``V`` (e.g. a run's W(0)), a net with those weights."""
    if isinstance(model, LinearizedNet):
        return model.net0
    if W is None:
        return model
    return ReLUNet(W=[B.to_numpy(w) for w in W], V=B.to_numpy(V))


__all__ = ["LinearizedCache", "LinearizedNet", "jacobian_net", "linearize"]
