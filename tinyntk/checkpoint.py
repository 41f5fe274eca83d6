"""Files: a net's weights (:meth:`ReLUNet.save`) and training checkpoints (``train(...,
checkpoint=path)``), both ``.npz`` archives without pickle.

Format (version :data:`FORMAT_VERSION`)
---------------------------------------
Every file is a ``numpy.savez`` archive holding the arrays by name (``W_0 … W_{L-1}``,
``V``; a training checkpoint adds the initial weights ``W0_l``/``V0`` and the probes'
state ``probe<i>.<key>``) plus one string array ``tinyntk_meta``: a JSON object with
``"format": "tinyntk"``, ``"kind"`` (``"net"`` or ``"train"``), ``"version"`` and the
JSON-able rest (sizes, dtype, the train arguments, the optimizer state including the SGD
bit generator's state, the history, the step counter, a SHA-256 fingerprint of the data).
Files are read with ``numpy.load(..., allow_pickle=False)``.

Files are written atomically: into a temporary file in the same folder, flushed and
``fsync``-ed, then moved over the target with ``os.replace``.  A crash while writing
leaves the previous file intact.  A truncated, foreign (not written by tinyntk) or
newer-version file raises :class:`CheckpointError`, a ``ValueError``.

Probes with state (e.g. the warm-start vectors of :class:`~tinyntk.diagnostics.Distance`)
take part through two optional methods, ``state_dict() -> {key: host array}`` and
``load_state_dict(dict)``; a resumed run then records exactly the same values.
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile

import numpy

from .fileio import atomic_open

from . import backend as B

FORMAT_VERSION = 1
META_KEY = "tinyntk_meta"


class CheckpointError(ValueError):
    """A file is not a readable tinyntk file: truncated, foreign, of a newer format version,
    or it does not match the net/run it is loaded into."""


# ----- low level ---------------------------------------------------------------------
def _check_path(path, name: str = "path") -> str:
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a file path (str or os.PathLike), got {path!r}")
    path = os.fspath(path)
    if not path:
        raise ValueError(f"{name} must not be empty")
    return path


def _json_default(o):
    if isinstance(o, numpy.generic):
        return o.item()
    if isinstance(o, numpy.ndarray):
        return o.tolist()
    if hasattr(o, "get") and hasattr(o, "dtype"):       # a CuPy array
        return B.to_numpy(o).tolist()
    raise TypeError(f"cannot store {type(o).__name__} in a checkpoint")


def write_atomic(path, arrays: dict, meta: dict) -> None:
    """``arrays`` (host or device) and ``meta`` (JSON-able) into ``path``, atomically."""
    path = _check_path(path)
    import tinyntk
    meta = dict(meta, format="tinyntk", version=FORMAT_VERSION,
                tinyntk_version=getattr(tinyntk, "__version__", None))
    text = json.dumps(meta, default=_json_default)
    payload = {name: B.to_numpy(a) for name, a in arrays.items()}
    payload[META_KEY] = numpy.array(text)
    with atomic_open(path, "wb") as f:
        numpy.savez(f, **payload)


def read(path, kinds=("net", "train")):
    """``(arrays, meta)`` from a tinyntk file, every array read eagerly to the host."""
    path = _check_path(path)
    if not os.path.exists(path):
        raise CheckpointError(f"no tinyntk file at {path!r}")
    try:
        f = numpy.load(path, allow_pickle=False)
        if not hasattr(f, "files"):         # a .npy file: one array, not an archive
            raise CheckpointError(f"{path!r} is not a tinyntk file (a single array, not an "
                                  ".npz archive)")
        with f:
            names = list(f.files)
            if META_KEY not in names:
                raise CheckpointError(f"{path!r} is not a tinyntk file (no {META_KEY!r} entry; "
                                      f"it holds {names[:5]})")
            arrays = {name: f[name] for name in names}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, zipfile.LargeZipFile,
            RuntimeError) as exc:
        raise CheckpointError(f"{path!r} is truncated, corrupted or not a tinyntk file "
                              f"({type(exc).__name__}: {exc})") from None
    try:
        meta = json.loads(str(arrays.pop(META_KEY)[()]))
    except (ValueError, TypeError, IndexError) as exc:
        raise CheckpointError(f"{path!r}: unreadable tinyntk metadata ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != "tinyntk":
        raise CheckpointError(f"{path!r} is not a tinyntk file (foreign metadata)")
    version = meta.get("version")
    if not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path!r}: invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path!r} was written by a newer tinyntk (format version {version}; this one "
            f"reads up to {FORMAT_VERSION}): upgrade tinyntk to read it")
    if meta.get("kind") not in kinds:
        raise CheckpointError(f"{path!r} is a tinyntk {meta.get('kind')!r} file; expected "
                              f"{' or '.join(repr(k) for k in kinds)}")
    return arrays, meta


def _weights(arrays: dict, meta: dict, prefix: str, path) -> tuple:
    try:
        W = [arrays[f"{prefix}W_{l}"] for l in range(int(meta["L"]))]
        V = arrays[f"{prefix}V"]
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path!r}: missing weight array {exc}") from None
    return W, V


def _net_meta(net) -> dict:
    return {"d": net.d, "m": net.m, "k": net.k, "L": net.L, "dtype": net.dtype.name}


# ----- nets --------------------------------------------------------------------------
def save_net(net, path) -> None:
    """Write ``net``'s weights to ``path`` (atomically)."""
    arrays = {f"W_{l}": w for l, w in enumerate(net.W)}
    arrays["V"] = net.V
    write_atomic(path, arrays, dict(_net_meta(net), kind="net"))


def load_net(path):
    """A :class:`~tinyntk.ReLUNet` from a file of :func:`save_net` (or the current weights
    of a training checkpoint), on the active backend."""
    from .network import ReLUNet
    arrays, meta = read(path)
    W, V = _weights(arrays, meta, "", path)
    try:
        return ReLUNet(W=W, V=V, dtype=meta.get("dtype"))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path!r}: invalid weights ({exc})") from None


# ----- training state ----------------------------------------------------------------
def fingerprint(*arrays) -> str:
    """SHA-256 of the arrays' shapes, dtypes and bytes (detects resuming on other data)."""
    h = hashlib.sha256()
    for a in arrays:
        a = numpy.ascontiguousarray(B.to_numpy(a))
        h.update(f"{a.shape}{a.dtype.str}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_state(path, *, net, W0, V0, optimizer, history, step, args, probes, data) -> None:
    """A training checkpoint: everything :func:`tinyntk.train` needs to continue exactly.

    ``step`` is the index of the next step to run (the weights are :math:`W^{(step)}`;
    ``steps + 1`` marks a finished run); ``history`` holds the records of earlier steps.
    """
    arrays = {f"W_{l}": w for l, w in enumerate(net.W)}
    arrays["V"] = net.V
    arrays.update({f"W0_{l}": w for l, w in enumerate(W0)})
    arrays["V0"] = V0
    names = []
    for i, probe in enumerate(probes):
        names.append(getattr(probe, "name", type(probe).__name__))
        arrays.update({f"probe{i}.{key}": a for key, a in probe_state(probe).items()})
    meta = dict(_net_meta(net), kind="train", step=int(step), args=args,
                optimizer=optimizer.state() if callable(getattr(optimizer, "state", None)) else {},
                history=history, probes=names, data=data,
                backend=B.get_backend().name)
    write_atomic(path, arrays, meta)


def probe_state(probe) -> dict:
    """A probe's state as ``{key: host array}``: its ``state_dict()`` if it has one; for
    :class:`~tinyntk.diagnostics.Distance` (and subclasses) the warm-start vectors."""
    if callable(getattr(probe, "state_dict", None)):
        return dict(probe.state_dict())
    from .diagnostics import Distance
    if isinstance(probe, Distance) and getattr(probe, "_v", None) is not None:
        return {f"v{l}": B.to_numpy(v) for l, v in enumerate(probe._v) if v is not None}
    return {}


def load_probe_state(probe, state: dict) -> None:
    """Undo :func:`probe_state` on a probe that has been ``start``-ed."""
    if callable(getattr(probe, "load_state_dict", None)):
        probe.load_state_dict(state)
        return
    from .diagnostics import Distance
    if isinstance(probe, Distance) and state:
        for key, v in state.items():
            probe._v[int(key[1:])] = B.asarray(v)


def load_state(path) -> dict:
    """A training checkpoint as a dict: ``meta`` (JSON part), ``W``, ``V``, ``W0``, ``V0``
    (host arrays) and ``probes`` (per probe index, its ``{key: array}``)."""
    arrays, meta = read(path, kinds=("train",))
    W, V = _weights(arrays, meta, "", path)
    W0 = [arrays.get(f"W0_{l}") for l in range(len(W))]
    V0 = arrays.get("V0")
    if any(w is None for w in W0) or V0 is None:
        raise CheckpointError(f"{path!r}: missing the initial weights W0/V0")
    for key in ("step", "args", "optimizer", "history"):
        if key not in meta:
            raise CheckpointError(f"{path!r}: training checkpoint without {key!r}")
    probes = {}
    for name, a in arrays.items():
        if name.startswith("probe") and "." in name:
            index, key = name[len("probe"):].split(".", 1)
            probes.setdefault(int(index), {})[key] = a
    return {"meta": meta, "W": W, "V": V, "W0": W0, "V0": V0, "probes": probes}
