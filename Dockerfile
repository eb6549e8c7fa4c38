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

# The operator and CLI as one tree-shaken JavaScript file (npm run build): no
# node_modules and no TypeScript stripping at run time, ~65 MiB less RSS.
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# node@24 from npm is a dev dependency for machines with an older Node; the image has Node 24.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY scripts/build.ts ./scripts/build.ts
RUN node scripts/build.ts

FROM node:${NODE_VERSION}-bookworm-slim
ARG TARGETARCH=amd64
WORKDIR /app
COPY --from=build /app/dist/ ./
COPY --from=hold /out/hold-${TARGETARCH} /hold
COPY --from=importer /out/prepull-import /prepull-import
USER 65532:65532
# A young generation of 2 MiB semi-spaces instead of V8's default (which grows
# to 64 MiB, 128 MiB in all, under a steady stream of watch events), and heap
# growth that favours size: RSS at 1000 nodes and 100 PrePulledImages goes from
# ~250 MiB to ~130 MiB (npm run bench:prepulledimage). Benchmarks and tests read
# these flags from here.
ENTRYPOINT ["node", "--max-semi-space-size=2", "--optimize-for-size", "/app/prepull.mjs"]
CMD ["run"]
