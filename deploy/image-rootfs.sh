#!/bin/sh
# Lays out what the container image (Dockerfile) holds, built from this
# checkout with the Go toolchain on PATH:
#
#   deploy/image-rootfs.sh OUT [VERSION]
#
#   OUT/rootfs/plexus               static binary (CGO_ENABLED=0), -version says VERSION
#   OUT/rootfs/plexus-healthcheck   the HEALTHCHECK probe (the image has no shell or curl)
#   OUT/rootfs/etc/passwd, group    root and the user plexus (65532), for USER and ls -l
#   OUT/rootfs/etc/ssl/certs/ca-certificates.crt   roots for HTTPS drains
#   OUT/data/                       the empty volume, owned by 65532 in the image
#
# The Dockerfile's build stage runs it; test/deploy runs it on the host to
# build the image's final stage without pulling a Go image.
set -eu
out=${1:?usage: $0 OUT [VERSION]}
version=${2:-dev}
cd "$(dirname "$0")/.."

rm -rf "$out/rootfs" "$out/data"
mkdir -p "$out/rootfs/etc/ssl/certs" "$out/data"
export CGO_ENABLED=0
go build -ldflags "-s -w -X main.version=$version" -o "$out/rootfs/" ./cmd/plexus ./cmd/plexus-healthcheck
printf 'root:x:0:0:root:/root:/sbin/nologin\nplexus:x:65532:65532:Plexus syslog router:/data:/sbin/nologin\n' >"$out/rootfs/etc/passwd"
printf 'root:x:0:\nplexus:x:65532:\n' >"$out/rootfs/etc/group"
cp /etc/ssl/certs/ca-certificates.crt "$out/rootfs/etc/ssl/certs/ca-certificates.crt"
