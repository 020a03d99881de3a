#!/usr/bin/env bash
# Start or stop a Plexus cluster on this machine, on loopback only: one config
# Redis, SHARDS shard Redis servers (unix sockets) and NODES Plexus nodes.
#
#   deploy/local-cluster.sh start DIR [NODES] [SHARDS]   (defaults 3 and 2)
#   deploy/local-cluster.sh stop DIR
#
# Environment:
#   PLEXUS_BIN       the plexus binary (default: built from this checkout into DIR)
#   PLEXUS_AUTH_KEY  admin key shared by the nodes (default: generated, in DIR/auth_key)
#   BASE_PORT        node n listens on BASE_PORT+10n+{1 api, 2 logs, 3 syslog tcp/udp};
#                    unset: free ports chosen by the kernel
#
# DIR/cluster.json lists every node's addresses; DIR/*.log hold the logs.
# Extra flags for every node can be given in PLEXUS_NODE_FLAGS.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [[ -z "$cmd" || -z "$dir" ]]; then
	sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# alive: the process exists and is not a zombie waiting to be reaped.
alive() { # pid
	local state
	state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n "$state" && "$state" != Z ]]
}

stop_pid() { # pidfile
	local f=$1 pid
	[[ -f "$f" ]] || return 0
	pid=$(cat "$f")
	if alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
		alive "$pid" && kill -KILL "$pid" 2>/dev/null
	fi
	rm -f "$f"
	return 0
}

start_redis() { # name
	local name=$1
	redis-server --port 0 --unixsocket "$dir/$name.sock" --unixsocketperm 700 \
		--save "" --appendonly no --daemonize yes --dir "$dir" \
		--pidfile "$dir/$name.pid" --logfile "$dir/$name.log"
	for _ in $(seq 100); do
		redis-cli -s "$dir/$name.sock" ping >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	echo "redis $name did not start; see $dir/$name.log" >&2
	return 1
}

case "$cmd" in
start)
	nodes=${3:-3}
	shards=${4:-2}
	command -v redis-server >/dev/null || { echo "redis-server not found (apt-get install redis-server)" >&2; exit 1; }
	bin=${PLEXUS_BIN:-}
	if [[ -z "$bin" ]]; then
		bin="$dir/plexus"
		(cd "$(dirname "$0")/.." && go build -o "$bin" ./cmd/plexus)
	fi
	key=${PLEXUS_AUTH_KEY:-}
	if [[ -z "$key" ]]; then
		[[ -f "$dir/auth_key" ]] || cat /proc/sys/kernel/random/uuid >"$dir/auth_key"
		key=$(cat "$dir/auth_key")
	fi

	start_redis redis-config
	shard_urls=""
	for s in $(seq "$shards"); do
		start_redis "redis-shard-$s"
		shard_urls+="${shard_urls:+,}unix://$dir/redis-shard-$s.sock"
	done

	for n in $(seq "$nodes"); do
		if [[ -n "${BASE_PORT:-}" ]]; then
			p=$((BASE_PORT + 10 * n))
			api=127.0.0.1:$((p + 1)) logs=127.0.0.1:$((p + 2)) sys=127.0.0.1:$((p + 3))
		else
			api=127.0.0.1:0 logs=127.0.0.1:0 sys=127.0.0.1:0
		fi
		rm -f "$dir/node-$n.addrs"
		# shellcheck disable=SC2086
		PLEXUS_AUTH_KEY=$key "$bin" \
			-node-id "node-$n" -data-dir "$dir/node-$n" \
			-redis-url "unix://$dir/redis-config.sock" -shard-urls "$shard_urls" \
			-api-addr "$api" -logs-addr "$logs" -syslog-addr "$sys" -syslog-udp-addr "$sys" \
			-addr-file "$dir/node-$n.addrs" -log-format json ${PLEXUS_NODE_FLAGS:-} \
			>>"$dir/node-$n.log" 2>&1 &
		echo $! >"$dir/node-$n.pid"
	done

	for n in $(seq "$nodes"); do
		for _ in $(seq 200); do [[ -s "$dir/node-$n.addrs" ]] && break; sleep 0.05; done
		[[ -s "$dir/node-$n.addrs" ]] || { echo "node $n did not start; see $dir/node-$n.log" >&2; exit 1; }
	done
	{
		printf '{"auth_key":"%s","config_redis":"unix://%s/redis-config.sock","shards":"%s","nodes":[' "$key" "$dir" "$shard_urls"
		for n in $(seq "$nodes"); do
			[[ $n -gt 1 ]] && printf ','
			printf '{"id":"node-%s","pid":%s,"addrs":%s}' "$n" "$(cat "$dir/node-$n.pid")" "$(cat "$dir/node-$n.addrs")"
		done
		printf ']}\n'
	} >"$dir/cluster.json"
	cat "$dir/cluster.json"
	;;
stop)
	for f in "$dir"/node-*.pid "$dir"/redis-*.pid; do
		if [[ -e "$f" ]]; then stop_pid "$f"; fi
	done
	exit 0
	;;
*)
	echo "unknown command $cmd (start or stop)" >&2
	exit 2
	;;
esac
