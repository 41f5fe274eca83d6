"""The linearized network (:mod:`tinyntk.linearized`): its forward and backward passes
against independent references, its training against the kernel-regime prediction, and
its place in the training loop (probes, checkpoints, errors).

Tolerances:

* Gradients, 1e-6 relative per entry (the measure of ``test_gradients.py``): the
  linearized model is linear in every weight for *any* weights (its masks are frozen at
  W(0)), so the square loss is a quadratic in each weight and the central difference is
  exact up to rounding, about 2e-11·L/ε-floor as argued in ``test_gradients.py``; the
  logistic loss adds an O(ε²) = 1e-8 truncation.  Only the masks at W(0) must be the same
  in the package and the reference, so pre-activations at W(0) are kept 1e-3 from 0.
* ``train(linearize(net))`` against ``gd_mse``: 1e-8 relative, the issue's target.  Both
  compute the same linear recursion in float64 (one by weights, one by the kernel), so
  they differ by rounding only: about T·κ·1e-16 for T steps of a contraction.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import reference as ref
import strategies as S
import tinyntk as tn
from tinyntk.gradcheck import check_gradients
from tinyntk.network import MODEL_PROTOCOL

RTOL = 1e-6


def _rel(a, b) -> float:
    a, b = tn.to_numpy(a), tn.to_numpy(b)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def _setup(n=16, d=8, m=64, k=1, L=2, seed=0, n_test=5):
    X, Y = tn.data.sphere(n=n, d=d, k=k, seed=seed)
    X_test, _ = tn.data.sphere(n=n_test, d=d, k=k, seed=seed + 100)
    net = tn.ReLUNet.init(d=d, m=m, k=k, L=L, seed=seed)
    return net, X, Y, X_test


# ----- what the model is ----------------------------------------------------------------
def test_linearize_copies_and_never_changes_the_net():
    net, X, Y, _ = _setup(L=3)
    before = [tn.to_numpy(w).copy() for w in net.W + [net.V]]
    lin = tn.linearize(net)
    assert all(hasattr(lin, a) for a in MODEL_PROTOCOL)
    assert (lin.d, lin.m, lin.k, lin.L, lin.dtype) == (net.d, net.m, net.k, net.L, net.dtype)
    assert np.array_equal(lin(X), net(X))                 # f_lin(W(0)) = f(W(0)) exactly
    assert all(a is not b for a, b in zip(lin.W + [lin.V], net.W + [net.V]))
    tn.train(lin, X, Y, steps=5, lr=0.01, train_output=True)
    assert all(np.array_equal(a, tn.to_numpy(b)) for a, b in zip(before, net.W + [net.V]))
    assert not np.array_equal(lin(X), net(X))             # the model did train


def test_linearize_refuses_what_is_not_a_net():
    with pytest.raises(TypeError, match="ReLUNet"):
        tn.linearize("net")
    with pytest.raises(TypeError, match="lacks .*backward"):
        tn.train(object(), np.zeros((2, 2)), np.zeros((2, 1)), steps=1)


def test_the_model_is_linear_in_its_weights():
    """f_lin(W0 + aP + bQ) = f0 + a J P + b J Q, with J P from ReLUNet.jvp (to rounding)."""
    net, X, _, _ = _setup(L=3, k=2)
    rng = np.random.default_rng(1)
    P = [rng.standard_normal(w.shape) * 0.1 for w in net.W + [net.V]]
    Q = [rng.standard_normal(w.shape) * 0.1 for w in net.W + [net.V]]
    lin = tn.linearize(net)

    def at(a, b):
        for w, w0, p, q in zip(lin.W + [lin.V], net.W + [net.V], P, Q):
            w[...] = w0 + a * p + b * q
        return lin(X)

    f0 = net(X)
    _, cache = net.forward(X, cache=True)
    JP = net.jvp(cache, P[:-1], P[-1]).copy()
    JQ = net.jvp(cache, Q[:-1], Q[-1]).copy()
    assert _rel(at(1.0, 0.0), f0 + JP) < 1e-12
    assert _rel(at(2.0, -3.0), f0 + 2 * JP - 3 * JQ) < 1e-12


def test_jvp_is_the_adjoint_of_backward():
    """<J p, u> = <p, J^T u>: the forward-mode pass against the backward pass."""
    net, X, _, _ = _setup(L=3, k=3, m=32)
    rng = np.random.default_rng(2)
    P = [rng.standard_normal(w.shape) for w in net.W + [net.V]]
    U = rng.standard_normal((X.shape[0], net.k))
    _, cache = net.forward(X, cache=True)
    left = float(np.vdot(net.jvp(cache, P[:-1], P[-1]), U))
    G = net.backward(cache, U)
    right = sum(float(np.vdot(p, g)) for p, g in zip(P, list(G.W) + [G.V]))
    assert left == pytest.approx(right, rel=1e-12)


def test_forward_matches_the_per_example_reference():
    net, X, _, _ = _setup(L=3, k=2, m=16)
    lin = tn.linearize(net)
    rng = np.random.default_rng(3)
    for w in lin.W + [lin.V]:
        w += 0.3 * rng.standard_normal(w.shape)
    W0 = [tn.to_numpy(w) for w in net.W]
    expected = ref.linearized_forward(W0, tn.to_numpy(net.V), lin.W, lin.V, X)
    assert _rel(lin(X), expected) < 1e-12


def test_the_primal_pass_is_reused_only_for_an_equal_batch():
    """The cache keeps the pass at W(0) for its batch; a batch changed in place (as SGD's
    reused minibatch buffer is) must not be served the old one."""
    net, X, _, X2 = _setup(n=5)
    lin = tn.linearize(net)
    lin.W[0] += 0.1
    batch = np.array(X)
    out, cache = lin.forward(batch, cache=True, check=False)
    first = out.copy()
    batch[...] = X2                                          # same array, new rows
    again, cache2 = lin.forward(batch, cache=cache, check=False)
    assert cache2 is cache
    assert _rel(again, lin(X2)) < 1e-15
    batch[...] = X
    assert np.array_equal(lin.forward(batch, cache=cache, check=False)[0], first)


def test_float32_stays_float32():
    net = tn.ReLUNet.init(d=4, m=16, L=2, seed=0, dtype="float32")
    X, Y = tn.data.sphere(n=8, d=4, seed=0)
    lin = tn.linearize(net)
    tn.train(lin, X, Y, steps=3, lr=0.01, train_output=True)
    assert lin(X).dtype == np.float32 and all(w.dtype == np.float32 for w in lin.W + [lin.V])


# ----- gradients --------------------------------------------------------------------------
@S.fixture_settings(max_examples=60)
@pytest.mark.parametrize("loss", ["square", "logistic"])
@given(data=st.data())
def test_backward_matches_finite_differences(backend, loss, data):
    p = data.draw(S.problems(loss=loss), label="problem")
    assume(S.movable_min_abs_preactivation(p.W, p.X) > S.MARGIN)   # same masks at W(0)
    shift = [data.draw(S.matrices(*w.shape, bound=0.5), label=f"shift{i}")
             for i, w in enumerate(p.W + [p.V])]
    W = [w + s for w, s in zip(p.W, shift)]
    V = p.V + shift[-1]

    def forward(W_, V_, X_):
        return ref.linearized_forward(p.W, p.V, W_, V_, X_)

    fd_W, fd_V = ref.finite_difference_grads(W, V, p.X, p.Y, loss, eps=S.EPS, forward_fn=forward)
    value = ref.loss_value(forward(W, V, p.X), p.Y, loss)
    G = max(float(np.abs(g).max()) for g in fd_W + [fd_V])
    assume(G == 0.0 or G >= 0.05 * value)       # resolvable (test_gradients.py's argument)

    lin = tn.linearize(p.net())
    for w, a in zip(lin.W + [lin.V], W + [V]):
        w[...] = tn.get_backend().xp.asarray(a)
    got, grads = tn.loss_and_grad(lin, p.X, p.Y, loss=loss)
    assert got == pytest.approx(value, rel=1e-12, abs=1e-300)
    fd = fd_W + [fd_V]
    bp = [tn.to_numpy(g) for g in list(grads.W) + [grads.V]]
    floor = max(1e-3 * max(float(np.abs(a).max()) for a in fd), np.finfo(float).tiny)
    for i, (a, b) in enumerate(zip(fd, bp)):
        err = np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), floor)
        assert err.max() < RTOL, f"{loss}: parameter {i}: relative error {err.max():.2e}"


def test_the_package_gradient_checker_takes_a_linearized_model():
    net, X, Y, _ = _setup(n=6, d=4, m=8, L=2)
    lin = tn.linearize(net)
    lin.W[1] += 0.2
    result = check_gradients(lin, X, Y)
    assert result.max_error < 1e-6, str(result)
    assert result.min_abs_preactivation == np.inf        # frozen masks: no kink to cross


# ----- training: the kernel-regime prediction, exactly -------------------------------------
@pytest.mark.parametrize("L, train_output", [(1, False), (2, False), (3, True)])
def test_training_the_linearized_net_is_the_kernel_prediction(L, train_output):
    net, X, Y, X_test = _setup(n=16, d=8, m=128, L=L, seed=L)
    K = tn.kernels.empirical_ntk(net, X, train_output=train_output)
    K_tx = tn.kernels.empirical_ntk(net, X_test, X, train_output=train_output)
    lr, T = 0.5 * 2 * X.shape[0] / np.linalg.eigvalsh(K)[-1], 200      # half the stable limit
    lin = tn.linearize(net)
    hist = tn.train(lin, X, Y, steps=T, lr=lr, train_output=train_output)
    f, f_test = tn.predict.gd_mse(K, Y, lr, T, f0_train=net(X), K_test_train=K_tx,
                                  f0_test=net(X_test))
    assert _rel(lin(X), f) < 1e-8
    assert _rel(lin(X_test), f_test) < 1e-8
    assert hist["loss"][-1] < 0.1 * hist["loss"][0]       # it trained: not a trivial match


def test_training_the_linearized_net_with_k_outputs_uses_the_full_kernel():
    net, X, Y, X_test = _setup(n=12, d=6, m=64, k=3, L=2)
    K = tn.kernels.empirical_ntk(net, X, output="full")
    K_tx = tn.kernels.empirical_ntk(net, X_test, X, output="full")
    lr, T = 12 / np.linalg.eigvalsh(K.reshape(36, 36))[-1], 100
    lin = tn.linearize(net)
    tn.train(lin, X, Y, steps=T, lr=lr)
    f, f_test = tn.predict.gd_mse(K, Y, lr, T, f0_train=net(X), K_test_train=K_tx,
                                  f0_test=net(X_test))
    assert _rel(lin(X), f) < 1e-8 and _rel(lin(X_test), f_test) < 1e-8


def test_the_real_net_departs_from_its_linearization_less_when_wider():
    """‖f_net(T) − f_lin(T)‖ / ‖f_lin(T) − f(0)‖ on the training points, GD at half the
    stable step for T = 100 steps, 3 seeds per width.  Lee et al. (2019) bound the gap by
    O(m^{-1/2}): from m = 64 to 512 that is a factor 0.35; we ask for 0.5 on the mean."""
    X, Y = tn.data.sphere(n=16, d=8, seed=0)
    gaps = {}
    for m in (64, 512):
        gaps[m] = []
        for seed in range(3):
            net = tn.ReLUNet.init(d=8, m=m, L=2, seed=seed)
            lr = X.shape[0] / np.linalg.eigvalsh(tn.kernels.empirical_ntk(net, X))[-1]
            f0, lin = net(X), tn.linearize(net)
            tn.train(lin, X, Y, steps=100, lr=lr)
            tn.train(net, X, Y, steps=100, lr=lr)
            gaps[m].append(np.linalg.norm(net(X) - lin(X)) / np.linalg.norm(lin(X) - f0))
    assert np.mean(gaps[512]) < 0.5 * np.mean(gaps[64]), gaps
    assert min(gaps[64]) > 0                              # the real net is not linear


# ----- the training loop's other parts ----------------------------------------------------
def test_probes_on_a_linearized_run():
    net, X, Y, _ = _setup(n=8, m=32, L=2)
    lin = tn.linearize(net)
    probes = [tn.diagnostics.Distance(), tn.diagnostics.DistanceFro(), tn.diagnostics.GradNorms(),
              tn.diagnostics.Lemma41Ratio(phi=tn.data.separation(X)), tn.diagnostics.InBall(tau=10.0),
              tn.diagnostics.NTKDrift()]
    hist = tn.train(lin, X, Y, steps=20, lr=0.05, probes=probes, record_every=10)
    assert all(v == 0.0 for v in hist["ntk_drift"])       # its kernel never moves
    assert hist["distance"][-1][0] > 0 and hist["grad_norm"][-1][0] > 0
    # the probe's gradient is the linearized model's, which is the net's at W(0)
    _, g = tn.loss_and_grad(lin, X, Y)
    assert hist["grad_norm"][-1][0] == pytest.approx(float(np.linalg.norm(g.W[0])), rel=1e-12)
    with pytest.raises(TypeError, match="frozen at W\\(0\\)"):
        tn.train(tn.linearize(net), X, Y, steps=2, probes=[tn.diagnostics.ActivationFlips()])
    with pytest.raises(TypeError, match="frozen"):
        tn.diagnostics.activation_flips(lin, net.W, X)


def test_a_linearized_run_resumes_bit_identically_and_only_into_its_own_model(tmp_path):
    """SGD (so the random state travels too), interrupted after step 7, checkpointed at
    step 5, resumed by a model linearized afresh at the same net."""
    net, X, Y, _ = _setup(n=10, m=32, L=2)
    path = tmp_path / "run.npz"
    args = dict(steps=20, lr=0.05, batch_size=4, seed=3, train_output=True)
    full = tn.linearize(net)
    h_full = tn.train(full, X, Y, **args)
    args.update(checkpoint=path, checkpoint_every=5)
    _interrupt_after(tn.linearize(net), X, Y, 7, args)
    again = tn.linearize(net)
    h = tn.train(again, X, Y, resume=path, **args)
    assert h == h_full
    assert all(np.array_equal(a, b) for a, b in zip(again.W + [again.V], full.W + [full.V]))
    with pytest.raises(tn.CheckpointError, match="linearized model"):
        tn.train(net.copy(), X, Y, resume=path, **args)
    other = tn.linearize(tn.ReLUNet.init(d=net.d, m=net.m, L=2, seed=99))
    with pytest.raises(tn.CheckpointError, match="other weights W\\(0\\)"):
        tn.train(other, X, Y, resume=path, **args)
    with pytest.raises(tn.CheckpointError, match="linearized model"):
        tn.ReLUNet.load(path)


def _interrupt_after(model, X, Y, steps, args):
    """Run ``train`` with a callback that stops it (KeyboardInterrupt) after ``steps``."""
    def stop(step, loss):
        if step == steps:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        tn.train(model, X, Y, callback=stop, **args)


def test_a_diverging_linearized_run_suggests_its_own_stable_step():
    net, X, Y, _ = _setup(n=8, m=32, L=2)
    lin = tn.linearize(net)
    lam = np.linalg.eigvalsh(tn.kernels.empirical_ntk(net, X))[-1]
    with pytest.raises(tn.Diverged) as info:
        tn.train(lin, X, Y, steps=5000, lr=50 * 2 * 8 / lam)
    assert info.value.stability_bound == pytest.approx(2 * 8 / lam, rel=1e-2)


def test_an_optimizer_shared_between_models_never_serves_one_the_others_pass():
    """GD keeps its forward cache between calls: a second model must not be served the
    first one's pass at W(0) (nor a net's pass written into a linearized cache)."""
    X, Y = tn.data.sphere(n=8, d=4, seed=0)
    a = tn.ReLUNet.init(d=4, m=16, L=2, seed=1)
    b = tn.ReLUNet.init(d=4, m=16, L=2, seed=2)
    fresh = tn.train(tn.linearize(b), X, Y, steps=5, lr=0.05)
    shared = tn.optim.GD(0.05)
    tn.train(tn.linearize(a), X, Y, steps=5, optimizer=shared)
    tn.train(b.copy(), X, Y, steps=2, optimizer=shared)                  # a net in between
    assert tn.train(tn.linearize(b), X, Y, steps=5, optimizer=shared)["loss"] == fresh["loss"]


def test_changing_the_batch_after_a_forward_pass_changes_nothing_cached():
    net, X, Y, X2 = _setup(n=5)
    lin = tn.linearize(net)
    lin.W[0] += 0.1
    A = np.array(X)
    _, cache = lin.forward(A, cache=True, check=False)
    A[...] = X2                                      # the caller reuses its buffer
    out, _ = lin.forward(np.array(X), cache=cache, check=False)   # an equal, other array
    assert np.array_equal(out, lin(X))
    G = lin.backward(cache, np.ones((5, 1)))
    assert np.array_equal(G.W[0], lin.backward(lin.forward(X, cache=True)[1], np.ones((5, 1))).W[0])


def test_a_second_run_of_a_trained_linearized_model_uses_its_own_kernel():
    """After a first run, W(0) of the next run is not the expansion point: NTKDrift and the
    divergence hint must still use the model's kernel (the net's at the expansion point)."""
    net, X, Y, _ = _setup(n=8, m=32, L=2)
    lin = tn.linearize(net)
    tn.train(lin, X, Y, steps=20, lr=0.05)
    hist = tn.train(lin, X, Y, steps=10, lr=0.05, probes=[tn.diagnostics.NTKDrift()],
                    record_every=5)
    assert hist["ntk_drift"] == [0.0, 0.0, 0.0]
    lam = np.linalg.eigvalsh(tn.kernels.empirical_ntk(net, X))[-1]
    with pytest.raises(tn.Diverged) as info:
        tn.train(lin, X, Y, steps=5000, lr=50 * 2 * 8 / lam)
    assert info.value.stability_bound == pytest.approx(2 * 8 / lam, rel=1e-2)


def test_a_linearized_model_has_no_net_file(tmp_path):
    lin = tn.linearize(tn.ReLUNet.init(d=4, m=8, seed=0))
    for save in (lin.save, lambda p: tn.checkpoint.save_net(lin, p)):
        with pytest.raises(TypeError, match="checkpoint=path"):
            save(tmp_path / "lin.npz")
