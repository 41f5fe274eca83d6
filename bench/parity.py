"""NumPy versus CuPy, float64, same seed: do the two backends compute the same numbers?

    PYTHONPATH=. python bench/parity.py            # on a machine with a GPU and CuPy
    PYTHONPATH=. python bench/parity.py --rtol 1e-10 --steps 100

Compares the initial weights, the forward pass, the loss and gradients (square and
logistic), the kernels of :mod:`tinyntk.kernels` when that module exists (``gram_H``,
``ntk``, ``empirical_ntk``), the NTK's top eigenvalue, the separation, and 100 steps of GD
and of SGD (final weights and the whole history).  The relative difference of a quantity
is ``max|a_numpy - a_cupy| / max|a_numpy|``; every one must be below ``--rtol``
(default 1e-10).  Prints a table with the date, the GPU and the versions.

Exit status: 0 all agree; 1 some quantity differs (or raised); **77 skipped**, with a
message on stderr, when CuPy or a GPU is missing (77 is the conventional "skipped" status
of automake/meson test harnesses, so a CI job can tell "not run" from "passed").
The same comparisons run under pytest in ``tests/test_gpu_parity.py``.
"""
from __future__ import annotations

import argparse
import datetime
import platform
import sys

import numpy

import tinyntk as tn

SKIPPED = 77


def quantities(backend: str, steps: int = 100) -> dict:
    """Every compared quantity, computed on ``backend`` and returned as host arrays.

    A quantity that raises is returned as the exception (reported as an error row).
    """
    out = {}
    with tn.use_backend(backend):
        X, Y = tn.data.sphere(n=64, d=16, k=1, seed=0, dtype="float64")
        Xs, Ys = tn.data.sphere(n=64, d=16, k=1, seed=0, target="sign")
        X2, Y2 = tn.data.sphere(n=32, d=16, k=3, seed=1)

        def net(L=2, k=1, seed=0):
            return tn.ReLUNet.init(d=16, m=256, k=k, L=L, seed=seed, dtype="float64")

        def put(name, fn):
            try:
                value = fn()
            except Exception as exc:          # reported, never hidden
                out[name] = exc
                return
            if isinstance(value, (list, tuple)):
                for i, v in enumerate(value):
                    out[f"{name}[{i}]"] = numpy.asarray(tn.to_numpy(v), dtype=float)
            else:
                out[name] = numpy.asarray(tn.to_numpy(value), dtype=float)

        put("init W", lambda: net(L=3).W)
        put("init V", lambda: net(L=3).V)
        put("forward f(X), L=3", lambda: net(L=3)(X))
        put("forward f(X), k=3", lambda: net(k=3)(X2))
        put("square loss", lambda: tn.loss_and_grad(net(), X, Y)[0])
        put("square grad W", lambda: tn.loss_and_grad(net(), X, Y)[1].W)
        put("square grad V", lambda: tn.loss_and_grad(net(), X, Y)[1].V)
        put("square grad W, k=3", lambda: tn.loss_and_grad(net(k=3), X2, Y2)[1].W)
        put("logistic loss", lambda: tn.loss_and_grad(net(), Xs, Ys, loss="logistic")[0])
        put("logistic grad W", lambda: tn.loss_and_grad(net(), Xs, Ys, loss="logistic")[1].W)
        put("separation", lambda: tn.data.separation(X))
        from tinyntk import stability
        put("NTK lambda_max", lambda: stability.ntk_lambda_max(net(), X, tol=0.0, iters=200))
        try:
            from tinyntk import kernels
        except ImportError:
            kernels = None
        if kernels is not None:
            for name, fn in [("gram_H", lambda: kernels.gram_H(X)),
                             ("ntk L=1", lambda: kernels.ntk(X, L=1)),
                             ("ntk L=3", lambda: kernels.ntk(X, L=3)),
                             ("empirical_ntk", lambda: kernels.empirical_ntk(net(), X))]:
                if hasattr(kernels, name.split()[0]):
                    put(f"kernels.{name}", fn)

        def run(batch_size):
            n = net()
            h = tn.train(n, X, Y, steps=steps, lr=0.05, batch_size=batch_size, seed=3)
            return {"W": [tn.to_numpy(w) for w in n.W], "loss": h["loss"],
                    "distance": h["distance"]}

        for label, bs in [("GD", None), ("SGD B=16", 16)]:
            try:
                r = run(bs)
            except Exception as exc:
                out[f"{label} {steps} steps"] = exc
                continue
            for i, w in enumerate(r["W"]):
                out[f"{label} {steps} steps: W[{i}]"] = numpy.asarray(w)
            out[f"{label} {steps} steps: loss history"] = numpy.asarray(r["loss"])
            out[f"{label} {steps} steps: distance history"] = numpy.asarray(r["distance"])
    return out


def rel_diff(a, b) -> float:
    """``max|a - b| / max|a|`` (0 when both are zero; inf on a shape mismatch)."""
    a, b = numpy.asarray(a, dtype=float), numpy.asarray(b, dtype=float)
    if a.shape != b.shape:
        return float("inf")
    scale = float(numpy.abs(a).max()) if a.size else 0.0
    diff = float(numpy.abs(a - b).max()) if a.size else 0.0
    if scale == 0.0:
        return diff
    return diff / scale


def compare(reference: dict, other: dict, rtol: float) -> list:
    """Rows ``(quantity, relative difference or None, ok, note)``."""
    rows = []
    for name, a in reference.items():
        b = other.get(name, KeyError(f"{name} missing"))
        if isinstance(a, Exception) or isinstance(b, Exception):
            bad = a if isinstance(a, Exception) else b
            rows.append((name, None, False, f"{type(bad).__name__}: {bad}"[:60]))
            continue
        r = rel_diff(a, b)
        rows.append((name, r, bool(r <= rtol), ""))
    return rows


def environment() -> dict:
    import cupy
    props = cupy.cuda.runtime.getDeviceProperties(0)
    name = props["name"]
    name = name.decode() if isinstance(name, bytes) else name
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "gpu": name,
        "cuda runtime": cupy.cuda.runtime.runtimeGetVersion(),
        "cuda driver": cupy.cuda.runtime.driverGetVersion(),
        "cupy": cupy.__version__, "numpy": numpy.__version__, "tinyntk": tn.__version__,
        "python": platform.python_version(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rtol", type=float, default=1e-10)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--self-check", action="store_true",
                        help="compare NumPy with NumPy (checks this script without a GPU)")
    args = parser.parse_args(argv)
    if args.self_check:
        rows = compare(quantities("numpy", args.steps), quantities("numpy", args.steps), 0.0)
        for name, r, ok, note in rows:
            print(f"{name:<40} {r!s:>10} {'pass' if ok else 'FAIL'} {note}")
        return 0 if all(r[2] for r in rows) else 1
    try:
        tn.set_backend("cupy")
    except tn.BackendUnavailable as exc:
        print(f"parity: SKIPPED (exit {SKIPPED}): {exc}", file=sys.stderr)
        return SKIPPED
    finally:
        tn.set_backend("numpy")
    env = environment()
    for key, value in env.items():
        print(f"{key:>13}: {value}")
    reference = quantities("numpy", args.steps)
    other = quantities("cupy", args.steps)
    rows = compare(reference, other, args.rtol)
    width = max(len(r[0]) for r in rows)
    print(f"\n{'quantity':<{width}}  {'max rel diff':>12}  result   (rtol {args.rtol:g})")
    for name, r, ok, note in rows:
        shown = "-" if r is None else f"{r:.2e}"
        print(f"{name:<{width}}  {shown:>12}  {'pass' if ok else 'FAIL'}  {note}")
    failed = [r[0] for r in rows if not r[2]]
    print(f"\n{len(rows) - len(failed)}/{len(rows)} agree" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
