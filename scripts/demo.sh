#!/usr/bin/env bash
# obguard demo: Envoy + obguard.wasm in front of the demo Open Banking API.
#
#   scripts/demo.sh walk   start everything, walk through allowed / refused calls, stop
#   scripts/demo.sh up     start everything and leave it running (stop with `down`)
#   scripts/demo.sh down   stop what `up` started
#
# Expects `make build` to have run (the Makefile's demo targets do that). Ports are fixed by
# envoy/demo/envoy.yaml: listener 10000, admin 9901, demo bank 18080, SOC webhook 18090.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
command -v curl >/dev/null || { echo "demo: curl is required (apt-get install curl)" >&2; exit 1; }
cd "$ROOT"
RUN_DIR="$ROOT/.run/demo"
ENVOY_BIN="${ENVOY_BIN:-$ROOT/.tools/bin/envoy}"
FIXTURES="${FIXTURES_BIN:-$ROOT/target/debug/obguard-fixtures}"
MINT="${MINT_BIN:-$ROOT/target/debug/obguard-mint}"
LISTENER=127.0.0.1:10000
ADMIN=127.0.0.1:9901
BANK_PORT=18080
WEBHOOK_PORT=18090
MODELS="${MODELS_BIN:-$ROOT/target/debug/obguard-models}"
ISS=https://demo-idp.obguard.test
AUD=https://demo-bank.obguard.test

bold() { printf '\033[1m%s\033[0m\n' "$*"; }

stop() {
  for name in envoy bank webhook; do
    if [[ -f "$RUN_DIR/$name.pid" ]]; then
      kill "$(cat "$RUN_DIR/$name.pid")" 2>/dev/null || true
      rm -f "$RUN_DIR/$name.pid"
    fi
  done
}

start() {
  stop
  mkdir -p "$RUN_DIR"
  for port in 10000 9901 $BANK_PORT $WEBHOOK_PORT; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "demo: port $port on 127.0.0.1 is already in use (another demo? try: make demo-down)" >&2
      exit 1
    fi
  done
  "$FIXTURES" demo-bank --port "$BANK_PORT" >"$RUN_DIR/bank.log" 2>&1 &
  echo $! >"$RUN_DIR/bank.pid"
  rm -f "$RUN_DIR/events.jsonl"
  "$FIXTURES" webhook --port "$WEBHOOK_PORT" --out "$RUN_DIR/events.jsonl" >"$RUN_DIR/webhook.log" 2>&1 &
  echo $! >"$RUN_DIR/webhook.pid"
  "$ENVOY_BIN" -c envoy/demo/envoy.yaml --concurrency 1 --use-dynamic-base-id \
    --file-flush-interval-msec 100 --log-path "$RUN_DIR/envoy.log" >"$RUN_DIR/access.log" \
    2>"$RUN_DIR/records.jsonl" &
  echo $! >"$RUN_DIR/envoy.pid"
  for _ in $(seq 1 100); do
    if curl -fsS "http://$ADMIN/ready" 2>/dev/null | grep -q LIVE; then
      return 0
    fi
    if ! kill -0 "$(cat "$RUN_DIR/envoy.pid")" 2>/dev/null; then
      echo "demo: Envoy exited; its log:" >&2
      tail -n 30 "$RUN_DIR/envoy.log" >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "demo: Envoy not ready after 20 s; see $RUN_DIR/envoy.log" >&2
  exit 1
}

mint() { # client_id scope key alg [extra mint args...]
  local client=$1 scope=$2 key=$3 alg=$4
  shift 4
  "$MINT" --key "envoy/demo/keys/DEMO-ONLY-issuer-$key.private.pem" --kid "demo-$key" --alg "$alg" \
    --iss "$ISS" --aud "$AUD" --client-id "$client" --scope "$scope" "$@"
}

# call TITLE METHOD PATH [TOKEN [HEADER...]]
call() {
  local title=$1 method=$2 path=$3 token=${4:-}
  shift 3; shift || true
  local args=(-s -o "$RUN_DIR/body" -D "$RUN_DIR/headers" -X "$method" --path-as-is)
  [[ -n "$token" ]] && args+=(-H "authorization: Bearer $token")
  local h
  for h in "$@"; do args+=(-H "$h"); done
  [[ "$method" == POST ]] && args+=(-H 'content-type: application/json' --data '{"Data":{}}')
  echo
  bold "▶ $title"
  echo "  $method $path${token:+   (Bearer ${token:0:24}…)}"
  curl "${args[@]}" "http://$LISTENER$path" >/dev/null || true
  local status
  status=$(head -n1 "$RUN_DIR/headers" | tr -d '\r')
  echo "  ← $status"
  grep -iE '^(www-authenticate|x-fapi-interaction-id):' "$RUN_DIR/headers" | tr -d '\r' | sed 's/^/    /'
  python3 - "$RUN_DIR/body" <<'PY'
import json, sys
raw = open(sys.argv[1], "rb").read()
try:
    body = json.loads(raw)
except ValueError:
    print("    body:", raw[:200].decode("utf-8", "replace"))
    sys.exit()
seen = body.pop("seen_identity", None) if isinstance(body, dict) else None
text = json.dumps(body, separators=(",", ":"))
print("    body:", text if len(text) <= 160 else text[:160] + "…")
if seen:
    print("    the bank saw:", ", ".join(f"{k}={v}" for k, v in sorted(seen.items())))
PY
}

walk() {
  start
  trap stop EXIT
  bold "obguard demo — Envoy $("$ENVOY_BIN" --version | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -1) on $LISTENER, demo bank on 127.0.0.1:$BANK_PORT"
  echo "Two demo TPPs: aggregator-tpp (scopes: accounts transactions:read, PS256)"
  echo "               payments-tpp   (scopes: payments, ES256)"
  local agg pay expired tampered
  # The customer consented to two of the bank's three accounts: the token lists them
  # (`ob_account_ids`), and obguard refuses the third inline (consent-bound `{AccountId}`).
  agg=$(mint aggregator-tpp "accounts transactions:read" rsa PS256 --claims '{"ob_account_ids":["22289","31820"]}')
  pay=$(mint payments-tpp "payments" ec ES256)
  expired=$(mint aggregator-tpp "accounts" rsa PS256 --shift -7200 --ttl 600)
  # Same header and signature, payload re-written to grant payments: the signature no longer fits.
  local forged_payload
  # Its claims pass every check obguard makes before the signature (issuer, audience, time,
  # RFC 9068 claims), so the signature is what refuses it.
  local now
  now=$(date +%s)
  forged_payload=$(printf '{"iss":"%s","aud":"%s","sub":"psu-aggregator-tpp","client_id":"aggregator-tpp","scope":"accounts payments","exp":%s,"iat":%s,"jti":"forged-%s"}' \
    "$ISS" "$AUD" "$((now + 600))" "$now" "$now" | base64 -w0 | tr '+/' '-_' | tr -d '=')
  tampered="$(cut -d. -f1 <<<"$agg").$forged_payload.$(cut -d. -f3 <<<"$agg")"

  # The aggregator's usual context: UK, its hosting network, its client, a customer present.
  local usual=(-H "x-client-geo-country: GB" -H "x-client-asn: AS2856" -H "x-forwarded-for: 203.0.113.10"
    -H "user-agent: AcmeAggregator/2.3" -H "x-fapi-customer-ip-address: 198.51.100.7")
  local usual_headers=("x-client-geo-country: GB" "x-client-asn: AS2856" "x-forwarded-for: 203.0.113.10"
    "user-agent: AcmeAggregator/2.3" "x-fapi-customer-ip-address: 198.51.100.7")
  # 40 usual calls: past the client's warm-up (its first 32 requests are not judged by the model).
  for i in $(seq 1 40); do
    curl -s -o /dev/null "${usual[@]}" -H "authorization: Bearer $agg" "http://$LISTENER/accounts/22289/transactions"
    sleep 0.02
  done
  call "Aggregator lists accounts (allowed; the bank sees obguard's identity headers)" GET /accounts "$agg" "${usual_headers[@]}"
  call "Aggregator reads transactions in its usual pattern (model: allow)" GET /accounts/22289/transactions "$agg" "${usual_headers[@]}"
  call "Same token, driven by curl from a new country and network (model: RFC 9470 step-up challenge)" \
    GET /accounts/22289/transactions "$agg" "x-client-geo-country: RU" "x-client-asn: AS65100" \
    "x-forwarded-for: 192.0.2.66" "user-agent: curl/8.5.0"
  call "Aggregator reads account 40517, outside the customer's consent (403 access_denied, reason consent_mismatch)" \
    GET /accounts/40517/balances "$agg" "${usual_headers[@]}"
  call "Aggregator tries a payment (missing scope → 403 insufficient_scope)" POST /domestic-payments "$agg" "${usual_headers[@]}"
  local payco=("x-client-geo-country: GB" "x-client-asn: AS5089" "x-forwarded-for: 198.51.100.20"
    "user-agent: PayCo-Initiation/1.4" "x-fapi-customer-ip-address: 198.51.100.99")
  call "Payments TPP initiates a payment (allowed)" POST /domestic-payments "$pay" "${payco[@]}"
  call "Payments TPP reads accounts (missing scope → 403)" GET /accounts "$pay" "${payco[@]}"
  call "No token (401, challenge without error code)" GET /accounts
  call "Expired token (401 invalid_token)" GET /accounts "$expired"
  call "Tampered token: payload rewritten to add 'payments' (401 invalid_token)" POST /domestic-payments "$tampered"
  call "Path trick /accounts/../admin (Envoy normalises to /admin; no such route → 403)" GET /accounts/../admin "$agg"
  call "Public route: no token needed (anonymous), identity headers still stripped" GET /health

  echo
  bold "Attack burst: scraper-tpp (consent for account 22289 only) walks the bank's account ids"
  local scraper
  scraper=$(mint scraper-tpp "accounts transactions:read" ec ES256 --claims '{"ob_account_ids":["22289"]}')
  curl -s -o /dev/null -H "authorization: Bearer $scraper" "http://$LISTENER/accounts/22289/balances"
  for account in 31820 40517 40518; do
    curl -s -o /dev/null -w "  GET /accounts/$account/balances  ← %{http_code}\n" \
      -H "authorization: Bearer $scraper" "http://$LISTENER/accounts/$account/balances"
  done
  echo "  Three consent mismatches within a minute: playbook consent-probing quarantines the client."
  call "scraper-tpp reads its own account again (403, reason quarantined: every worker refuses it for an hour)" \
    GET /accounts/22289/balances "$scraper"

  sleep 1.5
  echo
  bold "Security events at the SOC webhook ($RUN_DIR/events.jsonl), CloudEvents with their evidence:"
  python3 - "$RUN_DIR/events.jsonl" <<'PY'
import json, sys
try:
    lines = open(sys.argv[1]).read().split("\n")
except OSError:
    lines = []
for line in filter(None, lines):
    e = json.loads(line)
    d = e["data"]
    what = d.get("containment") or {}
    extra = f"  → {what['action']} by playbook {what['playbook']} until {what['until']}" if what else ""
    reasons = ", ".join(r["text"] for r in d.get("reasons") or [])
    print(f"  {e['type']:<34} {d.get('client_id') or '-':<28} {d['outcome']:<15} {d.get('reason') or '':<17} {reasons}{extra}")
    if what:
        print(f"      evidence: route {d.get('route')}, path {d.get('path')}, interaction {d['interaction_id']}, {len(d.get('recent') or [])} earlier requests")
PY
  echo
  "$MODELS" report --input "$RUN_DIR/access.log" --input "$RUN_DIR/events.jsonl" \
    --client scraper-tpp --out "$RUN_DIR/report-scraper-tpp.html" 2>/dev/null \
    && echo "Incident report for scraper-tpp (self-contained HTML, for the SOC and the TPP): $RUN_DIR/report-scraper-tpp.html"
  echo
  bold "Access log (outcome, reason, route, client, model verdict/score/reasons) — written by Envoy from obguard's filter state:"
  grep -E '^\{' "$RUN_DIR/access.log" | sed 's/^/  /' || true
  echo
  bold "obguard metrics (Envoy stats, non-zero):"
  curl -s "http://$ADMIN/stats?filter=obguard" | grep -v ': 0$' | sed 's/^/  /'
  echo
  echo "Traffic records (docs/records.md schema) for replay: $RUN_DIR/records.jsonl"
  echo "  e.g. cargo run -q --release -p obguard-models -- explain --model models/shipped/obguard-default.model --data $RUN_DIR/records.jsonl"
  bold "Done; stopping Envoy and the demo bank. (make demo-up keeps them running.)"
}

up() {
  start
  local agg
  agg=$(mint aggregator-tpp "accounts transactions:read" rsa PS256 --ttl 3600)
  bold "obguard demo running"
  echo "  listener   http://$LISTENER   (Envoy + obguard)"
  echo "  admin      http://$ADMIN      (stats: /stats?filter=obguard)"
  echo "  demo bank  http://127.0.0.1:$BANK_PORT"
  echo "  webhook    http://127.0.0.1:$WEBHOOK_PORT (security events → $RUN_DIR/events.jsonl)"
  echo "  logs       $RUN_DIR/{envoy,access,bank}.log, records $RUN_DIR/records.jsonl"
  echo
  echo "  A token for aggregator-tpp (valid 1 h):"
  echo "    TOKEN=$agg"
  echo "    curl -i -H \"authorization: Bearer \$TOKEN\" http://$LISTENER/accounts"
  echo
  echo "  Stop with: make demo-down"
}

case "${1:-walk}" in
  walk) walk ;;
  up) up ;;
  down) stop; echo "demo stopped" ;;
  *) echo "usage: $0 walk|up|down" >&2; exit 2 ;;
esac
