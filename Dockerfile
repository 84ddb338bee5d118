# Both services from one build stage, so that `docker compose up --build`
# compiles the workspace once; each service is a target of its own, run as a
# non-root user in a slim image. Build from the repository root:
#   docker build --target auth-service -t auth-service .
#   docker build --target user-service -t user-service .
FROM rust:1.90-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p auth-service -p user-service \
    && strip target/release/auth-service target/release/user-service

FROM debian:bookworm-slim AS runtime
# curl only serves the container health check.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir /credentials

# A service's own: its user and home, its binary, and its addresses (in a
# container it must listen beyond loopback; the network stays private).
FROM runtime AS auth-service
RUN useradd --system --uid 10001 --home-dir /var/lib/auth-service --create-home app \
    && chown app /credentials
COPY --from=build /src/target/release/auth-service /usr/local/bin/auth-service
USER 10001
WORKDIR /var/lib/auth-service
ENV AUTH_GRPC_ADDR=0.0.0.0:50051 \
    AUTH_HTTP_ADDR=0.0.0.0:8081 \
    AUTH_DATABASE_URL=sqlite:/var/lib/auth-service/auth.db
EXPOSE 50051 8081
HEALTHCHECK --interval=5s --timeout=3s --retries=12 CMD curl -fs http://127.0.0.1:8081/readyz || exit 1
ENTRYPOINT ["/usr/local/bin/auth-service"]

FROM runtime AS user-service
RUN useradd --system --uid 10001 --home-dir /var/lib/user-service --create-home app \
    && chown app /credentials
COPY --from=build /src/target/release/user-service /usr/local/bin/user-service
USER 10001
WORKDIR /var/lib/user-service
ENV USER_GRPC_ADDR=0.0.0.0:50052 \
    USER_HTTP_ADDR=0.0.0.0:8082 \
    USER_DATABASE_URL=sqlite:/var/lib/user-service/user.db
EXPOSE 50052 8082
HEALTHCHECK --interval=5s --timeout=3s --retries=12 CMD curl -fs http://127.0.0.1:8082/readyz || exit 1
ENTRYPOINT ["/usr/local/bin/user-service"]
