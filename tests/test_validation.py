"""Bad input gets a clear error: ValueError/TypeError naming the argument, nothing changed."""
import warnings

import numpy as np
import pytest

import tinyntk as tn
from tinyntk import checks


@pytest.fixture
def small():
    X, Y = tn.data.sphere(n=8, d=4, k=1, seed=0)
    net = tn.ReLUNet.init(d=4, m=16, k=1, L=2, seed=0)
    return net, X, Y


def weights(net):
    return [w.copy() for w in net.W] + [net.V.copy()]


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b))


# ----- ReLUNet.init / ReLUNet(...) ----------------------------------------------------
@pytest.mark.parametrize("kw, exc, name", [
    (dict(d=0), ValueError, "d"), (dict(m=-3), ValueError, "m"), (dict(k=0), ValueError, "k"),
    (dict(L=0), ValueError, "L"), (dict(d=2.0), (TypeError, ValueError), "d"),
    (dict(m=True), (TypeError, ValueError), "m"), (dict(dtype="int32"), TypeError, "dtype"),
    (dict(dtype="complex128"), TypeError, "dtype"), (dict(seed=-1), ValueError, "seed"),
    (dict(seed="abc"), TypeError, "seed"), (dict(init="xavier"), ValueError, "paper"),
])
def test_init_rejects(kw, exc, name):
    args = dict(d=4, m=8, k=1, L=1) | kw
    with pytest.raises(exc, match=name):
        tn.ReLUNet.init(**args)


@pytest.mark.parametrize("W, V, exc, name", [
    ([], np.ones((1, 4)), TypeError, "W"),
    (None, np.ones((1, 4)), TypeError, "W"),
    ([np.ones((4, 3), dtype=bool)], np.ones((1, 4)), TypeError, r"W\[0\].*bool"),
    ([np.ones((4, 3), dtype=complex)], np.ones((1, 4)), TypeError, r"W\[0\].*complex"),
    ([np.ones((4, 3), dtype=object)], np.ones((1, 4)), TypeError, r"W\[0\].*object"),
    ([np.array([["a", "b"]])], np.ones((1, 4)), TypeError, r"W\[0\]"),
    ([[[1.0, 2.0], [3.0]]], np.ones((1, 2)), TypeError, r"W\[0\].*rectangular"),
    ([np.ones(3)], np.ones((1, 3)), ValueError, r"W\[0\].*2-D"),
    ([np.ones((4, 3))], np.ones((1, 5)), ValueError, "V"),
    ([np.ones((4, 3)), np.ones((4, 5))], np.ones((1, 4)), ValueError, r"W\[1\]"),
    ([np.full((4, 3), np.nan)], np.ones((1, 4)), ValueError, r"W\[0\].*NaN"),
    ([np.ones((4, 3))], np.full((1, 4), np.inf), ValueError, r"V.*inf"),
    ([np.ones((0, 3))], np.ones((1, 0)), ValueError, "empty"),
])
def test_constructor_rejects(W, V, exc, name):
    with pytest.raises(exc, match=name):
        tn.ReLUNet(W=W, V=V)


def test_integer_weights_are_converted():
    net = tn.ReLUNet(W=[np.ones((4, 3), dtype=np.int64)], V=[[1, 2, 3, 4]])
    assert net.dtype == np.float64
    net32 = tn.ReLUNet(W=[np.ones((4, 3), dtype=np.float32)], V=np.ones((1, 4), np.int8))
    assert net32.dtype == np.float32


# ----- the forward pass ------------------------------------------------------------------
@pytest.mark.parametrize("X, exc, pattern", [
    (np.ones((3, 5)), ValueError, r"X.*d = 4"),
    (np.ones(4), ValueError, r"X.*2-D"),
    (np.float64(1.0), ValueError, r"X.*2-D"),
    (np.ones((0, 4)), ValueError, r"X.*empty"),
    (np.ones((3, 4), dtype=bool), TypeError, r"X.*bool"),
    (np.ones((3, 4), dtype=complex), TypeError, r"X.*complex"),
    (np.ones((3, 4), dtype=object), TypeError, r"X.*object"),
    (np.full((3, 4), "x"), TypeError, r"X.*string"),
    ([[1.0, 2.0, 3.0, 4.0], [1.0]], TypeError, r"X.*rectangular"),
    (None, TypeError, "X"),
    ("abc", TypeError, "X"),
    (np.full((3, 4), np.nan), ValueError, r"X.*NaN"),
    (np.full((3, 4), -np.inf), ValueError, r"X.*inf"),
])
def test_forward_rejects(small, X, exc, pattern):
    net, _, _ = small
    before = weights(net)
    with pytest.raises(exc, match=pattern):
        net(X)
    with pytest.raises(exc, match=pattern):
        net.forward(X, cache=True)
    assert same(before, weights(net))


def test_forward_accepts_ints_and_lists(small):
    net, _, _ = small
    out = net([[1, 0, 0, 0], [0, 1, 0, 0]])
    assert out.shape == (2, 1) and out.dtype == np.float64
    assert net(np.eye(4, dtype=np.int32)).dtype == np.float64


# The overflowing matmul itself warns (a NumPy RuntimeWarning) before the library raises;
# the warning is the expected side effect, the ValueError is what is tested.
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")
def test_forward_overflow_is_an_error_not_nan(small):
    net, _, _ = small
    with pytest.raises(ValueError, match="overflow"):
        net(np.full((2, 4), np.finfo(np.float64).max))
    with pytest.raises(ValueError, match="overflow"):          # finite f, infinite loss
        tn.loss_and_grad(net, np.full((2, 4), 1e300), np.zeros((2, 1)))
    bad = tn.ReLUNet.init(d=4, m=16, L=1)
    bad.W[0][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"W\[0\]"):
        bad(np.ones((2, 4)))


# ----- losses --------------------------------------------------------------------------------
def test_loss_and_grad_rejects(small):
    net, X, Y = small
    with pytest.raises(ValueError, match=r"Y.*\(8, 1\)"):
        tn.loss_and_grad(net, X, np.ones((8, 2)))
    with pytest.raises(ValueError, match=r"Y.*\(8, 1\)"):
        tn.loss_and_grad(net, X, np.ones((7, 1)))
    with pytest.raises(ValueError, match=r"Y.*NaN"):
        tn.loss_and_grad(net, X, np.full((8, 1), np.nan))
    with pytest.raises(TypeError, match="Y.*complex"):
        tn.loss_and_grad(net, X, np.ones((8, 1), complex))
    with pytest.raises(ValueError, match=r"labels.*\{-1, \+1\}"):
        tn.loss_and_grad(net, X, np.zeros((8, 1)), loss="logistic")
    with pytest.raises(ValueError, match="unknown loss 'hinge'.*square, logistic"):
        tn.loss_and_grad(net, X, Y, loss="hinge")
    with pytest.raises(TypeError, match="loss"):
        tn.loss_and_grad(net, X, Y, loss=42)
    net2 = tn.ReLUNet.init(d=4, m=8, k=2)
    with pytest.raises(ValueError, match="logistic.*k = 1"):
        tn.loss_and_grad(net2, X, np.ones((8, 2)), loss="logistic")


def test_loss_class_and_minimal_loss_object(small):
    net, X, Y = small
    value, _ = tn.loss_and_grad(net, X, Y, loss=tn.losses.SquareLoss)
    assert value == tn.loss_and_grad(net, X, Y)[0]

    class Minimal:                        # no name, no check_targets
        def value(self, out, Y):
            return tn.losses.SquareLoss().value(out, Y)

        def grad(self, out, Y, scale=1.0, out_array=None):
            return tn.losses.SquareLoss().grad(out, Y, scale, out_array)

    hist = tn.train(net, X, Y, steps=2, lr=0.01, loss=Minimal())
    assert len(hist["loss"]) == 3


# ----- train -------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, exc, pattern", [
    (dict(steps=-1), ValueError, "steps"), (dict(steps=-5), ValueError, "steps"),
    (dict(steps=2.5), TypeError, "steps"), (dict(steps=True), TypeError, "steps"),
    (dict(record_every=0), ValueError, "record_every"),
    (dict(lr=float("nan")), ValueError, "lr"), (dict(lr=-0.1), ValueError, "lr"),
    (dict(lr=0.0), ValueError, "lr"), (dict(lr=float("inf")), ValueError, "lr"),
    (dict(lr="fast"), TypeError, "lr"), (dict(lr=None), TypeError, "lr"),
    (dict(lr=1j), TypeError, "lr"),
    (dict(batch_size=0), ValueError, "batch_size"), (dict(batch_size=9), ValueError, "batch_size.*n = 8"),
    (dict(batch_size=2.0), TypeError, "batch_size"),
    (dict(seed=-2), ValueError, "seed"), (dict(seed=1.5), TypeError, "seed"),
    (dict(loss="mse"), ValueError, "square, logistic"),
    (dict(callback=3), TypeError, "callback"), (dict(probes=[3]), TypeError, "probe"),
    (dict(checkpoint_every=5), ValueError, "checkpoint"),
    (dict(resume=True), ValueError, "resume"),
    (dict(checkpoint=3), TypeError, "checkpoint"),
    (dict(checkpoint="/no/such/folder/c.npz"), ValueError, "checkpoint.*folder"),
    (dict(resume="/no/such/file.npz"), ValueError, "resume"),
    (dict(optimizer="adam"), ValueError, "unknown optimizer 'adam'.*gd, sgd"),
    (dict(optimizer="sgd"), ValueError, "batch_size"),
    (dict(optimizer=object()), TypeError, "optimizer"),
])
def test_train_rejects_and_changes_nothing(small, kw, exc, pattern):
    net, X, Y = small
    before = weights(net)
    args = dict(steps=3, lr=0.01) | kw
    with pytest.raises(exc, match=pattern):
        tn.train(net, X, Y, **args)
    assert same(before, weights(net))
    assert tn.get_backend().name == "numpy"


def test_train_rejects_bad_data_and_weights(small):
    net, X, Y = small
    with pytest.raises(ValueError, match="X.*d = 4"):
        tn.train(net, np.ones((8, 3)), Y, steps=1)
    with pytest.raises(ValueError, match="Y"):
        tn.train(net, X, np.ones((8, 3)), steps=1)
    with pytest.raises(ValueError, match=r"\{-1, \+1\}"):
        tn.train(net, X, Y, steps=1, loss="logistic")
    with pytest.raises(TypeError, match="net"):
        tn.train("net", X, Y, steps=1)
    net.W[1][0, 0] = np.inf
    with pytest.raises(ValueError, match=r"net.W\[1\].*NaN or inf"):
        tn.train(net, X, Y, steps=1)


def test_train_accepts_numpy_integers(small):
    net, X, Y = small
    hist = tn.train(net, X, Y, steps=np.int64(2), lr=np.float32(0.01), batch_size=np.int32(4),
                    record_every=np.int16(1))
    assert hist["step"] == [0, 1, 2]


def test_assumption_warning_once_for_off_sphere_data(small):
    net, X, Y = small
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tn.train(net, 3.0 * X, Y, steps=5, lr=1e-3)
    found = [w for w in caught if issubclass(w.category, tn.AssumptionWarning)]
    assert len(found) == 1, [str(w.message) for w in caught]
    assert "Assumption 3.1" in str(found[0].message)
    assert found[0].filename == __file__, "the warning points at the caller of train"
    assert issubclass(tn.AssumptionWarning, UserWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error", tn.AssumptionWarning)
        tn.train(net, X, Y, steps=2, lr=1e-3)          # unit rows: no warning


# ----- backend, data, gradcheck -------------------------------------------------------------
def test_backend_names():
    with pytest.raises(ValueError, match="unknown backend 'jax'.*numpy, cupy"):
        tn.set_backend("jax")
    with pytest.raises(ValueError, match="backend"):
        tn.set_backend(3)
    assert tn.get_backend().name == "numpy"


@pytest.mark.parametrize("kw, exc, pattern", [
    (dict(n=0), ValueError, "n"), (dict(d=1), ValueError, "d"), (dict(k=-1), ValueError, "k"),
    (dict(mu=0.0), ValueError, "mu"), (dict(mu=1.5), ValueError, "mu"),
    (dict(mu="x"), TypeError, "mu"), (dict(mu=float("nan")), ValueError, "mu"),
    (dict(target="cats"), ValueError, "gaussian"), (dict(target=["sign"]), ValueError, "target"),
    (dict(target="sign", k=2), ValueError, "k"), (dict(dtype="int8"), TypeError, "dtype"),
    (dict(seed=-1), ValueError, "seed"), (dict(teacher_width=0, target="teacher"), ValueError, "teacher_width"),
])
def test_sphere_rejects(kw, exc, pattern):
    with pytest.raises(exc, match=pattern):
        tn.data.sphere(**kw)


@pytest.mark.parametrize("X, kw, exc, pattern", [
    (np.ones((1, 3)), {}, ValueError, "at least 2"), (np.ones(3), {}, ValueError, "2-D"),
    (np.array([[0.0, np.nan], [1.0, 0.0]]), {}, ValueError, "NaN"),
    (np.ones((3, 2), complex), {}, TypeError, "complex"),
    (np.eye(3), dict(chunk=0), ValueError, "chunk"),
])
def test_separation_rejects(X, kw, exc, pattern):
    with pytest.raises(exc, match=pattern):
        tn.data.separation(X, **kw)


def test_separation_in_chunks_and_budget(monkeypatch):
    X, _ = tn.data.sphere(n=50, d=6, seed=1)
    exact = min(np.linalg.norm(X[i] - X[j]) for i in range(50) for j in range(i))
    assert tn.data.separation(X) == pytest.approx(exact, rel=1e-12)
    monkeypatch.setenv("TINYNTK_MEMORY_BUDGET", "2K")      # 1 row per block
    assert tn.data.separation(X) == pytest.approx(exact, rel=1e-12)
    monkeypatch.setenv("TINYNTK_MEMORY_BUDGET", "100")
    with pytest.raises(tn.MemoryBudgetError, match=r"1\.2 KiB.*TINYNTK_MEMORY_BUDGET"):
        tn.data.separation(X)
    assert tn.data.separation(np.array([[1, 0], [1, 0], [0, 1]])) == 0.0


def test_memory_budget_parsing(monkeypatch):
    monkeypatch.delenv("TINYNTK_MEMORY_BUDGET", raising=False)
    assert checks.memory_budget_bytes() == 1 << 30
    for text, value in [("512M", 512 << 20), ("2g", 2 << 30), ("1000", 1000), ("1.5GiB", 3 << 29)]:
        monkeypatch.setenv("TINYNTK_MEMORY_BUDGET", text)
        assert checks.memory_budget_bytes() == value
    monkeypatch.setenv("TINYNTK_MEMORY_BUDGET", "lots")
    with pytest.raises(ValueError, match="TINYNTK_MEMORY_BUDGET"):
        checks.memory_budget_bytes()
    assert checks.chunk_rows(100, 8, budget=8000) == 10
    assert checks.chunk_rows(100, 8, budget=8000, n_rows=4) == 4
    with pytest.raises(tn.MemoryBudgetError, match="needs at least"):
        checks.chunk_rows(100, 8, budget=10)


def test_gradcheck_rejects(small):
    net, X, Y = small
    with pytest.raises(ValueError, match="eps"):
        tn.gradcheck.check_gradients(net, X, Y, eps=0.0)
    with pytest.raises(ValueError, match="max_entries"):
        tn.gradcheck.check_gradients(net, X, Y, max_entries=0)
    with pytest.raises(ValueError, match="rtol"):
        tn.gradcheck.check_gradients(net, X, Y, rtol=-1e-6)
    with pytest.raises(ValueError, match=r"\{-1, \+1\}"):
        tn.gradcheck.check_gradients(net, X, Y, loss="logistic")
    with pytest.raises(ValueError, match="X.*d = 4"):
        tn.gradcheck.check_gradients(net, np.ones((2, 2)), Y)


def test_optimizer_rejects():
    with pytest.raises(ValueError, match="lr"):
        tn.optim.GD(lr=-1)
    with pytest.raises(ValueError, match="batch_size"):
        tn.optim.SGD(lr=0.1, batch_size=0)
    with pytest.raises(TypeError, match="seed"):
        tn.optim.SGD(lr=0.1, batch_size=2, seed="x")


def test_small_public_helpers_reject(small):
    net, X, Y = small
    from tinyntk.network import per_neuron_gradient
    with pytest.raises(ValueError, match="j must be a neuron index"):
        per_neuron_gradient(net, X, Y, j=16)
    with pytest.raises(ValueError, match="mu"):
        tn.data.sphere_points(4, 3, mu=2.0)
    with pytest.raises(ValueError, match="n"):
        tn.data.sphere_points(0, 3)


def test_distance_probe_never_records_nan():
    net = tn.ReLUNet.init(d=4, m=8, L=1)
    W0 = [w.copy() for w in net.W]
    net.W[0][...] = 1e170
    state = tn.diagnostics.TrainState(net=net, X=None, Y=None, W0=W0, V0=net.V, loss=None)
    with np.errstate(all="ignore"):
        (norm,) = tn.diagnostics.Distance()(state)
    exact = np.linalg.norm((net.W[0] - W0[0]) / 1e170, 2) * 1e170
    assert norm == pytest.approx(exact, rel=1e-12)


def test_train_checks_once_not_per_step(small, monkeypatch):
    net, X, Y = small
    calls = {"input": 0, "real": 0}
    real_check_input, real_array = tn.ReLUNet.check_input, checks.real_array

    def count_input(self, X):
        calls["input"] += 1
        return real_check_input(self, X)

    def count_real(a, name):
        calls["real"] += 1
        return real_array(a, name)

    monkeypatch.setattr(tn.ReLUNet, "check_input", count_input)
    monkeypatch.setattr(checks, "real_array", count_real)
    tn.train(net, X, Y, steps=25, lr=0.01, batch_size=4, record_every=5)
    assert calls == {"input": 1, "real": 2}            # X once, Y once, whatever the steps


def test_zero_steps_records_the_initial_loss_only(small):
    net, X, Y = small
    before = weights(net)
    hist = tn.train(net, X, Y, steps=0, lr=0.1)
    assert hist["step"] == [0] and len(hist["loss"]) == 1
    assert same(before, weights(net))
