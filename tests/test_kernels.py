"""Kernels of the proofs: closed forms against sampling, brute force and the m -> inf limit."""
import math

import numpy as np
import pytest

import tinyntk as tn
from conftest import requires_gpu
from tinyntk import kernels as K


def _points(n=12, d=5, seed=0):
    X, _ = tn.data.sphere(n=n, d=d, k=1, mu=0.5, seed=seed)
    return tn.to_numpy(X)


# ----- Proposition 3.6 ----------------------------------------------------------------
def test_gram_H_matches_monte_carlo_within_standard_errors():
    X = _points(10, 4)
    S = 200_000
    H = K.gram_H(X)
    Hmc = tn.to_numpy(K.gram_H_monte_carlo(X, samples=S, seed=1, chunk=50_000))
    # Each MC entry is x_i.x_j times a mean of S Bernoulli(p) draws: standard error
    # |x_i.x_j| sqrt(p(1-p)/S) <= |x_i.x_j|/(2 sqrt S).  5 standard errors over 100
    # entries: a false alarm has probability < 1e-4.
    se = np.abs(X @ X.T) / (2 * math.sqrt(S))
    assert np.all(np.abs(H - Hmc) <= 5 * se + 1e-15)
    # and it is not trivially loose: the errors are of the size of the standard error
    assert np.abs(H - Hmc).max() > 0.1 * se.max()


def test_gram_H_known_values():
    # x.x' (pi - theta)/(2 pi): identical unit vectors 1/2, orthogonal 0 * ..., opposite 0,
    # 60 degrees: 0.5 * (2 pi/3)/(2 pi) = 1/6.
    X = np.array([[1.0, 0.0], [0.5, math.sqrt(3) / 2], [-1.0, 0.0], [0.0, 3.0]])
    H = K.gram_H(X)
    assert H[0, 0] == pytest.approx(0.5, abs=1e-15)
    assert H[0, 1] == pytest.approx(1 / 6, abs=1e-15)
    assert H[0, 2] == pytest.approx(0.0, abs=1e-15)
    assert H[3, 3] == pytest.approx(9 / 2, abs=1e-14)


def test_lambda_0_and_proposition_3_6_report():
    X = _points(16, 6)
    H = K.gram_H(X)
    lam = K.lambda_0(X)
    assert lam == pytest.approx(np.linalg.eigvalsh(H)[0], rel=1e-10)
    rep = K.check_proposition_3_6(X)
    assert rep["n"] == 16 and rep["lambda_0"] == pytest.approx(lam)
    assert rep["phi"] == pytest.approx(tn.data.separation(X))
    assert rep["ratio"] == pytest.approx(lam * 16 ** 2 / rep["phi"])
    assert lam > 0  # distinct points with last coordinate mu > 0: H is positive definite


# ----- infinite width -----------------------------------------------------------------
def _reference_ntk(X, X2, L):
    """Textbook (Arora et al. 2019) recursion written out plainly, with c_sigma = 2."""
    S = X @ X2.T
    nx, nx2 = np.linalg.norm(X, axis=1), np.linalg.norm(X2, axis=1)
    P = np.outer(nx, nx2)
    theta_sum = 0.0
    Sig = S
    Theta = None
    for l in range(1, L + 1):
        rho = np.clip(Sig / P, -1, 1)
        t = np.arccos(rho)
        dot = (np.pi - t) / np.pi                              # 2 E[sigma' sigma']
        Theta = Sig * dot if Theta is None else (Theta + Sig) * dot
        Sig = P * (np.sqrt(1 - rho ** 2) + (np.pi - t) * rho) / np.pi   # 2 E[sigma sigma]
    return Theta / 2, Sig


@pytest.mark.parametrize("L", [1, 2, 4])
def test_ntk_against_plain_recursion(L):
    rng = np.random.default_rng(L)
    A, Bm = rng.standard_normal((30, 7)), 3.0 * rng.standard_normal((11, 7))
    ref, sig = _reference_ntk(A, Bm, L)
    assert np.allclose(K.ntk(A, Bm, L=L), ref, rtol=1e-12, atol=1e-12)
    assert np.allclose(K.nngp(A, Bm, L=L), sig, rtol=1e-12, atol=1e-12)
    both = K.ntk(A, Bm, L=L, train_output=True, m=100, k=2)
    assert np.allclose(both, ref + 0.02 * sig, rtol=1e-12, atol=1e-12)


def test_ntk_L1_is_gram_H():
    for X in (_points(40, 6), np.random.default_rng(3).standard_normal((25, 4)) * 7):
        assert np.allclose(K.ntk(X, L=1), K.gram_H(X), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("L", [1, 3])
def test_ntk_positive_homogeneity(L):
    rng = np.random.default_rng(7)
    X, X2 = rng.standard_normal((9, 5)), rng.standard_normal((6, 5))
    c, c2 = 3.7, 0.021
    assert np.allclose(K.ntk(c * X, c2 * X2, L=L), c * c2 * K.ntk(X, X2, L=L), rtol=1e-12, atol=0)
    assert np.allclose(K.nngp(c * X, c2 * X2, L=L), c * c2 * K.nngp(X, X2, L=L), rtol=1e-12, atol=0)


def test_ntk_finite_for_duplicate_opposite_and_zero_points():
    x = np.random.default_rng(0).standard_normal(4)
    X = np.stack([x, x, -x, 1e-3 * x, np.zeros(4)])
    for L in (1, 2, 5):
        T = K.ntk(X, L=L)
        assert np.all(np.isfinite(T))
        assert np.allclose(T, T.T, rtol=1e-12, atol=1e-15)
        assert np.all(T[4] == 0)
        # duplicates: equal rows; the diagonal is L ||x||^2 / 2 ... for L = 1: ||x||^2 / 2
        assert np.allclose(T[0], T[1])
    assert K.ntk(X, L=1)[0, 0] == pytest.approx(x @ x / 2)
    # the diagonal of the L-layer NTK is L ||x||^2 / 2 (every kernel_0 is 1 at rho = 1)
    assert K.ntk(X, L=5)[0, 0] == pytest.approx(5 * (x @ x) / 2)


def test_ntk_bad_arguments():
    with pytest.raises(ValueError):
        K.ntk(np.ones((3, 2)), L=0)
    with pytest.raises(ValueError):
        K.ntk(np.ones((3, 2)), np.ones((3, 4)))
    with pytest.raises(ValueError, match="needs the width m"):
        K.ntk(np.ones((3, 2)), train_output=True)


# ----- finite width -------------------------------------------------------------------
def _jacobian(net, X):
    """Per-example, per-output gradients of the hidden layers, flattened: (n, k, P)."""
    n, k = X.shape[0], net.k
    rows = []
    for i in range(n):
        per = []
        for a in range(k):
            _, cache = net.forward(X[i:i + 1], cache=True)
            E = np.zeros((1, k))
            E[0, a] = 1.0                                 # unit output error: grads = d f_a/dW
            g = net.backward(cache, E)
            per.append(np.concatenate([tn.to_numpy(w).ravel() for w in g.W]
                                      + [tn.to_numpy(g.V).ravel()]))
        rows.append(per)
    return np.array(rows)


@pytest.mark.parametrize("k,L", [(1, 1), (1, 3), (3, 2)])
def test_empirical_ntk_equals_jacobian_gram(k, L):
    net = tn.ReLUNet.init(d=4, m=7, k=k, L=L, seed=2)
    X, X2 = _points(5, 4, seed=1), _points(3, 4, seed=2)
    J, J2 = _jacobian(net, X), _jacobian(net, X2)
    nV = net.k * net.m
    Jh, J2h = J[..., :-nV], J2[..., :-nV]
    full = np.einsum("iap,jbp->iajb", Jh, J2h)
    full_o = np.einsum("iap,jbp->iajb", J, J2)
    sym = np.einsum("iap,jbp->iajb", Jh, Jh)
    tol = dict(rtol=1e-12, atol=1e-12)
    assert np.allclose(K.empirical_ntk(net, X, X2, output="full"), full, **tol)
    assert np.allclose(K.empirical_ntk(net, X, X2, output="full", train_output=True), full_o, **tol)
    trace = np.einsum("iaja->ij", full)
    assert np.allclose(K.empirical_ntk(net, X, X2, output="trace"), trace, **tol)
    assert np.allclose(K.empirical_ntk(net, X, X2), trace / k, **tol)
    assert np.allclose(K.empirical_ntk(net, X, X2, train_output=True),
                       np.einsum("iaja->ij", full_o) / k, **tol)
    assert np.allclose(K.empirical_ntk(net, X, X2, output="sum"), full.sum(axis=(1, 3)), **tol)
    assert np.allclose(K.empirical_ntk(net, X, X2, output="sum", train_output=True),
                       full_o.sum(axis=(1, 3)), **tol)
    # symmetric path (X2 = None) and row chunks
    assert np.allclose(K.empirical_ntk(net, X), np.einsum("iaja->ij", sym) / k, **tol)
    assert np.allclose(K.empirical_ntk(net, X, chunk=2), K.empirical_ntk(net, X), **tol)
    assert np.allclose(K.empirical_ntk(net, X, X2, chunk=2, output="full"), full, **tol)
    assert np.allclose(K.empirical_ntk(net, X, output="full"), sym, **tol)


def test_empirical_ntk_approaches_ntk_like_one_over_sqrt_m():
    """(k/m) * empirical NTK -> ntk; the relative error is a sum of O(m) independent
    terms normalised by m, so it should fall like m^(-1/2).  We average the relative
    Frobenius error over 4 seeds at 5 widths and fit log(error) ~ slope * log(m).  With
    4 seeds per width the seed noise in the fitted slope is about 0.1 (measured over
    repeated seed sets), so we accept slopes in [-0.75, -0.3]."""
    X = _points(8, 4, seed=5)
    L, k = 2, 2
    theta = K.ntk(X, L=L)
    widths = [64, 128, 256, 512, 1024]
    errs = []
    for m in widths:
        e = []
        for seed in range(4):
            net = tn.ReLUNet.init(d=4, m=m, k=k, L=L, seed=100 * m + seed)
            emp = tn.to_numpy(K.empirical_ntk(net, X)) * k / m
            e.append(np.linalg.norm(emp - theta) / np.linalg.norm(theta))
        errs.append(np.mean(e))
    slope = np.polyfit(np.log(widths), np.log(errs), 1)[0]
    assert -0.75 <= slope <= -0.3, (slope, errs)
    assert errs[-1] < 0.15


def test_empirical_ntk_rejects_unknown_output():
    net = tn.ReLUNet.init(d=3, m=4, k=2, L=1, seed=0)
    with pytest.raises(ValueError, match="output"):
        K.empirical_ntk(net, _points(3, 3), output="diag")


def test_float32_stays_float32():
    X = _points(10, 4).astype(np.float32)
    assert K.gram_H(X).dtype == np.float32
    assert K.ntk(X, L=3).dtype == np.float32
    assert K.nngp(X, L=2).dtype == np.float32
    net = tn.ReLUNet.init(d=4, m=32, k=1, L=2, seed=0, dtype="float32")
    assert K.empirical_ntk(net, X).dtype == np.float32
    # float32 rounding of the cosines, amplified by arccos away from rho = 1 (the
    # diagonal is set to rho = 1 exactly): a few 1e-6 relative
    assert np.allclose(K.ntk(X, L=3), K.ntk(X.astype(np.float64), L=3), rtol=1e-5, atol=1e-6)
    assert np.allclose(K.gram_H(X), K.gram_H(X.astype(np.float64)), rtol=1e-5, atol=1e-6)


@requires_gpu
def test_cupy_backend_matches_numpy():
    """Run by hand on a GPU machine: PYTHONPATH=. python -m pytest -q -m gpu tests/"""
    X = _points(12, 5)
    net_np = tn.ReLUNet.init(d=5, m=64, k=2, L=2, seed=0)
    ref = {"H": K.gram_H(X), "ntk": K.ntk(X, L=3), "nngp": K.nngp(X, X[:4], L=2),
           "mc": K.gram_H_monte_carlo(X, samples=5000), "lam": K.lambda_0(X),
           "emp": K.empirical_ntk(net_np, X, output="full", train_output=True),
           "emp2": K.empirical_ntk(net_np, X, X[:3], chunk=5)}
    with tn.use_backend("cupy"):
        net = tn.ReLUNet.init(d=5, m=64, k=2, L=2, seed=0)
        got = {"H": K.gram_H(X), "ntk": K.ntk(X, L=3), "nngp": K.nngp(X, X[:4], L=2),
               "mc": K.gram_H_monte_carlo(X, samples=5000), "lam": K.lambda_0(X),
               "emp": K.empirical_ntk(net, X, output="full", train_output=True),
               "emp2": K.empirical_ntk(net, X, X[:3], chunk=5)}
        got = {key: (v if isinstance(v, float) else tn.to_numpy(v)) for key, v in got.items()}
    for key in ref:
        assert np.allclose(got[key], ref[key], rtol=1e-10, atol=1e-12), key


def test_output_layer_term_tends_to_nngp():
    """empirical_ntk(train_output=True) - empirical_ntk() is the Gram of h_L, which
    tends to nngp(X, L) (no 1/m scaling: the output layer's term does not grow with m).
    Its relative error is a fluctuation of order 1/sqrt(m) with a sizeable constant
    (measured 0.04-0.11 over 6 seeds at m = 4096, L = 2): we allow 0.2."""
    X = _points(10, 5, seed=3)
    m, L, k = 4096, 2, 3
    net = tn.ReLUNet.init(d=5, m=m, k=k, L=L, seed=11)
    diff = K.empirical_ntk(net, X, train_output=True) - K.empirical_ntk(net, X)
    sig = K.nngp(X, L=L)
    assert np.linalg.norm(diff - sig) / np.linalg.norm(sig) < 0.2
    # and ntk(train_output=True, m, k) * m/k adds exactly nngp to ntk * m/k
    both = K.ntk(X, L=L, train_output=True, m=m, k=k) * m / k
    assert np.allclose(both, K.ntk(X, L=L) * m / k + sig, rtol=1e-12, atol=1e-12)


def test_ntk_kernel_properties_hypothesis():
    """For any finite inputs (zeros, duplicates, opposite points included): symmetric,
    finite, positive semi-definite, and positively homogeneous.  PSD up to rounding:
    eigenvalues >= -1e-7 * the largest.  Homogeneity up to arccos's conditioning: at
    cos = ±1 a rounding error eps of the cosine moves arccos by sqrt(2 eps) ~ 2e-8, so
    entries agree to 1e-7 of the largest (the cosines of c X and X round differently)."""
    hyp = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")
    hnp = pytest.importorskip("hypothesis.extra.numpy")

    floats = st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False)

    @hyp.settings(max_examples=60, deadline=None, database=None)
    @hyp.given(X=hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 4)), elements=floats),
               L=st.integers(1, 4), c=st.floats(0.01, 100.0))
    def check(X, L, c):
        X = np.vstack([X, X[:1], -X[:1]])           # always a duplicate and an opposite point
        T = tn.to_numpy(K.ntk(X, L=L))
        assert np.all(np.isfinite(T))
        assert np.allclose(T, T.T, rtol=1e-12, atol=1e-300)
        ev = np.linalg.eigvalsh(T)
        top = max(np.abs(T).max(), 1e-300)
        assert ev[0] >= -1e-7 * top
        assert np.allclose(K.ntk(c * X, L=L), c * c * T, rtol=1e-7, atol=1e-7 * c * c * top)

    check()
