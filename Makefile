# Tally: `make run` starts a local 3-node cluster, `make test` runs every test.
GO      ?= go
BIN     := bin/tally
# Packages with goroutines of their own run under the race detector.
RACE_PKGS := ./api/... ./fsm/... ./token/... ./transport/... ./node/... ./client/... ./cmd/...

.PHONY: all build run test vet fmt-check unit cluster-test docker clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/tally

run: build
	./scripts/run-local.sh

test: fmt-check vet unit cluster-test

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout 10m $(RACE_PKGS)

# The real binary as separate processes; the race detector would only slow
# the binary under test, so it is off here.
cluster-test:
	$(GO) test -count=1 -timeout 10m ./cluster-test/...

# A FROM scratch image from a static binary built here (no registry needed).
# docker-compose.yml mounts .tally-docker/admin-token into every node.
docker:
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -o bin/tally-linux-amd64 ./cmd/tally
	docker build -t tally:local .
	mkdir -p .tally-docker
	[ -s .tally-docker/admin-token ] || (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > .tally-docker/admin-token)

clean:
	rm -rf bin .tally-run
