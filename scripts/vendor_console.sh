#!/usr/bin/env bash
# Re-vendors the console's third-party ES modules from the npm registry (maintainers only;
# nothing at set-up or run time needs npm). Bump a version here, run it, check the console
# in a browser (`pytest tests/console`), commit the files and the new checksums it prints.
set -euo pipefail
PREACT=10.29.8 HTM=3.1.1 CHARTS=5.2.1
out="$(cd "$(dirname "$0")/.." && pwd)/tradex/console/static/vendor"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "preact@$PREACT" "htm@$HTM" "lightweight-charts@$CHARTS" >/dev/null
for f in *.tgz; do mkdir "${f%.tgz}"; tar xzf "$f" -C "${f%.tgz}"; done
cp "preact-$PREACT/package/dist/preact.module.js" "$out/preact.module.js"
cp "preact-$PREACT/package/hooks/dist/hooks.module.js" "$out/preact-hooks.module.js"
cp "htm-$HTM/package/dist/htm.module.js" "$out/htm.module.js"
cp "lightweight-charts-$CHARTS/package/dist/lightweight-charts.standalone.production.mjs" "$out/lightweight-charts.mjs"
cp "preact-$PREACT/package/LICENSE" "$out/licenses/preact-LICENSE"
cp "htm-$HTM/package/LICENSE" "$out/licenses/htm-LICENSE"
cp "lightweight-charts-$CHARTS/package/LICENSE" "$out/licenses/lightweight-charts-LICENSE"
cd "$out" && sha256sum ./*.js ./*.mjs
