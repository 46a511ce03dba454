# syntax=docker/dockerfile:1
# One image holding every service binary and `codeguardians`; the Deployment (or compose service)
# picks the command. Built in three stages so a code change does not rebuild the dependencies:
#   planner  – cargo-chef reduces the workspace to its manifests (recipe.json)
#   builder  – cooks (builds) the dependencies from the recipe, a layer that stays cached while
#              Cargo.toml/Cargo.lock do not change, then builds the workspace's binaries
#   runtime  – distroless (glibc, no shell, no package manager, no compiler), non-root, with the
#              binaries only: no sources, no build cache, no secrets
#
#   docker build -t codeguardians:dev .
#
# Build and runtime base share Debian 12 (bookworm), so the glibc the binaries link against is
# the one they run on.

ARG RUST_VERSION=1.95
ARG CARGO_CHEF_VERSION=0.1.78

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
ARG CARGO_CHEF_VERSION
RUN cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}"
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --workspace --recipe-path recipe.json
COPY . .
# Every binary of the workspace lands in /out/bin (a new service needs no change here), and an
# empty /out/data becomes the writable volume.
RUN cargo build --release --workspace --bins --locked \
    && mkdir -p /out/bin /out/data \
    && find target/release -maxdepth 1 -type f -executable -exec cp {} /out/bin/ \; \
    && ls -l /out/bin

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=builder /out/bin/ /usr/local/bin/
COPY --from=builder --chown=65532:65532 /out/data /data
# Listen on every interface; the only writable place is the /data volume (HealthGuard's and
# BiasGuard's outboxes, ContextGuard's journal, embedded mode's SQLite file); the root
# filesystem may be mounted read-only.
ENV CG_HOST=0.0.0.0 \
    CG_DATA_DIR=/data \
    CG_LOG_FORMAT=json
VOLUME ["/data"]
WORKDIR /data
# Public ports 8000–8005, admin ports (/metrics, detailed /health) 9000–9005.
EXPOSE 8000-8005 9000-9005
USER 65532:65532
# No curl in the image: `codeguardians probe` asks http://127.0.0.1:$CG_PORT/health/ready (set
# CG_PORT for each service, as docker-compose.yml and k8s/ do).
HEALTHCHECK --interval=10s --timeout=4s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/codeguardians", "probe"]
CMD ["/usr/local/bin/gateway"]
