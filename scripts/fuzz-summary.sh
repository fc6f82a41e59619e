#!/usr/bin/env bash
# One line per libFuzzer run (from its -print_final_stats=1 log): target, executions, seconds,
# exec/s, coverage (edges, features), corpus, slowest input, peak RSS.
# Usage: fuzz-summary.sh TARGET LOG
set -euo pipefail
target=$1 log=$2
stat() { grep -o "stat::$1: *[0-9]*" "$log" | grep -o '[0-9]*$' || echo '?'; }
secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o 'in [0-9]*' | grep -o '[0-9]*' || echo '?')
last=$(grep -E '^#[0-9]+' "$log" | tail -1)
cov=$(grep -o 'cov: [0-9]*' <<<"$last" | grep -o '[0-9]*' || echo '?')
ft=$(grep -o 'ft: [0-9]*' <<<"$last" | grep -o '[0-9]*' || echo '?')
corp=$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' <<<"$last" | cut -d' ' -f2 || echo '?')
printf '%-13s runs %-10s secs %-4s exec/s %-7s cov %-5s ft %-6s corpus %-12s slowest %ss rss %sMB\n' \
    "$target" "$(stat number_of_executed_units)" "$secs" "$(stat average_exec_per_sec)" \
    "$cov" "$ft" "$corp" "$(stat slowest_unit_time_sec)" "$(stat peak_rss_mb)"
