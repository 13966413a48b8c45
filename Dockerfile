# The eric image for users (this repository's CI builds FROM scratch images
# with scripts/local-images.sh instead, since it cannot pull base images).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p eric-bin

FROM debian:bookworm-slim
COPY --from=build /src/target/release/eric /usr/local/bin/eric
USER 10001:10001
ENV ERIC__HTTP__ADDR=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s CMD ["eric", "--url", "http://127.0.0.1:8080", "health"]
ENTRYPOINT ["eric"]
CMD ["serve"]
