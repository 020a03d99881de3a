#!/usr/bin/env bash
# Measure Plexus against rsyslog on this machine, in one run, with the same
# load tool (cmd/plexus-bench), 200-byte RFC 5424 messages over 4 TCP
# connections. Prints one line per scenario and the ratios to rsyslog.
#
#   scripts/bench-peers.sh [N]          (N messages per scenario, default 2000000)
#
# Scenarios:
#   rsyslog   TCP in → rsyslog (imtcp, in-memory queues) → omfwd TCP → sink
#   imptcp    the same with imptcp, rsyslog's fastest TCP input
#   rsys-da   imptcp with a disk-assisted queue: the durable peer
#   ingest    TCP in → Plexus channel logs → 4 tail sessions read everything back
#   syslog    TCP in → Plexus → one syslog TCP drain → sink
#   http      HTTP POST /logs (500-message batches) → Plexus → one HTTP drain → sink
#   post      POST /logs alone: 4 clients, 500-message batches, each 204 after its fsync
#   filtered  the syslog scenario with a filter on the drain (every message passes) and a
#             rate limit on every channel (-channel-rate, not reached)
#   always    the syslog scenario with -sync always (every append waits for its fsync)
#   latency   TCP at 20,000 msgs/s → tail sessions (p50/p99 ingest→tail)
#   fanout    1,000 channels, each with an HTTP drain, 50,000 msgs/s in total
#   dead      one channel whose syslog drain is dead: 1,000,000 messages, then
#             the server's RSS (bounded by -drain-retention-bytes, 64 MiB)
#
# Plexus runs with the embedded backend in a temp dir; everything is on loopback.
# For the throughput scenarios drain retention is raised to 1 GiB so that a
# drain slower than ingest shows up as lower throughput rather than as L10
# losses (a second Plexus with default retention runs the dead-drain case).
set -euo pipefail
N=${1:-2000000}
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

go build -o "$tmp/plexus" ./cmd/plexus
go build -o "$tmp/bench" ./cmd/plexus-bench
freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
field() { python3 -c "import json,sys;print(json.load(open('$1'))['$2'])"; }
rate() { python3 -c "import json,sys;d=json.load(open('$1'));print(int(d['e2e_msgs_per_s']))"; }
summ() { python3 -c "
import json;d=json.load(open('$1'))
print('%-8s offered %9s  delivered %8d/%d  %9.0f msgs/s  p50 %7.2f ms  p99 %7.2f ms  in-band %d  lost %d' % ('$2', d.get('offered','max'), d['received'], d['n'], d['e2e_msgs_per_s'], d['latency_p50_ms'], d['latency_p99_ms'], d['reported_dropped'], d['lost']))"; }

# --- rsyslog TCP → TCP ---------------------------------------------------------
# run_rsyslog NAME INPUT_MODULE QUEUE_PARAMS: one rsyslog forwarding TCP → TCP.
run_rsyslog() {
	local name=$1 module=$2 queue=$3
	in=$(freeport); out=$(freeport)
	mkdir -p "$tmp/$name"
	cat >"$tmp/$name/rsyslog.conf" <<CONF
global(workDirectory="$tmp/$name" maxMessageSize="64k")
module(load="$module")
input(type="$module" port="$in" ruleset="fwd")
ruleset(name="fwd" $queue) {
  action(type="omfwd" target="127.0.0.1" port="$out" protocol="tcp" TCP_Framing="octet-counted"
         template="RSYSLOG_SyslogProtocol23Format")
}
CONF
	rsyslogd -n -f "$tmp/$name/rsyslog.conf" -i "$tmp/$name/rsyslog.pid" >"$tmp/$name/rsyslog.log" 2>&1 &
	pids+=($!)
	sleep 1
	"$tmp/bench" -no-api -target "127.0.0.1:$in" -read sink -sink "127.0.0.1:$out" -n "$N" -conns 4 -idle 5s -json >"$tmp/$name.json" 2>/dev/null || true
	summ "$tmp/$name.json" "$name"
	kill "${pids[-1]}"; unset 'pids[-1]'
}
if command -v rsyslogd >/dev/null; then
	mem='queue.type="FixedArray" queue.size="500000" queue.dequeueBatchSize="4096"'
	run_rsyslog rsyslog imtcp "$mem"
	# imptcp: rsyslog's fastest TCP input (what it recommends for throughput).
	run_rsyslog imptcp imptcp "$mem"
	# The durable peer: a disk-assisted queue (spills to disk, kept at shutdown).
	run_rsyslog rsys-da imptcp 'queue.type="LinkedList" queue.size="500000" queue.dequeueBatchSize="4096" queue.filename="daq" queue.maxDiskSpace="2g" queue.saveOnShutdown="on" queue.highWatermark="400000"'
else
	echo "rsyslog    (rsyslogd not installed: skipped)"
fi

# --- Plexus ------------------------------------------------------------------
PLEXUS_AUTH_KEY=bench-key-0123456789 "$tmp/plexus" -data-dir "$tmp/data" -api-addr 127.0.0.1:0 -logs-addr 127.0.0.1:0 \
	-syslog-addr 127.0.0.1:0 -syslog-udp-addr "" -addr-file "$tmp/addrs.json" -history 1000000 \
	-drain-retention-bytes 1073741824 -channel-rate 100000000 \
	-log-level warn >"$tmp/plexus.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [[ -s "$tmp/addrs.json" ]] && break; sleep 0.05; done
api=http://$(field "$tmp/addrs.json" api)
tcp=$(field "$tmp/addrs.json" syslog_tcp)
logs=http://$(field "$tmp/addrs.json" logs)/logs
b() { "$tmp/bench" -api "$api" -key bench-key-0123456789 -n "$N" -conns 4 -idle 5s -json "$@"; }

b -proto tcp -target "$tcp" -tokens 4 -read tail >"$tmp/ingest.json" 2>/dev/null || true
summ "$tmp/ingest.json" ingest
b -proto tcp -target "$tcp" -tokens 1 -read sink -drain syslog >"$tmp/syslog.json" 2>/dev/null || true
summ "$tmp/syslog.json" syslog
# The same with a filter on the drain that every message passes (its cost is
# paid per message) and a rate limit on the channel that is not reached.
b -proto tcp -target "$tcp" -tokens 1 -read sink -drain syslog -drain-filter 'severity <= 6 && app != "nope"' >"$tmp/filtered.json" 2>/dev/null || true
summ "$tmp/filtered.json" filtered
python3 -c "print('filtered / syslog (same run) = %.3f' % ($(rate "$tmp/filtered.json") / $(rate "$tmp/syslog.json")))"
b -proto http -logs-url "$logs" -tokens 1 -batch 500 -read sink -drain http >"$tmp/http.json" 2>/dev/null || true
summ "$tmp/http.json" http
b -proto http -logs-url "$logs" -tokens 1 -batch 500 -read none >"$tmp/post.json" 2>/dev/null || true
python3 -c "import json;d=json.load(open('$tmp/post.json'));print('post     POST /logs, 4 clients, 500-message batches, durable 204s: %9.0f msgs/s' % d.get('send_msgs_per_s', d.get('e2e_msgs_per_s',0)))"
"$tmp/bench" -api "$api" -key bench-key-0123456789 -n 200000 -conns 4 -tokens 4 -rate 20000 -proto tcp -target "$tcp" -read tail -json >"$tmp/latency.json" 2>/dev/null || true
summ "$tmp/latency.json" latency
"$tmp/bench" -api "$api" -key bench-key-0123456789 -n 500000 -conns 4 -tokens 1000 -rate 50000 -proto tcp -target "$tcp" -read sink -drain http -json >"$tmp/fanout.json" 2>/dev/null || true
summ "$tmp/fanout.json" fanout
kill "${pids[-1]}"; unset 'pids[-1]'

# --- -sync always: every append waits for its fsync -------------------------
rm -f "$tmp/addrs.json"
PLEXUS_AUTH_KEY=bench-key-0123456789 "$tmp/plexus" -data-dir "$tmp/data3" -api-addr 127.0.0.1:0 -logs-addr 127.0.0.1:0 \
	-syslog-addr 127.0.0.1:0 -syslog-udp-addr "" -addr-file "$tmp/addrs.json" -history 1000000 -sync always \
	-drain-retention-bytes 1073741824 -log-level warn >"$tmp/plexus3.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [[ -s "$tmp/addrs.json" ]] && break; sleep 0.05; done
api=http://$(field "$tmp/addrs.json" api)
tcp=$(field "$tmp/addrs.json" syslog_tcp)
b -proto tcp -target "$tcp" -tokens 1 -read sink -drain syslog >"$tmp/always.json" 2>/dev/null || true
summ "$tmp/always.json" always
kill "${pids[-1]}"; unset 'pids[-1]'

# --- a dead drain with default retention ---------------------------------------
rm -f "$tmp/addrs.json"
PLEXUS_AUTH_KEY=bench-key-0123456789 "$tmp/plexus" -data-dir "$tmp/data2" -api-addr 127.0.0.1:0 -logs-addr 127.0.0.1:0 \
	-syslog-addr 127.0.0.1:0 -syslog-udp-addr "" -addr-file "$tmp/addrs.json" -log-level error >"$tmp/plexus2.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [[ -s "$tmp/addrs.json" ]] && break; sleep 0.05; done
api=http://$(field "$tmp/addrs.json" api)
tcp=$(field "$tmp/addrs.json" syslog_tcp)
"$tmp/bench" -api "$api" -key bench-key-0123456789 -n 1000000 -conns 4 -tokens 1 -proto tcp -target "$tcp" -read none \
	-drain-url syslog://127.0.0.1:9 -keep -json >"$tmp/dead.json" 2>/dev/null || true
python3 -c "import json;d=json.load(open('$tmp/dead.json'));print('dead     1000000 undelivered messages to a dead drain: server RSS %.1f MB (drain retention bound 64 MiB)' % d.get('server_rss_mb',0))"

for peer in rsyslog imptcp rsys-da; do
	[[ -s "$tmp/$peer.json" ]] || continue
	r=$(rate "$tmp/$peer.json")
	for s in ingest syslog http always; do
		[[ -s "$tmp/$s.json" ]] || continue
		python3 -c "print('%-8s / %-7s TCP→TCP = %.2f' % ('$s', '$peer', $(rate "$tmp/$s.json") / $r))"
	done
done
