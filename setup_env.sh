#!/usr/bin/env bash
# Create the virtual environment and install sfmnet-plugin into it (editable), as the README says.
#
#   VENV=path        where the environment goes (default: .venv in the repository)
#   TORCH_PACKAGES   what to install when the environment has no working torch + torchvision
#                    (default: the CPU/CUDA 13 build pair this project is tested with)
#
# An environment that already imports torch and torchvision keeps them: nothing reinstalls torch.
set -euo pipefail
cd "$(dirname "$0")"
VENV=${VENV:-.venv}
TORCH_PACKAGES=${TORCH_PACKAGES:-"torch==2.14.1 torchvision==0.29.1"}

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PY="$VENV/bin/python"
if ! "$PY" -c 'import torch, torchvision' 2>/dev/null; then
  # shellcheck disable=SC2086  # TORCH_PACKAGES is a list of requirement specifiers
  "$PY" -m pip install $TORCH_PACKAGES
fi
# basicsr 1.4.2 is an sdist whose build needs torch: build it against the torch installed above
# instead of letting pip download a second torch into an isolated build environment.
"$PY" -m pip install "setuptools>=70.1" cython numpy
# face-metrics: dlib (prebuilt dlib-bin wheel) and its model files for the identity and landmark metrics
# onnx: sfmnet-export and sfmnet-infer --backend onnxruntime
"$PY" -m pip install --no-build-isolation -e ".[dev,face-metrics,onnx]"
# The demo's face detector (MTCNN; weights inside the wheel). --no-deps: its metadata pins an old torch.
"$PY" -m pip install --no-deps facenet-pytorch==2.6.0
"$PY" -c 'import sfmnet_plugin; print("sfmnet_plugin", sfmnet_plugin.__version__, "installed in", "'"$VENV"'")'
