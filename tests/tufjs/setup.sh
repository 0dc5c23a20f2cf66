#!/usr/bin/env bash
# setup.sh — installs the pinned tuf-js packages (package-lock.json) into
# tests/tufjs/node_modules when they are missing, so tests that generate TUF
# repositories with tuf-js work from a clean clone. Needs node and npm.
set -eu
cd "$(dirname "$0")"
command -v node >/dev/null || { echo "tufjs setup: node is not installed" >&2; exit 1; }
if [ ! -f node_modules/@tufjs/models/package.json ] || [ ! -f node_modules/tuf-js/package.json ]; then
	npm ci --no-audit --no-fund --loglevel=error >&2
fi
