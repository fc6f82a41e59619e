#!/usr/bin/env bash
# `make lint`: the proxy-wasm ABI is declared and called in filter/src/adapter/ only, and the
# filter does not link the proxy-wasm SDK (whose hostcalls panic on unexpected host answers).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

status=0
outside=$(grep -rnE 'proxy_wasm|hostcalls::|extern "C"|#\[link\(wasm_import_module' \
    --include='*.rs' filter/src | grep -v '^filter/src/adapter/' || true)
if [[ -n "$outside" ]]; then
    echo "proxy-wasm ABI outside filter/src/adapter/:" >&2
    echo "$outside" >&2
    status=1
fi
sdk=$(grep -rn 'hostcalls::' --include='*.rs' filter/src/adapter/ || true)
if [[ -n "$sdk" ]]; then
    echo "proxy-wasm SDK hostcalls in the adapter (use adapter/abi.rs):" >&2
    echo "$sdk" >&2
    status=1
fi
if cargo tree -p obguard --target wasm32-wasip1 -e normal --prefix none 2>/dev/null \
    | grep -q '^proxy-wasm '; then
    echo "the filter depends on the proxy-wasm SDK; the ABI is ours (filter/src/adapter/abi.rs)" >&2
    status=1
fi
if [[ $status == 0 ]]; then
    echo "host layer: the ABI is called from filter/src/adapter/ only; no proxy-wasm SDK"
fi
exit $status
