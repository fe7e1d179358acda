#!/usr/bin/env bash
# Create benchmarks/peers/.venv-alibi: alibi-detect with its PyTorch backend, for timing its
# MMDDrift beside prodwrap's MMD. alibi-detect pins numpy<2, so it cannot share the project venv.
#
# torch is installed first and pinned to 2.13.0, the CPU build that lies on this machine's disk:
# asked for as a plain range (as alibi-detect's [torch] extra does) with no torch present, pip
# would fetch a multi-GB CUDA build instead.
#
# Usage: bash benchmarks/peers/setup.sh   (idempotent; PYTHON=python3.11 to choose the interpreter)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv-alibi"
PYTHON="${PYTHON:-python3}"

TORCH_VERSION="2.13.0"
ALIBI_VERSION="0.13.0"

if [[ ! -x "$VENV/bin/python" ]]; then
    "$PYTHON" -m venv "$VENV"
fi
# Keep the venv out of git and out of ruff (both honour a .gitignore inside it), as venv does on 3.13+.
printf '*\n' >"$VENV/.gitignore"

"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "torch==$TORCH_VERSION"
"$VENV/bin/python" -m pip install --quiet "alibi-detect[torch]==$ALIBI_VERSION" "torch==$TORCH_VERSION" "numpy<2"

"$VENV/bin/python" - <<'EOF'
import alibi_detect, numpy, torch
print(f"alibi-detect {alibi_detect.__version__}, torch {torch.__version__}, numpy {numpy.__version__}")
EOF
