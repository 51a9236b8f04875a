#!/usr/bin/env bash
# Creates and starts N sandboxes concurrently, counts failures, and measures
# what the idle sandboxes keep running on the host: the summed RSS and PSS
# of every process in their pid namespaces, per sandbox. (A backend that
# keeps a host-side helper outside the sandbox's pid namespace would need
# adding here; the native backend keeps none.) Removes them all afterwards.
#
# Usage (as root):  bash bench/density.sh      Env: N (default 100)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

n=${N:-100}
need jq:jq

echo "creating and starting $n sandboxes concurrently..."
start=$(date +%s.%N)
fail=0
seq -f "dense-%g" "$n" | xargs -P "$n" -I{} "$AK" create --start {} >/dev/null 2>"$BENCH_TMP/errors" || fail=1
end=$(date +%s.%N)
running=$("$AK" list --json | jq '[.[] | select(.status == "running")] | length')
echo "running: $running of $n after $(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b - a}') s"
if [ "$fail" -ne 0 ] || [ "$running" -ne "$n" ]; then
	echo "failures:" >&2
	sort "$BENCH_TMP/errors" | uniq -c >&2
fi

sleep 2 # let them settle
# Our sandboxes' pid namespaces, from their init processes; every process in
# one of them counts (other people's sandboxes on this host do not).
declare -A ours=()
for pid in $("$AK" list --json | jq -r '.[] | select(.pid > 0) | .pid'); do
	ns=$(readlink "/proc/$pid/ns/pid" 2>/dev/null) && ours[$ns]=1
done
rss=0
pss=0
procs=0
for p in /proc/[0-9]*; do
	ns=$(readlink "$p/ns/pid" 2>/dev/null) || continue
	[ -n "${ours[$ns]:-}" ] || continue
	read -r r s < <(awk '/^Rss:/ {r=$2} /^Pss:/ {s=$2} END {print r+0, s+0}' "$p/smaps_rollup" 2>/dev/null || echo "0 0")
	rss=$((rss + r))
	pss=$((pss + s))
	procs=$((procs + 1))
done
echo "host processes kept by the sandboxes: $procs"
awk -v rss="$rss" -v pss="$pss" -v n="$running" 'BEGIN {
	if (n == 0) exit
	printf "per idle sandbox: RSS %.2f MiB, PSS %.2f MiB (target PSS <= 8 MiB)\n", rss / 1024 / n, pss / 1024 / n
}'

echo "removing..."
"$AK" remove --all >/dev/null
