"""Kernel-regime predictions (tinyntk.predict) against the literal recursion, expm and solves.

Tolerances.  Everything runs in float64.  The closed forms use an orthogonal ``U`` from
``eigh`` (orthogonal to ~N·eps) and the recursion sums ``t`` rounded products, so both are
within ~(N + t)·eps·scale of the exact dynamics, with ``scale`` the size of the residual
(≤ ‖f0 − Y‖ for a stable step) and of the test outputs' move (≤ 2t‖f0 − Y‖·‖K_tx‖/‖K‖).
For N ≤ 40 and t ≤ 60 that is below 1e-12·scale; the tests ask for 1e-10·scale, which
still catches any wrong factor, sign, exponent or off-by-one step (those give O(1) errors).
"""
import warnings
from fractions import Fraction

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given
from hypothesis import strategies as st

import tinyntk as tn
from conftest import requires_gpu
from strategies import fixture_settings
from tinyntk import predict

RTOL = 1e-10


def _kernels(n=20, n_test=6, d=8, seed=0, ridge=0.1):
    """A nonsingular PSD kernel on n + n_test points: (K, K_test_train, K_test_test)."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n + n_test, d))
    K = A @ A.T / d + ridge * np.eye(n + n_test)
    return K[:n, :n], K[n:, :n], K[n:, n:]


def _data(n, k, n_test, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, k)), rng.standard_normal((n, k)),
            rng.standard_normal((n_test, k)))


def literal(K, Y, lr, t, f0, K_tx, f0_test):
    """The recursion exactly as the contract writes it, one step at a time."""
    n = K.shape[0]
    f, ft = f0.copy(), f0_test.copy()
    for _ in range(t):
        r = f - Y
        f, ft = f - lr / n * (K @ r), ft - lr / n * (K_tx @ r)
    return f, ft


def _close(a, b, scale):
    assert np.abs(np.asarray(a) - np.asarray(b)).max() <= RTOL * scale


# ----- discrete GD --------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("method", ["eigh", "recursion", "auto"])
def test_gd_matches_the_literal_recursion(k, method):
    K, K_tx, _ = _kernels()
    Y, f0, f0t = _data(20, k, 6)
    lr = 1.5 * 20 / np.linalg.eigvalsh(K)[-1]          # 1 - a lambda_max < 0: both branches
    for t in (0, 1, 7, 60):
        f, ft = tn.predict.gd_mse(K, Y, lr, t, f0, K_tx, f0t, method=method)
        ef, eft = literal(K, Y, lr, t, f0, K_tx, f0t)
        assert f.shape == (20, k) and ft.shape == (6, k)
        _close(f, ef, np.abs(f0 - Y).max())
        _close(ft, eft, (1 + 2 * t) * np.abs(f0 - Y).max() * np.abs(K).max())


@pytest.mark.parametrize("k", [1, 3])
def test_array_of_times_in_any_order_and_both_methods_agree(k):
    K, K_tx, _ = _kernels(n=30, seed=3)
    Y, f0, f0t = _data(30, k, 6, seed=4)
    lr = 0.9 * 30 / np.linalg.eigvalsh(K)[-1]
    times = np.array([60, 0, 7, 1, 7])
    fe, fte = tn.predict.gd_mse(K, Y, lr, times, f0, K_tx, f0t, method="eigh")
    fr, ftr = tn.predict.gd_mse(K, Y, lr, times, f0, K_tx, f0t, method="recursion")
    assert fe.shape == (5, 30, k) and fte.shape == (5, 6, k)
    scale = np.abs(f0 - Y).max() * 200
    _close(fe, fr, scale)
    _close(fte, ftr, scale)
    for i, t in enumerate(times):
        ef, eft = literal(K, Y, lr, int(t), f0, K_tx, f0t)
        _close(fe[i], ef, scale)
        _close(fte[i], eft, scale)
    for method in ("eigh", "recursion"):
        empty, empty_test = tn.predict.gd_mse(K, Y, lr, np.array([], dtype=int), f0, K_tx, f0t,
                                              method=method)
        assert empty.shape == (0, 30, k) and empty_test.shape == (0, 6, k)


def test_defaults_zero_initial_outputs_and_no_test_points():
    K, _, _ = _kernels()
    Y, _, _ = _data(20, 2, 6)
    f, ft = tn.predict.gd_mse(K, Y, lr=1.0, t=5)
    assert ft is None
    ef, _ = literal(K, Y, 1.0, 5, np.zeros_like(Y), np.zeros((1, 20)), np.zeros((1, 2)))
    _close(f, ef, 1.0)
    f1, _ = tn.predict.gd_mse(K, Y[:, 0], lr=1.0, t=5)          # 1-D Y is (n, 1)
    assert f1.shape == (20, 1)
    _close(f1[:, 0], ef[:, 0], 1.0)


def test_auto_picks_the_recursion_for_few_steps_and_eigh_for_many(monkeypatch):
    K, _, _ = _kernels(n=40)
    Y, _, _ = _data(40, 1, 1)
    used = []
    for name, label in (("_recursion", "recursion"), ("_spectral", "eigh")):
        original = getattr(predict, name)
        monkeypatch.setattr(predict, name,
                            lambda *a, _f=original, _l=label: used.append(_l) or _f(*a))
    for t, flow in ((20, False), (21, False), (5, True), (np.inf, False)):
        tn.predict.gd_mse(K, Y, 0.1, t, flow=flow)
    assert used == ["recursion", "eigh", "eigh", "eigh"]     # max(t)·k <= N/2 = 20


# ----- gradient flow and t = inf ------------------------------------------------------
@pytest.mark.parametrize("k", [1, 2])
def test_flow_matches_expm(k):
    K, K_tx, _ = _kernels()
    Y, f0, f0t = _data(20, k, 6)
    lr, n = 0.7, 20
    times = np.array([0.0, 0.3, 2.5, 40.0])
    f, ft = tn.predict.gd_mse(K, Y, lr, times, f0, K_tx, f0t, flow=True)
    for i, t in enumerate(times):
        E = scipy.linalg.expm(-lr / n * t * K)
        _close(f[i], Y + E @ (f0 - Y), np.abs(f0 - Y).max())
        # f_test(t) = f0_test - K_tx K^{-1} (I - E) (f0 - Y)   (K nonsingular here)
        expected = f0t - K_tx @ np.linalg.solve(K, (np.eye(n) - E) @ (f0 - Y))
        _close(ft[i], expected, 10 * np.abs(f0 - Y).max())


@pytest.mark.parametrize("flow", [True, False])
def test_t_inf_is_kernel_regression_on_a_nonsingular_kernel(flow):
    K, K_tx, _ = _kernels()
    Y, f0, f0t = _data(20, 2, 6)
    lr = 20 / np.linalg.eigvalsh(K)[-1]
    f, ft = tn.predict.gd_mse(K, Y, lr, np.inf, None, K_tx, None, flow=flow)
    _close(f, Y, 1.0)                                    # every training point fitted
    _close(ft, tn.predict.kernel_regression(K, Y, K_tx), 100.0)
    # from f0: the residual's start is fitted too; f_test moves by the regression of f0 - Y
    f, ft = tn.predict.gd_mse(K, Y, lr, np.inf, f0, K_tx, f0t, flow=flow)
    _close(ft, f0t - tn.predict.kernel_regression(K, f0 - Y, K_tx), 100.0)


def test_t_inf_at_exactly_the_stable_limit_has_no_limit():
    # K = diag(2, 1), n = 2, lr = 2, f0 = 0: 1 - a lambda_max = -1, GD alternates [0, 1], [2, 1]
    K, Y = np.diag([2.0, 1.0]), np.ones((2, 1))
    with pytest.warns(RuntimeWarning, match="not below 2n/λ_max"):
        f, _ = tn.predict.gd_mse(K, Y, 2.0, [1000, 1001])
    np.testing.assert_allclose(f[:, :, 0], [[0.0, 1.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="has no limit"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tn.predict.gd_mse(K, Y, 2.0, np.inf)


def test_t_inf_with_a_divergent_step_has_no_limit():
    K, _, _ = _kernels()
    Y, _, _ = _data(20, 1, 1)
    lr = 2.5 * 20 / np.linalg.eigvalsh(K)[-1]
    with pytest.raises(ValueError, match="has no limit"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tn.predict.gd_mse(K, Y, lr, np.inf)


# ----- singular and slightly non-PSD kernels ------------------------------------------
def _duplicate_points_kernels(L=2):
    """NTK blocks for 12 training points of which 3 appear twice (rank 12 of 15) and 5 test
    points, the last one equal to training point 0.  The duplicates are made by indexing
    one kernel matrix, so their rows are exactly equal."""
    X, _ = tn.data.sphere(n=16, d=5, k=1, seed=2)
    Kall = tn.to_numpy(tn.kernels.ntk(X, L=L))
    train = list(range(12)) + [0, 1, 2]
    test = [12, 13, 14, 15, 0]
    return Kall[np.ix_(train, train)], Kall[np.ix_(test, train)], Kall[np.ix_(test, test)]


def test_singular_kernel_gives_finite_outputs_equal_to_the_recursion():
    K, K_tx, K_tt = _duplicate_points_kernels()
    assert np.linalg.matrix_rank(K) == 12
    rng = np.random.default_rng(5)
    Y, f0 = rng.standard_normal((15, 2)), rng.standard_normal((15, 2))
    Y[12:] = Y[:3]                                      # duplicates agree on their labels
    f0t = rng.standard_normal((5, 2))
    lr = 15 / np.linalg.eigvalsh(K)[-1]
    for t in (1, 7, 60):
        f, ft = tn.predict.gd_mse(K, Y, lr, t, f0, K_tx, f0t, method="eigh")
        ef, eft = literal(K, Y, lr, t, f0, K_tx, f0t)
        assert np.isfinite(f).all() and np.isfinite(ft).all()
        _close(f, ef, 10.0)
        _close(ft, eft, 10.0 * t)
    # t = inf: the residual keeps only its null-space part; the test outputs move by the
    # pseudo-inverse regression of the residual
    Kp = scipy.linalg.pinvh(K)
    null = np.eye(15) - K @ Kp
    for flow in (False, True):
        f, ft = tn.predict.gd_mse(K, Y, lr, np.inf, f0, K_tx, f0t, flow=flow)
        np.testing.assert_allclose(f, Y + null @ (f0 - Y), atol=1e-9)
        np.testing.assert_allclose(ft, f0t - K_tx @ Kp @ (f0 - Y), atol=1e-8)
    # kernel regression falls back to the pseudo-inverse: finite, fits every training
    # point (the labels are consistent), and equals the pinv formula
    mean = tn.predict.kernel_regression(K, Y, K_tx)
    assert np.isfinite(mean).all()
    np.testing.assert_allclose(mean, K_tx @ scipy.linalg.pinvh(K) @ Y, atol=1e-8)
    np.testing.assert_allclose(mean[-1], Y[0], atol=1e-8)   # the test point on x_0
    mean, cov = tn.predict.gp_posterior(K, Y, K_tx, K_tt)
    assert np.isfinite(cov).all() and abs(cov[-1, -1]) < 1e-8


def test_contradicting_duplicates_give_the_least_squares_fit_not_nan():
    K, K_tx, _ = _duplicate_points_kernels(L=1)
    Y = np.arange(15.0).reshape(15, 1)
    # diag_reg = 1e-16: Cholesky may succeed with pivots at rounding level (1.7e-16 here),
    # and solving with them would put O(1) rounding garbage into the test outputs
    for reg in (0.0, 1e-16):
        mean = tn.predict.kernel_regression(K, Y, K_tx, diag_reg=reg)
        assert np.isfinite(mean).all()
        np.testing.assert_allclose(mean, K_tx @ scipy.linalg.pinvh(K) @ Y, atol=1e-7)
        # the test point on x_0 = x_12 gets the mean of their labels 0 and 12
        assert mean[-1, 0] == pytest.approx(6.0, abs=1e-7)


def _kernel_with_eigenvalues(lam, seed=0):
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(lam), len(lam))))
    return (Q * lam) @ Q.T


def test_rounding_level_negative_eigenvalue_is_accepted_and_a_real_one_rejected():
    lam = np.linspace(1.0, 5.0, 10)
    Y = np.ones((10, 1))
    lam[0] = -1e-13 * lam.max()
    K = _kernel_with_eigenvalues(lam)
    f, _ = tn.predict.gd_mse(K, Y, 1.0, 100, method="eigh")
    # treated as 0: the literal recursion moves that component by (1 + 1e-14)^100 - 1 ~ 1e-12
    ef, _ = literal(K, Y, 1.0, 100, np.zeros_like(Y), np.zeros((1, 10)), np.zeros((1, 1)))
    _close(f, ef, 10.0)
    lam[0] = -1e-3 * lam.max()
    with pytest.raises(ValueError, match=r"not positive semi-definite: its smallest eigenvalue "
                                         r"is -0\.005"):
        tn.predict.gd_mse(_kernel_with_eigenvalues(lam), Y, 1.0, 100, method="eigh")
    with pytest.raises(ValueError, match="not positive semi-definite"):
        tn.predict.kernel_regression(_kernel_with_eigenvalues(lam), Y, np.ones((2, 10)))
    # the recursion is exact for any symmetric K and makes no PSD check
    K = _kernel_with_eigenvalues(lam)
    f, _ = tn.predict.gd_mse(K, Y, 1.0, 3, method="recursion")
    ef, _ = literal(K, Y, 1.0, 3, np.zeros_like(Y), np.zeros((1, 10)), np.zeros((1, 1)))
    _close(f, ef, 10.0)
    # float32 kernels: the rounding level is r = 100 eps32, still far above a 5% eigenvalue
    lam = np.linspace(1.0, 5.0, 200)
    lam[0] = -0.05 * lam.max()
    with pytest.raises(ValueError, match="not positive semi-definite"):
        tn.predict.gd_mse(_kernel_with_eigenvalues(lam).astype(np.float32), np.ones((200, 1)),
                          1.0, 1000, method="eigh")


def test_a_failed_cholesky_that_does_not_raise_is_caught(monkeypatch):
    """CuPy returns the partial factor of an indefinite matrix instead of raising; its failed
    pivot is non-positive.  Simulated on NumPy: the solve must fall back (and reject the
    indefinite kernel), not use the factor."""
    lam = np.array([-0.3, 1.0, 2.0, 3.0])
    K = _kernel_with_eigenvalues(lam)
    partial = np.tril(K) + np.diag([0.7, 0.9, -0.3, 1.2] - np.diag(K))
    monkeypatch.setattr(np.linalg, "cholesky", lambda A: partial)
    with pytest.raises(ValueError, match="not positive semi-definite"):
        tn.predict.kernel_regression(K, np.ones((4, 1)), np.ones((1, 4)))


def test_gain_is_stable_for_zero_and_tiny_eigenvalues():
    # exact rational reference: g_t(lam) = a sum_{s<t} (1 - a lam)^s
    a, t = 0.25, 37
    lam = np.array([0.0, 1e-300, 1e-20, 1e-8, 1e-3, 2.0, 4.0, 6.0, 7.99])
    decay, gain = predict._filters(lam, a, np.array([float(t)]), flow=False)
    for i, l in enumerate(lam):
        q = 1 - Fraction(a) * Fraction(l)
        exact_gain = Fraction(a) * sum(q ** s for s in range(t))
        assert gain[0, i] == pytest.approx(float(exact_gain), rel=1e-13, abs=0)
        assert decay[0, i] == pytest.approx(float(q ** t), rel=1e-13, abs=1e-300)
    _, gain = predict._filters(lam, a, np.array([3.0]), flow=True)
    assert gain[0, 0] == a * 3.0 and gain[0, 1] == pytest.approx(a * 3.0, rel=1e-15)
    assert np.isfinite(gain).all()


# ----- Hypothesis: random PSD kernels -------------------------------------------------
@st.composite
def psd_problems(draw):
    n = draw(st.integers(1, 12))
    rank = draw(st.integers(0, n))
    k = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n + 2, rank)) * draw(st.sampled_from([1e-3, 1.0, 1e3]))
    Kall = A @ A.T
    fraction = draw(st.floats(0.01, 0.99))               # of the stable limit 2n/lambda_max
    t = draw(st.integers(0, 40))
    return Kall[:n, :n], Kall[n:, :n], rng.standard_normal((n, k)), \
        rng.standard_normal((n, k)), rng.standard_normal((2, k)), fraction, t


@given(psd_problems())
@fixture_settings(60)
def test_closed_form_satisfies_the_recursion_on_random_psd_kernels(problem):
    K, K_tx, Y, f0, f0t, fraction, t = problem
    n = K.shape[0]
    top = np.linalg.eigvalsh(K)[-1] if n else 0.0
    lr = fraction * 2 * n / top if top > 1e-12 * max(1.0, np.abs(K).max()) else 1.0
    f, ft = tn.predict.gd_mse(K, Y, lr, [t, t + 1], f0, K_tx, f0t, method="eigh")
    ef, eft = literal(K, Y, lr, t, f0, K_tx, f0t)
    scale = np.abs(f0 - Y).max() * (1 + 2 * t) * max(1.0, np.abs(K_tx).max() / max(top, 1e-300))
    assert np.abs(f[0] - ef).max() <= 1e-9 * np.abs(f0 - Y).max()
    assert np.abs(ft[0] - eft).max() <= 1e-9 * scale
    # one more step of the recursion from the prediction at t gives the prediction at t + 1
    r = f[0] - Y
    assert np.abs(f[1] - (f[0] - lr / n * K @ r)).max() <= 1e-9 * np.abs(f0 - Y).max()
    assert np.abs(ft[1] - (ft[0] - lr / n * K_tx @ r)).max() <= 1e-9 * scale


# ----- kernels that couple the outputs (n, k, n, k) -----------------------------------
def test_full_kernel_is_the_flattened_problem():
    n, k, n_test = 8, 2, 3
    rng = np.random.default_rng(7)
    A = rng.standard_normal(((n + n_test) * k, 6))
    Kall = (A @ A.T).reshape(n + n_test, k, n + n_test, k)
    K, K_tx = Kall[:n, :, :n, :], Kall[n:, :, :n, :]
    Y, f0, f0t = _data(n, k, n_test, seed=8)
    lr = 0.5
    f, ft = tn.predict.gd_mse(K, Y, lr, [0, 9], f0, K_tx, f0t)
    Kf, Kft = K.reshape(n * k, n * k), K_tx.reshape(n_test * k, n * k)
    # the same recursion on the flattened outputs, with 1/n (examples), not 1/(n k)
    ef, eft = literal(Kf, Y.reshape(-1, 1), lr * k, 9, f0.reshape(-1, 1), Kft, f0t.reshape(-1, 1))
    assert f.shape == (2, n, k) and ft.shape == (2, n_test, k)
    _close(f[1], ef.reshape(n, k), 10.0)
    _close(ft[1], eft.reshape(n_test, k), 100.0)
    # kernel regression and the GP posterior on the flattened outputs
    K_tt = Kall[n:, :, n:, :]
    mean, cov = tn.predict.gp_posterior(K, Y, K_tx, K_tt, diag_reg=0.1)
    assert mean.shape == (n_test, k) and cov.shape == (n_test, k, n_test, k)
    A = Kf + 0.1 * np.eye(n * k)
    np.testing.assert_allclose(mean.reshape(-1), Kft @ np.linalg.solve(A, Y.reshape(-1)), atol=1e-10)
    np.testing.assert_allclose(cov.reshape(n_test * k, -1),
                               K_tt.reshape(n_test * k, -1) - Kft @ np.linalg.solve(A, Kft.T),
                               atol=1e-9)
    np.testing.assert_allclose(tn.predict.kernel_regression(K, Y, K_tx, diag_reg=0.1), mean,
                               atol=1e-10)


def test_gd_mse_on_a_nets_empirical_ntk_predicts_a_small_real_step():
    """The contract's scaling: one GD step of the net moves its outputs by
    -(lr/n) Θ0 (f0 - Y) up to O(lr²)."""
    X, Y = tn.data.sphere(n=16, d=6, k=1, seed=0)
    net = tn.ReLUNet.init(d=6, m=256, k=1, L=2, seed=1)
    K = tn.kernels.empirical_ntk(net, X)
    f0 = net(X)
    errors = []
    for lr in (1e-3, 1e-4):
        trained = net.copy()
        tn.train(trained, X, Y, steps=1, lr=lr)
        predicted, _ = tn.predict.gd_mse(K, Y, lr, 1, f0_train=f0)
        move = np.abs(tn.to_numpy(predicted - f0)).max()
        errors.append(np.abs(tn.to_numpy(trained(X) - predicted)).max() / move)
    assert errors[0] < 1e-2                       # first order is right ...
    assert errors[1] < 0.2 * errors[0]            # ... and the rest shrinks with lr


# ----- kernel regression and the GP posterior -----------------------------------------
def test_gp_posterior_mean_is_kernel_regression_and_cov_is_symmetric_psd():
    K, K_tx, K_tt = _kernels(n=25, n_test=7, d=40, seed=9, ridge=0.0)   # nonsingular, no ridge
    Y, _, _ = _data(25, 2, 7)
    for reg in (0.0, 0.3):
        mean, cov = tn.predict.gp_posterior(K, Y, K_tx, K_tt, diag_reg=reg)
        np.testing.assert_allclose(mean, tn.predict.kernel_regression(K, Y, K_tx, diag_reg=reg),
                                   rtol=0, atol=1e-10 * np.abs(Y).max())
        expected = K_tt - K_tx @ np.linalg.solve(K + reg * np.eye(25), K_tx.T)
        np.testing.assert_allclose(cov, expected, atol=1e-10 * np.abs(K_tt).max())
        assert np.array_equal(cov, cov.T)
        assert np.linalg.eigvalsh(cov)[0] >= -1e-12 * np.abs(K_tt).max()
    # the posterior at training points: mean = labels, cov = 0 without regularization
    mean, cov = tn.predict.gp_posterior(K, Y, K[:4], K[:4, :4])
    np.testing.assert_allclose(mean, Y[:4], atol=1e-8)
    assert np.abs(cov).max() < 1e-8 * np.abs(K).max()


def test_a_float32_kernel_predicts_what_the_same_numbers_do_in_float64():
    """Only the symmetry and PSD tolerances depend on the dtype: an ill-conditioned float32
    kernel (cond ~ 4e7, where a cutoff at N·eps32 would zero most of its spectrum) gives
    what its values give in float64, on both methods and in kernel regression."""
    X, Y = tn.data.sphere(n=600, d=3, k=1, seed=0)
    Xt, _ = tn.data.sphere(n=10, d=3, k=1, seed=1)
    K32 = tn.kernels.ntk(X, L=2).astype(np.float32)
    K32 = (K32 + K32.T) / 2
    Ktx32 = tn.kernels.ntk(Xt, X, L=2).astype(np.float32)
    K64, Ktx64 = K32.astype(np.float64), Ktx32.astype(np.float64)
    lr = 600 / np.linalg.eigvalsh(K64)[-1]
    for method in ("eigh", "recursion"):
        f32, ft32 = tn.predict.gd_mse(K32, Y, lr, 300, K_test_train=Ktx32, method=method)
        f64, ft64 = tn.predict.gd_mse(K64, Y, lr, 300, K_test_train=Ktx64, method=method)
        assert f32.dtype == np.float64
        np.testing.assert_array_equal(f32, f64)
        np.testing.assert_array_equal(ft32, ft64)
    fe, fte = tn.predict.gd_mse(K64, Y, lr, 300, K_test_train=Ktx64, method="eigh")
    fr, ftr = tn.predict.gd_mse(K64, Y, lr, 300, K_test_train=Ktx64, method="recursion")
    assert np.abs(fe - fr).max() < 1e-9 and np.abs(fte - ftr).max() < 1e-9
    f_inf, _ = tn.predict.gd_mse(K32, Y, lr, np.inf, flow=True)
    assert np.abs(f_inf - Y).max() < 1e-6                  # fitted: nothing was cut off
    mean = tn.predict.kernel_regression(K32, Y, Ktx32)
    np.testing.assert_allclose(mean, Ktx64 @ np.linalg.solve(K64, Y), rtol=1e-7, atol=1e-9)


def test_lambda_max_from_products_on_low_rank_and_zero_kernels():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((100, 3))
    for K in (A @ A.T, np.diag(np.linspace(0.0, 1.0, 100)) + 0.5):
        top = np.linalg.eigvalsh(K)[-1]
        assert predict._lambda_max(K) == pytest.approx(top, rel=1e-6)
        assert predict._power_lambda_max(K) == pytest.approx(top, rel=1e-4)
    Z = np.zeros((100, 100))
    assert predict._lambda_max(Z) == 0.0 and predict._power_lambda_max(Z) == 0.0
    # the default (recursion) path on a zero kernel: nothing moves
    f, ft = tn.predict.gd_mse(Z, np.ones((100, 1)), 0.01, 3, np.full((100, 1), 2.0),
                              np.zeros((4, 100)), np.full((4, 1), 5.0))
    assert np.array_equal(f, np.full((100, 1), 2.0)) and np.array_equal(ft, np.full((4, 1), 5.0))


# ----- warnings and bad input ---------------------------------------------------------
@pytest.mark.parametrize("method", ["eigh", "recursion"])
def test_a_divergent_step_size_warns_with_the_stable_limit(method):
    K, _, _ = _kernels(n=80, d=10)
    Y, _, _ = _data(80, 1, 1)
    limit = 2 * 80 / np.linalg.eigvalsh(K)[-1]
    with pytest.warns(RuntimeWarning, match=f"not below 2n/λ_max\\(K\\) = {limit:.4g}"):
        tn.predict.gd_mse(K, Y, 1.01 * limit, 3, method=method)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tn.predict.gd_mse(K, Y, 0.99 * limit, 3, method=method)
        tn.predict.gd_mse(K, Y, 5 * limit, 3, flow=True)     # the flow is always stable


def _bad(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_bad_inputs_name_the_argument():
    K, K_tx, K_tt = _kernels()
    Y, f0, f0t = _data(20, 2, 6)
    gd = tn.predict.gd_mse
    nonsym = K.copy()
    nonsym[0, 1] += 1.0
    nan = K.copy()
    nan[3, 3] = np.nan
    _bad(lambda: gd(K[:, :19], Y, 1.0, 1), ValueError, r"K_train must be square.*\(20, 19\)")
    _bad(lambda: gd(K[None], Y, 1.0, 1), ValueError, r"K_train must be a 2-D.*\(1, 20, 20\)")
    _bad(lambda: gd(nonsym, Y, 1.0, 1), ValueError, "K_train is not symmetric")
    _bad(lambda: gd(nan, Y, 1.0, 1), ValueError, "K_train contains NaN or inf")
    _bad(lambda: gd(K > 0, Y, 1.0, 1), TypeError, "K_train must be a real")
    _bad(lambda: gd(K, Y[:19], 1.0, 1), ValueError, r"Y must have shape \(20, 2\).*\(19, 2\)")
    _bad(lambda: gd(K, Y, 1.0, 1, f0[:, :1]), ValueError, r"f0_train must have shape \(20, 2\)")
    _bad(lambda: gd(K, Y, 1.0, 1, f0 * np.inf), ValueError, "f0_train contains NaN")
    _bad(lambda: gd(K, Y, 1.0, 1, None, K_tx[:, :19]), ValueError, r"K_test_train must be.*\(6, 19\)")
    _bad(lambda: gd(K, Y, 1.0, 1, None, K_tx, f0t[:5]), ValueError, r"f0_test must have shape \(6, 2\)")
    _bad(lambda: gd(K, Y, 1.0, 1, None, None, f0t), ValueError, "f0_test was given without K_test_train")
    _bad(lambda: gd(K, Y, 0.0, 1), ValueError, "lr must be a positive")
    _bad(lambda: gd(K, Y, -1.0, 1), ValueError, "lr must be a positive")
    _bad(lambda: gd(K, Y, float("nan"), 1), ValueError, "lr must be a positive")
    _bad(lambda: gd(K, Y, "fast", 1), TypeError, "lr must be a real number")
    _bad(lambda: gd(K, Y, 1.0, -1), ValueError, "t must be >= 0, got -1")
    _bad(lambda: gd(K, Y, 1.0, [3, -2]), ValueError, "t must be >= 0, got -2")
    _bad(lambda: gd(K, Y, 1.0, np.ones((2, 2))), ValueError, r"t must be a scalar or a 1-D array.*\(2, 2\)")
    _bad(lambda: gd(K, Y, 1.0, 2.5), ValueError, "whole numbers.*flow=True")
    _bad(lambda: gd(K, Y, 1.0, float("nan"), flow=True), ValueError, "t contains NaN")
    _bad(lambda: gd(K, Y, 1.0, "ten"), TypeError, "t must be")
    _bad(lambda: gd(K, Y, 1.0, True), TypeError, "t must be")
    _bad(lambda: gd(K, Y, 1.0, [1, [2, 3]]), TypeError, "t must be a number or a 1-D array")
    _bad(lambda: gd(K, Y, 1.0, 1, flow="no"), TypeError, "flow must be True or False")
    _bad(lambda: gd(K, Y[:, 0].reshape(-1, 1)[:5, 0], 1.0, 1), ValueError, r"got \(5,\)")
    assert gd(K, Y, 1.0, 10**30, flow=True)[0].shape == (20, 2)    # a huge (object) int
    _bad(lambda: gd(K, Y, 1.0, 1, method="lu"), ValueError, "unknown method 'lu'")
    _bad(lambda: gd(K, Y, 1.0, 2.5, flow=True, method="recursion"), ValueError, "method='recursion'")
    _bad(lambda: gd(K, Y, 1.0, np.inf, method="recursion"), ValueError, "method='recursion'")
    K4 = np.zeros((20, 2, 20, 2))
    _bad(lambda: gd(K4, Y[:, :1], 1.0, 1), ValueError, r"Y must have shape \(20, 2\)")
    _bad(lambda: gd(K4, Y, 1.0, 1, None, K_tx), ValueError, r"K_test_train must be 4-D")
    _bad(lambda: gd(K4[:, :, :, :1], Y, 1.0, 1), ValueError, "K_train must be a 2-D")
    kr, gp = tn.predict.kernel_regression, tn.predict.gp_posterior
    _bad(lambda: kr(K, Y, None), TypeError, "K_test_train is required")
    _bad(lambda: kr(K, Y, K_tx, diag_reg=-1.0), ValueError, "diag_reg must be a non-negative")
    _bad(lambda: gp(K, Y, K_tx, K_tt[:5, :5]), ValueError, "K_test_test must be the kernel of the 6")
    _bad(lambda: gp(K, Y, K_tx, K_tt[:, :5]), ValueError, "K_test_test must be square")
    asym = K_tt.copy()
    asym[0, 1] += 1.0
    _bad(lambda: gp(K, Y, K_tx, asym), ValueError, "K_test_test is not symmetric")
    half = np.array([[1.0, 0.5], [0.0, 1.0]], dtype=np.float16)    # r = 1e-3 even in float16
    _bad(lambda: gd(half, np.ones((2, 1)), 1.0, 1), ValueError, "K_train is not symmetric")


def test_rounding_asymmetry_is_symmetrized_and_float32_tolerated():
    K, K_tx, _ = _kernels()
    Y, f0, _ = _data(20, 1, 1)
    noisy = K + 1e-14 * np.triu(np.ones_like(K), 1)
    f, _ = tn.predict.gd_mse(noisy, Y, 1.0, 10)
    ef, _ = literal(K, Y, 1.0, 10, np.zeros_like(Y), K_tx, np.zeros((6, 1)))
    _close(f, ef, 1.0)
    K32 = K.astype(np.float32) + np.float32(1e-6) * np.triu(np.ones_like(K, dtype=np.float32), 1)
    f32, _ = tn.predict.gd_mse(K32, Y, 1.0, 10)
    assert f32.dtype == np.float64 and np.abs(f32 - ef).max() < 1e-4


# ----- backends -----------------------------------------------------------------------
def test_results_are_on_the_active_backend(backend):
    K, K_tx, K_tt = _kernels()
    Y, f0, f0t = _data(20, 2, 6)
    xp = backend.xp
    for method in ("eigh", "recursion"):
        f, ft = tn.predict.gd_mse(K, Y, 0.5, [2, 5], f0, K_tx, f0t, method=method)
        assert isinstance(f, xp.ndarray) and isinstance(ft, xp.ndarray)
        ef, eft = literal(K, Y, 0.5, 5, f0, K_tx, f0t)
        _close(tn.to_numpy(f[1]), ef, 10.0)
        _close(tn.to_numpy(ft[1]), eft, 100.0)
    mean, cov = tn.predict.gp_posterior(K, Y, K_tx, K_tt)
    assert isinstance(mean, xp.ndarray) and isinstance(cov, xp.ndarray)


@requires_gpu
def test_cupy_inputs_on_the_numpy_backend():
    import cupy
    K, K_tx, _ = _kernels()
    Y, _, _ = _data(20, 1, 1)
    f, _ = tn.predict.gd_mse(cupy.asarray(K), cupy.asarray(Y), 0.5, 3)
    assert isinstance(f, np.ndarray)
