#!/usr/bin/env bash
# Builds the capacity benchmark's load generator (bench/capacity/loadgen.c) into build/bench/loadgen
# when the binary is missing or older than the source (or this script); prints the binary's path.
#   bash bench/capacity/build-loadgen.sh [--force]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
src="$root/bench/capacity/loadgen.c"
bin="$root/build/bench/loadgen"
cc="${CC:-cc}"
if [[ "${1:-}" != --force && -x "$bin" && "$bin" -nt "$src" && "$bin" -nt "$0" ]]; then
  echo "$bin"
  exit 0
fi
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "build-loadgen.sh: no C compiler ($cc) found" >&2
  exit 1
fi
mkdir -p "$(dirname "$bin")"
# Build beside the target and rename: a concurrent run never sees a half-written binary.
tmp="$bin.$$.tmp"
trap 'rm -f "$tmp"' EXIT
"$cc" -O2 -Wall -Wextra -o "$tmp" "$src" -lm
mv -f "$tmp" "$bin"
echo "$bin"
