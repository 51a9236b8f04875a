#!/usr/bin/env bash
# README.md's test command (`bash scripts/test.sh`), which CI runs through .ci/run.
#
# Runs as root on a fresh Debian 12 clone (CI=true, no stdin): installs what
# the tests use, builds both binaries statically, runs the whole test suite
# (root-only tests included: in CI they must run, not skip), then checks that
# the suite left nothing on the host. Benchmarks are not run here
# (bench/compare.sh; too slow and noisy for CI).
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
export PATH=/usr/local/go/bin:$PATH
export CGO_ENABLED=0
export CI=${CI:-true}

# Debian packages the tests use: ps/pgrep (procps), ip netns (iproute2),
# unshare/mount/nsenter (util-linux), a static busybox for minimal root
# filesystems, git for VCS stamps.
packages=(procps iproute2 util-linux busybox-static ca-certificates git)
# QEMU runs the microvm backend's VMs (software emulation where KVM cannot
# boot guests); qemu-system-x86 without its recommends is the emulator alone.
# e2fsprogs builds their disks (mkfs.ext4 -d, debugfs).
packages+=(qemu-system-x86 e2fsprogs)
# node and npm run the published agentkernel SDK against a live server
# (internal/server/e2e_test.go); Debian's are recent enough (fetch, ESM).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	packages+=(nodejs npm)
fi

section() { printf '\n=== %s\n' "$*"; }

section "installing test dependencies"
if [ "$(id -u)" -eq 0 ]; then
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${packages[@]}"
else
	echo "not root: skipping apt-get (root-only tests will skip or fail)"
fi

section "toolchain"
command -v go >/dev/null || { echo ".ci/run: go not found (expected /usr/local/go/bin/go)" >&2; exit 1; }
go version
go env GOOS GOARCH CGO_ENABLED

section "build and static checks"
go build ./...
unformatted=$(gofmt -l cmd internal api 2>/dev/null || true)
if [ -n "$unformatted" ]; then
	echo "gofmt: these files need formatting:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...

# host_state prints what a test run may leak, one item per line: processes
# in other pid namespaces or named agentkernel* or qemu-system*, agentkernel cgroups, mounts
# mentioning agentkernel or the test temp dir, named network namespaces,
# and whatever is in the test temp dir.
host_state() {
	local self p ns comm
	self=$(readlink /proc/self/ns/pid)
	for p in /proc/[0-9]*; do
		ns=$(readlink "$p/ns/pid" 2>/dev/null) || continue
		comm=$(cat "$p/comm" 2>/dev/null) || continue
		if [ "$ns" != "$self" ] || [[ $comm == agentkernel* || $comm == qemu-system* ]]; then
			echo "process ${p#/proc/} $comm $ns: $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null | cut -c1-200)"
		fi
	done
	find /sys/fs/cgroup/agentkernel /sys/fs/cgroup/*/agentkernel -type d 2>/dev/null | sed 's/^/cgroup /' || true
	grep -e agentkernel -e "$TEST_TMPDIR" /proc/self/mountinfo | awk '{print "mount " $5}' || true
	ls /run/netns 2>/dev/null | sed 's/^/netns /' || true
	find "$TEST_TMPDIR" -mindepth 1 -maxdepth 1 2>/dev/null | sed 's/^/temp /' || true
}

# A private temp dir for the tests, so leftovers are easy to see.
TEST_TMPDIR=$(mktemp -d /tmp/agentkernel-ci.XXXXXX)
chmod 1777 "$TEST_TMPDIR"
before=$(mktemp)
host_state | sort >"$before"

# -p 1: one test binary at a time, so each package's leak checks see only
# what its own tests started.
section "test"
status=0
TMPDIR=$TEST_TMPDIR go test -p 1 -count=1 -timeout 35m ./... || status=$?

section "leak check"
leaked=""
for _ in $(seq 50); do # the kernel may take a moment to release things
	leaked=$(comm -13 "$before" <(host_state | sort))
	[ -z "$leaked" ] && break
	sleep 0.2
done
rm -f "$before"
if [ -n "$leaked" ]; then
	echo "the test suite left these behind:" >&2
	echo "$leaked" >&2
	status=1
else
	echo "nothing left behind"
	rm -rf "$TEST_TMPDIR"
fi

exit $status
