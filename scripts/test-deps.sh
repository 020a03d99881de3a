#!/usr/bin/env bash
# Installs the programs the tests use that Go does not fetch:
#   redis-server and redis-cli (redis backend and cluster tests), rsyslogd +
#   the gtls driver (forwarding and drain end-to-end tests), logger
#   (injecting messages into rsyslog), chromium (the web UI's browser test);
#   for test/deploy: systemd-analyze and systemd-sysusers (the systemd unit),
#   buildah, podman and runc (building and running the container image; runc
#   because crun cannot start a container under this machine's hybrid cgroups).
# Idempotent: does nothing when everything is there. As root it installs what
# is missing with apt-get; otherwise it prints what is missing and returns 0
# (the tests that need it skip loudly, except under CI=true where they fail:
# test/plexustest.Missing).
set -euo pipefail

missing=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }

have redis-server || missing+=(redis-server)
have redis-cli || missing+=(redis-tools)
have rsyslogd || missing+=(rsyslog)
have logger || missing+=(bsdutils)
have chromium || missing+=(chromium)
# TLS forwarding from rsyslog needs its GnuTLS network stream driver.
gtls=no
for f in /usr/lib/*/rsyslog/lmnsd_gtls.so /usr/lib/rsyslog/lmnsd_gtls.so; do
	[ -e "$f" ] && gtls=yes
done
[ "$gtls" = yes ] || missing+=(rsyslog-gnutls)
have systemd-analyze || missing+=(systemd)
have buildah || missing+=(buildah)
have podman || missing+=(podman)
have runc || missing+=(runc)

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "test-deps: missing ${missing[*]} (not root or no apt-get: not installing; tests that need them will skip, or fail under CI=true)" >&2
	exit 0
fi

echo "test-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# The tests start their own daemons; keep the packages' init scripts from
# starting system services (only when no policy is in place already).
policy=/usr/sbin/policy-rc.d
added_policy=no
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added_policy=yes
fi
cleanup() { if [ "$added_policy" = yes ]; then rm -f "$policy"; fi; }
trap cleanup EXIT
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
