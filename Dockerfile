# The eric image for users: `docker compose up` builds it from here
# (docker-compose.yml), or `docker build -t eric .`. This repository's CI
# cannot pull base images, so it runs FROM scratch images built by
# scripts/local-images.sh instead (deploy/compose.local.yml).
#
# Dependency builds are cached with BuildKit cache mounts, not with a
# dependency-only layer of stub sources: a stub layer must copy every
# member's manifest and fake every target (libs, the binary, each declared
# bench), goes stale silently when a crate is added, and rebuilds every
# dependency whenever Cargo.lock changes at all. With the registry and
# target directory as cache mounts, a rebuild downloads nothing and
# recompiles only the crates whose sources changed. This needs BuildKit, the
# default builder of Docker Engine 23+ and of Compose v2 (on older engines:
# DOCKER_BUILDKIT=1); the cache lives in the builder, not in image layers.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# target/ is a cache mount, absent from the layer, so the binary is copied
# out of it in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p eric-bin \
    && cp target/release/eric /usr/local/bin/eric

FROM debian:bookworm-slim
COPY --from=build /usr/local/bin/eric /usr/local/bin/eric
# The disk engine's data directory (the default without Redis), writable
# by the user eric runs as; a volume, so it outlives the container.
RUN mkdir /data && chown 10001:10001 /data
USER 10001:10001
ENV ERIC__HTTP__ADDR=0.0.0.0:8080
ENV ERIC__STORAGE__DATA_DIR=/data
VOLUME /data
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s CMD ["eric", "--url", "http://127.0.0.1:8080", "health"]
ENTRYPOINT ["eric"]
CMD ["serve"]
