#!/usr/bin/env bash
# Installs every Debian 12 package that building, testing and demonstrating ebb needs.
# Idempotent: packages already present are skipped quickly by apt.
set -euo pipefail

packages=(
  build-essential cmake pkg-config ccache git ca-certificates
  clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev
  libboost-dev libboost-system-dev
  protobuf-compiler libprotobuf-dev libgrpc++-dev protobuf-compiler-grpc
  libeigen3-dev catch2 libbenchmark-dev libtomlplusplus-dev libcli11-dev libspdlog-dev libfmt-dev
  nlohmann-json3-dev libcpp-httplib-dev libsystemd-dev
  qemu-system-x86 busybox-static cpio kmod
  iproute2 openssl curl procps util-linux valgrind socat
  prometheus etcd-server etcd-client
  systemd dpkg-dev debootstrap
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi
