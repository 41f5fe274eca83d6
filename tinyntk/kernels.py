r"""Kernels of the proofs: Proposition 3.6's Gram matrix H, the infinite-width NTK of
Algorithm 1's network, and the finite-width (empirical) NTK of a given net.

Scaling used everywhere (CONTRACT.md, "Kernels"): for a net drawn by Algorithm 1
(rows of :math:`W_l` are :math:`N(0, \tfrac2m I)`, rows of :math:`V` are
:math:`N(0, \tfrac1k I)`),

.. math::  \texttt{ntk}(X, X', L) = \lim_{m\to\infty} \tfrac{k}{m}\,
           \texttt{empirical\_ntk}(\text{net}, X, X'),

where the empirical NTK counts the hidden layers' gradients only (the output layer
``V`` stays fixed in the paper's analysis).  For ``L = 1`` this limit is exactly
:func:`gram_H`.

All array math goes through the active backend's ``xp``; SciPy is used only when the
backend is NumPy.
"""
from __future__ import annotations

import math

import numpy

from . import backend as B
from . import checks
from .linearized import jacobian_net

OUTPUTS = ("mean", "trace", "sum", "full")


# ----- helpers ------------------------------------------------------------------------
def _batch(X, name="X"):
    """``X`` as a 2-D float array of the active backend (float32 stays float32)."""
    xp = B.get_backend().xp
    X = B.asarray(X)
    if X.dtype.kind not in "f":
        X = X.astype(numpy.float64)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D batch (n, d), got shape {tuple(X.shape)}")
    if not bool(xp.isfinite(X).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return X


def _pair(X, X2):
    X = _batch(X, "X")
    if X2 is None:
        return X, X, True
    X2 = _batch(X2, "X2")
    if X2.shape[1] != X.shape[1]:
        raise ValueError(f"X and X2 must have the same dimension d, got {X.shape[1]} and {X2.shape[1]}")
    return X, X2, False


def _check_L(L):
    return checks.positive_int("L (hidden layers)", L)


# ----- Proposition 3.6 ----------------------------------------------------------------
def gram_H(X):
    r"""Proposition 3.6's Gram matrix in closed form, ``(n, n)``.

    .. math::
        H_{ij} = \mathbb{E}_{w\sim N(0,I)}\big[x_i^\top x_j\,\sigma'(w^\top x_i)\,
                 \sigma'(w^\top x_j)\big]
               = x_i^\top x_j\,\frac{\pi - \arccos(\cos\theta_{ij})}{2\pi},
        \qquad \cos\theta_{ij} = \frac{x_i^\top x_j}{\|x_i\|\,\|x_j\|},

    since :math:`P(w^\top x_i > 0, w^\top x_j > 0) = (\pi-\theta_{ij})/(2\pi)` for a
    Gaussian :math:`w` (the two half-spaces overlap in a wedge of angle
    :math:`\pi-\theta_{ij}`).  The cosine uses the norms, so H is defined for any nonzero
    inputs, and is clipped to [-1, 1] against rounding.  Rows that are zero give 0.
    """
    xp = B.get_backend().xp
    X = _batch(X)
    U = _unit_rows(X, _row_norms(X))
    G = X @ X.T                                     # x_i^T x_j
    cos = U @ U.T                                   # cos theta_ij (exactly symmetric)
    xp.clip(cos, -1.0, 1.0, out=cos)                # cos theta_ij
    _set_diagonal(cos, 0, 1.0)                      # exactly 1 for i == j (x_i != 0)
    theta = xp.arccos(cos, out=cos)
    return G * ((math.pi - theta) / (2.0 * math.pi))


def gram_H_monte_carlo(X, samples: int = 100_000, seed=0, chunk=None):
    r"""Proposition 3.6's H by Monte Carlo: the mean over ``samples`` draws
    :math:`w \sim N(0, I_d)` of :math:`x_i^\top x_j\,\sigma'(w^\top x_i)\sigma'(w^\top x_j)`.

    The ``w`` are drawn on the host from ``numpy.random.default_rng(seed)`` (the same draws
    on every backend) and moved ``chunk`` at a time, so memory stays
    :math:`O(n\cdot\text{chunk} + n^2)` (default ``chunk``: about 4 million entries,
    ``n · chunk``, i.e. 32 MiB in float64).  Each entry is a mean of Bernoulli variables times
    :math:`x_i^\top x_j`, so its standard error is at most
    :math:`|x_i^\top x_j|/(2\sqrt{\text{samples}})`.
    """
    xp = B.get_backend().xp
    X = _batch(X)
    if chunk is None:
        chunk = max(1, 2 ** 22 // X.shape[0])
    samples, chunk = int(samples), int(chunk)
    if samples < 1 or chunk < 1:
        raise ValueError(f"samples and chunk must be positive, got {samples}, {chunk}")
    rng = numpy.random.default_rng(seed)
    n, d = X.shape
    count = xp.zeros((n, n), dtype=X.dtype)
    done = 0
    while done < samples:
        s = min(chunk, samples - done)
        w = B.asarray(rng.standard_normal((s, d)), dtype=X.dtype)
        M = (X @ w.T > 0).astype(X.dtype)          # sigma'(w^T x_i), (n, s)
        count += M @ M.T                            # number of w active on both x_i, x_j
        done += s
    count *= 1.0 / samples
    return xp.multiply(X @ X.T, count, out=count)


def lambda_0(X) -> float:
    r""":math:`\lambda_0 = \lambda_{\min}(H)` of Proposition 3.6 (a Python float).

    Symmetric eigensolver: ``scipy.linalg.eigvalsh`` (smallest eigenvalue only) on
    NumPy, ``xp.linalg.eigvalsh`` on CuPy.
    """
    return lambda_min(gram_H(X))


def lambda_min(K) -> float:
    """The smallest eigenvalue of a symmetric matrix ``K`` (a host float): SciPy's
    ``eigvalsh`` for that one eigenvalue on NumPy, ``xp.linalg.eigvalsh`` on CuPy."""
    if B.get_backend().name == "numpy":
        import scipy.linalg

        return float(scipy.linalg.eigvalsh(K, subset_by_index=[0, 0])[0])
    return float(B.get_backend().xp.linalg.eigvalsh(K)[0])


def lambda_max(K) -> float:
    """The largest eigenvalue of a symmetric matrix ``K`` (a host float), as
    :func:`lambda_min` finds the smallest."""
    if B.get_backend().name == "numpy":
        import scipy.linalg

        top = K.shape[0] - 1
        return float(scipy.linalg.eigvalsh(K, subset_by_index=[top, top])[0])
    return float(B.get_backend().xp.linalg.eigvalsh(K)[-1])


def check_proposition_3_6(X) -> dict:
    r"""Measure Proposition 3.6 on a data set: :math:`\lambda_0 \ge C\phi n^{-2}`.

    Returns ``{"lambda_0", "phi", "n", "ratio"}`` with ``ratio`` =
    :math:`\lambda_0 n^2/\phi`, the constant C this data set achieves (the proposition
    says it is bounded below by a small absolute constant under Assumption 3.1).
    """
    from .data import separation

    X = _batch(X)
    n = X.shape[0]
    lam, phi = lambda_0(X), separation(X)
    ratio = lam * n * n / phi if phi > 0 else float("nan")
    return {"lambda_0": lam, "phi": phi, "n": n, "ratio": ratio}


# ----- infinite width -------------------------------------------------------------------
def _row_norms(X):
    """‖x_i‖ for every row, without underflow or overflow for tiny or huge rows."""
    xp = B.get_backend().xp
    s = xp.abs(X).max(axis=1)
    safe = xp.where(s > 0, s, 1.0)
    return s * xp.sqrt(((X / safe[:, None]) ** 2).sum(axis=1))


def _unit_rows(X, nx):
    """``x_i / ‖x_i‖`` (a zero row stays zero); a division, so tiny rows do not overflow."""
    xp = B.get_backend().xp
    return X / xp.where(nx > 0, nx, 1.0)[:, None]


def _set_diagonal(block, r0, value):
    """Set entries ``(i, r0 + i)`` of a row block of a symmetric kernel to ``value``."""
    xp = B.get_backend().xp
    rows = min(block.shape[0], block.shape[1] - r0)
    i = xp.arange(rows)
    block[i, r0 + i] = value


def _block_rows(n2: int) -> int:
    """Rows per block for the elementwise recursion: about 2 MiB of float64 per scratch
    array on NumPy (stays in cache; large fresh arrays cost more in page faults than in
    arithmetic), much larger on a GPU."""
    per = 2 ** 18 if B.get_backend().name == "numpy" else 2 ** 26
    return max(1, per // max(n2, 1))


def _arccos_recursion(X, X2, L, same, a_ntk, a_nngp):
    r"""``P ⊙ (a_ntk T_L + a_nngp rho_L)`` for the recursion of :func:`ntk`.

    ``P = ‖x‖‖x'‖``; ``rho_l`` is the cosine of the layer-l features,
    ``rho_l = kappa_1(rho_{l-1})``; ``T_1 = rho_0 kappa_0(rho_0)``,
    ``T_{l+1} = (T_l + rho_l) kappa_0(rho_l)``, with
    ``kappa_0(rho) = (pi - arccos rho)/pi`` and
    ``kappa_1(rho) = (sqrt(1 - rho^2) + (pi - arccos rho) rho)/pi``.

    Works on blocks of rows with four small scratch arrays reused in place (ufuncs with
    ``out=``); the only ``n × n2`` array is the result, which first holds the cosines
    (unit rows ``U U2^T``: exactly symmetric when ``X2`` is ``X``, as every step after
    it is elementwise and ``P`` is a commutative product).
    """
    xp = B.get_backend().xp
    n, n2 = X.shape[0], X2.shape[0]
    nx = _row_norms(X)
    nx2 = nx if same else _row_norms(X2)
    U = _unit_rows(X, nx)
    U2 = U if same else _unit_rows(X2, nx2)
    out = U @ U.T if same else U @ U2.T                      # cosines, one BLAS call
    rows = _block_rows(n2)
    need_T, need_rho_L = a_ntk != 0.0, a_nngp != 0.0
    scratch = [xp.empty((min(rows, n), n2), dtype=X.dtype) for _ in range(4)]
    for r0 in range(0, n, rows):
        r1 = min(r0 + rows, n)
        rho, A, T, s = (a[: r1 - r0] for a in scratch)
        o = out[r0:r1]
        xp.clip(o, -1.0, 1.0, out=rho)                       # rho_0 = cos theta_0
        if same:                                             # exactly 1 on the diagonal:
            _set_diagonal(rho, r0, 1.0)                      # arccos is ill-conditioned at 1
        xp.arccos(rho, out=A)
        xp.subtract(math.pi, A, out=A)                       # A = pi kappa_0(rho_0)
        if need_T:
            xp.multiply(rho, A, out=T)                       # pi T_1
        for l in range(1, L + 1):
            if l == L and not need_rho_L:
                break
            xp.multiply(rho, rho, out=s)                     # rho_l = kappa_1(rho_{l-1})
            xp.subtract(1.0, s, out=s)                       # >= 0 exactly, as |rho| <= 1
            xp.sqrt(s, out=s)
            rho *= A
            rho += s
            rho /= math.pi                                   # (pi * 1)/pi == 1 exactly
            xp.minimum(rho, 1.0, out=rho)                    # kappa_1 maps [-1, 1] into [0, 1]
            if l == L:
                break
            xp.arccos(rho, out=A)
            xp.subtract(math.pi, A, out=A)                   # pi kappa_0(rho_l)
            if need_T:                                       # pi T_{l+1} = (T_l + rho_l) pi kappa_0
                T *= 1.0 / math.pi
                T += rho
                T *= A
        if need_T:
            xp.multiply(T, a_ntk / math.pi, out=o)
            if need_rho_L:
                rho *= a_nngp
                o += rho
        else:
            xp.multiply(rho, a_nngp, out=o)
        xp.multiply(nx[r0:r1, None], nx2[None, :], out=s)    # P = ‖x‖‖x'‖
        o *= s
    return out


def ntk(X, X2=None, L: int = 1, train_output: bool = False, m=None, k: int = 1):
    r"""The infinite-width NTK of Algorithm 1's network, hidden layers trained.

    ``ntk(X, X2, L)`` is :math:`\lim_{m\to\infty} \frac{k}{m}\,\Theta_m(X, X_2)`, with
    :math:`\Theta_m` = :func:`empirical_ntk` of a net drawn by Algorithm 1.  Shape
    ``(n, n2)``.

    Derivation (for one output; rows of :math:`W_l` are :math:`N(0, \frac2m I)`, entries
    of :math:`V` are :math:`N(0,\frac1k)`; Cho & Saul 2009, Jacot et al. 2018, Arora et
    al. 2019).  Write :math:`h_0 = x`, :math:`h_l = \sigma(W_l h_{l-1})`.

    * *Forward (NNGP).*  Given :math:`h_{l-1}, h'_{l-1}`, a neuron's pre-activations
      :math:`(w^\top h_{l-1}, w^\top h'_{l-1})` are Gaussian with covariance
      :math:`\frac2m\Sigma^{(l-1)}`, :math:`\Sigma^{(l-1)} = h_{l-1}^\top h'_{l-1}`.  Summing
      the :math:`m` neurons and using :math:`\mathbb E[\sigma(u)\sigma(u')] =
      \frac{\sqrt{q q'}}{2\pi}(\sin\theta + (\pi-\theta)\cos\theta)`, homogeneous of degree 1
      in the covariance,

      .. math:: \Sigma^{(l)}(x,x') = m\cdot\tfrac2m\cdot\tfrac{\|x\|\|x'\|}{2\pi}
                (\sin\theta_{l-1} + (\pi-\theta_{l-1})\cos\theta_{l-1})
                = \|x\|\|x'\|\,\kappa_1(\rho_{l-1}),

      with :math:`\Sigma^{(0)} = x^\top x'`, :math:`\rho_l = \cos\theta_l =
      \Sigma^{(l)}/(\|x\|\|x'\|)` and :math:`\kappa_1(\rho) = (\sqrt{1-\rho^2} +
      (\pi-\arccos\rho)\rho)/\pi`.  The diagonal is preserved, :math:`\Sigma^{(l)}(x,x) =
      \|x\|^2` (that is why Algorithm 1 uses variance 2/m), so only the cosines need a
      recursion.
    * *Backward.*  :math:`\partial f/\partial W_l = \delta_l h_{l-1}^\top` with
      :math:`\delta_L = v \odot \sigma'(z_L)` and :math:`\delta_l = (W_{l+1}^\top
      \delta_{l+1})\odot\sigma'(z_l)`.  So layer ``l`` contributes
      :math:`(\delta_l^\top\delta'_l)(h_{l-1}^\top h'_{l-1})`.  With
      :math:`\dot\Sigma^{(l)} = \mathbb E[\sigma'\sigma'] = (\pi-\theta_{l-1})/(2\pi)`:
      :math:`\delta_L^\top\delta'_L \to m\cdot\frac1k\cdot\dot\Sigma^{(L)}` (the :math:`1/k`
      is V's variance), and each layer below multiplies by
      :math:`m\cdot\frac2m\cdot\dot\Sigma^{(l)} = 2\dot\Sigma^{(l)} = \kappa_0(\rho_{l-1})`,
      :math:`\kappa_0(\rho) = (\pi - \arccos\rho)/\pi` (gradient independence).
    * *Sum.*  Hence

      .. math:: \frac km\Theta_m \to \Theta = \sum_{l=1}^L \Sigma^{(l-1)}\,
                \tfrac12\kappa_0(\rho_{L-1}) \prod_{l'=l}^{L-1}\kappa_0(\rho_{l'-1})
                = \tfrac12\|x\|\|x'\|\,T_L,

      with :math:`T_1 = \rho_0\kappa_0(\rho_0)` and :math:`T_{l+1} = (T_l +
      \rho_l)\,\kappa_0(\rho_l)` (the NTK recursion of Arora et al. with the factor
      :math:`\tfrac12` from :math:`\dot\Sigma^{(L)} = \tfrac12\kappa_0`).
      For :math:`L = 1`: :math:`\Theta = x^\top x'\,(\pi-\theta)/(2\pi) = H` of
      Proposition 3.6.

    Every term is homogeneous of degree 1 in ``x`` and in ``x'`` (the cosines are
    scale-free), so ``ntk(c X, c' X2) = c c' ntk(X, X2)`` for ``c, c' > 0``; cosines are
    clipped to [-1, 1], so duplicate and opposite points stay finite.  Near
    :math:`\rho = \pm1` arccos is ill-conditioned: a rounding error :math:`\varepsilon` of a
    cosine moves the angle by :math:`\sqrt{2\varepsilon}`, so such entries are accurate to
    about :math:`10^{-8}\|x\|\|x'\|` in float64 (:math:`3\cdot10^{-4}` in float32); the
    diagonal of ``ntk(X)`` is computed with :math:`\rho = 1` exactly.

    ``train_output=True`` adds the output layer's term :math:`h_L^\top h'_L \to
    \Sigma^{(L)}`.  It does not grow with ``m``, so in this scaling it is
    :math:`\frac km\Sigma^{(L)}` and vanishes as :math:`m\to\infty`; give ``m`` (and
    ``k``) to get the finite-width prediction ``ntk(...)*m/k ≈ empirical_ntk(...,
    train_output=True)``.

    Cost: :math:`O(n\,n_2\,(d + L))`, one ``arccos`` and one ``sqrt`` per layer, done
    on cache-sized row blocks; the result is the only ``n × n2`` array (n = 4096, L = 4
    takes about 0.5 s on a 2-core CPU).
    """
    L = _check_L(L)
    X, X2, same = _pair(X, X2)
    if train_output and (m is None or not float(m) > 0 or not float(k) > 0):
        raise ValueError("train_output=True needs the width m (and k): the output layer's "
                         "term is (k/m) * nngp(X, X2, L), which vanishes as m -> infinity")
    a_nngp = float(k) / float(m) if train_output else 0.0
    return _arccos_recursion(X, X2, L, same, 0.5, a_nngp)


def nngp(X, X2=None, L: int = 1):
    r""":math:`\Sigma^{(L)}(x, x') = \lim_{m\to\infty} h_L(x)^\top h_L(x')`, ``(n, n2)``.

    The Gram of the last hidden layer at infinite width under Algorithm 1's init
    (recursion in :func:`ntk`): :math:`\Sigma^{(0)} = x^\top x'`,
    :math:`\Sigma^{(l)} = \|x\|\|x'\|\kappa_1(\rho_{l-1})`.  The network outputs at init are
    then Gaussian with :math:`\mathrm{Cov}[f_a(x), f_a(x')] = \Sigma^{(L)}(x,x')/k`.
    ``L = 0`` returns :math:`x^\top x'`.
    """
    X, X2, same = _pair(X, X2)
    if L == 0:
        return X @ X.T if same else X @ X2.T
    L = _check_L(L)
    return _arccos_recursion(X, X2, L, same, 0.0, 1.0)


# ----- finite width -------------------------------------------------------------------
def _signals(net, X, output):
    """Forward pass and, per hidden layer l (top down), the backpropagated signals.

    Yields ``(l, h_{l-1}, delta_l)``: ``delta_l`` is ``(n, m)`` for outputs "sum" and k = 1,
    and ``(n, k, m)`` (one signal per output) otherwise.  Only the current layer's
    signal is kept alive.
    """
    _, cache = net.forward(X, cache=True)
    h, masks, L = cache.h, cache.masks, net.L
    V = net.V
    if output == "sum" or net.k == 1:
        delta = V.sum(axis=0)[None, :] * masks[L - 1]           # (n, m)
        mask = lambda l: masks[l]                                # noqa: E731
    else:
        delta = V[None, :, :] * masks[L - 1][:, None, :]         # (n, k, m)
        mask = lambda l: masks[l][:, None, :]                    # noqa: E731
    for l in range(L, 0, -1):
        yield l, h[l - 1], delta
        if l > 1:
            delta = delta @ net.W[l - 1]                         # back through W_l ...
            delta *= mask(l - 2)                                 # ... and sigma' of layer l-1
    yield 0, h[L], None                                          # for the V term


def _gram(A, A2, same):
    """``A A2^T`` for 2-D ``A``; rows of 3-D ``(n, k, m)`` arrays are flattened first."""
    if A.ndim == 3:
        A = A.reshape(A.shape[0], -1)
        A2 = A if same else A2.reshape(A2.shape[0], -1)
    if same:
        return _syrk(A)
    return A @ A2.T


def _syrk(A):
    """``A A^T``.  NumPy already sends ``A @ A.T`` (same buffer, transposed) to BLAS
    ``syrk`` and mirrors the triangle; calling ``scipy.linalg.blas.dsyrk`` by hand was
    measured slower (0.22 s vs 0.17 s for a 512 × 4096 ``A``), so plain ``@`` it is."""
    return A @ A.T


def empirical_ntk(net, X, X2=None, train_output: bool = False, output: str = "mean",
                  chunk=None):
    r"""The finite-width NTK of ``net``, hidden layers: :math:`\Theta_{ij} = \sum_{l=1}^L
    \langle \partial f(x_i)/\partial W_l,\ \partial f(x'_j)/\partial W_l\rangle`.

    The Jacobian (n × #parameters) is never formed.  Since
    :math:`\partial f(x)/\partial W_l = \delta_l(x)\, h_{l-1}(x)^\top`
    (:math:`\delta_l` the backpropagated signal of layer ``l`` for a unit output error),

    .. math::  \Theta = \sum_l (\Delta_l \Delta_l'^\top) \odot (H_{l-1} H_{l-1}'^\top),

    the Gram of the signals times the Gram of the layer inputs, elementwise.

    Parameters
    ----------
    net : ReLUNet or LinearizedNet
        For a linearized model (:func:`tinyntk.linearize`), the NTK of the net it was
        made from, at its expansion point: constant in training.
    X, X2 : arrays ``(n, d)``, ``(n2, d)``; ``X2=None`` means ``X2 = X`` (symmetric Grams).
    train_output : bool
        Also add the output layer's term :math:`\langle \partial f/\partial V\rangle`, the
        Gram of :math:`h_L` (per output).
    output : str, for ``k > 1`` (for ``k == 1`` all but "full" coincide)
        ``"mean"`` (default): :math:`\frac1k\sum_a \Theta^{aa}`, the per-output kernel
        averaged over outputs; this is the choice under which ``empirical_ntk * k/m``
        tends to :func:`ntk` for every ``k`` (at init the cross-output blocks vanish and
        each diagonal block tends to :math:`\frac mk\Theta`).  ``"trace"``:
        :math:`\sum_a \Theta^{aa}`.  ``"sum"``: the kernel of the summed output
        :math:`\sum_a f_a` (one backward pass; includes the cross-output blocks).
        ``"full"``: the whole kernel :math:`\Theta^{ab}_{ij}`, shape ``(n, k, n2, k)``.
    chunk : int, optional
        Process the rows of ``X`` in blocks of this many examples.  The signals of
        ``X2`` are then kept for every layer (``L`` arrays ``(n2, m)``) and those of
        ``X`` only for one block: worth it when ``X`` is much larger than ``X2`` (many
        points against a training set).

    Notes
    -----
    Memory without ``chunk``: the forward caches (L arrays ``(n, m)`` and ``(n2, m)``),
    the current layer's signals only (``(n, m)`` and ``(n2, m)``, times ``k`` for
    "mean"/"trace"/"full"), and three ``n × n2`` arrays (two Grams and the sum).  Cost
    per layer: two Gram products, :math:`O(n\, n_2\, m)` (``k`` times that for the
    per-output modes), plus the backward pass :math:`O(n m^2)`.
    """
    xp = B.get_backend().xp
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    net = jacobian_net(net)            # a linearized model's NTK: its net's at W(0)
    X = net.check_input(X)
    same = X2 is None
    X2 = X if same else net.check_input(X2)
    n = X.shape[0]
    if chunk is not None and int(chunk) < n:
        chunk = int(chunk)
        if chunk < 1:
            raise ValueError(f"chunk must be a positive number of rows, got {chunk}")
        # signals of all of X2 once (each forward pass has its own cache), then blocks
        # of rows of X against them, written into the result as they come
        sig2 = [(h, d) for _, h, d in _signals(net, X2, output)]
        out = None
        for s in range(0, n, chunk):
            block = _ntk_block(net, X[s:s + chunk], sig2, train_output, output)
            if out is None:
                out = xp.empty((n,) + tuple(block.shape[1:]), dtype=block.dtype)
            out[s:s + chunk] = block
        return out
    if same:
        return _ntk_same(net, X, train_output, output)
    # both sides walk down the layers in step: one layer's signals alive at a time
    sig2 = ((h, d) for _, h, d in _signals(net, X2, output))
    return _ntk_block(net, X, sig2, train_output, output)


def _combine(K, D, G, output, k):
    """Accumulate one layer: ``K += D ⊙ G`` (``D`` the signal Gram, ``G`` the input Gram)."""
    if output == "full":
        n, n2 = G.shape
        D = D.reshape(n, k, n2, k)
        D *= G[:, None, :, None]
    else:
        D *= G
    if K is None:
        return D
    K += D
    return K


def _full_signal_gram(d, d2):
    """``(n k, n2 k)`` Gram of per-output signals ``(n, k, m)``."""
    A = d.reshape(-1, d.shape[-1])
    if d2 is None:
        return _syrk(A)
    return A @ d2.reshape(-1, d2.shape[-1]).T


def _add_v_term(K, G, output, k):
    r"""The output layer's term.  :math:`\partial f_a/\partial V = e_a h_L^\top`, so
    :math:`\langle \partial f_a(x)/\partial V, \partial f_b(x')/\partial V\rangle
    = \delta_{ab}\, h_L^\top h'_L`: ``G`` per output, no cross-output part."""
    xp = B.get_backend().xp
    if output == "full":
        K += G[:, None, :, None] * xp.eye(k, dtype=G.dtype)[None, :, None, :]
    elif output == "mean":
        K += G                  # the mean over outputs of G
    else:
        K += G * float(k)       # "trace": sum_a G; "sum": sum_{a,b} delta_ab G
    return K


def _mean_over_outputs(K, output, k):
    if output == "mean" and k > 1:
        K *= 1.0 / k
    return K


def _ntk_same(net, X, train_output, output):
    k, K = net.k, None
    for _, h, d in _signals(net, X, output):
        if d is None:                                  # past the hidden layers: h = h_L
            K = _mean_over_outputs(K, output, k)
            return _add_v_term(K, _syrk(h), output, k) if train_output else K
        G = _syrk(h)                                   # Gram of the layer's inputs
        D = _full_signal_gram(d, None) if output == "full" else _gram(d, None, True)
        K = _combine(K, D, G, output, k)


def _ntk_block(net, Xb, sig2, train_output, output):
    """Rows ``Xb`` against the signals ``sig2`` of X2 (an iterable of ``(h, delta)``)."""
    k, K = net.k, None
    for (_, h, d), (h2, d2) in zip(_signals(net, Xb, output), sig2):
        if d is None:                                  # past the hidden layers: h = h_L
            K = _mean_over_outputs(K, output, k)
            return _add_v_term(K, h @ h2.T, output, k) if train_output else K
        G = h @ h2.T                                   # Gram of the layer's inputs
        D = _full_signal_gram(d, d2) if output == "full" else _gram(d, d2, False)
        K = _combine(K, D, G, output, k)
