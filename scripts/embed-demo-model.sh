#!/usr/bin/env bash
# Writes the shipped model file into envoy/demo/envoy.yaml's `model.inline_base64` (the demo
# runs without a model registry). `make model` calls it after signing.
set -euo pipefail
model=${1:-models/shipped/obguard-default.model}
config=${2:-envoy/demo/envoy.yaml}
python3 - "$model" "$config" <<'PY'
import base64, re, sys
model, config = sys.argv[1], sys.argv[2]
encoded = base64.b64encode(open(model, "rb").read()).decode()
text = open(config).read()
new, n = re.subn(r'("inline_base64": ")[A-Za-z0-9+/=]*(")', lambda m: m.group(1) + encoded + m.group(2), text)
if n != 1:
    sys.exit(f"{config}: expected one inline_base64, found {n}")
open(config, "w").write(new)
print(f"{config}: model.inline_base64 = {model} ({len(encoded)} base64 characters)")
PY
