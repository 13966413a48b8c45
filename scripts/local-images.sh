#!/usr/bin/env bash
# Builds the images deploy/compose.local.yml puts into docker-compose.yml in
# place of the users' ones, FROM scratch, from binaries on this machine (this
# Docker engine cannot pull any base image):
#   eric:local        the release `eric` binary and the shared libraries it loads
#   eric-redis:local  Debian's redis-server and redis-cli with their libraries
# Usage: scripts/local-images.sh            (both)
#        ERIC_BIN=path scripts/local-images.sh   (use an already built eric)
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Copies a binary and every shared library ldd lists into rootfs $1.
add_binary() {
  local rootfs=$1 binary=$2 target=$3
  mkdir -p "$rootfs$(dirname "$target")"
  cp -L "$binary" "$rootfs$target"
  for lib in $(ldd "$binary" | grep -oE '/[^ ]+'); do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done
}

build_eric() {
  local bin=${ERIC_BIN:-}
  if [ -z "$bin" ]; then
    cargo build --release --locked -p eric-bin
    bin=${CARGO_TARGET_DIR:-target}/release/eric
  fi
  local ctx=$work/eric
  add_binary "$ctx/rootfs" "$bin" /usr/local/bin/eric
  mkdir -p "$ctx/rootfs/tmp" "$ctx/rootfs/etc" "$ctx/data"
  echo 'eric:x:10001:10001::/tmp:/usr/local/bin/eric' > "$ctx/rootfs/etc/passwd"
  cat > "$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
# The disk engine's data directory (without Redis), the user's own.
COPY --chown=10001:10001 data/ /data/
USER 10001:10001
ENV ERIC__HTTP__ADDR=0.0.0.0:8080
ENV ERIC__STORAGE__DATA_DIR=/data
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/eric"]
CMD ["serve"]
DOCKERFILE
  docker build -q -t eric:local "$ctx" >/dev/null
  echo "built eric:local"
}

build_redis() {
  local server cli
  server=$(command -v redis-server) || { echo "redis-server is missing (scripts/install-test-deps)" >&2; exit 1; }
  cli=$(command -v redis-cli) || { echo "redis-cli is missing (apt-get install redis-tools)" >&2; exit 1; }
  local ctx=$work/redis
  add_binary "$ctx/rootfs" "$server" /usr/bin/redis-server
  add_binary "$ctx/rootfs" "$cli" /usr/bin/redis-cli
  mkdir -p "$ctx/rootfs/data" "$ctx/rootfs/tmp"
  cat > "$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
WORKDIR /data
EXPOSE 6379
ENTRYPOINT []
CMD ["redis-server", "--protected-mode", "no", "--dir", "/data"]
DOCKERFILE
  docker build -q -t eric-redis:local "$ctx" >/dev/null
  echo "built eric-redis:local"
}

build_eric
build_redis
