"""Bench of the kernel-regime predictions (tinyntk.predict) against one eigendecomposition.

    PYTHONPATH=. python bench/predict.py --quick      # n = 256, 512 (< 1 minute)
    PYTHONPATH=. python bench/predict.py              # n = 1024, 2048, 4096 (~10 minutes)

For each n: the analytic NTK (L = 2) of n training and n/4 test points on the sphere (d = 32),
k = 1, float64, the step size lr = n/λ_max (half the stable limit), and

(a) ``gd_mse`` for discrete GD at the 11 times 0, 10, ..., 100, with test points
    (``method="auto"``: the recursion);
(b) ``gd_mse(flow=True)`` at 100 times in [0, 10 n/λ_min] (one eigendecomposition);
(c) ``kernel_regression`` (one Cholesky factorization);

timed beside one ``numpy.linalg.eigh(K)`` alone, and the naive loop of 100 steps of
``f <- f - (lr/n) K (f - Y)``, ``f_test <- f_test - (lr/n) K_tx (f - Y)`` (two matrix-vector
products a step).  Targets, as ratios to one eigh measured in the same run: (a) <= 0.5,
(b) <= 1.3, (c) <= 0.3.  Each row also gives the largest difference from an independent
reference (the naive loop for (a), ``scipy.linalg.expm`` at n <= 1024 or neural-tangents
for (b), ``numpy.linalg.solve`` for (c)).

neural-tangents: where the virtual environment ``.venv-nt`` exists (see bench/ntk.py), its
``predict.gradient_descent_mse`` (float64, ``JAX_ENABLE_X64``) runs (b) in its own process,
pinned to the CPUs this process may use and with the same thread count, and its CPU-time /
wall-time ratio is printed beside ours.  Its ``predict_fn`` caches the eigendecomposition,
so each timed call builds a new one, as a new kernel would.

A last section checks the rule by which ``method="auto"`` picks the recursion (max(t)·k <=
n/2): the two methods timed at t = n/2.
"""
from __future__ import annotations

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (NT_PYTHON, PipePeer, base_parser, fmt_time, interleaved,  # noqa: E402
                     limit_loaded_pools, nt_available, print_header, table, verdict)

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import tinyntk as tn  # noqa: E402

TARGETS = {"a": 0.5, "b": 1.3, "c": 0.3}

NT_SCRIPT = r"""
import json, os, sys, time
import numpy as np
import jax
jax.config.update("jax_enable_x64", True)
import neural_tangents as nt
z = np.load(sys.argv[1])
K, Y, Ktx, times, lr = (jax.numpy.asarray(z[a]) for a in ("K", "Y", "Ktx", "times", "lr"))
f0, f0t = jax.numpy.zeros_like(Y), jax.numpy.zeros((Ktx.shape[0], Y.shape[1]))
def run():
    fn = nt.predict.gradient_descent_mse(K, Y, learning_rate=float(lr))   # new: no cached eigh
    f, ft = fn(times, f0, f0t, Ktx)
    return f.block_until_ready(), ft.block_until_ready()
f, ft = run()
np.savez(sys.argv[1] + ".out.npz", f=np.asarray(f), ft=np.asarray(ft))
print("READY " + json.dumps({"jax": jax.__version__, "nt": nt.__version__}), flush=True)
for line in sys.stdin:
    if line.strip() != "run":
        break
    c0, t0 = time.process_time(), time.perf_counter()
    run()
    print("done %r" % ((time.process_time() - c0) / (time.perf_counter() - t0)), flush=True)
"""


class NeuralTangentsFlow:
    """neural-tangents' ``gradient_descent_mse`` in its own process (a :class:`PipePeer`,
    pinned to the CPUs of this process, with its thread count); ``__call__`` is one
    prediction, and ``cpu_ratios`` collects its CPU-time / wall-time ratios."""

    def __init__(self, problem, tmpdir):
        path = os.path.join(tmpdir, f"nt_predict_{problem['K'].shape[0]}.npz")
        np.savez(path, **{k: problem[k] for k in ("K", "Y", "Ktx", "times", "lr")})
        self.peer = PipePeer(NT_PYTHON, NT_SCRIPT, [path], env={"JAX_ENABLE_X64": "1"})
        self.info, self.cpu_ratios = self.peer.info, []
        out = np.load(path + ".out.npz")
        self.f, self.ft = out["f"], out["ft"]

    def __call__(self):
        self.cpu_ratios.append(float(self.peer.run()))

    def close(self):
        self.peer.close()


def make_problem(n, L=2, d=32, seed=0):
    n_test = max(1, n // 4)
    X, _ = tn.data.sphere(n=n + n_test, d=d, k=1, seed=seed)
    K_all = tn.to_numpy(tn.kernels.ntk(X, L=L))
    K, Ktx = np.ascontiguousarray(K_all[:n, :n]), np.ascontiguousarray(K_all[n:, :n])
    Y = np.random.default_rng(seed + 1).choice([-1.0, 1.0], size=(n, 1))
    lam = np.linalg.eigvalsh(K)
    lr = n / lam[-1]
    flow_times = np.linspace(0.0, 10 * n / (lr * lam[0]), 100)
    return {"K": K, "Ktx": Ktx, "Y": Y, "lr": np.float64(lr), "times": flow_times,
            "steps": np.arange(0, 101, 10)}


def naive_loop(p, steps=100):
    K, Ktx, Y, a = p["K"], p["Ktx"], p["Y"], p["lr"] / p["K"].shape[0]
    f, ft = np.zeros_like(Y), np.zeros((Ktx.shape[0], 1))
    for _ in range(steps):
        r = f - Y
        f, ft = f - a * (K @ r), ft - a * (Ktx @ r)
    return f, ft


def cpu_ratio(r):
    return r["cpu_median"] / r["median"]


def bench_n(n, rounds, tmpdir, nt):
    p = make_problem(n)
    K, Ktx, Y, lr = p["K"], p["Ktx"], p["Y"], float(p["lr"])
    variants = {
        "eigh(K)": lambda: np.linalg.eigh(K),
        "(a) gd_mse, 11 t <= 100": lambda: tn.predict.gd_mse(K, Y, lr, p["steps"], K_test_train=Ktx),
        "(b) gd_mse flow, 100 t": lambda: tn.predict.gd_mse(K, Y, lr, p["times"], K_test_train=Ktx,
                                                             flow=True),
        "(c) kernel_regression": lambda: tn.predict.kernel_regression(K, Y, Ktx),
        "naive loop, 100 steps": lambda: naive_loop(p),
    }
    peer = None
    if nt:
        try:
            peer = NeuralTangentsFlow(p, tmpdir)
            variants["(b) neural-tangents flow"] = peer
        except (RuntimeError, OSError) as exc:
            print(f"neural-tangents did not start: {exc}")
    try:
        r = interleaved(variants, rounds=rounds, warmup=1, inner=1)
    finally:
        if peer is not None:
            peer.close()
    # accuracy, each against an independent reference
    fa, fta = tn.predict.gd_mse(K, Y, lr, p["steps"], K_test_train=Ktx)
    naive_f, naive_ft = naive_loop(p)
    err_a = max(np.abs(fa[-1] - naive_f).max(), np.abs(fta[-1] - naive_ft).max())
    fb, ftb = tn.predict.gd_mse(K, Y, lr, p["times"], K_test_train=Ktx, flow=True)
    if peer is not None:
        err_b, ref_b = max(np.abs(fb - peer.f).max(), np.abs(ftb - peer.ft).max()), "vs neural-tangents"
    elif n <= 1024:
        import scipy.linalg
        t = p["times"][-1]
        E = scipy.linalg.expm(-lr / n * t * K)
        err_b, ref_b = np.abs(fb[-1] - (Y - E @ Y)).max(), "train, vs scipy expm"
    else:
        err_b, ref_b = float("nan"), "(no reference at this n)"
    mean = tn.predict.kernel_regression(K, Y, Ktx)
    err_c = np.abs(mean - Ktx @ np.linalg.solve(K, Y)).max()
    errors = {"(a)": (err_a, "vs naive loop"), "(b)": (err_b, ref_b), "(c)": (err_c, "vs numpy solve")}
    base = r["eigh(K)"]["median"]
    rows = []
    for name, v in r.items():
        err = errors.get(name[:3], ("", ""))
        extra = "" if name != "(b) neural-tangents flow" else "(its process)"
        ratio = cpu_ratio(v) if name != "(b) neural-tangents flow" else float(np.median(peer.cpu_ratios))
        rows.append([name, fmt_time(v["median"]), f"{v['median'] / base:.3f}", f"{ratio:.2f} {extra}",
                     "" if err[0] == "" or name.endswith("neural-tangents flow") else
                     f"{err[0]:.1e} {err[1]}"])
    print(f"\nn = {n}, n_test = {Ktx.shape[0]}, k = 1, L = 2, float64, lr = {lr:.4g} = n/λ_max, "
          f"λ_min/λ_max = {np.linalg.eigvalsh(K)[0] * lr / n:.2e} (rounds: {rounds})")
    print(table(rows, ["variant", "median", "x eigh", "cpu/wall", "max |diff|"]))
    for key, name in (("a", "(a) gd_mse, 11 t <= 100"), ("b", "(b) gd_mse flow, 100 t"),
                      ("c", "(c) kernel_regression")):
        print(f"target {key}: {name} <= {TARGETS[key]} x eigh: "
              f"{verdict(r[name]['median'] / base, TARGETS[key])}")
    if "(b) neural-tangents flow" in r:
        ours, theirs = cpu_ratio(r["(b) gd_mse flow, 100 t"]), float(np.median(peer.cpu_ratios))
        nt_time = r["(b) neural-tangents flow"]["median"]
        line = (f"neural-tangents {peer.info.get('nt')} (jax {peer.info.get('jax')}) / tinyntk on "
                f"(b): {nt_time / r['(b) gd_mse flow, 100 t']['median']:.2f}")
        if abs(theirs - ours) > 0.1 * ours:
            line += (f" -- NOT COMPARABLE: cpu/wall {theirs:.2f} against ours {ours:.2f} (more "
                     "than 10% apart: the two did not use the same cores)")
        print(line)


def bench_crossover(n, rounds):
    p = make_problem(n)
    K, Y, lr = p["K"], p["Y"], float(p["lr"])
    t = n // 2
    r = interleaved({
        "recursion": lambda: tn.predict.gd_mse(K, Y, lr, t, method="recursion"),
        "eigh": lambda: tn.predict.gd_mse(K, Y, lr, t, method="eigh"),
    }, rounds=rounds, warmup=1, inner=1)
    ratio = r["recursion"]["median"] / r["eigh"]["median"]
    print(f"\nn = {n}, k = 1, t = n/2 = {t} (the largest t for which 'auto' iterates): recursion "
          f"{fmt_time(r['recursion']['median'])}, eigh {fmt_time(r['eigh']['median'])}, "
          f"ratio {ratio:.2f} (near or below 1: the rule picks the faster method)")


def main():
    p = base_parser(__doc__.splitlines()[0])
    args = p.parse_args()
    limit_loaded_pools(args.threads)
    nt = nt_available()
    print_header("bench/predict.py: kernel-regime predictions on the CPU", args.threads,
                 [f"neural-tangents: {NT_PYTHON}" if nt else
                  "neural-tangents: no .venv-nt (no peer column; see bench/ntk.py)",
                  f"CPUs     : {sorted(os.sched_getaffinity(0))} (peers are pinned to these)"])
    sizes = [256, 512] if args.quick else [1024, 2048, 4096]
    rounds = args.rounds or 3
    with tempfile.TemporaryDirectory() as tmpdir:
        for n in sizes:
            bench_n(n, rounds, tmpdir, nt)
    bench_crossover(512 if args.quick else 2048, rounds)


if __name__ == "__main__":
    main()
