"""Shared helpers for the benches: thread pinning, the header, interleaved timing, medians.

Import this module *before* NumPy (``from _common import ...`` at the top of a bench
script): :func:`pin_threads` sets the BLAS/OpenMP thread-count variables, which the BLAS
libraries read once, when they are loaded.  After NumPy is loaded the count is enforced a
second time with threadpoolctl when it is installed.

Timing: every variant of a comparison is run in turn, ``A B C A B C ...`` (interleaved),
so that a slow period of a shared machine hits all variants alike; each variant's time is
the median of its rounds, and the benches report ratios of these medians.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def _threads_from_argv(default: int = 1) -> int:
    """``--threads N`` read from ``sys.argv`` before argparse runs (and before NumPy loads)."""
    argv = sys.argv[1:]
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
        if a.startswith("--threads="):
            return int(a.split("=", 1)[1])
    return default


def pin_threads(n: int | None = None) -> int:
    """Set every BLAS/OpenMP thread variable to ``n``.

    The default is ``--threads`` from the command line, else ``BENCH_DEFAULT_THREADS``
    from the environment (bench/gpu.py sets it to all cores), else 1.  Must run before
    NumPy, SciPy or PyTorch is imported to take full effect.
    """
    if n is None:
        n = _threads_from_argv(default=int(os.environ.get("BENCH_DEFAULT_THREADS", "1")))
    n = int(n)
    for var in _THREAD_VARS:
        os.environ[var] = str(n)
    return n


THREADS = pin_threads()      # at import: a bench imports this module before NumPy


def limit_loaded_pools(n: int = THREADS):
    """Enforce ``n`` threads on every BLAS/OpenMP pool already loaded (threadpoolctl)."""
    try:
        import threadpoolctl
    except ImportError:
        return None
    return threadpoolctl.threadpool_limits(limits=n)


def base_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small sizes, few rounds (< 1 minute)")
    p.add_argument("--threads", type=int, default=THREADS,
                   help="BLAS/OpenMP threads for NumPy and PyTorch (default 1)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds per variant")
    return p


def blas_summary() -> list[str]:
    """One line per loaded BLAS/OpenMP pool (threadpoolctl), or NumPy's build config."""
    lines = []
    try:
        import threadpoolctl
        for info in threadpoolctl.threadpool_info():
            lines.append(f"{info.get('internal_api')} {info.get('version')} "
                         f"({info.get('architecture', '?')}), {info.get('num_threads')} threads: "
                         f"{os.path.basename(info.get('filepath', ''))}")
    except ImportError:
        pass
    if not lines:
        import numpy
        try:
            cfg = numpy.show_config(mode="dicts")
            blas = cfg["Build Dependencies"]["blas"]
            lines.append(f"numpy BLAS: {blas.get('name')} {blas.get('version')} "
                         "(threadpoolctl not installed: thread count from the environment)")
        except Exception:
            lines.append("numpy BLAS: unknown (numpy.show_config() for details)")
    return lines


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def print_header(title: str, threads: int, extra: list[str] | None = None) -> None:
    """Machine, BLAS, threads and date: the first lines of every bench's output."""
    import numpy
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    print(f"== {title} ==")
    print(f"date     : {now}")
    print(f"machine  : {platform.node()}, {cpu_name()}, {os.cpu_count()} logical CPUs, "
          f"{_mem_gib():.0f} GiB, {platform.system()} {platform.release()}")
    print(f"python   : {platform.python_version()}, numpy {numpy.__version__}")
    print(f"threads  : {threads} (env {', '.join(f'{v}={os.environ.get(v)}' for v in _THREAD_VARS[:3])})")
    for line in blas_summary():
        print(f"BLAS     : {line}")
    for line in extra or []:
        print(line)
    sys.stdout.flush()


def _mem_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return float("nan")


def interleaved(variants: dict, rounds: int = 7, inner: int | None = None, warmup: int = 1,
                sync=None, min_time: float = 0.2) -> dict:
    """Median seconds per call of each variant, timed ``A B C A B C ...``.

    ``variants`` maps a name to a callable taking no argument.  Each round times ``inner``
    consecutive calls of one variant and divides by ``inner``; ``warmup`` untimed rounds
    come first.  ``inner=None`` picks, per variant, enough calls for a round to last about
    ``min_time`` seconds (from one untimed call), which averages out the time slices of a
    shared machine.  ``sync`` (e.g. a GPU synchronize) is called before starting and
    before stopping each clock.  Returns ``{name: {"median", "min", "times", "inner",
    "cpu_median"}}``: ``cpu_median`` is the median of the process's CPU time per call
    (``time.process_time``), which leaves out the time slices the OS gave to other
    processes (meaningful with one thread; with more it sums over threads).
    """
    sync = sync or (lambda: None)
    times = {name: [] for name in variants}
    cpu = {name: [] for name in variants}
    if inner is None:
        counts = {}
        for name, fn in variants.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            counts[name] = max(1, min(1000, round(min_time / max(time.perf_counter() - t0, 1e-9))))
    else:
        counts = {name: inner for name in variants}
    for r in range(warmup + rounds):
        for name, fn in variants.items():
            sync()
            c0, t0 = time.process_time(), time.perf_counter()
            for _ in range(counts[name]):
                fn()
            sync()
            dt = (time.perf_counter() - t0) / counts[name]
            dc = (time.process_time() - c0) / counts[name]
            if r >= warmup:
                times[name].append(dt)
                cpu[name].append(dc)
    return {name: {"median": statistics.median(ts), "min": min(ts), "times": ts,
                   "inner": counts[name], "cpu_median": statistics.median(cpu[name])}
            for name, ts in times.items()}


def fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:7.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:7.2f} ms"
    return f"{seconds:7.3f} s "


def table(rows: list[list], header: list[str]) -> str:
    """A plain fixed-width table (strings as they are, floats with 3 decimals)."""
    cells = [[c if isinstance(c, str) else f"{c:.3f}" for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths)),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
            for r in cells]
    return "\n".join(out)


def verdict(value: float, target: float, smaller_is_better: bool = True) -> str:
    ok = value <= target if smaller_is_better else value >= target
    sign = "<=" if smaller_is_better else ">="
    return f"{'MET' if ok else 'NOT MET'} ({value:.3f} vs target {sign} {target:g})"


#: The Python of the side environment that holds neural-tangents (see bench/README.md).
NT_PYTHON = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         ".venv-nt", "bin", "python")


def nt_available() -> bool:
    """Whether ``.venv-nt`` (neural-tangents' side environment) exists."""
    return os.path.exists(NT_PYTHON)


class PipePeer:
    """A peer library run by another Python (its own virtual environment), driven one line
    at a time over a pipe, so that its calls can be interleaved with ours.

    The script prints ``READY <json>`` once it is set up, then answers each ``run`` line on
    stdin with one line starting ``done`` (what follows is returned by :meth:`run`).  The
    process is pinned to the CPUs this process may use (``sched_setaffinity``), its XLA
    thread flags follow ``THREADS``, and ``PYTHONPATH`` is dropped so that it cannot import
    our tree.  ``info`` holds the READY line's JSON."""

    def __init__(self, python: str, script: str, args: list, env: dict | None = None):
        import json
        import subprocess
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu",
                   XLA_FLAGS=f"--xla_cpu_multi_thread_eigen={'true' if THREADS > 1 else 'false'} "
                             f"intra_op_parallelism_threads={THREADS}", **(env or {}))
        env.pop("PYTHONPATH", None)
        cpus = sorted(os.sched_getaffinity(0))
        self.proc = subprocess.Popen([python, "-c", script, *map(str, args)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env,
                                     preexec_fn=lambda: os.sched_setaffinity(0, cpus))
        self.info = None
        for line in self.proc.stdout:
            if line.startswith("READY "):
                self.info = json.loads(line[6:])
                break
        if self.info is None:
            err = self.proc.stderr.read().strip().splitlines()
            self.close()
            raise RuntimeError(err[-1] if err else f"{python} produced no output")

    def run(self) -> str:
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        if not reply.startswith("done"):
            raise RuntimeError("the peer process stopped")
        return reply[4:].strip()

    def close(self) -> None:
        import subprocess
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
