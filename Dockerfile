# mtls-prober container image.
#
# Build:  docker build -t ghcr.io/mtls-prober/mtls-prober:0.1.0 --build-arg VERSION=0.1.0 .
#
# Every command here is one CI runs too: the only RUN is the `cargo build` line of
# .ci/deploy-checks (which checks the two agree). Nothing is downloaded at build time
# except crates, pinned by Cargo.lock (--locked).
#
# The TLS stack is rustls with aws-lc-rs, which links C code built against glibc, so
# the runtime is distroless `cc` (glibc + libgcc_s, no shell, no package manager),
# built on the same Debian release as the builder (bookworm, glibc 2.36).

# --- build ------------------------------------------------------------------------
# The Rust release CI uses (rust-toolchain on the CI machine: 1.95). For reproducible
# releases pin the digest too: rust:1.95-slim-bookworm@sha256:...
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# The whole crate (manifest, lockfile, src/, tests/ and benches/ that Cargo.toml
# names); .dockerignore keeps target/, .git/, deploy/ and docs/ out.
COPY . .
RUN cargo build --release --locked

# --- runtime ----------------------------------------------------------------------
FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="mtls-prober" \
      org.opencontainers.image.description="Synthetic mTLS connectivity prober for service meshes: layered TLS/mTLS probes, failure taxonomy, Prometheus metrics" \
      org.opencontainers.image.source="https://github.com/mtls-prober/mtls-prober" \
      org.opencontainers.image.documentation="https://github.com/mtls-prober/mtls-prober/blob/main/docs/deploy.md" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
COPY --from=build /src/target/release/mtls-prober /usr/local/bin/mtls-prober
# The commented example config; in Kubernetes the ConfigMap is mounted over it.
COPY probes.toml /etc/mtls-prober/probes.toml
# glibc's malloc arenas: the agent caps them itself at one per runtime worker
# (src/memory.rs; docs/performance.md). MALLOC_ARENA_MAX in the pod's env overrides.
# distroless `nonroot`: uid/gid 65532, numeric so runAsNonRoot can verify it.
USER 65532:65532
# /metrics, /healthz, /readyz, /api/v1/edges, / ; and the optional [serve] mTLS port.
EXPOSE 9464 8443
ENTRYPOINT ["mtls-prober"]
CMD ["run", "--config", "/etc/mtls-prober/probes.toml"]
