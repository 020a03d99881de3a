#!/usr/bin/env bash
# Measure the durable embedded log with a lot of retained data, on this
# machine, with the real binary and the load tool (cmd/plexus-bench):
#
#   scripts/bench-durable.sh [GIB]      (retained GiB, default 1)
#
# 1. TCP ingest of GIB GiB of 200-byte messages into one channel that keeps
#    them all (-history), then the server's RSS (bounded by -cache-bytes, not
#    by what is retained).
# 2. kill -9, restart: the time from the process start to ready (listening
#    and healthy), and RSS after recovery.
# Everything is on loopback; the data lives in a temp dir removed at the end.
set -euo pipefail
GIB=${1:-1}
N=$((GIB * 1024 * 1024 * 1024 / 200))
cd "$(dirname "$0")/.."
tmp=$(mktemp -d -p "${TMPDIR:-/tmp}")
pid=
cleanup() { [[ -n "$pid" ]] && kill -9 "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
go build -o "$tmp/plexus" ./cmd/plexus
go build -o "$tmp/bench" ./cmd/plexus-bench
field() { python3 -c "import json,sys;print(json.load(open('$1'))['$2'])"; }
rss() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
startp() {
	rm -f "$tmp/addrs.json"
	local t0; t0=$(date +%s.%N)
	PLEXUS_AUTH_KEY=bench "$tmp/plexus" -data-dir "$tmp/data" -api-addr 127.0.0.1:0 -logs-addr 127.0.0.1:0 \
		-syslog-addr 127.0.0.1:0 -syslog-udp-addr "" -addr-file "$tmp/addrs.json" -history $((N + 1000)) \
		-log-level warn >>"$tmp/plexus.log" 2>&1 &
	pid=$!
	until [[ -s "$tmp/addrs.json" ]]; do sleep 0.01; done
	api=http://$(field "$tmp/addrs.json" api)
	until curl -fs "$api/healthcheck" >/dev/null 2>&1 || curl -fs "$api/v3/healthcheck" >/dev/null 2>&1; do sleep 0.01; done
	ready=$(python3 -c "print('%.2f' % ($(date +%s.%N) - $t0))")
}
startp
echo "empty start: ready in ${ready} s, RSS $(rss $pid) MB"
tcp=$(field "$tmp/addrs.json" syslog_tcp)
"$tmp/bench" -api "$api" -key bench -n "$N" -conns 4 -tokens 1 -proto tcp -target "$tcp" -read none -keep -json >"$tmp/ingest.json" 2>/dev/null
python3 -c "import json;d=json.load(open('$tmp/ingest.json'));print('ingest   %d messages (%.1f GiB) over TCP: %.0f msgs/s' % (d['n'], d['n']*200/2**30, d['send_msgs_per_s']))"
sleep 1
echo "retained $(du -sh "$tmp/data/logs" | cut -f1) on disk: server RSS $(rss $pid) MB (-cache-bytes 64 MiB)"
kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=
startp
echo "after kill -9: ready in ${ready} s with $(du -sh "$tmp/data/logs" | cut -f1) retained, RSS $(rss $pid) MB"
