#!/usr/bin/env bash
# Installs everything kyozon needs to build and test, from Debian's packages.
# Safe to run again: packages already present are not reinstalled.
#   scripts/setup.sh          what building and running the server needs, and the tests
#   scripts/setup.sh --arm64  also the AArch64 cross compiler and qemu-user, which
#                             scripts/test.sh uses to check the ARM NEON kernels
set -euo pipefail

PKGS=(build-essential cmake pkg-config git python3 curl
      libpcre2-dev libutf8proc-dev libjansson-dev libuv1-dev libcurl4-openssl-dev libyaml-dev
      libsqlite3-dev sqlite3 libpq-dev postgresql
      clang libclang-rt-14-dev)

if [ "${1:-}" = "--arm64" ]; then PKGS+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user); fi

# Node.js runs the client-library tests; install Debian's only where node is
# missing (installing it over an existing node fails).
if ! command -v node >/dev/null 2>&1; then PKGS+=(nodejs npm); fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The official OpenAI client library for the API tests (pinned in
# tests/node/package-lock.json).
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -f "$root/tests/node/node_modules/openai/package.json" ]; then
  (cd "$root/tests/node" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
