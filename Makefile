# mbackup — see README.md.
#   make build   binaries in ./bin
#   make test    every test: unit + integration (real PostgreSQL, real S3 server)
#   make demo    the main job, end to end, on this machine
#   make bench   benchmarks and the side-by-side comparison

GO        ?= go
GOBIN     := $(shell $(GO) env GOPATH)/bin
VERSION   := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
VERSITYGW := $(GOBIN)/versitygw
STATICCHECK := $(GOBIN)/staticcheck

.PHONY: all build test test-short lint fuzz demo bench tools clean

all: build

build:
	@mkdir -p bin
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/mbackup ./cmd/jelastic-sim ./cmd/moodlegen

# Tools the tests need, installed once into GOPATH/bin and reused.
tools: $(VERSITYGW)

$(VERSITYGW):
	$(GO) install github.com/versity/versitygw/cmd/versitygw@v1.8.0

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2

# Every test, against the real PostgreSQL (127.0.0.1:5432) and a real S3
# server (versitygw) started for the run.
test: tools build
	scripts/with-s3.sh $(GO) test -count=1 -timeout 30m ./...
	$(MAKE) fuzz FUZZTIME=10s

test-short:
	$(GO) test -count=1 -short ./...

# Each fuzz target for a bounded time; crashers land in testdata/fuzz.
FUZZTIME ?= 30s
fuzz:
	scripts/fuzz.sh $(FUZZTIME)

lint: $(STATICCHECK)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	$(STATICCHECK) ./...

demo: build
	scripts/demo.sh

# kopia, if it can be built here, joins the comparison; the bench notes
# its absence otherwise.
bench: tools build
	-scripts/install-kopia.sh
	PATH="$(GOBIN):$$PATH" $(GO) run ./scripts/bench $(BENCHFLAGS)

clean:
	rm -rf bin .demo .cache
