#!/usr/bin/env bash
# Packs what the GPU machine needs to generate the training data itself (it has no Node and no npm):
# the Node binary, the data generator bundled into one file, and sharp with its libvips.
# Writes .carry/datagen.tar.xz (about 32 MB; .carry/ is git-ignored, name it in the device call's carry).
set -euo pipefail
cd "$(dirname "$0")/../.."
stage=.carry/datagen
rm -rf "$stage" && mkdir -p "$stage/node_modules/@img"
npx esbuild tools/data/generate.ts --bundle --platform=node --format=esm --target=node20 \
  --external:sharp --outfile="$stage/generate.mjs" --log-level=warning
cp "$(command -v node)" "$stage/node"
cp -r node_modules/sharp node_modules/detect-libc node_modules/semver "$stage/node_modules/"
cp -r node_modules/@img/sharp-linux-x64 node_modules/@img/sharp-libvips-linux-x64 node_modules/@img/colour "$stage/node_modules/@img/"
tar -C .carry -cf - datagen | xz -T0 -6 > .carry/datagen.tar.xz
rm -rf "$stage"
ls -l .carry/datagen.tar.xz
