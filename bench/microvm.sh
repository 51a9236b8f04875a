#!/usr/bin/env bash
# Times the microvm backend in ONE hyperfine run, next to the native
# backend, so the ratios are measured under the same machine noise:
#
#   run -B microvm --no-network   cold: create, boot, exec, remove (pool off)
#   run -B microvm                cold, with the network path (pool off)
#   run -B microvm, warm pool     the default: a booted VM waits for the run
#   exec VM -- true               new CLI process, VM already running
#   run -- true (native)          the native backend, pool off
#
# Every command gets PAUSE (default 1 s) before each timed run: the think
# time in which the warm pool refills (a boot under emulation takes
# seconds).
#
# Usage (as root):  bash bench/microvm.sh [OUTDIR]
# Env: RUNS (default 10), PAUSE, AGENTKERNEL (a built binary with
#   agentkernel-agent and agentkernel-server next to it; default: build).
# Installs hyperfine, jq, qemu-system-x86 and e2fsprogs if missing.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

runs=${RUNS:-10}
pause=${PAUSE:-1}
out=${1:-${TMPDIR:-/tmp}/agentkernel-microvm-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
need hyperfine:hyperfine jq:jq qemu-system-x86_64:qemu-system-x86 mkfs.ext4:e2fsprogs

"$AK" setup >&2
name=bench-vm
"$AK" create -B microvm --no-network --start "$name" >/dev/null
for c in "$AK run -B microvm --no-network -- true" "$AK exec $name -- true"; do
	$c || { echo "does not work here: $c" >&2; exit 1; }
done

hyperfine --runs "$runs" --warmup 1 --prepare "sleep $pause" --export-json "$out/microvm.json" \
	-n "run -B microvm --no-network (cold)" "AGENTKERNEL_POOL=0 $AK run -B microvm --no-network -- true" \
	-n "run -B microvm (cold, network on)" "AGENTKERNEL_POOL=0 $AK run -B microvm -- true" \
	-n "run -B microvm (warm pool)" "$AK run -B microvm --no-network -- true" \
	-n "exec in a running VM" "$AK exec $name -- true" \
	-n "run -- true (native, cold)" "AGENTKERNEL_POOL=0 $AK run -- true"

jq -r '.results[] | "| \(.command) | \(.median*1000 | round) ms |"' "$out/microvm.json" | tee "$out/microvm.md"
