#!/usr/bin/env bash
# Builds the virtual environment in which benchmarks/bo.py runs repurpose.bo side by
# side with its peers: Optuna (TPE and GPSampler), scikit-optimize, emukit and HEBO 0.3.6.
# The peers are not dependencies of the package; they live only in this environment.
#
#     benchmarks/make_bo_peers.sh [DIR]          # default DIR: .venv-bo-peers
#     DIR/bin/python benchmarks/bo.py suite ...
#
# torch is the CPU build (Optuna's GPSampler and HEBO need it), from PyTorch's CPU index;
# set TORCH_INDEX= (empty) where pip finds a CPU wheel by itself (a local wheelhouse). Where
# that index cannot be reached (this project's machines reach PyPI only), the script says so
# and goes on without it.
# The toolkit's own pins
# (constraints.txt: numpy 1.23.5, scipy 1.12.0, GPy, scikit-learn) hold here too, so every
# method runs on the same numerical stack.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$root/.venv-bo-peers}"
python3.11 -m venv "$dir"
"$dir/bin/pip" install -q --upgrade pip
"$dir/bin/pip" install -q -c "$root/constraints.txt" -e "$root"
torch_index="${TORCH_INDEX-https://download.pytorch.org/whl/cpu}"
# pip retries an index it cannot reach for minutes, package by package: look once first.
if [ -n "$torch_index" ] && ! "$dir/bin/python" - "$torch_index" <<'PY'
import socket, sys, urllib.parse
url = urllib.parse.urlparse(sys.argv[1])
try:
    socket.create_connection((url.hostname, url.port or 443), timeout=10).close()
except OSError:
    sys.exit(1)
PY
then
    echo "make_bo_peers.sh: $torch_index cannot be reached; torch comes from pip's own" \
         "indexes (TORCH_INDEX= says so without the check)" >&2
    torch_index=
fi
"$dir/bin/pip" install -q -c "$root/constraints.txt" -c "$root/benchmarks/bo_peers.txt" \
    ${torch_index:+--extra-index-url "$torch_index"} torch
"$dir/bin/pip" install -q -c "$root/constraints.txt" -c "$root/benchmarks/bo_peers.txt" \
    optuna scikit-optimize emukit HEBO
"$dir/bin/python" - <<'PY'
import importlib.metadata as md
for name in ("torch", "optuna", "scikit-optimize", "emukit", "HEBO", "numpy", "scipy", "GPy"):
    print(f"{name} {md.version(name)}")
PY
