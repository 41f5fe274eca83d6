"""Initializers: Algorithm 1's variances, "he", user functions, seeds, host draws."""
from __future__ import annotations

import numpy as np
import pytest

import tinyntk as tn
from tinyntk import init as initializers

D, M, K, L = 48, 256, 4, 3       # d != m so that 2/m and 2/d are told apart


def check_gaussian(a, var, name):
    """Entries of ``a`` look like i.i.d. N(0, var), with 6-sigma bands from the sample size.

    For N i.i.d. N(0, var) entries the sample mean has sd sqrt(var/N) and the sample
    variance has relative sd sqrt(2/N) (and the 4th moment fixes kurtosis at 3, relative
    sd sqrt(96/N) for the normalized 4th moment).  6 sd: a seeded draw fails with
    probability ~2e-9, while a wrong variance (2/d for 2/m here is a factor 5.3, 1 for 1/k
    a factor 4) is off by hundreds of sd.  (N = 1024 for V, the smallest: band ±0.27.)
    """
    a = tn.to_numpy(a).ravel()
    N = a.size
    assert abs(a.mean()) < 6 * np.sqrt(var / N), f"{name}: mean {a.mean():.3g}"
    ratio = a.var() / var
    assert abs(ratio - 1) < 6 * np.sqrt(2.0 / N), f"{name}: variance {a.var():.4g} vs {var:.4g}"
    kurt = np.mean(a ** 4) / a.var() ** 2
    assert abs(kurt - 3) < 6 * np.sqrt(96.0 / N), f"{name}: kurtosis {kurt:.3g} (not Gaussian?)"


def test_algorithm1_variances():
    """Algorithm 1, line 2: rows of every W_l ~ N(0, 2/m I) (W_1 too, not 2/d); rows of V ~ N(0, I/k)."""
    net = tn.ReLUNet.init(d=D, m=M, k=K, L=L, seed=0)
    for l, W in enumerate(net.W, start=1):
        check_gaussian(W, 2.0 / M, f"W_{l}")
    check_gaussian(net.V, 1.0 / K, "V")


def test_algorithm1_is_the_default_and_has_aliases():
    a = tn.ReLUNet.init(d=3, m=5, k=2, L=2, seed=4)
    for name in ("paper", "algorithm1", "PAPER"):
        b = tn.ReLUNet.init(d=3, m=5, k=2, L=2, seed=4, init=name)
        assert all(np.array_equal(tn.to_numpy(x), tn.to_numpy(y)) for x, y in zip(a.W + [a.V], b.W + [b.V]))


def test_he_variances():
    """He et al.: N(0, 2/fan_in) for the ReLU layers (2/d for W_1), N(0, 1/m) for V."""
    net = tn.ReLUNet.init(d=D, m=M, k=K, L=L, seed=1, init="he")
    check_gaussian(net.W[0], 2.0 / D, "W_1")
    for l, W in enumerate(net.W[1:], start=2):
        check_gaussian(W, 2.0 / M, f"W_{l}")
    check_gaussian(net.V, 1.0 / M, "V")


def test_user_supplied_initializer():
    seen = {}

    def mine(rng, d, m, k, L):
        seen.update(rng=rng, d=d, m=m, k=k, L=L)
        W = [np.full((m, d), 0.5)] + [np.full((m, m), -0.25) for _ in range(L - 1)]
        return W, np.full((k, m), 2.0)

    net = tn.ReLUNet.init(d=3, m=4, k=2, L=3, seed=0, init=mine)
    assert isinstance(seen.pop("rng"), np.random.Generator)
    assert seen == dict(d=3, m=4, k=2, L=3)
    assert np.all(tn.to_numpy(net.W[0]) == 0.5) and np.all(tn.to_numpy(net.W[2]) == -0.25)
    assert np.all(tn.to_numpy(net.V) == 2.0)


def test_unknown_initializer_lists_known_names():
    with pytest.raises(ValueError) as info:
        tn.ReLUNet.init(d=2, m=2, init="xavier")
    for name in ("paper", "he"):
        assert name in str(info.value)


def test_same_seed_same_weights_different_seed_different_weights():
    a = tn.ReLUNet.init(d=4, m=6, k=2, L=3, seed=7)
    b = tn.ReLUNet.init(d=4, m=6, k=2, L=3, seed=7)
    c = tn.ReLUNet.init(d=4, m=6, k=2, L=3, seed=8)
    for x, y, z in zip(a.W + [a.V], b.W + [b.V], c.W + [c.V]):
        assert np.array_equal(tn.to_numpy(x), tn.to_numpy(y))       # bit-identical
        assert not np.array_equal(tn.to_numpy(x), tn.to_numpy(z))


def test_weights_are_a_host_default_rng_draw_in_order(backend):
    """W_1, ..., W_L, V are consecutive draws of numpy.random.default_rng(seed), scaled, so a
    seed gives the same start on NumPy and CuPy (CuPy's own generators would differ)."""
    d, m, k, L_, seed = 3, 5, 2, 3, 123
    rng = np.random.default_rng(seed)
    W = [rng.standard_normal((m, d)) * np.sqrt(2.0 / m)]
    W += [rng.standard_normal((m, m)) * np.sqrt(2.0 / m) for _ in range(L_ - 1)]
    V = rng.standard_normal((k, m)) * np.sqrt(1.0 / k)
    net = tn.ReLUNet.init(d=d, m=m, k=k, L=L_, seed=seed)
    assert isinstance(net.V, backend.xp.ndarray)
    for got, want in zip(net.W + [net.V], W + [V]):
        np.testing.assert_array_equal(tn.to_numpy(got), want)


def test_float32_init_is_the_float64_draw_rounded():
    a = tn.ReLUNet.init(d=3, m=5, k=2, L=2, seed=3, dtype="float64")
    b = tn.ReLUNet.init(d=3, m=5, k=2, L=2, seed=3, dtype="float32")
    for x, y in zip(a.W + [a.V], b.W + [b.V]):
        assert y.dtype == np.float32
        np.testing.assert_array_equal(tn.to_numpy(x).astype(np.float32), tn.to_numpy(y))


def test_generator_as_seed():
    a = tn.ReLUNet.init(d=2, m=3, seed=np.random.default_rng(5))
    b = tn.ReLUNet.init(d=2, m=3, seed=5)
    assert np.array_equal(tn.to_numpy(a.W[0]), tn.to_numpy(b.W[0]))


@pytest.mark.parametrize("kwargs", [dict(d=0), dict(m=-1), dict(k=1.5), dict(L=True)])
def test_bad_sizes_rejected(kwargs):
    args = dict(d=2, m=2, k=1, L=1)
    args.update(kwargs)
    with pytest.raises(ValueError):
        tn.ReLUNet.init(**args)


def test_initializer_registry():
    assert initializers.get("he") is initializers.he
    assert initializers.get(initializers.paper) is initializers.paper
