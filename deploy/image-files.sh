#!/bin/sh
# Copies what the image runs from a built tree (after `npx tsc -b`) into DEST: each runtime workspace's
# package.json, compiled JavaScript, own node_modules and bin. Left out: sources, tests, test fixtures
# (`testing`), type declarations, source maps, build caches, the local-stack tooling (libs/stack), the
# end-to-end tests and the benchmarks. The Dockerfile runs it; test/e2e/src/deploy.e2e.test.ts runs it
# too and loads every service from the result.
set -eu
dest=${1:?usage: image-files.sh DEST}
for dir in libs/* services/* cli; do
  case "$dir" in libs/stack) continue ;; esac
  mkdir -p "$dest/$dir"
  cp "$dir/package.json" "$dest/$dir/"
  cp -R "$dir/dist" "$dest/$dir/dist"
  if [ -d "$dir/node_modules" ]; then cp -R "$dir/node_modules" "$dest/$dir/node_modules"; fi
  if [ -d "$dir/bin" ]; then cp -R "$dir/bin" "$dest/$dir/bin"; fi
done
find "$dest" -path '*/node_modules' -prune -o -type d -name testing -print | while read -r d; do rm -rf "$d"; done
find "$dest" -path '*/node_modules' -prune -o -type f \( -name '*.test.js' -o -name 'testing.js' -o -name '*.d.ts' -o -name '*.map' -o -name '*.tsbuildinfo' \) -print | while read -r f; do rm -f "$f"; done
