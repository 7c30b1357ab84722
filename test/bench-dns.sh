#!/usr/bin/env bash
# bench-dns.sh: queries per second and latency of weft's embedded DNS for a
# local name, beside dnsmasq serving the same name from a hosts file, in the
# same run and over the same path. One host namespace runs a weft router
# (DNS on 169.254.53.53, bridge weft exposed as 10.2.9.254/24) and dnsmasq
# (listening on 10.2.9.254 only); a container namespace attached to weft as
# 10.2.9.1/24 with the name "bench" runs the load client (test/dnsload: a
# fixed number of queries in flight, one UDP socket each) against both.
#
# Usage: test/bench-dns.sh [--duration SECONDS] [--concurrency N]
# Env:   WEFT_BIN (default bin/weft), BENCH_DURATION (default 5),
#        BENCH_CONCURRENCY (default 8).
# Needs root and dnsmasq (test/deps.sh installs it). Cleans up everything it made on exit, failure or
# Ctrl-C.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

DURATION=${BENCH_DURATION:-5}
CONC=${BENCH_CONCURRENCY:-8}
while (($#)); do
	case $1 in
	--duration) DURATION=$2; shift 2 ;;
	--concurrency) CONC=$2; shift 2 ;;
	-h | --help) sed -n '2,14s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) lib_die "unknown argument $1 (see --help)" ;;
	esac
done
[[ $DURATION =~ ^[0-9]+$ ]] && ((DURATION > 0 && DURATION <= 120)) || lib_die "--duration: 1 to 120 seconds"

lib_need_root
"$HERE/deps.sh"
command -v dnsmasq >/dev/null || lib_die "dnsmasq not found (apt-get install dnsmasq-base)"

P=wd$$
H=$P-h C=$P-c
TMP=$(mktemp -d /tmp/weft-bench-dns.XXXXXX)
LIB_DIRS+=("$TMP")
trap lib_cleanup EXIT
trap 'exit 130' INT TERM

WEFT=$(weft_bin)
[[ -x $WEFT ]] || lib_die "no weft binary at $WEFT (run make build)"
step() { echo "bench-dns: $*" >&2; }

step "build the load client"
(cd "$HERE/.." && go build -o "$TMP/dnsload" ./test/dnsload)

step "host $H with a weft router, container $C attached as bench.weft.local"
ns_add "$H"
ns_add "$C"
printf 'nameserver 127.0.0.1\n' >"$TMP/resolv.conf" # upstream unused: the name is local
weft_in "$H" "$TMP/state" launch --no-plugin --no-proxy --name bench --resolv-conf "$TMP/resolv.conf" --status-addr "" >/dev/null
for pid in $(ip netns pids "$H"); do LIB_PIDS+=("$pid"); done
weft_in "$H" "$TMP/state" expose 10.2.9.254/24 >/dev/null
weft_in "$H" "$TMP/state" attach --name bench 10.2.9.1/24 "netns:$C" >/dev/null

step "dnsmasq in $H on 10.2.9.254, bench.weft.local from a hosts file"
printf '10.2.9.1 bench.weft.local\n' >"$TMP/hosts"
ns_bg "$TMP/dnsmasq.log" "$H" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
	--addn-hosts="$TMP/hosts" --listen-address=10.2.9.254 --bind-interfaces --user=root \
	--pid-file="$TMP/dnsmasq.pid"
DNSMASQ_PID=$LIB_LAST_PID

load() { # SERVER: one line of dnsload output
	bounded $((DURATION + 30)) ip netns exec "$C" "$TMP/dnsload" -server "$1" -name bench.weft.local. \
		-duration "${DURATION}s" -c "$CONC"
}
wait_until 10 ip netns exec "$C" "$TMP/dnsload" -server 169.254.53.53:53 -duration 200ms -c 1 ||
	lib_die "weft's DNS does not answer bench.weft.local from $C"
wait_until 10 ip netns exec "$C" "$TMP/dnsload" -server 10.2.9.254:53 -duration 200ms -c 1 ||
	lib_die "dnsmasq does not answer bench.weft.local from $C"

step "weft: ${DURATION}s, $CONC queries in flight"
WEFT_LINE=$(load 169.254.53.53:53)
step "dnsmasq: ${DURATION}s, $CONC queries in flight"
DNSMASQ_LINE=$(load 10.2.9.254:53)
kill_pid "$DNSMASQ_PID"

field() { sed -n "s/.*\b$2=\([0-9.]*\).*/\1/p" <<<"$1"; }
printf '%-8s %10s %10s %10s %10s %8s\n' server qps p50_us p99_us answered timeouts
for row in "weft|$WEFT_LINE" "dnsmasq|$DNSMASQ_LINE"; do
	name=${row%%|*} line=${row#*|}
	printf '%-8s %10s %10s %10s %10s %8s\n' "$name" "$(field "$line" qps)" "$(field "$line" p50_us)" \
		"$(field "$line" p99_us)" "$(field "$line" answered)" "$(field "$line" timeouts)"
done
awk -v a="$(field "$WEFT_LINE" qps)" -v b="$(field "$DNSMASQ_LINE" qps)" \
	'BEGIN { if (b > 0) printf "ratio weft/dnsmasq qps: %.2f\n", a / b; else print "ratio: dnsmasq answered nothing" }'
weft_in "$H" "$TMP/state" stop >/dev/null || true
