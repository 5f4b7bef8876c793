#!/usr/bin/env bash
# On the GPU machine: unpacks .carry/datagen.tar.xz and generates a split in parallel shards.
# usage: make_data.sh SPLIT IMAGES QUESTIONS_PER_IMAGE OUT_DIR
# Each shard writes OUT_DIR/<split>-<start>.jsonl (the first <split>.jsonl); images share OUT_DIR/images.
set -euo pipefail
split=$1 images=$2 per_image=$3 out=$4
root=$(cd "$(dirname "$0")/../.." && pwd)
tool=/tmp/datagen
[ -x "$tool/node" ] || { mkdir -p /tmp && xz -dc "$root/.carry/datagen.tar.xz" | tar -C /tmp -xf -; }
shards=$(nproc)
per_shard=$(( (images + shards - 1) / shards ))
pids=()
mkdir -p "$out"
for ((s = 0; s < shards; s++)); do
  start=$(( s * per_shard ))
  count=$(( images - start < per_shard ? images - start : per_shard ))
  (( count > 0 )) || break
  "$tool/node" "$tool/generate.mjs" --split "$split" --start "$start" --count "$count" \
    --per-image "$per_image" --out "$out" 2>>"$out.log" >/dev/null &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
echo "$split: $(cat "$out"/"$split"*.jsonl | wc -l) questions on $(ls "$out/images" | grep -c "^$split-") images in $out"
