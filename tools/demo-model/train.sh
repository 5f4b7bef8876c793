#!/usr/bin/env bash
# Trains the demo model from nothing to resources/demo-model on a CPU, in one command (about two
# hours on 2 cores). Resumable: rerun the same command after an interruption.
#   bash tools/demo-model/train.sh [--fixtures]        work folder: $DEMO_WORK (default .cache/demo-model)
# Steps: the pinned virtualenv (setup.sh), the training and validation data from the project's own
# generator (`npm run cli -- data`, two processes), train.py, and with --fixtures make_fixtures.py.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${DEMO_WORK:-$root/.cache/demo-model}
data=$work/vqa
cd "$root"

[ -x tools/demo-model/.venv/bin/python ] || bash tools/demo-model/setup.sh

# 20 000 images with all six families as one chat each, 10 000 with two (so scenes with a single
# object, which a position question rules out, are seen too), and 1 200 validation questions.
generate() { # split start count per-image
  local done="$data/.$1-$2.done"
  [ -f "$done" ] && return
  npx tsx src/cli/index.ts data --out "$data" --scenes --split "$1" --start "$2" --count "$3" --per-image "$4" > /dev/null
  touch "$done"
}
mkdir -p "$data"
( generate train 0 10000 6; generate train 20000 5000 2 ) &
( generate train 10000 10000 6; generate train 25000 5000 2; generate val 0 1200 1 ) &
wait
echo "data: $(cat "$data"/train*.jsonl | wc -l) training questions, $(cat "$data"/val*.jsonl | wc -l) validation questions in $data"

tools/demo-model/.venv/bin/python tools/demo-model/train.py --data "$data" --work "$work/run" --out resources/demo-model \
  --vision-samples 16000 --text-samples 64000 --language-samples 40000 --language-lr 1e-3
if [ "${1:-}" = "--fixtures" ]; then
  tools/demo-model/.venv/bin/python tools/demo-model/make_fixtures.py --demo resources/demo-model --out tests/fixtures/reference
fi
