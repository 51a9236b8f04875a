#!/usr/bin/env bash
# Times the image store against its peers in one hyperfine run each:
#
# 1. pull + unpack of a ~60 MB (compressed; two layers of real files: the Go
#    toolchain's src and pkg, ~220 MB unpacked, and busybox) image from a registry on
#    loopback: `agentkernel image pull` into an empty store vs
#    `skopeo copy` to an OCI layout + `umoci unpack` (Debian's), the usual
#    daemonless pair. Reports medians and MB/s of compressed bytes.
# 2. `agentkernel run` of that image, cached, vs `run` of the host image
#    (warm pool on, 100 ms pause before each, as in compare.sh).
#
# The registry is go-containerregistry's (`crane registry serve`, built
# from the Go module proxy), the image is pushed with `crane append`.
#
# Usage (as root):  bash bench/images.sh [OUTDIR]
# Env: RUNS (pull runs, default 10), RUN_RUNS (run runs, default 200).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

runs=${RUNS:-10}
run_runs=${RUN_RUNS:-200}
out=${1:-${TMPDIR:-/tmp}/agentkernel-images-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
need hyperfine:hyperfine jq:jq skopeo:skopeo umoci:umoci busybox:busybox-static curl:curl

GOBIN=$BENCH_TMP/bin go install github.com/google/go-containerregistry/cmd/crane@v0.22.1
crane=$BENCH_TMP/bin/crane
port=$(( 20000 + RANDOM % 20000 ))
"$crane" registry serve --address "127.0.0.1:$port" >"$BENCH_TMP/registry.log" 2>&1 &
registry_pid=$!
trap 'kill $registry_pid 2>/dev/null || true; bench_cleanup' EXIT
for _ in $(seq 50); do
	curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
	sleep 0.1
done

ref=127.0.0.1:$port/bench/go:1
goroot=$(go env GOROOT)
tar -C "$goroot" -cf "$BENCH_TMP/src.tar" src
tar -C "$goroot" -cf "$BENCH_TMP/pkg.tar" pkg
mkdir -p "$BENCH_TMP/bb/bin" # a userland to run: busybox
cp "$(command -v busybox)" "$BENCH_TMP/bb/bin/"
ln -s busybox "$BENCH_TMP/bb/bin/true"
tar -C "$BENCH_TMP/bb" -cf "$BENCH_TMP/bb.tar" bin
"$crane" --insecure append -f "$BENCH_TMP/src.tar" -f "$BENCH_TMP/pkg.tar" -f "$BENCH_TMP/bb.tar" -t "$ref" >/dev/null 2>&1
# umoci wants an OS in the config; commands want a PATH.
"$crane" --insecure mutate --set-platform linux/amd64 --env PATH=/bin -t "$ref" "$ref" >/dev/null 2>&1
compressed=$("$crane" --insecure manifest "$ref" | jq '[.layers[].size] | add')
echo "image $ref: $((compressed / 1000000)) MB compressed" >&2

store=$BENCH_TMP/pullroot
layout=$BENCH_TMP/layout
bundle=$BENCH_TMP/bundle
export AGENTKERNEL_INSECURE_REGISTRIES=127.0.0.1:$port
hyperfine -N --style basic --runs "$runs" \
	-n "agentkernel image pull" --prepare "rm -rf $store" \
	"$AK --root $store image pull -q $ref" \
	-n "skopeo copy + umoci unpack" --prepare "rm -rf $layout $bundle" \
	"sh -c 'skopeo copy -q --src-tls-verify=false docker://$ref oci:$layout:bench && umoci unpack --image $layout:bench $bundle >/dev/null'" \
	--export-json "$out/pull.json" --export-markdown "$out/pull.md"
rm -rf "$store" "$layout" "$bundle"

# run: the image cached in the bench root, both configurations pooled.
"$AK" image pull -q "$ref" >/dev/null
"$AK" run -i "$ref" -- true
"$AK" run -- true
hyperfine -N --style basic --warmup 20 --runs "$run_runs" --prepare "sleep 0.1" \
	-n "agentkernel run (host image)" "$AK run -- true" \
	-n "agentkernel run (cached OCI image)" "$AK run -i $ref -- true" \
	--export-json "$out/run.json" --export-markdown "$out/run.md"

echo
echo "pull + unpack, medians, $runs runs each ($((compressed / 1000000)) MB compressed):"
jq -r --argjson c "$compressed" '.results[] | [.command, .median, ($c / 1e6 / .median)] | @tsv' "$out/pull.json" |
	awk -F'\t' '{ med[NR] = $2; printf "  %-28s %7.2f s  %6.1f MB/s\n", $1, $2, $3 }
		END { printf "  agentkernel / skopeo+umoci   %6.2fx the time\n", med[1] / med[2] }'
echo "run, medians, $run_runs runs each:"
jq -r '.results[] | [.command, (.median * 1000)] | @tsv' "$out/run.json" |
	awk -F'\t' '{ med[NR] = $2; printf "  %-36s %6.2f ms\n", $1, $2 }
		END { printf "  cached image - host image           %+6.2f ms (target <= 2 ms)\n", med[2] - med[1] }'
echo "results: $out/"
