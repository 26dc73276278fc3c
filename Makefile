# Zeke — build, test, demo, bench. `make deps` installs the real components (cached outside the
# clone under $(ZEKE_CACHE), keyed by version); every other target runs it first.
SHELL := /bin/bash
CARGO ?= cargo
export ZEKE_CACHE ?= $(HOME)/.cache/zeke-deps
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
TEST_BIN := $(TARGET_DIR)/debug/zeke
RELEASE_BIN := $(TARGET_DIR)/release/zeke
LUA_FILTER ?=

.PHONY: all deps build build-test test test-rust test-lua test-mcp demo bench bench-mcp bench-lsp fuzz lint fmt clean

all: build

deps:
	@scripts/deps.sh

## release binary: what the plugin runs (lazy.nvim: build = 'make build')
build:
	$(CARGO) build --release --locked

## debug binary with the deterministic fake provider, for tests
build-test:
	$(CARGO) build --locked --features test-support

## every suite against the real components; ends with `total: N passed, N failed, N skipped`.
## Nothing may be skipped here (ZEKE_TEST_NO_SKIP=1): everything a test needs is installed and started.
test: deps build-test
	@ZEKE_TEST_NO_SKIP=1 MAKE="$(MAKE)" scripts/with-services.sh python3 scripts/test_all.py

test-rust:
	ZEKE_BIN=$(TEST_BIN) $(CARGO) test --locked --features test-support -- --test-threads 2

test-lua:
	@eval "$$(scripts/deps.sh --env)"; ZEKE_BIN=$(TEST_BIN) "$$ZEKE_NVIM" --headless -u NONE -l tests/lua/run.lua $(LUA_FILTER)

## `zeke mcp` with the official MCP clients: Python SDK (tests/mcp/interop.py), Inspector CLI
test-mcp:
	@eval "$$(scripts/deps.sh --env)"; \
	[ -x "$$ZEKE_MCP_PY" ] || { echo "FAIL test-mcp: no Python MCP SDK at $$ZEKE_MCP_PY; run make deps"; exit 1; }; \
	ZEKE_BIN=$(TEST_BIN) "$$ZEKE_MCP_PY" tests/mcp/interop.py && ZEKE_BIN=$(TEST_BIN) tests/mcp/inspector.sh

## the main job, scripted: llama-server + SmolLM2, headless Neovim typing, ghost text, accept, explain
demo: deps build
	@ZEKE_BIN=$(RELEASE_BIN) scripts/with-services.sh bash -c '"$$ZEKE_NVIM" --headless -u NONE -l tests/lua/demo.lua'

bench: deps build
	@scripts/deps.sh --bench
	@ZEKE_BIN=$(RELEASE_BIN) scripts/with-services.sh scripts/bench.sh
	@$(MAKE) --no-print-directory bench-mcp
	@$(MAKE) --no-print-directory bench-lsp

## libFuzzer targets in fuzz/ (cargo-fuzz, stable, no sanitizer), $(FUZZ_SECONDS) s each (default 30)
fuzz:
	@scripts/fuzz.sh

## `zeke mcp` vs the reference MCP servers, same tree, same run (installs them into the cache)
## the lsp_* tools beside Serena (PyPI serena-agent), same workspace, same rust-analyzer
bench-lsp: build
	@scripts/deps.sh --bench
	@eval "$$(scripts/deps.sh --env)"; ZEKE_BIN=$(RELEASE_BIN) "$$ZEKE_MCP_PY" tests/bench/lsp_bench.py

bench-mcp: build
	@scripts/deps.sh --bench
	@eval "$$(scripts/deps.sh --env)"; ZEKE_BIN=$(RELEASE_BIN) python3 tests/mcp/bench.py

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --features test-support --all-targets -- -D warnings

fmt:
	$(CARGO) fmt

clean:
	$(CARGO) clean
