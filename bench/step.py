"""Bench of one training step on the CPU: tinyntk against its GEMM floor, PyTorch and naive NumPy.

    PYTHONPATH=. python bench/step.py --quick        # < 1 minute
    PYTHONPATH=. python bench/step.py                # the issue's shapes, a few minutes

Sections (each prints a table; ratios are of medians of interleaved rounds):

1. *step*: ``tinyntk.optim.GD(lr).step(net, X, Y)`` (also ``SGD`` and ``train_output=True``)
   against the **GEMM floor** (exactly the matrix products of that step, with preallocated
   outputs and nothing else), a naive NumPy step (fresh temporaries, boolean masks from
   comparisons, ``W -= lr * grad``) and PyTorch CPU autograd (``torch`` optional).
   Targets: step / floor <= 1.05 and step / torch <= 0.85 for m >= 1024.
2. *memory*: peak RSS of one step of each variant, each in a fresh subprocess, above the
   interpreter (after imports), against the weights + activations lower bound.  Target:
   the transient part (peak minus what stays allocated) <= 10% of the weights.
3. *train*: ``tinyntk.train`` with the default Distance probe recorded every 10 steps
   against the same number of bare ``GD.step`` calls at m = 4096 (m = 1024 with
   --quick), and the probe's accuracy against the exact spectral norm.  Target: <= 1.05.
4. *linearized*: the linearized model (``tn.linearize(net)``) against the net itself: a
   forward pass (primal pass at W(0) reused for the same batch, as in full-batch training,
   and recomputed for a new batch), a backward pass and a GD step.  Expected by counting
   products: 2, 3, 1 and about 4/3 network passes; the issue asks for "about two".
"""
from __future__ import annotations

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (THREADS, base_parser, fmt_time, interleaved, limit_loaded_pools,  # noqa: E402
                     print_header, table, verdict)

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import tinyntk as tn  # noqa: E402
from tinyntk.optim import GD, SGD  # noqa: E402

LR = 1e-4          # small enough that a few hundred bench steps stay finite

try:
    import torch
    torch.set_num_threads(THREADS)
    torch.set_num_interop_threads(1)
except ImportError:
    torch = None


# --------------------------------------------------------------------------------------
# The variants.  Each builder returns a callable doing one step on its own copy of the net.
# --------------------------------------------------------------------------------------
def make_data(n, d, k, dtype, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Y = rng.standard_normal((n, k))
    return X.astype(dtype), Y.astype(dtype)


def tinyntk_step(net, X, Y, kind):
    """``kind``: "gd", "gd+V" (train_output) or "sgd" (minibatch of n // 4)."""
    net = net.copy()
    if kind == "sgd":
        opt = SGD(LR, batch_size=X.shape[0] // 4, seed=0)
    else:
        opt = GD(LR, train_output=(kind == "gd+V"))
    return lambda: opt.step(net, X, Y)


def gemm_floor(net, X, Y, kind, lib="numpy"):
    """Exactly the matrix products of the step (preallocated outputs), nothing else.

    Forward: ``h_l = h_{l-1} W_l^T`` (l = 1..L) and ``out = h_L V^T``; backward:
    ``grad_V = E^T h_L`` (train_output only), ``E V`` (k > 1 only; for k = 1 it is an outer
    product, elementwise work), ``grad_W_l = delta_l^T h_{l-1}`` and ``delta_l W_l`` (l > 1).
    For SGD the same products on a minibatch of n // 4 rows.  ``lib="torch"`` does the
    same products with ``torch.matmul(out=)`` (PyTorch's own BLAS, MKL in the x86 wheels).
    """
    n = X.shape[0] // 4 if kind == "sgd" else X.shape[0]
    L, m, k, dt = net.L, net.m, net.k, net.dtype
    if lib == "torch":
        arr, mm = torch.from_numpy, (lambda a, b, out: torch.matmul(a, b, out=out))
    else:
        arr, mm = (lambda a: a), (lambda a, b, out: np.matmul(a, b, out=out))
    W = [arr(np.array(w)) for w in net.W]
    V = arr(np.array(net.V))
    h = [arr(np.ascontiguousarray(X[:n]))] + [arr(np.ones((n, m), dt)) for _ in range(L)]
    out = arr(np.empty((n, k), dt))
    E = arr(np.ones((n, k), dt))
    gW = [arr(np.empty(w.shape, dt)) for w in net.W]
    gV = arr(np.empty(net.V.shape, dt))
    deltas = [arr(np.ones((n, m), dt)), arr(np.ones((n, m), dt))]

    def floor():
        for l in range(1, L + 1):
            mm(h[l - 1], W[l - 1].T, h[l])
        mm(h[L], V.T, out)
        if kind == "gd+V":
            mm(E.T, h[L], gV)
        a, b = deltas
        if k > 1:
            mm(E, V, a)
        for l in range(L, 0, -1):
            mm(a.T, h[l - 1], gW[l - 1])
            if l > 1:
                mm(a, W[l - 1], b)
                a, b = b, a
    return floor


def unfused_step(net, X, Y, kind):
    """tinyntk's step with the fused update switched off: each layer's ``W -= lr * grad``
    done as ``matmul`` into a scratch array, then ``subtract`` in place (what tinyntk does
    where NumPy's own ``gemm`` cannot be found, and on CuPy).  Shows what the fusion buys."""
    step = tinyntk_step(net, X, Y, kind)

    def unfused():
        saved, tn.blas._GEMM = tn.blas._GEMM, {}     # as if no fused gemm were available
        try:
            return step()
        finally:
            tn.blas._GEMM = saved
    return unfused


def naive_step(net, X, Y, kind):
    """What one writes first: fresh arrays everywhere, ``W -= lr * grad``."""
    W = [np.array(w) for w in net.W]
    V = np.array(net.V)
    rng = np.random.default_rng(0)

    def step():
        Xb, Yb = X, Y
        if kind == "sgd":
            idx = np.sort(rng.choice(X.shape[0], X.shape[0] // 4, replace=False))
            Xb, Yb = X[idx], Y[idx]
        hs, zs = [Xb], []
        for Wl in W:
            z = hs[-1] @ Wl.T
            zs.append(z)
            hs.append(np.maximum(z, 0))
        out = hs[-1] @ V.T
        E = (out - Yb) / Xb.shape[0]
        grads = [None] * len(W)
        gV = E.T @ hs[-1] if kind == "gd+V" else None
        delta = (E @ V) * (zs[-1] > 0)
        for l in range(len(W), 0, -1):
            grads[l - 1] = delta.T @ hs[l - 1]
            if l > 1:
                delta = (delta @ W[l - 1]) * (zs[l - 2] > 0)
        for Wl, g in zip(W, grads):
            Wl -= LR * g
        if gV is not None:
            V[...] -= LR * gV
        return 0.5 * np.sum((out - Yb) ** 2) / Xb.shape[0]
    return step


def torch_step(net, X, Y, kind, set_to_none=True):
    """PyTorch autograd, the way a PyTorch user writes the same step (no optimizer object)."""
    W = [torch.tensor(np.array(w), requires_grad=True) for w in net.W]
    V = torch.tensor(np.array(net.V), requires_grad=(kind == "gd+V"))
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    params = W + ([V] if kind == "gd+V" else [])
    gen = torch.Generator().manual_seed(0)

    def step():
        Xb, Yb = Xt, Yt
        if kind == "sgd":
            idx = torch.randperm(Xt.shape[0], generator=gen)[: Xt.shape[0] // 4].sort().values
            Xb, Yb = Xt[idx], Yt[idx]
        h = Xb
        for Wl in W:
            h = torch.relu(h @ Wl.T)
        out = h @ V.T
        loss = 0.5 * ((out - Yb) ** 2).sum() / Xb.shape[0]
        loss.backward()
        with torch.no_grad():
            for p in params:
                p.sub_(p.grad, alpha=LR)
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()
        return loss.detach()
    return step


# --------------------------------------------------------------------------------------
# Section 1: time per step
# --------------------------------------------------------------------------------------
def bench_steps(shapes, dtypes, kinds, rounds, min_time):
    rows, checks = [], []
    for (n, d, m, L, k) in shapes:
        for dt in dtypes:
            net = tn.ReLUNet.init(d=d, m=m, k=k, L=L, seed=0, dtype=dt)
            X, Y = make_data(n, d, k, dt)
            for kind in kinds:
                variants = {"floor": gemm_floor(net, X, Y, kind),
                            "tinyntk": tinyntk_step(net, X, Y, kind),
                            "naive": naive_step(net, X, Y, kind)}
                variants["unfused"] = unfused_step(net, X, Y, kind)
                if torch is not None:
                    variants["torch"] = torch_step(net, X, Y, kind, set_to_none=True)
                    variants["torch0"] = torch_step(net, X, Y, kind, set_to_none=False)
                    variants["torch-floor"] = gemm_floor(net, X, Y, kind, lib="torch")
                r = interleaved(variants, rounds=rounds, warmup=1, min_time=min_time)
                med = {name: v["median"] for name, v in r.items()}
                t_torch = min(med["torch"], med["torch0"]) if torch is not None else float("nan")
                ratio_floor = med["tinyntk"] / med["floor"]
                ratio_torch = med["tinyntk"] / t_torch
                ratio_cpu = r["tinyntk"]["cpu_median"] / r["floor"]["cpu_median"]
                rows.append([f"({n},{d},{m},{L},{k})", dt, kind, fmt_time(med["floor"]),
                             fmt_time(med["tinyntk"]), ratio_floor, ratio_cpu,
                             med["unfused"] / med["floor"],
                             med["naive"] / med["floor"], med["naive"] / med["tinyntk"],
                             (t_torch / med["floor"]) if torch is not None else "n/a",
                             ratio_torch if torch is not None else "n/a",
                             (t_torch / med["torch-floor"]) if torch is not None else "n/a",
                             (med["floor"] / med["torch-floor"]) if torch is not None else "n/a"])
                if m >= 1024:
                    checks.append((f"({n},{d},{m},{L},{k}) {dt} {kind}", ratio_floor, ratio_torch))
                print(".", end="", flush=True)
    print()
    print(table(rows, ["(n,d,m,L,k)", "dtype", "step", "floor", "tinyntk", "tn/floor", "(cpu)",
                       "unfused/floor", "naive/floor", "naive/tn", "torch/floor", "tn/torch",
                       "torch/tfloor", "floor/tfloor"]))
    print("ratios are of wall-clock medians; (cpu) = the same ratio of the medians of the "
          "process's CPU time,\nwhich leaves out time slices lost to other processes on a "
          "busy machine (one thread)")
    print(f"tinyntk = GD/SGD.step, each layer's update fused into its gradient GEMM "
          f"(NumPy's own gemm, beta=1): {'on' if tn.blas.fused_available(np.zeros((2, 2))) else 'NOT AVAILABLE here'}"
          f"\nunfused = the same step with matmul + subtract for the update (the fallback)")
    print("floor = NumPy's GEMMs of the step; tfloor = the same GEMMs through torch.matmul "
          "(PyTorch's BLAS);\ntorch = autograd step, the faster of grad=None and grad.zero_() "
          "per row" if torch is not None
          else "PyTorch not installed: no torch column (pip install torch to add it)")
    worst_floor = max(c[1] for c in checks)
    print(f"target 1a, tinyntk step <= 1.05 x GEMM floor (m >= 1024), worst row: "
          f"{verdict(worst_floor, 1.05)}")
    gd_checks = [c for c in checks if c[0].endswith(" gd")]
    if gd_checks:
        worst_gd = max(c[1] for c in gd_checks)
        print(f"           GD rows only (the issue's step), worst: {verdict(worst_gd, 1.05)}")
    if torch is not None:
        worst_torch = max(c[2] for c in checks)
        print(f"target 1b, tinyntk step <= 0.85 x PyTorch autograd, worst row: "
              f"{verdict(worst_torch, 0.85)}")
    else:
        print("target 1b (vs PyTorch): not measured, PyTorch is not installed")


# --------------------------------------------------------------------------------------
# Section 2: memory, one fresh subprocess per variant
# --------------------------------------------------------------------------------------
def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak() -> None:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux >= 4.0).

    ``ru_maxrss`` is no use here: Linux carries it over from the parent across
    fork + exec, so a child started by a big parent reports the parent's peak.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def memory_child(variant, n, d, m, L, k, dt):
    """Run in a fresh process: RSS after imports, then peak and steady RSS of two steps."""
    X, Y = make_data(n, d, k, dt)
    _reset_peak()
    base = _rss_bytes()
    W, V = tn.init.paper(np.random.default_rng(0), d, m, k, L)
    W = [w.astype(dt) for w in W]
    V = V.astype(dt)
    if variant == "torch" and torch is None:
        print("SKIP")
        return
    if variant.startswith("tinyntk"):
        net = tn.ReLUNet(W=W, V=V, dtype=dt)
    del W, V
    if variant == "tinyntk":
        opt = GD(LR)
        fn = lambda: opt.step(net, X, Y)           # noqa: E731
    elif variant == "tinyntk-train":
        fn = lambda: tn.train(net, X, Y, steps=10, lr=LR, record_every=5)   # noqa: E731
    else:
        net = tn.ReLUNet.init(d=d, m=m, k=k, L=L, seed=0, dtype=dt)
        builder = naive_step if variant == "naive" else torch_step
        fn = builder(net, X, Y, "gd")
        del net
    _reset_peak()                         # construction (host copies) is not the step's
    fn()                                  # first step: allocates the persistent buffers
    first_peak = _peak_bytes()
    before = _rss_bytes()
    _reset_peak()
    fn()                                  # a step in the steady state
    transient = _peak_bytes() - before
    peak = max(first_peak, _peak_bytes()) - base
    print(f"RESULT {peak} {before - base} {transient}")


def bench_memory(shape, dt):
    n, d, m, L, k = shape
    item = np.dtype(dt).itemsize
    weights = (m * d + (L - 1) * m * m + k * m) * item
    acts = L * n * m * item + L * n * m + n * k * item      # h_1..h_L and boolean masks
    rows = []
    variants = ["tinyntk", "tinyntk-train", "naive"] + (["torch"] if torch is not None else [])
    transient_tn = None
    for variant in variants:
        cmd = [sys.executable, os.path.abspath(__file__), "--_mem-child", variant,
               ",".join(map(str, shape)), dt, "--threads", str(THREADS)]
        # A fixed mmap threshold makes glibc return every large array to the kernel when
        # it is freed, so temporaries show up in the RSS instead of hiding in the heap.
        env = dict(os.environ, PYTHONPATH=ROOT, MALLOC_MMAP_THRESHOLD_="65536")
        res = subprocess.run(cmd, capture_output=True, text=True, env=env)
        line = [ln for ln in res.stdout.splitlines() if ln.startswith(("RESULT", "SKIP"))]
        if not line or line[0] == "SKIP":
            rows.append([variant, "failed" if not line else "skipped", "", "", ""])
            if res.returncode:
                print(res.stderr[-2000:])
            continue
        peak, steady, transient = (int(x) for x in line[0].split()[1:])
        if variant == "tinyntk":
            transient_tn = transient
        bound = weights + acts + (weights if variant == "tinyntk-train" else 0)
        rows.append([variant, f"{peak / 2**20:8.1f} MB", f"{steady / 2**20:8.1f} MB",
                     f"{transient / 2**20:8.1f} MB", f"{bound / 2**20:8.1f} MB",
                     peak / bound])
    print(f"shape (n,d,m,L,k) = {shape}, {dt}: weights {weights / 2**20:.1f} MB, "
          f"activations+masks {acts / 2**20:.1f} MB")
    print(table(rows, ["variant", "peak in steps", "held between steps",
                       "transient in a step", "lower bound", "peak/bound"]))
    print("lower bound = weights + activations (+ W(0) for train, which keeps it for the "
          "Distance probe);\ntrain also holds a copy of the weights for rewinding after a "
          "divergence, not counted in the bound")
    if transient_tn is not None:
        print(f"target 2, tinyntk step transient memory <= 10% of the weights: "
              f"{verdict(transient_tn / weights, 0.10)}")


# --------------------------------------------------------------------------------------
# Section 3: training loop with the Distance probe against bare steps
# --------------------------------------------------------------------------------------
def bench_train(shape, dt, steps, rounds, check_accuracy):
    n, d, m, L, k = shape
    net0 = tn.ReLUNet.init(d=d, m=m, k=k, L=L, seed=0, dtype=dt)
    X, Y = make_data(n, d, k, dt)
    lr = 100.0 / m    # a real training run (eta = O(1/m), Theorem 3.3), so W(t) - W(0) is not negligible
    state = {}

    def fresh():
        state["net"] = net0.copy()

    def bare():
        net, opt = state["net"], GD(lr)
        for _ in range(steps):
            opt.step(net, X, Y)

    class TimedDistance(tn.diagnostics.Distance):
        """The default probe, with a stopwatch (CPU time) around each call."""
        spent = 0.0

        def __call__(self, state):
            t0 = time.process_time()
            out = super().__call__(state)
            TimedDistance.spent += time.process_time() - t0
            return out

    def train_probe():
        tn.train(state["net"], X, Y, steps=steps, lr=lr, record_every=10,
                 probes=[TimedDistance()])

    def train_noprobe():
        tn.train(state["net"], X, Y, steps=steps, lr=lr, record_every=10, probes=[])

    import statistics
    import time
    variants = {"bare": bare, "train": train_probe, "train-noprobe": train_noprobe}
    wall = {name: [] for name in variants}
    cpu = {name: [] for name in variants}
    probe = []
    for r in range(rounds + 1):
        for name, fn in variants.items():
            fresh()
            TimedDistance.spent = 0.0
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            if r:
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
                if name == "train":
                    probe.append(TimedDistance.spent)
    med = {name: statistics.median(ts) for name, ts in wall.items()}
    cmed = {name: statistics.median(ts) for name, ts in cpu.items()}
    rows = [[name, fmt_time(med[name]), fmt_time(med[name] / steps), med[name] / med["bare"],
             fmt_time(cmed[name]), cmed[name] / cmed["bare"]] for name in variants]
    print(f"shape (n,d,m,L,k) = {shape}, {dt}, {steps} steps, record_every=10, lr={lr:g}")
    print(table(rows, ["variant", "total", "per step", "/bare", "CPU time", "/bare (cpu)"]))
    share = statistics.median(probe) / cmed["bare"]
    calls = len(range(0, steps, 10)) + 1
    print(f"Distance probe alone ({calls} calls, timed inside train): "
          f"{fmt_time(statistics.median(probe))} = {share:.1%} of the bare steps' CPU time")
    print(f"target 3, train with default diagnostics <= 1.05 x bare steps:\n"
          f"  probe timed inside train: {verdict(1 + share, 1.05)}\n"
          f"  whole runs, wall: {verdict(med['train'] / med['bare'], 1.05)}, CPU time: "
          f"{verdict(cmed['train'] / cmed['bare'], 1.05)} (a difference of two noisy totals)")
    if check_accuracy:
        net = net0.copy()
        hist = tn.train(net, X, Y, steps=steps, lr=lr, record_every=10)
        W0 = [w.astype(np.float64) for w in net0.W]
        exact = [float(np.linalg.norm(w.astype(np.float64) - w0, 2))
                 for w, w0 in zip(net.W, W0)]
        probe = hist["distance"][-1]
        rel = max(abs(p - e) / e for p, e in zip(probe, exact) if e > 0)
        print(f"Distance probe accuracy at step {steps}: probe {['%.6g' % p for p in probe]}, "
              f"exact (SVD) {['%.6g' % e for e in exact]}, max relative error {rel:.2e}")


# --------------------------------------------------------------------------------------
# Section 4: the linearized model against the net
# --------------------------------------------------------------------------------------
def bench_linearized(shapes, dtypes, rounds, min_time):
    rows = []
    for (n, d, m, L, k) in shapes:
        for dt in dtypes:
            net = tn.ReLUNet.init(d=d, m=m, k=k, L=L, seed=0, dtype=dt)
            lin = tn.linearize(net)
            rng = np.random.default_rng(0)
            for w in lin.W:                        # away from W(0), as after some training
                w += (1e-3 * rng.standard_normal(w.shape)).astype(dt)
            X, Y = make_data(n, d, k, dt)
            batches = [X, make_data(n, d, k, dt, seed=2)[0]]     # alternated: never the same
            E = (0.01 * Y).astype(dt)
            out_n, c_net = net.forward(X, cache=True)
            out_l, c_lin = lin.forward(X, cache=True)
            _, c_new = lin.forward(X, cache=True)

            def lin_new_batch():
                batches.reverse()
                lin.forward(batches[0], cache=c_new, check=False)
            g_net, g_lin = net.zeros_like_weights(), lin.zeros_like_weights()
            step_net, step_lin = GD(LR), GD(LR)
            variants = {
                "net fwd": lambda: net.forward(X, cache=c_net, check=False),
                "lin fwd": lambda: lin.forward(X, cache=c_lin, check=False),
                "lin fwd new": lin_new_batch,
                "net bwd": lambda: net.backward(c_net, E, grads=g_net),
                "lin bwd": lambda: lin.backward(c_lin, E, grads=g_lin),
                "net step": lambda: step_net.step(net, X, Y),
                "lin step": lambda: step_lin.step(lin, X, Y),
            }
            r = interleaved(variants, rounds=rounds, warmup=1, min_time=min_time)
            med = {name: v["median"] for name, v in r.items()}
            rows.append([f"({n},{d},{m},{L},{k})", dt, fmt_time(med["net fwd"]),
                         med["lin fwd"] / med["net fwd"], med["lin fwd new"] / med["net fwd"],
                         fmt_time(med["net bwd"]), med["lin bwd"] / med["net bwd"],
                         fmt_time(med["net step"]), med["lin step"] / med["net step"]])
            print(".", end="", flush=True)
    print()
    print(table(rows, ["(n,d,m,L,k)", "dtype", "net fwd", "lin fwd", "(new batch)", "net bwd",
                       "lin bwd", "net step", "lin step"]))
    print("lin columns are ratios to the net's time in the column before; 'lin fwd' reuses "
          "the pass at W(0) for the same batch (full-batch training), '(new batch)' "
          "alternates two batches through one cache, so it recomputes that pass every call; "
          "expected by counting products 2, 3, 1 and about 4/3")


def main():
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--sections", default="step,memory,train,linearized",
                   help="comma-separated subset of step,memory,train,linearized")
    p.add_argument("--kinds", default="gd,gd+V,sgd", help="steps to time: gd,gd+V,sgd")
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--_mem-child", nargs=3, help=__import__("argparse").SUPPRESS)
    args = p.parse_args()
    limit_loaded_pools(args.threads)
    if args._mem_child:
        variant, shape, dt = args._mem_child
        memory_child(variant, *map(int, shape.split(",")), dt)
        return
    extra = [f"torch    : {torch.__version__}, {torch.get_num_threads()} threads"
             if torch is not None else "torch    : not installed (PyTorch rows skipped)"]
    print_header("bench/step.py: one training step on the CPU", args.threads, extra)
    sections = args.sections.split(",")
    if args.quick:
        shapes = [(256, 64, 1024, 2, 1), (256, 64, 1024, 3, 10)]
        rounds = args.rounds or 3
        train_shape, train_steps, train_rounds = (256, 64, 1024, 2, 1), 30, 3
    else:
        shapes = [(256, 64, 4096, 2, 1), (1024, 64, 2048, 3, 10)]
        rounds = args.rounds or 9
        train_shape, train_steps, train_rounds = (256, 64, 4096, 2, 1), 30, 5
    if "step" in sections:
        print("\n-- 1. time per step (interleaved rounds: %d) --" % rounds)
        bench_steps(shapes, args.dtypes.split(","), args.kinds.split(","), rounds,
                    0.05 if args.quick else 0.3)
    if "memory" in sections:
        print("\n-- 2. memory of one GD step (fresh subprocess per variant) --")
        bench_memory(shapes[0], "float32")
    if "train" in sections:
        print("\n-- 3. train() with the Distance probe vs bare steps --")
        for dt in (args.dtypes.split(",")[:1] if args.quick else args.dtypes.split(",")):
            bench_train(train_shape, dt, train_steps, train_rounds,
                        check_accuracy=True)
    if "linearized" in sections:
        print("\n-- 4. the linearized model against the net (interleaved rounds: %d) --" % rounds)
        bench_linearized(shapes, args.dtypes.split(","), rounds, 0.05 if args.quick else 0.3)


if __name__ == "__main__":
    main()
