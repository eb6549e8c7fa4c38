# syntax=docker/dockerfile:1
# The Prepull image: the operator (one bundled JavaScript file) on Node 24, the
# static hold binary that puller pods copy into a shared volume (so images
# without a shell work), and prepull-import for tarball imports and
# `kubectl prepull load`. Distroless-style: the files of a few Debian packages
# (libc, libstdc++, libgcc, CA certificates, tzdata), no shell, no package
# manager, user 65532.
#
# With Docker:  docker buildx build --platform linux/amd64,linux/arm64 -t prepull:dev .
# Without (how CI and the test harness build it): npm run image, which makes
# the same parts with scripts/build-image.sh and assembles this final stage
# with buildah, reproducibly. scripts/image-recipe.ts reads the final stage for
# it, so the two cannot drift; test/image checks the result against this file.

# Every part of both platforms, made by the same script the buildah build runs:
# parts/<arch>/{base,node,prepull} and parts/home.
FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS parts
RUN apt-get update && apt-get install -y --no-install-recommends \
      nodejs npm musl-tools gcc-aarch64-linux-gnu libc6-dev-arm64-cross binutils-aarch64-linux-gnu \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN npm install --no-audit --no-fund --loglevel=error \
 && PATH="$PWD/node_modules/.bin:$PATH" bash scripts/build-image.sh --parts /parts

FROM scratch
ARG TARGETARCH
COPY --from=parts /parts/${TARGETARCH}/base/ /
COPY --from=parts --chown=65532:65532 /parts/home/nonroot/ /home/nonroot/
COPY --from=parts /parts/${TARGETARCH}/node/ /
COPY --from=parts /parts/${TARGETARCH}/prepull/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin
# Two glibc malloc arenas instead of up to 8 per core: V8's worker threads
# (concurrent marking, compilation) each take an arena and keep what they
# freed. A fresh operator over 5000 kwok nodes with 100 PrePulledImages: 141 MiB
# RSS, 132 MiB with this, 125 MiB with this and the whitespace-free bundle.
ENV MALLOC_ARENA_MAX=2
USER 65532:65532
WORKDIR /app
# A young generation of 2 MiB semi-spaces instead of V8's default (which grows
# to 64 MiB, 128 MiB in all, under a steady stream of watch events), and heap
# growth that favours size: RSS at 1000 nodes and 100 PrePulledImages goes from
# ~250 MiB to ~130 MiB (npm run bench:prepulledimage). Benchmarks and tests read
# these flags from here.
ENTRYPOINT ["node", "--max-semi-space-size=2", "--optimize-for-size", "/app/prepull.mjs"]
CMD ["run"]
