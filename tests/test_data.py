"""Data on the sphere (Assumption 3.1) and the separation φ (Assumption 3.2)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import strategies as S
import tinyntk as tn


@given(n=st.integers(1, 40), d=st.integers(2, 40),
       mu=st.floats(1e-6, 1 - 1e-6, exclude_min=True, exclude_max=True),
       seed=st.integers(0, 2**32 - 1))
def test_sphere_satisfies_assumption_3_1(n, d, mu, seed):
    """‖x_i‖ = 1 to 1e-12 and x_i[-1] == mu exactly (float64).

    x = (sqrt(1 - mu²) u, mu) with ‖u‖ = 1 to a few ulp, so ‖x‖ - 1 is a few ulp (~1e-15);
    1e-12 leaves room for d = 40 terms while a missing normalization is off by O(1).
    """
    X, Y = tn.data.sphere(n=n, d=d, k=2, mu=mu, seed=seed)
    X = tn.to_numpy(X)
    assert X.shape == (n, d) and X.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, rtol=0, atol=1e-12)
    assert np.all(X[:, -1] == mu)
    assert tn.to_numpy(Y).shape == (n, 2)


def test_sphere_float32():
    X, Y = tn.data.sphere(n=10, d=5, mu=0.3, dtype="float32")
    assert X.dtype == np.float32 and Y.dtype == np.float32
    assert np.all(tn.to_numpy(X)[:, -1] == np.float32(0.3))
    # float32 rounding of the entries: ~d ulp of float32 (1.2e-7 each)
    np.testing.assert_allclose(np.linalg.norm(tn.to_numpy(X).astype(np.float64), axis=1), 1.0,
                               atol=1e-6)


def test_sphere_same_seed_same_data_on_any_backend(backend):
    X1, Y1 = tn.data.sphere(n=8, d=4, k=2, seed=11)
    with tn.use_backend("numpy"):
        X2, Y2 = tn.data.sphere(n=8, d=4, k=2, seed=11)
    assert isinstance(X1, backend.xp.ndarray)
    np.testing.assert_array_equal(tn.to_numpy(X1), X2)
    np.testing.assert_array_equal(tn.to_numpy(Y1), Y2)
    X3, _ = tn.data.sphere(n=8, d=4, k=2, seed=12)
    assert not np.array_equal(tn.to_numpy(X3), X2)


def test_targets_gaussian():
    _, Y = tn.data.sphere(n=2000, d=4, k=3, target="gaussian", seed=0)
    Y = tn.to_numpy(Y)
    assert Y.shape == (2000, 3)
    # N(0, 1) labels: sample mean within 6 sd (6/sqrt(6000)), variance within 6·sqrt(2/6000)
    assert abs(Y.mean()) < 6 / np.sqrt(Y.size)
    assert abs(Y.var() - 1) < 6 * np.sqrt(2 / Y.size)


def test_targets_teacher_unit_variance_and_a_function_of_x():
    X, Y = tn.data.sphere(n=200, d=6, k=2, target="teacher", seed=0)
    Y = tn.to_numpy(Y)
    assert Y.shape == (200, 2)
    assert Y.std() == pytest.approx(1.0, rel=1e-9)          # scaled by std + 1e-12
    # same X (same seed), the labels are the same: a deterministic function of the data
    _, Y2 = tn.data.sphere(n=200, d=6, k=2, target="teacher", seed=0)
    np.testing.assert_array_equal(Y, tn.to_numpy(Y2))


def test_targets_sign_are_pm1_and_balanced():
    _, Y = tn.data.sphere(n=101, d=5, k=1, target="sign", seed=3)
    Y = tn.to_numpy(Y)
    assert Y.shape == (101, 1)
    assert set(np.unique(Y)) == {-1.0, 1.0}
    assert abs(int((Y > 0).sum()) - 50.5) <= 1          # median split: half and half
    # usable as they are with the logistic loss
    net = tn.ReLUNet.init(d=5, m=8, seed=0)
    X, Y = tn.data.sphere(n=101, d=5, k=1, target="sign", seed=3)
    value, _ = tn.loss_and_grad(net, X, Y, loss="logistic")
    assert np.isfinite(value)


@pytest.mark.parametrize("kwargs, match", [
    (dict(target="sign", k=2), "k = 1"),
    (dict(target="rademacher"), "gaussian"),     # lists the known ones
    (dict(mu=0.0), "mu"),
    (dict(mu=1.0), "mu"),
    (dict(d=1), "d"),
    (dict(n=0), "n"),
])
def test_sphere_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tn.data.sphere(**{**dict(n=4, d=3), **kwargs})


def brute_force_separation(X):
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    return min(float(np.linalg.norm(X[i] - X[j])) for i in range(n) for j in range(n) if i != j)


@given(X=hnp.arrays(np.float64, st.tuples(st.integers(2, 12), S.dims), elements=S.bounded_floats(10.0)),
       chunk=st.integers(1, 16))
def test_separation_equals_brute_force(X, chunk):
    """φ = min_{i≠j} ‖x_i − x_j‖, whatever the chunking.  Both sides end with the norm of
    the difference of the closest pair, so they agree to rounding of that norm (1e-12 rel);
    duplicates (which Hypothesis draws often) must give exactly 0."""
    got = tn.data.separation(X, chunk=chunk)
    want = brute_force_separation(X)
    assert got == pytest.approx(want, rel=1e-12, abs=0.0)


@given(X=hnp.arrays(np.float64, st.tuples(st.integers(1, 10), S.dims),
                    elements=S.bounded_floats(100.0)),
       data=st.data())
def test_separation_with_a_planted_near_duplicate(X, data):
    """Add a copy of one row moved by 1e-10..1e-4: the closest pair is then (usually) that
    one, at a distance the squared-distance formula cannot resolve for |x| ~ 100."""
    i = data.draw(st.integers(0, X.shape[0] - 1))
    shift = data.draw(hnp.arrays(np.float64, X.shape[1], elements=st.floats(1e-10, 1e-4)))
    X = np.vstack([X, X[i] + shift])
    assert tn.data.separation(X) == pytest.approx(brute_force_separation(X), rel=1e-12, abs=0.0)


def test_separation_of_duplicates_is_zero():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    assert tn.data.separation(X) == 0.0


def test_separation_near_duplicates():
    """Near-duplicates far from the origin: ‖a‖² + ‖b‖² − 2a·b loses everything to
    cancellation (1e4 vs 1e-14), so picking the closest pair from it is not enough."""
    rng = np.random.default_rng(0)
    for trial in range(20):
        base = 100.0 * rng.standard_normal(3)
        X = base + 1e-7 * rng.standard_normal((6, 3)) * rng.random((6, 1))
        assert tn.data.separation(X) == pytest.approx(brute_force_separation(X), rel=1e-9), trial


def test_separation_of_sphere_data_on_backend(backend):
    X, _ = tn.data.sphere(n=30, d=4, seed=0)
    assert tn.data.separation(X) == pytest.approx(brute_force_separation(tn.to_numpy(X)), rel=1e-12)


def test_separation_needs_two_points():
    with pytest.raises(ValueError):
        tn.data.separation(np.ones((1, 3)))
