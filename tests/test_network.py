"""ReLUNet: the forward pass of section 2, the masks, σ'(0) = 0, copying, dtypes."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

import reference as ref
import strategies as S
import tinyntk as tn


def forward_tolerance(p):
    """Outputs are sums of products; NumPy/CuPy matmuls may sum in any order, which moves a
    result by a few ulp of the sum of |terms|.  ``scale`` bounds that sum (|W| and |V| are
    the absolute matrices), and 1e-12 of it is ~4500 ulp: generous for rounding, far below
    any real error (a missing ReLU or a transposed weight changes outputs by O(scale))."""
    h = np.abs(p.X)
    for W in p.W:
        h = h @ np.abs(W).T
    return 1e-12 * (h @ np.abs(p.V).T) + 1e-300


@S.fixture_settings(max_examples=50)
@given(p=S.problems())
def test_forward_matches_reference(backend, p):
    net = p.net()
    out = net(p.X)
    assert isinstance(out, backend.xp.ndarray)
    assert out.shape == (p.shape.n, p.shape.k) and out.dtype == np.float64
    expected = ref.forward(p.W, p.V, p.X)
    err = np.abs(tn.to_numpy(out) - expected)
    assert np.all(err <= forward_tolerance(p)), (tn.to_numpy(out), expected)
    out2, cache = net.forward(p.X, cache=True)
    assert np.array_equal(tn.to_numpy(out2), tn.to_numpy(out))   # same code, same bits


@S.fixture_settings(max_examples=50)
@given(p=S.kink_free_problems())
def test_masks_are_boolean_and_equal_preactivation_positive(backend, p):
    """Kink-free draws: |z| >= 1e-3 for every movable pre-activation, far above rounding,
    so the reference's z > 0 is the exact answer (exact zeros from dead rows are 0 in both)."""
    net = p.net()
    _, cache = net.forward(p.X, cache=True)
    assert len(cache.masks) == net.L
    for l, (mask, z) in enumerate(zip(cache.masks, ref.preactivations(p.W, p.X)), start=1):
        assert mask.dtype == np.bool_, f"layer {l}: mask dtype {mask.dtype}"
        assert mask.shape == (p.shape.n, p.shape.m)
        assert np.array_equal(tn.to_numpy(mask), z > 0), f"layer {l}"
        np.testing.assert_allclose(tn.to_numpy(cache.h[l]), np.maximum(z, 0), rtol=1e-12,
                                   atol=1e-12)


def test_relu_derivative_at_zero_is_zero():
    """σ'(0) = 0: an exact zero pre-activation (of a *live* input row, in layer 2) is masked
    out, so the gradient of that unit's incoming weights is exactly 0 although the
    right-hand derivative is not."""
    # Layer 1: x = (1, 1) -> z1 = (1, 1) (both active).  Layer 2, unit 0: 1 - 1 = 0 exactly;
    # unit 1: 1 + 1 = 2.
    W1 = np.eye(2)
    W2 = np.array([[1.0, -1.0], [1.0, 1.0]])
    V = np.array([[1.0, 1.0]])
    X = np.array([[1.0, 1.0]])
    Y = np.array([[5.0]])
    net = tn.ReLUNet(W=[W1, W2], V=V)
    out, cache = net.forward(X, cache=True)
    assert tn.to_numpy(cache.masks[1]).tolist() == [[False, True]]
    assert tn.to_numpy(out).tolist() == [[2.0]]
    _, grads = tn.loss_and_grad(net, X, Y)
    gW2 = tn.to_numpy(grads.W[1])
    assert np.all(gW2[0] == 0.0)            # the unit at the kink gets no gradient
    assert np.all(gW2[1] != 0.0)            # the active one does: (f - y) v_1 x_1 = -3
    np.testing.assert_array_equal(gW2[1], [-3.0, -3.0])
    # The right-hand derivative differs: nudging W2[0, 0] up activates unit 0.
    nudged = tn.ReLUNet(W=[W1, W2 + np.array([[1e-3, 0], [0, 0]])], V=V)
    assert tn.to_numpy(nudged(X))[0, 0] > 2.0


def test_relu_zero_in_first_layer_masked():
    """The same at layer 1: w = (1, -1), x = (1, 1) gives an exact 0 pre-activation."""
    net = tn.ReLUNet(W=[np.array([[1.0, -1.0], [0.5, 0.5]])], V=np.array([[2.0, 3.0]]))
    X = np.array([[1.0, 1.0]])
    _, cache = net.forward(X, cache=True)
    assert tn.to_numpy(cache.masks[0]).tolist() == [[False, True]]
    _, grads = tn.loss_and_grad(net, X, np.array([[0.0]]))
    assert np.all(tn.to_numpy(grads.W[0])[0] == 0.0)
    assert tn.to_numpy(grads.V)[0, 0] == 0.0


def test_sizes_and_shapes():
    net = tn.ReLUNet.init(d=5, m=7, k=3, L=4, seed=0)
    assert (net.d, net.m, net.k, net.L) == (5, 7, 3, 4)
    assert [w.shape for w in net.W] == [(7, 5), (7, 7), (7, 7), (7, 7)]
    assert net.V.shape == (3, 7)
    out, cache = net.forward(np.ones((2, 5)), cache=True)
    assert out.shape == (2, 3)
    assert [m.shape for m in cache.masks] == [(2, 7)] * 4


def test_constructor_copies_the_callers_arrays():
    W = [np.ones((3, 2)), np.ones((3, 3))]
    V = np.ones((1, 3))
    net = tn.ReLUNet(W=W, V=V)
    assert all(a is not b for a, b in zip(net.W, W)) and net.V is not V
    W[0][0, 0] = 99.0
    W[1][...] = -1.0
    V[...] = 7.0
    assert np.all(tn.to_numpy(net.W[0]) == 1.0)
    assert np.all(tn.to_numpy(net.W[1]) == 1.0)
    assert np.all(tn.to_numpy(net.V) == 1.0)


def test_constructor_copies_even_when_dtype_matches():
    W1 = np.ones((2, 2), dtype=np.float32)
    net = tn.ReLUNet(W=[W1], V=np.ones((1, 2), dtype=np.float32))
    assert net.dtype == np.float32
    net.W[0][0, 0] = 5.0
    assert W1[0, 0] == 1.0


def test_integer_weights_become_float64():
    """_host_matrix accepts integer arrays; the net must then be float64, not a TypeError."""
    net = tn.ReLUNet(W=[np.array([[1, 2], [3, -4]])], V=np.array([[1, 1]]))
    assert net.dtype == np.float64
    np.testing.assert_array_equal(tn.to_numpy(net(np.array([[1.0, 1.0]]))), [[3.0]])


def test_copy_is_independent():
    net = tn.ReLUNet.init(d=3, m=4, k=1, L=2, seed=0)
    other = net.copy()
    other.W[0][...] = 0.0
    other.V[...] = 0.0
    assert np.any(tn.to_numpy(net.W[0]) != 0.0) and np.any(tn.to_numpy(net.V) != 0.0)


def test_cache_reuse_gives_the_same_result():
    net = tn.ReLUNet.init(d=3, m=6, k=2, L=3, seed=1)
    X1, _ = tn.data.sphere(n=5, d=3, seed=1)
    X2, _ = tn.data.sphere(n=5, d=3, seed=2)
    _, cache = net.forward(X1, cache=True)
    reused, cache2 = net.forward(X2, cache=cache)
    assert cache2 is cache
    assert np.array_equal(tn.to_numpy(reused), tn.to_numpy(net(X2)))


@pytest.mark.parametrize("W, V, error", [
    ([], np.ones((1, 2)), TypeError),                                   # no layers
    ([np.ones((2, 3)), np.ones((3, 3))], np.ones((1, 2)), ValueError),  # W_2 not (m, m)
    ([np.ones((2, 3))], np.ones((1, 3)), ValueError),                   # V not (k, m)
    ([np.full((2, 3), np.nan)], np.ones((1, 2)), ValueError),          # NaN
    ([np.ones(3)], np.ones((1, 3)), ValueError),                        # not a matrix
    ([np.ones((2, 3), dtype=complex)], np.ones((1, 2)), TypeError),     # not real
])
def test_constructor_rejects_bad_weights(W, V, error):
    with pytest.raises(error):
        tn.ReLUNet(W=W, V=V)


def test_forward_rejects_bad_input():
    net = tn.ReLUNet.init(d=3, m=4, seed=0)
    with pytest.raises(ValueError):
        net(np.ones((2, 4)))                   # wrong d
    with pytest.raises(ValueError):
        net(np.ones(3))                        # 1-D
    with pytest.raises(ValueError):
        net(np.array([[1.0, np.inf, 0.0]]))    # inf


def test_float32_forward_stays_float32(backend):
    net = tn.ReLUNet.init(d=4, m=8, k=2, L=3, seed=0, dtype="float32")
    assert all(w.dtype == np.float32 for w in net.W + [net.V])
    X64 = np.random.default_rng(0).standard_normal((5, 4))      # float64 input is cast
    out, cache = net.forward(X64, cache=True)
    assert out.dtype == np.float32
    assert all(h.dtype == np.float32 for h in cache.h[1:])
    assert all(m.dtype == np.bool_ for m in cache.masks)


def test_dtype_validation():
    with pytest.raises(TypeError):
        tn.ReLUNet.init(d=2, m=2, dtype="float16")
    with pytest.raises(TypeError):
        tn.ReLUNet.init(d=2, m=2, dtype="int64")
