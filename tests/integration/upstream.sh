#!/usr/bin/env bash
# upstream.sh — an agent configured with `upstream = URL` pulls an HTTP TUF
# repository (made by `shoal release`, served on 127.0.0.1), verifies it and
# announces it to a 3-agent mesh; an under-signed version is refused and
# never announced; the next good one reaches all; a restart does not
# re-announce; SIGTERM stays prompt while a pull hangs. See upstream.py.
set -eu
: "${SHOAL_BIN:?set SHOAL_BIN to the shoal binary}"
: "${SHOAL_SRC:?set SHOAL_SRC to the source dir}"
command -v python3 >/dev/null || { echo "upstream: python3 is needed" >&2; exit 1; }
exec python3 "$SHOAL_SRC/tests/integration/upstream.py"
