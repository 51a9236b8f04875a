#!/usr/bin/env bash
# Builds agentkernel and agentkernel-agent (static, CGO_ENABLED=0), installs
# both into $PREFIX/bin (default /usr/local/bin), and checks the install by
# running a command in a sandbox. Needs Go 1.26+ (on PATH or in
# /usr/local/go/bin) and, for the default PREFIX, root.
#
#   bash scripts/install.sh                    # build, install, run a sandbox
#   PREFIX=$HOME/.local bash scripts/install.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX=${PREFIX:-/usr/local}
export PATH=$PATH:/usr/local/go/bin
export CGO_ENABLED=0

if ! command -v go >/dev/null 2>&1; then
	echo "scripts/install.sh: go not found on PATH or in /usr/local/go/bin; install Go 1.26 or newer (https://go.dev/dl/)" >&2
	exit 1
fi

# Version stamps: a tag if HEAD has one, else "dev"; the commit either way.
# Go also stamps VCS details itself when git can read the checkout.
version=dev
commit=unknown
buildvcs=false
if git rev-parse --verify -q HEAD >/dev/null 2>&1; then
	version=$(git describe --tags --exact-match 2>/dev/null || echo dev)
	commit=$(git rev-parse --short=12 HEAD)
	if ! git diff --quiet HEAD 2>/dev/null; then
		commit+=-dirty
	fi
	buildvcs=auto
fi
pkg=github.com/agentkernel-go/agentkernel/internal/cli
ldflags="-s -w -X $pkg.version=$version -X $pkg.commit=$commit"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "building agentkernel $version ($commit) with $(go version | cut -d' ' -f3)"
go build -trimpath -buildvcs=$buildvcs -ldflags "$ldflags" -o "$out/" ./cmd/agentkernel ./cmd/agentkernel-agent ./cmd/agentkernel-server

install -d "$PREFIX/bin"
install -m 0755 "$out/agentkernel" "$out/agentkernel-agent" "$out/agentkernel-server" "$PREFIX/bin/"
echo "installed $PREFIX/bin/agentkernel, agentkernel-agent and agentkernel-server"

# The agent is found next to agentkernel, so this works whatever PREFIX is.
echo "+ agentkernel run -- echo hello"
"$PREFIX/bin/agentkernel" run -- echo hello
