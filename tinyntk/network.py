r"""The L-hidden-layer ReLU network of Zou & Gu (2019), section 2, with its backward pass.

.. math::

    f_W(x) = V\,\sigma(W_L\,\sigma(W_{L-1} \cdots \sigma(W_1 x) \cdots))

with :math:`W_1 \in \mathbb{R}^{m\times d}`, :math:`W_2,\dots,W_L \in \mathbb{R}^{m\times m}`,
:math:`V \in \mathbb{R}^{k\times m}` and :math:`\sigma(z) = \max\{0, z\}`.

Conventions (written down once, used everywhere):

* A batch holds one example per **row**: ``X`` is ``(n, d)``, the outputs are ``(n, k)``,
  and the hidden outputs :math:`x_{l,i}` of all examples form ``h[l]``, ``(n, m)``.
  So :math:`x_{l,i} = \sigma(W_l x_{l-1,i})` is ``h[l] = relu(h[l-1] @ W[l-1].T)``.
* :math:`\sigma'(z) = \mathbb{1}(z > 0)`; in particular **σ′(0) = 0**.
* **Indices.**  The paper counts layers from 1; Python lists count from 0.  The code's
  lists of per-layer objects therefore hold layer ``l`` at index ``l-1``: ``W[l-1]`` is
  :math:`W_l`, ``masks[l-1]`` is :math:`\sigma'` of layer ``l`` (boolean, ``(n, m)``) and
  ``grads.W[l-1]`` is :math:`\nabla_{W_l} L`.  Only ``h`` has ``L+1`` entries, with
  ``h[0] = X``, so ``h[l]`` is layer ``l``'s output.  The pseudo-code below uses the same
  lists; ``z_l`` and ``delta_l`` are per-layer temporaries, named by their paper index.

Forward pass (one line per layer of the formula above), for l = 1, ..., L::

    h[0] = X                                   # x_{0,i} = x_i
    z_l  = h[l-1] @ W[l-1].T                   # W_l x_{l-1,i}
    masks[l-1] = z_l > 0                       # sigma'(W_l x_{l-1,i})
    h[l] = max(z_l, 0)                         # x_{l,i} = sigma(W_l x_{l-1,i})
    out  = h[L] @ V.T                          # f_W(x_i) = V x_{L,i}

Backward pass, for an output error ``E = dL/d out`` of shape ``(n, k)`` (for the square
loss of eq. (2.1), ``E[i] = (f_W(x_i) - y_i) / n``).  It mirrors the forward pass from the
top down::

    grads.V      = E.T @ h[L]                              # dL/dV
    delta_L      = (E @ V) * masks[L-1]                    # dL/d(W_L x_{L-1,i})
    grads.W[l-1] = delta_l.T @ h[l-1]                      # dL/dW_l,  l = L, ..., 1
    delta_{l-1}  = (delta_l @ W[l-1]) * masks[l-2]         # back through W_l (l >= 2)

Row ``j`` of ``grads.W[L-1]`` is exactly the per-neuron gradient of section 4.1:

.. math::

    \nabla_{w_{L,j}} L(W) = \frac1n \sum_{i=1}^n
        \langle f_W(x_i) - y_i, v_j\rangle\, \sigma'(\langle w_{L,j}, x_{L-1,i}\rangle)\, x_{L-1,i},

since ``(E @ V)[i, j]`` is :math:`\frac1n\langle f_W(x_i)-y_i, v_j\rangle` (``v_j`` the
``j``-th column of ``V``), the mask supplies σ′, and ``delta.T @ h[L-1]`` sums over ``i``
the outer products with :math:`x_{L-1,i}`.  See :func:`per_neuron_gradient`.

The forward-mode derivative :meth:`ReLUNet.jvp` (how the outputs move along a weight
direction) pushes a tangent through the same masks; :mod:`tinyntk.linearized` builds the
first-order Taylor model of the net from it.

:meth:`ReLUNet.backward` stores every gradient; :meth:`ReLUNet.backward_signals` yields
``(l, delta_l, h[l-1])`` one layer at a time, which lets the optimizer step each layer as
soon as its gradient is known, without storing it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy

from . import backend as B
from . import checks, fileio
from . import init as initializers

FLOAT_DTYPES = checks.FLOAT_DTYPES


@dataclass
class Cache:
    """What the forward pass keeps for the backward pass.

    ``h[0]`` is the input batch and ``h[l]`` (``l = 1..L``) the output of hidden layer
    ``l``, ``(n, m)``; ``masks[l-1]`` is σ′ of hidden layer ``l`` as a boolean ``(n, m)``
    array; ``out`` is ``f_W(X)``, ``(n, k)``.  ``delta`` holds two ``(n, m)`` scratch
    arrays for the backpropagated signals.  A cache can be passed back to
    :meth:`ReLUNet.forward` to reuse its arrays for a batch of the same size.
    """

    h: list
    masks: list
    out: object
    delta: list = field(default_factory=list)

    @property
    def n(self) -> int:
        return self.out.shape[0]


@dataclass
class Grads:
    """Gradients with the shapes of the weights: ``W`` (list of ``L``) and ``V``."""

    W: list
    V: object

    def __iter__(self):
        yield from self.W
        if self.V is not None:      # None when the gradient of V was not asked for
            yield self.V


class ReLUNet:
    """``f(x) = V σ(W_L σ(… σ(W_1 x)))`` with hand-written forward and backward passes.

    Build one with :meth:`ReLUNet.init` (Algorithm 1's Gaussian initialization) or from
    arrays, ``ReLUNet(W=[W1, ..., WL], V=V)``; the arrays are always copied onto the active
    backend, so the caller's arrays never change.
    """

    def __init__(self, W, V, dtype=None):
        if isinstance(W, (str, bytes)) or not hasattr(W, "__len__") or len(W) == 0:
            raise TypeError("W must be a non-empty list of weight matrices W_1, ..., W_L")
        host_W = [_host_matrix(w, f"W[{i}]") for i, w in enumerate(W)]
        host_V = _host_matrix(V, "V")
        # Integer weights are converted: float32 stays float32, anything else -> float64.
        dt = checks.float_dtype(dtype if dtype is not None else numpy.result_type(*host_W, host_V, numpy.float32))
        m, d = host_W[0].shape
        for l, w in enumerate(host_W[1:], start=2):
            if w.shape != (m, m):
                raise ValueError(f"W[{l - 1}] (W_{l}) must have shape ({m}, {m}), got {w.shape}")
        if host_V.shape[1] != m:
            raise ValueError(f"V must have shape (k, {m}), got {host_V.shape}")
        for name, a in [(f"W[{i}]", w) for i, w in enumerate(host_W)] + [("V", host_V)]:
            if not numpy.all(numpy.isfinite(a)):
                raise ValueError(f"{name} contains NaN or inf")
        # numpy.array always copies; B.asarray then moves to the device once.
        self.W = [B.asarray(numpy.array(w, dtype=dt)) for w in host_W]
        self.V = B.asarray(numpy.array(host_V, dtype=dt))

    # ----- construction -------------------------------------------------------------
    @classmethod
    def init(cls, d: int, m: int, k: int = 1, L: int = 1, seed=0, dtype="float64",
             init="paper") -> "ReLUNet":
        """A net drawn by an initializer (default: Algorithm 1, line 2).

        Weights are drawn on the host from ``numpy.random.default_rng(seed)`` and moved
        once, so the same seed gives the same net on NumPy and CuPy.  ``init`` is a name
        from :data:`tinyntk.init.INITIALIZERS` or a function ``(rng, d, m, k, L) -> (W, V)``.
        """
        d, m, k, L = (checks.positive_int(name, value)
                      for name, value in (("d", d), ("m", m), ("k", k), ("L", L)))
        dt = checks.float_dtype(dtype)
        seed = checks.seed("seed", seed)
        rng = seed if isinstance(seed, numpy.random.Generator) else numpy.random.default_rng(seed)
        W, V = initializers.get(init)(rng, d, m, k, L)
        return cls(W=W, V=V, dtype=dt)

    def copy(self) -> "ReLUNet":
        """An independent copy on the same backend."""
        return ReLUNet(W=[B.to_numpy(w) for w in self.W], V=B.to_numpy(self.V), dtype=self.dtype)

    # ----- sizes ----------------------------------------------------------------------
    @property
    def d(self) -> int:
        return self.W[0].shape[1]

    @property
    def m(self) -> int:
        return self.W[0].shape[0]

    @property
    def k(self) -> int:
        return self.V.shape[0]

    @property
    def L(self) -> int:
        return len(self.W)

    @property
    def dtype(self) -> numpy.dtype:
        return numpy.dtype(self.V.dtype)

    def __repr__(self) -> str:
        return (f"ReLUNet(d={self.d}, m={self.m}, k={self.k}, L={self.L}, "
                f"dtype={self.dtype.name}, backend={B.get_backend().name!r})")

    # ----- forward --------------------------------------------------------------------
    def __call__(self, X):
        """``f_W(X)``, ``(n, k)``."""
        return self.forward(X)

    def forward(self, X, cache=False, check=True):
        """The forward pass; with ``cache=True`` also return the :class:`Cache`.

        ``cache`` may also be a :class:`Cache` from an earlier call with a batch of the
        same size: its arrays are then overwritten instead of allocated anew.
        ``check=False`` skips the input checks; the training loop checks ``X`` once,
        before its first step, and then passes it on unchecked.
        """
        if check:
            X = self.check_input(X)
        xp = B.get_backend().xp
        if isinstance(cache, Cache) and cache.n == X.shape[0]:
            c = cache
        else:
            c = self.new_cache(X.shape[0])
        c.h[0] = X
        for l, W_l in enumerate(self.W, start=1):
            z = xp.matmul(c.h[l - 1], W_l.T, out=c.h[l])   # W_l x_{l-1,i}
            xp.greater(z, 0, out=c.masks[l - 1])            # sigma'(W_l x_{l-1,i})
            xp.maximum(z, 0, out=c.h[l])                    # x_{l,i} = sigma(W_l x_{l-1,i})
        xp.matmul(c.h[self.L], self.V.T, out=c.out)         # f_W(x_i) = V x_{L,i}
        if check:
            self.check_output(c.out, X)
        return (c.out, c) if cache is not False else c.out

    def check_output(self, out, X) -> None:
        """Never return NaN silently: name the weights or the overflow that caused it."""
        check_output(self, out, X, "the net's")

    # ----- files ----------------------------------------------------------------------
    def save(self, path) -> None:
        """Write the weights to ``path`` (``.npz``, atomically, without pickle; the format
        is that of :mod:`tinyntk.fileio`)."""
        fileio.write_atomic(path, fileio.weight_arrays(self.W, self.V),
                            dict(fileio.sizes(self), kind="net"))

    @classmethod
    def load(cls, path) -> "ReLUNet":
        """A net from a file written by :meth:`save`, or the current weights of a training
        checkpoint of a net, on the active backend."""
        arrays, meta = fileio.read(path)
        if meta.get("model", "net") != "net":
            raise fileio.CheckpointError(
                f"{path!r} holds a run of a {meta['model']} model, whose weights do not "
                f"define a ReLUNet; resume it with tinyntk.train(..., resume=path)")
        W, V = fileio.read_weights(arrays, meta, path)
        try:
            return cls(W=W, V=V, dtype=meta.get("dtype"))
        except (TypeError, ValueError) as exc:
            raise fileio.CheckpointError(f"{path!r}: invalid weights ({exc})") from None

    def new_cache(self, n: int) -> Cache:
        """Empty arrays for a forward/backward pass over ``n`` examples."""
        xp = B.get_backend().xp
        dt = self.dtype
        return Cache(
            h=[None] + [xp.empty((n, self.m), dtype=dt) for _ in range(self.L)],
            masks=[xp.empty((n, self.m), dtype=bool) for _ in range(self.L)],
            out=xp.empty((n, self.k), dtype=dt),
            delta=[xp.empty((n, self.m), dtype=dt) for _ in range(min(self.L, 2))],
        )

    def hidden(self, X) -> list:
        """The hidden outputs ``[x_1, ..., x_L]`` of every example (copies, ``(n, m)`` each)."""
        _, c = self.forward(X, cache=True)
        return c.h[1:]

    # ----- backward -------------------------------------------------------------------
    def backward(self, cache: Cache, E, grads: Grads | None = None, need_V: bool = True) -> Grads:
        """Gradients of a loss whose derivative with respect to the outputs is ``E``.

        ``E`` is ``dL/d out``, ``(n, k)``.  The steps are those of the module docstring;
        row ``j`` of ``grads.W[-1]`` is the per-neuron gradient of section 4.1.  ``grads``
        may be a :class:`Grads` to write into (no new weight-sized arrays); with
        ``need_V=False`` the gradient of ``V`` is not computed.
        """
        xp = B.get_backend().xp
        if grads is None:
            grads = self.zeros_like_weights()
        if need_V:
            xp.matmul(E.T, cache.h[self.L], out=grads.V)        # dL/dV = sum_i E_i x_{L,i}^T
        for l, delta, h_prev in self.backward_signals(cache, E):
            xp.matmul(delta.T, h_prev, out=grads.W[l - 1])      # dL/dW_l = sum_i delta_i x_{l-1,i}^T
        return grads

    def backward_signals(self, cache: Cache, E):
        """The backward pass one layer at a time: yields ``(l, delta_l, h[l-1])`` for l = L..1.

        ``delta_l[i]`` is dL/d(W_l x_{l-1,i}), so ∇_{W_l} L = ``delta_l.T @ h[l-1]``.  The
        signal of the layer below, ``delta_{l-1}``, which needs ``W_l``, is computed before
        ``delta_l`` is yielded: the consumer may then change ``W_l`` in place (that is how
        :class:`tinyntk.optim.GD` takes each layer's step without storing its gradient).
        ``V`` is read before the first yield.  The yielded ``delta_l`` is a cache array,
        valid only until the next item is requested (so consume the items one by one;
        ``list(...)`` would hold overwritten signals).
        """
        xp = B.get_backend().xp
        h, masks, L = cache.h, cache.masks, self.L
        delta = cache.delta[0]
        if self.k == 1:                                         # (E @ V) as a broadcast outer product
            xp.multiply(E, self.V, out=delta)
        else:
            xp.matmul(E, self.V, out=delta)                     # <E_i, v_j>
        xp.multiply(delta, masks[L - 1], out=delta)             # ... * sigma'(W_L x_{L-1,i})
        for l in range(L, 0, -1):
            below = None
            if l > 1:
                below = cache.delta[1] if delta is cache.delta[0] else cache.delta[0]
                xp.matmul(delta, self.W[l - 1], out=below)      # back through W_l ...
                xp.multiply(below, masks[l - 2], out=below)     # ... and sigma' of layer l-1
            yield l, delta, h[l - 1]
            delta = below

    def jvp(self, cache: Cache, dW, dV=None, out=None, scratch=None):
        r"""Forward mode: how the outputs move along a weight direction, :math:`J\,(dW, dV)`.

        With the hidden outputs ``h[l]`` and masks :math:`D_l` of ``cache`` (a forward
        pass of this net), one line per layer, as in the forward pass:

        .. math::

            \delta h_0 = 0, \qquad
            \delta h_l = D_l \odot (dW_l\, h_{l-1} + W_l\, \delta h_{l-1}), \qquad
            \delta f = V\, \delta h_L + dV\, h_L.

        ``dW`` is an iterable of the ``L`` directions ``(m, d), (m, m), ...``, each read
        once, in layer order (a generator may hand out one reused buffer); ``dV`` is
        ``(k, m)`` or ``None`` (zero).  Returns ``(n, k)`` (written into ``out`` if given).
        The signals use ``cache.delta`` as :meth:`backward` does, and ``scratch`` (an
        ``(n, m)`` array, allocated if ``None``) for the product of the layer's input.
        Cost: two products per layer where the forward pass has one.
        """
        xp = B.get_backend().xp
        h, D = cache.h, cache.masks
        dh = None
        for l, dW_l in enumerate(dW, start=1):
            dz = cache.delta[(l - 1) % len(cache.delta)]
            if dh is None:
                xp.matmul(h[0], dW_l.T, out=dz)                     # dW_1 x
            else:
                xp.matmul(dh, self.W[l - 1].T, out=dz)              # W_l dh_{l-1} ...
                scratch = xp.matmul(h[l - 1], dW_l.T, out=scratch)  # ... + dW_l h_{l-1}
                dz += scratch
            dh = xp.multiply(dz, D[l - 1], out=dz)                  # dh_l = D_l (...)
        out = xp.matmul(dh, self.V.T, out=out)                      # df = V dh_L ...
        if dV is not None:
            out += h[self.L] @ dV.T                                 # ... + dV h_L
        return out

    def zeros_like_weights(self) -> Grads:
        """A :class:`Grads` of zeros with the weights' shapes, dtype and backend."""
        xp = B.get_backend().xp
        return Grads(W=[xp.zeros_like(w) for w in self.W], V=xp.zeros_like(self.V))

    # ----- input checks ---------------------------------------------------------------
    def check_input(self, X):
        """``X`` as a 2-D float array of the net's dtype on the active backend, or an error."""
        X = _as_batch(X, self.dtype, "X")
        if X.shape[1] != self.d:
            raise ValueError(f"X must have shape (n, d) with d = {self.d}, got {tuple(X.shape)}")
        return X

    def check_targets(self, Y, n: int):
        """``Y`` as ``(n, k)`` of the net's dtype (a 1-D ``Y`` is read as ``(n, 1)`` when k = 1)."""
        Y = _as_array(Y, self.dtype, "Y")
        if Y.ndim == 1 and self.k == 1:
            Y = Y.reshape(-1, 1)
        if Y.ndim != 2 or Y.shape != (n, self.k):
            raise ValueError(f"Y must have shape (n, k) = ({n}, {self.k}), got {tuple(Y.shape)}")
        _check_finite(Y, "Y")
        return Y


# ----- the protocol of a model --------------------------------------------------------
MODEL_PROTOCOL = (
    "W", "V", "d", "m", "k", "L", "dtype",      # weights (trained in place) and sizes
    "__call__", "forward",                      # out = model(X); out, cache = model.forward(X, cache=True)
    "backward", "backward_signals",             # gradients of a loss from dL/d out, as ReLUNet's
    "zeros_like_weights",                       # a Grads of zeros shaped like the weights
    "check_input", "check_targets", "check_output",   # argument checks at the boundary
)
"""What :func:`tinyntk.train`, :mod:`tinyntk.optim`, :func:`tinyntk.loss_and_grad` and the
probes of :mod:`tinyntk.diagnostics` use of a model, written down once.  A model is any
object with these attributes, behaving as those of :class:`ReLUNet` do:

* ``W`` (a list of ``L`` arrays) and ``V`` (``(k, m)``): the trained weights, which the
  optimizers update in place; ``d, m, k, L`` and ``dtype`` as for a net.
* ``forward(X, cache=False, check=True)``: the outputs ``(n, k)``, with ``cache=True`` (or
  a cache to reuse) also a :class:`Cache` whose ``out`` is the outputs and whose
  ``h[L]`` is what ``∂f/∂V`` multiplies (the optimizers' ``V`` step reads it);
  ``check=False`` skips the input checks (the training loop checks once).
* ``backward(cache, E, grads=None, need_V=True)`` and ``backward_signals(cache, E)``: the
  gradients of a loss with ``dL/d out = E``, as in :meth:`ReLUNet.backward` (the
  signals of layer ``l`` may be consumed, and ``W_l`` changed, before the next is asked).
* ``zeros_like_weights()``, ``check_input(X)``, ``check_targets(Y, n)``,
  ``check_output(out, X)``.

:class:`ReLUNet` and :class:`tinyntk.linearized.LinearizedNet` are the two models of the
package.  :func:`check_model` says what a model lacks.
"""


def nonfinite_weights(model):
    """The name (``"W[i]"`` or ``"V"``) of the first of a model's weights that holds NaN or
    inf, or None."""
    for name, a in [(f"W[{i}]", w) for i, w in enumerate(model.W)] + [("V", model.V)]:
        if not checks.all_finite(a):
            return name
    return None


def check_output(model, out, X, owner: str) -> None:
    """A ``ValueError`` if the outputs ``out`` of ``model`` on ``X`` are not finite, naming
    the weights (``owner`` says whose) or the overflow that caused it."""
    if checks.all_finite(out):
        return
    name = nonfinite_weights(model)
    if name is not None:
        raise ValueError(f"{owner} weights {name} contain NaN or inf")
    xp = B.get_backend().xp
    raise ValueError(
        f"f(X) overflowed to inf/NaN in {model.dtype.name} (largest |X| entry "
        f"{float(xp.abs(X).max()):.3g}); rescale X (the paper takes ||x_i|| = 1)")


def check_model(model, name: str = "model") -> None:
    """A ``TypeError`` naming what ``model`` lacks of :data:`MODEL_PROTOCOL`, if anything."""
    missing = [a for a in MODEL_PROTOCOL if not hasattr(model, a)]
    if missing:
        raise TypeError(f"{name} must be a model with the network's protocol (a tinyntk.ReLUNet, "
                        f"tinyntk.linearize(net), or an object with {', '.join(MODEL_PROTOCOL)}); "
                        f"got {type(model).__name__}, which lacks {', '.join(missing)}")


def per_neuron_gradient(net: ReLUNet, X, Y, j: int):
    r"""Section 4.1's formula for :math:`\nabla_{w_{L,j}} L(W)` (square loss), term by term.

    .. math::
        \frac1n \sum_i \langle f_W(x_i) - y_i, v_j\rangle\,
        \sigma'(\langle w_{L,j}, x_{L-1,i}\rangle)\, x_{L-1,i}

    Written as a sum over examples for reading and testing, not for speed.
    """
    xp = B.get_backend().xp
    if not isinstance(net, ReLUNet):
        raise TypeError(f"per_neuron_gradient takes a ReLUNet (section 4.1's formula reads its "
                        f"masks at its weights), got {type(net).__name__}")
    if not checks.is_int(j) or not 0 <= j < net.m:
        raise ValueError(f"j must be a neuron index in [0, m) = [0, {net.m}), got {j!r}")
    out, cache = net.forward(X, cache=True)
    Y = net.check_targets(Y, out.shape[0])
    n = out.shape[0]
    x_prev = cache.h[net.L - 1]                # x_{L-1,i}, one row per example
    v_j = net.V[:, j]                          # column j of V
    w_Lj = net.W[-1][j]                        # row j of W_L
    total = xp.zeros(x_prev.shape[1], dtype=net.dtype)
    for i in range(n):
        residual = out[i] - Y[i]                                 # f_W(x_i) - y_i
        active = (w_Lj @ x_prev[i]) > 0                          # sigma'(<w_{L,j}, x_{L-1,i}>)
        total += float(residual @ v_j) * float(active) * x_prev[i]
    return total / n


def _host_matrix(a, name: str) -> numpy.ndarray:
    a = B.to_numpy(checks.real_array(a, name))
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got shape {a.shape}")
    if 0 in a.shape:
        raise ValueError(f"{name} must not be empty, got shape {a.shape}")
    return a


def _as_array(a, dtype, name: str):
    """``a`` on the active backend in ``dtype``; rejects non-real dtypes with a TypeError."""
    return B.asarray(checks.real_array(a, name), dtype=dtype)


def _check_finite(a, name: str) -> None:
    if not checks.all_finite(a):
        raise ValueError(f"{name} contains NaN or inf")


def _as_batch(X, dtype, name: str):
    X = _as_array(X, dtype, name)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D batch (n, d), one example per row; got shape {tuple(X.shape)}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (n = 0)")
    _check_finite(X, name)
    return B.get_backend().xp.ascontiguousarray(X)     # rows contiguous, as BLAS wants them
