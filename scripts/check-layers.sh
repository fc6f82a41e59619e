#!/usr/bin/env bash
# `make lint`: dependencies between the filter's modules point one way.
#   - the stages (identify, authorise, assess, rules, enforce, ratelimit, intel, respond,
#     polled) import nothing of `config` but the leaves `ConfigError` and `defaults`: each owns
#     its section (`<stage>/config.rs`), and `config/` composes them;
#   - the stages and the pipeline know nothing of the runtime, the host or the adapter: they
#     are pure and natively tested.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

stages='filter/src/identify filter/src/authorise filter/src/assess filter/src/assess.rs
filter/src/rules filter/src/enforce filter/src/ratelimit filter/src/intel filter/src/respond
filter/src/polled.rs'
status=0
# shellcheck disable=SC2086
config_uses=$(grep -rnE 'crate::config(::|\b)' --include='*.rs' $stages \
    | grep -vE 'crate::config::(ConfigError|defaults::)' || true)
if [[ -n "$config_uses" ]]; then
    echo "a stage imports config/ (only the leaves config::ConfigError and config::defaults are allowed):" >&2
    echo "$config_uses" >&2
    status=1
fi
# shellcheck disable=SC2086
impure=$(grep -rnE 'crate::(runtime|host|adapter)(::|\b)' --include='*.rs' \
    $stages filter/src/pipeline filter/src/config || true)
if [[ -n "$impure" ]]; then
    echo "a stage, the pipeline or config/ uses the runtime, host or adapter:" >&2
    echo "$impure" >&2
    status=1
fi
if [[ $status == 0 ]]; then
    echo "layers: stages import only config::ConfigError and config::defaults; stages, pipeline and config are host-free"
fi
exit $status
