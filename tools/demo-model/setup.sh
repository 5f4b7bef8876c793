#!/usr/bin/env bash
# Creates tools/demo-model/.venv (git-ignored) with the pinned training and fixture dependencies.
# usage: bash tools/demo-model/setup.sh        then: tools/demo-model/.venv/bin/python tools/demo-model/train.py ...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-python3}
[ -x "$here/.venv/bin/python" ] || "$python" -m venv "$here/.venv"
"$here/.venv/bin/pip" install --disable-pip-version-check -q --upgrade pip
"$here/.venv/bin/pip" install --disable-pip-version-check -r "$here/requirements.txt"
"$here/.venv/bin/python" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'threads', torch.get_num_threads())"
