#!/usr/bin/env bash
# Installs the Debian 12 packages rlog needs to build, test and benchmark,
# but only those that are missing. Idempotent; uses sudo only when not root.
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config    # toolchain
  libisal-dev                         # CRC32C (crc32_iscsi)
  libnng-dev                          # transport
  libmsgpack-dev                      # wire format (msgpack-c)
  libcmocka-dev                       # tests
  libraft-dev libuv1-dev              # reference Raft client and benchmark peer
  clang libclang-rt-14-dev            # libFuzzer and sanitizers runtime
  clang-format
  openssl                             # throwaway CAs in the TLS tests
  bsdutils                            # script(1): a terminal for the progress test
)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps.sh: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
