# Shared by the bench scripts: tools, a fresh build, a private data root.
# shellcheck shell=bash

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH=$PATH:/usr/local/go/bin

# need TOOL:PACKAGE... installs the Debian packages of missing tools.
need() {
	local missing=() tp
	for tp in "$@"; do
		command -v "${tp%%:*}" >/dev/null 2>&1 || missing+=("${tp#*:}")
	done
	[ ${#missing[@]} -eq 0 ] && return
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing: ${missing[*]} (apt-get install them, or run as root)" >&2
		exit 1
	fi
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# Build both binaries (or use $AGENTKERNEL, with the agent next to it) and
# point everything at a private data root, removed on exit.
BENCH_TMP=$(mktemp -d /tmp/agentkernel-bench.XXXXXX)
chmod 755 "$BENCH_TMP"
if [ -n "${AGENTKERNEL:-}" ]; then
	AK=$AGENTKERNEL
else
	echo "building agentkernel, agentkernel-agent and agentkernel-server (CGO_ENABLED=0)..." >&2
	CGO_ENABLED=0 go build -trimpath -o "$BENCH_TMP/" ./cmd/agentkernel ./cmd/agentkernel-agent ./cmd/agentkernel-server
	AK=$BENCH_TMP/agentkernel
fi
export AGENTKERNEL_ROOT=$BENCH_TMP/root

bench_cleanup() {
	"$AK" pool drain >/dev/null 2>&1 || true # waits for a maintainer at work
	"$AK" remove --all --force >/dev/null 2>&1 || true
	"$AK" daemon stop >/dev/null 2>&1 || true # the network daemon
	rm -rf "$BENCH_TMP"
}
trap bench_cleanup EXIT
