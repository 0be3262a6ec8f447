#!/usr/bin/env bash
# The GPU checks in one run, for a lent GPU machine without network (and
# maybe without Node): unpacks .device-kit/ (made here by
# scripts/device-kit.sh), then runs the GPU tests, `bench/run.js gpu`, and
# compute-sanitizer (memcheck, racecheck, synccheck) on
# scripts/gpu-workload.js. Everything lands in $1 (default: $OUT, else
# ./device-out), seven files at most; a summary ends the output.
# GK_DEVICE_STAGES picks stages (default "tests bench sanitize"); each stage
# has a time limit so the whole run stays under ten minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-device-out}}
mkdir -p "$out"

unxz_to() {
  if command -v xz >/dev/null 2>&1; then xz -dc "$1"; else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"; fi
}
[ -f .device-kit/node_modules.tar.xz ] || { echo "device-check: no .device-kit/ (run scripts/device-kit.sh and carry .device-kit)" >&2; exit 1; }
# The machine's Node if it is 20 or newer, else the kit's.
if [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -lt 20 ]; then
  mkdir -p /tmp/gk-node && unxz_to .device-kit/node.xz > /tmp/gk-node/node && chmod +x /tmp/gk-node/node
  export PATH=/tmp/gk-node:$PATH
fi
[ -d node_modules ] || unxz_to .device-kit/node_modules.tar.xz | tar -xf -
unxz_to .device-kit/built.tar.xz | tar -xf -

{
  echo "kit built from commit $(cat .device-kit/commit); node $(node -v)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
  node dist/cli/main.js doctor 2>&1
} > "$out/machine.txt"
cat "$out/machine.txt"

stages=" ${GK_DEVICE_STAGES:-tests bench sanitize} "
tests=skipped bench=skipped san=skipped

if [[ $stages == *" tests "* ]]; then
  echo "== GPU tests"
  GUARDKERNEL_REQUIRE_GPU=1 timeout 240 node node_modules/vitest/vitest.mjs run test/gpu --reporter=default --reporter=json --outputFile.json="$out/test-gpu.json" > "$out/test-gpu.log" 2>&1
  tests=$?
  tail -n 15 "$out/test-gpu.log"
fi

if [[ $stages == *" bench "* ]]; then
  echo "== bench/run.js gpu"
  timeout 180 node bench/run.js gpu > "$out/bench-gpu.log" 2>&1
  bench=$?
  [ -f bench/results/gpu.json ] && cp bench/results/gpu.json "$out/gpu.json"
  grep -E '^(- |###)' "$out/bench-gpu.log" || tail -n 20 "$out/bench-gpu.log"
fi

if [[ $stages == *" sanitize "* ]]; then
  san=0
  if command -v compute-sanitizer >/dev/null 2>&1; then
    for tool in memcheck racecheck synccheck; do
      echo "== compute-sanitizer --tool $tool"
      timeout 60 compute-sanitizer --tool "$tool" --error-exitcode 9 node scripts/gpu-workload.js >> "$out/sanitizer.log" 2>&1
      rc=$?
      echo "$tool: exit $rc" | tee -a "$out/sanitizer.log"
      [ "$rc" = 0 ] || san=1
    done
  else
    echo "compute-sanitizer not found" | tee "$out/sanitizer.log"
    san=1
  fi
fi

echo "== summary: GPU tests exit $tests, bench exit $bench, sanitizers exit $san (0: clean)"
for rc in "$tests" "$bench" "$san"; do [ "$rc" = 0 ] || [ "$rc" = skipped ] || exit 1; done
