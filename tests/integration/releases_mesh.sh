#!/usr/bin/env bash
# releases_mesh.sh — 20 agents; a release published at one reaches all,
# survives 3 agents killed mid-transfer, reaches a restarted agent by
# anti-entropy alone; under-signed and replayed releases are rejected
# everywhere; tampered chunks are detected and routed around. See
# releases_mesh.py for the steps.
set -eu
: "${SHOAL_BIN:?set SHOAL_BIN to the shoal binary}"
: "${SHOAL_SRC:?set SHOAL_SRC to the source dir}"
command -v python3 >/dev/null || { echo "releases_mesh: python3 is needed" >&2; exit 1; }
exec python3 "$SHOAL_SRC/tests/integration/releases_mesh.py"
