#!/usr/bin/env bash
# Installs and prepares everything the test suite needs on a fresh Debian machine with Rust:
# OpenSSH (client + server, started per test by the harness), fish (non-POSIX login shell
# test), bash, and the test users. Idempotent; safe to run on every test run.
set -euo pipefail

packages=(openssh-client openssh-server bash dash fish caddy iproute2 procps git)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "scripts/ci-deps.sh: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# sshd refuses to start without its privilege-separation directory.
if [ "$(id -u)" = 0 ]; then
  mkdir -p /run/sshd
  chmod 0755 /run/sshd
fi
