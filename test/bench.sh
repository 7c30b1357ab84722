#!/usr/bin/env bash
# bench.sh: what `make bench` runs. Two hosts as network namespaces joined by
# a veth underlay (MTU 1500). Measures TCP throughput (iperf3, 1 and 4
# streams) and ping RTT over
#   (a) the veth underlay itself,
#   (b) the kernel's VXLAN (vxlan + bridge + a container namespace per host),
#   (c) weft (a router per host, a container namespace attached per host),
#   (d) weft encrypted, when a password file is given,
# then prints a table, the ratios weft/VXLAN, and weft's CPU seconds per
# gigabit (utime+stime of both routers during the iperf3 runs).
#
# Usage: test/bench.sh [--duration SECONDS] [--password-file FILE]
# Env:   WEFT_BIN (default bin/weft), BENCH_DURATION (default 10),
#        BENCH_PASSWORD_FILE (same as --password-file), BENCH_SKIP_WEFT=1.
# Needs root. Cleans up everything it made on exit, failure or Ctrl-C.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

DURATION=${BENCH_DURATION:-10}
PASSWORD_FILE=${BENCH_PASSWORD_FILE:-}
while (($#)); do
	case $1 in
	--duration) DURATION=$2; shift 2 ;;
	--password-file) PASSWORD_FILE=$2; shift 2 ;;
	-h | --help) sed -n '2,15s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) lib_die "unknown argument $1 (see --help)" ;;
	esac
done

lib_need_root
"$HERE/deps.sh"

P=wb$$
H1=$P-h1 H2=$P-h2       # hosts
V1=$P-v1 V2=$P-v2       # VXLAN containers
W1=$P-w1 W2=$P-w2       # weft containers
TMP=$(mktemp -d /tmp/weft-bench.XXXXXX)
LIB_DIRS+=("$TMP")
trap lib_cleanup EXIT
trap 'exit 130' INT TERM

WEFT=$(weft_bin)
CLK_TCK=$(getconf CLK_TCK)
PORT=5201

step() { echo "bench: $*" >&2; }

# --- underlay -----------------------------------------------------------
step "underlay: $H1 (10.98.0.1) <-veth-> $H2 (10.98.0.2), MTU 1500"
ns_add "$H1"
ns_add "$H2"
ns_link "$H1" eth0 "$H2" eth0
ns_addr "$H1" eth0 10.98.0.1/24 1500
ns_addr "$H2" eth0 10.98.0.2/24 1500
wait_until 10 ns_exec "$H1" ping -c1 -W1 10.98.0.2 || lib_die "underlay does not work"

# --- measurement ---------------------------------------------------------
# rate_of LOG: the receiver rate in Gbit/s of the last iperf3 summary.
rate_of() {
	awk '/receiver/ { r = $(NF-2); u = $(NF-1) }
	     END { if (u ~ /^M/) r /= 1000; else if (u ~ /^K/) r /= 1e6; print r + 0 }' "$1"
}

# cpu_ticks PID...: utime+stime of the processes, in clock ticks.
cpu_ticks() {
	local pid sum=0 stat
	for pid in "$@"; do
		stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
		stat=${stat##*) } # drop "pid (comm) "; fields now start at 3 (state)
		# shellcheck disable=SC2086
		set -- $stat
		sum=$((sum + ${12} + ${13}))
	done
	echo "$sum"
}

# measure ROW CLIENT_NS SERVER_NS SERVER_IP [PID...]: iperf3 1 and 4 streams,
# ping RTT; stores RES_1[ROW], RES_4[ROW], RES_RTT[ROW], and RES_CPU[ROW]
# (CPU seconds per gigabit of PIDs) when PIDs are given. Returns 1, with a
# message on stderr, when a measurement fails.
declare -A RES_1 RES_4 RES_RTT RES_CPU
measure() {
	local row=$1 cns=$2 sns=$3 ip=$4
	shift 4
	local pids=("$@") t0 t1 r1 r4 srv
	ns_bg "$TMP/$row-server.log" "$sns" iperf3 -s -p "$PORT"
	srv=$LIB_LAST_PID
	wait_until 10 bash -c "ip netns exec '$sns' ss -ltn | grep -q ':$PORT '" ||
		{ echo "$row: iperf3 server did not start" >&2; return 1; }
	t0=$(cpu_ticks "${pids[@]}")
	step "$row: iperf3 TCP, 1 stream, ${DURATION}s"
	bounded $((DURATION + 30)) ip netns exec "$cns" iperf3 -c "$ip" -p "$PORT" -t "$DURATION" -f g \
		>"$TMP/$row-1.log" 2>&1 || { cat "$TMP/$row-1.log" >&2; echo "$row: iperf3 failed" >&2; return 1; }
	step "$row: iperf3 TCP, 4 streams, ${DURATION}s"
	bounded $((DURATION + 30)) ip netns exec "$cns" iperf3 -c "$ip" -p "$PORT" -t "$DURATION" -f g -P 4 \
		>"$TMP/$row-4.log" 2>&1 || { cat "$TMP/$row-4.log" >&2; echo "$row: iperf3 failed" >&2; return 1; }
	t1=$(cpu_ticks "${pids[@]}")
	kill_pid "$srv"
	r1=$(rate_of "$TMP/$row-1.log")
	r4=$(rate_of "$TMP/$row-4.log")
	RES_1[$row]=$r1
	RES_4[$row]=$r4
	step "$row: ping, 50 packets at 10 ms"
	RES_RTT[$row]=$(bounded 30 ip netns exec "$cns" ping -q -c 50 -i 0.01 -W 1 "$ip" |
		awk -F/ '/^rtt|^round-trip/ { print $5 }')
	if ((${#pids[@]})); then
		RES_CPU[$row]=$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v r1="$r1" -v r4="$r4" -v d="$DURATION" \
			'BEGIN { g = (r1 + r4) * d; if (g > 0) printf "%.3f", t / hz / g; else print "n/a" }')
	fi
}

# --- (a) veth underlay ----------------------------------------------------
ROWS=()
measure underlay "$H1" "$H2" 10.98.0.2 || lib_die "underlay measurement failed"
ROWS+=(underlay)

# --- (b) kernel VXLAN -----------------------------------------------------
step "vxlan: vx0 (VNI 42, UDP 4789) + bridge br0 + container $V1/$V2 (10.97.0.1-2/24, MTU 1450)"
vx_host() { # HOST LOCAL REMOTE CONTAINER ADDR
	ip -n "$1" link add vx0 type vxlan id 42 local "$2" remote "$3" dstport 4789 dev eth0
	ip -n "$1" link add br0 type bridge
	ip -n "$1" link set vx0 master br0
	ns_add "$4"
	ns_link "$1" vxc "$4" eth0
	ip -n "$1" link set vxc master br0 mtu 1450 up
	ip -n "$1" link set vx0 up
	ip -n "$1" link set br0 up
	ns_addr "$4" eth0 "$5" 1450
}
vx_host "$H1" 10.98.0.1 10.98.0.2 "$V1" 10.97.0.1/24
vx_host "$H2" 10.98.0.2 10.98.0.1 "$V2" 10.97.0.2/24
wait_until 10 ns_exec "$V1" ping -c1 -W1 10.97.0.2 || lib_die "vxlan: containers cannot ping each other"
measure vxlan "$V1" "$V2" 10.97.0.2 || lib_die "vxlan measurement failed"
ROWS+=(vxlan)

# --- (c, d) weft ------------------------------------------------------------
# weft_row ROW EXTRA_LAUNCH_ARGS...: (re)launch both routers with the extra
# arguments and measure between the attached containers. On failure it
# prints why and returns 1; the other rows still count.
weft_row() {
	local row=$1
	shift
	local s1=$TMP/state-h1 s2=$TMP/state-h2 log
	weft_in "$H1" "$s1" stop >/dev/null 2>&1 || true
	weft_in "$H2" "$s2" stop >/dev/null 2>&1 || true
	step "$row: launch routers in $H1 and $H2 $*"
	log=$TMP/$row-launch.log
	weft_in "$H1" "$s1" launch --port 6783 --name h1 "$@" >"$log" 2>&1 ||
		{ cat "$log" >&2; echo "$row: weft launch on h1 failed" >&2; return 1; }
	weft_in "$H2" "$s2" launch --port 6783 --name h2 "$@" 10.98.0.1:6783 >"$log" 2>&1 ||
		{ cat "$log" >&2; echo "$row: weft launch on h2 failed" >&2; return 1; }
	if [[ ! -e /run/netns/$W1 ]]; then
		ns_add "$W1"
		ns_add "$W2"
		weft_in "$H1" "$s1" attach 10.2.1.1/24 "netns:$W1" >"$log" 2>&1 ||
			{ cat "$log" >&2; echo "$row: weft attach on h1 failed" >&2; return 1; }
		weft_in "$H2" "$s2" attach 10.2.1.2/24 "netns:$W2" >"$log" 2>&1 ||
			{ cat "$log" >&2; echo "$row: weft attach on h2 failed" >&2; return 1; }
	fi
	wait_until 30 ns_exec "$W1" ping -c1 -W1 10.2.1.2 ||
		{ echo "$row: containers cannot ping each other over weft within 30 s" >&2; return 1; }
	# The routers are whatever runs in the host namespaces (nothing else does).
	local pids
	mapfile -t pids < <(ip netns pids "$H1"; ip netns pids "$H2")
	measure "$row" "$W1" "$W2" 10.2.1.2 "${pids[@]}" || return 1
	ROWS+=("$row")
}

NOTES=()
if [[ ${BENCH_SKIP_WEFT:-} == 1 ]]; then
	NOTES+=("weft skipped (BENCH_SKIP_WEFT=1)")
elif [[ ! -x $WEFT ]]; then
	NOTES+=("weft skipped: no binary at $WEFT (run 'make build' or set WEFT_BIN)")
else
	weft_row weft || NOTES+=("weft failed (see above)")
	if [[ -n $PASSWORD_FILE ]]; then
		weft_row weft-encrypted --password-file "$PASSWORD_FILE" ||
			NOTES+=("weft-encrypted failed (see above)")
	fi
fi

# --- report ----------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; }
echo
echo "TCP throughput (iperf3, ${DURATION} s) and ping RTT (50 packets), two namespaces, veth underlay MTU 1500"
printf '%-16s %14s %14s %12s %16s\n' path "1 stream" "4 streams" "RTT avg" "CPU s/Gbit"
for row in "${ROWS[@]}"; do
	printf '%-16s %9.2f Gb/s %9.2f Gb/s %9s ms %16s\n' "$row" "${RES_1[$row]}" "${RES_4[$row]}" \
		"${RES_RTT[$row]:-n/a}" "${RES_CPU[$row]:--}"
done
for row in "${ROWS[@]}"; do
	[[ $row == weft* ]] || continue
	printf '%-16s %14s %14s\n' "$row/vxlan" "$(ratio "${RES_1[$row]}" "${RES_1[vxlan]}")" \
		"$(ratio "${RES_4[$row]}" "${RES_4[vxlan]}")"
done
if [[ -n ${RES_1[weft-encrypted]:-} && -n ${RES_1[weft]:-} ]]; then
	printf '%-16s %14s %14s\n' "encrypted/plain" "$(ratio "${RES_1[weft-encrypted]}" "${RES_1[weft]}")" \
		"$(ratio "${RES_4[weft-encrypted]}" "${RES_4[weft]}")"
fi
for row in "${ROWS[@]}"; do
	[[ $row == weft* && -n ${RES_RTT[$row]:-} && -n ${RES_RTT[underlay]:-} ]] || continue
	awk -v r="$row" -v a="${RES_RTT[$row]}" -v b="${RES_RTT[underlay]}" \
		'BEGIN { printf "%-16s RTT added over the underlay: %.3f ms\n", r, a - b }'
done
for note in "${NOTES[@]}"; do
	echo "note: $note"
done
echo "CPU s/Gbit: utime+stime of both weft routers during the iperf3 runs, per gigabit received."
if ((${#NOTES[@]})) && [[ ${NOTES[*]} == *failed* ]]; then
	exit 1
fi
