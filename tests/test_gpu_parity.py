"""NumPy versus CuPy in float64 from the same seed (the comparisons of bench/parity.py).

Skipped, with the reason, where CuPy or a GPU is missing.  On a GPU machine:

    PYTHONPATH=. python -m pytest -q tests/test_gpu_parity.py      # or: -m gpu
"""
import importlib.util
import os

import pytest

import tinyntk as tn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cupy_reason():
    try:
        with tn.use_backend("cupy"):
            return None
    except tn.BackendUnavailable as exc:
        return f"NumPy/CuPy parity needs CuPy and a GPU: {exc}"


REASON = _cupy_reason()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(REASON is not None, reason=REASON or "")]


def _parity_module():
    spec = importlib.util.spec_from_file_location("tinyntk_bench_parity",
                                                  os.path.join(ROOT, "bench", "parity.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rows():
    parity = _parity_module()
    reference = parity.quantities("numpy", steps=100)
    other = parity.quantities("cupy", steps=100)
    assert tn.get_backend().name == "numpy"
    return parity.compare(reference, other, rtol=1e-10)


def test_every_quantity_agrees_to_1e_10(rows):
    failed = [f"{name}: {'error ' + note if r is None else f'{r:.2e}'}"
              for name, r, ok, note in rows if not ok]
    assert not failed, "NumPy and CuPy differ:\n" + "\n".join(failed)


def test_float32_step_stays_float32_on_gpu():
    with tn.use_backend("cupy"):
        X, Y = tn.data.sphere(n=16, d=8, seed=0, dtype="float32")
        net = tn.ReLUNet.init(d=8, m=64, L=2, seed=0, dtype="float32")
        tn.train(net, X, Y, steps=3, lr=0.05, batch_size=4)
        assert all(w.dtype == "float32" for w in net.W)
        assert type(net.W[0]).__module__.startswith("cupy")


def test_checkpoint_resume_on_gpu(tmp_path):
    with tn.use_backend("cupy"):
        X, Y = tn.data.sphere(n=16, d=8, seed=0)
        ref = tn.ReLUNet.init(d=8, m=64, L=2, seed=0)
        h_ref = tn.train(ref, X, Y, steps=10, lr=0.05, batch_size=4)
        path = tmp_path / "c.npz"

        def stop(step, loss):
            if step == 6:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            tn.train(tn.ReLUNet.init(d=8, m=64, L=2, seed=0), X, Y, steps=10, lr=0.05,
                     batch_size=4, checkpoint=path, checkpoint_every=2, callback=stop)
        net = tn.ReLUNet.init(d=8, m=64, L=2, seed=0)
        h = tn.train(net, X, Y, steps=10, lr=0.05, batch_size=4, checkpoint=path, resume=path,
                     checkpoint_every=2)
        # CuPy kernels are deterministic for these ops on one device; allow rounding anyway
        import numpy as np
        assert np.allclose(h["loss"], h_ref["loss"], rtol=1e-12, atol=0)
        for a, b in zip(net.W, ref.W):
            assert np.allclose(tn.to_numpy(a), tn.to_numpy(b), rtol=1e-12, atol=1e-15)
