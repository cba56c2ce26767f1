#!/usr/bin/env bash
# orbit-test.sh: install dependencies, build Orbit with AddressSanitizer,
# UBSan and -Werror, and run every test (unit, integration, fault) with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/deps.sh
orbit_install_deps
BUILD=${ORBIT_TEST_BUILD:-build-test}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DORBIT_SANITIZE=ON -DORBIT_WERROR=ON \
    >/dev/null
cmake --build "$BUILD" -j "$(nproc)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$BUILD"
ctest --output-on-failure -j "$(nproc)" "$@"
