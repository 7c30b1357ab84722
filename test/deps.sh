#!/usr/bin/env bash
# deps.sh: install what weft's tests, benchmark and demo need, and nothing
# that is already there. Idempotent; quiet on success; needs root only when
# something is missing. Runs `apt-get update` at most once, and only when a
# package has to be installed. With --docker, then also what the tests with
# a real dockerd need (docker-deps.sh). With --chromium, also Debian's
# chromium, the headless browser of the topology page's test.
set -euo pipefail

docker=false
chromium=false
for arg in "$@"; do
	case $arg in
	--docker) docker=true ;;
	--chromium) chromium=true ;;
	*)
		echo "deps.sh: unknown option $arg (want --docker, --chromium)" >&2
		exit 2
		;;
	esac
done

# command -> Debian package that provides it.
# dnsmasq comes from dnsmasq-base: the binary without a system service that
# would start listening on this machine's port 53 when installed.
declare -A want=(
	[ip]=iproute2
	[bridge]=iproute2
	[iptables]=iptables
	[iperf3]=iperf3
	[tcpdump]=tcpdump
	[ping]=iputils-ping
	[nc]=netcat-openbsd
	[pgrep]=procps
	[ps]=procps
	[dnsmasq]=dnsmasq-base
	[ethtool]=ethtool
	[sha256sum]=coreutils
	[timeout]=coreutils
)

export PATH="$PATH:/usr/sbin:/sbin"
missing=()
for cmd in "${!want[@]}"; do
	pkg=${want[$cmd]}
	if ! command -v "$cmd" >/dev/null 2>&1; then
		missing+=("$pkg")
	fi
done
# fonts-dejavu-core: the text of the page's screenshot (docs/img).
if $chromium; then
	command -v chromium >/dev/null 2>&1 || missing+=(chromium)
	[[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]] || missing+=(fonts-dejavu-core)
fi
# The tests rely on OpenBSD nc's flags (-N, -q); another nc may be installed.
if ! dpkg-query -W -f='${Status}' netcat-openbsd 2>/dev/null | grep -q 'install ok installed'; then
	missing+=(netcat-openbsd)
fi

if ((${#missing[@]} == 0)); then
	if $docker; then
		exec bash "$(dirname "$0")/docker-deps.sh"
	fi
	exit 0
fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)

if [[ $(id -u) -ne 0 ]]; then
	echo "deps.sh: missing packages (${missing[*]}); run as root to install them" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
	cat "$log" >&2
	echo "deps.sh: could not install ${missing[*]}" >&2
	exit 1
fi
if $docker; then
	rm -f "$log"
	exec bash "$(dirname "$0")/docker-deps.sh"
fi
