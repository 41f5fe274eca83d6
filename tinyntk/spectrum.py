r"""Eigendirections of the kernels: which part of the labels GD fits fast, and which slowly.

In the kernel regime, GD on the square loss of eq. (2.1) moves the residual
:math:`r = f(X) - Y` by :math:`r \leftarrow (I - \eta K/n)\,r`, with ``K`` the NTK frozen
at :math:`W(0)` (:mod:`tinyntk.predict`).  Write :math:`K = \sum_i \lambda_i u_i u_i^\top`
with :math:`\lambda_1 \ge \lambda_2 \ge \dots \ge \lambda_N \ge 0` and orthonormal
:math:`u_i`.  Then every projection of the residual evolves on its own:

.. math::

    u_i^\top r(t) = (1 - \eta\lambda_i/n)^t\; u_i^\top r(0), \qquad
    L(t) = \frac1{2n}\|r(t)\|^2 = \frac1{2n}\sum_i (1 - \eta\lambda_i/n)^{2t}\,
           (u_i^\top r(0))^2 .

This is Theorem 4.1 of Arora, Du, Hu, Li & Wang (2019), *Fine-grained analysis of
optimization and generalization for overparameterized two-layer neural networks*, in our
normalization: their loss :math:`\frac12\sum_i (y_i - u_i)^2` has no :math:`1/n`, so their
:math:`\eta` is our :math:`\eta/n`; their two-layer kernel :math:`H^\infty` is
:func:`tinyntk.kernels.gram_H`; and they start from outputs :math:`\approx 0`, so that
:math:`r(0) \approx -y`.  Labels whose energy sits on the top eigenvectors are fitted in a
few steps; labels spread over the bottom ones (random labels) slowly: their answer to why
true labels train faster than random ones.

The same spectrum measures how complex the labels are for the kernel:
:math:`y^\top K^{-1} y` (:func:`quadratic_form`), and Arora et al.'s generalization measure
:math:`\sqrt{2\,y^\top (H^\infty)^{-1} y/n}` (:func:`generalization_measure`).  Their
Theorem 5.1 bounds the population loss of a two-layer net trained by GD (a 1-Lipschitz loss
bounded by 1, labels in :math:`[-1, 1]`, width polynomial in :math:`n/\lambda_0`) by it,
plus :math:`O(\sqrt{\log(n/(\lambda_0\delta))/n})`.  Our nets are deeper and narrower than
that theorem's: here it is a measurement that tells structured labels from random ones, not
a bound that is proven for them.

Kernels and their spectra
-------------------------
:func:`gram`: ``H`` of Proposition 3.6 (Arora et al.'s :math:`H^\infty`);
:func:`ntk`: the infinite-width :math:`\Theta_\infty` (times ``m/k`` to be on the scale of
a width-``m`` net); :func:`empirical`: :math:`\Theta_0` of a net; :func:`eigh`: any kernel
matrix.  Each returns a :class:`Spectrum`.  The eigendecomposition is
:func:`tinyntk.predict.eigh` (float64, the same checks as :func:`tinyntk.predict.gd_mse`,
eigenvalues below float64's resolution set to 0), reordered to descending, so that
:meth:`Spectrum.predicted_projections` is exactly what :func:`~tinyntk.predict.gd_mse`
computes, one eigendirection at a time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy

from . import backend as B
from . import checks, kernels, predict


@dataclass
class Spectrum:
    r"""A kernel's eigenvalues, largest first, and its orthonormal eigenvectors.

    ``values[i]`` is :math:`\lambda_{i+1}` (``values[0]`` the largest) and
    ``vectors[:, i]`` its eigenvector :math:`u_{i+1}`: float64 arrays of the active
    backend, ``(N,)`` and ``(N, N)``.  ``n`` is the number of training examples (the
    :math:`1/n` of eq. (2.1)); ``k`` is the number of outputs of a kernel that couples them
    (``(n, k, n, k)``, flattened with row ``i·k + a`` for example ``i``, output ``a``; then
    ``N = n·k``), ``None`` for an ``(n, n)`` kernel shared by every output.

    A residual or label array ``R`` is ``(n, c)`` (``(n,)`` is read as ``(n, 1)``): for an
    ``(n, n)`` kernel every column is projected on its own; for a coupled kernel ``R``
    must be ``(n, k)`` and is flattened to one column of length ``n·k``.
    """

    values: object
    vectors: object
    n: int
    k: int | None = None

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def _columns(self, R, name):
        """``R`` as the ``(N, c)`` float64 matrix the eigenvectors act on."""
        R = B.asarray(checks.real_array(R, name), dtype=numpy.float64)
        if R.ndim == 1:
            R = R.reshape(-1, 1)
        want = f"({self.n}, c)" if self.k is None else f"({self.n}, {self.k})"
        if R.ndim != 2 or R.shape[0] != self.n or (self.k is not None and R.shape[1] != self.k):
            raise ValueError(f"{name} must have shape {want} to match the kernel's "
                             f"{self.n} training examples, got {tuple(R.shape)}")
        if not checks.all_finite(R):
            raise ValueError(f"{name} contains NaN or inf")
        return R if self.k is None else R.reshape(-1, 1)

    def indices(self, which):
        """``which`` as a checked 1-D array of indices into the eigenvalues (0 = the
        largest; negative ones count from the smallest); ``None`` means all."""
        if which is None:
            return numpy.arange(len(self))
        idx = numpy.atleast_1d(numpy.asarray(which))
        if idx.ndim != 1 or idx.dtype.kind not in "iu":
            raise TypeError(f"which must be integer indices of eigenvalues (0 = the largest), "
                            f"got {which!r}")
        N = len(self)
        if ((idx < -N) | (idx >= N)).any():
            raise ValueError(f"which: an index is out of range for {N} eigenvalues, got "
                             f"{idx.tolist()}")
        return idx % N

    def project(self, R, which=None):
        r""":math:`u_i^\top R` for the eigenvectors ``which`` (all by default):
        ``(len(which), c)`` (``c = 1`` for a coupled kernel)."""
        U = self.vectors if which is None else self.vectors[:, self.indices(which)]
        return U.T @ self._columns(R, "R")

    def energy(self, R):
        r"""The fraction of :math:`\|R\|_F^2` on each eigendirection,
        :math:`\|u_i^\top R\|^2/\|R\|_F^2`, ``(N,)``; it sums to 1 (0 everywhere for
        ``R = 0``)."""
        C = self.project(R)
        e = (C * C).sum(axis=1)
        total = float(e.sum())
        return e / total if total > 0 else e

    def decay(self, lr, t, flow=False):
        r""":math:`(1 - \eta\lambda_i/n)^t`, ``(N,)`` for a scalar ``t``, ``(len(t), N)`` for
        an array (:func:`tinyntk.predict.decay`)."""
        return predict.decay(self.values, lr, self.n, t, flow)

    def predicted_projections(self, R0, lr, t, which=None, flow=False):
        r"""The kernel-regime projections of the residual,
        :math:`u_i^\top r(t) = (1 - \eta\lambda_i/n)^t\,u_i^\top r(0)`, for the
        eigenvectors ``which``: ``(len(which), c)`` for a scalar ``t``,
        ``(len(t), len(which), c)`` for an array.

        ``R0`` is the residual at :math:`W(0)`, ``f(X) - Y``.  Equal (to rounding) to
        ``spec.project(f_t - Y, which)`` with ``f_t`` from :func:`tinyntk.predict.gd_mse`
        on the same kernel."""
        C = self.project(R0, which)
        D = self.decay(lr, t, flow)
        return D[..., self.indices(which), None] * C

    def predicted_loss(self, R0, lr, t, flow=False):
        r"""The kernel-regime training loss of eq. (2.1),
        :math:`\frac1{2n}\sum_i (1 - \eta\lambda_i/n)^{2t}\|u_i^\top r(0)\|^2`: a float for
        a scalar ``t``, a host ``numpy`` array ``(len(t),)`` for an array."""
        C = self.project(R0)
        weight = (C * C).sum(axis=1)                    # ‖u_iᵀ r(0)‖² per direction
        D = self.decay(lr, t, flow)
        loss = B.to_numpy((D * D) @ weight) / (2.0 * self.n)
        return float(loss) if loss.ndim == 0 else loss


    def predicted_distance(self, R0, lr, t, flow=False):
        r"""How far GD moves the weights in the kernel regime,
        :math:`\|W(t) - W(0)\|_F` over every trained layer:

        .. math::  \|W(t) - W(0)\|_F^2 = \sum_{\lambda_i > 0}
                   \frac{\bigl(1 - (1 - \eta\lambda_i/n)^t\bigr)^2}{\lambda_i}\,
                   \|u_i^\top r(0)\|^2 .

        GD on the linearized net moves :math:`W` by :math:`-(\eta/n) J^\top r(s)` per
        step (``J`` the Jacobian of the outputs at :math:`W(0)`, :math:`\Theta = JJ^\top`),
        so :math:`W(t) - W(0) = -J^\top\Theta^{+}\bigl(I - (I - \eta\Theta/n)^t\bigr)r(0)`;
        for :math:`t \to \infty` (``flow=True, t=numpy.inf``) it is
        :math:`\sqrt{r(0)^\top\Theta^{+}r(0)}`, the minimum-norm fit.  A float for a scalar
        ``t``, a host array ``(len(t),)`` for an array.  Exact for ``tn.linearize(net)``
        trained by :func:`tinyntk.train` when this is :func:`empirical` of ``net``."""
        xp = B.get_backend().xp
        C = self.project(R0)
        weight = (C * C).sum(axis=1)
        lam = self.values
        positive = lam > 0
        inverse = xp.where(positive, 1.0 / xp.where(positive, lam, 1.0), 0.0)
        D = self.decay(lr, t, flow)
        dist = B.to_numpy(xp.sqrt(((1.0 - D) ** 2) @ (weight * inverse)))
        return float(dist) if dist.ndim == 0 else dist

# ----- spectra of the kernels the theory uses ------------------------------------------
def eigh(K) -> Spectrum:
    """The :class:`Spectrum` of a kernel matrix ``K``, ``(n, n)`` or ``(n, k, n, k)``
    (checked as :func:`tinyntk.predict.gd_mse` checks its kernel)."""
    lam, U = predict.eigh(K)
    shape = tuple(numpy.shape(K))
    return Spectrum(values=lam[::-1].copy(), vectors=U[:, ::-1].copy(), n=shape[0],
                    k=shape[1] if len(shape) == 4 else None)


def gram(X) -> Spectrum:
    """The spectrum of Proposition 3.6's Gram matrix ``H`` (:func:`tinyntk.kernels.gram_H`;
    Arora et al.'s :math:`H^\\infty`); its smallest eigenvalue is :math:`\\lambda_0`."""
    return eigh(kernels.gram_H(X))


def ntk(X, L: int = 1, m=None, k: int = 1, train_output: bool = False) -> Spectrum:
    r"""The spectrum of the infinite-width NTK :func:`tinyntk.kernels.ntk`.

    Without ``m``: of :math:`\Theta_\infty = \lim \frac km\Theta_m` itself.  With ``m``: of
    :math:`\Theta_\infty\cdot m/k`, the kernel a width-``m`` net with ``k`` outputs has in
    the limit, on the scale of :func:`empirical` (what :func:`tinyntk.predict.gd_mse`
    needs to predict that net; ``train_output`` adds the output layer's term, which needs
    ``m``)."""
    K = kernels.ntk(X, L=L, train_output=train_output, m=m, k=k)
    if m is not None:
        K = K * (float(checks.positive_int("m", m)) / float(checks.positive_int("k", k)))
    return eigh(K)


def empirical(net, X, train_output: bool = False) -> Spectrum:
    r"""The spectrum of the empirical NTK :math:`\Theta` of ``net`` on ``X``
    (:func:`tinyntk.kernels.empirical_ntk`): the hidden layers, plus ``V`` with
    ``train_output``, as :func:`tinyntk.train` trains them.  For ``k > 1`` the whole
    ``(n, k, n, k)`` kernel (the hidden layers couple the outputs), so that the
    predictions are exactly those of the linearized net."""
    output = "full" if net.k > 1 else "mean"
    return eigh(kernels.empirical_ntk(net, X, train_output=train_output, output=output))


# ----- the labels' complexity for a kernel ---------------------------------------------
def quadratic_form(K, Y) -> float:
    r""":math:`\sum_a y_a^\top K^{-1} y_a` over the columns of ``Y`` (``(n,)`` or
    ``(n, c)``; ``(n, k)`` for a coupled kernel), from the eigendecomposition:
    :math:`\sum_i \|u_i^\top Y\|^2/\lambda_i`.

    ``K`` is a kernel matrix or a :class:`Spectrum`.  The sum runs over the eigenvalues
    float64 resolves (the pseudo-inverse); if ``Y`` has a component along an eigenvalue
    set to 0, the true value is infinite and ``inf`` is returned (the part of ``Y`` not
    fitted by the kernel is, to float64, the component of norm above
    :math:`10^{-8}\|Y\|`).  Raises ``ValueError`` for a zero kernel."""
    spec = K if isinstance(K, Spectrum) else eigh(K)
    C = spec.project(Y, None)
    weight = (C * C).sum(axis=1)
    positive = spec.values > 0
    if not bool(positive.any()):
        raise ValueError("quadratic_form: the kernel is zero (no eigenvalue above rounding)")
    outside = float(weight[~positive].sum())
    if outside > 1e-16 * float(weight.sum()):
        return math.inf
    return float((weight[positive] / spec.values[positive]).sum())


def generalization_measure(X, Y) -> float:
    r"""Arora et al.'s (2019, Theorem 5.1) data-dependent complexity
    :math:`\sqrt{2\,y^\top (H^\infty)^{-1} y/n}` with :math:`H^\infty` =
    :func:`tinyntk.kernels.gram_H` (the two-layer kernel, ``L = 1``), summed over the
    columns of ``Y``.  Small for labels along the top eigenvectors of ``H``, large for
    random labels; for the deep nets here a measurement, not a proven bound (module
    docstring)."""
    spec = gram(X)
    return math.sqrt(2.0 * quadratic_form(spec, Y) / spec.n)
