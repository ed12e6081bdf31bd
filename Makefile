# msk-redshift-cdc — developer entry points. Each target installs what it needs.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
# The project's Python venv (scripts/install-deps.sh); CI keeps it under $HOME/.cache.
export VENV ?= $(CURDIR)/.venv
CONFIG ?= config/pipeline.toml
# Local demo key only; in AWS the key comes from Secrets Manager.
DEMO_MASKING_KEY ?= local-demo-masking-key-0123456789abcdef

.PHONY: test contract demo explain bench soak fuzz deps fmt lint events sam-build deploy

# Every SQL statement the tests send through the Data API emulator (one JSON line each), for
# the grammar gate. Absolute: the emulator runs in test processes with other working directories.
SQL_RECORDING ?= $(abspath $(or $(CARGO_TARGET_DIR),target))/grammar-gate/emulator-sql.jsonl

# The release functions, which tests/pii_leaks.rs runs behind a local Lambda Runtime API.
FUNCTION_BINARIES ?= $(abspath $(or $(CARGO_TARGET_DIR),target))/release

# Progress of the long targets: a banner before each step ("==> [3/12] …", on stdout, so that a
# CI log shows which step the time goes to); cargo and pip print their own progress (no -q:
# "Compiling …" lines, and cargo's bar on a terminal). Texts without commas (make's call).
step = @echo "==> [$(1)] $(2)"

## Everything CI runs: formatting, lints (the workspace, then the library as the Lambdas build
## it: without the `test-util` feature, which cdc-tests, bench and fuzz turn on, so the
## workspace-wide run never sees it off; and `cargo tree` proves that a bare build of the
## default members, as `sam build` runs it, does not turn it on), the fuzz targets compile (their own workspace, so
## no other step builds them), the release functions (tests/pii_leaks.rs runs them
## as Lambda does), unit, property and integration tests (the integration tests run against a
## throwaway PostgreSQL behind the Data API emulator), then the
## grammar gate: every statement the tests sent through the emulator must parse as Redshift SQL
## (sqlfluff's redshift dialect; scripts/grammar_gate.py). The emulator's own tests, which send
## PostgreSQL SQL on purpose, run unrecorded (scripts/cargo-test-runner.sh). Last, the
## local stack's own test (scripts/test-local-stack.sh), then the
## template checks (scripts/check-template.sh): cfn-lint, SAM validation, our rules and
## checkov on the SAM-translated template, each gate first proving that it fails.
test: deps
	$(call step,1/12,formatting: cargo fmt --check)
	$(CARGO) fmt --all --check
	$(call step,2/12,clippy: the workspace with every target)
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(call step,3/12,clippy: the library as the Lambdas build it (no test-util))
	$(CARGO) clippy --locked -p cdc-ingest -p cdc-replay -- -D warnings
	$(call step,4/12,the fuzz targets compile)
	cd fuzz && $(CARGO) check --locked --bins
	$(call step,5/12,test-util stays out of the default members)
	n=$$($(CARGO) tree --locked -e normal,build,features -i cdc-pipeline | grep -c 'test-util' || true); \
	  [ "$$n" = 0 ] || { echo "test-util reaches the default members (what sam build compiles): check default-members in Cargo.toml" >&2; exit 1; }
	$(call step,6/12,the grammar gate's own tests)
	"$(VENV)/bin/python" scripts/test_grammar_gate.py
	mkdir -p "$(dir $(SQL_RECORDING))" && rm -f "$(SQL_RECORDING)"
	$(call step,7/12,building the release functions)
	$(CARGO) build --release --locked -p cdc-ingest -p cdc-replay
	$(call step,8/12,cargo test: unit and property tests and integration tests against PostgreSQL + the emulator + moto)
	CDC_FUNCTION_BINARIES="$(FUNCTION_BINARIES)" REDSHIFT_DATA_LOCAL_RECORD="$(SQL_RECORDING)" \
	  scripts/with-local-pg.sh $(CARGO) test --workspace --locked \
	  --config 'target."cfg(all())".runner = ["$(CURDIR)/scripts/cargo-test-runner.sh"]'
	$(call step,9/12,the grammar gate: every statement the tests sent must parse as Redshift SQL)
	"$(VENV)/bin/python" scripts/grammar_gate.py "$(SQL_RECORDING)"
	$(call step,10/12,the cargo-lambda path)
	scripts/check-cargo-lambda.sh
	$(call step,11/12,scripts/local-stack.sh: failures stop what started; a stack is reused only when whole)
	scripts/test-local-stack.sh
	$(call step,12/12,the template checks (cfn-lint; SAM; our rules; checkov))
	scripts/check-template.sh

## Opt-in: the contract suite against a REAL Redshift (never part of `test`): what the
## emulator assumes, checked and recorded in tests/contract/observed.json. Needs
## CONTRACT_DATABASE and CONTRACT_WORKGROUP or CONTRACT_CLUSTER_ID (README "Contract suite").
contract:
	$(CARGO) test -p cdc-tests --test contract -- --test-threads 1 --nocapture

## The local loop end to end: stack up, every sample ingested, table and dead letters shown,
## a replay (dry run, then real with relaxed rules), stack down. See scripts/demo.sh.
demo: deps
	scripts/demo.sh

## `cdc explain` over every sample event with the example config (no services needed).
explain: deps
	$(call step,1/2,building cdc)
	$(CARGO) build -p cdc-cli --locked
	$(call step,2/2,cdc explain over events/*.json)
	for f in events/*.json; do \
	  echo "== $$f"; \
	  MASKING_KEY="$(DEMO_MASKING_KEY)" $(CARGO) run -q -p cdc-cli --locked -- explain --config $(CONFIG) "$$f"; \
	done

## Benchmarks, then the tables for BENCHMARKS.md: criterion (transform path, SQL), the
## end-to-end load through the emulator, the load paths side by side (INSERT, staged COPY,
## PostgreSQL's own COPY; it fails when a path fails), the Python peer side by side
## (bench/compare.py), and the release ingest binary's cold start and peak memory
## (bench/runtime_probe.py).
bench: deps
	$(call step,1/6,criterion: transform path (JSON and Avro) and SQL; allocations per record)
	$(CARGO) bench -p cdc-pipeline --bench transform --bench sql --locked
	$(CARGO) run --release --locked -p cdc-pipeline --features test-util --example profile_transform -- 1399 3 json
	$(CARGO) run --release --locked -p cdc-pipeline --features test-util --example profile_transform -- 1399 3 avro
	$(call step,2/6,end-to-end load through the emulator)
	scripts/with-local-pg.sh $(CARGO) bench -p cdc-tests --bench load --locked
	$(call step,3/6,load paths side by side)
	scripts/with-local-pg.sh $(CARGO) bench -p cdc-tests --bench copy --locked
	$(call step,4/6,the Python peer side by side)
	python3 bench/compare.py
	$(call step,5/6,cold start and peak memory of the release ingest binary)
	python3 bench/runtime_probe.py
	$(call step,6/6,tables for BENCHMARKS.md)
	python3 scripts/bench-report.py

## The reliability suite at full size: SCENARIOS randomized model scenarios (default 1000)
## and the load test at 8 partitions × 50 batches × 1,000 records. Figures in RELIABILITY.md.
SCENARIOS ?= 1000
soak: deps
	MODEL_SCENARIOS=$(SCENARIOS) LOAD_BATCHES=50 scripts/with-local-pg.sh \
	  $(CARGO) test --release -p cdc-tests --locked --test model --test load -- --nocapture --test-threads 1

## Coverage-guided fuzzing (cargo-fuzz, AddressSanitizer): every target in fuzz/ for
## FUZZ_SECONDS each (default 600), after replaying fuzz/regressions/. See fuzz/README.md.
FUZZ_SECONDS ?= 600
fuzz: deps
	fuzz/run.sh $(FUZZ_SECONDS)

## Install what the targets above need (idempotent).
deps:
	$(call step,deps,scripts/install-deps.sh)
	scripts/install-deps.sh

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p cdc-ingest -p cdc-replay -- -D warnings

## Regenerate the sample events in events/ (they are committed).
events:
	$(CARGO) run -p cdc-tests --bin gen-events

## Both functions built for arm64 by SAM with cargo-lambda (release, LTO; see README for time).
sam-build: deps
	$(call step,1/2,the aarch64 Rust target)
	rustup target add aarch64-unknown-linux-gnu
	$(call step,2/2,sam build: both functions for arm64 with cargo-lambda (release and LTO: minutes))
	PATH="$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 sam build

## Build, then deploy with prompts for every parameter (answers saved in samconfig.toml).
deploy: sam-build
	PATH="$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 sam deploy --guided
