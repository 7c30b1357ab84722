#!/usr/bin/env bash
# docker-deps.sh: install what the tests with a real dockerd need (the
# harness's StartDockerd runs this, and `test/deps.sh --docker`): a dockerd
# with its client, containerd and runc (Debian's docker.io, unless some
# dockerd is installed already), and a static busybox to build the test
# image from (busybox-static). Idempotent; quiet on success; needs root only
# when something is missing. Runs `apt-get update` only then.
#
# Installing starts no service: a policy-rc.d refuses that while apt-get
# runs, and on a machine with systemd the units this installs are disabled,
# so that no dockerd of the machine's own makes docker0 or firewall rules.
# (busybox-static replaces the dynamic busybox package, if installed; both
# provide /bin/busybox.)
set -euo pipefail

export PATH="$PATH:/usr/sbin:/sbin"
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
if ! command -v dockerd >/dev/null 2>&1; then
	missing+=(docker.io)
fi
if ! installed busybox-static; then
	missing+=(busybox-static)
fi
if ((${#missing[@]} == 0)); then
	exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
	echo "docker-deps.sh: missing packages (${missing[*]}); run as root to install them" >&2
	exit 1
fi

# Units to disable afterwards: those of packages not installed before.
units=()
if [[ " ${missing[*]} " == *" docker.io "* ]]; then
	units+=(docker.service docker.socket)
	installed containerd || units+=(containerd.service)
fi

log=$(mktemp)
policy=
cleanup() {
	rm -f "$log"
	if [[ -n $policy ]]; then rm -f "$policy"; fi
}
trap cleanup EXIT
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
	policy=/usr/sbin/policy-rc.d
	printf '#!/bin/sh\n# docker-deps.sh: no service starts while it installs\nexit 101\n' >"$policy"
	chmod 755 "$policy"
fi

export DEBIAN_FRONTEND=noninteractive
apt=(apt-get -q -o DPkg::Lock::Timeout=300)
if ! { "${apt[@]}" update && "${apt[@]}" install -y --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
	cat "$log" >&2
	echo "docker-deps.sh: could not install ${missing[*]}" >&2
	exit 1
fi
if ((${#units[@]} > 0)) && [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
	systemctl disable "${units[@]}" >/dev/null 2>&1 || true
fi
