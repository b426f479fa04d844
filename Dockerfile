# syntax=docker/dockerfile:1

# Build stage: a static binary (CGO off), so the runtime image needs no libc.
FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS TARGETARCH
# The build context has no .git, so Go cannot stamp the version itself:
# pass it in, e.g. --build-arg VERSION=$(git describe --tags --always --dirty)
# --build-arg REVISION=$(git rev-parse HEAD) --build-arg BUILD_TIME=$(date -u +%Y-%m-%dT%H:%M:%SZ).
# Unset, "factstream version" and /status say "devel".
ARG VERSION="" REVISION="" BUILD_TIME=""
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w \
      -X factstream/buildinfo.version=${VERSION} \
      -X factstream/buildinfo.revision=${REVISION} \
      -X factstream/buildinfo.buildTime=${BUILD_TIME}" \
      -o /out/factstream . \
 && mkdir -p /out/data

# Runtime stage: distroless "static" has no shell and no package manager,
# and its nonroot user (65532) runs the service.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/factstream /factstream
# The bbolt file lives in /data; a named volume mounted there starts with
# this directory's owner, so the nonroot user can write it.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV FACTSTREAM_ADDR=:3000 \
    FACTSTREAM_STORE=bolt:/data/facts.db
EXPOSE 3000
VOLUME ["/data"]
# The image has no curl: the binary checks its own /healthz.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/factstream", "healthcheck"]
ENTRYPOINT ["/factstream"]
