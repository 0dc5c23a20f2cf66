#!/usr/bin/env bash
# stream_ping.sh — memberlist's TCP fallback between real agents: one of 4
# agents on 127.0.0.1 drops every datagram it receives (fault injection,
# SHOAL_TEST_DROP_UDP=1: a host behind a firewall that drops UDP), so every
# probe of it fails over UDP, directly and indirectly. Its stream still
# answers: for 25 s nobody suspects it, the others count probes that only
# the stream answered, and it suspects nobody either. Then the control: one
# of the others restarted with --stream-pings 0 suspects it at its first
# probe and sends no stream ping. See stream_ping.py.
set -eu
: "${SHOAL_BIN:?set SHOAL_BIN to the shoal binary}"
: "${SHOAL_SRC:?set SHOAL_SRC to the source dir}"
command -v python3 >/dev/null || { echo "stream_ping: python3 is needed" >&2; exit 1; }
exec python3 "$SHOAL_SRC/tests/integration/stream_ping.py"
