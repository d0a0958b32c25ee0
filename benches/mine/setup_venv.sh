#!/usr/bin/env bash
# The throwaway Python environment of the mining benchmark: sentence-transformers
# (its mine_hard_negatives is the peer), datasets (which it needs), faiss-cpu and
# numpy (the plain peer). usage: benches/mine/setup_venv.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=benches/.venv-mine
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import numpy, faiss" 2>/dev/null || "$venv/bin/pip" install --progress-bar off numpy faiss-cpu
"$venv/bin/python" -c "import sentence_transformers, datasets" 2>/dev/null \
  || "$venv/bin/pip" install --progress-bar off sentence-transformers datasets \
  || echo "sentence-transformers did not install: the numpy + faiss peer runs alone"
