# MonitorMe: the two commands a new developer needs are `make dev` and
# `make test`. Everything else is here for CI and for measuring.

GO ?= go
BIN := bin/monitorme

.PHONY: dev test lint unit build bench bench-go clean

## dev: run the whole platform on an embedded broker (127.0.0.1:8080)
dev:
	$(GO) run ./cmd/monitorme dev

## test: lint, then every test with the race detector (what CI runs)
test: lint unit

lint:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 ./...

build:
	$(GO) build -o $(BIN) ./cmd/monitorme

## bench: the platform benchmark table (see docs/benchmarks.md)
bench: build
	./$(BIN) bench

## bench-go: micro-benchmarks of the hot paths
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./schemas ./processors

clean:
	rm -rf bin .monitorme
