"""Checkpoints, resume after a real interruption, atomic writes, and divergence."""
import json
import os
import zipfile

import numpy as np
import pytest

import tinyntk as tn
from tinyntk import checkpoint as ck


def data(n=24, d=6, seed=0):
    return tn.data.sphere(n=n, d=d, k=1, seed=seed)


def fresh(L=2, m=48, dtype="float64"):
    return tn.ReLUNet.init(d=6, m=m, k=1, L=L, seed=3, dtype=dtype)


def same_weights(a, b):
    return all(np.array_equal(x, y) for x, y in zip(list(a.W) + [a.V], list(b.W) + [b.V]))


# ----- nets ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_net_save_load_roundtrip(tmp_path, dtype):
    net = fresh(dtype=dtype)
    path = tmp_path / "net.npz"
    net.save(path)
    back = tn.ReLUNet.load(str(path))
    assert back.dtype == np.dtype(dtype) and (back.d, back.m, back.k, back.L) == (6, 48, 1, 2)
    assert same_weights(net, back)
    assert not list(tmp_path.glob("*.tmp"))             # no temporary left behind
    with np.load(path, allow_pickle=False) as f:         # readable without pickle
        meta = json.loads(str(f[ck.META_KEY][()]))
    assert meta["format"] == "tinyntk" and meta["version"] == ck.FORMAT_VERSION


def test_bad_files_raise_checkpoint_error(tmp_path):
    net = fresh()
    good = tmp_path / "good.npz"
    net.save(good)
    raw = good.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(raw[: len(raw) // 2])
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.ones(3))
    npy = tmp_path / "one.npy"
    np.save(npy, np.ones(3))
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    pickled = tmp_path / "pickled.npz"                     # an object array needs pickle
    np.savez(pickled, W_0=np.array([None, 1], dtype=object), V=np.ones((1, 4)),
             tinyntk_meta=np.array(json.dumps({"format": "tinyntk", "kind": "net", "version": 1, "L": 1})))
    for path, pattern in [(truncated, "truncated"), (foreign, "not a tinyntk file"),
                          (npy, "not a tinyntk file"), (text, "truncated|not a tinyntk"),
                          (empty, "truncated|not a tinyntk"), (pickled, "pickle"), (tmp_path / "nope.npz", "no tinyntk file")]:
        with pytest.raises(tn.CheckpointError, match=pattern):
            tn.ReLUNet.load(path)
    assert issubclass(tn.CheckpointError, ValueError)


def test_future_version_is_refused(tmp_path):
    path = tmp_path / "future.npz"
    ck.write_atomic(path, {"W_0": np.ones((4, 6)), "V": np.ones((1, 4))},
                    {"kind": "net", "L": 1, "dtype": "float64"})
    assert tn.ReLUNet.load(path).m == 4
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    meta = {"format": "tinyntk", "kind": "net", "version": ck.FORMAT_VERSION + 1, "L": 1}
    np.savez(path, W_0=np.ones((4, 6)), V=np.ones((1, 4)), tinyntk_meta=np.array(json.dumps(meta)))
    with pytest.raises(tn.CheckpointError, match="newer tinyntk.*version 2"):
        tn.ReLUNet.load(path)
    assert "tinyntk_meta.npy" in names


def test_crash_while_writing_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "net.npz"
    old = fresh()
    old.save(path)

    def crash(f, **arrays):                             # half a file, then the "power cut"
        f.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(ck.numpy, "savez", crash)
    new = tn.ReLUNet.init(d=6, m=48, L=2, seed=99)
    with pytest.raises(OSError, match="disk full"):
        new.save(path)
    monkeypatch.undo()
    assert same_weights(tn.ReLUNet.load(path), old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.npz"]


def test_crash_during_training_checkpoint_keeps_previous(tmp_path, monkeypatch):
    X, Y = data()
    path = tmp_path / "run.npz"
    tn.train(fresh(), X, Y, steps=6, lr=0.05, checkpoint=path, checkpoint_every=2)
    before = path.read_bytes()
    real = ck.numpy.savez

    def crash(f, **arrays):
        real(f, **arrays)
        f.truncate(100)
        raise KeyboardInterrupt                          # killed after writing a partial file

    monkeypatch.setattr(ck.numpy, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        tn.train(fresh(), X, Y, steps=6, lr=0.05, checkpoint=path, checkpoint_every=2)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert ck.load_state(path)["meta"]["step"] == 7      # the finished run's checkpoint
    assert not list(tmp_path.glob("*.tmp"))


# ----- resume ----------------------------------------------------------------------------
class Interrupt:
    """A probe that raises KeyboardInterrupt when step ``at`` is recorded."""

    name = "interrupt"

    def __init__(self, at):
        self.at = at

    def __call__(self, state):
        if state.step == self.at:
            raise KeyboardInterrupt
        return state.step


@pytest.mark.parametrize("opts", [
    dict(batch_size=None, record_every=1, every=5, stop=13),
    dict(batch_size=6, record_every=3, every=4, stop=21),         # SGD, sparse records
    dict(batch_size=8, record_every=1, every=1, stop=1, train_output=True),
])
def test_resume_is_bit_identical(tmp_path, opts):
    X, Y = data()
    steps = 30
    kw = dict(steps=steps, lr=0.05, batch_size=opts["batch_size"], seed=11,
              record_every=opts["record_every"], train_output=opts.get("train_output", False))
    ref = fresh()
    ref_hist = tn.train(ref, X, Y, probes=[tn.diagnostics.Distance(), Interrupt(-1)], **kw)

    path = tmp_path / "run.npz"
    first = fresh()
    with pytest.raises(KeyboardInterrupt):
        tn.train(first, X, Y, probes=[tn.diagnostics.Distance(), Interrupt(opts["stop"])],
                 checkpoint=path, checkpoint_every=opts["every"], **kw)
    saved = ck.load_state(path)["meta"]["step"]
    assert 0 < saved <= opts["stop"] + 1

    resumed = tn.ReLUNet.init(d=6, m=48, L=2, seed=12345)      # any net of the right shape
    hist = tn.train(resumed, X, Y, probes=[tn.diagnostics.Distance(), Interrupt(-1)],
                    checkpoint=path, checkpoint_every=opts["every"], resume=path, **kw)
    assert same_weights(ref, resumed)
    assert hist == ref_hist                                      # every value, bit for bit
    assert ck.load_state(path)["meta"]["step"] == steps + 1

    again = fresh()                                              # resuming a finished run
    assert tn.train(again, X, Y, probes=[tn.diagnostics.Distance(), Interrupt(-1)],
                    checkpoint=path, resume=True, **kw) == ref_hist
    assert same_weights(ref, again)


def test_resume_continues_with_the_interrupted_runs_step(tmp_path):
    """On resume, "auto" takes the checkpoint's step size: the net passed in may hold
    other weights (here a trained one), whose NTK would give another step."""
    X, Y = data()
    net = fresh()
    kw = dict(steps=12, record_every=2)
    ref = net.copy()
    ref_hist = tn.train(ref, X, Y, probes=[tn.diagnostics.Distance(), Interrupt(-1)], **kw)
    path = tmp_path / "run.npz"
    first = net.copy()
    with pytest.raises(KeyboardInterrupt):
        tn.train(first, X, Y, probes=[tn.diagnostics.Distance(), Interrupt(6)],
                 checkpoint=path, checkpoint_every=3, **kw)
    assert tn.stability.auto_lr(first, X)[0] != ref_hist["lr"]   # its weights moved
    hist = tn.train(first, X, Y, probes=[tn.diagnostics.Distance(), Interrupt(-1)],
                    checkpoint=path, resume=path, **kw)
    assert hist == ref_hist
    with pytest.raises(tn.CheckpointError, match="lr"):            # a given lr is still checked
        tn.train(net.copy(), X, Y, probes=[tn.diagnostics.Distance(), Interrupt(-1)],
                 resume=path, lr=0.5 * ref_hist["lr"], **kw)


def test_resume_true_without_file_starts_fresh(tmp_path):
    X, Y = data()
    a, b = fresh(), fresh()
    h1 = tn.train(a, X, Y, steps=5, lr=0.05)
    h2 = tn.train(b, X, Y, steps=5, lr=0.05, checkpoint=tmp_path / "c.npz", resume=True)
    assert h1 == h2 and same_weights(a, b)


def test_resume_refuses_other_arguments_or_data(tmp_path):
    X, Y = data()
    path = tmp_path / "run.npz"
    tn.train(fresh(), X, Y, steps=5, lr=0.05, checkpoint=path)
    net = fresh()
    before = [w.copy() for w in net.W]
    with pytest.raises(tn.CheckpointError, match="lr"):
        tn.train(net, X, Y, steps=5, lr=0.01, resume=path)
    with pytest.raises(tn.CheckpointError, match="data"):
        tn.train(net, X[::-1].copy(), Y, steps=5, lr=0.05, resume=path)
    with pytest.raises(tn.CheckpointError, match="m = 48"):
        tn.train(tn.ReLUNet.init(d=6, m=32, L=2), X, Y, steps=5, lr=0.05, resume=path)
    with pytest.raises(tn.CheckpointError, match="probes"):
        tn.train(net, X, Y, steps=5, lr=0.05, resume=path, probes=[])
    net_file = tmp_path / "net.npz"
    net.save(net_file)
    with pytest.raises(tn.CheckpointError, match="'net' file"):
        tn.train(net, X, Y, steps=5, lr=0.05, resume=net_file)
    assert all(np.array_equal(w, b) for w, b in zip(net.W, before))
    assert tn.ReLUNet.load(path).m == 48                  # a run checkpoint also loads as a net


# ----- divergence ------------------------------------------------------------------------
def test_divergence_keeps_last_finite_weights_and_suggests_lr():
    X, Y = data()
    net = fresh()
    with pytest.raises(tn.Diverged) as info:
        tn.train(net, X, Y, steps=200, lr=10.0)        # diverges at step 6 (lr = 20 kills every ReLU)
    err = info.value
    msg = str(err)
    assert f"step {err.step}" in msg and "lr = 10" in msg and "last finite loss" in msg
    assert err.stability_bound is not None and err.suggested_lr < err.stability_bound < 10.0
    assert f"{err.suggested_lr:.3g}" in msg and np.isfinite(err.last_loss)
    assert all(np.all(np.isfinite(w)) for w in net.W)
    # the kept weights are exactly those of step err.step - 1
    ref = fresh()
    if err.step > 1:
        tn.train(ref, X, Y, steps=err.step - 1, lr=10.0)
    assert same_weights(ref, net)
    # and the suggested step size trains
    ok = fresh()
    hist = tn.train(ok, X, Y, steps=50, lr=err.suggested_lr)
    assert hist["loss"][-1] < hist["loss"][0]


def test_lambda_max_matches_explicit_ntk():
    from tinyntk import stability
    X, _ = data(n=10)
    net = fresh(L=2, m=20)
    rows = []
    for i in range(10):                                   # per-example Jacobian, by backward
        _, cache = net.forward(X[i:i + 1], cache=True)
        g = net.backward(cache, np.ones((1, 1)), need_V=False)
        rows.append(np.concatenate([w.ravel() for w in g.W]))
    J = np.array(rows)
    exact = np.linalg.eigvalsh(J @ J.T)[-1]
    assert stability.ntk_lambda_max(net, X, tol=1e-10, iters=500) == pytest.approx(exact, rel=1e-6)
    bound, lam = stability.stability_bound(net, X)
    assert bound == pytest.approx(2 * 10 / exact, rel=1e-3)
    assert stability.stability_bound(net, X, max_n=5) == (None, None)


def test_divergence_of_a_large_n_falls_back_to_lr_over_10(monkeypatch):
    from tinyntk import stability
    X, Y = data()
    monkeypatch.setattr(stability, "stability_bound", lambda *a, **k: (None, None))
    with pytest.raises(tn.Diverged, match=r"e\.g\. lr = 1\b") as info:
        tn.train(fresh(), X, Y, steps=100, lr=10.0)
    assert info.value.suggested_lr == 1.0


KILLED_RUN = r"""
import sys, time, tinyntk as tn
X, Y = tn.data.sphere(n=24, d=6, k=1, seed=0)
net = tn.ReLUNet.init(d=6, m=48, k=1, L=2, seed=3)
tn.train(net, X, Y, steps=60, lr=0.05, batch_size=6, seed=11, record_every=2,
         checkpoint=sys.argv[1], checkpoint_every=1, callback=lambda s, l: time.sleep(0.05))
"""


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGKILL"), reason="needs POSIX SIGKILL")
def test_resume_after_sigkill_is_bit_identical(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = tmp_path / "killed.npz"
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TINYNTK_BACKEND="numpy")
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(path)], env=env)
    try:
        deadline = time.time() + 60
        step = 0
        while time.time() < deadline and proc.poll() is None:
            if path.exists():
                try:
                    step = ck.load_state(path)["meta"]["step"]
                except tn.CheckpointError:
                    step = 0
                if step >= 15:
                    break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)                 # no cleanup, maybe mid-write
    finally:
        proc.wait(timeout=30)
    assert 15 <= step < 61, f"the run did not reach step 15 before the deadline (step {step})"

    X, Y = data()
    kw = dict(steps=60, lr=0.05, batch_size=6, seed=11, record_every=2)
    ref = fresh()
    ref_hist = tn.train(ref, X, Y, **kw)
    net = fresh()
    hist = tn.train(net, X, Y, checkpoint=path, checkpoint_every=1, resume=path, **kw)
    assert hist == ref_hist and same_weights(ref, net)
