# Plexus container image (docs/deploy.md):
#
#   docker build --build-arg VERSION=$(git describe --always --dirty) -t plexus .   # or: make image
#   docker run -d -p 8001:8001 -p 8601:8601 -p 6001:6001 -p 6001:6001/udp -v plexus-data:/data plexus
#
# The build stage compiles static binaries (deploy/image-rootfs.sh); the final
# stage is FROM scratch: the binaries, CA roots, /etc/passwd and the /data
# volume, run as the unprivileged user plexus (65532).

ARG GO_VERSION=1.26
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# -trimpath: no build paths in the binaries.
RUN GOFLAGS=-trimpath deploy/image-rootfs.sh /out "$VERSION"

FROM scratch
COPY --from=build /out/rootfs/ /
COPY --from=build --chown=65532:65532 /out/data/ /data/
USER 65532:65532
WORKDIR /data
VOLUME /data
# The node listens on all interfaces inside the container; the admin key is
# generated into /data/auth_key on first start unless PLEXUS_AUTH_KEY is set.
ENV PLEXUS_DATA_DIR=/data \
    PLEXUS_API_ADDR=:8001 \
    PLEXUS_LOGS_ADDR=:8601 \
    PLEXUS_SYSLOG_ADDR=:6001 \
    PLEXUS_SYSLOG_UDP_ADDR=:6001 \
    PLEXUS_LOG_FORMAT=json
# API (sessions, /metrics), HTTP log input, syslog TCP and UDP, syslog TLS
# (with PLEXUS_TLS_CERT and PLEXUS_TLS_KEY).
EXPOSE 8001/tcp 8601/tcp 6001/tcp 6001/udp 6514/tcp
# Healthy: the process answers GET /healthz (no auth).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/plexus-healthcheck", "-path", "/healthz"]
# docker stop sends SIGTERM: the node shuts down in order (docs/operations.md);
# give it time: docker stop -t 45.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/plexus"]
