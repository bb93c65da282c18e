# Tally server image: nothing but the static binary.
#
# The binary is built on the host, not in a build stage, so no base image
# has to be pulled from a registry:
#
#   ARCH=$(go env GOARCH)
#   CGO_ENABLED=0 GOOS=linux GOARCH=$ARCH go build -trimpath -o bin/tally-linux-$ARCH ./cmd/tally
#   docker build --build-arg BIN=bin/tally-linux-$ARCH -t tally:local .
#
# (`make docker` runs both for this machine's architecture; `make docker
# ARCH=arm64` for another.) Without --build-arg, BIN is the amd64 binary.
FROM scratch
ARG BIN=bin/tally-linux-amd64
COPY ${BIN} /tally
# HTTP API, Raft, gossip (TCP and UDP).
EXPOSE 7101 7201 7301 7301/udp
VOLUME ["/data"]
ENTRYPOINT ["/tally"]
CMD ["--help"]
