#!/usr/bin/env bash
# What a drain filter and a channel rate limit cost: TCP in → Plexus → one
# syslog TCP drain → sink (the bench-peers `syslog` scenario), measured
#
#   plain     on a Plexus without rate limits, the drain unfiltered
#   shaped    on a Plexus with -channel-rate set (never reached) and the drain
#             created with a filter that every message passes, so its cost is
#             paid per message: 'severity <= 6 && app != "nope"'
#
# Each round starts a fresh server (empty data dir) for each case, and the
# rounds alternate plain/shaped so that drift on a shared machine hits both
# alike. Prints each run and shaped/plain over the sums.
#
#   scripts/bench-filter.sh [N] [ROUNDS]   (default 2000000 messages, 3 rounds)
set -euo pipefail
N=${1:-2000000}
ROUNDS=${2:-3}
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

go build -o "$tmp/plexus" ./cmd/plexus
go build -o "$tmp/bench" ./cmd/plexus-bench
field() { python3 -c "import json,sys;print(json.load(open('$1'))['$2'])"; }
rate() { python3 -c "import json;print(int(json.load(open('$1'))['e2e_msgs_per_s']))"; }

# run NAME OUT [plexus flags...] -- [bench flags...]
run() {
	local name=$1 out=$2; shift 2
	local sflags=() bflags=()
	while [[ $1 != -- ]]; do sflags+=("$1"); shift; done
	shift
	bflags=("$@")
	rm -rf "$tmp/data" "$tmp/addrs.json"
	PLEXUS_AUTH_KEY=bench-key-0123456789 "$tmp/plexus" -data-dir "$tmp/data" -api-addr 127.0.0.1:0 -logs-addr 127.0.0.1:0 \
		-syslog-addr 127.0.0.1:0 -syslog-udp-addr "" -addr-file "$tmp/addrs.json" \
		-drain-retention-bytes 1073741824 -log-level warn "${sflags[@]}" >"$tmp/plexus.log" 2>&1 &
	pid=$!
	for _ in $(seq 200); do [[ -s "$tmp/addrs.json" ]] && break; sleep 0.05; done
	"$tmp/bench" -api "http://$(field "$tmp/addrs.json" api)" -key bench-key-0123456789 -n "$N" -conns 4 -idle 5s -json \
		-proto tcp -target "$(field "$tmp/addrs.json" syslog_tcp)" -tokens 1 -read sink -drain syslog "${bflags[@]}" >"$out" 2>/dev/null || true
	kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
	python3 -c "
import json;d=json.load(open('$out'))
print('%-7s %9.0f msgs/s  delivered %d/%d  lost %d' % ('$name', d['e2e_msgs_per_s'], d['received'], d['n'], d['lost']))"
}

plain=0 shaped=0
for r in $(seq "$ROUNDS"); do
	run plain "$tmp/plain$r.json" -- 
	run shaped "$tmp/shaped$r.json" -channel-rate 100000000 -- -drain-filter 'severity <= 6 && app != "nope"'
	plain=$((plain + $(rate "$tmp/plain$r.json")))
	shaped=$((shaped + $(rate "$tmp/shaped$r.json")))
done
python3 -c "print('shaped / plain over %d rounds = %.3f' % ($ROUNDS, $shaped / $plain))"
