#!/usr/bin/env bash
# Measure `plexus forward` shipping a file into a channel, on this machine:
#
#   scripts/bench-forward.sh [LINES]      (default 1000000 lines of 160 bytes)
#
# Starts a Plexus node (embedded backend, temp dir), creates a channel, and
# forwards a generated file through `plexus forward` (stdin mode, no state
# file); prints lines/s, the forwarder's and the server's CPU per line and
# the forwarder's peak RSS, and checks that every line was acknowledged.
set -euo pipefail
LINES=${1:-1000000}
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
pid=
cleanup() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
go build -o "$tmp/plexus" ./cmd/plexus
python3 - "$tmp/lines.txt" "$LINES" <<'PY'
import random, sys
words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon".split()
rnd = random.Random(1)
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        s = "line %d " % i
        while len(s) < 159:
            s += rnd.choice(words) + " "
        f.write(s[:159] + "\n")
PY
KEY=bench-key-0123456789
PLEXUS_AUTH_KEY=$KEY "$tmp/plexus" -data-dir "$tmp/data" -api-addr 127.0.0.1:0 -logs-addr 127.0.0.1:0 \
	-syslog-addr "" -syslog-udp-addr "" -addr-file "$tmp/addrs.json" -log-level warn >"$tmp/plexus.log" 2>&1 &
pid=$!
until [[ -s "$tmp/addrs.json" ]]; do sleep 0.05; done
field() { python3 -c "import json;print(json.load(open('$tmp/addrs.json'))['$1'])"; }
api=http://$(field api); logs=http://$(field logs)/logs
token=$(curl -fs -H "Authorization: Basic $KEY" -X PUT -d '{"tokens":["app"]}' "$api/v3/channels/fwd" | python3 -c "import json,sys;print(json.load(sys.stdin)['tokens']['app'])")
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
s0=$(cpu $pid)
t0=$(date +%s.%N)
/usr/bin/time -v "$tmp/plexus" forward -url "http://token:$token@${logs#http://}" -state '' -progress 0 - <"$tmp/lines.txt" 2>"$tmp/fwd.err"
t1=$(date +%s.%N)
s1=$(cpu $pid)
python3 - "$tmp/fwd.err" "$LINES" "$t0" "$t1" "$s0" "$s1" "$hz" <<'PY'
import re, sys
err, n, t0, t1, s0, s1, hz = open(sys.argv[1]).read(), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
user = float(re.search(r"User time \(seconds\): ([\d.]+)", err).group(1))
sys_ = float(re.search(r"System time \(seconds\): ([\d.]+)", err).group(1))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1))
wall = t1 - t0
print("forward  %d lines in %.2f s: %.0f lines/s; forwarder %.2f µs CPU/line, RSS %.1f MB; server %.2f µs CPU/line"
      % (n, wall, n / wall, (user + sys_) / n * 1e6, rss / 1024, (s1 - s0) / hz / n * 1e6))
PY
# Every line acknowledged: the channel's log ends at offset LINES.
next=$(curl -fs -H "Authorization: Basic $KEY" "$api/v3/channels/fwd/logs?limit=1&after=$((LINES-1))" -D - -o /dev/null | tr -d '\r' | awk -F': ' 'tolower($1)=="plexus-next-offset"{print $2}')
echo "channel holds messages up to offset ${next:-?} (want $LINES)"
