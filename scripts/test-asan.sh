#!/usr/bin/env bash
# `npm run test:asan`: rebuilds the core addon with AddressSanitizer and
# UBSan, runs the suite on it (native pass only: the fallback has no C++), then
# restores the normal build whatever happened.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node.h ]; then
  export npm_config_nodedir=/usr
fi
NODE_GYP=(node-gyp)
command -v node-gyp >/dev/null 2>&1 || NODE_GYP=(node "$(dirname "$(dirname "$(command -v npm)")")/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js")

restore() {
  echo "test:asan: restoring the normal build"
  "${NODE_GYP[@]}" rebuild >/dev/null
}
trap restore EXIT

"${NODE_GYP[@]}" rebuild -- -Dgk_sanitize=1 >/dev/null
# A sanitizer run over an uninstrumented addon would prove nothing: check.
if [ "$(nm -D build/Release/guardkernel.node | grep -c '__asan_')" = 0 ]; then
  echo "test:asan: the rebuilt addon has no ASan instrumentation" >&2
  exit 1
fi
echo "test:asan: addon built with -fsanitize=address,undefined"

CXX_BIN=${CXX:-g++}
ASAN_LIB=$("$CXX_BIN" -print-file-name=libasan.so)
UBSAN_LIB=$("$CXX_BIN" -print-file-name=libubsan.so)
# Node itself is not instrumented: the runtime must be preloaded. Node keeps
# memory alive until exit by design, so leak checking is off; any other
# report aborts the process and fails the test that ran it.
export LD_PRELOAD="$ASAN_LIB:$UBSAN_LIB"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export GUARDKERNEL_EXPECT_NATIVE=1 GUARDKERNEL_NATIVE= GUARDKERNEL_HOST_SANITIZE=1
node node_modules/vitest/vitest.mjs run "$@"
