# Tally server image: nothing but the static binary.
#
# The binary is built on the host, not in a build stage, so no base image
# has to be pulled from a registry:
#
#   CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -o bin/tally-linux-amd64 ./cmd/tally
#   docker build -t tally:local .
#
# (`make docker` runs both.) Another binary: --build-arg BIN=bin/tally-linux-arm64.
FROM scratch
ARG BIN=bin/tally-linux-amd64
COPY ${BIN} /tally
# HTTP API, Raft, gossip (TCP and UDP).
EXPOSE 7101 7201 7301 7301/udp
VOLUME ["/data"]
ENTRYPOINT ["/tally"]
CMD ["--help"]
