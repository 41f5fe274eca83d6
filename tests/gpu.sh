#!/usr/bin/env bash
# Run the GPU tests (everything marked `gpu`: the CuPy half of the `backend` fixture and
# the CuPy-only tests) by hand on a machine with an NVIDIA GPU and CuPy installed
# (`pip install cupy-cuda12x`).  Fails loudly, instead of skipping everything, when the
# CuPy backend cannot start.  Extra arguments go to pytest, e.g. `tests/gpu.sh -x -k train`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHONPATH=. python -c "import tinyntk as tn; tn.set_backend('cupy'); print('CuPy backend OK')" && PYTHONPATH=. exec python -m pytest -q -rs -m gpu tests/ "$@"
