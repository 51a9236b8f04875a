#!/usr/bin/env bash
# The network path against slirp4netns (Debian's), side by side in ONE
# hyperfine run: a download of SIZE_MB MiB from an upstream server, and
# CONNECTS TCP connections opened and closed one after the other, each
# from inside a running sandbox (agentkernel exec) and from inside a
# network namespace served by slirp4netns (nsenter).
#
# The upstream is a Python server in a network namespace of its own,
# reached over a veth pair at 192.88.99.2 (not a host address: the
# sandbox may not reach those). Both paths get MTU 65520.
#
# Usage (as root):  bash bench/network.sh [OUTDIR]
# Env: SIZE_MB (default 1024), CONNECTS (default 500), RUNS (default 5).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

size_mb=${SIZE_MB:-1024}
connects=${CONNECTS:-500}
runs=${RUNS:-5}
out=${1:-${TMPDIR:-/tmp}/agentkernel-network-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
need hyperfine:hyperfine jq:jq slirp4netns:slirp4netns python3:python3 ip:iproute2 nsenter:util-linux

ns=akbench$$
veth=akb$$
slirp_pid=""
holder_pid=""
server_pid=""
net_cleanup() {
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
	[ -n "$slirp_pid" ] && kill "$slirp_pid" 2>/dev/null
	[ -n "$holder_pid" ] && kill "$holder_pid" 2>/dev/null
	ip link del "${veth}h" 2>/dev/null || true
	ip netns del "$ns" 2>/dev/null || true
	bench_cleanup
}
trap net_cleanup EXIT

ip netns add "$ns"
ip link add "${veth}h" type veth peer name "${veth}u"
ip link set "${veth}u" netns "$ns"
ip addr add 192.88.99.1/24 dev "${veth}h"
ip link set "${veth}h" up
ip netns exec "$ns" ip addr add 192.88.99.2/24 dev "${veth}u"
ip netns exec "$ns" ip link set "${veth}u" up
ip netns exec "$ns" ip link set lo up

# :9000 sends SIZE_MB MiB and closes; :9001 accepts and closes.
ip netns exec "$ns" python3 - "$size_mb" <<'PY' &
import socket, sys, threading
size = int(sys.argv[1])
chunk = b"\0" * (1 << 20)
def serve(port, fn):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("192.88.99.2", port)); s.listen(128)
    while True:
        c, _ = s.accept()
        threading.Thread(target=fn, args=(c,), daemon=True).start()
def send(c):
    try:
        for _ in range(size): c.sendall(chunk)
    finally: c.close()
threading.Thread(target=serve, args=(9001, lambda c: c.close()), daemon=True).start()
serve(9000, send)
PY
server_pid=$!

# slirp4netns serving a network namespace held by a sleeping process.
unshare --net sleep infinity &
holder_pid=$!
sleep 0.2
slirp4netns --configure --mtu=65520 --disable-host-loopback "$holder_pid" tap0 >/dev/null 2>&1 &
slirp_pid=$!

"$AK" create --start bench-net --cpus 2 --allow-cidr 192.88.99.0/24 >/dev/null
sleep 0.5

download="exec 3<>/dev/tcp/192.88.99.2/9000 && cat <&3 >/dev/null"
connect="for i in \$(seq $connects); do exec 3<>/dev/tcp/192.88.99.2/9001 || exit 1; exec 3<&-; done"
# Each must work before it is timed.
"$AK" exec bench-net -- bash -c "$connect"
nsenter -t "$holder_pid" -n bash -c "$connect"

hyperfine -N --style basic --warmup 1 --runs "$runs" \
	-n "agentkernel: download ${size_mb} MiB" "$AK exec bench-net -- bash -c '$download'" \
	-n "slirp4netns: download ${size_mb} MiB" "nsenter -t $holder_pid -n bash -c '$download'" \
	-n "agentkernel: $connects connects" "$AK exec bench-net -- bash -c '$connect'" \
	-n "slirp4netns: $connects connects" "nsenter -t $holder_pid -n bash -c '$connect'" \
	--export-json "$out/network.json" --export-markdown "$out/network.md"

"$AK" remove --force bench-net >/dev/null

echo
echo "medians, $runs runs each, same run:"
jq -r --argjson mb "$size_mb" --argjson n "$connects" '.results[] |
	if (.command | test("download")) then
		"  \(.command): \(.median * 1000 | floor) ms, \($mb * 8 / .median / 1000 * 1.048576 | . * 100 | floor / 100) Gbit/s"
	else
		"  \(.command): \(.median * 1000 | floor) ms, \(.median * 1e6 / $n | floor) µs per connect"
	end' "$out/network.json"
echo "results: $out/network.json, $out/network.md"
