#!/usr/bin/env bash
# Times agentkernel and its peers side by side in ONE hyperfine run, so the
# ratios are measured under the same machine noise:
#
#   agentkernel run -- true           ephemeral sandbox (warm pool on, the default)
#   agentkernel run -- true, no pool  AGENTKERNEL_POOL=0: create, start, exec, remove
#   ... and with --no-network         the same without the network path: the
#                                     difference is what network on costs a start
#   agentkernel exec NAME -- true     new CLI process, sandbox already running
#   bwrap --unshare-all ... true      bubblewrap, all namespaces
#   unshare -Urmpf --mount-proc true  util-linux unshare
#   true                              the fork+exec floor
#
# Every command gets the same 100 ms pause before each timed run (PAUSE):
# the think time an agent leaves between commands, in which the warm pool
# refills. PAUSE=0 times them back to back instead (the pool then cannot
# keep up and most runs start a sandbox).
#
# Usage (as root):  bash bench/compare.sh [OUTDIR]
#   OUTDIR  where compare.json and compare.md go (default /tmp/agentkernel-compare-<UTC time>)
# Env: RUNS (default 200), WARMUP (default 20), PAUSE (default 0.1 s),
#   AGENTKERNEL (a built binary with agentkernel-agent next to it; default:
#   build from this checkout).
# Installs hyperfine, bubblewrap and jq from Debian if they are missing.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

runs=${RUNS:-200}
warmup=${WARMUP:-20}
pause=${PAUSE:-0.1}
out=${1:-${TMPDIR:-/tmp}/agentkernel-compare-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
need hyperfine:hyperfine bwrap:bubblewrap jq:jq unshare:util-linux

name=bench-exec
"$AK" create --start "$name" >/dev/null

bwrap_cmd="bwrap --unshare-all --ro-bind / / --dev /dev --proc /proc true"
unshare_cmd="unshare -Urmpf --mount-proc true"
# Each must work before it is timed.
"$AK" run -- true
"$AK" exec "$name" -- true
$bwrap_cmd
$unshare_cmd

hyperfine -N --style basic --warmup "$warmup" --runs "$runs" --prepare "sleep $pause" \
	-n "agentkernel run" "$AK run -- true" \
	-n "agentkernel run, no pool" "env AGENTKERNEL_POOL=0 $AK run -- true" \
	-n "agentkernel run, no pool, no network" "env AGENTKERNEL_POOL=0 $AK run --no-network -- true" \
	-n "agentkernel exec" "$AK exec $name -- true" \
	-n "bwrap" "$bwrap_cmd" \
	-n "unshare" "$unshare_cmd" \
	-n "true (fork+exec)" "true" \
	--export-json "$out/compare.json" --export-markdown "$out/compare.md"

"$AK" remove "$name" >/dev/null

echo
echo "medians (ms), $runs runs each, same run, ${pause}s pause before each:"
jq -r '.results[] | [.command, (.median * 1000)] | @tsv' "$out/compare.json" |
	awk -F'\t' '
		{ name[NR] = $1; med[$1] = $2; printf "  %-38s %8.2f\n", $1, $2 }
		END {
			printf "\nratios:\n"
			printf "  agentkernel run / bwrap            %6.2fx  (target <= 1.5x)\n", med["agentkernel run"] / med["bwrap"]
			printf "  agentkernel run, no pool / bwrap   %6.2fx\n", med["agentkernel run, no pool"] / med["bwrap"]
			printf "  agentkernel run / fork+exec        %6.2fx\n", med["agentkernel run"] / med["true (fork+exec)"]
			printf "  agentkernel exec median            %6.2f ms (target <= 10 ms)\n", med["agentkernel exec"]
			printf "  network on costs a start           %6.2f ms (target <= 10 ms)\n", med["agentkernel run, no pool"] - med["agentkernel run, no pool, no network"]
		}'
echo
echo "results: $out/compare.json, $out/compare.md"
