#!/usr/bin/env bash
# The CUDA provider's GPU check in one command, on a machine with an NVIDIA GPU and its driver:
#
#   bash providers/ort_cuda/gpu_check/run.sh [OUT_DIR] [check.py options...]
#
# From the repository root or anywhere else. Makes (or reuses) the virtual environment .venv of
# the checkout, installs ort-core[cuda] with the test dependencies from this checkout and PyPI
# (cupy-cuda12x with the CUDA 12 libraries as wheels: only the driver must be on the machine),
# then runs check.py: the cuda_gpu tests, onnx's backend node tests with and without the CUDA
# provider, the light and transformer models against the CPU provider, and a latency table.
# Results (gpu_check.json, summary.txt, logs) go to OUT_DIR, else $OUT, else a temporary folder.
#
# Environment:
#   ORT_GPU_CHECK_VENV=path         the virtual environment to make or reuse (default: .venv)
#   ORT_GPU_CHECK_PYTHON=python3.X  the interpreter that makes it (default: python3)
#   ORT_GPU_CHECK_NO_INSTALL=1      install nothing: run check.py with the python on PATH
#   ORT_GPU_CHECK_EXTRAS=cuda12     ort-cuda extras (cuda12,cudnn12 adds cuDNN for Conv)
#   ORT_GPU_CHECK_ONNXRUNTIME_GPU=1 replace onnxruntime with onnxruntime-gpu[cuda,cudnn], so the
#                                   latency table compares with onnxruntime's CUDA provider
# Exit status: check.py's (0 passed, 1 something failed, 3 no usable GPU).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$REPO"

args=()
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  args=(--out "$1")
  shift
fi

if [ "${ORT_GPU_CHECK_NO_INSTALL:-0}" = "1" ]; then
  PY=python
else
  VENV="${ORT_GPU_CHECK_VENV:-.venv}"
  "${ORT_GPU_CHECK_PYTHON:-python3}" -m venv "$VENV"
  PY="$VENV/bin/python"
  EXTRAS="${ORT_GPU_CHECK_EXTRAS:-cuda12}"
  echo "installing ort-core[cuda] and the test dependencies into $VENV ..."
  # ort_cuda is named twice: [dev] asks for plain ort-cuda, and pip (23.2, at least) does not
  # let the local "ort_cuda[extras]" satisfy that (it then looks for ort-cuda on PyPI and fails)
  "$PY" -m pip install -q ".[cuda,dev]" ./providers/ort_array ./providers/ort_cpu \
    ./providers/ort_cuda "./providers/ort_cuda[$EXTRAS]"
  if [ "${ORT_GPU_CHECK_ONNXRUNTIME_GPU:-0}" = "1" ]; then
    "$PY" -m pip uninstall -q -y onnxruntime
    if ! "$PY" -m pip install -q "onnxruntime-gpu[cuda,cudnn]"; then
      echo "onnxruntime-gpu could not be installed: keeping onnxruntime (CPU) as the baseline"
      "$PY" -m pip install -q onnxruntime
    fi
  fi
fi

exec "$PY" providers/ort_cuda/gpu_check/check.py ${args[@]+"${args[@]}"} "$@"
