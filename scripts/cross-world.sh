#!/usr/bin/env bash
# Cross-world evaluation: train on one simulated world, test on the other, next to the
# same-world figures; labelled and unlabelled (injected) training. Writes eval JSON per
# cell and prints one table. Usage: scripts/cross-world.sh DIR [ALGORITHM]
set -euo pipefail
dir=${1:?data directory}
algorithm=${2:-forest}
bin=${OBGUARD_MODELS:-target/release/obguard-models}
mkdir -p "$dir"
[ -s "$dir/a-train.jsonl" ] || "$bin" simulate --world a --seed 1 --out "$dir/a-train.jsonl"
[ -s "$dir/a-test.jsonl" ] || "$bin" simulate --world a --seed 2 --out "$dir/a-test.jsonl"
[ -s "$dir/b-train.jsonl" ] || "$bin" simulate --world b --seed 11 --out "$dir/b-train.jsonl"
[ -s "$dir/b-test.jsonl" ] || "$bin" simulate --world b --seed 12 --out "$dir/b-test.jsonl"
for w in a b; do
  "$bin" train --data "$dir/$w-train.jsonl" --algorithm "$algorithm" --seed 7 \
    --created 2026-11-25T00:00:00Z --out "$dir/$w-labelled.model" 2> "$dir/$w-labelled.train.log"
  "$bin" train --unlabelled --data "$dir/$w-train.jsonl" --algorithm "$algorithm" --seed 7 \
    --created 2026-11-25T00:00:00Z --out "$dir/$w-unlabelled.model" 2> "$dir/$w-unlabelled.train.log"
done
# Rules (PSD2 unattended-access limit, payment velocity) on, as `eval` does by default, and
# the model alone (--no-rules).
printf '%-10s %-10s %-6s %-6s %9s %10s %9s %8s\n' trained_on labels tested rules caught20 non_allow blocked auc
for w in a b; do
  for kind in labelled unlabelled; do
    for t in a b; do
      for rules in on off; do
        flag=(); [ "$rules" = off ] && flag=(--no-rules)
        out="$dir/eval-$w-$kind-on-$t-rules-$rules.json"
        "$bin" eval --json "${flag[@]}" --model "$dir/$w-$kind.model" --data "$dir/$t-test.jsonl" --out "$out"
        python3 - "$out" "$w" "$kind" "$t" "$rules" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
d, l = r["detection"], r["legitimate"]["shares"]
print(f"{'world '+sys.argv[2]:<10} {sys.argv[3]:<10} {sys.argv[4]:<6} {sys.argv[5]:<6} {d['caught_within_share']*100:8.1f}% {l['non_allow']*100:9.3f}% {l['block']*100:8.4f}% {r['roc_auc']:8.3f}")
PY
      done
    done
  done
done
