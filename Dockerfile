# syntax=docker/dockerfile:1
# FerroLB container images: one build, two images.
#
#   docker build --target controller -t ghcr.io/ferrolb/ferrolb-controller:0.1.0 .
#   docker build --target speaker    -t ghcr.io/ferrolb/ferrolb-speaker:0.1.0 .
#
# The binaries are static (x86_64-unknown-linux-musl), built by hack/build-static, the same
# script CI and developers run without Docker; the images hold nothing but the binary (distroless
# "static": CA certificates, /etc/passwd, tzdata; no shell, no libc).

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
# musl-tools: the C compiler for the musl target (ring builds C and assembly).
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    hack/build-static release /out

# The controller needs no privilege at all: distroless "nonroot" (UID/GID 65532). The Deployment
# also sets runAsNonRoot, a read-only root filesystem and drops every capability.
FROM gcr.io/distroless/static-debian12:nonroot AS controller
COPY --from=build /out/ferrolb-controller /ferrolb-controller
USER 65532:65532
EXPOSE 7472
ENTRYPOINT ["/ferrolb-controller"]

# The speaker opens AF_PACKET sockets (ARP/NDP), which needs CAP_NET_RAW. It runs as UID 0 with
# every other capability dropped by the DaemonSet (capabilities: drop ALL, add NET_RAW;
# allowPrivilegeEscalation: false). The alternative, a non-root user plus file capabilities
# (setcap cap_net_raw+ep), only works with privilege escalation allowed (no_new_privs disables
# file capabilities), so it would loosen the pod's security context rather than tighten it.
FROM gcr.io/distroless/static-debian12 AS speaker
COPY --from=build /out/ferrolb-speaker /ferrolb-speaker
USER 0:0
EXPOSE 7473 7946/udp
ENTRYPOINT ["/ferrolb-speaker"]
