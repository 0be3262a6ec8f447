#!/usr/bin/env bash
# Packs what the GPU checks need into .device-kit/ (git-ignored, ~45 MB) for
# a GPU machine that has no network and maybe no Node: this Node binary, the
# installed node_modules (without the compilers and type packages the checks
# do not use), and the built addons and dist/. scripts/device-check.sh
# unpacks it there and runs the checks. Run after `npm ci` and
# `npm run build:cuda` on an x86-64 Linux machine like the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
for f in dist/index.js build/Release/guardkernel.node build-cuda/Release/guardkernel_cuda.node; do
  [ -f "$f" ] || { echo "device-kit: $f is missing (npm ci, then npm run build:cuda)" >&2; exit 1; }
done
rm -rf .device-kit
mkdir -p .device-kit
xz -T0 -6 -c "$(command -v node)" > .device-kit/node.xz
tar -cf - --exclude=node_modules/typescript --exclude='node_modules/@types' \
  --exclude=node_modules/prebuildify --exclude=node_modules/cmake-js --exclude=node_modules/.cache node_modules |
  xz -T0 -6 > .device-kit/node_modules.tar.xz
tar -cf - dist build/Release/guardkernel.node build-cuda/Release/guardkernel_cuda.node | xz -T0 -6 > .device-kit/built.tar.xz
node -v > .device-kit/node-version
git rev-parse HEAD > .device-kit/commit
du -sh .device-kit/*
