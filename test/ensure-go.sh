#!/usr/bin/env bash
# ensure-go.sh: make sure a Go toolchain that can build weft is on PATH.
# A Debian Go of 1.21 or newer fetches the exact toolchain go.mod asks for
# through the Go module proxy by itself (GOTOOLCHAIN=auto).
set -euo pipefail
export PATH="$PATH:/usr/local/go/bin"
if command -v go >/dev/null 2>&1; then
	exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "ensure-go.sh: Go is not installed; run as root to install it" >&2
	exit 1
fi
echo "ensure-go.sh: installing Go from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq golang-go git >/dev/null
v=$(go env GOVERSION | sed 's/^go//')
major=${v%%.*}; rest=${v#*.}; minor=${rest%%.*}
if (( major == 1 && minor < 21 )); then
	echo "ensure-go.sh: Debian's Go $v is older than 1.21 and cannot fetch the toolchain weft needs; install Go 1.26 or newer into /usr/local/go" >&2
	exit 1
fi
