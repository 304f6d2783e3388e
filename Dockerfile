# syntax=docker/dockerfile:1
# The monitorme image: one static binary on a distroless base, non-root.
# The chart's default image (ghcr.io/monitorme/monitorme:<appVersion>) is
# this file built with VERSION=<appVersion>. `make image` builds the same
# image without a container runtime (build/image), as an OCI layout.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
COPY third_party/ third_party/
RUN go mod download
COPY . .
ARG VERSION=devel
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/monitorme/monitorme/internal/version.Version=${VERSION}" \
    -o /out/monitorme ./cmd/monitorme

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/monitorme /monitorme
# 65532 is distroless's nonroot user; the chart runs as it too, with a
# read-only root filesystem (the binary writes only to /tmp and --data-dir).
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/monitorme"]
