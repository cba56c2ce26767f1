# deps.sh: install Orbit's Debian 12 build and test dependencies, only what
# is missing (idempotent). Sourced by orbit-up.sh and orbit-test.sh.
ORBIT_PACKAGES="build-essential cmake pkg-config libzmq3-dev libczmq-dev libprotobuf-c-dev
protobuf-c-compiler libcmocka-dev libjansson-dev libuv1-dev liblmdb-dev libraft-dev jq
clang-format hostname procps"

orbit_install_deps() {
    local missing=()
    for p in $ORBIT_PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "orbit: installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}
