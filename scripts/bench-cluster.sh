#!/usr/bin/env bash
# Measure the Redis (cluster) backend on this machine with the load tool:
#
#   scripts/bench-cluster.sh [N]     (N messages per throughput scenario, default 2000000)
#
#   shards=1 / shards=2   one node, TCP in → channel logs in Redis Streams → one syslog TCP
#                         drain per channel (4 channels) → sink, with one then two shards
#   200ch shards=1 / =2   the same with 200 channels (one Lua append per channel per flush:
#                         Redis becomes the bottleneck) and a 4 MiB write buffer per shard,
#                         so that back-pressure shows Redis' sustained rate
#   cross-node tail       3 nodes, 2 shards: TCP into node 1 at 20,000 msgs/s, tail sessions
#                         on node 2: ingest→tail latency across nodes
#   dead drains           one node: 3 × 1,000,000 messages for channels whose drains are dead;
#                         the node's RSS after each (the data waits in Redis, within retention)
#
# Uses deploy/local-cluster.sh (redis-server on unix sockets, nodes on loopback ports).
set -euo pipefail
N=${1:-2000000}
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
cleanup() { deploy/local-cluster.sh stop "$tmp/c" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
go build -o "$tmp/plexus" ./cmd/plexus
go build -o "$tmp/bench" ./cmd/plexus-bench
export PLEXUS_BIN=$tmp/plexus
node() { python3 -c "import json;n=json.load(open('$tmp/c/cluster.json'))['nodes'][$1];print(n['addrs']['$2'])"; }
key() { python3 -c "import json;print(json.load(open('$tmp/c/cluster.json'))['auth_key'])"; }
line() { python3 -c "
import json;d=json.load(open('$1'))
print('%-16s delivered %8d/%d  %9.0f msgs/s  p50 %7.2f ms  p99 %7.2f ms  in-band %d  lost %d  RSS %.0f MB' % ('$2', d['received'], d['n'], d['e2e_msgs_per_s'], d['latency_p50_ms'], d['latency_p99_ms'], d['reported_dropped'], d['lost'], d.get('server_rss_mb',0)))"; }

for shards in 1 2; do
	PLEXUS_NODE_FLAGS="-drain-retention-bytes 1073741824 -log-level warn" deploy/local-cluster.sh start "$tmp/c" 1 "$shards" >/dev/null
	"$tmp/bench" -api "http://$(node 0 api)" -key "$(key)" -proto tcp -target "$(node 0 syslog_tcp)" -n "$N" \
		-tokens 4 -conns 4 -read sink -drain syslog -idle 5s -json >"$tmp/s$shards.json" 2>/dev/null || true
	line "$tmp/s$shards.json" "shards=$shards"
	deploy/local-cluster.sh stop "$tmp/c" >/dev/null; rm -rf "$tmp/c"
done

for shards in 1 2; do
	PLEXUS_NODE_FLAGS="-redis-buffer-bytes 4194304 -drain-retention-bytes 1073741824 -log-level warn" \
		deploy/local-cluster.sh start "$tmp/c" 1 "$shards" >/dev/null
	"$tmp/bench" -api "http://$(node 0 api)" -key "$(key)" -proto tcp -target "$(node 0 syslog_tcp)" -n "$N" \
		-tokens 200 -conns 4 -read sink -drain syslog -idle 5s -json >"$tmp/m$shards.json" 2>/dev/null || true
	line "$tmp/m$shards.json" "200ch shards=$shards"
	deploy/local-cluster.sh stop "$tmp/c" >/dev/null; rm -rf "$tmp/c"
done

PLEXUS_NODE_FLAGS="-log-level warn" deploy/local-cluster.sh start "$tmp/c" 3 2 >/dev/null
"$tmp/bench" -api "http://$(node 0 api)" -tail-api "http://$(node 1 api)" -key "$(key)" -proto tcp \
	-target "$(node 0 syslog_tcp)" -n 200000 -tokens 4 -conns 4 -rate 20000 -json >"$tmp/x.json" 2>/dev/null || true
line "$tmp/x.json" "cross-node tail"
for i in 1 2 3; do
	"$tmp/bench" -api "http://$(node 2 api)" -key "$(key)" -proto tcp -target "$(node 2 syslog_tcp)" -n 1000000 \
		-tokens 1 -conns 4 -read none -drain-url syslog://127.0.0.1:9 -rate 400000 -keep -json >"$tmp/d$i.json" 2>/dev/null || true
	python3 -c "import json;print('dead drains      %d × 1,000,000 undelivered: node RSS %.0f MB' % ($i, json.load(open('$tmp/d$i.json')).get('server_rss_mb',0)))"
done
