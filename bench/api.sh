#!/usr/bin/env bash
# /run throughput of the HTTP API next to `agentkernel run` through the CLI,
# in one script run so the two are measured under the same machine noise:
#
#   api  N x `curl POST /run {"command":["true"]}` against agentkernel-server
#        (warm pool on, as `agentkernel serve` runs it)
#   cli  N x `agentkernel run -- true` (warm pool on, the default)
#
# each with C at once (xargs -P C), for every C in CONC. Both sides start one
# client process per run (curl, or the CLI itself), back to back. The server
# and the CLI use separate data roots, so neither's warm pool feeds the other.
#
# Usage (as root):  bash bench/api.sh
# Env: N (runs per measurement, default 200), CONC (default "1 2 4"),
#   AGENTKERNEL (a built binary with agentkernel-agent and agentkernel-server
#   next to it; default: build from this checkout).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

n=${N:-200}
conc=${CONC:-1 2 4}
need curl:curl jq:jq

if [ -n "${AGENTKERNEL:-}" ]; then
	server=$(dirname "$AK")/agentkernel-server
else
	echo "building agentkernel-server (CGO_ENABLED=0)..." >&2
	CGO_ENABLED=0 go build -trimpath -o "$BENCH_TMP/" ./cmd/agentkernel-server
	server=$BENCH_TMP/agentkernel-server
fi

api_root=$BENCH_TMP/api-root
server_pid=
api_cleanup() {
	if [ -n "$server_pid" ]; then
		kill -TERM "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	AGENTKERNEL_ROOT=$api_root "$AK" remove --all --force >/dev/null 2>&1 || true
	bench_cleanup
}
trap api_cleanup EXIT

"$server" --root "$api_root" serve --port 0 --log-level warn 2>"$BENCH_TMP/server.log" &
server_pid=$!
addr=
for _ in $(seq 100); do
	addr=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$BENCH_TMP/server.log")
	[ -n "$addr" ] && break
	kill -0 "$server_pid" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$addr" ]; then
	echo "agentkernel-server did not start:" >&2
	cat "$BENCH_TMP/server.log" >&2
	exit 1
fi
url=http://$addr/run

# One run of each kind; {} is the run's number (ignored by both).
api_run=(curl -sS -f -o /dev/null -H 'Content-Type: application/json' -H 'X-Bench-Run: {}'
	--data '{"command":["true"]}' "$url")
cli_run=("$AK" run -- true {})

# throughput KIND C: N runs, C at once; prints runs per second.
throughput() {
	local kind=$1 c=$2 start end
	local -n cmd=${kind}_run
	start=$(date +%s.%N)
	if ! seq "$n" | xargs -P "$c" -I{} "${cmd[@]}" >/dev/null 2>"$BENCH_TMP/$kind.err"; then
		echo "$kind: some runs failed:" >&2
		sort "$BENCH_TMP/$kind.err" | uniq -c | head >&2
		exit 1
	fi
	end=$(date +%s.%N)
	awk -v n="$n" -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", n / (b - a) }'
}

# Each must work before it is timed; a few runs warm both pools and caches.
for kind in api cli; do
	n=10 throughput "$kind" 1 >/dev/null
done

echo
echo "/run throughput (runs/s), $n runs each, same run:"
printf '  %-6s %10s %10s %8s\n' "clients" "api" "cli" "api/cli"
for c in $conc; do
	api=$(throughput api "$c")
	cli=$(throughput cli "$c")
	printf '  %-6s %10s %10s %7.2fx\n' "$c" "$api" "$cli" "$(awk -v a="$api" -v b="$cli" 'BEGIN { print a / b }')"
done
left=$(AGENTKERNEL_ROOT=$api_root "$AK" list --json | jq '[.[] | select(.pooled | not)] | length' 2>/dev/null || echo "?")
echo "sandboxes left by the API runs (pool excluded): $left"
