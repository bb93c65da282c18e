# Tally: `make run` starts a local 3-node cluster, `make test` runs every test.
GO      ?= go
SHELL   := /bin/bash
BIN     := bin/tally
# Packages with goroutines of their own run under the race detector.
RACE_PKGS := ./api/... ./fsm/... ./token/... ./transport/... ./node/... ./client/... ./cmd/... ./bench/ ./internal/...

.PHONY: all build run test vet fmt-check unit bench-compare cluster-test chaos-pass chaos docker clean fuzz fuzz-brief

all: build

build:
	$(GO) build -o $(BIN) ./cmd/tally

run: build
	./scripts/run-local.sh

test: fmt-check vet unit bench-compare fuzz-brief cluster-test chaos-pass

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout 10m $(RACE_PKGS)
	$(GO) test -race -count=1 -timeout 5m -run 'Model|Check|Resolve' ./chaos/

# bench/compare is a module of its own (it pulls in etcd and fasthttp, which
# Tally itself must not depend on), so ./... above never reaches it.
bench-compare:
	cd bench/compare && $(GO) vet ./... && $(GO) test -count=1 ./...

# Every Go fuzz target, found per package by scripts/fuzz.sh (nothing to
# list here): make fuzz FUZZTIME=10m. The brief pass of make test gives each
# target FUZZTIME_BRIEF from the committed seeds only (about 3 s a target).
FUZZTIME       ?= 1m
FUZZTIME_BRIEF ?= 2s
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

fuzz-brief:
	GO=$(GO) FUZZTIME=$(FUZZTIME_BRIEF) FUZZCACHE=fresh ./scripts/fuzz.sh

# The real binary as separate processes; the race detector would only slow
# the binary under test, so it is off here.
cluster-test:
	GO=$(GO) ./scripts/gotest-recap.sh -count=1 -timeout 10m -v ./cluster-test/...

# The chaos pass of make test: 20 runs x 30 s under faults, 0 violations,
# and every planted bug caught. Runs in network namespaces when root.
chaos-pass:
	GO=$(GO) ./scripts/gotest-recap.sh -count=1 -timeout 25m -v ./chaos/...

# The long run: make chaos RUNS=200 DURATION=5m NODES=5 (evidence of any
# failed run is kept in chaos-out/). REMOVE=1 adds remove-and-rejoin with a
# wiped data dir (slow: each waits for gossip to declare the node dead).
RUNS     ?= 20
DURATION ?= 30s
NODES    ?= 3
PARALLEL ?= 2
REMOVE   ?= 0
chaos:
	$(GO) test -count=1 -timeout 0 -v -run 'TestChaos$$' ./chaos/ -args \
		-chaos.runs=$(RUNS) -chaos.duration=$(DURATION) -chaos.nodes=$(NODES) \
		-chaos.parallel=$(PARALLEL) -chaos.out=$(CURDIR)/chaos-out \
		$(if $(filter 1,$(REMOVE)),-chaos.remove,)

# A FROM scratch image from a static binary built here (no registry needed),
# for this machine's architecture (make docker ARCH=arm64 for another).
# docker-compose.yml mounts .tally-docker/admin-token into every node.
ARCH ?= $(shell $(GO) env GOARCH)
docker:
	CGO_ENABLED=0 GOOS=linux GOARCH=$(ARCH) $(GO) build -trimpath -o bin/tally-linux-$(ARCH) ./cmd/tally
	docker build --build-arg BIN=bin/tally-linux-$(ARCH) -t tally:local .
	mkdir -p .tally-docker
	[ -s .tally-docker/admin-token ] || (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > .tally-docker/admin-token)

clean:
	rm -rf bin .tally-run
