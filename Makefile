# punchdrop — see README.md. Everything runs with plain Go; lab targets need root.
GO        ?= go
BIN       := bin/punchdrop
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# nfpm builds the .deb and .rpm; newer releases do not build here (FACTS.md).
NFPM      := github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2

# Packaging: everything goes under build/.
PKG_VERSION  = $(shell sh packaging/version.sh '$(VERSION)')
PKG_ARCH     = $(shell $(GO) env GOARCH)
DEB          = build/punchdrop_$(PKG_VERSION)_$(PKG_ARCH).deb
# The last commit's time stamps man pages and packaged files (reproducible).
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)

.PHONY: build run test test-short bench matrix lint fuzz demo screenshot docs notices package package-test cross clean build/punchdrop

build:
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/punchdrop

# Run the agent in the foreground with your real (XDG) directories.
run: build
	./$(BIN) agent

# Unit tests plus the NAT-lab integration tests (the lab needs root; with
# CI=true a lab test that cannot build namespaces fails instead of skipping).
test:
	$(GO) test -count=1 -timeout 14m ./...
	cd third_party/quic-go && $(GO) test -count=1 ./internal/congestion/

# Only the quick tests: no lab.
test-short:
	$(GO) test -count=1 -short ./...

# Benchmarks print figures; they are never pass/fail.
bench: build
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -timeout 60m ./...

# The connectivity matrix of the NAT lab (root): every pairing of NAT kinds,
# double NAT and homes behind one carrier-grade NAT, as a markdown table of
# path, time to connected and how (e2e TestPairings, also part of make test).
matrix:
	$(GO) test -count=1 -v -run '^TestPairings$$' ./e2e/ | sed -n '/| pairing |/,/^ *$$/p' | sed 's/^ *//'

# Each network decoder gets a short fuzz run.
fuzz:
	$(GO) test ./session/probe -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 30s
	$(GO) test ./nat -run '^$$' -fuzz '^FuzzHandleSTUN$$' -fuzztime 30s
	$(GO) test ./session -run '^$$' -fuzz '^FuzzParseConnString$$' -fuzztime 30s
	$(GO) test ./session -run '^$$' -fuzz '^FuzzReadFrame$$' -fuzztime 30s
	$(GO) test ./session -run '^$$' -fuzz '^FuzzDecodeCandidates$$' -fuzztime 30s
	$(GO) test ./transfer -run '^$$' -fuzz '^FuzzReader$$' -fuzztime 30s
	$(GO) test ./transfer -run '^$$' -fuzz '^FuzzReaderStreamed$$' -fuzztime 30s
	$(GO) test ./transfer -run '^$$' -fuzz '^FuzzSafeRelPath$$' -fuzztime 30s
	$(GO) test ./safetext -run '^$$' -fuzz '^FuzzLine$$' -fuzztime 30s
	$(GO) test ./rendezvous -run '^$$' -fuzz '^FuzzDecodeRecord$$' -fuzztime 30s
	$(GO) test ./rendezvous -run '^$$' -fuzz '^FuzzOpen$$' -fuzztime 30s
	$(GO) test ./dht -run '^$$' -fuzz '^FuzzItemFromReturn$$' -fuzztime 30s
	$(GO) test ./lan -run '^$$' -fuzz '^FuzzOpen$$' -fuzztime 30s

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

# The binary that goes into the packages: static, paths trimmed. It runs
# here to write the docs, so it is built for this machine's architecture.
build/punchdrop:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $@ ./cmd/punchdrop

# Man pages (build/man, gzipped) and bash/zsh/fish completions
# (build/completions), written by the hidden "punchdrop docs" command.
docs: build/punchdrop
	rm -rf build/man build/completions
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) build/punchdrop docs --man build/man --completions build/completions
	gzip -9n build/man/*.1

# packaging/notices/THIRD_PARTY_NOTICES: the license of every module linked
# into punchdrop, from the module cache (packaging/notices/gen). Run it after
# changing a dependency; a test fails while the committed file is stale.
notices:
	$(GO) generate ./packaging/notices

# build/punchdrop_<version>_<arch>.deb and the .rpm (packaging/nfpm.yaml).
package: build/punchdrop docs
	rm -f build/*.deb build/*.rpm
	PKG_VERSION='$(PKG_VERSION)' PKG_ARCH='$(PKG_ARCH)' SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run $(NFPM) package -f packaging/nfpm.yaml -p deb -t build/
	PKG_VERSION='$(PKG_VERSION)' PKG_ARCH='$(PKG_ARCH)' SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run $(NFPM) package -f packaging/nfpm.yaml -p rpm -t build/
	@ls -l build/*.deb build/*.rpm

# Install the .deb on this machine, check what it put where, remove it
# (root; refuses to run over an installed punchdrop).
package-test: package
	sh packaging/package-test.sh '$(DEB)' '$(VERSION)'

# Everything builds for macOS and Windows too (the tray and agent are meant to).
cross:
	GOOS=darwin GOARCH=arm64 $(GO) build ./...
	GOOS=darwin GOARCH=amd64 $(GO) build ./...
	GOOS=windows GOARCH=amd64 $(GO) build ./...

clean:
	rm -rf bin build
