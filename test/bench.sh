#!/usr/bin/env bash
# bench.sh: what `make bench` runs. Two hosts as network namespaces joined by
# a veth underlay (MTU 1500). Measures TCP throughput (iperf3, 1 and 4
# streams) and ping RTT over
#   (a) the veth underlay itself,
#   (b) the kernel's VXLAN (vxlan + bridge + a container namespace per host),
#   (c) weft (a router per host, a container namespace attached per host),
#       its userspace path (--no-fastdp),
#   (d) weft-fallback: weft plain with WEFT_NO_OFFLOAD=1 (no TAP vnet-hdr/TSO,
#       no UDP GSO/GRO), to show what the offloads buy,
#   (e) weft-fastdp: weft as launched by default, the kernel's VXLAN carrying
#       plain traffic (the fast path, issue 19),
#   (f) weft encrypted, when a password file is given,
# and, for reference, the RTT of a UDP echo between two Go processes over
# the underlay (test/udpecho): what waking a sleeping process costs here.
# Every row also measures 1 stream with the other congestion control (CUBIC
# where the machine uses BBR, and the reverse), and samples what the
# sender's TCP chose halfway through its first run (ss: pacing rate,
# delivery rate, min RTT): BBR paces a flow at the bandwidth it measured.
# Every iperf3 measurement runs --runs times (median, min-max shown); RTT is
# the median of the averages of --runs pings of 50 packets 10 ms apart. Then
# the ratios (to VXLAN, encrypted/plain, offloads, 4 streams/1 stream), the
# RTT weft adds over the underlay, weft's CPU seconds per gigabit (the
# routers' own, and the whole machine's from /proc/stat, which also counts
# the kernel's softirq work of the VXLAN paths and iperf3; on a shared
# machine it counts the neighbours too), and the issues' targets marked met
# or NOT met (informational only).
#
# Usage: test/bench.sh [--duration SECONDS] [--runs N] [--password-file FILE]
# Env:   WEFT_BIN (default bin/weft), BENCH_DURATION (default 5), BENCH_RUNS
#        (default 3), BENCH_PASSWORD_FILE (same as --password-file),
#        BENCH_SKIP_WEFT=1.
# Exit:  0 when every measurement worked (whether targets are met or not),
#        1 when one failed (the others are still reported).
# Needs root. Cleans up everything it made on exit, failure or Ctrl-C.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

DURATION=${BENCH_DURATION:-5}
RUNS=${BENCH_RUNS:-3}
PASSWORD_FILE=${BENCH_PASSWORD_FILE:-}
while (($#)); do
	case $1 in
	--duration) DURATION=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	--password-file) PASSWORD_FILE=$2; shift 2 ;;
	-h | --help) sed -n '2,35s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) lib_die "unknown argument $1 (see --help)" ;;
	esac
done
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || lib_die "--duration wants whole seconds > 0, not '$DURATION'"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || lib_die "--runs wants a count > 0, not '$RUNS'"

lib_need_root
"$HERE/deps.sh"

# The plain rows run with offloads on whatever the caller's environment says;
# only weft-fallback sets WEFT_NO_OFFLOAD.
unset WEFT_NO_OFFLOAD

START=$SECONDS
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
# rate_of LOG: "RATE GIGABITS" of the last iperf3 receiver summary: the rate
# in Gbit/s and the gigabits received (rate times the summary's interval).
rate_of() {
	awk '/receiver/ {
		r = 0; u = ""; s = 0
		for (i = 1; i <= NF; i++) {
			if ($i ~ /^[0-9.]+-[0-9.]+$/) { split($i, iv, "-"); s = iv[2] - iv[1] }
			if ($i ~ /bits\/sec$/) { r = $(i-1); u = $i }
		}
	     }
	     END {
		if (u ~ /^M/) r /= 1000; else if (u ~ /^K/) r /= 1e6; else if (u !~ /^G/) r = 0
		printf "%.3f %.3f\n", r, r * s
	     }' "$1"
}

# machine_ticks: the busy time of all CPUs (/proc/stat: everything but idle
# and iowait), in clock ticks.
machine_ticks() {
	awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
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

# stats VALUE...: "MEDIAN MIN MAX" of the values (the median of an even count
# is the mean of the middle two); "" when there are none.
stats() {
	printf '%s\n' "$@" | sort -g | awk 'NF { v[n++] = $1 }
		END {
			if (!n) exit
			m = n % 2 ? v[(n-1)/2] : (v[n/2-1] + v[n/2]) / 2
			printf "%s %s %s\n", m, v[0], v[n-1]
		}'
}

# Per row: RAW_1/RAW_4 hold the Gb/s of each run, RAW_RTT the ms of each
# ping; MED_*, MIN_*, MAX_* their medians and ranges; CPU the CPU s/Gbit
# of the routers across all the row's iperf3 runs.
declare -A RAW_1 RAW_4 RAW_RTT MED_1 MED_4 MED_RTT MIN_1 MIN_4 MIN_RTT MAX_1 MAX_4 MAX_RTT CPU SYSCPU
# RAW_C, MED_C, MIN_C, MAX_C: 1 stream with the other congestion control
# (ALT_CC). SENDER: the sender's TCP state halfway through the first run.
declare -A RAW_C MED_C MIN_C MAX_C SENDER

# The machine's congestion control and the other one measured beside it:
# BBR paces a flow at the bandwidth it measured, which on a path with a
# userspace hop is that hop's, while it barely paces the kernel's own paths
# (round trips of microseconds make it measure tens of Gb/s); CUBIC, Linux's
# default, does not pace. Both are shown, so that a ratio is not one
# congestion control's artifact.
CC=$(sysctl -n net.ipv4.tcp_congestion_control 2>/dev/null || echo unknown)
ALT_CC=
for c in cubic bbr; do
	if [[ $c != "$CC" ]] && grep -qw "$c" /proc/sys/net/ipv4/tcp_available_congestion_control 2>/dev/null; then
		ALT_CC=$c
		break
	fi
done

# sender_view CLIENT_NS SERVER_IP: for the busiest TCP connection to
# SERVER_IP, "cc=.. pacing=..Gb/s delivery=..Gb/s min_rtt=..ms" from ss.
sender_view() {
	ip netns exec "$1" ss -tin dst "$2" 2>/dev/null | awk '
		/^[ \t]/ {
			acked = 0; cc = $1; pr = dr = mr = "?"
			for (i = 1; i <= NF; i++) {
				if ($i ~ /^bytes_acked:/) { split($i, a, ":"); acked = a[2] }
				if ($i == "pacing_rate") pr = $(i+1)
				if ($i == "delivery_rate") dr = $(i+1)
				if ($i ~ /^minrtt:/) { split($i, a, ":"); mr = a[2] }
			}
			if (acked >= best) { best = acked; line = sprintf("cc=%s pacing=%s delivery=%s min_rtt=%sms", cc, g(pr), g(dr), mr) }
		}
		function g(v) { sub(/bps$/, "", v); return v == "?" ? v : sprintf("%.1fGb/s", v / 1e9) }
		END { print line }'
}

# FAST_RTT: the median over runs of each ping's fastest round trip, which
# shows the path itself without the cost of waking idle processes.
declare -A FAST_RTT

# iperf_run ROW CLIENT_NS SERVER_IP STREAMS RUN [CC]: one iperf3 client run,
# with congestion control CC when given (else the machine's default);
# prints "RATE GIGABITS". Returns 1, with the log on stderr, on failure.
iperf_run() {
	local row=$1 cns=$2 ip=$3 n=$4 run=$5 cc=${6:-} log out ccargs=()
	log=$TMP/$row-P$n${cc:+-$cc}-run$run.log
	[[ -n $cc ]] && ccargs=(-C "$cc")
	step "$row: iperf3 TCP, $n stream(s)${cc:+, $cc}, ${DURATION}s, run $run/$RUNS"
	if ! bounded $((DURATION + 30)) ip netns exec "$cns" iperf3 -c "$ip" -p "$PORT" \
		-t "$DURATION" -f g -P "$n" "${ccargs[@]}" >"$log" 2>&1; then
		cat "$log" >&2
		echo "$row: iperf3 -P $n run $run failed" >&2
		return 1
	fi
	out=$(rate_of "$log")
	if [[ $out == 0.000\ * ]]; then
		cat "$log" >&2
		echo "$row: iperf3 -P $n run $run: no receiver summary" >&2
		return 1
	fi
	echo "$out"
}

# measure ROW CLIENT_NS SERVER_NS SERVER_IP [PID...]: RUNS times iperf3 with
# 1 then 4 streams, then RUNS pings; fills the tables above, and CPU[ROW]
# when router PIDs are given. Returns 1, with a message on stderr, when a
# measurement fails.
measure() {
	local row=$1 cns=$2 sns=$3 ip=$4
	shift 4
	local pids=("$@") t0 t1 srv run out gbits=0 rtt s
	local r1=() r4=() rc=() rtts=() fast=()
	ns_bg "$TMP/$row-server.log" "$sns" iperf3 -s -p "$PORT"
	srv=$LIB_LAST_PID
	wait_until 10 bash -c "ip netns exec '$sns' ss -ltn | grep -q ':$PORT '" ||
		{ echo "$row: iperf3 server did not start" >&2; return 1; }
	t0=$(cpu_ticks "${pids[@]}")
	local m0 m1
	m0=$(machine_ticks)
	for ((run = 1; run <= RUNS; run++)); do
		# Halfway through the first run, what the sender's TCP thinks
		# of the path (the pacing a BBR sender chose, and why).
		local sampler=
		if ((run == 1)); then
			(sleep "$(((DURATION + 1) / 2))"; sender_view "$cns" "$ip" >"$TMP/$row-sender.txt") &
			sampler=$!
		fi
		out=$(iperf_run "$row" "$cns" "$ip" 1 "$run") || { kill_pid "$srv"; return 1; }
		[[ -n $sampler ]] && { wait "$sampler" || true; SENDER[$row]=$(cat "$TMP/$row-sender.txt"); }
		r1+=("${out% *}")
		gbits=$(awk -v a="$gbits" -v b="${out#* }" 'BEGIN { print a + b }')
		out=$(iperf_run "$row" "$cns" "$ip" 4 "$run") || { kill_pid "$srv"; return 1; }
		r4+=("${out% *}")
		gbits=$(awk -v a="$gbits" -v b="${out#* }" 'BEGIN { print a + b }')
	done
	t1=$(cpu_ticks "${pids[@]}")
	m1=$(machine_ticks)
	SYSCPU[$row]=$(awk -v t="$((m1 - m0))" -v hz="$CLK_TCK" -v g="$gbits" \
		'BEGIN { if (g > 0) printf "%.3f", t / hz / g; else print "n/a" }')
	if [[ -n $ALT_CC ]]; then
		for ((run = 1; run <= RUNS; run++)); do
			out=$(iperf_run "$row" "$cns" "$ip" 1 "$run" "$ALT_CC") || { kill_pid "$srv"; return 1; }
			rc+=("${out% *}")
		done
		RAW_C[$row]=${rc[*]}
		read -r MED_C[$row] MIN_C[$row] MAX_C[$row] <<<"$(stats "${rc[@]}")"
	fi
	kill_pid "$srv"
	for ((run = 1; run <= RUNS; run++)); do
		step "$row: ping, 50 packets at 10 ms, run $run/$RUNS"
		rtt=$(bounded 30 ip netns exec "$cns" ping -q -c 50 -i 0.01 -W 1 "$ip" |
			awk -F/ '/^rtt|^round-trip/ { sub(/.*= */, "", $4); print $5, $4 }') || true
		if [[ -n $rtt ]]; then
			rtts+=("${rtt% *}")
			fast+=("${rtt#* }")
		fi
	done
	RAW_1[$row]=${r1[*]}
	RAW_4[$row]=${r4[*]}
	read -r MED_1[$row] MIN_1[$row] MAX_1[$row] <<<"$(stats "${r1[@]}")"
	read -r MED_4[$row] MIN_4[$row] MAX_4[$row] <<<"$(stats "${r4[@]}")"
	if ((${#pids[@]})); then
		CPU[$row]=$(awk -v t="$((t1 - t0))" -v hz="$CLK_TCK" -v g="$gbits" \
			'BEGIN { if (g > 0) printf "%.3f", t / hz / g; else print "n/a" }')
	fi
	if ((${#rtts[@]} < RUNS)); then
		echo "$row: $((RUNS - ${#rtts[@]})) of $RUNS pings got no reply at all" >&2
		((${#rtts[@]})) || return 1
	fi
	RAW_RTT[$row]=${rtts[*]}
	read -r FAST_RTT[$row] _ _ <<<"$(stats "${fast[@]}")"
	read -r MED_RTT[$row] MIN_RTT[$row] MAX_RTT[$row] <<<"$(stats "${rtts[@]}")"
	((${#rtts[@]} == RUNS))
}

ROWS=()
NOTES=()
FAILED=0

# --- (a) veth underlay ----------------------------------------------------
measure underlay "$H1" "$H2" 10.98.0.2 || lib_die "underlay measurement failed"
ROWS+=(underlay)

# --- the userspace reference ------------------------------------------------
# A UDP echo between two Go processes across the underlay (test/udpecho):
# each round trip wakes two sleeping processes. A ping through two
# userspace routers wakes four (router, router, router, pinger), so about
# twice this is what a userspace overlay adds on this machine unless it
# busy-polls; the kernel's VXLAN wakes none.
ECHO_RTT=()
step "userspace reference: UDP echo between two Go processes over the underlay, $RUNS x 50 round trips at 10 ms"
if (cd "$HERE/.." && go build -o "$TMP/udpecho" ./test/udpecho) >"$TMP/udpecho-build.log" 2>&1; then
	ns_bg "$TMP/udpecho-server.log" "$H2" "$TMP/udpecho" -serve 10.98.0.2:7001 -duration 120s
	echo_srv=$LIB_LAST_PID
	for ((run = 1; run <= RUNS; run++)); do
		out=$(bounded 30 ip netns exec "$H1" "$TMP/udpecho" -probe 10.98.0.2:7001 -count 50 -interval 10ms) || continue
		out=${out#rtt_avg_ms=}
		ECHO_RTT+=("${out%% *}")
	done
	kill_pid "$echo_srv"
else
	NOTES+=("userspace reference not measured: test/udpecho did not build (see $TMP/udpecho-build.log)")
fi

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

# --- (c, d, e) weft ---------------------------------------------------------
# weft_row ROW OFFLOAD EXTRA_LAUNCH_ARGS...: (re)launch both routers with the
# extra arguments, with WEFT_NO_OFFLOAD=1 in their environment when OFFLOAD
# is "off", and measure between the attached containers. On failure it
# prints why and returns 1; the other rows still count.
weft_row() {
	local row=$1 offload=$2
	shift 2
	if [[ $offload == off ]]; then
		local -x WEFT_NO_OFFLOAD=1 # seen by the routers `weft launch` starts
	fi
	local s1=$TMP/state-h1 s2=$TMP/state-h2 log
	weft_in "$H1" "$s1" stop >/dev/null 2>&1 || true
	weft_in "$H2" "$s2" stop >/dev/null 2>&1 || true
	step "$row: launch routers in $H1 and $H2 (offloads $offload) $*"
	log=$TMP/$row-launch.log
	weft_in "$H1" "$s1" launch --no-plugin --no-proxy --port 6783 --name h1 "$@" >"$log" 2>&1 ||
		{ cat "$log" >&2; echo "$row: weft launch on h1 failed" >&2; return 1; }
	weft_in "$H2" "$s2" launch --no-plugin --no-proxy --port 6783 --name h2 "$@" 10.98.0.1:6783 >"$log" 2>&1 ||
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
	if [[ $row == weft-fastdp ]]; then
		wait_until 30 bash -c "ip netns exec '$H1' env WEFT_STATE_DIR='$s1' '$WEFT' --state-dir '$s1' status connections | grep -q ' fastdp '" ||
			{ echo "$row: the connection did not take the fast path within 30 s" >&2; return 1; }
		ns_exec "$W1" ping -c3 -i 0.2 -W1 10.2.1.2 >/dev/null || true # misses install the entries
	fi
	# The routers are whatever runs in the host namespaces (nothing else does).
	local pids
	mapfile -t pids < <(ip netns pids "$H1"; ip netns pids "$H2")
	measure "$row" "$W1" "$W2" 10.2.1.2 "${pids[@]}" || return 1
	ROWS+=("$row")
	[[ $row == weft-fastdp ]] && paired_rtt
	return 0
}

# paired_rtt: the fast path against VXLAN measured alternately, so that
# both see the same machine: RTT depends on how busy and how deeply idle
# the CPUs are, and the machine's CPU time counts whatever else runs, both
# of which change between rows measured minutes apart. 2 x RUNS pairs of 50
# pings 10 ms apart, then RUNS pairs of 1-stream iperf3 runs, each with the
# machine's busy CPU time. PAIRED_ADDED is the median of the per-pair RTT
# differences (fast path minus VXLAN, ms); PAIRED_RATE and PAIRED_CPU the
# medians of the per-pair ratios (fast path / VXLAN) of throughput and of
# CPU seconds per gigabit.
PAIRED_ADDED= PAIRED_RATE= PAIRED_CPU=
PAIRED_RAW=() PAIRED_IPERF=()
paired_rtt() {
	local run a b diffs=() rates=() cpus=() srv1 srv2 m0 m1 m2 out1 out2
	for ((run = 1; run <= 2 * RUNS; run++)); do
		step "weft-fastdp: paired ping with vxlan, pair $run/$((2 * RUNS))"
		a=$(bounded 30 ip netns exec "$W1" ping -q -c 50 -i 0.01 -W 1 10.2.1.2 | awk -F/ '/^rtt|^round-trip/ { print $5 }') || true
		b=$(bounded 30 ip netns exec "$V1" ping -q -c 50 -i 0.01 -W 1 10.97.0.2 | awk -F/ '/^rtt|^round-trip/ { print $5 }') || true
		[[ -n $a && -n $b ]] || continue
		diffs+=("$(awk -v a="$a" -v b="$b" 'BEGIN { print a - b }')")
		PAIRED_RAW+=("$a/$b")
	done
	((${#diffs[@]})) && read -r PAIRED_ADDED _ _ <<<"$(stats "${diffs[@]}")"
	ns_bg "$TMP/paired-w-server.log" "$W2" iperf3 -s -p "$PORT"
	srv1=$LIB_LAST_PID
	ns_bg "$TMP/paired-v-server.log" "$V2" iperf3 -s -p "$PORT"
	srv2=$LIB_LAST_PID
	wait_until 10 bash -c "ip netns exec '$W2' ss -ltn | grep -q ':$PORT ' && ip netns exec '$V2' ss -ltn | grep -q ':$PORT '" || true
	for ((run = 1; run <= RUNS; run++)); do
		m0=$(machine_ticks)
		out1=$(iperf_run weft-fastdp-paired "$W1" 10.2.1.2 1 "$run") || continue
		m1=$(machine_ticks)
		out2=$(iperf_run vxlan-paired "$V1" 10.97.0.2 1 "$run") || continue
		m2=$(machine_ticks)
		rates+=("$(awk -v a="${out1% *}" -v b="${out2% *}" 'BEGIN { if (b > 0) print a / b }')")
		cpus+=("$(awk -v ta="$((m1 - m0))" -v ga="${out1#* }" -v tb="$((m2 - m1))" -v gb="${out2#* }" \
			'BEGIN { if (ga > 0 && gb > 0 && tb > 0) print (ta / ga) / (tb / gb) }')")
		PAIRED_IPERF+=("${out1% *}/${out2% *}Gb/s,$(awk -v ta="$((m1 - m0))" -v ga="${out1#* }" -v tb="$((m2 - m1))" -v gb="${out2#* }" -v hz="$CLK_TCK" \
			'BEGIN { printf "%.3f/%.3fs/Gbit", ta / hz / ga, tb / hz / gb }')")
	done
	kill_pid "$srv1"
	kill_pid "$srv2"
	((${#rates[@]})) && read -r PAIRED_RATE _ _ <<<"$(stats "${rates[@]}")"
	((${#cpus[@]})) && read -r PAIRED_CPU _ _ <<<"$(stats "${cpus[@]}")"
	return 0
}

# weft_try ROW OFFLOAD ARGS...: weft_row, noting a failure instead of ending.
weft_try() {
	weft_row "$@" && return 0
	NOTES+=("$1 failed (see the messages above the table)")
	FAILED=1
}

if [[ ${BENCH_SKIP_WEFT:-} == 1 ]]; then
	NOTES+=("weft skipped (BENCH_SKIP_WEFT=1)")
elif [[ ! -x $WEFT ]]; then
	NOTES+=("weft skipped: no binary at $WEFT (run 'make build' or set WEFT_BIN)")
else
	weft_try weft on --no-fastdp
	weft_try weft-fallback off --no-fastdp
	weft_try weft-fastdp on
	if [[ -n $PASSWORD_FILE ]]; then
		weft_try weft-encrypted on --password-file "$PASSWORD_FILE"
	else
		NOTES+=("weft-encrypted skipped: no --password-file")
	fi
fi

# --- report ----------------------------------------------------------------
has() { [[ -n ${MED_1[$1]:-} ]]; }
# ratio A B: A/B with 2 decimals and an x, or n/a.
ratio() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (a > 0 && b > 0) printf "%.2fx", a / b; else print "n/a" }'; }
# fmt FORMAT "VALUE...": the values printed with FORMAT, space-separated.
fmt() { awk -v f="$1" -v l="$2" 'BEGIN { n = split(l, v, " "); for (i = 1; i <= n; i++) { if (i > 1) printf " "; printf f, v[i] }; if (!n) printf "n/a" }'; }
# cell MED MIN MAX FORMAT: "median (min-max)".
cell() { awk -v m="$1" -v lo="$2" -v hi="$3" -v f="$4" 'BEGIN { printf f " (" f "-" f ")", m, lo, hi }'; }

echo
echo "TCP throughput (iperf3, ${DURATION} s per run) and ping RTT (50 packets 10 ms apart per run),"
echo "median of $RUNS runs (min-max), two namespaces, veth underlay MTU 1500"
echo "TCP congestion control: $CC (this machine's default, used by every row of this table)"
printf '%-15s %-22s %-22s %-24s %-11s %s\n' path "1 stream Gb/s" "4 streams Gb/s" "RTT avg ms" "CPU s/Gbit" "machine CPU s/Gbit"
for row in "${ROWS[@]}"; do
	rtt=n/a
	[[ -n ${MED_RTT[$row]:-} ]] && rtt=$(cell "${MED_RTT[$row]}" "${MIN_RTT[$row]}" "${MAX_RTT[$row]}" %.3f)
	printf '%-15s %-22s %-22s %-24s %-11s %s\n' "$row" \
		"$(cell "${MED_1[$row]}" "${MIN_1[$row]}" "${MAX_1[$row]}" %.2f)" \
		"$(cell "${MED_4[$row]}" "${MIN_4[$row]}" "${MAX_4[$row]}" %.2f)" \
		"$rtt" "${CPU[$row]:--}" "${SYSCPU[$row]:--}"
done

echo
echo "raw runs: 1 stream Gb/s | 4 streams Gb/s | RTT avg ms"
for row in "${ROWS[@]}"; do
	printf '%-15s %s | %s | %s\n' "$row" "$(fmt %.2f "${RAW_1[$row]}")" "$(fmt %.2f "${RAW_4[$row]}")" \
		"$(fmt %.3f "${RAW_RTT[$row]:-}")"
done

if [[ -n $ALT_CC ]]; then
	echo
	echo "1 stream with $ALT_CC instead of $CC (iperf3 -C $ALT_CC), median of $RUNS runs (min-max) | raw runs"
	for row in "${ROWS[@]}"; do
		[[ -n ${MED_C[$row]:-} ]] || continue
		printf '%-15s %-22s | %s\n' "$row" "$(cell "${MED_C[$row]}" "${MIN_C[$row]}" "${MAX_C[$row]}" %.2f)" \
			"$(fmt %.2f "${RAW_C[$row]}")"
	done
fi
echo
echo "the sender's TCP halfway through the first 1-stream run ($CC; ss -ti: pacing rate, delivery rate, min RTT)"
for row in "${ROWS[@]}"; do
	printf '%-15s %s\n' "$row" "${SENDER[$row]:-n/a}"
done

echo
echo "ratios of medians                   1 stream  4 streams  1 stream ${ALT_CC:-(none)}"
for row in "${ROWS[@]}"; do
	[[ $row == weft* ]] || continue
	printf '%-35s %8s %10s %10s\n' "$row / vxlan" "$(ratio "${MED_1[$row]}" "${MED_1[vxlan]}")" \
		"$(ratio "${MED_4[$row]}" "${MED_4[vxlan]}")" "$(ratio "${MED_C[$row]:-}" "${MED_C[vxlan]:-}")"
done
if has weft && has weft-encrypted; then
	printf '%-35s %8s %10s\n' "weft-encrypted / weft" "$(ratio "${MED_1[weft-encrypted]}" "${MED_1[weft]}")" \
		"$(ratio "${MED_4[weft-encrypted]}" "${MED_4[weft]}")"
fi
if has weft && has weft-fallback; then
	printf '%-35s %8s %10s\n' "weft / weft-fallback (offloads)" "$(ratio "${MED_1[weft]}" "${MED_1[weft-fallback]}")" \
		"$(ratio "${MED_4[weft]}" "${MED_4[weft-fallback]}")"
fi
echo
echo "4 streams / 1 stream (medians)"
for row in "${ROWS[@]}"; do
	printf '%-35s %8s\n' "$row" "$(ratio "${MED_4[$row]}" "${MED_1[$row]}")"
done
echo
echo "RTT added over the underlay (median minus median; in brackets the same for each ping's fastest round trip)"
for row in "${ROWS[@]}"; do
	[[ $row != underlay && -n ${MED_RTT[$row]:-} && -n ${MED_RTT[underlay]:-} ]] || continue
	awk -v r="$row" -v a="${MED_RTT[$row]}" -v b="${MED_RTT[underlay]}" \
		-v fa="${FAST_RTT[$row]:-}" -v fb="${FAST_RTT[underlay]:-}" \
		'BEGIN { printf "%-35s %8.3f ms", r, a - b; if (fa != "" && fb != "") printf "  (%.3f ms)", fa - fb; print "" }'
done
if ((${#ECHO_RTT[@]})) && [[ -n ${MED_RTT[underlay]:-} ]]; then
	read -r ECHO_MED _ _ <<<"$(stats "${ECHO_RTT[@]}")"
	awk -v e="$ECHO_MED" -v u="${MED_RTT[underlay]}" -v runs="${ECHO_RTT[*]}" 'BEGIN {
		printf "%-35s %8.3f ms  (Go UDP echo, 2 process wakeups per round trip; echo RTT runs %s ms)\n", "userspace reference", e - u, runs
		printf "%-35s %8.3f ms  (twice that: a ping through two userspace routers wakes 4 processes)\n", "two-router reference", 2 * (e - u)
	}'
fi

# target LABEL VALUE OP LIMIT UNIT MISSING: one line of the targets block;
# VALUE empty means not measured (MISSING says why).
target() {
	local label=$1 value=$2 op=$3 limit=$4 unit=$5 missing=$6
	if [[ -z $value ]]; then
		printf '  %-36s %-12s target %s %s%s  not measured (%s)\n' "$label" n/a "$op" "$limit" "$unit" "$missing"
		return
	fi
	awk -v l="$label" -v v="$value" -v op="$op" -v t="$limit" -v u="$unit" 'BEGIN {
		ok = op == ">=" ? v >= t : v <= t
		printf "  %-36s %-12s target %s %s%s  %s\n", l, sprintf("%.3f%s", v, u), op, t, u, ok ? "met" : "NOT met"
	}'
}
# quot A B: A/B unrounded, or empty when either is missing.
quot() { [[ -n ${1:-} && -n ${2:-} ]] && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) print a / b }'; }
# added ROW: median RTT of ROW minus the underlay's, or empty.
added() { [[ -n ${MED_RTT[$1]:-} && -n ${MED_RTT[underlay]:-} ]] && awk -v a="${MED_RTT[$1]}" -v b="${MED_RTT[underlay]}" 'BEGIN { print a - b }'; }
why() { if [[ $1 == weft-encrypted && -z $PASSWORD_FILE ]]; then echo "no --password-file"; else echo "row $1 missing"; fi; }

echo
echo "targets (issue 5; informational, the exit code does not depend on them)"
target "weft / vxlan, 1 stream, $CC" "$(quot "${MED_1[weft]:-}" "${MED_1[vxlan]:-}")" ">=" 0.50 x "$(why weft)"
if [[ -n $ALT_CC ]]; then
	target "weft / vxlan, 1 stream, $ALT_CC" "$(quot "${MED_C[weft]:-}" "${MED_C[vxlan]:-}")" ">=" 0.50 x "$(why weft)"
fi
target "weft-encrypted / vxlan, 1 stream, $CC" "$(quot "${MED_1[weft-encrypted]:-}" "${MED_1[vxlan]:-}")" ">=" 0.30 x "$(why weft-encrypted)"
target "weft RTT added" "$(added weft)" "<=" 0.15 " ms" "$(why weft)"
target "weft-encrypted RTT added" "$(added weft-encrypted)" "<=" 0.15 " ms" "$(why weft-encrypted)"
target "weft 4 streams / 1 stream" "$(quot "${MED_4[weft]:-}" "${MED_1[weft]:-}")" ">=" 0.95 x "$(why weft)"
target "weft-encrypted 4 streams / 1 stream" "$(quot "${MED_4[weft-encrypted]:-}" "${MED_1[weft-encrypted]:-}")" ">=" 0.95 x "$(why weft-encrypted)"
echo "  (\"4 flows no slower than one\" is checked as >= 0.95x: 5% is allowed for run-to-run noise)"
# over ROW: median RTT of ROW minus VXLAN's, or empty.
over() { [[ -n ${MED_RTT[$1]:-} && -n ${MED_RTT[vxlan]:-} ]] && awk -v a="${MED_RTT[$1]}" -v b="${MED_RTT[vxlan]}" 'BEGIN { print a - b }'; }
echo
echo "targets (issue 19, the fast path; informational)"
target "weft-fastdp / vxlan, 1 stream, $CC" "$(quot "${MED_1[weft-fastdp]:-}" "${MED_1[vxlan]:-}")" ">=" 0.85 x "$(why weft-fastdp)"
target "  the same, paired runs (median)" "$PAIRED_RATE" ">=" 0.85 x "$(why weft-fastdp)"
target "weft-fastdp RTT added over vxlan" "$(over weft-fastdp)" "<=" 0.02 " ms" "$(why weft-fastdp)"
target "  the same, paired pings (median)" "$PAIRED_ADDED" "<=" 0.02 " ms" "$(why weft-fastdp)"
target "weft-fastdp / vxlan, machine CPU/Gbit" "$(quot "${SYSCPU[weft-fastdp]:-}" "${SYSCPU[vxlan]:-}")" "<=" 1.10 x "$(why weft-fastdp)"
target "  the same, paired runs (median)" "$PAIRED_CPU" "<=" 1.10 x "$(why weft-fastdp)"
if ((${#PAIRED_RAW[@]})); then
	echo "  paired pings, fast path/vxlan avg ms: ${PAIRED_RAW[*]}"
fi
if ((${#PAIRED_IPERF[@]})); then
	echo "  paired 1-stream runs, fast path/vxlan: ${PAIRED_IPERF[*]}"
fi

echo
for note in "${NOTES[@]}"; do
	echo "note: $note"
done
echo "CPU s/Gbit: utime+stime of both weft routers across all the row's iperf3 runs, per gigabit received."
echo "machine CPU s/Gbit: busy time of all CPUs (/proc/stat) over the same runs, per gigabit: counts the kernel's"
echo "  VXLAN and bridge work, iperf3, and anything else running on the machine (noisy on a shared machine)."
echo "total wall time: $((SECONDS - START)) s"
exit "$FAILED"
