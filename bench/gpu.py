"""Bench of the training step on a GPU (CuPy) against PyTorch CUDA and the host CPU.

    PYTHONPATH=. python bench/gpu.py --quick         # well under a minute on an H100
    PYTHONPATH=. python bench/gpu.py                 # more sizes and rounds (a few minutes)
    PYTHONPATH=. python bench/gpu.py --json out.json # also write every number to a file

Needs CuPy and a CUDA GPU; without them it stops at once with a message saying what is
missing (exit status 2).  PyTorch with CUDA is optional (its rows are skipped without it).

Sections (every section runs even if an earlier one failed; the exit status is 1 then):

1. *GEMM*: the GPU's measured float32 GEMM throughput, ``C = A @ B`` with 8192^3 (TF32
   off: true float32, CuPy's and PyTorch's default), the reference for "fraction of peak".
2. *step*: ``tinyntk.optim.GD(lr).step(net, X, Y)`` on the CuPy backend, float32,
   n = 1024, d = 64, k = 1, L = 2, against its GEMM floor (the same matrix products in
   CuPy) and a PyTorch CUDA autograd step, at m = 8192.  Targets: CuPy step <= 1.1x
   PyTorch; step FLOP/s >= 60% of the measured GEMM throughput.
3. *speed-up*: the same step on the GPU and with NumPy on this machine's CPU (all cores
   unless ``--threads``) for a range of m.

GPU times: a warm-up round (kernel compilation, cuBLAS handles, memory pool), then
interleaved rounds, each of ``inner`` steps between two ``Device.synchronize()`` calls.
"""
from __future__ import annotations

import json
import os
import sys
import traceback

os.environ.setdefault("BENCH_DEFAULT_THREADS", str(os.cpu_count() or 1))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import (THREADS, base_parser, fmt_time, interleaved, limit_loaded_pools,  # noqa: E402
                     print_header, table, verdict)

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import tinyntk as tn  # noqa: E402
from tinyntk.optim import GD  # noqa: E402

LR = 1e-4
RESULTS: dict = {}
FAILED: list = []


def need_gpu(cpu_selftest: bool):
    """(cupy module, sync function, description), or exit 2 with what is missing."""
    if cpu_selftest:                       # runs the script's logic with NumPy in CuPy's place
        return np, (lambda: None), "CPU self-test (NumPy standing in for CuPy)"
    try:
        import cupy
    except ImportError as exc:
        _exit(f"bench/gpu.py needs CuPy, which is not installed ({exc}). Install the wheel "
              "matching the CUDA driver, e.g. `pip install cupy-cuda12x` (tinyntk[gpu]), and "
              "run on a machine with an NVIDIA GPU.")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        _exit(f"bench/gpu.py: CuPy is installed but finds no usable CUDA device "
              f"({type(exc).__name__}: {exc}). Run it on a GPU machine with a working driver.")
    if count < 1:
        _exit("bench/gpu.py: CuPy sees 0 CUDA devices. Run it on a GPU machine.")
    try:
        tn.set_backend("cupy")
    except tn.BackendUnavailable as exc:
        _exit(f"bench/gpu.py: tinyntk's cupy backend is unavailable: {exc}")
    dev = cupy.cuda.Device()
    props = cupy.cuda.runtime.getDeviceProperties(dev.id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    desc = (f"{name}, {props['totalGlobalMem'] / 2**30:.0f} GiB, "
            f"CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}, "
            f"driver {cupy.cuda.runtime.driverGetVersion()}, CuPy {cupy.__version__}")
    return cupy, dev.synchronize, desc


def _exit(message: str):
    print(message, file=sys.stderr)
    sys.exit(2)


def load_torch():
    try:
        import torch
    except ImportError:
        return None, "not installed"
    torch.set_num_threads(THREADS)
    if not torch.cuda.is_available():
        return None, f"{torch.__version__} without CUDA (rows skipped)"
    torch.backends.cuda.matmul.allow_tf32 = False           # true float32, like CuPy
    torch.backends.cudnn.allow_tf32 = False
    return torch, f"{torch.__version__}, CUDA {torch.version.cuda}, TF32 off"


def section(title):
    """Run the decorated section now; print a traceback and go on if it fails."""
    def run(fn):
        print(f"\n-- {title} --", flush=True)
        try:
            fn()
        except Exception:
            FAILED.append(title)
            traceback.print_exc(file=sys.stdout)
            print(f"[section failed: {title}; continuing]", flush=True)
        return fn
    return run


# --------------------------------------------------------------------------------------
def step_flops(n, d, m, L, k=1):
    """FLOPs of the GEMMs of one GD step (hidden layers trained, V fixed)."""
    fwd = 2 * n * (d * m + (L - 1) * m * m + m * k)
    bwd = 2 * n * (d * m + (L - 1) * m * m) + 2 * n * (L - 1) * m * m
    return fwd + bwd


def make_data(n, d, k, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype("float32"), rng.standard_normal((n, k)).astype("float32")


def tinyntk_step(backend, shape):
    """A GD step of tinyntk on ``backend`` ("cupy" or "numpy"), data moved there once."""
    n, d, m, L, k = shape
    with tn.use_backend(backend):
        net = tn.ReLUNet.init(d=d, m=m, k=k, L=L, seed=0, dtype="float32")
        Xh, Yh = make_data(n, d, k)
        X, Y = tn.backend.asarray(Xh), tn.backend.asarray(Yh)
    opt = GD(LR)

    if backend == tn.get_backend().name:        # the active backend: no switch per step
        return lambda: opt.step(net, X, Y)

    def step():
        with tn.use_backend(backend):
            opt.step(net, X, Y)
    return step


def floor_step(xp, shape):
    """The GEMMs of the step alone, preallocated outputs, in the array module ``xp``."""
    n, d, m, L, k = shape
    rng = np.random.default_rng(0)
    f32 = "float32"
    W = [xp.asarray(rng.standard_normal((m, d)).astype(f32) * 0.02)]
    W += [xp.asarray(rng.standard_normal((m, m)).astype(f32) * 0.02) for _ in range(L - 1)]
    V = xp.asarray(rng.standard_normal((k, m)).astype(f32))
    h = [xp.asarray(make_data(n, d, k)[0])] + [xp.ones((n, m), f32) for _ in range(L)]
    out = xp.empty((n, k), f32)
    gW = [xp.empty_like(w) for w in W]
    a = xp.asarray(rng.standard_normal((n, m)).astype(f32))
    b = xp.empty((n, m), f32)

    def floor():
        for l in range(1, L + 1):
            xp.matmul(h[l - 1], W[l - 1].T, out=h[l])
        xp.matmul(h[L], V.T, out=out)
        x, y = a, b
        for l in range(L, 0, -1):
            xp.matmul(x.T, h[l - 1], out=gW[l - 1])
            if l > 1:
                xp.matmul(x, W[l - 1], out=y)
                x, y = y, x
    return floor


def torch_step(torch, shape, device="cuda"):
    n, d, m, L, k = shape
    net = tn.ReLUNet.init(d=d, m=m, k=k, L=L, seed=0, dtype="float32")
    W = [torch.tensor(tn.to_numpy(w), device=device, requires_grad=True) for w in net.W]
    V = torch.tensor(tn.to_numpy(net.V), device=device)
    Xh, Yh = make_data(n, d, k)
    X, Y = torch.tensor(Xh, device=device), torch.tensor(Yh, device=device)

    def step():
        h = X
        for Wl in W:
            h = torch.relu(h @ Wl.T)
        loss = 0.5 * ((h @ V.T - Y) ** 2).sum() / n
        loss.backward()
        with torch.no_grad():
            for p in W:
                p.sub_(p.grad, alpha=LR)
                p.grad = None
    return step


def main():
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--json", help="write all measured numbers to this file")
    p.add_argument("--_cpu-selftest", action="store_true", help=__import__("argparse").SUPPRESS)
    args = p.parse_args()
    limit_loaded_pools(args.threads)
    xp, sync, gpu_desc = need_gpu(args._cpu_selftest)
    torch, torch_desc = load_torch()
    if args._cpu_selftest:
        torch = None
        torch_desc += " (ignored in the CPU self-test)"
    gpu_backend = "numpy" if args._cpu_selftest else "cupy"
    tf32 = os.environ.get("CUPY_TF32", "0")
    print_header("bench/gpu.py: the training step on a GPU", args.threads,
                 [f"GPU      : {gpu_desc}", f"CuPy TF32: CUPY_TF32={tf32} (0 = true float32)",
                  f"torch    : {torch_desc}"])
    RESULTS.update(gpu=gpu_desc, torch=torch_desc, threads=args.threads, quick=args.quick)
    quick = args.quick
    rounds = args.rounds or (3 if quick else 7)
    n, d, L, k = 1024, 64, 2, 1
    big = (n, d, 8192, L, k)
    if args._cpu_selftest:                       # keep the self-test small
        big = (256, d, 1024, L, k)

    @section("1. float32 GEMM throughput of this GPU (8192^3)")
    def gemm():
        s = 8192 if not args._cpu_selftest else 1024
        rng = np.random.default_rng(0)            # random data: a GPU clocks higher on ones
        A = xp.asarray(rng.standard_normal((s, s), dtype=np.float32))
        B = xp.asarray(rng.standard_normal((s, s), dtype=np.float32))
        C = xp.empty((s, s), "float32")
        r = interleaved({"gemm": lambda: xp.matmul(A, B, out=C)}, rounds=rounds,
                        inner=10 if not args._cpu_selftest else 1, warmup=1, sync=sync)
        t = r["gemm"]["median"]
        RESULTS["gemm_tflops"] = 2 * s ** 3 / t / 1e12
        RESULTS["gemm_tflops_best"] = 2 * s ** 3 / r["gemm"]["min"] / 1e12
        print(f"C = A @ B, {s}^3 float32: {fmt_time(t)} median -> "
              f"{RESULTS['gemm_tflops']:.1f} TFLOP/s (best round "
              f"{RESULTS['gemm_tflops_best']:.1f} TFLOP/s)")
        del A, B, C

    @section(f"2. GD step at (n,d,m,L,k) = {big}, float32")
    def step():
        variants = {"floor": floor_step(xp, big), "tinyntk": tinyntk_step(gpu_backend, big)}
        if torch is not None:
            variants["torch"] = torch_step(torch, big)

        def sync_all():
            sync()
            if torch is not None:
                torch.cuda.synchronize()
        inner = 1 if args._cpu_selftest else 20
        r = interleaved(variants, rounds=rounds, inner=inner, warmup=1, sync=sync_all)
        med = {name: v["median"] for name, v in r.items()}
        flops = step_flops(*big)
        peak = RESULTS.get("gemm_tflops")
        rows = []
        for name, t in med.items():
            tf = flops / t / 1e12
            rows.append([name, fmt_time(t), f"{tf:.1f}", (tf / peak) if peak else "n/a",
                         t / med["floor"], (t / med["torch"]) if "torch" in med else "n/a"])
        print(table(rows, ["variant", "time/step", "TFLOP/s", "of GEMM peak", "/floor",
                           "/torch"]))
        RESULTS["step"] = {"shape": big, "median_s": med, "flops": flops}
        if "torch" in med:
            print("target 6a, CuPy step <= 1.1x PyTorch CUDA: "
                  + verdict(med["tinyntk"] / med["torch"], 1.1))
        else:
            print("target 6a (vs PyTorch CUDA): not measured, " + torch_desc)
        if peak:
            print("target 6b, step >= 60% of measured GEMM throughput: "
                  + verdict(flops / med["tinyntk"] / 1e12 / peak, 0.60, smaller_is_better=False))

    @section("3. GPU over CPU (NumPy, %d threads), float32, n = %d, L = %d" % (THREADS, n, L))
    def speedup():
        ms = [1024, 4096, 8192] if quick else [1024, 2048, 4096, 8192, 16384]
        if args._cpu_selftest:
            ms = [256, 512]
        rows = []
        for m in ms:
            shape = (n if not args._cpu_selftest else 128, d, m, L, k)
            gpu_fn = tinyntk_step(gpu_backend, shape)
            cpu_fn = tinyntk_step("numpy", shape)
            gpu_inner = 1 if args._cpu_selftest else max(1, min(50, int(2e12 // step_flops(*shape))))
            rg = interleaved({"gpu": gpu_fn}, rounds=rounds, inner=gpu_inner, warmup=1, sync=sync)
            rc = interleaved({"cpu": cpu_fn}, rounds=max(1, rounds if m <= 4096 else 2), warmup=1,
                             inner=None if m <= 4096 else 1)
            tg, tc = rg["gpu"]["median"], rc["cpu"]["median"]
            fl = step_flops(*shape)
            rows.append([str(m), fmt_time(tc), f"{fl / tc / 1e9:.0f}", fmt_time(tg),
                         f"{fl / tg / 1e12:.1f}", tc / tg])
            RESULTS.setdefault("speedup", []).append({"m": m, "cpu_s": tc, "gpu_s": tg})
            print(".", end="", flush=True)
            del gpu_fn, cpu_fn
            if xp is not np:
                xp.get_default_memory_pool().free_all_blocks()
        print()
        print(table(rows, ["m", "CPU step", "CPU GFLOP/s", "GPU step", "GPU TFLOP/s",
                           "GPU speed-up"]))
        print("(GPU and CPU rounds are not interleaved with each other: they do not share "
              "a resource)")

    if args.json:
        with open(args.json, "w") as f:
            json.dump(RESULTS, f, indent=1, default=str)
        print(f"\nwrote {args.json}")
    if FAILED:
        print(f"\nFAILED sections: {FAILED}")
        sys.exit(1)


if __name__ == "__main__":
    main()
