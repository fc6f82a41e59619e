#!/usr/bin/env bash
# Re-vendors deploy/istio/schemas/: the OpenAPI v3 schemas of the Istio CRDs the manifests in
# deploy/istio/ use, as shipped by the npm package @kubernetes-models/istio (MIT; generated from
# Istio 1.18.0's crd-all.gen.yaml and crd-operator.yaml, Apache-2.0). Each package file holds
# its schema as a JSON object literal; this takes it out verbatim, with the one reference to
# Kubernetes' ObjectMeta (another package) replaced by `{"type": "object"}`. Needs npm and node.
# Not run by the build or the tests: they use the committed files.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VERSION=2.3.0
out=deploy/istio/schemas
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "@kubernetes-models/istio@$VERSION" >/dev/null && tar xzf ./*.tgz)
cp "$work/package/LICENSE" "$out/LICENSE"
VERSION=$VERSION node - "$work/package" "$out" <<'JS'
const fs = require("fs");
const [pkg, out] = process.argv.slice(2);
const kinds = {
  "WasmPlugin": "extensions.istio.io/v1alpha1",
  "ServiceEntry": "networking.istio.io/v1beta1",
  "DestinationRule": "networking.istio.io/v1beta1",
  "RequestAuthentication": "security.istio.io/v1beta1",
  "AuthorizationPolicy": "security.istio.io/v1beta1",
  "IstioOperator": "install.istio.io/v1alpha1",
};
for (const [kind, group] of Object.entries(kinds)) {
  const src = fs.readFileSync(`${pkg}/${group}/${kind}.js`, "utf8");
  const start = src.indexOf("const schema = ") + "const schema = ".length;
  const end = src.indexOf("\n};\n", start) + 2;
  const schema = JSON.parse(src.slice(start, end));
  const fixed = JSON.parse(JSON.stringify(schema, (k, v) =>
    v && typeof v === "object" && v["$ref"] === "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta#"
      ? { "type": "object" } : v));
  fixed["$comment"] = `${group} ${kind}: from @kubernetes-models/istio ${process.env.VERSION} (Istio 1.18.0 CRDs); see README.md`;
  fs.writeFileSync(`${out}/${kind}.json`, JSON.stringify(fixed, null, 2) + "\n");
}
JS
echo "vendored into $out"
