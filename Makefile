# MonitorMe: the two commands a new developer needs are `make dev` and
# `make test`. Everything else is here for CI and for measuring.

GO ?= go
BIN := bin/monitorme

# Linters are pinned and built into the git-ignored .cache by the Makefile
# itself (about 30 s the first time), so a fresh clone needs only Go.
STATICCHECK_VERSION := v0.8.2
STATICCHECK := .cache/tools/staticcheck-$(STATICCHECK_VERSION)/staticcheck

.PHONY: dev test lint unit build bench bench-kafka bench-go fuzz fuzz-targets fuzz-short fuzz-corpus test-browser screenshots test-sql test-contract e2e e2e-secure chart-check image kafka-up kafka-down clean docs

## dev: run the whole platform on an embedded broker (127.0.0.1:8080);
## flags pass through ARGS, e.g. make dev ARGS='--speed 10 --patients 50'.
## The binary is built and then run (not go run, which turns the exit 0
## of an interrupted child into 1), so Ctrl-C ends it with exit 0.
dev: build
	exec ./$(BIN) dev $(ARGS)

## test: lint, then every test with the race detector (what CI runs)
test: lint unit

## lint: gofmt, go vet, staticcheck (pinned) and the import rules of the tree
lint: $(STATICCHECK)
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

$(STATICCHECK):
	GOBIN=$(abspath $(dir $(STATICCHECK))) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## unit: the browser tests (named …InChromium) are left out here and run
## in make test-browser, where CI never lets them skip
## The engine-against-model property test (clinical) is single-threaded:
## it runs apart, without the race detector that would make it 5x slower.
unit:
	$(GO) test -race -count=1 -skip 'InChromium$$|^TestEngineAgreesWithTheModel$$' ./...
	$(GO) test -count=1 -run '^TestEngineAgreesWithTheModel$$' -v ./clinical
	cd third_party/kfake && $(GO) test -race -count=1 ./

build:
	$(GO) build -o $(BIN) ./cmd/monitorme

## bench: the platform benchmark table (see docs/benchmarks.md)
bench: build
	./$(BIN) bench

## bench-kafka: the real-cluster benchmark: three Apache Kafka brokers
## (e2e/kafka.sh), copy vs threshold vs clinical over 1M pre-loaded readings
## with CPU per reading, and alert latency at 2,000/s and 21,000/s
bench-kafka: build
	e2e/kafka.sh up 3
	./$(BIN) bench --kafka --brokers "$$(e2e/kafka.sh brokers)" --broker-pids "$$(e2e/kafka.sh pids)" $(ARGS); rc=$$?; e2e/kafka.sh down; exit $$rc

## bench-go: micro-benchmarks of the hot paths
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./schemas ./clinical ./processors ./sinks/clickhouse

FUZZTIME ?= 30s
FUZZ_PKGS := ./schemas ./producers ./api ./clinical ./processors
## fuzz: every fuzz target of every package for FUZZTIME each, then the
## engine against the reference model on MODEL_SCENARIOS generated wards
## (about 20 minutes on 2 cores). make test runs every target's seeds and
## its committed corpus (testdata/fuzz); make fuzz-short is CI's pass
MODEL_SCENARIOS ?= 10000
fuzz: fuzz-targets
	@echo "== ./clinical TestEngineAgreesWithTheModel, $(MODEL_SCENARIOS) scenarios"
	MONITORME_MODEL_SCENARIOS=$(MODEL_SCENARIOS) $(GO) test -count=1 -timeout 60m -run '^TestEngineAgreesWithTheModel$$' -v ./clinical

## fuzz-targets: every fuzz target of FUZZ_PKGS for FUZZTIME each
fuzz-targets:
	@set -e; n=0; for pkg in $(FUZZ_PKGS); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; n=$$((n+1)); \
		done; \
	done; echo "fuzzed $$n targets for $(FUZZTIME) each"; [ $$n -ge 15 ] || { echo "fewer fuzz targets than the 15 there are: the listing is wrong"; exit 1; }

## fuzz-short: every fuzz target for 5 s (CI, after make test)
fuzz-short:
	$(MAKE) fuzz-targets FUZZTIME=5s

## fuzz-corpus: fuzz every target for FUZZTIME and commit what it found
## interesting (up to 40 inputs a target) to testdata/fuzz, where make test
## replays it
fuzz-corpus:
	@set -e; cache=$$($(GO) env GOCACHE)/fuzz; for pkg in $(FUZZ_PKGS); do \
		path=$$($(GO) list $$pkg); \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
			mkdir -p $$pkg/testdata/fuzz/$$f; \
			ls -t $$cache/$$path/$$f 2>/dev/null | head -40 | while read c; do cp "$$cache/$$path/$$f/$$c" $$pkg/testdata/fuzz/$$f/; done; \
		done; \
	done

## test-browser: the nurse-station page driven in Chromium (Debian's,
## installed by station/chromium.sh when missing)
test-browser:
	MONITORME_BROWSER=1 $(GO) test -count=1 -v -timeout 20m -run 'InChromium$$' ./station/

## screenshots: refresh docs/img/station-*.png from the browser test
screenshots:
	MONITORME_BROWSER=1 MONITORME_SCREENSHOTS=1 $(GO) test -count=1 -v -run 'Chromium' ./station/

## test-sql: the ClickHouse schema, the sink's rows and the API's queries on the
## ClickHouse engine (chDB from PyPI, in .cache/sqltest-venv)
test-sql:
	GO=$(GO) schemas/clickhouse/sqltest/run.sh

## docs: write docs/cli.md and docs/api.md again from the commands and the
## OpenAPI document (make test fails while they differ)
docs:
	MONITORME_WRITE_DOCS=1 $(GO) test -count=1 -run '^Test(CLI|API)ReferenceIsCurrent$$' ./roles ./api

## test-contract: the API against its OpenAPI document: schemathesis (PyPI,
## in .cache/contract-venv) over every operation, all checks and phases,
## on `monitorme dev` with an admin token (CONTRACT_SEED to replay a run)
test-contract:
	GO=$(GO) api/contract/run.sh

## e2e: real-broker suite: 3 Apache Kafka brokers (jars from Maven Central), kcat, the real binary
e2e:
	e2e/install-kcat.sh
	MONITORME_E2E=1 $(GO) test -count=1 -timeout 30m -v ./e2e/ ; status=$$?; e2e/kafka.sh down; exit $$status

N ?= 3
## e2e-secure: the same suite's secured cases on 3 brokers with SASL_SSL (SCRAM), mTLS between nodes and ACLs
e2e-secure:
	e2e/install-kcat.sh
	MONITORME_E2E=1 MONITORME_E2E_SECURE=1 $(GO) test -count=1 -timeout 30m -v -run 'TestExactlyOnceUnderProcessorAndBrokerKills|TestKcatInterop|TestSecuredClusterRefusesStrangers' ./e2e/ ; status=$$?; e2e/kafka.sh down; exit $$status

APP_VERSION := $(shell sed -n 's/^appVersion: "\(.*\)"/\1/p' charts/monitorme/Chart.yaml)

## image: the monitorme OCI image (static binary, non-root, as the Dockerfile builds it) without a container runtime, in .cache/image
image:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X github.com/monitorme/monitorme/internal/version.Version=$(APP_VERSION)" -o .cache/image-bin/monitorme ./cmd/monitorme
	cd build/image && $(GO) run . -binary ../../.cache/image-bin/monitorme -version $(APP_VERSION) -out ../../.cache/image

## chart-check: lint, schema-check, kubeconform and install charts/monitorme on a local kube-apiserver (tools cached in .cache/chart-tools)
chart-check:
	charts/scripts/check.sh

## kafka-up: start N (1 or 3) Apache Kafka brokers on 127.0.0.1:29092+ (e2e/kafka.sh)
kafka-up:
	e2e/kafka.sh up $(N)

kafka-down:
	e2e/kafka.sh down

clean:
	rm -rf bin .monitorme
