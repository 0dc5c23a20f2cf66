#!/usr/bin/env bash
# Installs the Debian packages shoal needs to build, test and run its demo.
# Missing packages are installed with apt-get, as root or through sudo;
# otherwise it says what to run and exits non-zero.
set -eu

PKGS="build-essential cmake pkg-config clang libclang-rt-14-dev
libsodium-dev libuv1-dev libsqlite3-dev libinih-dev libcmocka-dev
libssl-dev libjansson-dev libcurl4-openssl-dev libseccomp-dev
libmicrohttpd-dev libyara-dev sqlite3 faketime nodejs npm"

missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

# nodejs/npm may come from elsewhere on a developer machine; only ask apt
# for them when no node is on PATH.
if command -v node >/dev/null 2>&1; then
  missing=$(echo "$missing" | tr ' ' '\n' | grep -v -e '^nodejs$' -e '^npm$' | tr '\n' ' ')
fi
missing=$(echo $missing)
[ -z "$missing" ] && exit 0

echo "shoal: installing missing Debian packages: $missing" >&2
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo"
else
  echo "shoal: cannot install packages (not root, no passwordless sudo)." >&2
  echo "shoal: run as root:  apt-get update && apt-get install -y $missing" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
