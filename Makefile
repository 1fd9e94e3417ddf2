# punchdrop — see README.md. Everything runs with plain Go; lab targets need root.
GO        ?= go
BIN       := bin/punchdrop
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build run test test-short bench lint fuzz demo screenshot clean

build:
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/punchdrop

# Run the agent in the foreground with your real (XDG) directories.
run: build
	./$(BIN) agent

# Unit tests plus the NAT-lab integration tests (the lab needs root; with
# CI=true a lab test that cannot build namespaces fails instead of skipping).
test:
	$(GO) test -count=1 -timeout 14m ./...

# Only the quick tests: no lab.
test-short:
	$(GO) test -count=1 -short ./...

# Benchmarks print figures; they are never pass/fail.
bench: build
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -timeout 60m ./...

# Each network decoder gets a short fuzz run.
fuzz:
	$(GO) test ./nat -run '^$$' -fuzz '^FuzzParseProbe$$' -fuzztime 30s
	$(GO) test ./nat -run '^$$' -fuzz '^FuzzHandleSTUN$$' -fuzztime 30s
	$(GO) test ./session -run '^$$' -fuzz '^FuzzParseConnString$$' -fuzztime 30s
	$(GO) test ./session -run '^$$' -fuzz '^FuzzReadFrame$$' -fuzztime 30s
	$(GO) test ./transfer -run '^$$' -fuzz '^FuzzReader$$' -fuzztime 30s
	$(GO) test ./transfer -run '^$$' -fuzz '^FuzzSafeRelPath$$' -fuzztime 30s

lint:
	@test -z "$$(gofmt -l .)" || (gofmt -l . && echo "gofmt: files above need formatting" && exit 1)
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# A two-NAT lab on this machine: two agents connect, exchange a message and a file (root).
demo: build
	$(GO) run ./lab/demo -bin $(BIN)

# The tray in a real panel (lxqt-panel) on a virtual X server, its menu open
# and a notification shown: PNGs in build/screenshots (tray/screenshot).
screenshot: build
	tray/screenshot/screenshot.sh

clean:
	rm -rf bin build
