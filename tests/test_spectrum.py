"""Eigendirections of the kernels (tinyntk.spectrum) and the EigenProjections probe.

Tolerances.  Everything is float64 and the kernels are at most 48 × 48.  ``eigh`` returns
eigenvalues to ~N·eps·λ_max and an orthogonal ``U`` to ~N·eps, so the eigenvalues are
compared with ``numpy.linalg.eigvalsh`` to 1e-12·λ_max.  A prediction multiplies a
projection by a factor ≤ 1 computed with ``log1p`` (relative error ~t·eps for t ≤ 60) and
:func:`tinyntk.predict.gd_mse` rotates back with the same ``U``, so both agree to
~(N + t)·eps·‖r(0)‖ < 1e-12·‖r(0)‖: 1e-10 is asked for, and a wrong sign, exponent, step
or 1/n gives an O(1) error.  The probe on a *linearized* net is exactly the kernel
dynamics (its Jacobian never moves), so it matches the prediction to the same tolerance;
on the real ReLU net only the first step is exact.
"""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinyntk as tn
from strategies import fixture_settings
from tinyntk import diagnostics, spectrum

RTOL = 1e-10


def _problem(n=16, d=8, m=128, k=1, L=2, seed=0):
    X, Y = tn.data.sphere(n=n, d=d, k=k, seed=seed)
    net = tn.ReLUNet.init(d=d, m=m, k=k, L=L, seed=seed + 1)
    return X, Y, net


def test_eigenvalues_descending_and_match_numpy():
    X, Y, net = _problem()
    K = tn.kernels.empirical_ntk(net, X)
    spec = spectrum.eigh(K)
    lam = np.linalg.eigvalsh(K)[::-1]
    assert np.all(np.diff(spec.values) <= 0)
    np.testing.assert_allclose(spec.values, lam, rtol=0, atol=1e-12 * lam[0])
    # the eigenvectors diagonalize K and are orthonormal
    U = spec.vectors
    np.testing.assert_allclose(U.T @ U, np.eye(len(spec)), atol=1e-12)
    np.testing.assert_allclose(U.T @ K @ U, np.diag(spec.values), atol=1e-12 * lam[0])


@fixture_settings(30)
@given(n=st.integers(3, 24), L=st.integers(1, 3), t=st.integers(0, 60),
       frac=st.floats(0.05, 0.95))
def test_predicted_projections_and_loss_match_gd_mse(n, L, t, frac):
    X, Y, net = _problem(n=n, L=L, m=64)
    K = tn.kernels.empirical_ntk(net, X)
    spec = spectrum.eigh(K)
    f0 = net(X)
    R0 = f0 - Y
    lr = frac * 2 * n / spec.values[0]          # a stable step: η λ_max / n < 2
    f_t, _ = tn.predict.gd_mse(K, Y, lr=lr, t=t, f0_train=f0)
    scale = np.linalg.norm(R0)
    np.testing.assert_allclose(spec.predicted_projections(R0, lr, t), spec.project(f_t - Y),
                               rtol=0, atol=RTOL * scale)
    loss = 0.5 / n * float(((f_t - Y) ** 2).sum())
    assert abs(spec.predicted_loss(R0, lr, t) - loss) <= RTOL * scale ** 2 / n


def test_array_of_times_and_selected_directions():
    X, Y, net = _problem()
    spec = spectrum.empirical(net, X)
    R0 = net(X) - Y
    lr = 0.5 * 2 * 16 / spec.values[0]
    times = [0, 3, 10]
    which = [0, 7, -1]
    P = spec.predicted_projections(R0, lr, times, which=which)
    assert P.shape == (3, 3, 1)
    np.testing.assert_allclose(P[0], spec.project(R0, which), atol=1e-15 * np.linalg.norm(R0))
    # direction by direction: the literal (1 - ηλ/n)^t
    lam = spec.values[[0, 7, 15]]
    for a, t in enumerate(times):
        want = (1 - lr * lam / 16) ** t * spec.project(R0, which)[:, 0]
        np.testing.assert_allclose(P[a, :, 0], want, rtol=1e-12, atol=1e-15)
    L = spec.predicted_loss(R0, lr, times)
    assert isinstance(L, np.ndarray) and L.shape == (3,)
    assert L[0] == pytest.approx(0.5 / 16 * float((R0 ** 2).sum()), rel=1e-12)
    assert np.all(np.diff(L) <= 0)                    # a stable step never increases it


def test_energy_sums_to_one_and_is_zero_for_zero():
    X, Y, net = _problem()
    spec = spectrum.gram(X)
    e = spec.energy(Y)
    assert e.shape == (16,) and float(e.sum()) == pytest.approx(1.0, rel=1e-12)
    assert np.all(spec.energy(np.zeros_like(Y)) == 0)
    # a label exactly along the top eigenvector puts all its energy there
    e_top = spec.energy(spec.vectors[:, 0])
    assert e_top[0] == pytest.approx(1.0, rel=1e-12)


def test_probe_on_linearized_net_follows_the_prediction():
    """The linearized net is the kernel regime exactly: the probe's measured projections
    equal (1 - ηλ_i/n)^t u_iᵀ r(0) at every record."""
    X, Y, net = _problem()
    spec = spectrum.empirical(net, X)
    R0 = net(X) - Y
    lr = 0.5 * 2 * 16 / spec.values[0]
    which = [0, 8, 15]
    probe = diagnostics.EigenProjections(which=which)
    h = tn.train(tn.linearize(net), X, Y, steps=40, lr=lr, probes=[probe], record_every=5)
    measured = np.array(h["eigen_projections"])
    predicted = spec.predicted_projections(R0, lr, h["step"], which=which)[..., 0]
    np.testing.assert_allclose(measured, predicted, rtol=0, atol=RTOL * np.linalg.norm(R0))
    # the probe computed the same spectrum at W(0) itself
    np.testing.assert_allclose(probe.spectrum.values, spec.values, atol=1e-12 * spec.values[0])


def test_probe_on_the_relu_net_starts_on_the_prediction():
    X, Y, net = _problem(m=512)
    spec = spectrum.empirical(net, X)
    R0 = net(X) - Y
    lr = 0.5 * 2 * 16 / spec.values[0]
    h = tn.train(net, X, Y, steps=20, lr=lr, probes=[diagnostics.EigenProjections(which=[0, 1])])
    measured = np.array(h["eigen_projections"])
    predicted = spec.predicted_projections(R0, lr, h["step"], which=[0, 1])[..., 0]
    np.testing.assert_allclose(measured[0], predicted[0], atol=1e-12 * np.linalg.norm(R0))
    # the top direction decays (it is the fastest one); the width is finite, so only roughly
    assert abs(measured[-1, 0]) < 0.5 * abs(measured[0, 0])


def test_coupled_kernel_for_k_outputs():
    X, Y, net = _problem(n=8, k=3)
    spec = spectrum.empirical(net, X)
    assert len(spec) == 24 and spec.k == 3 and spec.n == 8
    R0 = net(X) - Y
    lr = 0.5 * 2 * 8 / spec.values[0]
    K = tn.kernels.empirical_ntk(net, X, output="full")
    f_t, _ = tn.predict.gd_mse(K, Y, lr=lr, t=7, f0_train=net(X))
    assert spec.predicted_loss(R0, lr, 7) == pytest.approx(
        0.5 / 8 * float(((f_t - Y) ** 2).sum()), rel=1e-10)
    with pytest.raises(ValueError, match=r"\(8, 3\)"):
        spec.project(R0[:, :2])
    probe = diagnostics.EigenProjections(which=[0, 1])
    h = tn.train(tn.linearize(net), X, Y, steps=5, lr=lr, probes=[probe])
    np.testing.assert_allclose(h["eigen_projections"][-1],
                               spec.predicted_projections(R0, lr, 5, which=[0, 1]).ravel(),
                               atol=RTOL * np.linalg.norm(R0))


def test_quadratic_form_matches_a_solve_and_is_inf_off_the_range():
    X, Y, net = _problem()
    K = tn.kernels.gram_H(X)
    want = float((Y.T @ np.linalg.solve(K, Y)).sum())
    assert spectrum.quadratic_form(K, Y) == pytest.approx(want, rel=1e-8)
    assert spectrum.quadratic_form(spectrum.eigh(K), Y) == pytest.approx(want, rel=1e-8)
    # a rank-one kernel: a label along its range is finite, one outside it is not
    u = np.ones(16) / 4.0
    K1 = np.outer(u, u)
    assert spectrum.quadratic_form(K1, 2 * u) == pytest.approx(4.0, rel=1e-12)
    v = np.zeros(16); v[0], v[1] = 1.0, -1.0
    assert spectrum.quadratic_form(K1, v) == math.inf
    with pytest.raises(ValueError, match="zero"):
        spectrum.quadratic_form(np.zeros((4, 4)), np.ones(4))


def test_generalization_measure_tells_smooth_labels_from_random():
    X, Y_random = tn.data.sphere(n=64, d=8, k=1, seed=0, target="gaussian")
    Xs, Y_smooth = tn.data.sphere(n=64, d=8, k=1, seed=0, target="teacher")
    g = spectrum.generalization_measure(X, Y_random / np.abs(Y_random).max())
    g_s = spectrum.generalization_measure(Xs, Y_smooth / np.abs(Y_smooth).max())
    assert np.isfinite(g) and np.isfinite(g_s)
    assert g_s < g
    H = tn.kernels.gram_H(X)
    y = Y_random / np.abs(Y_random).max()
    assert g == pytest.approx(math.sqrt(2 * float((y.T @ np.linalg.solve(H, y)).sum()) / 64), rel=1e-8)


def test_ntk_spectrum_scaled_by_width():
    X, Y, net = _problem()
    s = spectrum.ntk(X, L=2)
    s_m = spectrum.ntk(X, L=2, m=128, k=1)
    np.testing.assert_allclose(s_m.values, 128 * s.values, rtol=1e-12, atol=1e-12 * s_m.values[0])


@pytest.mark.parametrize("which, err", [([16], ValueError), ([-17], ValueError),
                                        ([0.5], TypeError), ("top", TypeError)])
def test_bad_which_names_the_problem(which, err):
    X, Y, net = _problem()
    spec = spectrum.gram(X)
    with pytest.raises(err, match="which"):
        spec.project(Y, which)


def test_bad_residuals_and_kernels():
    X, Y, net = _problem()
    spec = spectrum.gram(X)
    with pytest.raises(ValueError, match="16 training examples"):
        spec.project(Y[:5])
    bad = Y.copy(); bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        spec.project(bad)
    with pytest.raises(ValueError):
        spectrum.eigh(np.ones((3, 4)))
    with pytest.raises(ValueError):
        spectrum.eigh(np.array([[1.0, 2.0], [0.0, 1.0]]))     # not symmetric
    with pytest.raises(ValueError, match="lam"):
        tn.predict.decay(np.ones((2, 2)), 0.1, 4, 3)


@pytest.mark.parametrize("k", [1, 2])
def test_predicted_distance_is_how_far_the_linearized_net_moves(k):
    """GD on tn.linearize(net) moves W by -J^T Θ^+ (I - (I - ηΘ/n)^t) r(0): its Frobenius
    norm over the hidden layers (DistanceFro) equals predicted_distance at every record,
    to rounding (float64, 60 steps: relative 1e-10 is ~1e5 ulps of headroom)."""
    X, Y, net = _problem(k=k)
    spec = spectrum.empirical(net, X)
    R0 = net(X) - Y
    lr = 0.5 * 2 * 16 / float(spec.values[0])
    h = tn.train(tn.linearize(net), X, Y, steps=60, lr=lr, record_every=10,
                 probes=[diagnostics.DistanceFro()])
    measured = np.sqrt((np.array(h["distance_fro"]) ** 2).sum(axis=1))
    predicted = spec.predicted_distance(R0, lr, h["step"])
    np.testing.assert_allclose(predicted, measured, rtol=1e-10, atol=1e-14)
    assert predicted[0] == 0.0 and spec.predicted_distance(R0, lr, 60) == pytest.approx(predicted[-1])
    # t → ∞ under gradient flow: the minimum-norm fit √(r(0)ᵀ Θ⁺ r(0)), here Θ invertible.
    K = tn.to_numpy(tn.kernels.empirical_ntk(net, X, output="full" if k > 1 else "mean"))
    K = K.reshape(16 * k, 16 * k)
    r = tn.to_numpy(R0).reshape(-1)
    assert spec.predicted_distance(R0, lr, np.inf, flow=True) == pytest.approx(
        math.sqrt(r @ np.linalg.solve(K, r)), rel=1e-8)
