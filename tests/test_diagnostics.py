"""Diagnostics against brute-force computations on tiny nets."""
import math

import numpy as np
import pytest

import tinyntk as tn
from conftest import requires_gpu
from tinyntk import diagnostics as D
from tinyntk import kernels as K


def _problem(n=6, d=4, m=16, k=1, L=2, seed=0):
    X, Y = tn.data.sphere(n=n, d=d, k=k, mu=0.5, seed=seed)
    net = tn.ReLUNet.init(d=d, m=m, k=k, L=L, seed=seed)
    return net, tn.to_numpy(X), tn.to_numpy(Y)


def _perturbed(net, scale=0.05, seed=1):
    rng = np.random.default_rng(seed)
    W = [tn.to_numpy(w) + scale * rng.standard_normal(w.shape) for w in net.W]
    return tn.ReLUNet(W=W, V=tn.to_numpy(net.V))


def _brute_grads(net, X, Y):
    """sum_i (f(x_i) - y_i)/n * d f(x_i)/dW_l, one example and one output at a time."""
    n, k = X.shape[0], net.k
    total = [np.zeros(w.shape) for w in net.W]
    for i in range(n):
        out, cache = net.forward(X[i:i + 1], cache=True)
        r = tn.to_numpy(out)[0] - Y[i]
        for a in range(k):
            E = np.zeros((1, k))
            E[0, a] = 1.0
            g = net.backward(cache, E)
            for l in range(net.L):
                total[l] += r[a] / n * tn.to_numpy(g.W[l])
    return total


def test_grad_norms_and_lemma41_ratio_brute_force():
    net, X, Y = _problem(k=2)
    G = _brute_grads(net, X, Y)
    expect = [np.linalg.norm(g) for g in G]
    assert np.allclose(D.grad_norms(net, X, Y), expect, rtol=1e-12)
    out = tn.to_numpy(net(X))
    loss = 0.5 * ((out - Y) ** 2).sum() / X.shape[0]
    phi = 0.3
    ratio = sum(e ** 2 for e in expect) / (net.m * phi * loss / (net.k * X.shape[0] ** 2))
    assert D.lemma41_ratio(net, X, Y, phi) == pytest.approx(ratio, rel=1e-12)
    with pytest.raises(ValueError):
        D.Lemma41Ratio(0.0)


def test_distances_and_ball():
    net0, X, Y = _problem(m=12, L=3)
    W0 = [w.copy() for w in net0.W]
    net = _perturbed(net0)
    spec = [np.linalg.norm(tn.to_numpy(w) - tn.to_numpy(w0), ord=2) for w, w0 in zip(net.W, W0)]
    fro = [np.linalg.norm(tn.to_numpy(w) - tn.to_numpy(w0)) for w, w0 in zip(net.W, W0)]
    assert np.allclose(D.distance_fro(net, W0), fro, rtol=1e-12)
    # power iteration stops at a relative change of 1e-10: allow 1e-6 relative
    assert np.allclose(D.distance(net, W0, tol=1e-10, max_iter=1000), spec, rtol=1e-6)
    top = max(spec)
    assert D.in_ball(net, W0, top * 1.01, tol=1e-10)
    assert not D.in_ball(net, W0, top * 0.99, tol=1e-10)


def test_lemma_4_2_bound_by_hand():
    # sqrt(k n^2 log n / (m phi)) = sqrt(2 * 100 * ln 10 / (1000 * 0.5))
    assert D.lemma_4_2_bound(10, 1000, 0.5, 2) == pytest.approx(math.sqrt(200 * math.log(10) / 500))


def test_lemma_4_2_bound_with_the_initial_loss():
    """Section 4.1's telescoped form sqrt(k n^2 L(W(0)) / (m phi)); the lemma's log n is
    the case L(W(0)) = log n, and the bound grows as the square root of the loss."""
    lemma = D.lemma_4_2_bound(10, 1000, 0.5, 2)
    assert D.lemma_4_2_bound(10, 1000, 0.5, 2, loss0=math.log(10)) == pytest.approx(lemma)
    assert D.lemma_4_2_bound(10, 1000, 0.5, 2, loss0=0.25) == pytest.approx(
        math.sqrt(200 * 0.25 / 500))
    assert D.lemma_4_2_bound(10, 1000, 0.5, 2, loss0=0.0) == 0.0
    for bad in (-1.0, float("nan"), "x"):
        with pytest.raises((ValueError, TypeError), match="loss0"):
            D.lemma_4_2_bound(10, 1000, 0.5, 2, loss0=bad)


def test_activation_flips_explicit_masks():
    net0, X, _ = _problem(m=10, L=2)
    W0 = [w.copy() for w in net0.W]
    net = _perturbed(net0, scale=0.3)
    # explicit loops over examples and neurons
    expect = []
    h_now, h_then = X.copy(), X.copy()
    for l in range(net.L):
        Wn, Wt = tn.to_numpy(net.W[l]), tn.to_numpy(W0[l])
        flips = 0
        for i in range(X.shape[0]):
            for j in range(net.m):
                flips += (Wn[j] @ h_now[i] > 0) != (Wt[j] @ h_then[i] > 0)
        expect.append(flips / (X.shape[0] * net.m))
        h_now, h_then = np.maximum(h_now @ Wn.T, 0), np.maximum(h_then @ Wt.T, 0)
    got = D.activation_flips(net, W0, X)
    assert got == pytest.approx(expect, abs=1e-15)
    assert max(got) > 0            # the perturbation is large enough to flip something


def test_ntk_drift_against_direct_kernels():
    net0, X, _ = _problem(m=20, L=2)
    net = _perturbed(net0, scale=0.1)
    T0, T1 = tn.to_numpy(K.empirical_ntk(net0, X)), tn.to_numpy(K.empirical_ntk(net, X))
    expect = np.linalg.norm(T1 - T0) / np.linalg.norm(T0)
    assert D.ntk_drift(net, net0, X) == pytest.approx(expect, rel=1e-12)
    assert D.ntk_drift(net0, net0, X) == 0.0


def test_probes_through_train_match_the_functions():
    net, X, Y = _problem(n=8, m=64, L=2, seed=3)
    net0 = net.copy()
    phi = tn.data.separation(X)
    probes = [D.GradNorms(), D.Lemma41Ratio(phi), D.DistanceFro(), D.Distance(), D.InBall(0.5),
              D.ActivationFlips(), D.NTKDrift()]
    hist = tn.train(net, X, Y, steps=20, lr=0.05, record_every=10, probes=probes)
    for p in probes:
        assert len(hist[p.name]) == len(hist["step"]) == 3
    W0 = net0.W
    assert hist["grad_norm"][-1] == pytest.approx(D.grad_norms(net, X, Y), rel=1e-10)
    assert hist["lemma41_ratio"][-1] == pytest.approx(D.lemma41_ratio(net, X, Y, phi), rel=1e-10)
    assert hist["distance_fro"][-1] == pytest.approx(D.distance_fro(net, W0), rel=1e-10)
    assert hist["distance_fro"][0] == [0.0, 0.0]
    assert hist["flips"][-1] == pytest.approx(D.activation_flips(net, W0, X))
    assert hist["flips"][0] == [0.0, 0.0]
    assert hist["ntk_drift"][0] == 0.0
    assert hist["ntk_drift"][-1] == pytest.approx(D.ntk_drift(net, net0, X), rel=1e-10)
    assert hist["in_ball"][-1] == (1.0 if max(D.distance(net, W0)) <= 0.5 else 0.0)


def test_linear_rate_recovers_a_geometric_curve():
    steps = np.arange(0, 200, 5)
    losses = 3.0 * 0.97 ** steps
    assert D.linear_rate(losses, steps) == pytest.approx(0.97, rel=1e-12)
    # a floor: the plateau at 1e-20 is ignored
    curve = np.maximum(2.0 * 0.9 ** np.arange(400), 1e-20)
    assert D.linear_rate(curve, floor=1e-15) == pytest.approx(0.9, rel=1e-9)
    assert math.isnan(D.linear_rate([1.0]))


def test_kernel_predicted_rate_by_hand_and_on_a_wide_net():
    # Theta0 = diag(2, 4), n = 2, lr = 0.5: (1 - 0.5 * 2 / 2)^2 = 0.25
    assert D.kernel_predicted_rate(0.5, np.diag([2.0, 4.0]), 2) == pytest.approx(0.25)
    assert D.kernel_predicted_rate(0.5, 2.0, 2) == pytest.approx(0.25)       # lambda_min given
    # A wide two-layer net trained by GD stays in the kernel regime: its fitted loss rate
    # must not be slower than the kernel's bound by more than the kernel drift allows.
    # lr is chosen so that lr * lambda_max / n = 0.5 (no overshooting mode).
    net, X, Y = _problem(n=6, d=5, m=2048, L=1, seed=4)
    T0 = tn.to_numpy(K.empirical_ntk(net, X))
    lr = 0.5 * X.shape[0] / np.linalg.eigvalsh(T0)[-1]
    pred = D.kernel_predicted_rate(lr, T0, X.shape[0])
    hist = tn.train(net, X, Y, steps=150, lr=lr)
    q = D.linear_rate(hist["loss"], hist["step"])
    assert q <= pred + 2e-3, (q, pred)
    assert q < 1.0


@requires_gpu
def test_probes_on_cupy_match_numpy():
    """Run by hand on a GPU machine: PYTHONPATH=. python -m pytest -q -m gpu tests/"""
    phi = 0.2
    probes = lambda: [D.GradNorms(), D.Lemma41Ratio(phi), D.DistanceFro(), D.InBall(0.5),  # noqa: E731
                      D.ActivationFlips(), D.NTKDrift()]
    net, X, Y = _problem(n=8, m=64, L=2, seed=3)
    ref = tn.train(net, X, Y, steps=10, lr=0.05, record_every=5, probes=probes())
    with tn.use_backend("cupy"):
        net, X, Y = _problem(n=8, m=64, L=2, seed=3)
        got = tn.train(net, X, Y, steps=10, lr=0.05, record_every=5, probes=probes())
    for key in ref:
        assert np.allclose(np.array(got[key], dtype=float), np.array(ref[key], dtype=float),
                           rtol=1e-8, atol=1e-12), key
