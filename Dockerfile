# payhook container image: a cargo-chef multi-stage build (planner -> builder
# -> slim runtime).
#
#   docker build -t payhook .
#   docker run --rm -p 8080:8080 -p 9090:9090 \
#       -e PAYHOOK_REDIS_URL=redis://redis:6379 payhook
#
# The build and runtime images must be on the same Debian release. The plain
# `latest-rust-1` tag now follows `rust:1`, which is Debian trixie (glibc
# 2.41); a binary linked there fails on bookworm-slim with "GLIBC_2.39 not
# found". `latest-rust-1-bookworm` is the same image built on bookworm, whose
# glibc matches the runtime stage below.

# Chef: the Rust toolchain with cargo-chef preinstalled, shared by the
# planner and the builder so both see the same cargo and rustc.
FROM lukemathwalker/cargo-chef:latest-rust-1-bookworm AS chef
WORKDIR /app

# Planner: reduce the workspace to a recipe (manifests and lockfile only).
# The recipe changes only when dependencies change, so the layer built from
# it below stays cached across ordinary source edits.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# Builder: compile the dependencies from the recipe first (the slow,
# cacheable layer), then copy the source and compile only payhook itself.
FROM chef AS builder
COPY --from=planner /app/recipe.json recipe.json
RUN cargo chef cook --release --recipe-path recipe.json
COPY . .
RUN cargo build --release --bin payhook

# Runtime: no toolchain and no sources, only the binary, its config and the
# CA certificates any outbound TLS needs. It runs as an unprivileged user.
FROM debian:bookworm-slim AS runtime
WORKDIR /app
# Unpinned on purpose: the security updates of the bookworm release are wanted.
# hadolint ignore=DL3008
RUN apt-get update -y \
    && apt-get install -y --no-install-recommends ca-certificates \
    && apt-get autoremove -y \
    && apt-get clean -y \
    && rm -rf /var/lib/apt/lists/*
# A fixed numeric id, so Kubernetes' runAsNonRoot can check it.
RUN groupadd --system --gid 10001 payhook \
    && useradd --system --uid 10001 --gid payhook --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin payhook
COPY --from=builder /app/target/release/payhook /app/payhook
COPY config /app/config
USER 10001:10001
# Inside a container the gateway must listen on every interface to be
# reachable through a published port; these override config/payhook.toml.
ENV PAYHOOK_LISTEN=0.0.0.0:8080 \
    PAYHOOK_ADMIN_LISTEN=0.0.0.0:9090
# 8080: webhook ingress. 9090: admin (health, metrics).
EXPOSE 8080 9090
ENTRYPOINT ["/app/payhook"]
CMD ["serve", "--config", "/app/config/payhook.toml"]
