"""train's default step size, lr="auto" (tinyntk.stability.auto_lr): half the largest step
that is stable near W(0), recorded with its constant c in the history.

The reference λ_max comes from the empirical NTK (checked against the explicit Jacobian
Gram in test_kernels) and NumPy's full ``eigvalsh``, not from the package's eigenvalue
helper or its power iteration.
"""
from __future__ import annotations

import numpy as np
import pytest

import tinyntk as tn


def reference_lambda_max(net, X, train_output=False):
    """λ_max of the whole (n·k, n·k) empirical NTK of the trained weights."""
    n, k = X.shape[0], net.k
    full = tn.to_numpy(tn.kernels.empirical_ntk(net, X, output="full", train_output=train_output))
    return float(np.linalg.eigvalsh(full.reshape(n * k, n * k))[-1])


def problem(n=16, d=6, m=128, k=1, L=2, seed=0, target="gaussian"):
    X, Y = tn.data.sphere(n=n, d=d, k=k, seed=seed, target=target)
    return tn.ReLUNet.init(d=d, m=m, k=k, L=L, seed=seed + 1), X, Y


@pytest.mark.parametrize("loss, k, train_output, batch_size", [
    ("square", 1, False, None), ("square", 1, True, None), ("square", 3, False, None),
    ("square", 3, True, 5), ("square", 1, False, 4), ("logistic", 1, False, None),
    ("logistic", 1, True, 8),
])
def test_auto_is_half_the_largest_stable_step(loss, k, train_output, batch_size):
    """η = ½ · 2B/(ℓ'' λ_max(Θ₀)): B = n for GD, the minibatch size for SGD; ℓ'' = 1
    (square), 1/4 (logistic).  Exact path: one eigenvalue of the same matrix, so only
    rounding separates it from NumPy's (1e-10 relative is ~1e6 ulp of slack)."""
    net, X, Y = problem(k=k, target="sign" if loss == "logistic" else "gaussian")
    lam = reference_lambda_max(net, X, train_output)
    B = X.shape[0] if batch_size is None else batch_size
    expected = 0.5 * 2 * B / ({"square": 1.0, "logistic": 0.25}[loss] * lam)
    hist = tn.train(net, X, Y, steps=1, loss=loss, train_output=train_output,
                    batch_size=batch_size)
    assert hist["lr"] == pytest.approx(expected, rel=1e-10)
    assert hist["c"] == pytest.approx(hist["lr"] * net.L ** 2 * net.m / net.k, rel=1e-15)
    lr, lam_here = tn.stability.auto_lr(tn.ReLUNet.init(d=6, m=128, k=k, L=2, seed=1), X, loss,
                                        train_output, batch_size)
    assert lr == hist["lr"] and lam_here == pytest.approx(lam, rel=1e-10)


@pytest.mark.parametrize("k, train_output", [(1, False), (3, True)])
def test_power_iteration_path_agrees_and_never_overshoots(k, train_output):
    """Above ``max_exact`` λ_max comes from power iteration to 1e-6 relative; its estimate
    ‖JᵀJp‖ (‖p‖ = 1) is at most λ_max, so the step is never below the exact one (up to
    rounding, 1e-12)."""
    net, X, _ = problem(k=k)
    lam = reference_lambda_max(net, X, train_output)
    lr_exact, _ = tn.stability.auto_lr(net, X, train_output=train_output)
    lr_power, lam_power = tn.stability.auto_lr(net, X, train_output=train_output, max_exact=1)
    assert lam_power == pytest.approx(lam, rel=1e-5)
    assert lam_power <= lam * (1 + 1e-12)
    assert lr_power >= lr_exact * (1 - 1e-12)


def test_the_old_default_left_the_kernel_regime_the_new_one_stays():
    """The case of issue 24: n = 32, d = 8, m = 512, L = 2.  lr = 0.1 (the old default) is
    about 6x the largest stable step 2n/λ_max; the default is half of it, c = ηL²m/k is
    O(10) (17.5 measured), and the loss falls at every recorded step to under 1% of
    L(W(0)) in 200 steps (2.4e-4 of 0.80 measured: a factor ~30 of margin)."""
    net, X, Y = problem(n=32, d=8, m=512, L=2)
    largest = 2 * 32 / reference_lambda_max(net, X)
    assert 0.1 > 5 * largest
    hist = tn.train(net, X, Y, steps=200, record_every=10, probes=[])
    assert hist["lr"] == pytest.approx(largest / 2, rel=1e-10)
    assert 5 < hist["c"] < 50
    loss = hist["loss"]
    assert all(b < a for a, b in zip(loss, loss[1:])), loss
    assert loss[-1] < 0.01 * loss[0]


def test_given_lr_and_optimizer_objects_are_used_as_they_are():
    net, X, Y = problem()
    twin = net.copy()
    hist = tn.train(net, X, Y, steps=3, lr=0.01, probes=[])
    assert hist["lr"] == 0.01 and hist["c"] == pytest.approx(0.01 * 4 * 128, rel=1e-15)
    opt = tn.optim.GD(0.01)
    assert tn.train(twin, X, Y, steps=3, optimizer=opt, probes=[]) == hist   # lr="auto" ignored
    for a, b in zip(net.W, twin.W):
        np.testing.assert_array_equal(tn.to_numpy(a), tn.to_numpy(b))


def test_linearized_model_gets_its_nets_step():
    net, X, Y = problem()
    hist = tn.train(tn.linearize(net), X, Y, steps=1, probes=[])
    assert hist["lr"] == pytest.approx(0.5 * 2 * 16 / reference_lambda_max(net, X), rel=1e-10)


def test_auto_refuses_what_it_cannot_size_and_changes_nothing():
    net, X, Y = problem()
    before = [tn.to_numpy(w).copy() for w in net.W]

    class Huber:                      # a loss whose curvature auto does not know
        name = "huber"

        def value(self, out, Y):
            return tn.losses.SquareLoss().value(out, Y)

        def grad(self, out, Y, scale=1.0, out_array=None):
            return tn.losses.SquareLoss().grad(out, Y, scale, out_array)

    with pytest.raises(ValueError, match="lr='auto'.*huber.*give the step size lr"):
        tn.train(net, X, Y, steps=2, loss=Huber())
    assert len(tn.train(net.copy(), X, Y, steps=1, lr=0.01, loss=Huber())["loss"]) == 2
    for bad in ("fast", None, b"auto"):
        with pytest.raises(TypeError, match="lr must be a positive number or 'auto'"):
            tn.train(net, X, Y, steps=2, lr=bad)

    class Named:
        name = "lr"

        def __call__(self, state):
            return 0.0

    with pytest.raises(ValueError, match="probe is named 'lr'"):
        tn.train(net, X, Y, steps=2, probes=[Named()])
    for w, b in zip(net.W, before):
        np.testing.assert_array_equal(tn.to_numpy(w), b)


def test_auto_on_a_dead_net_says_so():
    """Every first-layer pre-activation negative: zero NTK, no step size is stable-or-not."""
    X = np.abs(tn.data.sphere(n=8, d=4, seed=0)[0])            # unit rows, positive entries
    Y = np.ones((8, 1))
    net = tn.ReLUNet.init(d=4, m=16, L=2, seed=0)
    dead = tn.ReLUNet(W=[-np.abs(tn.to_numpy(net.W[0])), tn.to_numpy(net.W[1])], V=tn.to_numpy(net.V))
    with pytest.raises(ValueError, match="dead net"):
        tn.train(dead, X, Y, steps=1)
