"""Files that lose nothing: atomic writes, and the tinyntk archive format.

A tinyntk file is a ``numpy.savez`` archive holding arrays by name plus one string array
``tinyntk_meta``: a JSON object with ``"format": "tinyntk"``, ``"kind"`` (``"net"`` or
``"train"``), the format ``"version"`` and whatever the writer adds.  Weights are stored
as ``W_0 … W_{L-1}`` and ``V`` (:func:`weight_arrays`).  Files are read with
``numpy.load(..., allow_pickle=False)``; a truncated, foreign or newer-version file raises
:class:`CheckpointError`, a ``ValueError``.

This module sits below the network: :meth:`tinyntk.ReLUNet.save` writes its file with it,
and :mod:`tinyntk.checkpoint` builds the training checkpoints on it.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile

import numpy

from . import backend as B
from .version import __version__

FORMAT_VERSION = 1
META_KEY = "tinyntk_meta"


class CheckpointError(ValueError):
    """A file is not a readable tinyntk file: truncated, foreign, of a newer format version,
    or it does not match the net/run it is loaded into."""


@contextlib.contextmanager
def atomic_open(path, mode: str = "wb"):
    """Open a temporary file beside ``path``; on success flush, fsync and rename it over
    ``path``; on any error remove it, so ``path`` is either the old or the new file."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    with contextlib.suppress(OSError):          # make the rename itself durable (POSIX)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def check_path(path, name: str = "path") -> str:
    """``path`` as a ``str`` if it is a non-empty ``str`` or ``os.PathLike``, else an error."""
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
    path = check_path(path)
    meta = dict(meta, format="tinyntk", version=FORMAT_VERSION, tinyntk_version=__version__)
    text = json.dumps(meta, default=_json_default)
    payload = {name: B.to_numpy(a) for name, a in arrays.items()}
    payload[META_KEY] = numpy.array(text)
    with atomic_open(path, "wb") as f:
        numpy.savez(f, **payload)


def read(path, kinds=("net", "train")):
    """``(arrays, meta)`` from a tinyntk file, every array read eagerly to the host."""
    path = check_path(path)
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
    return arrays, _checked_meta(arrays.pop(META_KEY), path, kinds)


def _checked_meta(text, path, kinds) -> dict:
    try:
        meta = json.loads(str(text[()]))
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
    return meta


# ----- weights -----------------------------------------------------------------------
def weight_arrays(W, V, prefix: str = "") -> dict:
    """The archive entries of weights ``W`` (a list) and ``V``: ``{prefix}W_l``, ``{prefix}V``."""
    arrays = {f"{prefix}W_{l}": w for l, w in enumerate(W)}
    arrays[f"{prefix}V"] = V
    return arrays


def read_weights(arrays: dict, meta: dict, path, prefix: str = "") -> tuple:
    """Undo :func:`weight_arrays`: ``(W, V)`` host arrays, ``len(W) == meta["L"]``."""
    try:
        W = [arrays[f"{prefix}W_{l}"] for l in range(int(meta["L"]))]
        V = arrays[f"{prefix}V"]
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path!r}: missing weight array {exc}") from None
    return W, V


def sizes(model) -> dict:
    """The sizes and dtype a file records for a model: ``d, m, k, L, dtype``."""
    return {"d": model.d, "m": model.m, "k": model.k, "L": model.L, "dtype": model.dtype.name}
