#!/usr/bin/env bash
# One line per libFuzzer run: target, executions, seconds, exec/s, coverage, corpus size.
# Usage: fuzz-summary.sh TARGET LOG
set -euo pipefail
target=$1 log=$2
runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o 'in [0-9]*' | grep -o '[0-9]*' || echo '?')
speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
last=$(grep -E '^#[0-9]+' "$log" | tail -1)
cov=$(grep -o 'cov: [0-9]*' <<<"$last" | grep -o '[0-9]*' || echo '?')
ft=$(grep -o 'ft: [0-9]*' <<<"$last" | grep -o '[0-9]*' || echo '?')
corp=$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' <<<"$last" | cut -d' ' -f2 || echo '?')
printf '%-14s runs %-10s secs %-5s exec/s %-8s cov %-6s ft %-6s corpus %s\n' \
    "$target" "$runs" "$secs" "$speed" "$cov" "$ft" "$corp"
