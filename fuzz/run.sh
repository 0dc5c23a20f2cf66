#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time over a copy of its seed
# corpus (so the repository's corpus is never modified by a test run).
# Usage: fuzz/run.sh TARGET CORPUS_DIR   (SHOAL_FUZZ_SECONDS, default 15)
set -eu
target=$1; corpus=$2
secs=${SHOAL_FUZZ_SECONDS:-15}
[ -d "$corpus" ] && [ -n "$(ls -A "$corpus")" ] || { echo "fuzz: no seed corpus in $corpus" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$corpus"/. "$work"/
exec "$target" -max_total_time="$secs" -max_len=70000 -rss_limit_mb=2048 \
  -print_final_stats=1 "$work"
