#!/usr/bin/env bash
# Developer entry point: installs what is missing, builds, runs the demo
# cluster or the tests.
#
#   scripts/dev.sh deps           install the Debian packages the build needs
#   scripts/dev.sh build          deps, then build into build/
#   scripts/dev.sh demo           build, then start a local demo cluster
#   scripts/dev.sh test           build and run every test, normally and
#                                 under AddressSanitizer + UBSan
#   scripts/dev.sh soak           build, then run the long Raft simulator soak
#   scripts/dev.sh scale          build, then sign 20,000 certificates and
#                                 join a new manager that catches up
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
packages=(build-essential cmake pkg-config libssl-dev openssl liblmdb-dev libuv1-dev
          libmsgpack-dev libcmocka-dev python3 procps)

deps() {
    local missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "Installing missing packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# build DIR [cmake options...]
build() {
    local dir=$1
    shift
    cmake -S "$root" -B "$dir" -DSWARMPKI_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" -j "$(nproc)"
}

run_tests() {
    local dir=$1
    shift
    build "$dir" "$@"
    (cd "$dir" && ctest --output-on-failure -j 2)
}

case "${1:-}" in
deps)
    deps
    ;;
build)
    deps
    build "$root/build"
    ;;
demo)
    deps
    build "$root/build"
    "$root/scripts/demo.sh" "$root/build/node/swarmpki"
    ;;
test)
    deps
    echo "== tests, release build =="
    run_tests "$root/build"
    echo "== tests, AddressSanitizer + UndefinedBehaviorSanitizer build =="
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run_tests "$root/build-sanitize" -DSWARMPKI_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
    ;;
soak)
    deps
    build "$root/build"
    cmake --build "$root/build" --target soak
    ;;
scale)
    deps
    build "$root/build"
    "$root/scripts/scale-test.sh" "$root/build" "${2:-20000}"
    ;;
*)
    sed -n '2,/^set/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
