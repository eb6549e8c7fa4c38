# syntax=docker/dockerfile:1
# The Prepull image: the operator, the static hold binary that puller pods copy
# into a shared volume (so images without a shell work), and prepull-import for
# tarball imports and `kubectl prepull load`.
#   docker build -t prepull:dev .
ARG NODE_VERSION=24

FROM debian:bookworm-slim AS hold
RUN apt-get update && apt-get install -y --no-install-recommends musl-tools gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
 && rm -rf /var/lib/apt/lists/*
COPY src/agent/hold/hold.c /src/hold.c
RUN mkdir -p /out \
 && musl-gcc -static -Os -s -Wall -Wextra -Werror -o /out/hold-amd64 /src/hold.c \
 && aarch64-linux-gnu-gcc -static -Os -s -Wall -Wextra -Werror -o /out/hold-arm64 /src/hold.c

# prepull-import: tarball imports into the node's containerd (containerd's client library).
FROM golang:1.26-bookworm AS importer
ARG TARGETARCH=amd64
WORKDIR /src
COPY src/agent/importer/ ./
RUN CGO_ENABLED=0 GOOS=linux GOARCH=${TARGETARCH} go build -trimpath -tags "no_btrfs no_devmapper no_zfs" \
      -ldflags "-s -w" -o /out/prepull-import .

FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# node@24 from npm is a dev dependency for machines with an older Node; the image has Node 24.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:${NODE_VERSION}-bookworm-slim
ARG TARGETARCH=amd64
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
COPY crds ./crds
COPY --from=hold /out/hold-${TARGETARCH} /hold
COPY --from=importer /out/prepull-import /prepull-import
COPY bin ./bin
USER 65532:65532
# Node 24 runs the TypeScript sources directly (type stripping).
ENTRYPOINT ["node", "/app/src/cli/main.ts"]
CMD ["run"]
