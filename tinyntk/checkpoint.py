"""Files: a net's weights (:meth:`ReLUNet.save`) and training checkpoints (``train(...,
checkpoint=path)``), both ``.npz`` archives without pickle.

Format (version :data:`FORMAT_VERSION`)
---------------------------------------
Every file is a ``numpy.savez`` archive in the format of :mod:`tinyntk.fileio` (which
writes and reads it, below the network, so that :meth:`ReLUNet.save` needs nothing from
here): the arrays by name (``W_0 … W_{L-1}``, ``V``; a training checkpoint adds the
initial weights ``W0_l``/``V0``, for a linearized model the point it is linearized at,
``center.W_l``/``center.V``, and the probes' state ``probe<i>.<key>``) plus one string
array ``tinyntk_meta``: a JSON object with ``"format": "tinyntk"``, ``"kind"``
(``"net"`` or ``"train"``), ``"version"`` and the JSON-able rest (sizes, dtype, the
model, the train arguments, the optimizer state including the SGD bit generator's state,
the history, the step counter, a SHA-256 fingerprint of the data).  Files are read with
``numpy.load(..., allow_pickle=False)``.

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

import numpy

from . import backend as B
from .fileio import (FORMAT_VERSION, META_KEY, CheckpointError, check_path, read,  # noqa: F401
                     read_weights, sizes, weight_arrays, write_atomic)
from .network import ReLUNet


# ----- nets --------------------------------------------------------------------------
def save_net(net, path) -> None:
    """Write ``net``'s weights to ``path`` (atomically): :meth:`ReLUNet.save`."""
    net.save(path)


def load_net(path):
    """A :class:`~tinyntk.ReLUNet` from a file of :func:`save_net` (or the current weights
    of a training checkpoint), on the active backend: :meth:`ReLUNet.load`."""
    return ReLUNet.load(path)


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
    arrays = weight_arrays(net.W, net.V)
    arrays.update({f"W0_{l}": w for l, w in enumerate(W0)})
    arrays["V0"] = V0
    center = getattr(net, "net0", None)         # a linearized model's expansion point
    if center is not None:
        arrays.update(weight_arrays(center.W, center.V, prefix="center."))
    names = []
    for i, probe in enumerate(probes):
        names.append(getattr(probe, "name", type(probe).__name__))
        arrays.update({f"probe{i}.{key}": a for key, a in probe_state(probe).items()})
    meta = dict(sizes(net), kind="train", model=model_kind(net), step=int(step), args=args,
                optimizer=optimizer.state() if callable(getattr(optimizer, "state", None)) else {},
                history=history, probes=names, data=data,
                backend=B.get_backend().name)
    write_atomic(path, arrays, meta)


def probe_state(probe) -> dict:
    """A probe's state as ``{key: host array}``: its ``state_dict()`` if it has one."""
    if callable(getattr(probe, "state_dict", None)):
        return dict(probe.state_dict())
    return {}


def load_probe_state(probe, state: dict) -> None:
    """Undo :func:`probe_state` on a probe that has been ``start``-ed."""
    if callable(getattr(probe, "load_state_dict", None)):
        probe.load_state_dict(state)


def load_state(path) -> dict:
    """A training checkpoint as a dict: ``meta`` (JSON part), ``W``, ``V``, ``W0``, ``V0``
    (host arrays), ``probes`` (per probe index, its ``{key: array}``) and ``center``
    (a linearized model's expansion point ``(W, V)``, else None)."""
    arrays, meta = read(path, kinds=("train",))
    W, V = read_weights(arrays, meta, path)
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
    center = None
    if meta.get("model", "net") == "linearized":
        center = read_weights(arrays, meta, path, prefix="center.")
    return {"meta": meta, "W": W, "V": V, "W0": W0, "V0": V0, "probes": probes, "center": center}


def model_kind(model) -> str:
    """``"linearized"`` for a linearized model (it has an expansion point ``net0``), else
    ``"net"``: what a checkpoint records so that a run resumes into the same kind."""
    return "linearized" if hasattr(model, "net0") else "net"
