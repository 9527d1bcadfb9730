# The entry points people type. CI runs `.ci/run`, which runs `make check` and `make e2e`.
.DEFAULT_GOAL := help
.PHONY: help run test test-faults check e2e migrate release bench frontend frontend-deps node-version

FRONTEND := frontend
NPM := npm --prefix $(FRONTEND)

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

run: frontend ## Build the UI, migrate the local database, create its key file once, serve on http://127.0.0.1:8000
	cargo xtask migrate --create
	test -f data/secrets.key || cargo run --package backend -- key generate data/secrets.key
	cargo run --package backend

test: frontend-deps ## Rust and frontend unit and integration tests
	cargo test --workspace
	$(NPM) test

check: frontend-deps ## Everything CI checks: format, version drift, migrations, lints, tests (Postgres ones with TEST_POSTGRES_URL), UI type check, tests, build
	cargo fmt --all --check
	cargo xtask version
	cargo xtask migrations check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --package secrets-ops --package xtask --all-targets --features secrets-ops/failpoints,xtask/failpoints -- -D warnings
	cargo test --workspace
	$(MAKE) test-faults
	$(NPM) run typecheck
	$(NPM) test
	$(NPM) run build

test-faults: ## Fault injection: SIGKILL and errors at every failpoint of migrate, restore and release
	cargo build --package xtask --features xtask/failpoints
	cargo test --package secrets-ops --features failpoints --test faults

e2e: frontend ## Real-browser check in headless Chromium (needs Debian's chromium)
	cargo build --package backend --package secrets-ops
	node $(FRONTEND)/e2e/e2e.mjs

migrate: ## Bring the local database (DATABASE_URL, default data/secrets.db) to the latest schema
	cargo xtask migrate --create

release: ## Cut a release: make release VERSION=x.y.z (or major, minor, patch, pre)
	@if [ -z "$(VERSION)" ]; then echo "make release: say which version, e.g. make release VERSION=0.2.0 (or VERSION=patch)" >&2; exit 2; fi
	cargo xtask release "$(VERSION)"

bench: ## Speed benchmarks of the xtask and the operations tool (see README, "Benchmarks")
	cargo build --package backend --package secrets-ops
	cargo xtask bench release
	cargo xtask bench migrations
	cargo xtask bench migrate --size 1GiB
	cargo xtask bench backup --size 200MiB --rate 100
	@if [ -n "$${TEST_POSTGRES_URL:-}" ]; then cargo xtask bench copy; else echo "bench copy skipped: set TEST_POSTGRES_URL=postgres://user@host/db (and install pgloader) to compare db copy with pgloader and psql \\copy"; fi

frontend: frontend-deps ## Build the UI into frontend/dist
	$(NPM) run build

# Installs the locked frontend packages when they are missing or the lock changed.
frontend-deps: node-version $(FRONTEND)/node_modules/.package-lock.json

$(FRONTEND)/node_modules/.package-lock.json: $(FRONTEND)/package-lock.json
	$(NPM) ci --no-audit --no-fund

node-version:
	@node -e 'const [major, minor] = process.versions.node.split(".").map(Number); if (major < 20 || (major === 20 && minor < 19)) { console.error("Node.js " + process.versions.node + " is too old: the frontend (Vite 8) needs Node.js 20.19 or newer"); process.exit(1); }'
