"""Fuzz the public functions with drawn shapes, dtypes and special values.

Every failure must be a ValueError or TypeError (or the documented ``Diverged`` /
``BackendUnavailable``) with a non-empty message, never an IndexError, AttributeError,
ZeroDivisionError, ... from deep inside; and no call may return NaN silently.
"""
import os
import tempfile
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinyntk as tn

ALLOWED = (ValueError, TypeError, tn.Diverged, tn.BackendUnavailable)
# ~12 s on 2 cores; TINYNTK_FUZZ_EXAMPLES=2000 for a long random hunt.
_LONG = int(os.environ.get("TINYNTK_FUZZ_EXAMPLES", "0"))
FUZZ = settings(deadline=None, max_examples=_LONG or 200, derandomize=not _LONG,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
DTYPES = ["float64", "float32", "int64", "int8", "bool", "complex128", "object", "str"]
SPECIALS = [None, None, None, np.nan, np.inf, -np.inf, 1e308, 1e200, -1e30, 0.0]


def attempt(fn, *args, **kwargs):
    """``fn(...)``, or None when it raised an allowed error with a message."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with np.errstate(all="ignore"):
                return fn(*args, **kwargs)
    except ALLOWED as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"
        return None


def assert_finite(x):
    if x is None:
        return
    if isinstance(x, dict):
        for v in x.values():
            assert_finite(v)
    elif isinstance(x, (list, tuple)):
        for v in x:
            assert_finite(v)
    elif isinstance(x, (float, int, np.floating, np.integer)):
        assert np.isfinite(x), f"silent non-finite value {x}"
    elif hasattr(x, "dtype"):
        assert np.all(np.isfinite(tn.to_numpy(x))), "silent NaN/inf in a returned array"


@st.composite
def arrays(draw, shape=None, dtypes=DTYPES):
    """An array (or nested list) of a drawn shape, dtype and special value."""
    if shape is None:
        rank = draw(st.integers(0, 3))
        shape = tuple(draw(st.integers(0, 4)) for _ in range(rank))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    a = rng.standard_normal(shape)
    special = draw(st.sampled_from(SPECIALS))
    if special is not None and a.size:
        a.flat[draw(st.integers(0, a.size - 1))] = special
    dtype = draw(st.sampled_from(dtypes))
    with np.errstate(all="ignore"):
        if dtype in ("int64", "int8"):
            a = np.clip(np.nan_to_num(a * 3), -100, 100).astype(dtype)
        elif dtype == "bool":
            a = a > 0
        elif dtype == "str":
            a = a.astype(str)
        else:
            a = a.astype(dtype)
    if draw(st.integers(0, 4)) == 0:
        return a.tolist() if a.ndim else a.item()
    return a


def batch(d, k=None):
    """A batch that is often valid for a net with input size ``d`` (and ``k`` outputs)."""
    n = st.integers(1, 5)
    good = n.flatmap(lambda n_: arrays(shape=(n_, d), dtypes=["float64", "float32", "int64"]))
    return st.one_of(good, good, arrays())


def pair(d, k):
    """(X, Y) that are often mutually consistent."""
    def build(n):
        good_x = arrays(shape=(n, d), dtypes=["float64", "float32", "int64"])
        good_y = arrays(shape=(n, k), dtypes=["float64", "float32", "int64"])
        labels = st.just(np.where(np.arange(n) % 2, 1.0, -1.0).reshape(n, 1))
        return st.tuples(st.one_of(good_x, good_x, arrays()),
                         st.one_of(good_y, good_y, labels, arrays()))
    return st.integers(1, 6).flatmap(build)


SIZES = st.one_of(st.integers(-2, 5), st.sampled_from([2.0, True, None, "3", np.int64(3)]))
NET = dict(d=3, m=8, k=1, L=2)


def small_net(dtype="float64"):
    return tn.ReLUNet.init(**NET, seed=0, dtype=dtype)


@FUZZ
@given(d=SIZES, m=SIZES, k=SIZES, L=SIZES,
       dtype=st.sampled_from(["float64", "float32", "float16", "int32", None, 3, "complex64"]),
       seed=st.one_of(st.integers(-3, 5), st.sampled_from([None, "x", 1.5])),
       init=st.sampled_from(["paper", "he", "xavier", None, 3]))
def test_fuzz_init(d, m, k, L, dtype, seed, init):
    net = attempt(tn.ReLUNet.init, d=d, m=m, k=k, L=L, seed=seed, dtype=dtype, init=init)
    if net is not None:
        assert (net.d, net.m, net.k, net.L) == (d, m, k, L)
        assert_finite(net.W)
        assert_finite(net.V)


@FUZZ
@given(W=st.lists(arrays(), min_size=0, max_size=3), V=arrays(),
       wrap=st.sampled_from([list, tuple, "none", "array"]))
def test_fuzz_constructor(W, V, wrap):
    if wrap == "none":
        W = W[0] if W else None
    elif wrap == "array":
        holder = np.empty(len(W), dtype=object)        # an object array of matrices
        holder[:] = W if W else holder
        W = holder
    else:
        W = wrap(W)
    net = attempt(tn.ReLUNet, W=W, V=V)
    if net is not None:
        assert_finite(net.W)
        assert_finite(net.V)


@FUZZ
@given(X=batch(NET["d"]), dtype=st.sampled_from(["float64", "float32"]))
def test_fuzz_forward(X, dtype):
    net = small_net(dtype)
    assert_finite(attempt(net, X))
    result = attempt(net.forward, X, cache=True)
    if result is not None:
        out, cache = result
        assert out.dtype == np.dtype(dtype)
        assert_finite(out)


@FUZZ
@given(XY=pair(NET["d"], NET["k"]),
       loss=st.sampled_from(["square", "logistic", "hinge", None, 3]))
def test_fuzz_loss_and_grad(XY, loss):
    X, Y = XY
    result = attempt(tn.loss_and_grad, small_net(), X, Y, loss=loss)
    if result is not None:
        value, grads = result
        assert_finite(value)
        assert_finite(list(grads))


@FUZZ
@given(XY=pair(NET["d"], NET["k"]),
       steps=st.sampled_from([1, 2, 3, 0, -1, 2.0]),
       lr=st.sampled_from([0.1, 0.01, 1e6, 0.0, -1.0, float("nan"), float("inf"), "x", None]),
       loss=st.sampled_from(["square", "logistic", "nope"]),
       batch_size=st.sampled_from([None, None, 1, 2, 0, 100, 2.5]),
       record_every=st.sampled_from([1, 2, 0, -1]),
       train_output=st.booleans())
def test_fuzz_train(XY, steps, lr, loss, batch_size, record_every, train_output):
    X, Y = XY
    net = small_net()
    hist = attempt(tn.train, net, X, Y, steps=steps, lr=lr, loss=loss, batch_size=batch_size,
                   record_every=record_every, train_output=train_output)
    if hist is not None:
        assert hist["step"][0] == 0 and hist["step"][-1] == steps
        assert_finite(hist)
    assert_finite(net.W)                 # diverged or not, the weights stay finite


@FUZZ
@given(n=SIZES, d=SIZES, k=SIZES,
       mu=st.sampled_from([0.5, 0.0, 1.0, -0.3, float("nan"), "a", 0.99]),
       target=st.sampled_from(["gaussian", "teacher", "sign", "cats", None]),
       dtype=st.sampled_from(["float64", "float32", "int8", None]),
       seed=st.sampled_from([0, 1, -1, None, "s"]))
def test_fuzz_sphere(n, d, k, mu, target, dtype, seed):
    result = attempt(tn.data.sphere, n=n, d=d, k=k, mu=mu, seed=seed, target=target, dtype=dtype)
    if result is not None:
        X, Y = result
        assert X.shape == (n, d) and Y.shape == (n, k)
        assert np.allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
        assert_finite(Y)


@FUZZ
@given(X=arrays(), chunk=st.sampled_from([None, None, 1, 3, 0, -1, 2.5]))
def test_fuzz_separation(X, chunk):
    phi = attempt(tn.data.separation, X, chunk=chunk)
    if phi is not None:
        assert phi >= 0.0
        assert_finite(phi)


@FUZZ
@given(name=st.sampled_from(["numpy", "NumPy", "cupy", "jax", "", None, 3, "numpy "]))
def test_fuzz_backend(name):
    before = tn.get_backend()
    try:
        result = attempt(tn.set_backend, name)
        if result is None:
            assert tn.get_backend() is before          # a failed switch changes nothing
    finally:
        tn.set_backend("numpy")


@FUZZ
@given(XY=pair(NET["d"], NET["k"]), eps=st.sampled_from([1e-5, 0.0, -1.0, float("nan"), "e"]),
       max_entries=st.sampled_from([None, 3, 0, -2, 1.5]),
       loss=st.sampled_from(["square", "logistic", "bad"]))
def test_fuzz_gradcheck(XY, eps, max_entries, loss):
    X, Y = XY
    result = attempt(tn.gradcheck.check_gradients, small_net(), X, Y, loss=loss, eps=eps,
                     max_entries=max_entries)
    if result is not None:
        assert result.checked > 0
        assert_finite(result.max_error)


@FUZZ
@given(content=st.one_of(st.binary(max_size=300), st.just(b"PK\x03\x04"), st.just(None)),
       path_kind=st.sampled_from(["file", "missing", None, 3, b"bytes"]))
def test_fuzz_save_load(content, path_kind):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "net.npz")
        if content is None:
            small_net().save(path)
        else:
            with open(path, "wb") as f:
                f.write(content)
        target = {"file": path, "missing": os.path.join(folder, "no.npz")}.get(path_kind, path_kind)
        net = attempt(tn.ReLUNet.load, target)
        if net is not None:
            assert content is None and path_kind == "file"
        if path_kind not in ("file", "missing"):
            assert attempt(small_net().save, target) is None
