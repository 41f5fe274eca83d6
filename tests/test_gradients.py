"""The hand-written backward pass against central finite differences (float64).

Two independent checks on every Hypothesis-drawn case:

1. the public checker :func:`tinyntk.gradcheck.check_gradients`, and
2. a finite difference written in the test itself (:mod:`reference`) of a loss computed by
   an independent NumPy forward pass, so a bug in the checker (or in the package's forward
   pass) cannot hide a bug in ``backward``.

Tolerance: relative error < 1e-6 per entry, with the error of an entry measured as
``|g_fd − g_bp| / max(|g_fd|, |g_bp|, 1e-3 · max_j |g_j|)`` (the checker's definition; it
takes ``g_j`` from backward, our own check from the finite differences; the floor stops
entries that are ~0 in both from dividing by ~0).  Why 1e-6 holds and why it
would catch a bug:

* Truncation.  With all masks fixed (``kink_free_problems`` guarantees it on the whole
  ±ε segment) the net's output is *linear* in any single weight, so the square loss is a
  quadratic in it and the central difference has no truncation error at all; the logistic
  loss is smooth with a bounded third derivative, and its O(ε²) = O(1e-8) truncation is
  far below 1e-6.
* Rounding.  Each loss evaluation carries a relative rounding error of at most ~16 ulp
  (a sum of n·k ≤ 16 terms), so the difference quotient is off by at most about
  16 · 1.1e-16 · L / ε ≈ 1.8e-11 · L at ε = 1e-4.  We ``assume`` the gradient is
  resolvable, ``max_j |g_fd,j| ≥ 0.05 · L`` (judged on the finite differences, not on the
  code under test), or exactly 0 (a net dead on every example: the loss is constant, the
  differences are exact zeros and backward must return exact zeros); then the rounding
  error is below 1.8e-11 · L / (1e-3 · 0.05 · L) ≈ 3.6e-7 of the floor, under 1e-6.
* A bug (a missing mask, a transposed product, a wrong 1/n, a dropped layer) changes
  entries by O(1) relative: five orders of magnitude above the tolerance.
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
from tinyntk.network import per_neuron_gradient

RTOL = 1e-6
EPS = S.EPS


def relative_errors(fd, bp):
    """Entry-wise relative error with the floor described in the module docstring."""
    floor = max(1e-3 * max(float(np.abs(a).max()) for a in fd), np.finfo(float).tiny)
    return [np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), floor)
            for a, b in zip(fd, bp)]


@S.fixture_settings(max_examples=100)
@pytest.mark.parametrize("loss", ["square", "logistic"])
@given(data=st.data())
def test_backward_matches_finite_differences(backend, loss, data):
    p = data.draw(S.kink_free_problems(loss=loss, eps=EPS), label="problem")
    fd_W, fd_V = ref.finite_difference_grads(p.W, p.V, p.X, p.Y, loss, eps=EPS)
    value = ref.loss(p.W, p.V, p.X, p.Y, loss)
    G = max(float(np.abs(g).max()) for g in fd_W + [fd_V])
    # Resolvable (see the module docstring), or exactly zero: a net whose units are all
    # dead for every example has a constant loss, and backward must then return exact zeros.
    assume(G == 0.0 or G >= 0.05 * value)

    net = p.net()
    got, grads = tn.loss_and_grad(net, p.X, p.Y, loss=loss)
    # The loss itself: same formula, different summation order -> a few ulp.
    assert got == pytest.approx(value, rel=1e-12, abs=1e-300)

    bp = [tn.to_numpy(g) for g in grads.W] + [tn.to_numpy(grads.V)]
    names = [f"W[{l}]" for l in range(net.L)] + ["V"]
    for name, err, a, b in zip(names, relative_errors(fd_W + [fd_V], bp), fd_W + [fd_V], bp):
        assert a.shape == b.shape, name
        worst = np.unravel_index(np.argmax(err), err.shape)
        assert err[worst] < RTOL, (
            f"{loss}: d loss/d {name}{list(worst)}: finite difference {a[worst]:.10e}, "
            f"backward {b[worst]:.10e}, relative error {err[worst]:.2e} >= {RTOL}")

    # The public checker, on the same case and the same step.
    result = check_gradients(net, p.X, p.Y, loss=loss, eps=EPS)
    assert result.checked == sum(w.size for w in p.W) + p.V.size
    assert result.max_error < RTOL, str(result)


def test_checker_catches_a_wrong_gradient(monkeypatch):
    """The checker can fail: break the backward pass (drop the last mask) and it must notice."""
    X, Y = tn.data.sphere(n=6, d=4, k=1, seed=1)
    net = tn.ReLUNet.init(d=4, m=5, k=1, L=2, seed=3)
    assert check_gradients(net, X, Y).max_error < RTOL
    original = tn.ReLUNet.backward

    def backward_without_first_mask(self, cache, E, grads=None, need_V=True):
        cache.masks[0][...] = True           # pretend every layer-1 unit is active
        return original(self, cache, E, grads, need_V)

    monkeypatch.setattr(tn.ReLUNet, "backward", backward_without_first_mask)
    broken = check_gradients(net, X, Y)
    assert broken.max_error > 1e-2 and not broken.passed
    assert str(broken).startswith("FAILED")


def _net_with_a_preactivation_at(value):
    """The net above, with the first unit of layer 1 (row 0 of W[0]) moved along x_0 so
    that its pre-activation at example 0 is ``value``; no other unit's pre-activation moves."""
    X, Y = tn.data.sphere(n=6, d=4, k=1, seed=1)
    net = tn.ReLUNet.init(d=4, m=5, k=1, L=2, seed=3)
    x0 = X[0]
    net.W[0][0] += (value - net.W[0][0] @ x0) / (x0 @ x0) * x0
    return net, X, Y


def test_checker_reports_kinks_apart_and_does_not_count_them():
    """Issue 24: a pre-activation of 1e-5 lies inside the default ±1e-4 stencil of every
    entry of that unit's row (|x_0j| * 1e-4 > 1e-5 for this x_0): those central differences
    average two slopes.  They must be reported as kinks, and the verdict must rest on the
    other entries, which are still checked to RTOL."""
    net, X, Y = _net_with_a_preactivation_at(1e-5)
    result = check_gradients(net, X, Y)
    kinks = {kink.where for kink in result.kinks}
    assert kinks == {("W[0]", (0, j)) for j in range(4)}, kinks
    assert max(kink.error for kink in result.kinks) > 1e-2     # would have alarmed before
    assert result.checked == sum(w.size for w in net.W) + net.V.size   # kinks still counted
    assert result.where not in kinks
    assert result.passed and result.max_error < RTOL, str(result)
    assert "4 entries at a ReLU kink, not counted" in str(result)
    assert result.min_abs_preactivation == pytest.approx(1e-5, rel=1e-6)
    # A smaller eps (|x_0j| * 1e-6 <= 1e-6 < 1e-5) steps over no kink, and then the same
    # entries agree with the backward pass: they were never errors of the backward pass.
    fine = check_gradients(net, X, Y, eps=1e-6)
    assert fine.kinks == [] and fine.passed, str(fine)


def test_a_wrong_gradient_is_caught_next_to_a_kink(monkeypatch):
    """Setting kinks apart must not hide a real error elsewhere: scale the V gradient."""
    net, X, Y = _net_with_a_preactivation_at(1e-5)
    original = tn.ReLUNet.backward

    def backward_with_a_wrong_V(self, cache, E, grads=None, need_V=True):
        grads = original(self, cache, E, grads, need_V)
        grads.V *= 1.01
        return grads

    monkeypatch.setattr(tn.ReLUNet, "backward", backward_with_a_wrong_V)
    result = check_gradients(net, X, Y)
    assert result.kinks and not result.passed and result.where[0] == "V", str(result)


def test_checker_subset_and_leaves_the_net_unchanged():
    X, Y = tn.data.sphere(n=5, d=3, k=2, seed=2)
    net = tn.ReLUNet.init(d=3, m=4, k=2, L=3, seed=2)
    before = [tn.to_numpy(w).copy() for w in net.W + [net.V]]
    result = check_gradients(net, X, Y, max_entries=3, seed=1)
    assert result.checked == 3 * (net.L + 1)          # 3 entries of each W_l and of V
    assert result.max_error < RTOL, str(result)
    assert result.min_abs_preactivation > 0
    for w, b in zip(net.W + [net.V], before):
        np.testing.assert_array_equal(tn.to_numpy(w), b)   # bitwise: restored, not recomputed


@S.fixture_settings(max_examples=60)
@given(p=S.problems(loss="square"))
def test_per_neuron_formula_is_row_j_of_last_layer_gradient(backend, p):
    """Section 4.1: ∇_{w_{L,j}} L = (1/n) Σ_i <f(x_i) − y_i, v_j> σ'(<w_{L,j}, x_{L-1,i}>) x_{L-1,i}.

    No kink filter: both sides use σ'(0) = 0, so they must agree even at exact zeros.
    Tolerance: the formula sums over i in a Python loop, backward uses one matmul; the two
    orders of n ≤ 4 products differ by a few ulp of the sum of |terms|, so we allow
    1e-12 relative to that sum (scaled by 1/n like the gradient itself).
    """
    net = p.net()
    _, grads = tn.loss_and_grad(net, p.X, p.Y)
    G = tn.to_numpy(grads.W[-1])
    x_prev = ref.preactivations(p.W[:-1], p.X)[-1].clip(min=0) if net.L > 1 else p.X
    r = ref.forward(p.W, p.V, p.X) - p.Y
    for j in range(net.m):
        row = tn.to_numpy(per_neuron_gradient(net, p.X, p.Y, j))
        assert row.shape == (net.m if net.L > 1 else net.d,)
        scale = np.abs(r @ p.V[:, j]) @ np.abs(x_prev).sum(axis=1) / p.X.shape[0]
        np.testing.assert_allclose(row, G[j], rtol=1e-12, atol=1e-12 * scale + 1e-300,
                                   err_msg=f"neuron j = {j}")


def test_per_neuron_formula_is_not_trivially_zero():
    """Guard for the test above: on a generic net the rows are nonzero and differ by j."""
    X, Y = tn.data.sphere(n=8, d=5, k=2, seed=0)
    net = tn.ReLUNet.init(d=5, m=6, k=2, L=3, seed=0)
    rows = np.array([tn.to_numpy(per_neuron_gradient(net, X, Y, j)) for j in range(6)])
    assert np.count_nonzero(np.abs(rows).sum(axis=1)) >= 3
    assert not np.allclose(rows[0], rows[1])


def _torch_grads(torch, p):
    """Loss and gradients of the same net by PyTorch autograd (float64, CPU)."""
    W = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in p.W]
    V = torch.tensor(p.V, dtype=torch.float64, requires_grad=True)
    h = torch.tensor(p.X, dtype=torch.float64)
    for W_l in W:
        h = torch.relu(h @ W_l.T)                  # torch's relu also has sigma'(0) = 0
    out = h @ V.T
    Y = torch.tensor(p.Y, dtype=torch.float64)
    if p.loss == "square":
        loss = 0.5 * ((Y - out) ** 2).sum() / out.shape[0]
    else:
        loss = torch.nn.functional.softplus(-Y * out).sum() / out.shape[0]
    loss.backward()
    return float(loss.detach()), [w.grad.numpy() for w in W] + [V.grad.numpy()]


def test_backward_matches_torch_autograd():
    """An outside reference, where PyTorch is installed (skipped otherwise).

    Same maths in float64, different summation orders: entries agree to rounding, which
    we bound by 1e-12 of the largest gradient entry (plus 1e-9 relative); kink-free draws
    keep both libraries on the same side of every ReLU.
    """
    torch = pytest.importorskip("torch")
    from hypothesis import settings

    @settings(max_examples=40)
    @given(p=st.sampled_from(["square", "logistic"]).flatmap(
        lambda loss: S.kink_free_problems(loss=loss)))
    def check(p):
        value, expected = _torch_grads(torch, p)
        got_value, grads = tn.loss_and_grad(p.net(), p.X, p.Y, loss=p.loss)
        assert got_value == pytest.approx(value, rel=1e-12, abs=1e-300)
        scale = max(float(np.abs(e).max()) for e in expected)
        for l, (g, e) in enumerate(zip(list(grads), expected)):
            np.testing.assert_allclose(tn.to_numpy(g), e, rtol=1e-9, atol=1e-12 * scale + 1e-300,
                                       err_msg=f"{p.loss}: parameter {l} (last is V)")

    check()


def test_relu_kink_convention_matches_torch():
    """At an exact zero pre-activation both tinyntk and torch use sigma'(0) = 0."""
    torch = pytest.importorskip("torch")
    p = S.Problem(W=[np.eye(2), np.array([[1.0, -1.0], [1.0, 1.0]])], V=np.array([[1.0, 1.0]]),
                  X=np.array([[1.0, 1.0]]), Y=np.array([[5.0]]))
    _, expected = _torch_grads(torch, p)
    _, grads = tn.loss_and_grad(p.net(), p.X, p.Y)
    for g, e in zip(list(grads), expected):
        np.testing.assert_array_equal(tn.to_numpy(g), e)
    assert np.all(expected[1][0] == 0.0)
