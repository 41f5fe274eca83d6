"""Same seed, same backend: bit-identical weights, batches and histories, in and across processes."""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np

import tinyntk as tn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A short run whose every output byte goes into one hash; run here and in a subprocess.
SCRIPT = r"""
import hashlib, json, numpy as np, tinyntk as tn
def run(batch_size, dtype):
    X, Y = tn.data.sphere(n=20, d=5, k=2, seed=4, dtype=dtype)
    net = tn.ReLUNet.init(d=5, m=40, k=2, L=3, seed=7, dtype=dtype)
    opt = tn.optim.make(0.05, batch_size=batch_size, seed=9)
    hist = tn.train(net, X, Y, steps=15, record_every=2, optimizer=opt)
    h = hashlib.sha256()
    for a in list(net.W) + [net.V, X, Y]:
        h.update(tn.to_numpy(a).tobytes())
    h.update(json.dumps(hist).encode())
    if batch_size:
        h.update(json.dumps(opt.rng.bit_generator.state).encode())
    return h.hexdigest()
print(json.dumps({"gd64": run(None, "float64"), "sgd64": run(6, "float64"),
                  "sgd32": run(6, "float32")}))
"""


def digests():
    scope = {}
    exec(compile(SCRIPT.replace("print(", "RESULT = ("), "<determinism>", "exec"), scope)
    return json.loads(scope["RESULT"])


def test_same_seed_same_bits_in_process():
    assert digests() == digests()


def test_same_seed_same_bits_across_processes():
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TINYNTK_BACKEND="numpy", PYTHONHASHSEED="123")
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == digests()


def test_sgd_batches_are_reproducible_and_seed_dependent():
    X, Y = tn.data.sphere(n=30, d=4, seed=0)

    def batches(seed):
        opt = tn.optim.SGD(0.1, batch_size=5, seed=seed)
        return [tuple(np.flatnonzero(np.isin(X, opt.batch(X, Y)[0]).all(axis=1))) for _ in range(8)]

    assert batches(1) == batches(1)
    assert batches(1) != batches(2)


def test_float32_stays_float32():
    X, Y = tn.data.sphere(n=12, d=4, seed=0, dtype="float32")
    net = tn.ReLUNet.init(d=4, m=16, L=2, seed=0, dtype="float32")
    tn.train(net, X, Y, steps=3, lr=0.05, batch_size=4)
    assert all(w.dtype == np.float32 for w in net.W) and net.V.dtype == np.float32
    assert net(X).dtype == np.float32
    net2 = tn.ReLUNet.init(d=4, m=16, L=2, seed=0, dtype="float32")
    tn.train(net2, X.astype(np.float64), Y, steps=3, lr=0.05, batch_size=4)
    assert all(np.array_equal(a, b) for a, b in zip(net.W, net2.W))


def test_init_is_seeded():
    a = tn.ReLUNet.init(d=5, m=30, L=2, seed=5)
    b = tn.ReLUNet.init(d=5, m=30, L=2, seed=5)
    c = tn.ReLUNet.init(d=5, m=30, L=2, seed=6)
    assert all(np.array_equal(x, y) for x, y in zip(a.W, b.W))
    assert not np.array_equal(a.W[0], c.W[0])
    h = hashlib.sha256(a.W[0].tobytes()).hexdigest()
    assert h == hashlib.sha256(tn.ReLUNet.init(d=5, m=30, L=2, seed=5).W[0].tobytes()).hexdigest()
