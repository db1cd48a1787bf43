#!/usr/bin/env bash
# libFuzzer campaign over the addon's parsing code (native/parse.c through native/fuzz/fuzz_cmsg.c),
# with AddressSanitizer and UndefinedBehaviorSanitizer.
#   bash bench/fuzz/native.sh [SECONDS]   (default 300; needs clang: scripts/install-peers.sh)
# Builds into build/fuzz/, keeps the corpus in build/fuzz/corpus/, crash inputs in build/fuzz/.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
secs="${1:-300}"
out="$root/build/fuzz"
mkdir -p "$out/corpus"
clang -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$root/native" "$root/native/fuzz/fuzz_cmsg.c" "$root/native/parse.c" -o "$out/fuzz_cmsg"
cd "$out"
# -print_final_stats gives stat::number_of_executed_units (the executions count reported).
./fuzz_cmsg -max_total_time="$secs" -seed=1 -print_final_stats=1 -artifact_prefix="$out/" corpus 2>&1 |
  grep -E 'stat::|ERROR|SUMMARY|DONE|Done' || true
